/**
 * docker cp sees the container as its processes do (issue 14 item 7): a named volume, a bind mount of a temp dir
 * and a read-only bind, on a running and on a stopped container, through the real docker CLI against wharfd and
 * against Debian's dockerd (the same steps, the same results), and through wharf. A symlink to "/" inside the
 * volume and one inside the bind dir lead to the container's root, never the host's; /etc/hosts, /etc/hostname and
 * /etc/resolv.conf come out with the content the container sees; a copy into the read-only bind is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon;
let r: Daemon | undefined;
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-cpvol-'));
  [w, r] = await Promise.all([startDaemon(), haveDockerd ? startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 }) : Promise.resolve(undefined)]);
  const b = await w.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  if (r) {
    const tar = join(work, 'busybox.tar');
    assert.equal((await w.docker(['save', '-o', tar, 'busybox'])).code, 0);
    const l = await r.docker(['load', '-i', tar]);
    assert.equal(l.code, 0, show(l));
  }
  await mkdir(join(work, 'src', 'dir'), { recursive: true });
  await writeFile(join(work, 'src', 'file'), 'file content\n');
  await writeFile(join(work, 'src', 'dir', 'a'), 'A\n');
});
after(async () => {
  for (const d of [w, r]) {
    if (!d) continue;
    await d.docker(['rm', '-f', 'cpv-docker', 'cpv-wharf', 'cpvs-docker', 'cpvs-wharf', 'cpvc-docker', 'cpvc-wharf']).catch(() => {});
    await d.stop();
  }
  if (work) await rm(work, { recursive: true, force: true });
});

function ok(x: RunResult, what: string): string {
  assert.equal(x.code, 0, `${what}: ${show(x)}`);
  return x.stdout;
}

/**
 * The same steps on one engine through one CLI; what they gave, with the container's own values (hostname, ids)
 * replaced by what `exec cat` gives, so that both engines can be compared.
 */
