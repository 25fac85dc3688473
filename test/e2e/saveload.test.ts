/**
 * docker save | docker load through wharfd with the real docker CLI: a fresh daemon gets the same image ID and
 * tags; a truncated or tampered archive fails and leaves no image behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { buildOciLayout } from '../support/oci-images.js';

let work: string;
let a: Daemon;
let b: Daemon;
let id = '';
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-saveload-'));
  [a, b] = await Promise.all([startDaemon(), startDaemon()]);
  // Layers made by wharfd itself (a build's COPY) regenerate byte for byte from the layer store.
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello /etc/hello\nCOPY sub /sub\nCMD ["/bin/true"]\n');
  await writeFile(join(ctx, 'hello'), 'hello from save/load\n');
  await mkdir(join(ctx, 'sub'));
  await writeFile(join(ctx, 'sub', 'a.txt'), 'a'.repeat(100_000));
  const bld = await a.docker(['build', '-t', 'saved/one:v1', ctx]);
  assert.equal(bld.code, 0, show(bld));
  const t = await a.docker(['tag', 'saved/one:v1', 'busybox:latest']);
  assert.equal(t.code, 0, show(t));
  id = (await a.docker(['image', 'inspect', '--format', '{{.Id}}', 'saved/one:v1'])).stdout.trim();
  assert.match(id, /^sha256:[a-f0-9]{64}$/);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(work, { recursive: true, force: true });
});

test('docker save writes a docker-archive that docker load brings into a fresh wharfd with the same ID and tags', { timeout: 180_000 }, async () => {
  const file = join(work, 'one.tar');
  const s = await a.docker(['save', '-o', file, 'saved/one:v1', 'busybox:latest']);
  assert.equal(s.code, 0, show(s));
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
  assert.ok(names.includes('manifest.json'), names.join(','));
  assert.ok(names.includes('repositories'), names.join(','));
  assert.ok(names.includes(`${id.slice(7)}.json`), names.join(','));
  assert.ok(names.some((n) => /^[a-f0-9]{64}\/layer\.tar$/.test(n)), names.join(','));
  assert.ok(names.some((n) => /^[a-f0-9]{64}\/VERSION$/.test(n)), names.join(','));
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
  assert.equal(manifest.length, 1);
  assert.equal(manifest[0].Config, `${id.slice(7)}.json`);
  assert.deepEqual([...manifest[0].RepoTags].sort(), ['busybox:latest', 'saved/one:v1']);

  const l = await b.docker(['load', '-i', file]);
  assert.equal(l.code, 0, show(l));
  assert.match(l.stdout, /Loaded image: saved\/one:v1/);
  assert.match(l.stdout, /Loaded image: busybox:latest/);
  const got = await b.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoTags}}', 'saved/one:v1']);
  assert.equal(got.code, 0, show(got));
  const [gotId, tags] = got.stdout.trim().split(' ');
  assert.equal(gotId, id);
  assert.deepEqual(JSON.parse(tags!).sort(), ['busybox:latest', 'saved/one:v1']);
  const hist = await b.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'saved/one:v1']);
  const histA = await a.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'saved/one:v1']);
  assert.equal(hist.stdout, histA.stdout);
  assert.match(hist.stdout, /COPY/);

  // a bare repository name saves every tag of it; GET /images/{name}/get is the single-image form
  const repoFile = join(work, 'repo.tar');
  const s3 = await a.docker(['save', '-o', repoFile, 'saved/one']);
  assert.equal(s3.code, 0, show(s3));
  const m3 = JSON.parse(execFileSync('tar', ['-xOf', repoFile, 'manifest.json'], { encoding: 'utf8' }));
  assert.deepEqual(m3.map((x: { RepoTags: string[] }) => x.RepoTags), [['saved/one:v1']]);
  const one = await a.api('GET', '/images/saved%2Fone:v1/get');
  assert.equal(one.status, 200);
  assert.match(one.body, /manifest\.json/);
  const missing = await a.api('GET', '/images/get?names=nothere:1');
  assert.equal(missing.status, 404, missing.body);
  assert.match(missing.body, /reference does not exist/);

  // by ID: no tags → "Loaded image ID"
  const byId = join(work, 'byid.tar');
  const s2 = await a.docker(['save', '-o', byId, id]);
  assert.equal(s2.code, 0, show(s2));
  const c = await startDaemon();
  try {
    const l2 = await c.docker(['load', '-i', byId]);
    assert.equal(l2.code, 0, show(l2));
    assert.match(l2.stdout, new RegExp(`Loaded image ID: ${id}`));
  } finally {
    await c.stop();
  }
});

test('a truncated or tampered archive fails and nothing is loaded', { timeout: 180_000 }, async () => {
  const file = join(work, 'full.tar');
  const s = await a.docker(['save', '-o', file, 'saved/one:v1']);
  assert.equal(s.code, 0, show(s));
  const full = await readFile(file);
  const c = await startDaemon();
  try {
    const cut = join(work, 'cut.tar');
    await writeFile(cut, full.subarray(0, Math.floor(full.length / 2)));
    const l = await c.docker(['load', '-i', cut]);
    assert.notEqual(l.code, 0, show(l));
    assert.match(l.stderr, /unexpected EOF|manifest\.json/);
    const imgs = await c.docker(['images', '-aq']);
    assert.equal(imgs.stdout.trim(), '');

    // tampered: the config's diff ID no longer matches the layer
    const dir = join(work, 'tamper');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xf', file, '-C', dir]);
    const cfgName = `${id.slice(7)}.json`;
    const cfg = JSON.parse(await readFile(join(dir, cfgName), 'utf8'));
    cfg.rootfs.diff_ids[0] = `sha256:${'0'.repeat(64)}`;
    await writeFile(join(dir, cfgName), JSON.stringify(cfg));
    const bad = join(work, 'bad.tar');
    execFileSync('tar', ['-cf', bad, '-C', dir, '.']);
    const l2 = await c.docker(['load', '-i', bad]);
    assert.notEqual(l2.code, 0, show(l2));
    assert.match(l2.stderr, /invalid diffID for layer 0/);
    const imgs2 = await c.docker(['images', '-aq']);
    assert.equal(imgs2.stdout.trim(), '');
    const layers = await c.api('GET', '/system/df');
    assert.equal(JSON.parse(layers.body).LayersSize, 0);
  } finally {
    await c.stop();
  }
});

test('an OCI image layout loads (ID = config digest); a blob whose content does not match its name is refused', { timeout: 180_000 }, async (t) => {
  // dockerd 20.10 loads docker-archives only (this checks wharf's extension, not docker's behaviour)
  if (process.env.WHARF_E2E_DAEMON === 'dockerd') return t.skip('dockerd 20.10 does not load OCI layouts');
  const layout = join(work, 'oci');
  const img = await buildOciLayout(layout, { layers: [{ files: [{ path: 'etc/from-oci', content: 'oci\n' }] }, { files: [{ path: 'etc/second', content: '2\n' }] }] });
  const tarFile = join(work, 'oci.tar');
  execFileSync('tar', ['-cf', tarFile, '-C', layout, '.']);
  const c = await startDaemon();
  try {
    const l = await c.docker(['load', '-i', tarFile]);
    assert.equal(l.code, 0, show(l));
    assert.match(l.stdout, new RegExp(`Loaded image ID: ${img.configDigest}`));
    const ins = await c.docker(['image', 'inspect', '--format', '{{.Id}}', img.configDigest]);
    assert.equal(ins.stdout.trim(), img.configDigest);

    const d = await startDaemon();
    try {
      const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', img.manifestDigest.slice(7)), 'utf8'));
      const layerBlob = join(layout, 'blobs', 'sha256', manifest.layers[1].digest.slice(7));
      const bytes = await readFile(layerBlob);
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(layerBlob, bytes);
      const bad = join(work, 'oci-bad.tar');
      execFileSync('tar', ['-cf', bad, '-C', layout, '.']);
      const lb = await d.docker(['load', '-i', bad]);
      assert.notEqual(lb.code, 0, show(lb));
      assert.match(lb.stderr, /digest mismatch/);
      assert.equal((await d.docker(['images', '-aq'])).stdout.trim(), '');
    } finally {
      await d.stop();
    }
  } finally {
    await c.stop();
  }
});

test('loading into a daemon that has the image again, and over a tag that names another image', { timeout: 180_000 }, async () => {
  const file = join(work, 'again.tar');
  assert.equal((await a.docker(['save', '-o', file, 'saved/one:v1'])).code, 0);
  const again = await a.docker(['load', '-i', file]);
  assert.equal(again.code, 0, show(again));
  assert.equal(again.stdout, 'Loaded image: saved/one:v1\n');
  assert.equal((await a.docker(['image', 'inspect', '--format', '{{.Id}}', 'saved/one:v1'])).stdout.trim(), id);

  const c = await startDaemon();
  try {
    const ctx = join(work, 'other');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY x /x\n');
    await writeFile(join(ctx, 'x'), 'another image\n');
    const bld = await c.docker(['build', '-t', 'saved/one:v1', ctx]);
    assert.equal(bld.code, 0, show(bld));
    const old = (await c.docker(['image', 'inspect', '--format', '{{.Id}}', 'saved/one:v1'])).stdout.trim();
    assert.notEqual(old, id);
    const l = await c.docker(['load', '-i', file]);
    assert.equal(l.code, 0, show(l));
    assert.equal(l.stdout, `The image saved/one:v1 already exists, renaming the old one with ID ${old} to empty string\nLoaded image: saved/one:v1\n`);
    assert.equal((await c.docker(['image', 'inspect', '--format', '{{.Id}}', 'saved/one:v1'])).stdout.trim(), id);
    assert.equal((await c.docker(['image', 'inspect', '--format', '{{json .RepoTags}}', old])).stdout.trim(), '[]');
  } finally {
    await c.stop();
  }
});

test('a layer made by GNU tar (user names, its own order) saves byte for byte; a tampered layer file fails the save', { timeout: 180_000 }, async () => {
  const src = join(work, 'gnu-src');
  await mkdir(join(src, 'etc', 'app'), { recursive: true });
  await writeFile(join(src, 'etc', 'app', 'conf'), 'key=value\n');
  await writeFile(join(src, 'zz-first-on-disk'), 'z'.repeat(5000));
  const tarFile = join(work, 'gnu.tar');
  execFileSync('tar', ['-C', src, '--owner=daemon:1', '--group=adm:4', '-cf', tarFile, 'zz-first-on-disk', 'etc']);
  const diffId = `sha256:${execFileSync('sha256sum', [tarFile], { encoding: 'utf8' }).split(' ')[0]}`;
  const imp = await a.docker(['import', tarFile, 'gnu/made:v1']);
  assert.equal(imp.code, 0, show(imp));
  const gid = (await a.docker(['image', 'inspect', '--format', '{{.Id}}', 'gnu/made:v1'])).stdout.trim();
  assert.equal((await a.docker(['image', 'inspect', '--format', '{{index .RootFS.Layers 0}}', 'gnu/made:v1'])).stdout.trim(), diffId);

  const file = join(work, 'gnu-saved.tar');
  const s = await a.docker(['save', '-o', file, 'gnu/made:v1']);
  assert.equal(s.code, 0, show(s));
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
  const layerTar = execFileSync('tar', ['-xOf', file, manifest[0].Layers[0]]);
  assert.deepEqual(layerTar, await readFile(tarFile), 'the saved layer.tar is the imported tar, byte for byte');
  const l = await b.docker(['load', '-i', file]);
  assert.equal(l.code, 0, show(l));
  assert.equal((await b.docker(['image', 'inspect', '--format', '{{.Id}}', 'gnu/made:v1'])).stdout.trim(), gid);

  // the same size, other bytes, in the stored layer: the save must fail rather than write a corrupt archive
  const cacheId = (await readFile(join(a.dataRoot, 'layers', 'layerdb', 'sha256', diffId.slice(7), 'cache-id'), 'utf8')).trim();
  const driverDirs = [join(a.dataRoot, 'overlay', cacheId, 'diff'), join(a.dataRoot, 'vfs', 'dir', cacheId)];
  const layerDir = driverDirs.find((d) => { try { execFileSync('test', ['-d', d]); return true; } catch { return false; } })!;
  await writeFile(join(layerDir, 'etc', 'app', 'conf'), 'key=VALUE\n');
  const bad = await a.docker(['save', '-o', join(work, 'gnu-bad.tar'), 'gnu/made:v1']);
  assert.notEqual(bad.code, 0, show(bad));
});

test('a saved archive is an OCI image layout too: skopeo reads it as oci-archive (config = image ID, every tag in index.json), layers stored once', { timeout: 180_000 }, async () => {
  const file = join(work, 'oci.tar');
  const s = await a.docker(['save', '-o', file, 'saved/one:v1', 'busybox:latest']);
  assert.equal(s.code, 0, show(s));
  const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
  assert.match(listing, /\boci-layout\b/);
  assert.match(listing, /\bindex\.json\b/);
  // the layer blobs are hard links to the docker-archive's layer.tar files (no second copy)
  assert.match(listing, /blobs\/sha256\/[a-f0-9]{64} link to [a-f0-9]{64}\/layer\.tar/);
  const index = JSON.parse(execFileSync('tar', ['-xOf', file, 'index.json'], { encoding: 'utf8' }));
  const names = index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['io.containerd.image.name']).sort();
  assert.deepEqual(names, ['docker.io/library/busybox:latest', 'docker.io/saved/one:v1']);
  for (const tag of ['v1', 'latest']) {
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--config', `oci-archive:${file}:${tag}`], { encoding: 'utf8' });
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, id, 'the OCI config blob is the image config byte for byte');
  }
  // the OCI manifest's layers are the uncompressed layer tars: their digests are the image's diff IDs, and
  // skopeo can copy the image out of the archive (it reads and verifies every blob)
  const cfg = JSON.parse((await a.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'saved/one:v1'])).stdout);
  const m = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${file}:v1`], { encoding: 'utf8' }));
  assert.deepEqual(m.layers.map((l: { digest: string }) => l.digest), cfg);
  assert.ok(m.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));
  const dir = join(work, 'oci-dir');
  execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}:v1`, `oci:${dir}:v1`]);
  assert.ok(JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${dir}:v1`], { encoding: 'utf8' })).layers.length === cfg.length);
  // and wharfd still loads it (through manifest.json)
  const c = await startDaemon();
  try {
    const l = await c.docker(['load', '-i', file]);
    assert.equal(l.code, 0, show(l));
    assert.equal((await c.docker(['image', 'inspect', '--format', '{{.Id}}', 'saved/one:v1'])).stdout.trim(), id);
  } finally {
    await c.stop();
  }
});
