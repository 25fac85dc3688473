/**
 * engine/events: the event log's ring and `since`/`until`, dockerd's filters (prefix matches for exec and
 * health actions, container names and ID prefixes, image names with or without tag, labels), the exact
 * timeNano of the encoding, and the route's timestamp parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus, EVENTS_LIMIT, eventMatches, type EventMessage } from '../../src/engine/events/index.js';
import { parseEventTime } from '../../src/api/routes/events.js';

const ev = (type: EventMessage['Type'], action: string, id: string, attrs: Record<string, string> = {}): EventMessage => ({
  Type: type, Action: action, Actor: { ID: id, Attributes: attrs }, scope: 'local', time: 0, timeNano: 0,
});

test('filters: dockerd\'s matching, every filter ANDed', () => {
  const die = ev('container', 'die', 'abc123', { name: 'web', image: 'nginx:1.25', team: 'blue' });
  assert.equal(eventMatches({}, die), true);
  assert.equal(eventMatches({ container: ['web'] }, die), true);
  assert.equal(eventMatches({ container: ['abc'] }, die), true, 'an ID prefix');
  assert.equal(eventMatches({ container: ['other'] }, die), false);
  assert.equal(eventMatches({ image: ['nginx'] }, die), true, 'the image name without its tag');
  assert.equal(eventMatches({ image: ['nginx:1.25'] }, die), true);
  assert.equal(eventMatches({ image: ['redis'] }, die), false);
  assert.equal(eventMatches({ label: ['team=blue'] }, die), true);
  assert.equal(eventMatches({ label: ['team=red'] }, die), false);
  assert.equal(eventMatches({ event: ['die'], type: ['container'] }, die), true);
  assert.equal(eventMatches({ event: ['di'] }, die), false, 'an event name matches exactly');
  assert.equal(eventMatches({ type: ['image'] }, die), false);
  assert.equal(eventMatches({ volume: ['v1'] }, die), false, 'a volume filter leaves out container events');
  const health = ev('container', 'health_status: healthy', 'abc123', { name: 'web' });
  assert.equal(eventMatches({ event: ['health_status'] }, health), true, 'health_status matches by prefix');
  assert.equal(eventMatches({ event: ['exec_start'] }, ev('container', 'exec_start: sh -c true', 'x')), true);
  assert.equal(eventMatches({ image: ['localhost:5000/app'] }, ev('image', 'tag', 'sha256:1', { name: 'localhost:5000/app:v1' })), true);
  assert.equal(eventMatches({ volume: ['v1'] }, ev('volume', 'create', 'v1', { driver: 'local' })), true);
});

test('the bus: since/until from the ring (at most EVENTS_LIMIT), live events filtered, exact timeNano', () => {
  const bus = new EventBus();
  const t0 = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < EVENTS_LIMIT + 10; i++) bus.publish('container', 'create', `c${i}`, { name: `n${i}` });
  const none = bus.subscribe({ filters: {} });
  assert.deepEqual(none.past, [], 'no since and no until: live events only');
  none.close();
  const all = bus.subscribe({ since: t0 - 1_000_000_000n, filters: {} });
  assert.equal(all.past.length, EVENTS_LIMIT);
  assert.equal(all.past[0]!.Actor.ID, 'c10', 'the oldest ones left the ring');
  all.close();
  const one = bus.subscribe({ since: t0 - 1_000_000_000n, filters: { container: ['n5'] } });
  // c5 left the ring; names match by prefix (dockerd's FuzzyMatch): n50…n59 are still there
  assert.deepEqual(one.past.map((e) => e.Actor.ID), Array.from({ length: 10 }, (_, i) => `c5${i}`));
  const live: string[] = [];
  one.onEvent((e) => live.push(e.Actor.ID));
  bus.publish('container', 'start', 'x', { name: 'n5' });
  bus.publish('container', 'start', 'y', { name: 'other' });
  one.close();
  bus.publish('container', 'stop', 'x', { name: 'n5' });
  assert.deepEqual(live, ['x']);
  const until = bus.subscribe({ until: t0 - 1_000_000_000n, filters: {} });
  assert.deepEqual(until.past, []);
  // the encoding carries the nanoseconds exactly, a newline after
  const sub = bus.subscribe({ since: t0, filters: { container: ['x'] } });
  const line = bus.encode(sub.past[0]!);
  const nano = /"timeNano":(\d+)}\n$/.exec(line)![1]!;
  assert.ok(BigInt(nano) >= t0);
  assert.equal(JSON.parse(line).time, Number(BigInt(nano) / 1_000_000_000n));
  assert.deepEqual(Object.keys(JSON.parse(line)), ['status', 'id', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
});

test('parseEventTime: seconds with an optional fraction, as Go\'s timetypes.ParseTimestamps', () => {
  assert.equal(parseEventTime(null), undefined);
  assert.equal(parseEventTime(''), undefined);
  assert.equal(parseEventTime('12'), 12_000_000_000n);
  assert.equal(parseEventTime('12.5'), 12_500_000_000n);
  assert.equal(parseEventTime('12.000000001'), 12_000_000_001n);
  assert.throws(() => parseEventTime('abc'), /strconv.ParseInt: parsing "abc": invalid syntax/);
  assert.throws(() => parseEventTime('1.x'), /parsing "x"/);
});

test('GET /events: a burst of events reaches the subscriber complete and in order in few writes; a lone event at once', async () => {
  const { createServer } = await import('node:http');
  const { request } = await import('node:http');
  const { Router } = await import('../../src/api/router.js');
  const { eventRoutes, COALESCE_MS } = await import('../../src/api/routes/events.js');
  const bus = new EventBus();
  const r = new Router();
  eventRoutes(r, bus);
  let writes = 0;
  const server = createServer((req, res) => {
    const sock = res.socket!;
    const w = sock.write.bind(sock);
    const wv = (sock as unknown as { _writev: (...a: unknown[]) => void })._writev.bind(sock);
    sock.write = ((...a: Parameters<typeof sock.write>) => { writes++; return w(...a); }) as typeof sock.write;
    (sock as unknown as { _writev: unknown })._writev = (...a: unknown[]) => { writes++; return wv(...a); };
    const m = r.match('GET', '/events')!;
    void m.handler({ req, res, params: m.params, query: new URL(req.url!, 'http://x').searchParams } as never);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  const lines: string[] = [];
  let subscribed!: () => void;
  const headers = new Promise<void>((ok) => { subscribed = ok; });
  const got = new Promise<void>((ok) => {
    request({ port, host: '127.0.0.1', path: '/events?filters=' + encodeURIComponent('{"type":["container"]}') }, (res) => {
      subscribed(); // the route subscribes in the same turn as it sends the headers
      let buf = '';
      res.on('data', (b: Buffer) => { buf += b; const p = buf.split('\n'); buf = p.pop()!; lines.push(...p); if (lines.length >= 301) ok(); });
    }).end();
  });
  // waiting for the headers, not a fixed time: on a loaded machine 100 ms was sometimes too short, the lone event was
  // published before anyone subscribed and the test waited for it forever
  await headers;
  writes = 0;
  const t0 = performance.now();
  bus.publish('container', 'start', 'lone');
  while (lines.length < 1) await new Promise((ok) => setImmediate(ok));
  assert.ok(performance.now() - t0 < 50, 'a lone event is written without waiting');
  await new Promise((ok) => setTimeout(ok, COALESCE_MS * 3));
  writes = 0;
  // 300 events, one per turn of the loop, as 300 requests in a row would publish them
  for (let i = 0; i < 300; i++) { bus.publish('container', 'exec_create', `c${i}`); await new Promise((ok) => setImmediate(ok)); }
  bus.publish('image', 'pull', 'filtered-out');
  await got;
  await new Promise((ok) => setTimeout(ok, COALESCE_MS * 3));
  assert.equal(lines.length, 301);
  assert.deepEqual(lines.slice(1).map((l) => (JSON.parse(l) as EventMessage).Actor.ID), Array.from({ length: 300 }, (_, i) => `c${i}`));
  assert.ok(writes < 150, `300 events in a burst took ${writes} socket writes`);
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});
