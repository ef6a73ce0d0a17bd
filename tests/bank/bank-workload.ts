import type { Cluster } from './bank-cluster';
import { send, transactionUuid, type ClientCounters } from './bank-client';

/** The accounts the workload moves money between, as the setup created them. */
export interface BankWorld {
  merchants: Array<{ id: string; key: string }>;
  cards: string[];
  members: Array<{ sessionToken: string; wallet: string }>;
}

/** Balances that the acknowledged operations imply, by prepaid ID or by `merchant:<id>`. */
export class Expectation {
  readonly posted = new Map<string, number>();
  readonly held = new Map<string, number>();

  add(map: 'posted' | 'held', key: string, amount: number): void {
    this[map].set(key, (this[map].get(key) ?? 0) + amount);
  }
}

/** An acknowledged transaction: its id and what it was. */
export interface Acknowledged {
  id: string;
  kind: string;
  amount: number;
  key: string;
}

export interface WorkloadLog {
  acknowledged: Acknowledged[];
  rejected: Map<string, number>;
  byKind: Map<string, number>;
}

interface Chargeable {
  id: string;
  source: string;
  merchant: string;
  amount: number;
  refunded: number;
}

interface Hold {
  id: string;
  source: string;
  merchant: string;
  amount: number;
}

const CHARGE = `mutation($input: ChargeInput!) { charge(input: $input) { __typename
  ... on ChargeSuccess { transaction { id } } ... on UserError { code } } }`;
const REFUND = `mutation($input: RefundInput!) { refund(input: $input) { __typename
  ... on RefundSuccess { transaction { id amount } } ... on UserError { code } } }`;
const CREDIT = `mutation($input: CreditPointsInput!) { creditPoints(input: $input) { __typename
  ... on CreditSuccess { transaction { id } } ... on UserError { code } } }`;
const TRANSFER = `mutation($input: TransferInput!) { transfer(input: $input) { __typename
  ... on TransferSuccess { transaction { id amount } } ... on UserError { code } } }`;
const AUTHORIZE = `mutation($input: AuthorizeInput!) { authorize(input: $input) { __typename
  ... on AuthorizationSuccess { authorization { id } } ... on UserError { code } } }`;
const CAPTURE = `mutation($input: CaptureInput!) { capture(input: $input) { __typename
  ... on CaptureSuccess { transaction { id amount } } ... on UserError { code } } }`;
const VOID = `mutation($input: VoidInput!) { voidAuthorization(input: $input) { __typename
  ... on VoidSuccess { transaction { id } } ... on UserError { code } } }`;
