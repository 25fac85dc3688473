/**
 * The daemon's event log: a ring of the last events (dockerd keeps 256) for `since` queries, and live
 * subscribers. Times are wall-clock nanoseconds, kept as bigint (a Unix time in ns exceeds 2^53).
 */
import type { Filters } from '../../lib/filters.js';
import { eventMatches } from './filter.js';
import type { EventMessage, EventPublisher, EventSource, EventSubscription, EventType } from './types.js';

/** How many past events a subscriber with `since` can still get (dockerd's eventsLimit). */
export const EVENTS_LIMIT = 256;

interface Stored { msg: EventMessage; nano: bigint }

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
  const text = JSON.stringify({ ...msg, timeNano: 0 });
  return (nano === undefined ? text : text.replace(/"timeNano":0}$/, `"timeNano":${nano}}`)) + '\n';
}

export class EventBus implements EventPublisher, EventSource {
  private readonly ring: Stored[] = [];
  private readonly subs = new Set<{ f: Filters; fn: ((e: EventMessage, nano: bigint) => void) | null }>();
  private readonly nanos = new WeakMap<EventMessage, bigint>();

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): void {
    const nano = nowNano();
    const msg: EventMessage = {
      ...(type === 'container' || type === 'image' ? { status: action, id } : {}),
      ...(type === 'container' && attributes.image ? { from: attributes.image } : {}),
      Type: type, Action: action, Actor: { ID: id, Attributes: { ...attributes } }, scope: 'local',
      time: Number(nano / 1_000_000_000n), timeNano: Number(nano),
    };
    this.nanos.set(msg, nano);
    this.ring.push({ msg, nano });
    if (this.ring.length > EVENTS_LIMIT) this.ring.shift();
    for (const s of this.subs) if (s.fn && eventMatches(s.f, msg)) s.fn(msg, nano);
  }

  encode(msg: EventMessage): string { return encodeEvent(msg, this.nanos.get(msg)); }

  subscribe(opts: { since?: bigint; until?: bigint; filters: Filters }): EventSubscription {
    const past = opts.since === undefined && opts.until === undefined ? [] : this.ring
      .filter((s) => (opts.since === undefined || s.nano >= opts.since) && (opts.until === undefined || s.nano <= opts.until))
      .filter((s) => eventMatches(opts.filters, s.msg))
      .map((s) => s.msg);
    const sub: { f: Filters; fn: ((e: EventMessage, nano: bigint) => void) | null } = { f: opts.filters, fn: null };
    this.subs.add(sub);
    return {
      past,
      onEvent: (fn) => { sub.fn = fn; },
      close: () => { this.subs.delete(sub); },
    };
  }
}
