import type { EventHub, EventTopic } from './event-hub';
import type { EventRelay } from './event-relay';
import type { LedgerEvent } from './ledger-event';

/**
 * Opens a live subscription: registers it with the hub first, then takes the
 * snapshot that decides which events are new to it. Events that commit after
 * the snapshot are delivered exactly once; earlier ones are never delivered.
 */
export async function openSubscription(
  hub: EventHub,
  relay: EventRelay,
  topic: EventTopic,
  tag?: string,
): Promise<AsyncIterableIterator<LedgerEvent>> {
  const subscriber = hub.subscribe(topic, tag);
  try {
    subscriber.activate(await relay.snapshot());
  } catch (error) {
    subscriber.close();
    throw error;
  }
  return subscriber;
}