const INQUIRY = `query($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;

/**
 * One simulated client: it draws operations at random, sends each until it
 * gets an answer, and records the effect of every acknowledged success on
 * the balances it expects. Refunds, captures and voids act on the client's
 * own earlier charges and authorizations.
 */
export class BankClient {
  private readonly charges: Chargeable[] = [];
  private readonly holds: Hold[] = [];
  private sequence = 0;

  constructor(
    private readonly name: string,
    private readonly world: BankWorld,
    private readonly cluster: Cluster,
    private readonly random: () => number,
    private readonly counters: ClientCounters,
    private readonly expectation: Expectation,
    private readonly log: WorkloadLog,
  ) {}

  async run(operations: number): Promise<void> {
    for (let index = 0; index < operations; index++) await this.step();
  }

  private async step(): Promise<void> {
    const roll = this.random();
    if (roll < 0.3) return this.charge();
    if (roll < 0.4) return this.refund();
    if (roll < 0.5) return this.credit();
    if (roll < 0.6) return this.transfer();
    if (roll < 0.72) return this.authorize();
    if (roll < 0.8) return this.capture();
    if (roll < 0.85) return this.void();
    return this.inquiry();
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private amount(maximum: number): number {
    return 1 + Math.floor(this.random() * maximum);
  }

  private key(kind: string): string {
    return `${this.name}-${kind}-${++this.sequence}`;
  }

  private source(): string {
    return this.random() < 0.5 ? this.pick(this.world.cards) : this.pick(this.world.members).wallet;
  }

  private async call(kind: string, query: string, input: Record<string, unknown>, token?: string) {
    const key = String(input.idempotencyKey ?? this.key(kind));
    const answer = await send(
      this.cluster,
      this.random,
      this.counters,
      query,
      { input },
      token,
      key,
    );
    const result = Object.values(answer.data)[0] as Record<string, any> | null;
    if (!result) throw new Error(`${kind} ${key} failed: ${JSON.stringify(answer.errors)}`);
    this.log.byKind.set(kind, (this.log.byKind.get(kind) ?? 0) + 1);
    if (result.code)
      this.log.rejected.set(result.code, (this.log.rejected.get(result.code) ?? 0) + 1);
    return { key, result };
  }

  private acknowledge(kind: string, globalId: string, amount: number, key: string): string {
    const id = transactionUuid(globalId);
    this.log.acknowledged.push({ id, kind, amount, key });
    return id;
  }

  private async charge(): Promise<void> {
    const merchant = this.pick(this.world.merchants);
    const source = this.source();
    const amount = this.amount(400);
    const input = {
      prepaidId: source,
      amount,
      idempotencyKey: this.key('charge'),
      orderReference: this.name,
    };
    const { key, result } = await this.call('charge', CHARGE, input, merchant.key);
    if (result.__typename !== 'ChargeSuccess') return;
    const id = this.acknowledge('charge', result.transaction.id, amount, key);
    this.expectation.add('posted', source, -amount);
    this.expectation.add('posted', `merchant:${merchant.id}`, amount);
    this.charges.push({ id, source, merchant: merchant.id, amount, refunded: 0 });
  }

  private async refund(): Promise<void> {
    const charge = this.charges.find((entry) => entry.refunded < entry.amount);
    if (!charge) return this.charge();
    const merchant = this.world.merchants.find((entry) => entry.id === charge.merchant)!;
    const amount = this.random() < 0.3 ? null : this.amount(charge.amount - charge.refunded);
    const input = {
      transactionId: Buffer.from(`Transaction:${charge.id}`).toString('base64url'),
      amount,
      idempotencyKey: this.key('refund'),
    };
    const { key, result } = await this.call('refund', REFUND, input, merchant.key);
    if (result.__typename !== 'RefundSuccess') return;
    const refunded = result.transaction.amount as number;
    this.acknowledge('refund', result.transaction.id, refunded, key);
    charge.refunded += refunded;
    this.expectation.add('posted', charge.source, refunded);
    this.expectation.add('posted', `merchant:${merchant.id}`, -refunded);
  }

  private async credit(): Promise<void> {
    const merchant = this.pick(this.world.merchants);
    const wallet = this.pick(this.world.members).wallet;
    const amount = this.amount(300);
    const input = { prepaidId: wallet, amount, idempotencyKey: this.key('credit') };
    const { key, result } = await this.call('credit', CREDIT, input, merchant.key);
    if (result.__typename !== 'CreditSuccess') return;
    this.acknowledge('credit', result.transaction.id, amount, key);
    this.expectation.add('posted', `merchant:${merchant.id}`, -amount);
    this.expectation.add('posted', wallet, amount);
  }

  private async transfer(): Promise<void> {
    const member = this.pick(this.world.members);
    const card = this.pick(this.world.cards);
    const amount = this.amount(200);
    const input = { sourcePrepaidId: card, amount, idempotencyKey: this.key('transfer') };
    const { key, result } = await this.call('transfer', TRANSFER, input, member.sessionToken);
    if (result.__typename !== 'TransferSuccess') return;
    this.acknowledge('transfer', result.transaction.id, amount, key);
    this.expectation.add('posted', card, -amount);
    this.expectation.add('posted', member.wallet, amount);
  }

  private async authorize(): Promise<void> {
    const merchant = this.pick(this.world.merchants);
    const source = this.source();
    const amount = this.amount(300);
    const input = {
      prepaidId: source,
      amount,
      idempotencyKey: this.key('authorize'),
      orderReference: this.name,
    };
    const { key, result } = await this.call('authorize', AUTHORIZE, input, merchant.key);
    if (result.__typename !== 'AuthorizationSuccess') return;
    const id = this.acknowledge('authorization', result.authorization.id, amount, key);
    this.expectation.add('held', source, amount);
    this.holds.push({ id, source, merchant: merchant.id, amount });
  }

  private async capture(): Promise<void> {
    const hold = this.holds.shift();
    if (!hold) return this.authorize();
    const merchant = this.world.merchants.find((entry) => entry.id === hold.merchant)!;
    const amount = this.random() < 0.5 ? null : this.amount(hold.amount);
    const input = {
      authorizationId: Buffer.from(`Transaction:${hold.id}`).toString('base64url'),
      amount,
      idempotencyKey: this.key('capture'),
    };
    const { key, result } = await this.call('capture', CAPTURE, input, merchant.key);
    if (result.__typename !== 'CaptureSuccess') return;
    const captured = result.transaction.amount as number;
    const id = this.acknowledge('capture', result.transaction.id, captured, key);
    this.expectation.add('held', hold.source, -hold.amount);
    this.expectation.add('posted', hold.source, -captured);
    this.expectation.add('posted', `merchant:${merchant.id}`, captured);
    this.charges.push({
      id,
      source: hold.source,
      merchant: hold.merchant,
      amount: captured,
      refunded: 0,
    });
  }

  private async void(): Promise<void> {
    const hold = this.holds.shift();
    if (!hold) return this.authorize();
    const merchant = this.world.merchants.find((entry) => entry.id === hold.merchant)!;
    const input = {
      authorizationId: Buffer.from(`Transaction:${hold.id}`).toString('base64url'),
      idempotencyKey: this.key('void'),
    };
    const { key, result } = await this.call('void', VOID, input, merchant.key);
    if (result.__typename !== 'VoidSuccess') return;
    this.acknowledge('void', result.transaction.id, hold.amount, key);
    this.expectation.add('held', hold.source, -hold.amount);
  }

  private async inquiry(): Promise<void> {
    const merchant = this.pick(this.world.merchants);
    const prepaidId = this.source();
    const answer = await send(
      this.cluster,
      this.random,
      this.counters,
      INQUIRY,
      { id: prepaidId },
      merchant.key,
      this.key('inquiry'),
    );
    this.log.byKind.set('inquiry', (this.log.byKind.get('inquiry') ?? 0) + 1);
    const balance = answer.data.prepaidBalance;
    if (!balance && answer.errors?.[0]?.extensions?.code !== 'RATE_LIMITED') {
      throw new Error(`inquiry failed: ${JSON.stringify(answer.errors)}`);
    }
  }
}
