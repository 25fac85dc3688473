/**
 * The door of engine/events: the daemon's event log (GET /events). Engine modules publish through
 * `EventPublisher` (given to them by the composition root); the API reads through `EventSource`.
 */
import type { EventMessage, EventType } from '../../wire/events.js';
import type { Filters } from '../../lib/filters.js';

export type { EventActor, EventMessage, EventType } from '../../wire/events.js';

export interface EventPublisher {
  /**
   * Records an event now and hands it to every subscriber whose filters match it. The event keeps `attributes` as
   * its Actor.Attributes: pass an object of its own (every caller builds one per event), never one changed later.
   */
  publish(type: EventType, action: string, id: string, attributes?: Record<string, string>): void;
}

export interface EventSubscription {
  /** Buffered events matching the filters, at or after `since` (and before `until`), oldest first. */
  past: EventMessage[];
  /** Called for each live event that matches. */
  onEvent(fn: (e: EventMessage) => void): void;
  close(): void;
}

export interface EventSource {
  /** `since`/`until` in Unix nanoseconds (bigint keeps their precision). */
  subscribe(opts: { since?: bigint; until?: bigint; filters: Filters }): EventSubscription;
  /** One event as dockerd's json.Encoder writes it (timeNano exact), with its newline. */
  encode(e: EventMessage): string;
}
