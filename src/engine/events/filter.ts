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

export function eventMatches(f: Filters, ev: EventMessage): boolean {
  const a = ev.Actor.Attributes;
  const byName = (key: string) => fuzzyMatch(f, key, ev.Actor.ID) || fuzzyMatch(f, key, a.name ?? '');
  const action = (f.event ?? []).some((v) => PREFIX_ACTIONS.includes(v)) ? fuzzyMatch(f, 'event', ev.Action) : exactMatch(f, 'event', ev.Action);
  const imageName = (ev.Type === 'image' ? a.name : a.image) ?? '';
  const image = exactMatch(f, 'image', ev.Actor.ID) || exactMatch(f, 'image', imageName)
    || exactMatch(f, 'image', stripTag(ev.Actor.ID)) || exactMatch(f, 'image', stripTag(imageName));
  return action && exactMatch(f, 'type', ev.Type) && exactMatch(f, 'scope', ev.scope)
    && byName('daemon') && byName('container') && byName('plugin') && byName('volume') && byName('network')
    && byName('node') && byName('service') && byName('secret') && byName('config')
    && image && matchKVList(f, 'label', a);
}
