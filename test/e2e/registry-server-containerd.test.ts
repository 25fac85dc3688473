/**
 * Images built by wharfd run under containerd (Debian's containerd 1.6 and `ctr`, a private instance on its own
 * socket, root and namespace): single- and multi-stage builds with a whiteout, pushed by wharfd to
 * `wharf registry serve` and pulled by `ctr image pull --plain-http`, run by `ctr run` with the same output as
 * under wharfd; `wharf save` output imported by `ctr image import`; an image containerd pushes pulled and run by
 * wharfd. The registry is on the filesystem back end, and for the last test on S3 (Ceph RGW from
 * scripts/ceph-rgw.sh, skipped with the reason when it cannot start), with --redirect.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox } from '../support/oci-images.js';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { run, show, type RunResult } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { startRegistryServer, type RegistryServer } from '../../src/registry/server.js';
import { makeBucket, removeBucket, s3Driver, startRgw } from '../support/rgw.js';

const NS = 'wharf-interop';
let work: string;
let daemon: Daemon;
let reg: RegistryServer;
let containerd: ChildProcess | undefined;
let sock: string;
let skip: string | false = false;

function ctr(args: string[]): Promise<RunResult> {
  return run('ctr', ['--address', sock, '--namespace', NS, ...args], { timeoutMs: 60_000 });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-ctr-'));
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/ctr')) {
    skip = 'containerd/ctr not installed (apt-get install containerd)';
    return;
  }
  sock = join(work, 'containerd.sock');
  const cfg = join(work, 'containerd.toml');
  await writeFile(cfg, [
    'version = 2',
    `root = "${join(work, 'root')}"`,
    `state = "${join(work, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${sock}"`,
    '[ttrpc]',
    `  address = "${sock}.ttrpc"`,
    '',
  ].join('\n'));
  let log = '';
  containerd = spawn('containerd', ['--config', cfg, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  containerd.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  containerd.stdout!.on('data', () => {});
  try {
    await waitFor(async () => existsSync(sock) && (await ctr(['version'])).code === 0, { timeout: 20_000 });
  } catch {
    skip = `containerd did not start here: ${log.split('\n').slice(-3).join(' ')}`;
    return;
  }
  daemon = await startDaemon();
  reg = await startRegistryServer({ root: join(work, 'registry'), addr: '127.0.0.1:0' });
  await pushBusybox(reg.host, 'library/busybox:latest');
});

after(async () => {
  if (containerd) {
    // tasks and containers of the namespace go with the instance; only its own processes are stopped
    for (const c of (await ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) {
      await ctr(['tasks', 'kill', '-s', 'SIGKILL', c]);
      await ctr(['containers', 'rm', c]);
    }
    await new Promise<void>((res) => {
      if (containerd!.exitCode !== null) return res();
      containerd!.once('exit', () => res());
      containerd!.kill('SIGTERM');
    });
  }
  await reg?.close();
  await daemon?.stop();
  // containerd's snapshots are overlay mounts under root/: unmount what is left before removing
  await run('sh', ['-c', `grep -o ' ${join(work, 'root')}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  await rm(work, { recursive: true, force: true });
});

const SCRIPT = 'cat /etc/stage; ls /etc/group 2>&1; echo done';

async function buildAndPush(name: string, dockerfile: string): Promise<{ ref: string; wharfOut: string }> {
  const ctx = join(work, name.replace(/[/:]/g, '-'));
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  const ref = `${reg.host}/${name}`;
  const build = await daemon.docker(['build', '-q', '-t', ref, ctx]);
  assert.equal(build.code, 0, show(build));
  const push = await daemon.docker(['push', ref]);
  assert.equal(push.code, 0, show(push));
  const out = await daemon.docker(['run', '--rm', ref, 'sh', '-c', SCRIPT]);
  assert.equal(out.code, 0, show(out));
  return { ref, wharfOut: out.stdout };
}

async function ctrRun(ref: string, id: string): Promise<RunResult> {
  return ctr(['run', '--rm', ref, id, 'sh', '-c', SCRIPT]);
}

test('single- and multi-stage wharfd builds (with a whiteout) pulled by ctr --plain-http and run alike', { timeout: 120_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const single = await buildAndPush('interop/single:v1',
    `FROM ${reg.host}/library/busybox:latest\nRUN echo single > /etc/stage && rm /etc/group\n`);
  const multi = await buildAndPush('interop/multi:v1', [
    `FROM ${reg.host}/library/busybox:latest AS build`,
    'RUN echo multi > /stage',
    `FROM ${reg.host}/library/busybox:latest`,
    'COPY --from=build /stage /etc/stage',
    'RUN rm /etc/group',
    '',
  ].join('\n'));
  assert.match(single.wharfOut, /^single\nls: \/etc\/group: No such file or directory\ndone\n$/);
  assert.match(multi.wharfOut, /^multi\n/);
  for (const [i, img] of [single, multi].entries()) {
    const pull = await ctr(['image', 'pull', '--plain-http', img.ref]);
    assert.equal(pull.code, 0, show(pull));
    const out = await ctrRun(img.ref, `interop-${i}`);
    assert.equal(out.code, 0, show(out));
    assert.equal(out.stdout, img.wharfOut, 'the same output under containerd as under wharfd (the whiteout hides /etc/group)');
  }
});

test('wharf save output imports with ctr image import and runs', { timeout: 60_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const ref = `${reg.host}/interop/single:v1`;
  const tar = join(work, 'saved.tar');
  const save = await daemon.wharf(['save', '-o', tar, ref]);
  assert.equal(save.code, 0, show(save));
  await ctr(['image', 'rm', ref]);
  const imp = await ctr(['image', 'import', tar]);
  assert.equal(imp.code, 0, show(imp));
  const names = (await ctr(['image', 'ls', '-q'])).stdout.split('\n');
  assert.ok(names.includes(ref), `imported as ${ref}: ${names.join(' ')}`);
  const out = await ctrRun(ref, 'interop-saved');
  assert.equal(out.code, 0, show(out));
  assert.match(out.stdout, /^single\nls: \/etc\/group: No such file or directory\ndone\n$/);
});

test('an image containerd pushes is pulled and run by wharfd', { timeout: 60_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const src = `${reg.host}/interop/multi:v1`;
  const dst = `${reg.host}/interop/from-containerd:v1`;
  assert.equal((await ctr(['image', 'pull', '--plain-http', src])).code, 0);
  assert.equal((await ctr(['image', 'tag', src, dst])).code, 0);
  const push = await ctr(['image', 'push', '--plain-http', dst]);
  assert.equal(push.code, 0, show(push));
  const pull = await daemon.docker(['pull', dst]);
  assert.equal(pull.code, 0, show(pull));
  const out = await daemon.docker(['run', '--rm', dst, 'sh', '-c', SCRIPT]);
  assert.equal(out.code, 0, show(out));
  assert.match(out.stdout, /^multi\nls: \/etc\/group: No such file or directory\ndone\n$/);
});

test('wharfd pushes to a registry on S3 (RGW, --redirect); ctr pulls and runs the image', { timeout: 60_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const rgw = await startRgw();
  if ('skip' in rgw) return t.skip(rgw.skip);
  const bucket = await makeBucket(rgw, 'wharf-ctr');
  const s3reg = await startRegistryServer({ driver: s3Driver(rgw, bucket), addr: '127.0.0.1:0', redirect: true });
  try {
    const src = `${reg.host}/interop/single:v1`;
    const ref = `${s3reg.host}/interop/single:v1`;
    assert.equal((await daemon.docker(['tag', src, ref])).code, 0);
    const push = await daemon.docker(['push', ref]);
    assert.equal(push.code, 0, show(push));
    const pull = await ctr(['image', 'pull', '--plain-http', ref]);
    assert.equal(pull.code, 0, show(pull));
    const out = await ctrRun(ref, 'interop-s3');
    assert.equal(out.code, 0, show(out));
    assert.match(out.stdout, /^single\nls: \/etc\/group: No such file or directory\ndone\n$/);
  } finally {
    await s3reg.close();
    await removeBucket(rgw, bucket);
  }
});
