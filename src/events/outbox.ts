/**
 * SQL for the outbox insert that a ledger posting runs in its own statement,
 * as a data-modifying CTE over the inserted transaction and the two updated
 * accounts (each CTE returning balance_posted, balance_held, kind and
 * merchant_id).
 *
 * The payload carries everything a subscriber is sent, so that delivering one
 * event to thousands of subscribers needs no further query.
 */
export function insertPostingEvent(transaction: string, debit: string, credit: string): string {
  return `INSERT INTO ledger_event (kind, transaction_id, merchant_id, account_ids, payload)
    SELECT 'transaction.posted', t.id, t.merchant_id, ARRAY[t.debit_account_id, t.credit_account_id],
           jsonb_build_object(
             'transaction', to_jsonb(t),
             'balances', jsonb_build_array(
               jsonb_build_object('accountId', t.debit_account_id::text, 'kind', d.kind,
                 'merchantId', d.merchant_id, 'posted', d.balance_posted, 'held', d.balance_held),
               jsonb_build_object('accountId', t.credit_account_id::text, 'kind', c.kind,
                 'merchantId', c.merchant_id, 'posted', c.balance_posted, 'held', c.balance_held)))
      FROM ${transaction} t, ${debit} d, ${credit} c`;
}
