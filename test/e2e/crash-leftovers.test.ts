/**
 * End to end: what a crash leaves behind is repaired.
 *  - wharfd killed (SIGKILL) while `commit` reads a large container change with the container paused for it:
 *    after the restart the container is running again (State.Paused false, the runtime's state "running"),
 *    while a container the user paused stays paused across the same crash.
 *  - the `wharf registry serve` front process killed (SIGKILL): its server processes go with it and the port is
 *    free again within seconds (no orphan keeps it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { freePort, startRegistry, type Registry } from '../support/registry.js';
import { pushBusybox } from '../support/oci-images.js';
import { NODE, WHARF_CLI, run, show } from '../support/cli.js';

let reg: Registry;
let d: Daemon;
let image: string;

before(async () => {
  [reg, d] = await Promise.all([startRegistry(), startDaemon()]);
  image = `${reg.host}/library/busybox:latest`;
  await pushBusybox(reg.host, 'library/busybox:latest');
  const p = await d.wharf(['pull', image]);
  assert.equal(p.code, 0, show(p));
});

after(async () => {
  await d?.stop();
  await reg?.stop();
});

/** The runtime's own view of a container (runc state under the daemon's exec root). */
async function runcStatus(id: string): Promise<string> {
  const r = await run('runc', ['--root', join(d.execRoot, 'runtime', 'runc'), 'state', id]);
  assert.equal(r.code, 0, show(r));
  return (JSON.parse(r.stdout) as { status: string }).status;
}

async function state(id: string): Promise<{ Running: boolean; Paused: boolean; Status: string }> {
  const r = await d.api('GET', `/containers/${id}/json`);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { State: { Running: boolean; Paused: boolean; Status: string } }).State;
}

test('wharfd killed during a commit: after the restart the container is no longer paused; a user pause stays', { timeout: 300_000 }, async () => {
  // a few hundred MB of incompressible change, so that the commit's read of it takes a while
  const big = await d.wharf(['run', '-d', '--name', 'big', image, 'sh', '-c', 'busybox dd if=/dev/urandom of=/big bs=1M count=384 2>/dev/null && touch /ready && sleep 600']);
  assert.equal(big.code, 0, show(big));
  const id = big.stdout.trim();
  const user = await d.wharf(['run', '-d', '--name', 'userpaused', image, 'sleep', '600']);
  assert.equal(user.code, 0, show(user));
  const userId = user.stdout.trim();
  try {
    for (let i = 0; ; i++) {
      const r = await d.wharf(['exec', 'big', 'ls', '/ready']);
      if (r.code === 0) break;
      assert.ok(i < 150 && (await state(id)).Running, `the container never wrote its change: ${show(r)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const p = await d.wharf(['pause', 'userpaused']);
    assert.equal(p.code, 0, show(p));

    // the commit runs (not awaited); the daemon dies as soon as it has paused the container for it
    const commit = d.api('POST', `/commit?container=${id}&repo=crashed&tag=1`).catch((e: Error) => ({ status: -1, body: e.message }));
    const t0 = Date.now();
    for (;;) {
      if ((await state(id)).Paused) break;
      assert.ok(Date.now() - t0 < 60_000, 'the commit never paused the container');
      await new Promise((res) => setTimeout(res, 5));
    }
    await d.kill('SIGKILL');
    const c = await commit;
    assert.notEqual(c.status, 200, `the commit finished before the kill: the test proves nothing (${c.body})`);
    // what the crash left: the runtime still has it paused
    assert.equal(await runcStatus(id), 'paused');
    assert.equal(await runcStatus(userId), 'paused');

    await d.restart();
    const s = await state(id);
    assert.equal(s.Paused, false, JSON.stringify(s));
    assert.equal(s.Running, true, JSON.stringify(s));
    assert.equal(s.Status, 'running');
    assert.equal(await runcStatus(id), 'running');
    // it really runs: exec works (an exec into a frozen container would hang)
    const ex = await d.wharf(['exec', 'big', 'cat', '/proc/1/cmdline'], { timeoutMs: 20_000 });
    assert.equal(ex.code, 0, show(ex));
    // the container the user paused is still paused, for the record and the runtime
    const u = await state(userId);
    assert.equal(u.Paused, true, JSON.stringify(u));
    assert.equal(await runcStatus(userId), 'paused');
    // and a commit after the restart works and leaves it running
    const again = await d.wharf(['commit', 'big', 'crashed:2']);
    assert.equal(again.code, 0, show(again));
    assert.equal((await state(id)).Paused, false);
    assert.equal(await runcStatus(id), 'running');
  } finally {
    await d.wharf(['rm', '-f', 'big', 'userpaused']);
  }
});

/** pids of `root` and all its descendants (from /proc/<pid>/stat). */
async function processTree(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** Whether pid is a live process (a zombie is gone for our purpose: its parent reaps it later). */
const alive = (pid: number): boolean => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
};

const portAnswers = (port: number): Promise<boolean> => new Promise((res) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); res(true); });
  s.once('error', () => res(false));
});

test('the wharf registry serve front killed with SIGKILL: its server processes go, the port is free again', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-e2e-regkill-'));
  const port = await freePort();
  const front = spawn(NODE, [WHARF_CLI, 'registry', 'serve', '--addr', `127.0.0.1:${port}`, '--root', join(dir, 'root'), '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  front.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  front.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  let tree: number[] = [];
  try {
    const t0 = Date.now();
    while (!out.includes('listening on')) {
      assert.ok(Date.now() - t0 < 30_000, `the registry never listened: ${out}`);
      assert.equal(front.exitCode, null, out);
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(await portAnswers(port), 'the port does not answer while serving');
    tree = await processTree(front.pid!);
    // the front, the server (cluster primary) and its two workers
    assert.ok(tree.length >= 4, `processes: ${tree.join(' ')}`);
    front.kill('SIGKILL');
    const t1 = Date.now();
    while (await portAnswers(port) || tree.slice(1).some(alive)) {
      assert.ok(Date.now() - t1 < 5_000, `still there 5 s after the front's SIGKILL: port ${port}, processes ${tree.filter(alive).join(' ')}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    // the port can be bound again
    const again = spawn(NODE, [WHARF_CLI, 'registry', 'serve', '--addr', `127.0.0.1:${port}`, '--root', join(dir, 'root'), '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out2 = '';
    again.stdout!.on('data', (b: Buffer) => { out2 += b.toString(); });
    again.stderr!.on('data', (b: Buffer) => { out2 += b.toString(); });
    const t2 = Date.now();
    while (!out2.includes('listening on')) {
      assert.ok(Date.now() - t2 < 30_000 && again.exitCode === null, `no second server on the port: ${out2}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    again.kill('SIGTERM');
    await new Promise((res) => again.once('exit', res));
  } finally {
    for (const pid of tree) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await rm(dir, { recursive: true, force: true });
  }
});
