/**
 * What the docker CLI's users hit first (issue 14 item 5), the docker CLI against wharfd and against Debian's
 * dockerd side by side: `run --rm` whose start fails (a host port in use) exits 125 at once and leaves nothing;
 * `kill -s` signals PID 1 only; `ps` filters (volume, publish, expose, since, before, health, is-task, network)
 * and `container prune` / `image prune` filters (until, label) give the same containers and the same errors.
 * Skipped when dockerd is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sameBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;
let work: string;
let busy: Server | undefined;
let busyPort = 0;

before(async () => {
  if (!haveDockerd) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-clifix-'));
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  await sameBusybox(w, r);
  busy = createServer();
  await new Promise<void>((res) => busy!.listen(0, '0.0.0.0', res));
  busyPort = (busy.address() as { port: number }).port;
});
after(async () => {
  busy?.close();
  await Promise.all([w?.docker(['rm', '-f', 'sig']), r?.docker(['rm', '-f', 'sig'])].filter(Boolean));
  await Promise.all([w?.stop(), r?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const both = () => [['wharfd', w!], ['dockerd', r!]] as const;
const names = (x: RunResult) => x.stdout.split('\n').filter(Boolean).sort().join(',');

test('run --rm whose start fails (host port in use): exit 125 at once, container removed', { skip: !haveDockerd }, async () => {
  for (const [engine, d] of both()) {
    const t0 = Date.now();
    const x = await d.docker(['run', '--rm', '--name', 'clash', '-p', `${busyPort}:80`, 'busybox', 'true'], { timeoutMs: 20_000 });
    assert.equal(x.code, 125, `${engine}: ${show(x)}`);
    assert.match(x.stderr, /address already in use|port is already allocated/, `${engine}: ${show(x)}`);
    assert.ok(Date.now() - t0 < 15_000, `${engine}: took ${Date.now() - t0} ms`);
    const ps = await d.docker(['ps', '-a', '--filter', 'name=clash', '--format', '{{.Names}}']);
    assert.equal(ps.stdout, '', `${engine}: the container is gone: ${show(ps)}`);
  }
});

test('kill -s USR1 signals PID 1 only, as dockerd', { skip: !haveDockerd }, async () => {
  const script = 'trap "echo parent-usr1" USR1; sh -c \'trap "echo child-usr1" USR1; while :; do sleep 0.1; done\' & echo ready; while :; do sleep 0.1; done';
  const out: Record<string, string> = {};
  for (const [engine, d] of both()) {
    const s = await d.docker(['run', '-d', '--name', 'sig', 'busybox', 'sh', '-c', script]);
    assert.equal(s.code, 0, `${engine}: ${show(s)}`);
    await waitFor(async () => (await d.docker(['logs', 'sig'])).stdout.includes('ready'), { timeout: 10_000 });
    const k = await d.docker(['kill', '-s', 'USR1', 'sig']);
    assert.equal(k.code, 0, `${engine}: ${show(k)}`);
    await waitFor(async () => (await d.docker(['logs', 'sig'])).stdout.includes('parent-usr1'), { timeout: 10_000 });
    await new Promise((res) => setTimeout(res, 300)); // a child signalled too would have printed by now
    out[engine] = (await d.docker(['logs', 'sig'])).stdout;
    const running = await d.docker(['inspect', '-f', '{{.State.Running}}', 'sig']);
    assert.equal(running.stdout.trim(), 'true', `${engine}: the container survives USR1`);
    await d.docker(['rm', '-f', 'sig']);
  }
  assert.equal(out.wharfd, 'ready\nparent-usr1\n');
  assert.equal(out.wharfd, out.dockerd);
});

test('ps and prune filters: the same containers and errors as dockerd', { skip: !haveDockerd }, async () => {
  for (const [engine, d] of both()) {
    const mk = async (args: string[]) => { const x = await d.docker(args); assert.equal(x.code, 0, `${engine}: ${show(x)}`); };
    await mk(['volume', 'create', 'fvol']);
    await mk(['create', '--name', 'f1', '--label', 'tier=web', '-v', 'fvol:/data', '--expose', '7000', 'busybox', 'true']);
    await mk(['create', '--name', 'f2', '--label', 'tier=db', '-v', '/tmp:/hosttmp', 'busybox', 'true']);
    await mk(['run', '-d', '--name', 'f3', '-p', '127.0.0.1::8080', 'busybox', 'sleep', '30']);
    await mk(['create', '--name', 'f4', '--label', 'keep=yes', 'busybox', 'true']);
    await mk(['commit', 'f4', 'derived:1']);
    await mk(['create', '--name', 'f5', 'derived:1', 'true']);
  }
  const cases: string[][] = [
    ['volume=fvol'], ['volume=/data'], ['volume=/hosttmp'], ['volume=none'],
    ['expose=7000'], ['expose=8080/tcp'], ['expose=7000-8080'], ['publish=8080'],
    ['since=f2'], ['before=f2'], ['since=f1', 'before=f4'],
    ['health=none'], ['health=healthy'], ['is-task=false'], ['is-task=true'],
    ['network=bridge'], ['network=none'], ['label=tier'], ['label=tier=db'], ['name=f[12]'],
    ['status=running'], ['exited=0'],
    ['ancestor=busybox'], ['ancestor=derived:1'], ['ancestor=nosuch'], ['ancestor=derived:1', 'label=keep'],
  ];
  for (const c of cases) {
    const args = ['ps', '-a', '--format', '{{.Names}}', ...c.flatMap((f) => ['--filter', f])];
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.equal(a.code, 0, `wharfd ${c}: ${show(a)}`);
    assert.equal(names(a), names(b), `ps --filter ${c.join(' ')}`);
  }
  for (const c of [['health=ok'], ['is-task=maybe'], ['since=nosuch'], ['publish=80:80'], ['expose=90-80'], ['bogus=1']]) {
    const args = ['ps', '-a', ...c.flatMap((f) => ['--filter', f])];
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.notEqual(b.code, 0, `dockerd refuses ${c}`);
    assert.deepEqual([a.code, a.stderr], [b.code, b.stderr], `ps --filter ${c}`);
  }
  // prune: label!, label and until narrow what goes
  for (const c of [['label!=keep'], ['until=1h'], ['label=tier=web', 'until=0s'], ['bogus=1']]) {
    const args = ['container', 'prune', '-f', ...c.flatMap((f) => ['--filter', f])];
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.equal(a.code, b.code, `container prune ${c}: ${show(a)} / ${show(b)}`);
    if (b.code !== 0) { assert.equal(a.stderr, b.stderr); continue; }
    const ids = (x: RunResult) => x.stdout.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l)).length;
    assert.equal(ids(a), ids(b), `container prune ${c}: ${show(a)} / ${show(b)}`);
    const left = ['ps', '-a', '--format', '{{.Names}}'];
    assert.equal(names(await w!.docker(left)), names(await r!.docker(left)), `left after prune ${c}`);
  }
  for (const c of [['until=1h'], ['label=x'], ['label!=x'], ['bogus=1']]) {
    const args = ['image', 'prune', '-f', ...c.flatMap((f) => ['--filter', f])];
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.deepEqual([a.code, a.stderr], [b.code, b.stderr], `image prune ${c}`);
  }
  for (const [, d] of both()) await d.docker(['rm', '-f', 'f1', 'f2', 'f3', 'f4', 'f5']);
});
