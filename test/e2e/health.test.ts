/**
 * Healthchecks (issue 14 item 3): `--health-*` flags and an image's HEALTHCHECK run as probes; State.Health
 * (Status, FailingStreak, Log), `health_status` events, `ps` showing `(healthy)` / `(health: starting)`, the
 * `health` filter of GET /containers/json, a probe over its timeout — through the docker CLI and dockerode.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
let docker: Docker;
let work: string;

before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.sock });
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-health-'));
  await loadBusybox(d);
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const health = async (name: string) => (await docker.getContainer(name).inspect()).State.Health as { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string; Start: string; End: string }[] } | undefined;
const psNames = async (filter: string) => (await d.docker(['ps', '--filter', filter, '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();

test('--health-cmd: starting, then healthy, then unhealthy after Retries failures; ps, filters and events follow', async () => {
  const since = String(Date.now() / 1000);
  const r = await d.docker(['run', '-d', '--name', 'h1', '--health-cmd', 'test -f /tmp/ok && echo fine', '--health-interval', '300ms',
    '--health-retries', '2', 'busybox', 'sh', '-c', 'touch /tmp/ok; sleep 1000']);
  assert.equal(r.code, 0, show(r));
  const slow = await d.docker(['run', '-d', '--name', 'slow', '--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'sleep', '1000']);
  assert.equal(slow.code, 0, show(slow));
  assert.match((await d.docker(['ps', '--filter', 'name=slow', '--format', '{{.Status}}'])).stdout, /^Up .* \(health: starting\)\n$/);
  await waitFor(async () => (await health('h1'))?.Status === 'healthy', { message: 'h1 healthy' });
  const h = (await health('h1'))!;
  assert.equal(h.FailingStreak, 0);
  assert.deepEqual([h.Log[0]!.ExitCode, h.Log[0]!.Output], [0, 'fine\n']);
  assert.ok(Date.parse(h.Log[0]!.End) >= Date.parse(h.Log[0]!.Start));
  assert.match((await d.docker(['ps', '--filter', 'name=h1', '--format', '{{.Status}}'])).stdout, /^Up .* \(healthy\)\n$/);
  assert.deepEqual(await psNames('health=healthy'), ['h1']);
  assert.deepEqual(await psNames('health=starting'), ['slow']);
  assert.deepEqual(await psNames('health=none'), []);
  // the test starts failing: unhealthy once two probes in a row failed
  assert.equal((await d.docker(['exec', 'h1', 'rm', '/tmp/ok'])).code, 0);
  await waitFor(async () => (await health('h1'))?.Status === 'unhealthy', { message: 'h1 unhealthy' });
  const u = (await health('h1'))!;
  assert.ok(u.FailingStreak >= 2, JSON.stringify(u));
  assert.equal(u.Log.at(-1)!.ExitCode, 1);
  assert.ok(u.Log.length <= 5);
  assert.deepEqual(await psNames('health=unhealthy'), ['h1']);
  const bad = await d.api('GET', `/containers/json?filters=${encodeURIComponent('{"health":["bogus"]}')}`);
  assert.deepEqual([bad.status, JSON.parse(bad.body).message], [400, 'Unrecognised filter value for health: bogus']);
  // one event per change of status ("health_status" matches them by prefix, as dockerd's filter)
  const ev = await d.docker(['events', '--since', since, '--until', String(Date.now() / 1000), '--filter', 'event=health_status', '--format', '{{.Actor.Attributes.name}} {{.Action}}']);
  assert.equal(ev.code, 0, show(ev));
  assert.deepEqual(ev.stdout.split('\n').filter(Boolean), ['h1 health_status: healthy', 'h1 health_status: unhealthy']);
  await d.docker(['rm', '-f', 'h1', 'slow']);
});

test('an image\'s HEALTHCHECK runs; a probe over its timeout fails with dockerd\'s message; --no-healthcheck turns it off', async () => {
  const ctx = join(work, 'img');
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nHEALTHCHECK --interval=300ms --timeout=200ms --retries=1 CMD sleep 5\nCMD ["sleep", "1000"]\n');
  const b = await d.docker(['build', '-q', '-t', 'hc:1', ctx]);
  assert.equal(b.code, 0, show(b));
  const r = await d.docker(['run', '-d', '--name', 'h2', 'hc:1']);
  assert.equal(r.code, 0, show(r));
  await waitFor(async () => (await health('h2'))?.Status === 'unhealthy', { message: 'h2 unhealthy' });
  const h = (await health('h2'))!;
  assert.deepEqual([h.Log[0]!.ExitCode, h.Log[0]!.Output], [-1, 'Health check exceeded timeout (200ms)']);
  assert.ok(Date.parse(h.Log[0]!.End) - Date.parse(h.Log[0]!.Start) < 2000, 'the probe was killed at its timeout');
  const off = await d.docker(['run', '-d', '--name', 'h3', '--no-healthcheck', 'hc:1']);
  assert.equal(off.code, 0, show(off));
  assert.equal(await health('h3'), undefined);
  assert.deepEqual(await psNames('health=none'), ['h3']);
  // stopped, the container keeps its last health; restarted, it is starting again
  assert.equal((await d.docker(['stop', '-t', '0', 'h2'])).code, 0);
  assert.equal((await health('h2'))!.Status, 'unhealthy');
  assert.equal((await d.docker(['start', 'h2'])).code, 0);
  assert.equal((await health('h2'))!.Status, 'starting');
  await d.docker(['rm', '-f', 'h2', 'h3']);
});
