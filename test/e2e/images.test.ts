/**
 * End to end, issue 2 (the foundation): pull, images, inspect, history, tag, rmi, prune and system df through
 * the wharf CLI, against a real wharfd, a real docker-registry and fixture images built without wharf
 * (test/support/oci-images.ts). The steps build on each other and run in order.
 * Expected texts come from docker's own output (shared/reference/docker-transcript.txt).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, stat, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageLayerDirs, startDaemon, type Daemon } from '../support/daemon.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { buildOciLayout, busyboxSpec, pushLayout, registryBlobPath, type BuiltImage, type ImageSpec } from '../support/oci-images.js';
import { chainIds, lines, parseTable, run, show, shortId, tabwrite } from '../support/cli.js';

let reg: Registry;
let d: Daemon;
let H: string;
let work: string;
const img: Record<string, BuiltImage> = {};

/** The key set of `docker image inspect` (dockerd 20.10, from the transcript). */
const INSPECT_KEYS = ['Architecture', 'Author', 'Comment', 'Config', 'Container', 'ContainerConfig', 'Created', 'DockerVersion',
  'GraphDriver', 'Id', 'Metadata', 'Os', 'Parent', 'RepoDigests', 'RepoTags', 'RootFS', 'Size', 'VirtualSize'];
const CONFIG_KEYS = ['AttachStderr', 'AttachStdin', 'AttachStdout', 'Cmd', 'Domainname', 'Entrypoint', 'Env', 'Hostname', 'Image',
  'Labels', 'OnBuild', 'OpenStdin', 'StdinOnce', 'Tty', 'User', 'Volumes', 'WorkingDir'];
const JSON_KEYS = ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize'];

async function push(name: string, repoTag: string, spec: ImageSpec): Promise<BuiltImage> {
  const dir = join(work, name);
  const built = await buildOciLayout(dir, spec);
  await pushLayout(dir, H, repoTag);
  img[name] = built;
  return built;
}

/** busybox (one layer) + an application layer + a layer that deletes a file and adds another. */
async function appSpec(version: string): Promise<ImageSpec> {
  const base = await busyboxSpec();
  return {
    layers: [
      base.layers[0]!,
      { files: [{ path: 'app/hello.txt', content: `hello ${version}\n` }, { path: 'app/gone.txt', content: 'to be deleted\n' }], createdBy: `/bin/sh -c #(nop) COPY app ${version}` },
      { files: [{ path: 'app/gone.txt', type: 'whiteout' }, { path: 'app/two.txt', content: `two ${version}\n` }], createdBy: '/bin/sh -c rm /app/gone.txt && echo two > /app/two.txt' },
    ],
    config: { Cmd: ['sh'], Labels: { 'org.example.version': version } },
    emptyHistory: ['/bin/sh -c #(nop)  CMD ["sh"]'],
  };
}

async function inspect(ref: string): Promise<Record<string, any>> {
  const r = await d.wharf(['image', 'inspect', ref]);
  assert.equal(r.code, 0, show(r));
  const arr = JSON.parse(r.stdout);
  assert.ok(Array.isArray(arr) && arr.length === 1, r.stdout);
  return arr[0];
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-images-'));
  reg = await startRegistry();
  H = reg.host;
  d = await startDaemon();
  await push('busybox', 'library/busybox:latest', await busyboxSpec());
  await push('appv1', 'test/app:v1', await appSpec('v1'));
  await push('appv2', 'test/app:v2', await appSpec('v2'));
});

