import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlFor } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { PrepaidIdService } from './prepaid-id.service';

export const MAX_CARDS_PER_BATCH = 10_000;

export interface IssuedCard {
  cardId: string;
  digits: string;
}

export interface IssuedBatch {
  batchId: string;
  faceValue: number;
  cards: IssuedCard[];
}

/** Issues prepaid cards: each gets a ledger account, a prepaid ID and its face value. */
export class CardService {
  constructor(
    private readonly ledger: LedgerService,
    private readonly prepaidIds: PrepaidIdService,
  ) {}

  /**
   * Issues a batch in one database transaction, so that either every card
   * exists and is funded from the issuance account, or none does. The digits
   * are returned once and cannot be listed again except through decryption.
   */
  async issueBatch(
    em: EntityManager,
    count: number,
    faceValue: number,
    note = '',
  ): Promise<IssuedBatch> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_CARDS_PER_BATCH) {
      throw new RangeError(`card count must be between 1 and ${MAX_CARDS_PER_BATCH}, got ${count}`);
    }
    if (!Number.isSafeInteger(faceValue) || faceValue <= 0) {
      throw new RangeError(
        `face value must be a positive whole number of points, got ${faceValue}`,
      );
    }

    const issued = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const issuanceAccountId = await this.ledger.operatorAccountId(sql, 'issuance');
      // Every issuance posts from this one account, so its ledger lock comes
      // before the first write, which assigns the transaction id. An id
      // assigned before the wait could deliver this batch's events before
      // those of an issuance that committed first. The new cards' accounts
      // need no lock up front, because no other transaction knows their ids.
      await this.ledger.lockAccounts(sql, [issuanceAccountId]);

      const batch = await sql.one<{ id: string }>(
        'INSERT INTO prepaid_card_batch (face_value, card_count, note) VALUES (?, ?, ?) RETURNING id',
        [faceValue, count, note],
      );
      const cards: IssuedCard[] = [];
      for (let index = 0; index < count; index++) {
        const accountId = await this.ledger.openAccount(sql, 'card');
        const prepaidId = await this.prepaidIds.create(sql, 'card', accountId);
        const card = await sql.one<{ id: string }>(
          `INSERT INTO prepaid_card (batch_id, ledger_account_id, prepaid_id_id, face_value)
           VALUES (?, ?, ?, ?) RETURNING id`,
          [batch!.id, accountId, prepaidId.id, faceValue],
        );
        await this.ledger.postWithin(sql, {
          kind: 'card_issue',
          debitAccountId: issuanceAccountId,
          creditAccountId: accountId,
          amount: faceValue,
          prepaidIdId: prepaidId.id,
          description: `card issued in batch ${batch!.id}`,
        });
        cards.push({ cardId: card!.id, digits: prepaidId.digits });
      }
      return { batchId: batch!.id, faceValue, cards };
    });
    this.ledger.announceCommit();
    return issued;
  }
}
