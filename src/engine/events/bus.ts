/**
 * The daemon's event log: a ring of the last events (dockerd keeps 256) for `since` queries, and live
 * subscribers. Times are wall-clock nanoseconds, kept as bigint (a Unix time in ns exceeds 2^53).
 */
import type { Filters } from '../../lib/filters.js';
import { eventFilter } from './filter.js';
import type { EventMessage, EventPublisher, EventSource, EventSubscription, EventType } from './types.js';

/** How many past events a subscriber with `since` can still get (dockerd's eventsLimit). */
export const EVENTS_LIMIT = 256;

/** An event with its exact time and, once someone asked for it, its JSON text (encoded once for all subscribers). */
interface Stored { msg: EventMessage; nano: bigint; text?: string }

const origin = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
/** Wall-clock Unix nanoseconds, strictly increasing within the process. */
let lastNano = 0n;
function nowNano(): bigint {
  let n = origin + process.hrtime.bigint();
  if (n <= lastNano) n = lastNano + 1n;
  lastNano = n;
  return n;
}

/** One event as dockerd's json.Encoder writes it (timeNano exact), with its newline. */
export function encodeEvent(msg: EventMessage, nano?: bigint): string {
  const text = JSON.stringify(msg);
  if (nano === undefined) return text + '\n';
  // timeNano is the message's last key and its value a number: its digits are what follows the last colon
  return `${text.slice(0, text.lastIndexOf(':') + 1)}${nano}}\n`;
}

export class EventBus implements EventPublisher, EventSource {
  private readonly ring: Stored[] = [];
  private readonly subs = new Set<{ match: (e: EventMessage) => boolean; fn: ((e: EventMessage) => void) | null }>();
  private readonly stored = new WeakMap<EventMessage, Stored>();

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): void {
    const nano = nowNano();
    // written out rather than spread together: one object per event, keys in Go's order (legacy fields first)
    const Actor = { ID: id, Attributes: attributes };
    const time = Number(nano / 1_000_000_000n), timeNano = Number(nano);
    let msg: EventMessage;
    if (type === 'container' && attributes.image) msg = { status: action, id, from: attributes.image, Type: type, Action: action, Actor, scope: 'local', time, timeNano };
    else if (type === 'container' || type === 'image') msg = { status: action, id, Type: type, Action: action, Actor, scope: 'local', time, timeNano };
    else msg = { Type: type, Action: action, Actor, scope: 'local', time, timeNano };
    const st: Stored = { msg, nano };
    this.stored.set(msg, st);
    this.ring.push(st);
    if (this.ring.length > EVENTS_LIMIT) this.ring.shift();
    for (const s of this.subs) if (s.fn && s.match(msg)) s.fn(msg);
  }

  encode(msg: EventMessage): string {
    const st = this.stored.get(msg);
    if (!st) return encodeEvent(msg);
    return (st.text ??= encodeEvent(msg, st.nano));
  }

  subscribe(opts: { since?: bigint; until?: bigint; filters: Filters }): EventSubscription {
    const sub: { match: (e: EventMessage) => boolean; fn: ((e: EventMessage) => void) | null } = { match: eventFilter(opts.filters), fn: null };
    const past = opts.since === undefined && opts.until === undefined ? [] : this.ring
      .filter((s) => (opts.since === undefined || s.nano >= opts.since) && (opts.until === undefined || s.nano <= opts.until))
      .filter((s) => sub.match(s.msg))
      .map((s) => s.msg);
    this.subs.add(sub);
    return {
      past,
      onEvent: (fn) => { sub.fn = fn; },
      close: () => { this.subs.delete(sub); },
    };
  }
}
