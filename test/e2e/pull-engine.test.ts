/**
 * Engine-level pull tests: a real docker-registry (test/support/registry.ts), images pushed with skopeo
 * (test/support/oci-images.ts), pulled with the Puller into real content/layer/image/reference stores in a
 * temp data root. No wharfd, no CLI.
 *
 * WHARF_TEST_DRIVER=vfs|overlay picks the storage driver (default: the store's choice).
 * Set WHARF_PULL_BENCH=1 to also time the pull of a ~100 MB, 4-layer fixture.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, readlink, lstat, writeFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD, type Registry } from '../support/registry.js';
import { buildOciLayout, buildOciIndex, pushLayout, pushBusybox, registryBlobPath, busyboxSpec, type ImageSpec, type BuiltImage } from '../support/oci-images.js';
import { Puller } from '../../src/engine/distribution/pull.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { openImageStore, openReferenceStore } from '../../src/engine/images/store.js';
import { DEFAULT_CONFIG } from '../../src/engine/config.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import type { LayerStore } from '../../src/engine/layers/types.js';
import type { ImageStore, ReferenceStore } from '../../src/engine/images/types.js';
import { chainIds, type Digest } from '../../src/lib/digest.js';
import { NotFoundError, UnavailableError, UnauthorizedError } from '../../src/lib/errors.js';

interface Env {
  dataRoot: string;
  layers: LayerStore;
  images: ImageStore;
  refs: ReferenceStore;
  puller: Puller;
}

const cleanups: (() => Promise<void>)[] = [];
let reg: Registry;

async function newEnv(config: Partial<typeof DEFAULT_CONFIG> = {}): Promise<Env> {
  const dataRoot = await mkdtemp(join(tmpdir(), 'wharf-pull-'));
  cleanups.push(() => rm(dataRoot, { recursive: true, force: true }));
  const layers = await openLayerStore({ dataRoot, ...(process.env.WHARF_TEST_DRIVER ? { driver: process.env.WHARF_TEST_DRIVER } : {}) });
  const images = await openImageStore(dataRoot, layers);
  const refs = await openReferenceStore(dataRoot);
  const puller = new Puller({ layers, images, refs, config: { ...DEFAULT_CONFIG, ...config, dataRoot }, dataRoot });
  return { dataRoot, layers, images, refs, puller };
}

async function pull(env: Env, ref: string, opts: Parameters<Puller['pull']>[1] = {}): Promise<JSONMessage[]> {
  const msgs: JSONMessage[] = [];
  await env.puller.pull(ref, opts, (m) => msgs.push(m));
  return msgs;
}

/** Messages without the Downloading/Extracting progress chatter. */
function statuses(msgs: JSONMessage[]): string[] {
  return msgs.filter((m) => m.status !== 'Downloading' && m.status !== 'Extracting')
    .map((m) => (m.id ? `${m.id}: ${m.status}` : m.status!));
}

async function withRootfs<T>(env: Env, top: Digest, fn: (root: string) => Promise<T>): Promise<T> {
  const id = randomBytes(8).toString('hex');
  await env.layers.createRW(id, top);
  try {
    const root = await env.layers.mount(id);
    try { return await fn(root); } finally { await env.layers.unmount(id); }
  } finally {
    await env.layers.removeRW(id);
  }
}

async function exists(p: string): Promise<boolean> {
  try { await lstat(p); return true; } catch { return false; }
}

