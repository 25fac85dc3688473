/**
 * GET /events (issue 14 item 4): past events by since/until, the live stream, dockerd's filters, and the shape of
 * a message — through `docker events` / `docker system events --format`, the raw API and dockerode. The expected
 * sequence is what the reference dockerd 20.10 logged for the same commands (network events left out: the
 * networks module publishes its own).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { sleep, waitFor } from '../support/wait.js';

let d: Daemon;
let docker: Docker;

before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.sock });
  await loadBusybox(d);
});
after(async () => {
  await d?.stop();
});

/** "seconds.nanoseconds" for `since`/`until`, as the docker CLI sends them. */
const stamp = (ms: number) => `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1_000_000).padStart(9, '0')}`;

test('docker events --since/--until lists what happened, in order, with dockerd\'s actions and attributes', async () => {
  const t0 = Date.now();
  await sleep(10); // the first event must come strictly after `since`
  const steps: string[][] = [
    ['create', '--name', 'c1', '--label', 'a=b', 'busybox', 'sleep', '100'], ['start', 'c1'], ['exec', 'c1', 'true'],
    ['pause', 'c1'], ['unpause', 'c1'], ['rename', 'c1', 'c2'], ['commit', 'c2', 'cm:1'], ['tag', 'cm:1', 'cm:2'],
    ['rmi', 'cm:2'], ['kill', 'c2'], ['rm', 'c2'], ['volume', 'create', 'v1'], ['volume', 'rm', 'v1'],
  ];
  for (const s of steps) {
    const r = await d.docker(s);
    assert.equal(r.code, 0, `${s.join(' ')}: ${show(r)}`);
  }
  const until = Date.now();
  const r = await d.docker(['events', '--since', stamp(t0), '--until', stamp(until), '--filter', 'type=container', '--filter', 'type=image',
    '--filter', 'type=volume', '--format', '{{.Type}} {{.Action}} {{if eq .Type "container"}}{{.Actor.Attributes.name}}{{else}}{{.Actor.ID}}{{end}}']);
  assert.equal(r.code, 0, show(r));
  const img = (await d.docker(['inspect', '-f', '{{.Id}}', 'cm:1'])).stdout.trim();
  assert.deepEqual(r.stdout.split('\n').filter(Boolean), [
    'container create c1', 'container start c1', 'container exec_create: true  c1', 'container exec_start: true  c1',
    'container exec_die c1', 'container pause c1', 'container unpause c1', 'container rename c2',
    // as dockerd: pause, tag, commit, unpause (the pause is held while the image is written; checked with
    // WHARF_E2E_DAEMON=dockerd)
    'container pause c2', `image tag ${img}`, 'container commit c2', 'container unpause c2',
    `image tag ${img}`, `image untag ${img}`, 'container kill c2', 'container die c2', 'container destroy c2',
    'volume create v1', 'volume destroy v1',
  ]);
});

