/**
 * Volumes through a real wharfd and real busybox containers, driven by the real docker CLI and by wharf:
 * the tutorial's named volume persisting across containers, an image VOLUME getting an anonymous volume
 * populated from the image, `run --rm` and `rm -v` removing anonymous volumes but never named ones, a volume
 * in use refusing removal, `volume ls/inspect/prune` and `system df -v` as docker prints them, a daemon restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
let work: string;
before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-volumes-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function volumeNames(): Promise<string[]> {
  const r = await d.api('GET', '/volumes');
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body).Volumes ?? []).map((v: { Name: string }) => v.Name).sort();
}

test('the tutorial\'s named volume: written by one container, read by the next; volume ls as docker prints it', async () => {
  const w = await d.docker(['run', '--rm', '-v', 'wharfvol:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/f']);
  assert.equal(w.code, 0, show(w));
  const r = await d.wharf(['run', '--rm', '-v', 'wharfvol:/data', 'busybox', 'cat', '/data/f']);
  assert.equal(r.stdout, 'persisted\n', show(r));
  const ls = await d.wharf(['volume', 'ls']);
  const dls = await d.docker(['volume', 'ls']);
  assert.equal(ls.stdout, 'DRIVER    VOLUME NAME\nlocal     wharfvol\n');
  assert.equal(ls.stdout, dls.stdout);
  const ins = await d.docker(['volume', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}', 'wharfvol']);
  assert.equal(ins.stdout.trim(), `wharfvol local local ${join(d.dataRoot, 'volumes', 'wharfvol', '_data')}`);
  const mounts = await d.wharf(['run', '--name', 'm1', '-v', 'wharfvol:/data:ro', 'busybox', 'sh', '-c', 'echo x > /data/g']);
  assert.notEqual(mounts.code, 0, 'a read-only volume refuses writes');
  const m = await d.docker(['inspect', '--format', '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}', 'm1']);
  assert.equal(m.stdout.trim(), 'volume wharfvol /data local false');
  assert.equal((await d.wharf(['rm', 'm1'])).code, 0);
});

test('an image VOLUME gets an anonymous volume filled from the image; --rm and rm -v remove it, never a named one', async () => {
  const ctx = join(work, 'volimg');
  await rm(ctx, { recursive: true, force: true });
  await import('node:fs/promises').then((f) => f.mkdir(ctx));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir /vd && echo from-image > /vd/seed && chown 1000:1000 /vd\nVOLUME /vd\n');
  const b = await d.wharf(['build', '-q', '-t', 'volimg', ctx]);
  assert.equal(b.code, 0, show(b));
  const before = await volumeNames();
  const c = await d.wharf(['run', '--name', 'anon', 'volimg', 'sh', '-c', 'cat /vd/seed; stat -c %u /vd']);
  assert.equal(c.stdout, 'from-image\n1000\n', show(c));
  const made = (await volumeNames()).filter((n) => !before.includes(n));
  assert.equal(made.length, 1);
  assert.match(made[0]!, /^[a-f0-9]{64}$/);
  const inUse = await d.wharf(['volume', 'rm', made[0]!]);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, new RegExp(`^Error response from daemon: remove ${made[0]}: volume is in use - \\[[a-f0-9]{64}\\]\\n$`));
  assert.equal((await d.wharf(['rm', '-v', 'anon'])).code, 0);
  assert.deepEqual(await volumeNames(), before, 'rm -v removed the anonymous volume');

  const rmRun = await d.wharf(['run', '--rm', '-v', 'keepme:/named', '-v', '/anon-path', 'busybox', 'true']);
  assert.equal(rmRun.code, 0, show(rmRun));
  assert.deepEqual(await volumeNames(), [...before, 'keepme'].sort(), '--rm removed the anonymous volume only');
});

test('volume create/inspect/rm/prune and system df -v', async () => {
  const cr = await d.wharf(['volume', 'create', '--label', 'tier=test', 'made-by-cli']);
  assert.equal(cr.stdout, 'made-by-cli\n', show(cr));
  const anon = await d.wharf(['volume', 'create']);
  assert.match(anon.stdout, /^[a-f0-9]{64}\n$/);
  const bad = await d.wharf(['volume', 'create', 'bad/name']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /includes invalid characters for a local volume name/);
  const f = await d.wharf(['volume', 'ls', '-q', '--filter', 'label=tier=test']);
  assert.equal(f.stdout, 'made-by-cli\n');
  const ins = await d.wharf(['volume', 'inspect', '-f', '{{json .Labels}}', 'made-by-cli']);
  assert.equal(ins.stdout, '{"tier":"test"}\n');
  const missing = await d.wharf(['volume', 'inspect', 'nope']);
  assert.equal(missing.code, 1);
  const df = await d.wharf(['system', 'df', '-v']);
  assert.match(df.stdout, /Local Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\n/, show(df));
  assert.match(df.stdout, /\nmade-by-cli +0 +0B\n/);
  const rmv = await d.wharf(['volume', 'rm', 'made-by-cli', 'nope']);
  assert.equal(rmv.code, 1);
  assert.equal(rmv.stdout, 'made-by-cli\n');
  const prune = await d.wharf(['volume', 'prune', '-f']);
  assert.match(prune.stdout, /^Deleted Volumes:\n(?:\S+\n)+\nTotal reclaimed space: \S+\n$/, show(prune));
  assert.deepEqual(await volumeNames(), []);
});

test('volumes and their users survive a daemon restart', async () => {
  assert.equal((await d.wharf(['run', '-d', '--name', 'holder', '-v', 'durable:/d', 'busybox', 'sh', '-c', 'echo kept > /d/k; sleep 60'])).code, 0);
  await waitFor(async () => (await d.wharf(['exec', 'holder', 'cat', '/d/k'])).stdout === 'kept\n', { interval: 100, message: 'holder to write /d/k' });
  await d.restart();
  const busy = await d.wharf(['volume', 'rm', 'durable']);
  assert.equal(busy.code, 1, 'still in use after the restart');
  assert.equal((await d.wharf(['rm', '-f', 'holder'])).code, 0);
  const r = await d.wharf(['run', '--rm', '-v', 'durable:/d', 'busybox', 'cat', '/d/k']);
  assert.equal(r.stdout, 'kept\n', show(r));
  assert.equal((await d.wharf(['volume', 'rm', 'durable'])).stdout, 'durable\n');
});