after(async () => {
  await d?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('pull: a fresh single-layer image, progress lines, digest, status, reference', async () => {
  const r = await d.wharf(['pull', `${H}/library/busybox`]);
  assert.equal(r.code, 0, show(r));
  const out = lines(r.stdout);
  const bb = img.busybox!;
  assert.equal(out[0], 'Using default tag: latest');
  assert.equal(out[1], 'latest: Pulling from library/busybox');
  assert.ok(out.includes(`${shortId(bb.layers[0]!.digest)}: Pull complete`), r.stdout);
  assert.deepEqual(out.slice(-3), [
    `Digest: ${bb.manifestDigest}`,
    `Status: Downloaded newer image for ${H}/library/busybox:latest`,
    `${H}/library/busybox:latest`,
  ]);
});

test('pull: again is "Image is up to date", exactly as docker prints it', async () => {
  const r = await d.wharf(['pull', `${H}/library/busybox:latest`]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, [
    'latest: Pulling from library/busybox',
    `Digest: ${img.busybox!.manifestDigest}`,
    `Status: Image is up to date for ${H}/library/busybox:latest`,
    `${H}/library/busybox:latest`, ''].join('\n'));
});

test('pull: multi-layer image; the shared busybox layer "Already exists"; files, whiteouts on disk', async () => {
  const a = img.appv1!;
  const r = await d.wharf(['pull', `${H}/test/app:v1`]);
  assert.equal(r.code, 0, show(r));
  const out = lines(r.stdout);
  assert.equal(out[0], 'v1: Pulling from test/app');
  assert.ok(out.includes(`${shortId(a.layers[0]!.digest)}: Already exists`), r.stdout);
  assert.ok(!out.includes(`${shortId(a.layers[0]!.digest)}: Pull complete`), r.stdout);
  for (const l of a.layers.slice(1)) assert.ok(out.includes(`${shortId(l.digest)}: Pull complete`), r.stdout);
  assert.equal(out.at(-2), `Status: Downloaded newer image for ${H}/test/app:v1`);

  const info = await inspect(`${H}/test/app:v1`);
  assert.deepEqual(info.RootFS, { Type: 'layers', Layers: a.layers.map((l) => l.diffId) });
  const { kind, dirs } = imageLayerDirs(d, info);
  assert.equal(dirs.length, 3, JSON.stringify(info.GraphDriver));
  for (const dir of dirs) assert.ok(dir.startsWith(d.dataRoot + '/'), `${dir} is outside the data root`);
  if (kind === 'full') {
    // vfs: each layer is a full copy of its chain
    assert.equal(await readFile(join(dirs[0]!, 'app/hello.txt'), 'utf8'), 'hello v1\n');
    assert.equal(await readFile(join(dirs[0]!, 'app/two.txt'), 'utf8'), 'two v1\n');
    assert.equal(existsSync(join(dirs[0]!, 'app/gone.txt')), false);
    assert.equal(await readFile(join(dirs[1]!, 'app/gone.txt'), 'utf8'), 'to be deleted\n');
    assert.equal(existsSync(join(dirs[2]!, 'app')), false);
    assert.ok((await stat(join(dirs[0]!, 'bin/busybox'))).size > 100_000);
    return;
  }
  // Each layer's own files in its own directory (top first).
  assert.equal(await readFile(join(dirs[0]!, 'app/two.txt'), 'utf8'), 'two v1\n');
  const wh = await stat(join(dirs[0]!, 'app/gone.txt'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'the whiteout is an overlay 0/0 character device');
  assert.equal(await readFile(join(dirs[1]!, 'app/hello.txt'), 'utf8'), 'hello v1\n');
  assert.ok((await stat(join(dirs[2]!, 'bin/busybox'))).size > 100_000);
  // The chain mounted read-only by overlayfs, as a container would see it.
  const mnt = await mkdtemp(join(work, 'mnt-'));
  const m = await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${dirs.join(':')}`, mnt]);
  assert.equal(m.code, 0, show(m));
  try {
    assert.equal(await readFile(join(mnt, 'app/hello.txt'), 'utf8'), 'hello v1\n');
    assert.equal(await readFile(join(mnt, 'app/two.txt'), 'utf8'), 'two v1\n');
    assert.equal(existsSync(join(mnt, 'app/gone.txt')), false);
    assert.ok((await stat(join(mnt, 'bin/busybox'))).isFile());
    assert.match(await readFile(join(mnt, 'etc/passwd'), 'utf8'), /^root:x:0:0:/);
  } finally {
    await run('umount', ['-l', mnt]);
  }
});

test('inspect: dockerd\'s key set, ID = sha256 of the config, tags, repo digests, rootfs', async () => {
  const bb = img.busybox!;
  const info = await inspect(`${H}/library/busybox`);
  assert.deepEqual(Object.keys(info).sort(), INSPECT_KEYS);
  assert.deepEqual(Object.keys(info.Config).sort(), CONFIG_KEYS);
  assert.deepEqual(Object.keys(info.ContainerConfig).sort(), CONFIG_KEYS);
  assert.equal(info.Id, bb.configDigest);
  assert.deepEqual(info.RepoTags, [`${H}/library/busybox:latest`]);
  assert.deepEqual(info.RepoDigests, [`${H}/library/busybox@${bb.manifestDigest}`]);
  assert.deepEqual(info.Config.Cmd, ['sh']);
  assert.equal(info.Architecture, 'amd64');
  assert.equal(info.Os, 'linux');
  assert.equal(info.Created, '2024-01-01T00:00:00Z');
  assert.equal(info.Parent, '');
  assert.deepEqual(info.RootFS, { Type: 'layers', Layers: [bb.layers[0]!.diffId] });
  assert.ok(info.Size > (await stat('/bin/busybox')).size, `Size ${info.Size}`);
  assert.equal(info.VirtualSize, info.Size);
  assert.equal(typeof info.GraphDriver.Name, 'string');
  if (process.env.WHARF_TEST_DRIVER === 'vfs') assert.equal(info.GraphDriver.Name, 'vfs');
  assert.equal(typeof info.Metadata, 'object');

  const f = await d.wharf(['inspect', '--format', '{{.Id}} {{.RootFS.Layers}}', `${H}/library/busybox`]);
  assert.equal(f.code, 0, show(f));
  assert.equal(f.stdout, `${bb.configDigest} [${bb.layers[0]!.diffId}]\n`);

  const missing = await d.wharf(['image', 'inspect', 'nosuch:1']);
  assert.equal(missing.code, 1, show(missing));
  assert.match(missing.stderr, /No such image: nosuch:1/);
});

test('tag: a second name for the same image', async () => {
  const r = await d.wharf(['tag', `${H}/library/busybox:latest`, 'bb:1']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, '');
  const info = await inspect('bb:1');
  assert.equal(info.Id, img.busybox!.configDigest);
  assert.deepEqual([...info.RepoTags].sort(), ['bb:1', `${H}/library/busybox:latest`].sort());
  const bad = await d.wharf(['tag', 'nosuch:1', 'x:1']);
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stderr, /No such image: nosuch:1/);
});

test('images: table layout, rows, -a, -q, --no-trunc, --digests', async () => {
  const bbId = shortId(img.busybox!.configDigest);
  const appId = shortId(img.appv1!.configDigest);
  const r = await d.wharf(['images']);
  assert.equal(r.code, 0, show(r));
  const t = parseTable(r.stdout);
  assert.deepEqual(t.columns.map((c) => c.name), ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']);
  const got = t.rows.map((row) => `${row.REPOSITORY} ${row.TAG} ${row['IMAGE ID']}`).sort();
  assert.deepEqual(got, [`${H}/library/busybox latest ${bbId}`, `${H}/test/app v1 ${appId}`, `bb 1 ${bbId}`].sort());
  for (const row of t.rows) {
    assert.match(row.CREATED!, /ago$/);
    assert.match(row.SIZE!, /^\d+(\.\d+)?(B|kB|MB)$/);
  }
  // Column offsets as docker's tabwriter computes them from these cells.
  assert.equal(r.stdout, tabwrite([t.columns.map((c) => c.name), ...lines(r.stdout).slice(1).map((_, i) => t.columns.map((c) => t.rows[i]![c.name]!))]));

  const all = await d.wharf(['images', '-a']);
  assert.equal(all.code, 0, show(all));
  assert.deepEqual(lines(all.stdout).sort(), lines(r.stdout).sort(), 'pulled images have no intermediate parents');

  const q = await d.wharf(['images', '-q']);
  assert.equal(q.code, 0, show(q));
  // (dockerd lists images with equal creation times, and the tags of one image, in no fixed order)
  assert.deepEqual(lines(q.stdout).sort(), t.rows.map((row) => row['IMAGE ID']!).sort());

  const nt = await d.wharf(['images', '--no-trunc']);
  assert.equal(nt.code, 0, show(nt));
  const ntIds = parseTable(nt.stdout).rows.map((row) => row['IMAGE ID']).sort();
  assert.deepEqual(ntIds, [img.busybox!.configDigest, img.busybox!.configDigest, img.appv1!.configDigest].sort());

  const dg = await d.wharf(['images', '--digests']);
  assert.equal(dg.code, 0, show(dg));
  const dt = parseTable(dg.stdout);
  assert.deepEqual(dt.columns.map((c) => c.name), ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE']);
  const digests = Object.fromEntries(dt.rows.map((row) => [`${row.REPOSITORY}:${row.TAG}`, row.DIGEST]));
  assert.deepEqual(digests, {
    [`${H}/library/busybox:latest`]: img.busybox!.manifestDigest,
    [`${H}/test/app:v1`]: img.appv1!.manifestDigest,
    'bb:1': '<none>',
  });
});

test('images: filters (dangling, reference, positional), --format table and {{json .}}', async () => {
  const dangling = await d.wharf(['images', '-f', 'dangling=true']);
  assert.equal(dangling.code, 0, show(dangling));
  assert.equal(dangling.stdout, 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');

  const ref = await d.wharf(['images', '-f', `reference=${H}/test/*`, '--format', '{{.Repository}}:{{.Tag}}']);
  assert.equal(ref.code, 0, show(ref));
  assert.equal(ref.stdout, `${H}/test/app:v1\n`);
  const pos = await d.wharf(['image', 'ls', 'bb', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.equal(pos.code, 0, show(pos));
  assert.equal(pos.stdout, `bb:1 ${shortId(img.busybox!.configDigest)}\n`);
  const bad = await d.wharf(['images', '-f', 'nope=1']);
  assert.equal(bad.code, 1, show(bad));
  assert.equal(bad.stderr, "Error response from daemon: Invalid filter 'nope'\n");

  const tf = await d.wharf(['images', '--format', 'table {{.ID}}\t{{.Repository}}\t{{.Tag}}']);
  assert.equal(tf.code, 0, show(tf));
  const tl = lines(tf.stdout);
  assert.match(tl[0]!, /^IMAGE ID {7}REPOSITORY {3,}TAG$/);
  assert.equal(tl.length, 4);

  const js = await d.wharf(['images', '--format', '{{json .}}']);
  assert.equal(js.code, 0, show(js));
  const objs = lines(js.stdout).map((l) => JSON.parse(l) as Record<string, string>);
  assert.equal(objs.length, 3);
  for (const o of objs) {
    assert.deepEqual(Object.keys(o), JSON_KEYS, 'same keys in the same (sorted) order as docker');
    assert.equal(o.Containers, 'N/A');
    assert.equal(o.Digest, '<none>');
    assert.match(o.CreatedAt!, /^2024-01-01 00:00:00 \+0000 UTC$/);
    assert.match(o.ID!, /^[0-9a-f]{12}$/);
  }
  assert.ok(js.stdout.includes('"Digest":"\\u003cnone\\u003e"'), 'Go\'s JSON escapes < and >');
});

test('history: rows newest first, <missing> below the image, empty layers 0B', async () => {
  const r = await d.wharf(['history', `${H}/test/app:v1`]);
  assert.equal(r.code, 0, show(r));
  const t = parseTable(r.stdout);
  assert.deepEqual(t.columns.map((c) => c.name), ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']);
  assert.deepEqual(t.rows.map((row) => row.IMAGE), [shortId(img.appv1!.configDigest), '<missing>', '<missing>', '<missing>']);
  assert.equal(t.rows[0]!['CREATED BY'], '/bin/sh -c #(nop)  CMD ["sh"]');
  assert.equal(t.rows[0]!.SIZE, '0B');
  // docker cuts CREATED BY at 45 characters, the last one an ellipsis
  assert.equal(t.rows[1]!['CREATED BY'], '/bin/sh -c rm /app/gone.txt && echo two > /a…');
  assert.equal(t.rows[2]!['CREATED BY'], '/bin/sh -c #(nop) COPY app v1');
  assert.match(t.rows[3]!['CREATED BY']!, /^\/bin\/sh -c #\(nop\) ADD file:busybox in /);
  assert.match(t.rows[3]!.SIZE!, /MB$/);
  const nt = await d.wharf(['history', '--no-trunc', '-q', `${H}/test/app:v1`]);
  assert.equal(nt.code, 0, show(nt));
  assert.deepEqual(lines(nt.stdout), [img.appv1!.configDigest, '<missing>', '<missing>', '<missing>']);
});

test('system df: one line per type, images counted and reclaimable', async () => {
  const r = await d.wharf(['system', 'df']);
  assert.equal(r.code, 0, show(r));
  const t = parseTable(r.stdout);
  assert.deepEqual(t.columns.map((c) => c.name), ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE']);
  assert.deepEqual(t.rows.map((row) => row.TYPE), ['Images', 'Containers', 'Local Volumes', 'Build Cache']);
  assert.equal(t.rows[0]!.TOTAL, '2');
  assert.equal(t.rows[0]!.ACTIVE, '0');
  assert.match(t.rows[0]!.RECLAIMABLE!, /^\d+(\.\d+)?MB \(100%\)$/);
  assert.equal(t.rows[1]!.TOTAL, '0');
});

test('errors: bad reference, missing manifest', async () => {
  const bad = await d.wharf(['pull', 'INVALID::ref']);
  assert.equal(bad.code, 1, show(bad));
  assert.equal(bad.stderr, 'invalid reference format: repository name (library/INVALID) must be lowercase\n');
  const nope = await d.wharf(['pull', `${H}/library/nope:1`]);
  assert.equal(nope.code, 1, show(nope));
  assert.equal(nope.stderr, `Error response from daemon: manifest for ${H}/library/nope:1 not found: manifest unknown: manifest unknown\n`);
});

test('retag: an image that loses its last tag is dangling; image prune -f deletes it and its own layers', async () => {
  const a = img.appv1!;
  const b = img.appv2!;
  const before = await inspect(`${H}/test/app:v1`);
  const ownDirs = imageLayerDirs(d, before).dirs.slice(0, 2);
  assert.equal((await d.wharf(['tag', `${H}/test/app:v1`, 'mine:x'])).code, 0);
  const un = await d.wharf(['rmi', `${H}/test/app:v1`]);
  assert.equal(un.code, 0, show(un));
  assert.equal(un.stdout, `Untagged: ${H}/test/app:v1\nUntagged: ${H}/test/app@${a.manifestDigest}\n`);
  const p2 = await d.wharf(['pull', `${H}/test/app:v2`]);
  assert.equal(p2.code, 0, show(p2));
  assert.equal((await d.wharf(['tag', `${H}/test/app:v2`, 'mine:x'])).code, 0);

  const dangling = await d.wharf(['images', '-f', 'dangling=true', '--format', '{{.Repository}} {{.Tag}} {{.ID}}']);
  assert.equal(dangling.code, 0, show(dangling));
  assert.equal(dangling.stdout, `<none> <none> ${shortId(a.configDigest)}\n`);
  const listed = await d.wharf(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.ok(lines(listed.stdout).includes('<none>:<none>'), listed.stdout);

  const pr = await d.wharf(['image', 'prune', '-f']);
  assert.equal(pr.code, 0, show(pr));
  const chains = chainIds(a.layers.map((l) => l.diffId));
  const out = lines(pr.stdout);
  assert.deepEqual(out.slice(0, 4), ['Deleted Images:', `deleted: ${a.configDigest}`, `deleted: ${chains[2]}`, `deleted: ${chains[1]}`]);
  assert.equal(out[4], '');
  assert.match(out[5]!, /^Total reclaimed space: \d+(\.\d+)?k?B$/);
  assert.equal(out.length, 6);
  for (const dir of ownDirs) assert.equal(existsSync(dir), false, `${dir} removed with its layer`);
  assert.equal((await d.wharf(['image', 'inspect', a.configDigest])).code, 1);
  const again = await d.wharf(['image', 'prune', '-f']);
  assert.equal(again.stdout, 'Total reclaimed space: 0B\n');
  // The shared busybox layer stayed for the other images.
  assert.ok((await inspect(`${H}/library/busybox`)).RootFS.Layers[0] === b.layers[0]!.diffId);
});

test('corrupted blob in the registry: the pull fails, leaves no image, earlier images intact', async () => {
  const base = await busyboxSpec();
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const c = await push('corrupt', 'test/corrupt:1', { layers: [base.layers[0]!, { files: [{ path: 'data.bin', content: big }] }], config: { Cmd: ['sh'] } });
  const blob = registryBlobPath(reg.dir, c.layers[1]!.digest);
  const bytes = await readFile(blob);
  for (let i = 100; i < bytes.length - 100; i += 97) bytes[i] = bytes[i]! ^ 0xff;
  await writeFile(blob, bytes);
  const driverRoot = join(d.dataRoot, String((await inspect(`${H}/library/busybox`)).GraphDriver.Name));
  const countBefore = existsSync(driverRoot) ? (await readdir(driverRoot)).length : -1;

  const r = await d.wharf(['pull', `${H}/test/corrupt:1`]);
  assert.equal(r.code, 1, show(r));
  assert.ok(r.stderr.length > 0, show(r));
  assert.doesNotMatch(r.stdout, /Status: Downloaded/);
  const ls = await d.wharf(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.equal(ls.code, 0, show(ls));
  assert.ok(!ls.stdout.includes('test/corrupt'), ls.stdout);
  assert.equal((await d.api('GET', '/v1.41/images/' + encodeURIComponent(`${H}/test/corrupt:1`) + '/json')).status, 404);
  if (countBefore >= 0) assert.equal((await readdir(driverRoot)).length, countBefore, 'no layer directory left behind');
  const bb = await inspect(`${H}/library/busybox`);
  assert.equal(bb.Id, img.busybox!.configDigest);
  const h = await d.wharf(['history', `${H}/test/app:v2`]);
  assert.equal(h.code, 0, show(h));
});

test('rmi: tag only, name@digest, conflicts (409), short and long IDs, layers deleted top down', async () => {
  const bb = img.busybox!;
  const b = img.appv2!;
  // The v2 image has two repositories (test/app and mine): deleting it by ID needs force.
  const conflict = await d.wharf(['rmi', shortId(b.configDigest)]);
  assert.equal(conflict.code, 1, show(conflict));
  assert.equal(conflict.stderr, `Error response from daemon: conflict: unable to delete ${shortId(b.configDigest)} (must be forced) - image is referenced in multiple repositories\n`);
  const api = await d.api('DELETE', `/v1.41/images/${shortId(b.configDigest)}`);
  assert.equal(api.status, 409, api.body);

  const t1 = await d.wharf(['rmi', 'bb:1']);
  assert.equal(t1.code, 0, show(t1));
  assert.equal(t1.stdout, 'Untagged: bb:1\n');
  const byDigest = await d.wharf(['rmi', `${H}/library/busybox@${bb.manifestDigest}`]);
  assert.equal(byDigest.code, 0, show(byDigest));
  assert.equal(byDigest.stdout, `Untagged: ${H}/library/busybox@${bb.manifestDigest}\n`);
  // By long ID: its last tag goes, the image goes; its layer stays (app:v2 uses it).
  const byId = await d.wharf(['rmi', bb.configDigest]);
  assert.equal(byId.code, 0, show(byId));
  assert.equal(byId.stdout, `Untagged: ${H}/library/busybox:latest\nDeleted: ${bb.configDigest}\n`);

  assert.equal((await d.wharf(['rmi', 'mine:x'])).stdout, 'Untagged: mine:x\n');
  // By short ID: everything, including the busybox layer nobody uses any more (top down).
  const chains = chainIds(b.layers.map((l) => l.diffId));
  const last = await d.wharf(['rmi', shortId(b.configDigest)]);
  assert.equal(last.code, 0, show(last));
  assert.deepEqual(lines(last.stdout), [
    `Untagged: ${H}/test/app:v2`,
    `Untagged: ${H}/test/app@${b.manifestDigest}`,
    `Deleted: ${b.configDigest}`,
    `Deleted: ${chains[2]}`,
    `Deleted: ${chains[1]}`,
    `Deleted: ${chains[0]}`,
  ]);
  const missing = await d.wharf(['rmi', 'nosuch:1']);
  assert.equal(missing.code, 1, show(missing));
  assert.equal(missing.stderr, 'Error response from daemon: No such image: nosuch:1\n');
  const empty = await d.wharf(['images', '-a', '-q']);
  assert.equal(empty.stdout, '');
});

test('image prune -a -f removes every unused image; system df then counts none', async () => {
  const p = await d.wharf(['pull', `${H}/library/busybox:latest`]);
  assert.equal(p.code, 0, show(p));
  const bb = img.busybox!;
  const r = await d.wharf(['image', 'prune', '-a', '-f']);
  assert.equal(r.code, 0, show(r));
  const out = lines(r.stdout);
  assert.deepEqual(out.slice(0, 5), [
    'Deleted Images:',
    `untagged: ${H}/library/busybox:latest`,
    `untagged: ${H}/library/busybox@${bb.manifestDigest}`,
    `deleted: ${bb.configDigest}`,
    `deleted: ${bb.layers[0]!.diffId}`,
  ]);
  assert.match(out.at(-1)!, /^Total reclaimed space: \d+(\.\d+)?MB$/);
  const df = await d.wharf(['system', 'df']);
  assert.equal(df.code, 0, show(df));
  assert.match(lines(df.stdout)[1]!, /^Images {10}0 {9}0 {9}0B {8}0B$/);
});
