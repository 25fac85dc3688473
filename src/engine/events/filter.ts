/**
 * Which events a `GET /events?filters=` subscription receives: dockerd's events filter (daemon/events/filter.go),
 * every part ANDed, each part true when its filter is absent.
 */
import { exactMatch, fuzzyMatch, matchKVList, type Filters } from '../../lib/filters.js';
import type { EventMessage } from './types.js';

/** Actions whose filter values match by prefix ("health_status" matches "health_status: healthy"). */
const PREFIX_ACTIONS = ['health_status', 'exec_create', 'exec_start'];

/** "name:tag" → "name" (not a port: the colon must come after the last slash). */
function stripTag(s: string): string {
  const i = s.lastIndexOf(':');
  return i > s.lastIndexOf('/') ? s.slice(0, i) : s;
}

/** Filters whose values match the actor's ID or its `name` attribute, by prefix. */
const NAME_KEYS = ['daemon', 'container', 'plugin', 'volume', 'network', 'node', 'service', 'secret', 'config'];

/**
 * The filter as a predicate, made once per subscription: only the filters present are checked for each event (a
 * subscriber with one filter, or none, pays for that one, not for all thirteen).
 */
export function eventFilter(f: Filters): (ev: EventMessage) => boolean {
  const present = (k: string) => (f[k]?.length ?? 0) > 0;
  const checks: ((ev: EventMessage) => boolean)[] = [];
  if (present('event')) {
    checks.push(f.event!.some((v) => PREFIX_ACTIONS.includes(v))
      ? (ev) => fuzzyMatch(f, 'event', ev.Action)
      : (ev) => exactMatch(f, 'event', ev.Action));
  }
  if (present('type')) checks.push((ev) => exactMatch(f, 'type', ev.Type));
  if (present('scope')) checks.push((ev) => exactMatch(f, 'scope', ev.scope));
  for (const key of NAME_KEYS) {
    if (present(key)) checks.push((ev) => fuzzyMatch(f, key, ev.Actor.ID) || fuzzyMatch(f, key, ev.Actor.Attributes.name ?? ''));
  }
  if (present('image')) {
    checks.push((ev) => {
      const imageName = (ev.Type === 'image' ? ev.Actor.Attributes.name : ev.Actor.Attributes.image) ?? '';
      return exactMatch(f, 'image', ev.Actor.ID) || exactMatch(f, 'image', imageName)
        || exactMatch(f, 'image', stripTag(ev.Actor.ID)) || exactMatch(f, 'image', stripTag(imageName));
    });
  }
  if (present('label')) checks.push((ev) => matchKVList(f, 'label', ev.Actor.Attributes));
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (ev) => checks.every((c) => c(ev));
}

/** Whether one event passes the filters (eventFilter(f)(ev)). */
export function eventMatches(f: Filters, ev: EventMessage): boolean {
  return eventFilter(f)(ev);
}
