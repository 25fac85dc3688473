/**
 * Containers under load and under a crash: 50 busybox containers started and removed in parallel leave
 * nothing behind (mounts, network namespaces and veths, cgroups, conmon/runc processes, IP leases); wharfd
 * killed with SIGKILL while a container runs finds it again with its logs, and records its later exit; the
 * resource flags reach the cgroups (-m, --cpus) and --init runs an init as PID 1.
 */
// wharf-test: alone
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
before(async () => {
  d = await startDaemon();
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => { await d?.stop(); });

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

function processesMentioning(ids: string[]): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try { cmd = readFileSync(join('/proc', pid, 'cmdline'), 'utf8').replace(/\0/g, ' '); } catch { continue; }
    if (ids.some((id) => cmd.includes(id))) out.push(`${pid}: ${cmd}`);
  }
  return out;
}

function cgroupDirs(ids: string[]): string[] {
  const out: string[] = [];
  for (const ctl of ['memory', 'pids', 'cpu', 'freezer', 'devices']) {
    for (const id of ids) if (existsSync(join('/sys/fs/cgroup', ctl, 'wharf', id))) out.push(`${ctl}/wharf/${id}`);
  }
  return out;
}

function hostVeths(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => /veth/.test(l)).map((l) => l.split(':')[1]!.trim());
}

async function pool<T>(n: number, items: T[], fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await fn(items[i++]!); }));
}

test('50 containers started and removed in parallel leave nothing behind', { timeout: 600_000 }, async () => {
  const vethsBefore = hostVeths();
  const ids: string[] = [];
  const names = Array.from({ length: 50 }, (_, i) => `par${i}`);
  await pool(10, names, async (name) => {
    const r = await d.api('POST', `/containers/create?name=${name}`, JSON.stringify({ Image: 'busybox', Cmd: ['sleep', '300'] }));
    assert.equal(r.status, 201, r.body);
    const id = JSON.parse(r.body).Id as string;
    ids.push(id);
    const s = await d.api('POST', `/containers/${id}/start`);
    assert.equal(s.status, 204, s.body);
  });
  const ps = await d.wharf(['ps', '-q', '--no-trunc']);
  assert.equal(ps.stdout.trim().split('\n').filter((x) => ids.includes(x)).length, 50, 'all 50 run');
  const ips = new Set<string>();
  for (const id of ids.slice(0, 10)) {
    const ins = await d.wharf(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', id]);
    ips.add(ins.stdout.trim());
  }
  assert.equal(ips.size, 10, 'each container has its own address');
  assert.ok(processesMentioning(ids).length >= 50, 'a monitor per container');

  await pool(10, ids, async (id) => {
    const r = await d.api('DELETE', `/containers/${id}?force=1`);
    assert.equal(r.status, 204, r.body);
  });
  // removal answers before every process is reaped; the checks below name whatever is still left
  await waitFor(async () => (await d.wharf(['ps', '-aq'])).stdout === '' && processesMentioning(ids).length === 0
    && cgroupDirs(ids).length === 0 && mountsUnder(d.dataRoot).length === 0 && mountsUnder(d.execRoot).length === 0
    && hostVeths().filter((v) => !vethsBefore.includes(v)).length === 0, { timeout: 10_000, interval: 100 }).catch(() => {});
  assert.deepEqual((await d.wharf(['ps', '-aq'])).stdout, '');
  assert.deepEqual(mountsUnder(d.dataRoot), [], 'no overlay mounts left');
  assert.deepEqual(mountsUnder(d.execRoot), [], 'no netns bind mounts left');
  const nsDir = join(d.execRoot, 'netns');
  assert.deepEqual(existsSync(nsDir) ? readdirSync(nsDir) : [], [], 'no netns files left');
  assert.deepEqual(cgroupDirs(ids), [], 'no cgroups left');
  assert.deepEqual(processesMentioning(ids), [], 'no conmon or runc processes left');
  assert.deepEqual(hostVeths().filter((v) => !vethsBefore.includes(v)), [], 'no veths left');
  const leftDirs = readdirSync(join(d.dataRoot, 'containers')).filter((x) => ids.includes(x));
  assert.deepEqual(leftDirs, [], 'no container directories left');
  // the addresses are free again: a new container may get one of them
  const again = await d.wharf(['run', '--rm', 'busybox', 'true']);
  assert.equal(again.code, 0, show(again));
});

test('SIGKILL of wharfd: the container keeps running, is found again with its logs, its later exit is recorded', { timeout: 120_000 }, async () => {
  const r = await d.wharf(['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'echo before; sleep 3; echo after; exit 7']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  await waitFor(async () => (await d.wharf(['logs', id])).stdout.includes('before'), { interval: 100, message: 'the container\'s first line' });
  await d.kill('SIGKILL');
  assert.ok(processesMentioning([id]).length > 0, 'its monitor outlived the daemon');
  await d.restart();
  const st = await d.wharf(['inspect', '--format', '{{.State.Status}}', 'survivor']);
  assert.equal(st.stdout.trim(), 'running', show(st));
  const w = await d.wharf(['wait', 'survivor']);
  assert.equal(w.stdout, '7\n', show(w));
  const logs = await d.wharf(['logs', 'survivor']);
  assert.equal(logs.stdout, 'before\nafter\n');
  assert.equal((await d.wharf(['rm', 'survivor'])).code, 0);
});

test('-m and --cpus reach the cgroups; --init runs an init as PID 1', async () => {
  const lim = await d.wharf(['run', '--rm', '-m', '64m', '--cpus', '0.5', 'busybox', 'sh', '-c',
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us']);
  assert.equal(lim.code, 0, show(lim));
  const [mem, quota, period] = lim.stdout.trim().split('\n').map(Number);
  assert.equal(mem, 64 * 1024 * 1024);
  assert.equal(quota! / period!, 0.5);
  const init = await d.wharf(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'cat /proc/1/comm; true']);
  assert.equal(init.code, 0, show(init));
  assert.notEqual(init.stdout.trim(), 'sh', show(init));
  const noInit = await d.wharf(['run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/1/comm; true']);
  assert.equal(noInit.stdout.trim(), 'sh');
});