async function push(spec: ImageSpec, repoTag: string, opts: { creds?: string; host?: string } = {}): Promise<BuiltImage> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-oci-'));
  try {
    const img = await buildOciLayout(dir, spec);
    await pushLayout(dir, opts.host ?? reg.host, repoTag, { creds: opts.creds });
    return img;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const unique = () => randomBytes(6).toString('hex');

before(async () => {
  reg = await startRegistry();
});

after(async () => {
  await reg?.stop();
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('pull busybox: docker message sequence, files on disk, tag + repo digest, second pull up to date', async () => {
  const env = await newEnv();
  const built = (await pushBusybox(reg.host, 'library/busybox:latest')) as BuiltImage;
  const ref = `${reg.host}/library/busybox`;
  const msgs = await pull(env, ref);
  const layerId = built.layers[0]!.digest.slice(7, 19);
  assert.deepEqual(msgs[0], { status: 'Pulling from library/busybox', id: 'latest' });
  assert.deepEqual(statuses(msgs), [
    'latest: Pulling from library/busybox',
    `${layerId}: Pulling fs layer`,
    `${layerId}: Verifying Checksum`,
    `${layerId}: Download complete`,
    `${layerId}: Pull complete`,
    `Digest: ${built.manifestDigest}`,
    `Status: Downloaded newer image for ${ref}:latest`,
  ]);
  const dl = msgs.filter((m) => m.status === 'Downloading');
  assert.ok(dl.length >= 1);
  assert.equal(dl[0]!.progressDetail!.total, built.layers[0]!.size);
  assert.match(dl[0]!.progress!, /^\[=*>\s*\] +[\d.]+[kM]?B\/[\d.]+[kM]?B$/);
  const ex = msgs.find((m) => m.status === 'Extracting')!;
  assert.equal(ex.progressDetail!.current, built.layers[0]!.size);
  assert.match(ex.progress!, /^\[={50}>\] +[\d.]+[kM]?B\/[\d.]+[kM]?B$/);
  // order: Extracting after Download complete, before Pull complete
  const idx = (s: string) => msgs.findIndex((m) => m.status === s);
  assert.ok(idx('Download complete') < idx('Extracting') && idx('Extracting') < idx('Pull complete'));

  const id = built.configDigest as Digest;
  assert.equal(env.refs.get(`${ref}:latest`), id);
  assert.equal(env.refs.get(`${ref}@${built.manifestDigest}`), id);
  assert.ok(await env.images.has(id));
  const [top] = chainIds(JSON.parse(built.config.toString()).rootfs.diff_ids).slice(-1);
  await withRootfs(env, top!, async (root) => {
    const bb = await readFile(join(root, 'bin/busybox'));
    assert.deepEqual(bb, await readFile('/bin/busybox').catch(() => readFile('/usr/bin/busybox')));
    assert.equal(await readlink(join(root, 'bin/sh')), 'busybox');
    assert.match(await readFile(join(root, 'etc/passwd'), 'utf8'), /^root:x:0:0:/);
    assert.equal((await stat(join(root, 'tmp'))).mode & 0o7777, 0o1777);
  });
  // v2 metadata remembers blob → diffID
  const md = JSON.parse(await readFile(join(env.dataRoot, 'image/distribution/v2metadata.json'), 'utf8'));
  assert.equal(md.diffIdByDigest[built.layers[0]!.digest], built.layers[0]!.diffId);

  const again = await pull(env, `${ref}:latest`);
  assert.deepEqual(statuses(again), [
    'latest: Pulling from library/busybox',
    `Digest: ${built.manifestDigest}`,
    `Status: Image is up to date for ${ref}:latest`,
  ]);
});

test('multi-layer image: whiteouts, opaque dir, zstd and uncompressed layers; layer sharing says Already exists', async () => {
  const env = await newEnv();
  const u = unique();
  const base = { files: [
    { path: 'etc/a', content: 'a\n' }, { path: 'etc/b', content: `b ${u}\n` },
    { path: 'opt/x/1', content: 'one' }, { path: 'opt/x/sub/deep', content: 'deep' },
    { path: 'usr/bin/tool', content: '#!/bin/sh\n', mode: 0o755 }, { path: 'usr/bin/link', type: 'symlink' as const, target: 'tool' },
  ] };
  const spec: ImageSpec = { layers: [
    base,
    { compression: 'zstd', files: [{ path: 'etc/a', type: 'whiteout' }, { path: 'opt/x', type: 'opaque' }, { path: 'opt/x/2', content: 'two' }] },
    { compression: 'none', files: [{ path: 'srv/data', content: randomBytes(300_000) }, { path: 'srv/hard', type: 'hardlink', target: 'srv/data' }] },
  ], config: { Cmd: ['/usr/bin/tool'] } };
  const built = await push(spec, `test/layers-${u}:v1`);
  const ref = `${reg.host}/test/layers-${u}:v1`;
  const msgs = await pull(env, ref);
  assert.equal(msgs.filter((m) => m.status === 'Pull complete').length, 3);
  assert.deepEqual(msgs.filter((m) => m.status === 'Pull complete').map((m) => m.id), built.layers.map((l) => l.digest.slice(7, 19)));
  const chains = chainIds(built.layers.map((l) => l.diffId as Digest));
  await withRootfs(env, chains[2]!, async (root) => {
    assert.equal(await exists(join(root, 'etc/a')), false, 'whiteout removes etc/a');
    assert.equal(await readFile(join(root, 'etc/b'), 'utf8'), `b ${u}\n`);
    assert.equal(await exists(join(root, 'opt/x/1')), false, 'opaque dir hides lower content');
    assert.equal(await exists(join(root, 'opt/x/sub')), false);
    assert.equal(await readFile(join(root, 'opt/x/2'), 'utf8'), 'two');
    assert.equal(await readlink(join(root, 'usr/bin/link')), 'tool');
    assert.equal((await stat(join(root, 'usr/bin/tool'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(root, 'srv/data'))).size, 300_000);
    assert.equal((await stat(join(root, 'srv/hard'))).ino, (await stat(join(root, 'srv/data'))).ino);
  });

  // a second image on the same base: the base layer is not downloaded again
  const spec2: ImageSpec = { layers: [base, { files: [{ path: 'etc/c', content: 'c' }] }] };
  const built2 = await push(spec2, `test/layers-${u}:v2`);
  const msgs2 = await pull(env, `${reg.host}/test/layers-${u}:v2`);
  const baseId = built.layers[0]!.digest.slice(7, 19);
  const topId = built2.layers[1]!.digest.slice(7, 19);
  assert.deepEqual(statuses(msgs2).slice(0, 3), ['v2: Pulling from test/layers-' + u, `${baseId}: Already exists`, `${topId}: Pulling fs layer`]);
  assert.equal(msgs2.some((m) => m.id === baseId && m.status === 'Downloading'), false);
  assert.equal((await env.layers.list()).length, 4);
  // deleting the first image keeps the shared base for the second
  await env.images.remove(built.configDigest as Digest);
  assert.equal(await env.layers.has(chains[0]!), true);
  assert.equal(await env.layers.has(chains[2]!), false);
});

test('multi-arch index: host platform by default, --platform selects, unknown platform errors', async () => {
  const env = await newEnv();
  const r = (await pushBusybox(reg.host, 'library/busybox:multi', { multiArch: true })) as { indexDigest: string; images: BuiltImage[] };
  const ref = `${reg.host}/library/busybox:multi`;
  const arm = await pull(env, ref, { platform: 'linux/arm64' });
  assert.ok(arm.some((m) => m.status === `Digest: ${r.indexDigest}`), 'Digest: is the index digest');
  const armImg = r.images.find((i) => i.platform.architecture === 'arm64')!;
  assert.equal(env.refs.get(ref), armImg.configDigest);
  const top = chainIds(JSON.parse(armImg.config.toString()).rootfs.diff_ids).pop()!;
  await withRootfs(env, top, async (root) => assert.equal(await readFile(join(root, 'etc/platform'), 'utf8'), 'linux/arm64\n'));
  if (process.arch === 'x64') {
    const amd = await pull(env, ref);
    assert.equal(amd.at(-1)!.status, `Status: Downloaded newer image for ${ref}`);
    assert.equal(env.refs.get(ref), r.images.find((i) => i.platform.architecture === 'amd64')!.configDigest);
  }
  await assert.rejects(pull(env, ref, { platform: 'linux/s390x' }), (e: Error) =>
    e instanceof NotFoundError && e.message === 'no matching manifest for linux/s390x in the manifest list entries');
});

test('docker schema 2 media types (skopeo --format v2s2)', async () => {
  const env = await newEnv();
  const u = unique();
  const dir = await mkdtemp(join(tmpdir(), 'wharf-oci-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const built = await buildOciLayout(dir, { layers: [{ files: [{ path: 'd2', content: `v2s2 ${u}` }] }, { compression: 'none', files: [{ path: 'e', content: 'e' }] }] });
  await pushLayout(dir, reg.host, `test/v2s2-${u}:v1`, { format: 'v2s2' });
  const res = await fetch(`${reg.url}/v2/test/v2s2-${u}/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(res.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');
  const digest = res.headers.get('docker-content-digest');
  const msgs = await pull(env, `${reg.host}/test/v2s2-${u}:v1`);
  assert.ok(msgs.some((m) => m.status === `Digest: ${digest}`));
  assert.equal(env.refs.get(`${reg.host}/test/v2s2-${u}:v1`), built.configDigest);
  assert.equal(env.refs.get(`${reg.host}/test/v2s2-${u}@${digest}`), built.configDigest);
});

test('pull by digest verifies it; all tags', async () => {
  const env = await newEnv();
  const u = unique();
  const b1 = await push({ layers: [{ files: [{ path: 'v', content: `1 ${u}` }] }] }, `test/tags-${u}:one`);
  const b2 = await push({ layers: [{ files: [{ path: 'v', content: `2 ${u}` }] }] }, `test/tags-${u}:two`);
  const repo = `${reg.host}/test/tags-${u}`;
  const byDigest = await pull(env, `${repo}@${b1.manifestDigest}`);
  assert.deepEqual(byDigest[0], { status: `Pulling from test/tags-${u}`, id: b1.manifestDigest });
  assert.equal(byDigest.at(-1)!.status, `Status: Downloaded newer image for ${repo}@${b1.manifestDigest}`);
  assert.equal(env.refs.get(`${repo}@${b1.manifestDigest}`), b1.configDigest);
  await assert.rejects(pull(env, `${repo}@sha256:${'0'.repeat(64)}`), /not found|manifest unknown/);

  const all = await pull(env, repo, { allTags: true });
  const s = statuses(all);
  assert.ok(s.includes(`one: Pulling from test/tags-${u}`) && s.includes(`two: Pulling from test/tags-${u}`));
  assert.ok(s.includes(`Digest: ${b1.manifestDigest}`) && s.includes(`Digest: ${b2.manifestDigest}`));
  assert.equal(s.at(-1), `Status: Downloaded newer image for ${repo}`);
  assert.equal(env.refs.get(`${repo}:one`), b1.configDigest);
  assert.equal(env.refs.get(`${repo}:two`), b2.configDigest);
});

test('errors: missing tag, missing repo, unreachable registry; nothing streamed before them', async () => {
  const env = await newEnv();
  await pushBusybox(reg.host, 'library/busybox:latest');
  const msgs: JSONMessage[] = [];
  await assert.rejects(env.puller.pull(`${reg.host}/library/busybox:nope`, {}, (m) => msgs.push(m)), (e: Error) =>
    e instanceof NotFoundError && e.message === `manifest for ${reg.host}/library/busybox:nope not found: manifest unknown: manifest unknown`);
  await assert.rejects(env.puller.pull(`${reg.host}/library/nope:1`, {}, (m) => msgs.push(m)), (e: Error) =>
    e instanceof NotFoundError && /^manifest for .*library\/nope:1 not found: manifest unknown: manifest unknown$|^pull access denied for/.test(e.message));
  assert.equal(msgs.length, 0);
  await assert.rejects(env.puller.pull('127.0.0.1:1/library/busybox', {}, (m) => msgs.push(m)), (e: Error) =>
    e instanceof UnavailableError && e.message === 'Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused');
  await assert.rejects(env.puller.pull('INVALID::ref', {}, () => {}), /invalid reference format/);
});

test('corrupt blob in the registry: digest mismatch fails and leaves nothing visible', async () => {
  const env = await newEnv();
  const u = unique();
  // a good base that stays, and a top layer we corrupt
  const good = await push({ layers: [{ files: [{ path: 'base', content: `base ${u}` }] }] }, `test/corrupt-${u}:base`);
  await pull(env, `${reg.host}/test/corrupt-${u}:base`);
  const spec: ImageSpec = { layers: [
    { files: [{ path: 'base', content: `base ${u}` }] },
    { compression: 'none', files: [{ path: 'big', content: randomBytes(200_000) }] },
    { files: [{ path: 'other', content: randomBytes(50_000) }] },
  ] };
  const built = await push(spec, `test/corrupt-${u}:v1`);
  const blob = registryBlobPath(reg.dir, built.layers[1]!.digest);
  const data = await readFile(blob);
  data[512 + 1000] ^= 0xff; // inside the file's content: still a valid tar, only the digest tells
  await writeFile(blob, data);
  const layersBefore = (await env.layers.list()).map((l) => l.chainId).sort();
  const imagesBefore = (await env.images.list()).map((i) => i.id).sort();
  const refsBefore = [...env.refs.all().keys()].sort();
  await assert.rejects(pull(env, `${reg.host}/test/corrupt-${u}:v1`), (e: Error) => e.message === `filesystem layer verification failed for digest ${built.layers[1]!.digest}`);
  assert.deepEqual((await env.layers.list()).map((l) => l.chainId).sort(), layersBefore);
  assert.deepEqual((await env.images.list()).map((i) => i.id).sort(), imagesBefore);
  assert.deepEqual([...env.refs.all().keys()].sort(), refsBefore);
  assert.equal(await env.images.has(built.configDigest as Digest), false);
  // the base layer kept exactly its one reference: removing its image removes it
  await env.images.remove(good.configDigest as Digest);
  assert.equal((await env.layers.list()).length, 0);
  // no extracted directory left behind for the failed layers
  const driverDirs = async () => {
    const out: string[] = [];
    for (const d of ['overlay', 'vfs/dir', 'vfs/staging']) {
      try { out.push(...(await readdir(join(env.dataRoot, d))).filter((n) => !n.startsWith('.') && n !== 'l')); } catch { /* absent */ }
    }
    return out;
  };
  assert.deepEqual(await driverDirs(), []);
});

test('a layer escaping its root is refused by extraction; the cause is reported, nothing kept', async () => {
  const env = await newEnv();
  const u = unique();
  const built = await push({ layers: [
    { files: [{ path: 'ok', content: randomBytes(500_000) }] },
    { files: [{ path: 'x/../../evil', content: 'boom' }] },
  ] }, `test/escape-${u}:v1`);
  await assert.rejects(pull(env, `${reg.host}/test/escape-${u}:v1`), (e: Error) => !/error pulling layer|premature close/i.test(e.message) && /evil|escape|outside|\.\./i.test(e.message));
  assert.equal(await env.images.has(built.configDigest as Digest), false);
  assert.equal((await env.layers.list()).length, 0);
  assert.equal(await exists('/evil'), false);
});

test('truncated blob fails; max-concurrent-downloads 1 queues layers with Waiting', async () => {
  const env = await newEnv({ maxConcurrentDownloads: 1 });
  const u = unique();
  const spec: ImageSpec = { layers: [0, 1, 2].map((i) => ({ files: [{ path: `f${i}`, content: randomBytes(100_000) }] })) };
  const built = await push(spec, `test/trunc-${u}:ok`);
  const ids = built.layers.map((l) => l.digest.slice(7, 19));
  const msgs = await pull(env, `${reg.host}/test/trunc-${u}:ok`);
  assert.deepEqual(statuses(msgs).slice(1, 6), [
    `${ids[0]}: Pulling fs layer`, `${ids[1]}: Pulling fs layer`, `${ids[2]}: Pulling fs layer`, `${ids[1]}: Waiting`, `${ids[2]}: Waiting`,
  ]);
  // one at a time: layer 1 starts downloading only after layer 0's download completed
  const firstDl1 = msgs.findIndex((m) => m.id === ids[1] && m.status === 'Downloading');
  const done0 = msgs.findIndex((m) => m.id === ids[0] && m.status === 'Download complete');
  assert.ok(done0 >= 0 && firstDl1 > done0);

  const built2 = await push({ layers: [{ files: [{ path: 'g', content: randomBytes(100_000) }] }] }, `test/trunc-${u}:bad`);
  const blob = registryBlobPath(reg.dir, built2.layers[0]!.digest);
  const data = await readFile(blob);
  await writeFile(blob, data.subarray(0, data.length - 1000));
  const before = (await env.layers.list()).length;
  await assert.rejects(pull(env, `${reg.host}/test/trunc-${u}:bad`), /unexpected EOF|error pulling layer/);
  assert.equal((await env.layers.list()).length, before);
  assert.equal(await env.images.has(built2.configDigest as Digest), false);
});

test('docker.io through registry mirrors: a dead mirror falls through to the next', async () => {
  const built = (await pushBusybox(reg.host, 'library/busybox:latest')) as BuiltImage;
  const env = await newEnv({ registryMirrors: ['http://127.0.0.1:1', reg.url] });
  const msgs = await pull(env, 'busybox');
  assert.deepEqual(msgs[0], { status: 'Pulling from library/busybox', id: 'latest' });
  assert.equal(msgs.at(-1)!.status, 'Status: Downloaded newer image for busybox:latest');
  assert.equal(env.refs.get('docker.io/library/busybox:latest'), built.configDigest);
  assert.equal(env.refs.get(`docker.io/library/busybox@${built.manifestDigest}`), built.configDigest);
});

test('basic-auth registry: without credentials refused, with them pulled', async () => {
  const areg = await startRegistry({ auth: 'htpasswd' });
  cleanups.push(() => areg.stop());
  const env = await newEnv();
  const creds = `${REGISTRY_USER}:${REGISTRY_PASSWORD}`;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-oci-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const built = await buildOciLayout(dir, await busyboxSpec());
  await pushLayout(dir, areg.host, 'private/busybox:1', { creds });
  const ref = `${areg.host}/private/busybox:1`;
  await assert.rejects(pull(env, ref), (e: Error) =>
    e instanceof UnauthorizedError && e.message === `Get "http://${areg.host}/v2/private/busybox/manifests/1": no basic auth credentials`);
  await assert.rejects(pull(env, ref, { auth: { username: REGISTRY_USER, password: 'wrong' } }), (e: Error) =>
    e instanceof NotFoundError && e.message === `pull access denied for ${areg.host}/private/busybox, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
  const ok = await pull(env, ref, { auth: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } });
  assert.equal(ok.at(-1)!.status, `Status: Downloaded newer image for ${ref}`);
  assert.equal(env.refs.get(ref), built.configDigest);
  // the "auth" (base64 user:password) form works too
  const env2 = await newEnv();
  await pull(env2, ref, { auth: { auth: Buffer.from(creds).toString('base64') } });
  assert.equal(env2.refs.get(ref), built.configDigest);
});

test('concurrent pulls of one reference share one operation and its progress', async () => {
  const env = await newEnv();
  const u = unique();
  const built = await push({ layers: [
    { files: [{ path: 'a', content: randomBytes(1_000_000) }] },
    { files: [{ path: 'b', content: randomBytes(1_000_000) }] },
  ] }, `test/conc-${u}:v1`);
  const ref = `${reg.host}/test/conc-${u}:v1`;
  const m1: JSONMessage[] = [];
  const m2: JSONMessage[] = [];
  const p1 = env.puller.pull(ref, {}, (m) => m1.push(m));
  await new Promise((r) => setImmediate(r));
  const p2 = env.puller.pull(ref, {}, (m) => m2.push(m));
  await Promise.all([p1, p2]);
  assert.deepEqual(m2, m1);
  assert.equal(m1.filter((m) => m.status === 'Pull complete').length, 2);
  assert.equal((await env.images.list()).length, 1);
  // a different reference to the same image, concurrently with nothing to do
  await Promise.all([pull(env, ref), pull(env, ref)]);
  // refs are exact: removing the image removes both layers
  await env.images.remove(built.configDigest as Digest);
  assert.equal((await env.layers.list()).length, 0);
});

test('concurrent pulls of two images sharing a base download the base once', async () => {
  const env = await newEnv();
  const u = unique();
  const base = { compression: 'none' as const, files: [{ path: 'base', content: randomBytes(4_000_000) }] };
  const a = await push({ layers: [base, { files: [{ path: 'a', content: 'a' }] }] }, `test/share-${u}:a`);
  const b = await push({ layers: [base, { files: [{ path: 'b', content: 'b' }] }] }, `test/share-${u}:b`);
  const baseId = a.layers[0]!.digest.slice(7, 19);
  const [ma, mb] = await Promise.all([pull(env, `${reg.host}/test/share-${u}:a`), pull(env, `${reg.host}/test/share-${u}:b`)]);
  const fetched = (ms: JSONMessage[]) => ms.some((m) => m.id === baseId && m.status === 'Verifying Checksum');
  assert.equal(Number(fetched(ma)) + Number(fetched(mb)), 1, 'exactly one of the pulls fetched the base');
  const waiter = fetched(ma) ? mb : ma;
  assert.ok(waiter.some((m) => m.id === baseId && m.status === 'Waiting'), 'the other waited for it');
  assert.ok(waiter.some((m) => m.id === baseId && m.status === 'Pull complete'));
  assert.equal(env.refs.get(`${reg.host}/test/share-${u}:a`), a.configDigest);
  assert.equal(env.refs.get(`${reg.host}/test/share-${u}:b`), b.configDigest);
  assert.equal((await env.layers.list()).length, 3);
  await env.images.remove(a.configDigest as Digest);
  assert.equal((await env.layers.list()).length, 2);
  await env.images.remove(b.configDigest as Digest);
  assert.equal((await env.layers.list()).length, 0);
});

test('cancellation: an aborted pull leaves nothing; a shared pull survives one caller leaving', async () => {
  const env = await newEnv();
  const u = unique();
  const built = await push({ layers: [0, 1, 2].map((i) => ({ compression: 'none' as const, files: [{ path: `f${i}`, content: randomBytes(3_000_000) }] })) }, `test/abort-${u}:v1`);
  const ref = `${reg.host}/test/abort-${u}:v1`;
  const ac = new AbortController();
  let sawLayer = false;
  const p = env.puller.pull(ref, { signal: ac.signal }, (m) => {
    if (m.status === 'Pulling fs layer' && !sawLayer) { sawLayer = true; ac.abort(); }
  });
  await assert.rejects(p);
  assert.ok(sawLayer);
  assert.equal(await env.images.has(built.configDigest as Digest), false);
  assert.equal((await env.layers.list()).length, 0);
  assert.equal(env.refs.get(ref), null);

  const ac1 = new AbortController();
  const m2: JSONMessage[] = [];
  const p1 = env.puller.pull(ref, { signal: ac1.signal }, (m) => { if (m.status === 'Pulling fs layer') ac1.abort(); });
  const p2 = env.puller.pull(ref, { signal: new AbortController().signal }, (m) => m2.push(m));
  await Promise.all([p1, p2]);
  assert.equal(m2.at(-1)!.status, `Status: Downloaded newer image for ${ref}`);
  assert.equal(env.refs.get(ref), built.configDigest);
});

test('timing: pull of a ~100 MB 4-layer image', { skip: process.env.WHARF_PULL_BENCH !== '1' }, async () => {
  const env = await newEnv();
  const u = unique();
  const layer = (i: number) => ({ files: Array.from({ length: 100 }, (_, f) => ({
    path: `data${i}/f${f}`,
    content: f % 2 ? randomBytes(250_000) : Buffer.from(`line ${i} ${f} ${u}\n`.repeat(12_000)),
  })) });
  const built = await push({ layers: [layer(1), layer(2), layer(3), layer(4)] }, `bench/big-${u}:v1`);
  const compressed = built.layers.reduce((a, l) => a + l.size, 0);
  const raw = built.layers.reduce((a, l) => a + l.tar.length, 0);
  const t0 = process.hrtime.bigint();
  await pull(env, `${reg.host}/bench/big-${u}:v1`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`# pull ${(compressed / 1e6).toFixed(1)} MB compressed / ${(raw / 1e6).toFixed(1)} MB uncompressed, 4 layers: ${ms.toFixed(0)} ms (${env.layers.driverName})`);
  assert.ok(await env.images.has(built.configDigest as Digest));
});