test('the JSON shape: legacy status/id/from, Type, Action, Actor, scope, time and an exact timeNano; filters', async () => {
  const t0 = Date.now();
  await sleep(10);
  const run = await d.docker(['run', '--name', 'shape', '--label', 'team=blue', 'busybox', 'sh', '-c', 'exit 4']);
  assert.equal(run.code, 4, show(run));
  assert.equal((await d.docker(['rm', 'shape'])).code, 0);
  const q = (f: Record<string, string[]>) => `/events?since=${stamp(t0)}&until=${stamp(Date.now())}&filters=${encodeURIComponent(JSON.stringify(f))}`;
  const res = await d.api('GET', q({ event: ['die'] }));
  assert.equal(res.status, 200);
  const lines = res.body.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, res.body);
  const raw = lines[0]!;
  const ev = JSON.parse(raw) as Record<string, any>;
  assert.deepEqual(Object.keys(ev), ['status', 'id', 'from', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
  assert.equal(ev.status, 'die');
  assert.equal(ev.from, 'busybox');
  assert.equal(ev.scope, 'local');
  assert.deepEqual(ev.Actor.Attributes, { exitCode: '4', image: 'busybox', name: 'shape', team: 'blue' });
  // timeNano written exactly (more digits than a double holds), its seconds equal `time`
  const nano = /"timeNano":(\d+)}$/.exec(raw)![1]!;
  assert.equal(nano.length, 19);
  assert.equal(nano.slice(0, 10), String(ev.time));
  assert.ok(BigInt(nano) >= BigInt(t0) * 1_000_000n);
  // label=, container= (by name), type= and image= filters; a filter that matches nothing
  const actions = async (f: Record<string, string[]>) => (await d.api('GET', q(f))).body.split('\n').filter(Boolean).map((l) => JSON.parse(l).Action as string);
  assert.deepEqual(await actions({ label: ['team=blue'] }), ['create', 'attach', 'start', 'die', 'destroy']);
  assert.deepEqual(await actions({ container: ['shape'], event: ['start', 'destroy'] }), ['start', 'destroy']);
  assert.deepEqual(await actions({ image: ['busybox'], event: ['create'] }), ['create']);
  assert.deepEqual(await actions({ label: ['team=red'] }), []);
  assert.deepEqual(await actions({ type: ['volume'], container: ['shape'] }), []);
  // dockerd's answers to bad times
  const bad = await d.api('GET', '/events?since=abc');
  assert.deepEqual([bad.status, JSON.parse(bad.body).message], [500, 'strconv.ParseInt: parsing "abc": invalid syntax']);
  const inverted = await d.api('GET', '/events?since=10&until=5');
  assert.deepEqual([inverted.status, JSON.parse(inverted.body).message], [400, '`since` time (10) cannot be after `until` time (5)']);
});

test('a build\'s -t logs an image tag event, as dockerd\'s', async () => {
  const ctx = await mkdtemp(join(tmpdir(), 'wharf-e2e-events-build-'));
  try {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nLABEL built=yes\n');
    const t0 = Date.now();
    await sleep(10);
    const b = await d.docker(['build', '-q', '-t', 'built:1', ctx]);
    assert.equal(b.code, 0, show(b));
    const ev = await d.docker(['events', '--since', stamp(t0), '--until', stamp(Date.now()), '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}']);
    assert.equal(ev.stdout, `tag ${b.stdout.trim()} {"built":"yes","name":"built:1"}\n`);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test('live stream through dockerode: events arrive as they happen, filtered, and a future `until` ends the stream', async () => {
  const stream = await docker.getEvents({ filters: { container: ['live'] } }) as NodeJS.ReadableStream & { destroy(): void };
  const seen: string[] = [];
  let buf = '';
  stream.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { seen.push(JSON.parse(buf.slice(0, i)).Action); buf = buf.slice(i + 1); }
  });
  try {
    const other = await d.docker(['run', '--rm', 'busybox', 'true']); // not "live": filtered out
    assert.equal(other.code, 0, show(other));
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'exit 0'], name: 'live' });
    await c.start();
    await c.wait();
    await c.remove();
    await waitFor(() => seen.includes('destroy'), { message: 'the destroy event' });
    assert.deepEqual(seen, ['create', 'start', 'die', 'destroy']);
  } finally {
    stream.destroy();
  }
  // `docker system events` with an until in the future returns by itself after it passed
  const t0 = Date.now();
  // until 4 s ahead: with 1.5 s, a `docker create` on a machine at load 40 came after it (the event was then rightly not listed)
  const ev = d.docker(['system', 'events', '--since', stamp(t0), '--until', stamp(t0 + 4000), '--format', '{{json .}}']);
  await sleep(200); // the subscription is taken before the container is made
  assert.equal((await d.docker(['create', '--name', 'later', 'busybox'])).code, 0);
  const out = await ev;
  assert.equal(out.code, 0, show(out));
  const got = out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(got.map((e) => `${e.Type} ${e.Action} ${e.Actor.Attributes.name}`), ['container create later']);
  assert.ok(Date.now() - t0 >= 3900, 'the stream ended at until, not before');
  await d.docker(['rm', 'later']);
});
