/**
 * Run options through the docker CLI, wharfd beside Debian's dockerd (issue 14 item 5): --tmpfs and
 * --mount type=tmpfs (with --read-only), --pid host|container:X, --ipc container:X|host|shareable, --uts host,
 * --sysctl, --runtime, --volumes-from, and local volumes with mount options (type=tmpfs, type=none o=bind).
 * The same commands give the same output and exit codes; refusals use dockerd's words. Skipped without dockerd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sameBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;
let work: string;

before(async () => {
  if (!haveDockerd) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-runopts-'));
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  await sameBusybox(w, r);
});
after(async () => {
  for (const d of [w, r]) await d?.docker(['rm', '-f', 'p1', 'p2', 'stopped', 'vsrc']);
  for (const d of [w, r]) await d?.docker(['volume', 'rm', '-f', 'tv', 'bv', 'bad']);
  await Promise.all([w?.stop(), r?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** docker's output with the engine's own names (container IDs, data roots) replaced. */
function norm(x: RunResult, ids: Record<string, string>, root: string): string {
  let s = `${x.code}|${x.stdout}|${x.stderr}`;
  for (const [name, id] of Object.entries(ids)) s = s.split(id).join(`<${name}>`);
  return s.split(root).join('<root>');
}

async function same(args: string[], ids: { w: Record<string, string>; r: Record<string, string> } = { w: {}, r: {} }): Promise<RunResult> {
  const [a, b] = [await w!.docker(args, { timeoutMs: 30_000 }), await r!.docker(args, { timeoutMs: 30_000 })];
  assert.equal(norm(a, ids.w, w!.dataRoot), norm(b, ids.r, r!.dataRoot), args.join(' '));
  return a;
}

