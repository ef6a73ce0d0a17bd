import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../logging/logger';
import type { AuthorizationService } from './authorization.service';

const BATCH_SIZE = 100;
// Bounds one sweep, so that a backlog is worked off over several intervals
// instead of in one long burst.
const MAX_BATCHES_PER_SWEEP = 10;

/**
 * Releases the holds of expired authorizations every `intervalMs`. A capture
 * or void of an expired authorization posts its expiry by itself, so the
 * sweep only decides how long an expired hold can keep points unavailable.
 * Every server instance may run one, and a hold that another instance
 * expired first is skipped. Errors are logged and the next sweep tries again.
 *
 * Returns a function that stops the timer and waits for a sweep in progress.
 */
export function startHoldSweeper(
  orm: MikroORM,
  authorizations: AuthorizationService,
  logger: Logger,
  intervalMs = 60_000,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  let stopped = false;

  const sweep = async () => {
    for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP && !stopped; batch++) {
      const run = await authorizations.expireDue(orm.em.fork(), undefined, BATCH_SIZE);
      if (run.expired.length > 0) {
        logger.info(
          { expired: run.expired.length, alreadySettled: run.alreadySettled },
          'released the holds of expired authorizations',
        );
      }
      // A short batch means that nothing else is due. After a failure the
      // next sweep retries, rather than this one selecting the same rows again.
      if (run.selected < BATCH_SIZE || run.failed > 0) break;
    }
  };

  const timer = setInterval(() => {
    // Each instance runs one sweep at a time, so a tick during a slow sweep is skipped.
    if (running) return;
    running = sweep()
      .catch((error: unknown) =>
        logger.error({ err: error }, 'hold sweep failed, and the next interval retries it'),
      )
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();

  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