async function scenario(d: Daemon, engine: string, cli: 'docker' | 'wharf'): Promise<Record<string, string>> {
  const x = (args: string[]) => (cli === 'wharf' ? d.wharf(args, { cwd: work }) : d.docker(args, { cwd: work }));
  const tag = `${engine}-${cli}`;
  const bind = join(work, `bind-${tag}`);
  const robind = join(work, `robind-${tag}`);
  const out = join(work, `out-${tag}`);
  await mkdir(bind);
  await mkdir(robind);
  await mkdir(out);
  await writeFile(join(robind, 'kept'), 'ro\n');
  await symlink('/', join(bind, 'up')); // made on the host side: still the container's "/" for cp
  const name = `cpv-${cli}`;
  const vol = `cpvol-${cli}`;
  const mounts = ['-v', `${vol}:/vol`, '-v', `${bind}:/bind`, '-v', `${robind}:/robind:ro`];
  ok(await x(['run', '-d', '--name', name, ...mounts, 'busybox', 'sleep', '300']), 'run');
  ok(await x(['exec', name, 'ln', '-s', '/', '/vol/up']), 'ln');
  const res: Record<string, string> = {};
  // in: a file and a directory into the volume and the bind mount
  ok(await x(['cp', 'src/file', `${name}:/vol/`]), 'cp file to /vol');
  ok(await x(['cp', 'src/dir', `${name}:/vol/`]), 'cp dir to /vol');
  ok(await x(['cp', 'src/file', `${name}:/bind/fromcp`]), 'cp file to /bind');
  res.volSeen = ok(await x(['exec', name, 'sh', '-c', 'cat /vol/file /vol/dir/a']), 'exec cat /vol');
  res.bindOnHost = await readFile(join(bind, 'fromcp'), 'utf8');
  // out: files of the volume and of the bind, and a directory of the volume
  ok(await x(['cp', `${name}:/vol/file`, join(out, 'volfile')]), 'cp out /vol/file');
  res.volOut = await readFile(join(out, 'volfile'), 'utf8');
  ok(await x(['cp', `${name}:/vol/dir`, join(out, 'voldir')]), 'cp out /vol/dir');
  res.volDirOut = await readFile(join(out, 'voldir', 'a'), 'utf8');
  // symlinks to "/" inside the volume and inside the bind dir: the container's files, not the host's
  const passwd = ok(await x(['exec', name, 'cat', '/etc/passwd']), 'exec cat passwd');
  for (const via of ['vol', 'bind']) {
    ok(await x(['cp', `${name}:/${via}/up/etc/passwd`, join(out, `passwd-${via}`)]), `cp out /${via}/up/etc/passwd`);
    const got = await readFile(join(out, `passwd-${via}`), 'utf8');
    res[`passwdVia-${via}`] = got === passwd ? 'the container\'s' : got;
    ok(await x(['cp', 'src/file', `${name}:/${via}/up/tmp/via-${via}`]), `cp in through /${via}/up`);
    res[`inVia-${via}`] = ok(await x(['exec', name, 'cat', `/tmp/via-${via}`]), 'exec cat /tmp');
  }
  assert.equal(existsSync(`/tmp/via-vol`) || existsSync('/tmp/via-bind'), false, 'nothing written on the host\'s /tmp');
  // the managed /etc files
  for (const f of ['hosts', 'hostname', 'resolv.conf']) {
    ok(await x(['cp', `${name}:/etc/${f}`, join(out, f)]), `cp out /etc/${f}`);
    const seen = ok(await x(['exec', name, 'cat', `/etc/${f}`]), `exec cat /etc/${f}`);
    res[`etc-${f}`] = (await readFile(join(out, f), 'utf8')) === seen ? 'as the container sees it' : 'differs';
  }
  // a read-only bind refuses
  const roIn = await x(['cp', 'src/file', `${name}:/robind/`]);
  res.readonly = `exit ${roIn.code === 0 ? 0 : 'non-zero'}: ${/mounted volume is marked read-only/.test(roIn.stderr) ? 'mounted volume is marked read-only' : roIn.stderr}`;
  // a stopped container: the same mounts, in and out
  const stopped = `cpvs-${cli}`;
  ok(await x(['run', '--name', stopped, ...mounts, 'busybox', 'true']), 'run stopped');
  ok(await x(['cp', 'src/dir/a', `${stopped}:/bind/fromstopped`]), 'cp into stopped /bind');
  res.stoppedBindOnHost = await readFile(join(bind, 'fromstopped'), 'utf8');
  ok(await x(['cp', 'src/file', `${stopped}:/vol/stoppedfile`]), 'cp into stopped /vol');
  res.stoppedVolSeenRunning = ok(await x(['exec', name, 'cat', '/vol/stoppedfile']), 'the running one sees it');
  ok(await x(['cp', `${stopped}:/vol/dir/.`, join(out, 'stoppeddir')]), 'cp out of stopped /vol/dir/.');
  res.stoppedDirOut = await readFile(join(out, 'stoppeddir', 'a'), 'utf8');
  ok(await x(['cp', `${stopped}:/vol/up/etc/passwd`, join(out, 'stoppedpasswd')]), 'cp out of stopped via /vol/up');
  res.stoppedPasswd = (await readFile(join(out, 'stoppedpasswd'), 'utf8')) === passwd ? 'the container\'s' : 'differs';
  // created, never started: the volume's mount point (and its missing parent) is made for the copy, as dockerd does
  const created = `cpvc-${cli}`;
  ok(await x(['create', '--name', created, '-v', `${vol}:/opt/fresh`, 'busybox', 'true']), 'create');
  ok(await x(['cp', 'src/dir', `${created}:/opt/fresh/fromcreated`]), 'cp into a never started container\'s volume');
  res.createdVolSeenRunning = ok(await x(['exec', name, 'cat', '/vol/fromcreated/a']), 'the running one sees it');
  ok(await x(['rm', '-f', name, stopped, created]), 'rm');
  ok(await x(['volume', 'rm', vol]), 'volume rm');
  return res;
}

const EXPECTED = {
  volSeen: 'file content\nA\n', bindOnHost: 'file content\n', volOut: 'file content\n', volDirOut: 'A\n',
  'passwdVia-vol': 'the container\'s', 'inVia-vol': 'file content\n',
  'passwdVia-bind': 'the container\'s', 'inVia-bind': 'file content\n',
  'etc-hosts': 'as the container sees it', 'etc-hostname': 'as the container sees it', 'etc-resolv.conf': 'as the container sees it',
  readonly: 'exit non-zero: mounted volume is marked read-only',
  stoppedBindOnHost: 'A\n', stoppedVolSeenRunning: 'file content\n', stoppedDirOut: 'A\n', stoppedPasswd: 'the container\'s',
  createdVolSeenRunning: 'A\n',
};

test('docker cp reads and writes volumes and bind mounts of running and stopped containers, as dockerd does', async (t) => {
  t.diagnostic(r ? 'the same steps against dockerd first (the reference)' : 'dockerd not installed: wharfd only');
  if (r) assert.deepEqual(await scenario(r, 'dockerd', 'docker'), EXPECTED, 'dockerd (the reference)');
  assert.deepEqual(await scenario(w, 'wharfd', 'docker'), EXPECTED, 'wharfd');
});

test('wharf cp does the same against wharfd', async () => {
  assert.deepEqual(await scenario(w, 'wharfd', 'wharf'), EXPECTED);
});
