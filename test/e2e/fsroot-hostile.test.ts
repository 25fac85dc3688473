/**
 * A hostile image against a real wharfd: absolute and "../" symlinks at /etc/passwd and /etc/group, at a WORKDIR
 * path, at a VOLUME path (copy-up) and at a docker cp destination, all pointing at a canary directory of the
 * host (the test's TMPDIR). `--user name` lookups never see the host's users (run and exec), and nothing is
 * read from or written to the canary directory.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

let d: Daemon;
let work: string;
let canary: string;

before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-hostile-'));
  canary = join(work, 'canary');
  await mkdir(join(canary, 'workdir'), { recursive: true });
  await mkdir(join(canary, 'voldata'));
  await mkdir(join(canary, 'cpdest'));
  await writeFile(join(canary, 'voldata', 'host-volume-file'), 'host\n');
  await writeFile(join(canary, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nhostuser:x:4242:4242::/home/hostuser:/bin/sh\n');
  await writeFile(join(canary, 'group'), 'root:x:0:\nhostgroup:x:4343:\n');
  await writeFile(join(work, 'payload'), 'payload\n');
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  const links = [
    `ln -sf ${canary}/passwd /etc/passwd`,
    `ln -sf ../../../../../../../..${canary}/group /etc/group`,
    `ln -s ${canary}/workdir /app`,
    `ln -s ${canary}/voldata /data`,
    `ln -s ../../../../../../..${canary}/cpdest /cpdest`,
  ].join(' && ');
  const mk = await d.wharf(['run', '--name', 'mk', 'busybox', 'sh', '-c', links]);
  assert.equal(mk.code, 0, show(mk));
  const c = await d.wharf(['commit', 'mk', 'hostile:1']);
  assert.equal(c.code, 0, show(c));
});
after(async () => {
  await d?.wharf(['rm', '-f', 'mk', 'victim']);
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function canaryUntouched(): Promise<void> {
  assert.deepEqual((await readdir(canary)).sort(), ['cpdest', 'group', 'passwd', 'voldata', 'workdir']);
  assert.deepEqual(await readdir(join(canary, 'workdir')), []);
  assert.deepEqual(await readdir(join(canary, 'cpdest')), []);
  assert.deepEqual(await readdir(join(canary, 'voldata')), ['host-volume-file']);
}

test('--user names are looked up in the image, never in the host files its /etc/passwd and /etc/group link to', async () => {
  const u = await d.wharf(['run', '--rm', '--user', 'hostuser', 'hostile:1', 'id']);
  assert.notEqual(u.code, 0, show(u));
  assert.match(u.stderr, /unable to find user hostuser: no matching entries in passwd file/);
  const g = await d.wharf(['run', '--rm', '--user', '0:hostgroup', 'hostile:1', 'id']);
  assert.notEqual(g.code, 0, show(g));
  assert.match(g.stderr, /unable to find group hostgroup/);
  const ok = await d.wharf(['run', '--rm', '--user', '4242', 'hostile:1', 'id', '-u']);
  assert.equal(ok.code, 0, show(ok));
  assert.equal(ok.stdout.trim(), '4242');
  assert.equal((await d.wharf(['run', '-d', '--name', 'victim', 'hostile:1', 'sleep', '120'])).code, 0);
  const e = await d.wharf(['exec', '--user', 'hostuser', 'victim', 'id']);
  assert.notEqual(e.code, 0, show(e));
  assert.match(e.stderr + e.stdout, /unable to find user hostuser/);
  await canaryUntouched();
});

test('a WORKDIR and a VOLUME behind links to the host: made and copied inside the container only', async () => {
  const w = await d.wharf(['run', '--rm', '-w', '/app/sub', 'hostile:1', 'pwd']);
  assert.equal(w.code, 0, show(w));
  // the process starts in the directory the link leads to inside the container (pwd prints the resolved path)
  assert.equal(w.stdout.trim(), `${canary}/workdir/sub`);
  const v = await d.wharf(['run', '--rm', '-v', '/data', 'hostile:1', 'ls', '-a', '/data']);
  assert.equal(v.code, 0, show(v));
  assert.doesNotMatch(v.stdout, /host-volume-file/, 'the host directory was not copied up into the volume');
  await canaryUntouched();
});

test('docker cp to and from a destination that links to the host stays inside the container', async () => {
  for (const cli of ['wharf', 'docker'] as const) {
    const x = (args: string[]) => (cli === 'wharf' ? d.wharf(args) : d.docker(args));
    await x(['cp', join(work, 'payload'), 'victim:/cpdest/']);
    await x(['cp', join(work, 'payload'), 'victim:/app/']);
    const out = join(work, `out-${cli}`);
    await mkdir(out);
    await x(['cp', 'victim:/data/', out]);
    assert.ok(!(await readdir(out, { recursive: true })).some((n) => String(n).includes('host-volume-file')), `${cli}: nothing of the host read`);
  }
  await canaryUntouched();
});
