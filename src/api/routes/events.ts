/** GET /events: the daemon's event stream (past events for since/until, then live ones until `until`). */
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import type { EventsBackend } from '../backend.js';
import { type Router } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

/**
 * Go's timetypes.ParseTimestamps as dockerd's events route uses it: "SECONDS[.FRACTION]" → Unix nanoseconds;
 * "" → undefined. A bad number is a 400 with strconv's message.
 */
export function parseEventTime(v: string | null): bigint | undefined {
  if (v === null || v === '') return undefined;
  const [s, frac] = v.split('.', 2) as [string, string | undefined];
  // dockerd answers 500 here (the strconv error is not typed as a bad parameter)
  const bad = (x: string) => new SystemError(`strconv.ParseInt: parsing ${JSON.stringify(x)}: invalid syntax`);
  if (!/^[+-]?\d+$/.test(s)) throw bad(s);
  let nano = BigInt(s) * 1_000_000_000n;
  if (frac !== undefined) {
    if (!/^[+-]?\d+$/.test(frac)) throw bad(frac);
    const digits = frac.replace(/^[+-]/, '');
    nano += digits.length <= 9 ? BigInt(digits) * 10n ** BigInt(9 - digits.length) : BigInt(digits.slice(0, 9));
  }
  return nano;
}

/** The longest an event waits for others of the same burst before it is written (ms). */
export const COALESCE_MS = 2;

export function eventRoutes(r: Router, events: EventsBackend): void {
  r.get('/events', ({ req, res, query }) => {
    const since = parseEventTime(query.get('since'));
    const until = parseEventTime(query.get('until'));
    if (until !== undefined && since !== undefined && until < since) {
      throw new InvalidParameterError(`\`since\` time (${query.get('since')}) cannot be after \`until\` time (${query.get('until')})`);
    }
    const filters = parseFilters(query.get('filters'));
    const now = BigInt(Date.now()) * 1_000_000n;
    const onlyPast = until !== undefined && until < now;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const sub = events.subscribe({ ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), filters });
    if (sub.past.length) res.write(sub.past.map((e) => events.encode(e)).join(''));
    if (onlyPast) { sub.close(); res.end(); return; }
    // Writes are coalesced: events published in one turn of the loop (a container's die, its volumes' unmount…)
    // go out as one chunk, and while events come in a burst (a write less than COALESCE_MS ago) the next chunk
    // waits for the rest of that window, so a subscriber gets at most one write(2) per window instead of one per
    // event (each write wakes the reader, which on a busy machine costs more than the event itself). A lone
    // event is written at once. The text is joined here rather than corked: ServerResponse.uncork sends a
    // chunk's size line, data and CRLF as three socket writes, one res.write of a joined string is one writev.
    let pending = '';
    let scheduled = false;
    let lastWrite = -Infinity;
    const flush = () => {
      scheduled = false;
      lastWrite = performance.now();
      const text = pending;
      pending = '';
      if (text !== '' && !res.destroyed && !res.writableEnded) res.write(text);
    };
    sub.onEvent((e) => {
      if (res.destroyed) return;
      pending += events.encode(e);
      if (scheduled) return;
      scheduled = true;
      const since = performance.now() - lastWrite;
      if (since >= COALESCE_MS) process.nextTick(flush);
      else setTimeout(flush, COALESCE_MS - since);
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = () => { if (timer) clearTimeout(timer); sub.close(); if (!res.writableEnded) { flush(); res.end(); } };
    if (until !== undefined) timer = setTimeout(finish, Number((until - now) / 1_000_000n));
    res.on('close', finish);
    req.on('close', () => { if (req.socket.destroyed) finish(); });
  });
}
