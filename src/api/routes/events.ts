/** GET /events: the daemon's event stream (past events for since/until, then live ones until `until`). */
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import type { EventsBackend } from '../backend.js';
import { parseFilters, type Router } from '../router.js';

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
    for (const e of sub.past) res.write(events.encode(e));
    if (onlyPast) { sub.close(); res.end(); return; }
    // events published in one turn of the loop (a container's die, its volumes' unmount…) go out as one write
    let corked = false;
    sub.onEvent((e) => {
      if (res.destroyed) return;
      if (!corked) { corked = true; res.cork(); process.nextTick(() => { corked = false; res.uncork(); }); }
      res.write(events.encode(e));
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = () => { if (timer) clearTimeout(timer); sub.close(); if (!res.writableEnded) res.end(); };
    if (until !== undefined) timer = setTimeout(finish, Number((until - now) / 1_000_000n));
    res.on('close', finish);
    req.on('close', () => { if (req.socket.destroyed) finish(); });
  });
}