test('tmpfs, read-only, uts, sysctl, runtime: as dockerd', { skip: !haveDockerd }, async () => {
  const ro = await same(['run', '--rm', '--read-only', '--tmpfs', '/tmp', 'busybox', 'sh', '-c', 'touch /tmp/a && echo tmp-ok; touch /b 2>/dev/null || echo ro-ok']);
  assert.equal(ro.stdout, 'tmp-ok\nro-ok\n');
  const m = await same(['run', '--rm', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770', 'busybox', 'sh', '-c', "stat -c %a /t; grep ' /t ' /proc/mounts"]);
  assert.match(m.stdout, /^1770\ntmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770 0 0\n$/);
  await same(['run', '--rm', '--uts', 'host', 'busybox', 'hostname']);
  await same(['run', '--rm', '--sysctl', 'net.ipv4.ip_forward=1', 'busybox', 'cat', '/proc/sys/net/ipv4/ip_forward']);
  assert.equal((await same(['run', '--rm', '--runtime', 'runc', 'busybox', 'echo', 'ok'])).stdout, 'ok\n');
  for (const d of [w!, r!]) await d.docker(['create', '--name', 'rt', 'busybox', 'true']);
  assert.equal((await same(['inspect', '-f', '{{.HostConfig.Runtime}}', 'rt'])).stdout, 'runc\n');
  for (const d of [w!, r!]) await d.docker(['rm', 'rt']);
  await same(['run', '--rm', '--runtime', 'nosuch', 'busybox', 'true']);
  // crun: installed here but refusing this host's hybrid cgroups; the container is run by crun (its error), or
  // refused as unknown where it is not installed
  const crun = await w!.docker(['run', '--rm', '--runtime', 'crun', 'busybox', 'echo', 'ok']);
  if (['/usr/bin/crun', '/usr/sbin/crun'].some((p) => existsSync(p))) assert.ok(crun.stdout === 'ok\n' || /crun|cgroup/.test(crun.stderr), show(crun));
  else assert.match(crun.stderr, /Unknown runtime specified crun/);
  assert.equal((await w!.docker(['ps', '-aq'])).stdout, '', 'nothing left behind');
});

test('--pid and --ipc: host and container:X, with dockerd\'s refusals', { skip: !haveDockerd }, async () => {
  const ids = { w: {} as Record<string, string>, r: {} as Record<string, string> };
  for (const [k, d] of [['w', w!], ['r', r!]] as const) {
    const st = await d.docker(['create', '--name', 'stopped', '--ipc', 'shareable', 'busybox', 'sleep', '100']);
    ids[k].stopped = st.stdout.trim();
    const p1 = await d.docker(['run', '-d', '--name', 'p1', '--ipc', 'shareable', 'busybox', 'sh', '-c', 'echo x > /dev/shm/marker; sleep 100']);
    ids[k].p1 = p1.stdout.trim();
    const p2 = await d.docker(['run', '-d', '--name', 'p2', 'busybox', 'sleep', '100']);
    ids[k].p2 = p2.stdout.trim();
    assert.ok(ids[k].stopped && ids[k].p1 && ids[k].p2, `${k}: ${show(p1)}`);
  }
  assert.equal((await same(['run', '--rm', '--pid', 'container:p1', 'busybox', 'ps', '-o', 'comm'], ids)).stdout, 'COMMAND\nsleep\nps\n');
  assert.equal((await same(['run', '--rm', '--ipc', 'container:p1', 'busybox', 'cat', '/dev/shm/marker'], ids)).stdout, 'x\n');
  await same(['run', '--rm', '--pid', 'host', 'busybox', 'sh', '-c', 'test -d /proc/1 && ps -o pid | wc -l | xargs test 3 -lt && echo many'], ids);
  await same(['run', '--rm', '--ipc', 'host', 'busybox', 'sh', '-c', 'echo ipc-host'], ids);
  await same(['run', '--rm', '--ipc', 'none', 'busybox', 'sh', '-c', "grep -c ' /dev/shm ' /proc/mounts"], ids);
  for (const args of [
    ['run', '--rm', '--pid', 'container:nosuch', 'busybox', 'true'],
    ['run', '--rm', '--ipc', 'container:nosuch', 'busybox', 'true'],
    ['run', '--rm', '--pid', 'container:stopped', 'busybox', 'true'],
    ['run', '--rm', '--ipc', 'container:stopped', 'busybox', 'true'],
    ['run', '--rm', '--ipc', 'container:p2', 'busybox', 'true'],
    ['run', '--rm', '--ipc', 'bogus', 'busybox', 'true'],
  ]) {
    const x = await same(args, ids);
    assert.equal(x.code, 125, args.join(' '));
  }
  for (const d of [w!, r!]) await d.docker(['rm', '-f', 'p1', 'p2', 'stopped']);
});

test('--volumes-from and local volumes with mount options', { skip: !haveDockerd }, async () => {
  const src = join(work, 'bindsrc');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'h'), 'hello\n');
  for (const d of [w!, r!]) {
    const v = await d.docker(['run', '--name', 'vsrc', '-v', '/data', '-v', `${work}:/hosttmp:ro`, 'busybox', 'sh', '-c', 'echo v > /data/f']);
    assert.equal(v.code, 0, show(v));
  }
  assert.equal((await same(['run', '--rm', '--volumes-from', 'vsrc', 'busybox', 'sh', '-c', 'cat /data/f; cat /hosttmp/bindsrc/h; touch /hosttmp/x 2>/dev/null || echo ro'])).stdout, 'v\nhello\nro\n');
  assert.equal((await same(['run', '--rm', '--volumes-from', 'vsrc:ro', 'busybox', 'sh', '-c', 'touch /data/g 2>/dev/null || echo ro-from'])).stdout, 'ro-from\n');
  await same(['run', '--rm', '--volumes-from', 'nosuch', 'busybox', 'true']);
  // the volume survives the --rm joiner: still vsrc's
  assert.equal((await same(['run', '--rm', '--volumes-from', 'vsrc', 'busybox', 'cat', '/data/f'])).stdout, 'v\n');

  await same(['volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=2m', 'tv']);
  const t1 = await same(['run', '--rm', '-v', 'tv:/v', 'busybox', 'sh', '-c', "grep ' /v ' /proc/mounts; echo a > /v/a"]);
  assert.equal(t1.stdout, 'tmpfs /v tmpfs rw,relatime,size=2048k 0 0\n');
  assert.equal((await same(['run', '--rm', '-v', 'tv:/v', 'busybox', 'ls', '/v'])).stdout, '', 'a tmpfs volume starts empty for its next user');
  await same(['volume', 'inspect', '-f', '{{json .Options}}', 'tv']);
  await same(['volume', 'create', '--driver', 'local', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${src}`, 'bv']);
  assert.equal((await same(['run', '--rm', '-v', 'bv:/v', 'busybox', 'cat', '/v/h'])).stdout, 'hello\n');
  await same(['volume', 'rm', 'bv']);
  assert.ok(existsSync(join(src, 'h')), 'removing a bind volume leaves its device alone');
  await same(['volume', 'create', '--driver', 'local', '--opt', 'foo=bar', 'bad2']);
  for (const opts of [['type=tmpfs'], ['o=size=1m'], ['device=/tmp']]) await same(['volume', 'create', ...opts.flatMap((o) => ['--opt', o]), 'half']);
  assert.equal((await w!.docker(['volume', 'ls', '-q', '--filter', 'name=half'])).stdout, '', 'nothing half-made');
  // a bind of a missing device: refused when a container mounts it (dockerd at start, wharfd at create)
  for (const d of [w!, r!]) {
    assert.equal((await d.docker(['volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', 'device=/nonexistent/x', 'bad'])).code, 0);
    const x = await d.docker(['run', '--rm', '-v', 'bad:/v', 'busybox', 'true']);
    assert.notEqual(x.code, 0);
    assert.match(x.stderr, /error while mounting volume '.*\/volumes\/bad\/_data': failed to mount local volume: mount \/nonexistent\/x:/, show(x));
  }
  assert.equal((await w!.docker(['volume', 'rm', 'bad'])).code, 0, 'a failed mount leaves the volume unused');
  // the wharf CLI sends the same options
  const wf = async (args: string[]) => w!.wharf(args);
  assert.equal((await wf(['run', '--rm', '--volumes-from', 'vsrc:ro', 'busybox', 'cat', '/data/f'])).stdout, 'v\n');
  assert.equal((await wf(['run', '--rm', '--mount', 'type=tmpfs,target=/t,tmpfs-mode=1770', 'busybox', 'stat', '-c', '%a', '/t'])).stdout, '1770\n');
  assert.equal((await wf(['run', '--rm', '--ipc', 'host', '--runtime', 'runc', 'busybox', 'echo', 'ok'])).stdout, 'ok\n');
  const bad = await wf(['run', '--rm', '--runtime', 'nosuch', 'busybox', 'true']);
  assert.equal(bad.code, 125, show(bad));
  assert.match(bad.stderr, /Unknown runtime specified nosuch/);
  assert.equal((await wf(['run', '--rm', '--log-driver', 'none', 'busybox', 'echo', 'hi'])).stdout, 'hi\n');
  for (const d of [w!, r!]) await d.docker(['rm', '-f', 'vsrc']);
});
