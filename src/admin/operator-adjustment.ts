// Balance adjustments by operators: a ledger posting of kind `adjustment`
// between a wallet or card and the operator adjustment account.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { PostingRequest, PostingResult, TransactionRecord } from '../ledger/ledger.types';
import { fingerprint } from '../merchants/payment.service';
import type { TwoFactorService } from '../members/two-factor.service';
import type { PrepaidIdKind, PrepaidIdStatus } from '../prepaid/prepaid-id.entity';
import type { PrepaidIdService, ResolvedPrepaidId } from '../prepaid/prepaid-id.service';
import { auditActor, cliDetails, verifyOperatorTotp, type OperatorActor } from './operator-actor';
import {
  checkIdempotencyKey,
  checkPositivePoints,
  checkPrepaidIdDigits,
  checkReason,
  OperatorInputError,
} from './operator-input';

export interface AdjustmentRequest {
  prepaidId: string;
  amount: number;
  /** `credit` adds the amount to the prepaid ID's account, `debit` takes it away. */
  direction: 'credit' | 'debit';
  reason: string;
  /** Required for an API actor. The CLI sends none. */
  twoFactorCode?: string | null;
  idempotencyKey?: string | null;
}

export type AdjustmentOutcome =
  | { ok: true; transaction: TransactionRecord; ledgerAccountId: string; replayed: boolean }
  | { ok: false; code: 'NOT_FOUND' | 'INVALID_TWO_FACTOR_CODE' | 'IDEMPOTENCY_KEY_REUSED' }
  | { ok: false; code: 'INVALID_PREPAID_ID'; kind: PrepaidIdKind; status: PrepaidIdStatus }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number };

/** The services that an adjustment uses. OperatorService passes its own. */
export interface AdjustmentDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  twoFactor: TwoFactorService;
  audit: AuditService;
}

/** Statuses in which an ID's account still accepts adjustments, unlike retired, spent and cancelled IDs. */
const ADJUSTABLE_STATUSES: readonly PrepaidIdStatus[] = ['pending', 'active', 'blocked'];

/** Makes the adjustment that OperatorService.adjustBalance describes. */
export async function adjustBalance(
  deps: AdjustmentDependencies,
  em: EntityManager,
  actor: OperatorActor,
  request: AdjustmentRequest,
): Promise<AdjustmentOutcome> {
  const digits = checkPrepaidIdDigits(request.prepaidId);
  checkPositivePoints(request.amount, 'amount');
  if (request.direction !== 'credit' && request.direction !== 'debit') {
    throw new OperatorInputError('direction', 'direction must be credit or debit');
  }
  const reason = checkReason(request.reason);
  const key = request.idempotencyKey ?? null;
  if (key !== null) checkIdempotencyKey(key);

  if (
    actor.via === 'api' &&
    !(await verifyOperatorTotp(deps.twoFactor, em, actor.memberId, request.twoFactorCode))
  ) {
    return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' };
  }

  const sql = sqlFor(em);
  const prepaid = await deps.prepaidIds.resolve(sql, digits);
  if (!prepaid) return { ok: false, code: 'NOT_FOUND' };
  if (prepaid.kind === 'one_time') {
    return { ok: false, code: 'INVALID_PREPAID_ID', kind: prepaid.kind, status: prepaid.status };
  }
  const adjustmentAccountId = await deps.ledger.operatorAccountId(sql, 'adjustment');
  const credit = request.direction === 'credit';
  const actorMemberId = actor.via === 'api' ? actor.memberId : null;

  // The guard records what it found, so that a rejection can name the status.
  let rejected: ResolvedPrepaidId | undefined;
  const posting: PostingRequest = {
    kind: 'adjustment',
    debitAccountId: credit ? adjustmentAccountId : prepaid.ledgerAccountId,
    creditAccountId: credit ? prepaid.ledgerAccountId : adjustmentAccountId,
    amount: request.amount,
    prepaidIdId: prepaid.id,
    actorMemberId,
    description: reason,
    metadata: actor.via === 'cli' ? { via: 'cli' } : null,
    idempotency:
      key === null
        ? undefined
        : {
            scope: `operator:${actorMemberId ?? 'cli'}`,
            key,
            fingerprint: fingerprint([
              'adjustment',
              prepaid.lookupHash.toString('hex'),
              request.amount,
              request.direction,
              reason,
            ]),
          },
    // A withdrawal may have retired the ID since it was looked up; the
    // guard reads it again under the account lock.
    guard: async (locked) => {
      const current = await deps.prepaidIds.findById(locked, prepaid.id);
      if (current && ADJUSTABLE_STATUSES.includes(current.status)) return undefined;
      rejected = current ?? prepaid;
      return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
    },
  };

  const result = await deps.ledger.post(em, posting, async (locked, transaction) => {
    await deps.audit.record(locked, {
      action: 'balance_adjusted',
      ...(await auditActor(locked, actor, prepaid.ledgerAccountId)),
      details: {
        ...cliDetails(actor),
        reason,
        transactionId: transaction.id,
        direction: request.direction,
        amount: request.amount,
        prepaidIdId: prepaid.id,
        kind: prepaid.kind,
        lastDigits: prepaid.lastDigits,
      },
    });
  });
  return toAdjustmentOutcome(result, prepaid, rejected);
}

/** Maps the ledger's result of an adjustment to the operator's outcome. */
function toAdjustmentOutcome(
  result: PostingResult,
  prepaid: ResolvedPrepaidId,
  rejected: ResolvedPrepaidId | undefined,
): AdjustmentOutcome {
  if (result.ok) {
    return {
      ok: true,
      transaction: result.transaction,
      ledgerAccountId: prepaid.ledgerAccountId,
      replayed: result.replayed,
    };
  }
  switch (result.code) {
    case 'INSUFFICIENT_BALANCE':
      return { ok: false, code: 'INSUFFICIENT_BALANCE', available: result.available };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
    case 'REJECTED': {
      const found = rejected ?? prepaid;
      return { ok: false, code: 'INVALID_PREPAID_ID', kind: found.kind, status: found.status };
    }
    default:
      throw new Error(`unexpected ledger failure ${result.code} for an adjustment`);
  }
}
