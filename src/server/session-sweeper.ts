import type { MikroORM } from '@mikro-orm/postgresql';
import { sqlFor } from '../database/sql';
import type { EventHub } from '../events/event-hub';
import type { Logger } from '../logging/logger';
import type { SessionService } from '../members/session.service';
import type { ApiKeyService } from '../merchants/api-key.service';

const SESSION_TAG = 'session:';
const API_KEY_TAG = 'api-key:';

/**
 * Closes subscriptions and WebSocket connections whose session expired or
 * whose API key was revoked, and counts an open subscription as use of its
 * session so that a watching dashboard does not hit the idle timeout. Ended
 * sessions and revoked keys close them at once through a NOTIFY; this sweep covers
 * expiry, which no statement announces, and a NOTIFY lost with a connection.
 */
export function startSessionSweeper(
  orm: MikroORM,
  hub: EventHub,
  sessions: SessionService,
  apiKeys: ApiKeyService,
  logger: Logger,
  intervalMs = 30_000,
): () => void {
  const idsOf = (tags: string[], prefix: string) => tags.map((tag) => tag.slice(prefix.length));
  // Ids of the sessions or keys behind a subscription or an open connection.
  const openIds = (prefix: string) => [
    ...new Set(idsOf([...hub.tags(prefix), ...hub.heldTags(prefix)], prefix)),
  ];
  const sweep = async () => {
    const sql = sqlFor(orm.em.fork());
    // An open connection without a subscription ends with its session, but
    // does not keep the session in use.
    const subscribed = idsOf(hub.tags(SESSION_TAG), SESSION_TAG);
    const sessionIds = openIds(SESSION_TAG);
    if (sessionIds.length > 0) {
      const live = await sessions.liveSessionIds(sql, sessionIds);
      for (const sessionId of sessionIds) {
        if (!live.has(sessionId)) hub.closeTagged(`${SESSION_TAG}${sessionId}`);
      }
      await sessions.touch(
        sql,
        subscribed.filter((sessionId) => live.has(sessionId)),
      );
    }
    const keyIds = openIds(API_KEY_TAG);
    for (const keyId of await apiKeys.revokedAmong(sql, keyIds))
      hub.closeTagged(`${API_KEY_TAG}${keyId}`);
  };
  const timer = setInterval(() => {
    sweep().catch((error: Error) => logger.warn({ err: error }, 'session sweep failed'));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
