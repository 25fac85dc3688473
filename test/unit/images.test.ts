/**
 * Image store, reference store and ImageService over the real layer store (vfs driver) in a temp
 * data root. Docker 20.10's behaviour (docker-transcript.txt / docker-api-trace.log) is the expected output.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { chainIds, sha256, type Digest } from '../../src/lib/digest.js';
import { ConflictError, InvalidParameterError, NotFoundError } from '../../src/lib/errors.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import type { LayerStore } from '../../src/engine/layers/types.js';
import type { ImageStore, ReferenceStore } from '../../src/engine/images/types.js';
import { openImageStore, openReferenceStore } from '../../src/engine/images/store.js';
import { ImageService, goTimeString } from '../../src/engine/images/service.js';
import { parseTimestamp } from '../../src/lib/filters.js';
import { applyChanges } from '../../src/engine/build/changes.js';
import { goMatch as pathMatch } from '../../src/lib/go.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import { sleep } from '../support/wait.js';

/** A deterministic tar with the given files. */
async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const [name, content] of Object.entries(files).sort()) {
    const data = Buffer.from(content);
    await new Promise<void>((res, rej) => pack.entry(
      { name, size: data.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' } as tarStream.Header, data,
      (e) => (e ? rej(e) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

interface Env {
  root: string;
  layers: LayerStore;
  images: ImageStore;
  refs: ReferenceStore;
  svc: ImageService;
  users: Map<string, { id: string; running: boolean }[]>;
}

async function setup(): Promise<Env> {
  const root = await mkdtemp(join(tmpdir(), 'wharf-images-'));
  const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
  const images = await openImageStore(root, layers);
  const refs = await openReferenceStore(root);
  const users = new Map<string, { id: string; running: boolean }[]>();
  const svc = new ImageService({
    images, refs, layers, dataRoot: root, applyChanges,
    puller: { async pull() { throw new Error('no network in unit tests'); } },
    containers: { async usersOf(id: string) { return users.get(id) ?? []; } },
  });
  return { root, layers, images, refs, svc, users };
}

/** Registers layers (each a set of files) bottom-up; returns diffIDs. Drops the registration references. */
async function addLayers(layers: LayerStore, specs: Record<string, string>[]): Promise<Digest[]> {
  const diffIds: Digest[] = [];
  let parent: Digest | null = null;
  const registered: Digest[] = [];
  for (const files of specs) {
    const ex = await layers.extract(Readable.from([await makeTar(files)]));
    const l = await layers.register(parent, ex);
    registered.push(l.chainId);
    diffIds.push(l.diffId);
    parent = l.chainId;
  }
  return Object.assign(diffIds, { registered });
}

interface CfgOpts {
  diffIds: Digest[];
  created?: string;
  labels?: Record<string, string> | null;
  history?: { created_by: string; empty_layer?: boolean; comment?: string }[];
  cmd?: string[];
  nonce?: string;
}

function config(o: CfgOpts): Buffer {
  const created = o.created ?? '2026-11-24T16:01:11.853310948Z';
  return Buffer.from(JSON.stringify({
    architecture: 'amd64',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: o.cmd ?? ['sh'], Labels: o.labels ?? null },
    container: o.nonce ?? '',
    created,
    docker_version: '20.10.24',
    history: (o.history ?? o.diffIds.map((_, i) => ({ created_by: `layer ${i}` }))).map((h) => ({ created, ...h })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: o.diffIds },
  }));
}

/** Releases the registration references of addLayers (as a puller does once the image holds its own). */
async function dropRegistrations(layers: LayerStore, ids: Digest[]): Promise<void> {
  for (const c of (ids as unknown as { registered: Digest[] }).registered) await layers.release(c);
}

const collect = () => {
  const msgs: JSONMessage[] = [];
  return { msgs, sink: (m: JSONMessage) => { msgs.push(m); } };
};

describe('image store', () => {
  let e: Env;
  before(async () => { e = await setup(); });
  after(async () => { await rm(e.root, { recursive: true, force: true }); });

  test('a config whose layers are not registered is refused and nothing is stored', async () => {
    const bogus = sha256('not a layer');
    await assert.rejects(e.images.create(config({ diffIds: [bogus] })), InvalidParameterError);
    const dir = join(e.root, 'image/imagedb/content/sha256');
    assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('.')), []);
    assert.equal((await e.images.list()).length, 0);
  });

  test('create stores the exact bytes under their sha256, retains the top chain, survives reopen', async () => {
    const diffIds = await addLayers(e.layers, [{ a: 'aaaa' }, { b: 'bb' }]);
    const raw = config({ diffIds });
    const img = await e.images.create(raw);
    await dropRegistrations(e.layers, diffIds);
    assert.equal(img.id, sha256(raw));
    const onDisk = await readFile(join(e.root, 'image/imagedb/content/sha256', img.id.slice(7)));
    assert.ok(onDisk.equals(raw));
    // idempotent
    assert.equal((await e.images.create(raw)).id, img.id);
    const chains = chainIds(diffIds);
    assert.ok(await e.layers.has(chains[1]!));
    await e.images.setLastUpdated(img.id, new Date('2026-11-24T16:02:24.561Z'));

    const again = await openImageStore(e.root, e.layers);
    const got = await again.get(img.id);
    assert.ok(got.raw.equals(raw));
    assert.equal(got.lastTagTime, '2026-11-24T16:02:24.561Z');

    // the image's reference keeps both layers; removing it deletes them, top down
    const deleted = await again.remove(img.id);
    assert.deepEqual(deleted, [chains[1], chains[0]]);
    assert.equal(await again.has(img.id), false);
    assert.equal(await e.layers.has(chains[0]!), false);
    assert.equal(existsSync(join(e.root, 'image/imagedb/content/sha256', img.id.slice(7))), false);
  });

  test('kill safety: a config file written without its layers is not listed after restart', async () => {
    const raw = config({ diffIds: [sha256('never registered')] });
    const hex = sha256(raw).slice(7);
    await writeFile(join(e.root, 'image/imagedb/content/sha256', hex), raw);
    await writeFile(join(e.root, 'image/imagedb/content/sha256', '.tmp-abc-' + hex), 'half');
    await mkdir(join(e.root, 'image/imagedb/metadata/sha256', hex), { recursive: true });
    await writeFile(join(e.root, 'image/imagedb/metadata/sha256', hex, 'parent'), sha256('x'));
    const reopened = await openImageStore(e.root, e.layers);
    assert.equal(await reopened.has(`sha256:${hex}`), false);
    assert.deepEqual((await reopened.list()).map((i) => i.id), []);
    assert.deepEqual(await readdir(join(e.root, 'image/imagedb/content/sha256')), []);
    assert.equal(existsSync(join(e.root, 'image/imagedb/metadata/sha256', hex)), false);
  });

  test('parents and children', async () => {
    const d = await addLayers(e.layers, [{ p: '1' }]);
    const a = await e.images.create(config({ diffIds: d, nonce: 'a' }));
    const b = await e.images.create(config({ diffIds: d, nonce: 'b' }), a.id);
    await dropRegistrations(e.layers, d);
    assert.deepEqual(await e.images.children(a.id), [b.id]);
    assert.equal((await e.images.get(b.id)).parent, a.id);
    const reopened = await openImageStore(e.root, e.layers);
    assert.equal((await reopened.get(b.id)).parent, a.id);
    await reopened.setParent(b.id, null);
    assert.deepEqual(await reopened.children(a.id), []);
    await reopened.remove(b.id);
    await reopened.remove(a.id);
    assert.equal((await e.layers.list()).length, 0);
  });
});

describe('reference store', () => {
  let root: string;
  before(async () => { root = await mkdtemp(join(tmpdir(), 'wharf-refs-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  test('normalizes, persists atomically, moves tags, keeps digests', async () => {
    const refs = await openReferenceStore(root);
    const id1 = sha256('1');
    const id2 = sha256('2');
    await refs.add('busybox', id1);
    await refs.add('localhost:5002/library/busybox:latest', id1);
    const dg = `localhost:5002/library/busybox@${sha256('manifest')}`;
    await refs.add(dg, id1);
    assert.equal(refs.get('docker.io/library/busybox:latest'), id1);
    assert.equal(refs.get('busybox'), id1);
    assert.deepEqual(refs.refsOf(id1), [
      'docker.io/library/busybox:latest',
      'localhost:5002/library/busybox:latest',
      `localhost:5002/library/busybox@${sha256('manifest')}`,
    ]);
    await refs.add('busybox:latest', id2); // a tag moves
    assert.equal(refs.get('busybox'), id2);
    await assert.rejects(refs.add(dg, id2), ConflictError); // a digest does not
    const file = JSON.parse(await readFile(join(root, 'image/repositories.json'), 'utf8'));
    assert.equal(file.Repositories['docker.io/library/busybox']['docker.io/library/busybox:latest'], id2);
    assert.equal(file.Repositories['localhost:5002/library/busybox'][dg], id1);
    assert.equal(await refs.delete('busybox'), true);
    assert.equal(await refs.delete('busybox'), false);
    const reopened = await openReferenceStore(root);
    assert.equal(reopened.get('busybox'), null);
    assert.equal(reopened.get(dg), id1);
    assert.equal(reopened.all().size, 2);
  });
});

describe('ImageService', () => {
  let e: Env;
  /** base (2 layers, pulled: no parent), child (base + 1 layer, built: parent = base). */
  let base: Digest;
  let mid: Digest;
  let child: Digest;
  let baseDiffs: Digest[];

  before(async () => {
    e = await setup();
    baseDiffs = await addLayers(e.layers, [{ 'bin/sh': 'x'.repeat(1000) }, { 'etc/passwd': 'root' }]);
    base = (await e.images.create(config({
      diffIds: baseDiffs, created: '2026-11-24T16:01:11.853310948Z',
      history: [{ created_by: '/bin/sh -c #(nop) ADD file:abc in / ' }, { created_by: 'RUN passwd' }, { created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true }],
    }))).id;
    await dropRegistrations(e.layers, baseDiffs);
    await e.svc.tag(base, 'busybox', undefined);
    await e.svc.tag('busybox', 'localhost:5002/library/busybox', 'latest');
    await e.refs.add(`localhost:5002/library/busybox@${sha256('manifest')}`, base);
    // a build on top: one config-only step (mid) then a RUN step (child)
    mid = (await e.images.create(config({
      diffIds: baseDiffs, created: '2026-11-24T16:01:20Z', labels: { a: 'b' },
      history: [{ created_by: '/bin/sh -c #(nop) ADD file:abc in / ' }, { created_by: 'RUN passwd' }, { created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true }, { created_by: 'LABEL a=b', empty_layer: true }],
    }), base)).id;
    const d3 = await addLayers(e.layers, [{ 'bin/sh': 'x'.repeat(1000) }, { 'etc/passwd': 'root' }, { 'www/index.html': 'hello' }]);
    child = (await e.images.create(config({
      diffIds: d3, created: '2026-11-24T16:01:30Z', labels: { a: 'b', c: 'd' },
      history: [{ created_by: '/bin/sh -c #(nop) ADD file:abc in / ' }, { created_by: 'RUN passwd' }, { created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true }, { created_by: 'LABEL a=b', empty_layer: true }, { created_by: 'RUN echo hello', comment: 'built' }],
    }), mid)).id;
    await dropRegistrations(e.layers, d3);
    await e.svc.tag(child, 'web', 'v1');
  });
  after(async () => { await rm(e.root, { recursive: true, force: true }); });

  test('resolve: full id, hex, short prefix, reference, repo digest; docker\'s not-found message', async () => {
    assert.equal((await e.svc.resolve(base)).id, base);
    assert.equal((await e.svc.resolve(base.slice(7))).id, base);
    assert.equal((await e.svc.resolve(base.slice(7, 19))).id, base);
    assert.equal((await e.svc.resolve(base.slice(0, 14))).id, base);
    assert.equal((await e.svc.resolve('busybox')).id, base);
    assert.equal((await e.svc.resolve('docker.io/library/busybox:latest')).id, base);
    assert.equal((await e.svc.resolve(`localhost:5002/library/busybox@${sha256('manifest')}`)).id, base);
    await assert.rejects(e.svc.resolve('nope'), (err: Error) => err instanceof NotFoundError && err.message === 'No such image: nope:latest');
    await assert.rejects(e.svc.resolve('nope:1'), { message: 'No such image: nope:1' });
    await assert.rejects(e.svc.resolve(sha256('zz')), { message: `No such image: ${sha256('zz')}` });
    await assert.rejects(e.svc.resolve('INVALID::ref'), InvalidParameterError);
  });

  test('list: tags, digests, intermediate images hidden without all, shapes as dockerd 1.41', async () => {
    const list = await e.svc.list({ all: false, filters: {} });
    assert.deepEqual(list.map((s) => s.Id), [child, base]);
    const b = list[1]!;
    assert.deepEqual(Object.keys(b).sort(), ['Containers', 'Created', 'Id', 'Labels', 'ParentId', 'RepoDigests', 'RepoTags', 'SharedSize', 'Size', 'VirtualSize']);
    assert.deepEqual(b.RepoTags, ['busybox:latest', 'localhost:5002/library/busybox:latest']);
    assert.deepEqual(b.RepoDigests, [`localhost:5002/library/busybox@${sha256('manifest')}`]);
    assert.equal(b.Created, 1795536071);
    assert.equal(b.Containers, -1);
    assert.equal(b.SharedSize, -1);
    assert.equal(b.Size, 1004);
    assert.equal(b.VirtualSize, 1004);
    assert.equal(b.ParentId, '');
    assert.equal(b.Labels, null);
    assert.equal(list[0]!.Size, 1009);
    assert.equal(list[0]!.ParentId, mid);
    const all = await e.svc.list({ all: true, filters: {} });
    assert.deepEqual(all.map((s) => s.Id), [child, mid, base]);
    assert.deepEqual(all[1]!.RepoTags, ['<none>:<none>']);
    assert.deepEqual(all[1]!.RepoDigests, ['<none>@<none>']);
  });

  test('list filters: dangling, label, before/since, reference glob, invalid filter', async () => {
    const ids = async (f: Record<string, string[]>, all = false) => (await e.svc.list({ all, filters: f })).map((s) => s.Id);
    assert.deepEqual(await ids({ dangling: ['true'] }), []);
    assert.deepEqual(await ids({ dangling: ['false'] }), [child, base]);
    assert.deepEqual(await ids({ label: ['a=b'] }), [child]);
    assert.deepEqual(await ids({ label: ['a=b'] }, true), [child, mid]);
    assert.deepEqual(await ids({ label: ['c'] }), [child]);
    assert.deepEqual(await ids({ label: ['a=x'] }), []);
    assert.deepEqual(await ids({ since: ['busybox'] }), [child]);
    assert.deepEqual(await ids({ before: ['web:v1'] }), [base]);
    assert.deepEqual(await ids({ since: ['busybox'], before: ['web:v1'] }, true), [mid]);
    const r = await e.svc.list({ all: false, filters: { reference: ['busybox'] } });
    assert.deepEqual(r.map((s) => [s.Id, s.RepoTags, s.RepoDigests]), [[base, ['busybox:latest'], null]]);
    assert.deepEqual(await ids({ reference: ['*/library/*'] }), [base]);
    assert.deepEqual(await ids({ reference: ['w?b:v*'] }), [child]);
    await assert.rejects(e.svc.list({ all: false, filters: { nope: ['x'] } }), (err: Error) => err instanceof InvalidParameterError && /Invalid filter 'nope'/.test(err.message));
    await assert.rejects(e.svc.list({ all: false, filters: { dangling: ['maybe'] } }), InvalidParameterError);
    await assert.rejects(e.svc.list({ all: false, filters: { since: ['nope'] } }), NotFoundError);
  });

  test('inspect: docker\'s keys in docker\'s order, values from the config and stores', async () => {
    const i = await e.svc.inspect('busybox');
    assert.deepEqual(Object.keys(i), ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Container', 'ContainerConfig',
      'DockerVersion', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'VirtualSize', 'GraphDriver', 'RootFS', 'Metadata']);
    assert.equal(i.Id, base);
    assert.deepEqual(i.RepoTags, ['busybox:latest', 'localhost:5002/library/busybox:latest']);
    assert.equal(i.Parent, '');
    assert.equal(i.Created, '2026-11-24T16:01:11.853310948Z');
    assert.equal(i.Size, 1004);
    assert.deepEqual(i.RootFS, { Type: 'layers', Layers: baseDiffs.slice() });
    const cfg = i.Config as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfg), ['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin',
      'StdinOnce', 'Env', 'Cmd', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels']);
    assert.deepEqual(cfg.Cmd, ['sh']);
    assert.equal((i.ContainerConfig as Record<string, unknown>).Cmd, null);
    assert.match((i.Metadata as { LastTagTime: string }).LastTagTime, /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(i.GraphDriver, { Data: null, Name: 'vfs' });
    const c = await e.svc.inspect(child.slice(7, 19));
    assert.equal(c.Parent, mid);
    assert.equal(c.Comment, 'built'); // from the last history entry
    assert.deepEqual(c.RepoDigests, []);
    assert.deepEqual((await e.svc.inspect(mid)).Metadata, { LastTagTime: '0001-01-01T00:00:00Z' });
  });

  test('history: newest first, entries attributed to local parents, sizes per layer', async () => {
    const h = await e.svc.history('web:v1');
    assert.deepEqual(h.map((x) => [x.Id, x.CreatedBy, x.Size, x.Tags, x.Comment]), [
      [child, 'RUN echo hello', 5, ['web:v1'], 'built'],
      [mid, 'LABEL a=b', 0, null, ''],
      [base, '/bin/sh -c #(nop)  CMD ["sh"]', 0, ['busybox:latest', 'localhost:5002/library/busybox:latest'], ''],
      ['<missing>', 'RUN passwd', 4, null, ''],
      ['<missing>', '/bin/sh -c #(nop) ADD file:abc in / ', 1000, null, ''],
    ]);
    // times come from the top image's own history entries
    assert.equal(h[2]!.Created, 1795536090);
    assert.deepEqual(Object.keys(h[0]!).sort(), ['Comment', 'Created', 'CreatedBy', 'Id', 'Size', 'Tags']);
  });

  test('tag: moving a tag leaves the old image dangling; digests refused; bad names 400', async () => {
    const d = await addLayers(e.layers, [{ 'x': 'tagtest' }]);
    const t1 = (await e.images.create(config({ diffIds: d, created: '2026-11-24T17:00:00Z', nonce: 't1' }))).id;
    const t2 = (await e.images.create(config({ diffIds: d, created: '2026-11-24T17:00:01Z', nonce: 't2' }))).id;
    await dropRegistrations(e.layers, d);
    await e.svc.tag(t1, 'moving', 'x');
    assert.deepEqual((await e.svc.list({ all: false, filters: { dangling: ['true'] } })).map((s) => s.Id), [t2]);
    await e.svc.tag(t2.slice(7), 'moving', 'x');
    assert.equal((await e.svc.resolve('moving:x')).id, t2);
    const dangling = await e.svc.list({ all: false, filters: { dangling: ['true'] } });
    assert.deepEqual(dangling.map((s) => [s.Id, s.RepoTags]), [[t1, ['<none>:<none>']]]);
    await assert.rejects(e.svc.tag(t1, `moving@${sha256('m')}`, undefined), (err: Error) => err instanceof InvalidParameterError && /digest/.test(err.message));
    await assert.rejects(e.svc.tag(t1, 'UPPER', 'x'), InvalidParameterError);
    await assert.rejects(e.svc.tag(t1, 'ok', 'bad tag'), InvalidParameterError);
    await assert.rejects(e.svc.tag('nope', 'ok', 'x'), { message: 'No such image: nope:latest' });
    // clean up for the other tests
    assert.deepEqual(await e.svc.remove('moving:x', { force: false, noPrune: false }), [{ Untagged: 'moving:x' }, { Deleted: t2 }]);
    const r = await e.svc.remove(t1.slice(7, 19), { force: false, noPrune: false });
    assert.deepEqual(r.slice(0, 1), [{ Deleted: t1 }]);
    assert.equal(r.length, 2); // and the layer
  });

  test('rmi: untag only when other references remain; repo digests of the same repo go with the last tag', async () => {
    await e.svc.tag('busybox', 'bb2', 'x');
    assert.deepEqual(await e.svc.remove('bb2:x', { force: false, noPrune: false }), [{ Untagged: 'bb2:x' }]);
    await e.svc.tag('busybox', 'lab/nginx', 'v3');
    await e.refs.add(`lab/nginx@${sha256('m2')}`, base);
    assert.deepEqual(await e.svc.remove('lab/nginx:v3', { force: false, noPrune: false }), [
      { Untagged: 'lab/nginx:v3' }, { Untagged: `lab/nginx@${sha256('m2')}` }]);
    assert.equal((await e.svc.resolve('busybox')).id, base);
    // by repo digest: only that reference goes
    await e.refs.add(`lab/other@${sha256('m3')}`, base);
    assert.deepEqual(await e.svc.remove(`lab/other@${sha256('m3')}`, { force: false, noPrune: false }), [{ Untagged: `lab/other@${sha256('m3')}` }]);
    assert.equal(e.refs.get(`lab/other@${sha256('m3')}`), null);
    await assert.rejects(e.svc.remove('bb2:x', { force: false, noPrune: false }), { message: 'No such image: bb2:x' });
  });

  test('rmi conflicts: children, multiple repositories, containers', async () => {
    const d = await addLayers(e.layers, [{ 'multi': 'm' }]);
    const multi = (await e.images.create(config({ diffIds: d, created: '2026-11-24T17:00:00Z', nonce: 'multi' }))).id;
    await dropRegistrations(e.layers, d);
    await e.svc.tag(multi, 'one', 'x');
    await e.svc.tag(multi, 'two', 'y');
    await assert.rejects(e.svc.remove(multi, { force: false, noPrune: false }),
      (err: Error) => err instanceof ConflictError && err.message === `conflict: unable to delete ${multi.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    assert.deepEqual(await e.svc.remove(multi.slice(7, 13), { force: true, noPrune: false }),
      [{ Untagged: 'one:x' }, { Untagged: 'two:y' }, { Deleted: multi }, { Deleted: d[0] }]);
    // hard conflicts come first, whatever the references
    await assert.rejects(e.svc.remove(base, { force: false, noPrune: false }),
      { message: `conflict: unable to delete ${base.slice(7, 19)} (cannot be forced) - image has dependent child images` });
    await assert.rejects(e.svc.remove(base, { force: true, noPrune: false }),
      { message: `conflict: unable to delete ${base.slice(7, 19)} (cannot be forced) - image has dependent child images` });
    await assert.rejects(e.svc.remove(mid.slice(7, 19), { force: true, noPrune: false }),
      { message: `conflict: unable to delete ${mid.slice(7, 19)} (cannot be forced) - image has dependent child images` });
    e.users.set(child, [{ id: 'c71da92c7dd670b583fde017540f86cfa2affdc454837de9526fb54250878a1b', running: false }]);
    await assert.rejects(e.svc.remove('web:v1', { force: false, noPrune: false }),
      { message: `conflict: unable to remove repository reference "web:v1" (must force) - container c71da92c7dd6 is using its referenced image ${child.slice(7, 19)}` });
    await assert.rejects(e.svc.remove(child, { force: false, noPrune: false }),
      { message: `conflict: unable to delete ${child.slice(7, 19)} (must be forced) - image is being used by stopped container c71da92c7dd6` });
    e.users.set(child, [{ id: '4a113ef644da333c3bd73137aa1e2d7f89a0e7b055e55a728995e8627abca6b0', running: true }]);
    await assert.rejects(e.svc.remove(child, { force: true, noPrune: false }),
      { message: `conflict: unable to delete ${child.slice(7, 19)} (cannot be forced) - image is being used by running container 4a113ef644da` });
    e.users.delete(child);
    assert.equal((await e.svc.resolve('web:v1')).id, child);
  });

  test('rmi deletes the image, its unique layers and untagged parents (not with noPrune)', async () => {
    await e.svc.tag('web:v1', 'web', 'v2');
    const topChain = chainIds((await e.images.get(child)).config.rootfs.diff_ids).pop()!;
    // noPrune: only the image itself
    const d = await addLayers(e.layers, [{ 'bin/sh': 'x'.repeat(1000) }, { 'etc/passwd': 'root' }, { 'www/index.html': 'hello' }]);
    const sib = (await e.images.create(config({ diffIds: d, created: '2026-11-24T16:01:31Z', nonce: 'sib' }), mid)).id;
    await dropRegistrations(e.layers, d);
    await e.svc.tag(sib, 'sib', undefined);
    assert.deepEqual(await e.svc.remove('sib', { force: false, noPrune: true }), [{ Untagged: 'sib:latest' }, { Deleted: sib }]);
    assert.ok(await e.images.has(mid));
    // an ID with two tags of one repository and nothing else: must be forced? (two tags → not a single reference)
    await assert.rejects(e.svc.remove(child, { force: false, noPrune: false }), ConflictError);
    const r = await e.svc.remove(child, { force: true, noPrune: false });
    assert.deepEqual(r, [
      { Untagged: 'web:v1' }, { Untagged: 'web:v2' }, { Deleted: child }, { Deleted: topChain }, { Deleted: mid },
    ]);
    assert.equal(await e.images.has(base), true); // tagged parent stays
    assert.equal(await e.layers.has(topChain), false);
  });

  test('prune: dangling by default with reclaimed layer bytes; dangling=false removes unused tagged images; until, label', async () => {
    const d = await addLayers(e.layers, [{ 'p/1': '12345678' }]);
    const old = (await e.images.create(config({ diffIds: d, created: '2020-01-01T00:00:00Z', nonce: 'old', labels: { keep: 'no' } }))).id;
    const p2 = (await e.images.create(config({ diffIds: d, created: '2020-01-02T00:00:00Z', nonce: 'p2' }), old)).id;
    const kept = (await e.images.create(config({ diffIds: d, created: '2020-01-03T00:00:00Z', nonce: 'kept' }))).id;
    await dropRegistrations(e.layers, d);
    await e.svc.tag(kept, 'kept', undefined);
    const layer = chainIds(d)[0]!;
    await assert.rejects(e.svc.prune({ bogus: ['1'] }), InvalidParameterError);
    // label filter that matches nothing dangling
    assert.deepEqual(await e.svc.prune({ label: ['nothere'] }), { ImagesDeleted: null, SpaceReclaimed: 0 });
    // p2 is dangling (no tags, no children); pruning it walks up to its untagged parent
    const r = await e.svc.prune({});
    assert.deepEqual(r, { ImagesDeleted: [{ Deleted: p2 }, { Deleted: old }], SpaceReclaimed: 0 });
    assert.ok(await e.layers.has(layer));
    // until in the past of "kept": nothing; dangling=false: the tagged unused image and its layer
    assert.deepEqual(await e.svc.prune({ dangling: ['false'], until: ['2019-12-31T00:00:00Z'] }), { ImagesDeleted: null, SpaceReclaimed: 0 });
    e.users.set(base, [{ id: 'b'.repeat(64), running: true }]);
    const r2 = await e.svc.prune({ dangling: ['false'], until: ['2020-06-01T00:00:00Z'] });
    assert.deepEqual(r2, { ImagesDeleted: [{ Untagged: 'kept:latest' }, { Deleted: kept }, { Deleted: layer }], SpaceReclaimed: 8 });
    assert.ok(await e.images.has(base));
    e.users.delete(base);
  });

  test('import: gzip tar, changes, history "Imported from", tag, progress message', async () => {
    const tar = await makeTar({ 'hello.txt': 'hello world\n', 'bin/tool': 'xyz' });
    const { msgs, sink } = collect();
    const id = await e.svc.importImage(Readable.from([gzipSync(tar)]), {
      repo: 'imported:1', source: '-',
      changes: ['CMD ["/bin/tool", "--x"]', 'ENV A=1 B="two words"', 'EXPOSE 80 443/udp', 'LABEL k=v', 'WORKDIR /srv', 'USER nobody', 'VOLUME /data', 'ENTRYPOINT /bin/sh -c', 'STOPSIGNAL SIGTERM', 'ONBUILD RUN echo hi'],
    }, sink);
    assert.deepEqual(msgs, [{ status: id }]);
    const raw = (await e.images.get(id as Digest)).raw;
    assert.equal(sha256(raw), id);
    const cfg = JSON.parse(raw.toString());
    assert.deepEqual(Object.keys(cfg), ['comment', 'created', 'container_config', 'docker_version', 'config', 'architecture', 'os', 'rootfs', 'history']);
    assert.equal(cfg.rootfs.diff_ids[0], sha256(tar));
    assert.deepEqual(cfg.config.Cmd, ['/bin/tool', '--x']);
    assert.deepEqual(cfg.config.Entrypoint, ['/bin/sh', '-c', '/bin/sh -c']);
    assert.deepEqual(cfg.config.Env, ['A=1', 'B=two words']);
    assert.deepEqual(cfg.config.ExposedPorts, { '80/tcp': {}, '443/udp': {} });
    assert.deepEqual(cfg.config.Labels, { k: 'v' });
    assert.equal(cfg.config.WorkingDir, '/srv');
    assert.equal(cfg.config.User, 'nobody');
    assert.deepEqual(cfg.config.Volumes, { '/data': {} });
    assert.equal(cfg.config.StopSignal, 'SIGTERM');
    assert.deepEqual(cfg.config.OnBuild, ['RUN echo hi']);
    assert.equal(cfg.os, 'linux');
    assert.equal(cfg.architecture, process.arch === 'x64' ? 'amd64' : process.arch);
    const h = await e.svc.history('imported:1');
    assert.deepEqual(h.map((x) => [x.Id, x.CreatedBy, x.Size, x.Tags, x.Comment]), [[id, '', 15, ['imported:1'], 'Imported from -']]);
    // the layer is held once (by the image): deleting the image deletes it
    const del = await e.svc.remove('imported:1', { force: false, noPrune: false });
    assert.deepEqual(del, [{ Untagged: 'imported:1' }, { Deleted: id }, { Deleted: sha256(tar) }]);
    await assert.rejects(e.svc.importImage(Readable.from([tar]), { source: '-', changes: ['RUN echo no'] }, () => {}),
      { message: 'run is not a valid change command' });
    await assert.rejects(e.svc.importImage(Readable.from([tar]), { source: '-', repo: `x@${sha256('d')}` }, () => {}), InvalidParameterError);
  });

  test('imagesDiskUsage: containers count and shared sizes', async () => {
    const d = await addLayers(e.layers, [{ 'bin/sh': 'x'.repeat(1000) }, { 'etc/passwd': 'root' }, { 'extra': '123' }]);
    const other = (await e.images.create(config({ diffIds: d, created: '2026-11-24T18:00:00Z', nonce: 'df' }))).id;
    await dropRegistrations(e.layers, d);
    await e.svc.tag(other, 'other', undefined);
    e.users.set(base, [{ id: 'a'.repeat(64), running: false }]);
    const df = await e.svc.imagesDiskUsage();
    e.users.delete(base);
    const byId = new Map(df.Images.map((i) => [i.Id, i]));
    assert.equal(byId.get(base)!.Containers, 1);
    assert.equal(byId.get(other)!.Containers, 0);
    assert.equal(byId.get(base)!.SharedSize, 1004);
    assert.equal(byId.get(other)!.SharedSize, 1004);
    assert.equal(df.LayersSize, 1007);
    await e.svc.remove('other', { force: false, noPrune: false });
  });
});

test('helpers: Go time formatting, path.Match, until timestamps', () => {
  assert.equal(goTimeString('2026-11-24T16:01:11.853310948Z'), '2026-11-24T16:01:11.853310948Z');
  assert.equal(goTimeString('2026-11-24T16:01:11.850000000Z'), '2026-11-24T16:01:11.85Z');
  assert.equal(goTimeString('2026-11-24T16:01:11.000+00:00'), '2026-11-24T16:01:11Z');
  assert.equal(goTimeString(undefined), '0001-01-01T00:00:00Z');
  assert.equal(pathMatch('busybox', 'busybox'), true);
  assert.equal(pathMatch('busy*', 'busybox:latest'), true);
  assert.equal(pathMatch('*', 'localhost:5002/library/busybox'), false);
  assert.equal(pathMatch('*/*/*', 'localhost:5002/library/busybox'), true);
  assert.equal(pathMatch('b[a-u]sybox', 'busybox'), true);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseTimestamp('1h', now), now - 3600e3);
  assert.equal(parseTimestamp('1700000000', now), 1700000000e3);
  assert.equal(parseTimestamp('2020-06-01T00:00:00Z', now), Date.parse('2020-06-01T00:00:00Z'));
  assert.throws(() => parseTimestamp('yesterday', now), InvalidParameterError);
});

test('inspect GraphDriver with the overlay driver: overlay2-style LowerDir/MergedDir/UpperDir/WorkDir', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-images-ov-'));
  try {
    const layers = await openLayerStore({ dataRoot: root, driver: 'overlay' });
    const images = await openImageStore(root, layers);
    const refs = await openReferenceStore(root);
    const svc = new ImageService({ images, refs, layers, dataRoot: root, applyChanges, puller: { async pull() {} } });
    const d = await addLayers(layers, [{ a: '1' }, { b: '2' }]);
    const img = await images.create(config({ diffIds: d }));
    await dropRegistrations(layers, d);
    const gd = (await svc.inspect(img.id)).GraphDriver as { Name: string; Data: Record<string, string> };
    assert.equal(gd.Name, 'overlay2');
    assert.deepEqual(Object.keys(gd.Data), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir']);
    const [c0, c1] = chainIds(d);
    assert.equal(gd.Data.UpperDir, await layers.diffPath(c1!));
    assert.equal(gd.Data.LowerDir, await layers.diffPath(c0!));
    assert.equal(gd.Data.MergedDir, gd.Data.UpperDir!.replace(/diff$/, 'merged'));
    assert.equal(gd.Data.WorkDir, gd.Data.UpperDir!.replace(/diff$/, 'work'));
    assert.ok(existsSync(join(gd.Data.UpperDir!, 'b')));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('decompressStream: plain, gzip, zstd, bzip2 and xz tars come out identical', async () => {
  const { decompressStream } = await import('../../src/lib/compression.js');
  const { execFileSync } = await import('node:child_process');
  const zlib = await import('node:zlib');
  const tar = await makeTar({ 'a.txt': 'a'.repeat(5000), 'b.txt': 'b' });
  const read = async (buf: Buffer) => {
    const out: Buffer[] = [];
    // split into small chunks to exercise the peek
    const parts = [buf.subarray(0, 1), buf.subarray(1, 3), buf.subarray(3)];
    for await (const c of (await decompressStream(Readable.from(parts))).stream) out.push(c as Buffer);
    return Buffer.concat(out);
  };
  assert.ok((await read(tar)).equals(tar));
  assert.ok((await read(gzipSync(tar))).equals(tar));
  const z = zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer };
  if (z.zstdCompressSync) assert.ok((await read(z.zstdCompressSync(tar))).equals(tar));
  for (const tool of ['bzip2', 'xz']) {
    let packed: Buffer;
    try { packed = execFileSync(tool, ['-c'], { input: tar }); } catch { continue; }
    assert.ok((await read(packed)).equals(tar), tool);
  }
});

test('kill -9 during creates, tags and deletes: after reopen every image has its layers and every tag its image', { timeout: 120_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const root = await mkdtemp(join(tmpdir(), 'wharf-images-kill-'));
  const mod = (p: string) => new URL(p, import.meta.url).href;
  // the child creates images (each on a fresh layer and on a shared one), tags them, and deletes every third
  const child = `
    const { openLayerStore } = await import(${JSON.stringify(mod('../../src/engine/layers/store.js'))});
    const { openImageStore, openReferenceStore } = await import(${JSON.stringify(mod('../../src/engine/images/store.js'))});
    const { ImageService } = await import(${JSON.stringify(mod('../../src/engine/images/service.js'))});
    const { applyChanges } = await import(${JSON.stringify(mod('../../src/engine/build/changes.js'))});
    const { Readable } = await import('node:stream');
    const root = ${JSON.stringify(root)};
    const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
    const images = await openImageStore(root, layers);
    const refs = await openReferenceStore(root);
    const svc = new ImageService({ images, refs, layers, dataRoot: root, applyChanges, puller: null });
    for (let i = 0; ; i++) {
      const n = process.pid + '-' + i;
      const tar = Buffer.alloc(2048);
      tar.write('f' + n, 0); tar.write('0000644', 100); tar.write('00000000004', 124); tar.write('0', 156);
      tar.write('ustar', 257);
      let sum = 0; tar.fill(' ', 148, 156); for (const b of tar.subarray(0, 512)) sum += b;
      tar.write(sum.toString(8).padStart(6, '0') + '\\0 ', 148);
      tar.write('data', 512);
      const id = await svc.importImage(Readable.from([tar]), { repo: 'k' + (i % 7), tag: 't', source: '-' }, () => {});
      if (i % 3 === 2) await svc.remove(id, { force: true, noPrune: false }).catch(() => {});
      // the kill countdown starts once an image exists (the first extraction also starts the extraction thread)
      if (i === 0) process.stdout.write('ready\\n');
    }
  `;
  try {
    for (let round = 0; round < 3; round++) {
      const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((res) => p.stdout!.once('data', () => res()));
      // the point: the child is killed at a different moment of its work each round
      await sleep(150 + round * 120);
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));

      const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
      const images = await openImageStore(root, layers);
      const refs = await openReferenceStore(root);
      const list = await images.list();
      assert.ok(round > 0 || list.length > 0, 'the child created images before being killed');
      for (const img of list) {
        assert.equal(sha256(img.raw), img.id);
        for (const c of chainIds(img.config.rootfs.diff_ids)) assert.ok(await layers.has(c), `layer ${c} of ${img.id}`);
      }
      for (const [ref, id] of refs.all()) assert.ok(await images.has(id), `${ref} → ${id}`);
      const contentDir = join(root, 'image/imagedb/content/sha256');
      assert.deepEqual((await readdir(contentDir)).filter((n) => n.startsWith('.tmp-')), []);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
