import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile, unlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { addLayer, buildTar, type TarEntry } from '../support/tar.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import type { LayerStore } from '../../src/engine/layers/types.js';
import { chainIdOf, sha256, type Digest } from '../../src/lib/digest.js';
import { InvalidParameterError } from '../../src/lib/errors.js';
import { waitFor } from '../support/wait.js';

type E = TarEntry;

async function tarEntries(s: Readable): Promise<Map<string, { header: tarStream.Header; content: string }>> {
  const ex = tarStream.extract();
  const m = new Map<string, { header: tarStream.Header; content: string }>();
  const feed = (async () => {
    for await (const c of s) ex.write(c);
    ex.end(undefined as never);
  })();
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    m.set(e.header.name.replace(/\/$/, ''), { header: e.header, content: Buffer.concat(chunks).toString() });
  }
  await feed;
  return m;
}

async function streamBytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

const T = new Date(1_600_000_000_000);
const INIT_TOP = ['.dockerenv', 'dev', 'etc', 'proc', 'sys'];

async function withStore(driver: string, fn: (s: LayerStore, root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), `wharf-layers-${driver}-`));
  try {
    const s = await openLayerStore({ dataRoot: root, driver });
    assert.equal(s.driverName, driver);
    await fn(s, root);
  } finally {
    // unmount anything left under root
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(root));
    for (const m of mounts.reverse()) {
      try { execFileSync('umount', [m]); } catch { /* ignore */ }
    }
    await rm(root, { recursive: true, force: true });
  }
}

const L1: E[] = [
  { name: 'a', content: 'A' },
  { name: 'b', content: 'B' },
  { name: 'd', type: 'directory', mode: 0o755 },
  { name: 'd/x', content: 'X' },
  { name: 'd/y', content: 'Y' },
  { name: 'keep', content: 'keep me' },
  { name: 'c', content: 'C' },
];
const L2: E[] = [
  { name: '.wh.a' },
  { name: 'd', type: 'directory', mode: 0o755 },
  { name: 'd/.wh..wh..opq' },
  { name: 'd/z', content: 'Z' },
  { name: 'two', content: '2' },
];
const L3: E[] = [{ name: '.wh.b' }, { name: 'e', content: 'E' }];

for (const driver of ['overlay', 'vfs']) {
  describe(`layer store (${driver})`, () => {
    test('extract: files, dirs, symlinks, hardlinks, setuid, owners, devices, fifo, xattrs, whiteouts', async () => {
      await withStore(driver, async (s) => {
        const entries: E[] = [
          { name: 'etc/', type: 'directory', mode: 0o755, mtime: T },
          { name: 'etc/passwd', content: 'root:x:0:0\n', mode: 0o644, mtime: T },
          { name: 'bin/', type: 'directory', mode: 0o750, uid: 1000, gid: 1001, mtime: T },
          { name: 'bin/su', content: '#!/bin/sh\n', mode: 0o4755, mtime: T },
          { name: 'bin/owned', content: 'o', mode: 0o2750, uid: 1000, gid: 1001, mtime: T },
          { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', mtime: T },
          { name: 'bin/busybox', content: 'BB', mode: 0o755, mtime: T },
          { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
          { name: 'dev/', type: 'directory', mode: 0o755 },
          { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
          { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
          { name: 'tmp/', type: 'directory', mode: 0o1777 },
          { name: 'cap', content: 'c', pax: { 'SCHILY.xattr.user.wharf': 'yes' } },
          { name: 'implicit/parent/file', content: 'deep' },
          { name: 'etc/.wh.shadow' },
          { name: 'opq/', type: 'directory' },
          { name: 'opq/.wh..wh..opq' },
          { name: 'opq/inside', content: 'i' },
        ];
        const tar = await buildTar(entries);
        const ex = await s.extract(Readable.from([tar]));
        assert.equal(ex.diffId, sha256(tar));
        assert.equal(ex.size, 'root:x:0:0\n'.length + 10 + 1 + 2 + 1 + 4 + 1);
        const l = await s.register(null, ex);
        assert.equal(l.chainId, ex.diffId);
        assert.equal(l.size, ex.size);
        // the length the recorder counted is the tar's (PAX records for the xattrs, devices, links included)
        assert.equal(await s.exactTarSize!(l.chainId), tar.length);
        assert.equal(sha256(await streamBytes(await s.tarStream(l.chainId))), sha256(tar));
        const dir = await s.diffPath(l.chainId);
        assert.equal(await readFile(join(dir, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
        const su = await stat(join(dir, 'bin/su'));
        assert.equal(su.mode & 0o7777, 0o4755);
        const owned = await stat(join(dir, 'bin/owned'));
        assert.equal(owned.mode & 0o7777, 0o2750);
        assert.equal(owned.uid, 1000);
        assert.equal(owned.gid, 1001);
        const bin = await stat(join(dir, 'bin'));
        assert.equal(bin.mode & 0o7777, 0o750);
        assert.equal(bin.uid, 1000);
        assert.equal(bin.mtime.getTime(), T.getTime(), 'dir mtime set after its content');
        assert.equal((await stat(join(dir, 'etc/passwd'))).mtime.getTime(), T.getTime());
        assert.equal(await readlink(join(dir, 'bin/sh')), '/bin/busybox');
        const bb = await stat(join(dir, 'bin/busybox'));
        const ls = await stat(join(dir, 'bin/ls'));
        assert.equal(bb.ino, ls.ino);
        assert.equal(bb.nlink, 2);
        const dn = await lstat(join(dir, 'dev/null'));
        assert.ok(dn.isCharacterDevice());
        assert.equal(dn.rdev, (1 << 8) | 3);
        assert.equal(dn.mode & 0o777, 0o666);
        assert.ok((await lstat(join(dir, 'dev/fifo'))).isFIFO());
        assert.equal((await stat(join(dir, 'tmp'))).mode & 0o7777, 0o1777);
        assert.equal(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'user.wharf', join(dir, 'cap')]).toString(), 'yes');
        assert.equal(await readFile(join(dir, 'implicit/parent/file'), 'utf8'), 'deep');
        assert.equal(await readFile(join(dir, 'opq/inside'), 'utf8'), 'i');
        if (driver === 'overlay') {
          const wh = await lstat(join(dir, 'etc/shadow'));
          assert.ok(wh.isCharacterDevice());
          assert.equal(wh.rdev, 0);
          assert.equal(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', join(dir, 'opq')]).toString(), 'y');
        } else {
          assert.equal(await exists(join(dir, 'etc/shadow')), false);
          assert.equal(await exists(join(dir, '.wh.shadow')), false);
        }
        // the regenerated tar has the same content in OCI form
        const back = await tarEntries(await s.tarStream(l.chainId));
        assert.equal(back.get('bin/su')?.header.mode, 0o4755);
        assert.equal(back.get('bin/su')?.content, '#!/bin/sh\n');
        assert.equal(back.get('bin/sh')?.header.linkname, '/bin/busybox');
        assert.equal(back.get('dev/null')?.header.type, 'character-device');
        assert.equal(back.get('dev/null')?.header.devminor, 3);
        const links = [back.get('bin/ls')?.header, back.get('bin/busybox')?.header].map((h) => h?.type).sort();
        assert.deepEqual(links, ['file', 'link']);
        assert.equal(back.get('bin/owned')?.header.uid, 1000);
        assert.equal(back.get('cap')?.header.pax && (back.get('cap')!.header.pax as Record<string, string>)['SCHILY.xattr.user.wharf'], 'yes');
        if (driver === 'overlay') {
          assert.ok(back.has('etc/.wh.shadow'));
          assert.ok(back.has('opq/.wh..wh..opq'));
        }
      });
    });

    test('later entries replace earlier ones of the same path', async () => {
      await withStore(driver, async (s) => {
        const ex = await s.extract(Readable.from([await buildTar([
          { name: 'p', content: 'file first' },
          { name: 'p/', type: 'directory' },
          { name: 'p/child', content: 'c', pax: { 'SCHILY.xattr.user.x': '1' } },
          { name: 'p', type: 'symlink', linkname: 'q' },
          { name: 'q', content: 'v1' },
          { name: 'q', content: 'v2', mode: 0o600 },
          { name: 'dev0', type: 'character-device', devmajor: 1, devminor: 5 },
          { name: 'dev0', content: 'now a file' },
        ])]));
        const dir = await s.diffPath((await s.register(null, ex)).chainId);
        assert.equal(await readlink(join(dir, 'p')), 'q');
        assert.equal(await readFile(join(dir, 'q'), 'utf8'), 'v2');
        assert.equal((await stat(join(dir, 'q'))).mode & 0o777, 0o600);
        assert.ok((await lstat(join(dir, 'dev0'))).isFile());
        assert.equal(await readFile(join(dir, 'dev0'), 'utf8'), 'now a file');
      });
    });

    test('exactTarSize: the original tar\'s length, counted at extraction or read from the sidecar once', async () => {
      await withStore(driver, async (s, root) => {
        const c1 = await addLayer(s, null, L1);
        const len1 = (await buildTar(L1)).length;
        const side = join(root, 'layers', 'tarsplit');
        // counted by the recorder while the layer was extracted: the sidecar is not read (it is moved away only to
        // show that)
        await rm(side, { recursive: true, force: true });
        assert.equal(await s.exactTarSize!(c1), len1);
        // a layer from before a restart: read from its sidecar once, then kept
        const c2 = await addLayer(s, c1, L3);
        const len2 = (await buildTar(L3)).length;
        const reopened = await openLayerStore({ dataRoot: root, driver });
        assert.equal(await reopened.exactTarSize!(c2), len2);
        await rm(side, { recursive: true, force: true });
        assert.equal(await reopened.exactTarSize!(c2), len2);
        assert.equal(await reopened.exactTarSize!(c1), null); // never asked before: no sidecar, no exact size
      });
    });

    test('3-layer chain: whiteouts hide files and opaque dirs hide lower contents through the mount', async () => {
      await withStore(driver, async (s, root) => {
        const c1 = await addLayer(s, null, L1);
        const c2 = await addLayer(s, c1, L2);
        const c3 = await addLayer(s, c2, L3);
        assert.equal(await s.chainSize(c3), 1 + 1 + 1 + 1 + 7 + 1 + 1 + 1 + 1);
        // the tar-split sidecar gives back the original bytes, whatever the driver
        assert.equal(sha256(await streamBytes(await s.tarStream(c2))), sha256(await buildTar(L2)));
        // without it (layers from before sidecars), the tar is regenerated from the driver's directory
        await rm(join(root, 'layers', 'tarsplit'), { recursive: true, force: true });
        if (driver === 'overlay') {
          const t2 = await tarEntries(await s.tarStream(c2));
          assert.deepEqual([...t2.keys()].sort(), ['.wh.a', 'd', 'd/.wh..wh..opq', 'd/z', 'two']);
        } else {
          const t2 = await tarEntries(await s.tarStream(c2));
          for (const k of ['.wh.a', 'd/.wh.x', 'd/.wh.y', 'd/z', 'two']) assert.ok(t2.has(k), `vfs tar has ${k}: ${[...t2.keys()]}`);
          assert.ok(!t2.has('keep'));
        }
        await s.createRW('ctr1', c3, { init: false });
        const m = await s.mount('ctr1');
        try {
          assert.equal(await s.mount('ctr1'), m); // counted
          await s.unmount('ctr1');
          assert.deepEqual((await readdir(m)).sort(), ['c', 'd', 'e', 'keep', 'two']);
          assert.deepEqual(await readdir(join(m, 'd')), ['z']);
          assert.equal(await readFile(join(m, 'keep'), 'utf8'), 'keep me');
        } finally {
          await s.unmount('ctr1');
        }
        if (driver === 'overlay') {
          const info = await readFile('/proc/self/mountinfo', 'utf8');
          assert.ok(!info.includes(m), 'unmounted after the last unmount');
        }
        await s.removeRW('ctr1');
      });
    });

    test('RW layer: changes() and diff() round trip through extract + register', async () => {
      await withStore(driver, async (s) => {
        const c1 = await addLayer(s, null, L1);
        const c2 = await addLayer(s, c1, L2);
        await s.createRW('ctr', c2);
        const m = await s.mount('ctr');
        let diffTar: Buffer;
        try {
          await writeFile(join(m, 'new'), 'new file');
          await writeFile(join(m, 'keep'), 'modified');
          await unlink(join(m, 'c'));
          await mkdir(join(m, 'nd'));
          await writeFile(join(m, 'nd/f'), 'f');
          await rm(join(m, 'd'), { recursive: true });
          await mkdir(join(m, 'd'));
          await writeFile(join(m, 'd/fresh'), 'fresh');
          const ch = await s.changes('ctr');
          const byPath = new Map(ch.map((c) => [c.path, c.kind]));
          assert.equal(byPath.get('/c'), 2);
          assert.equal(byPath.get('/keep'), 0);
          assert.equal(byPath.get('/new'), 1);
          assert.equal(byPath.get('/nd'), 1);
          assert.equal(byPath.get('/nd/f'), 1);
          assert.equal(byPath.get('/d/z'), 2, `changes: ${JSON.stringify(ch)}`);
          assert.equal(byPath.get('/d/fresh'), 1);
          assert.equal(byPath.get('/d'), 0);
          assert.ok(!byPath.has('/two'));
          for (const p of ['/etc', '/etc/hosts', '/.dockerenv', '/proc', '/dev']) assert.ok(!byPath.has(p), `init layer entry ${p} not in changes`);
          assert.deepEqual(ch.map((c) => c.path), [...ch.map((c) => c.path)].sort());
          assert.ok((await s.rwSize('ctr')) >= 'new file'.length + 'modified'.length + 1 + 5);
          const chunks: Buffer[] = [];
          for await (const c of await s.diff('ctr')) chunks.push(c as Buffer);
          diffTar = Buffer.concat(chunks);
          const names = [...(await tarEntries(Readable.from([diffTar]))).keys()];
          for (const n of ['.wh.c', 'keep', 'new', 'nd', 'nd/f', 'd/fresh']) assert.ok(names.includes(n), `diff has ${n}: ${names}`);
        } finally {
          await s.unmount('ctr');
        }
        const ex = await s.extract(Readable.from([diffTar]));
        const c3 = (await s.register(c2, ex)).chainId;
        // the committed layer's tar is regenerated byte for byte (push must reproduce the diffID)
        const regen: Buffer[] = [];
        for await (const c of await s.tarStream(c3)) regen.push(c as Buffer);
        const regenNames = [...(await tarEntries(Readable.from([Buffer.concat(regen)]))).keys()];
        const diffNames = [...(await tarEntries(Readable.from([diffTar]))).keys()];
        assert.deepEqual(regenNames, diffNames);
        assert.equal(sha256(Buffer.concat(regen)), ex.diffId);
        await s.createRW('ctr2', c3);
        const m2 = await s.mount('ctr2');
        try {
          assert.deepEqual((await readdir(m2)).filter((n) => !INIT_TOP.includes(n)).sort(), ['b', 'd', 'keep', 'nd', 'new', 'two']);
          assert.equal(await readFile(join(m2, 'etc/hosts'), 'utf8'), '');
          assert.equal(await readFile(join(m2, 'keep'), 'utf8'), 'modified');
          assert.equal(await readFile(join(m2, 'nd/f'), 'utf8'), 'f');
          assert.deepEqual(await readdir(join(m2, 'd')), ['fresh']);
        } finally {
          await s.unmount('ctr2');
        }
        await s.removeRW('ctr2');
        await s.removeRW('ctr');
      });
    });

    test('init layer: mount targets exist but are not changes; docker diff shows only the container\'s writes', async () => {
      await withStore(driver, async (s) => {
        const c1 = await addLayer(s, null, [
          { name: 'etc/', type: 'directory', mode: 0o750, uid: 7, mtime: T },
          { name: 'etc/os-release', content: 'wharf' },
          { name: 'proc/', type: 'directory', mode: 0o555 },
        ]);
        await s.createRW('web', c1);
        const m = await s.mount('web');
        try {
          for (const p of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv', 'dev/console']) {
            assert.ok((await stat(join(m, p))).isFile(), p);
          }
          assert.ok((await stat(join(m, 'dev/pts'))).isDirectory());
          assert.equal(await readlink(join(m, 'etc/mtab')), '/proc/mounts');
          const etc = await stat(join(m, 'etc'));
          assert.equal(etc.mode & 0o7777, 0o750, 'copied-up /etc keeps the image\'s mode');
          assert.equal(etc.uid, 7);
          assert.equal((await stat(join(m, 'proc'))).mode & 0o7777, 0o555, 'the image\'s /proc is not shadowed');
          assert.deepEqual(await s.changes('web'), []);
          await mkdir(join(m, 'www'));
          await writeFile(join(m, 'www/index.html'), 'hi\n');
          assert.deepEqual(await s.changes('web'), [{ path: '/www', kind: 1 }, { path: '/www/index.html', kind: 1 }]);
          const names = [...(await tarEntries(await s.diff('web'))).keys()];
          assert.deepEqual(names, ['www', 'www/index.html']);
        } finally {
          await s.unmount('web');
        }
        await s.removeRW('web');
      });
    });

    test('scratch RW layer (no parent) mounts and diffs', async () => {
      await withStore(driver, async (s) => {
        await s.createRW('scratch', null, { init: false });
        const m = await s.mount('scratch');
        try {
          assert.deepEqual(await readdir(m), []);
          await writeFile(join(m, 'only'), 'x');
          assert.deepEqual(await s.changes('scratch'), [{ path: '/only', kind: 1 }]);
        } finally {
          await s.unmount('scratch');
        }
        await s.removeRW('scratch');
      });
    });

    test('parallel extraction, ordered registration; a long lowerdir goes through short links', async () => {
      await withStore(driver, async (s, root) => {
        const n = driver === 'overlay' ? 60 : 8;
        const tars = await Promise.all(Array.from({ length: n }, (_, i) => buildTar([
          { name: `layer${i}/`, type: 'directory' },
          { name: `layer${i}/file`, content: `content ${i}` },
          { name: 'shared', content: `top is ${i}` },
        ])));
        const exs = await Promise.all(tars.map((t) => s.extract(Readable.from([t]))));
        let parent: Digest | null = null;
        for (let i = 0; i < n; i++) {
          assert.equal(exs[i]!.diffId, sha256(tars[i]!));
          parent = (await s.register(parent, exs[i]!)).chainId;
        }
        await s.createRW('many', parent);
        const m = await s.mount('many');
        try {
          assert.equal(await readFile(join(m, 'shared'), 'utf8'), `top is ${n - 1}`);
          for (let i = 0; i < n; i++) assert.equal(await readFile(join(m, `layer${i}/file`), 'utf8'), `content ${i}`);
          if (driver === 'overlay') assert.ok((await readdir(join(root, 'overlay/l'))).length >= n, 'short links used');
        } finally {
          await s.unmount('many');
        }
        await s.removeRW('many');
      });
    });

    test('truncated or corrupt tars are refused and leave nothing; trailing bytes after the end count in the diffID', async () => {
      await withStore(driver, async (s, root) => {
        const tar = await buildTar([{ name: 'big', content: 'x'.repeat(5000) }, { name: 'after', content: 'y' }]);
        const drv = join(root, driver === 'overlay' ? 'overlay' : 'vfs');
        const before = JSON.stringify(await readdir(drv, { recursive: true }));
        await assert.rejects(s.extract(Readable.from([tar.subarray(0, 2000)])));
        assert.equal(JSON.stringify(await readdir(drv, { recursive: true })), before);
        const failing = new Readable({
          read() {
            this.push(tar.subarray(0, 1024));
            this.destroy(new Error('network reset'));
          },
        });
        await assert.rejects(s.extract(failing), /network reset/);
        assert.equal(JSON.stringify(await readdir(drv, { recursive: true })), before);
        const padded = Buffer.concat([tar, Buffer.alloc(10240)]);
        const ex = await s.extract(Readable.from([padded.subarray(0, 3000), padded.subarray(3000)]));
        assert.equal(ex.diffId, sha256(padded));
        assert.equal(ex.size, 5001);
      });
    });

    test('reference counts: shared layers survive until the last image releases them', async () => {
      await withStore(driver, async (s, root) => {
        // image A: puller registers (one reference each), the image retains its top, the puller releases
        const a1 = await addLayer(s, null, L1);
        const a2 = await addLayer(s, a1, L2);
        const a3 = await addLayer(s, a2, [{ name: 'only-a', content: 'a' }]);
        await s.retain(a3);
        for (const c of [a1, a2, a3]) assert.deepEqual(await s.release(c), []);
        // image B shares the first two layers
        const b3 = await addLayer(s, a2, [{ name: 'only-b', content: 'b' }]);
        await s.retain(b3);
        assert.deepEqual(await s.release(b3), []);
        assert.equal((await s.list()).length, 4);
        // reopen: counts come back from disk
        const s2 = await openLayerStore({ dataRoot: root, driver });
        assert.deepEqual(await s2.release(a3), [a3]);
        assert.equal(await s2.has(a1), true);
        assert.equal(await s2.has(a2), true);
        assert.equal(await s2.has(b3), true);
        const cacheIds = (await s2.list()).map((l) => l.cacheId);
        assert.deepEqual(await s2.release(b3), [b3, a2, a1]);
        assert.deepEqual(await s2.list(), []);
        for (const id of cacheIds) assert.equal(await exists(join(root, driver === 'overlay' ? 'overlay' : 'vfs/dir', id)), false);
        assert.deepEqual((await readdir(join(root, 'layers/layerdb/sha256'))), []);
      });
    });

    test('an RW layer keeps its parent chain alive', async () => {
      await withStore(driver, async (s) => {
        const c1 = await addLayer(s, null, L1);
        await s.createRW('holder', c1);
        assert.deepEqual(await s.release(c1), []);
        assert.equal(await s.has(c1), true);
        await s.removeRW('holder');
        assert.equal(await s.has(c1), false);
      });
    });

    test('crash leftovers are removed at reopen', async () => {
      await withStore(driver, async (s, root) => {
        const c1 = await addLayer(s, null, L1);
        const orphan = await s.extract(Readable.from([await buildTar([{ name: 'orphan', content: 'o' }])]));
        const drv = join(root, driver === 'overlay' ? 'overlay' : 'vfs/dir');
        await mkdir(join(drv, 'deadbeef-half-written', 'diff'), { recursive: true });
        await writeFile(join(drv, 'deadbeef-half-written', 'diff', 'junk'), 'j');
        await mkdir(join(root, 'layers/layerdb/sha256/.tmp-123456-abc'), { recursive: true });
        await writeFile(join(root, 'layers/layerdb/sha256/.tmp-123456-abc/diff'), 'x');
        const s2 = await openLayerStore({ dataRoot: root, driver });
        assert.equal(await s2.has(c1), true);
        const keepId = (await s2.get(c1))!.cacheId;
        assert.deepEqual((await readdir(drv)).filter((n) => n !== 'l'), [keepId]);
        assert.equal(await exists(join(root, 'vfs/staging', orphan.cacheId)), false);
        assert.deepEqual(await readdir(join(root, 'layers/layerdb/sha256')), [c1.slice(7)]);
        assert.equal(await readFile(join(await s2.diffPath(c1), 'keep'), 'utf8'), 'keep me');
        // a crash after the last reference was dropped but before deletion: the chain goes at next open
        const d1 = await addLayer(s2, null, [{ name: 'base', content: 'b' }]);
        const d2 = await addLayer(s2, d1, [{ name: 'top', content: 't' }]);
        assert.deepEqual(await s2.release(d1), []);
        await writeFile(join(root, 'layers/layerdb/sha256', d2.slice(7), 'refs'), '0');
        const s3 = await openLayerStore({ dataRoot: root, driver });
        assert.equal(await s3.has(d2), false);
        assert.equal(await s3.has(d1), false);
        assert.equal(await s3.has(c1), true);
      });
    });

    test('entries escaping the layer are refused and nothing is written outside', async () => {
      await withStore(driver, async (s, root) => {
        const outside = join(root, 'outside');
        await mkdir(outside);
        const cases: E[][] = [
          [{ name: '../evil', content: 'x' }],
          [{ name: '/abs/../../evil', content: 'x' }],
          [{ name: 'ok', content: 'fine' }, { name: 'lnk', type: 'symlink', linkname: outside }, { name: 'lnk/pwned', content: 'x' }],
          [{ name: 'up', type: 'symlink', linkname: '../../../../../../../..' + outside }, { name: 'up/pwned', content: 'x' }],
          [{ name: 'a/b', type: 'symlink', linkname: '../../..' }, { name: 'a/b/pwned', content: 'x' }],
          [{ name: 'hl', type: 'link', linkname: '../../../etc/passwd' }],
          [{ name: 'hl2', type: 'link', linkname: 'etc/not-in-layer' }],
          [{ name: 'x/.wh...', content: '' }],
        ];
        const drv = join(root, driver === 'overlay' ? 'overlay' : 'vfs');
        const before = JSON.stringify(await readdir(drv, { recursive: true }));
        for (const c of cases) {
          await assert.rejects(s.extract(Readable.from([await buildTar(c)])), InvalidParameterError, JSON.stringify(c));
          assert.deepEqual(await readdir(outside), []);
          assert.equal(await exists(join(root, 'evil')), false);
          assert.equal(await exists('/evil'), false);
        }
        assert.equal(JSON.stringify(await readdir(drv, { recursive: true })), before, 'partial directories removed');
        // refusal does not wait for a source that stalls after the bad entry
        const evil = await buildTar([{ name: '../evil', content: 'x' }]);
        const stalled = new Readable({ read() {} });
        stalled.push(evil.subarray(0, 1024));
        await assert.rejects(s.extract(stalled), InvalidParameterError);
        assert.ok(stalled.destroyed);
        // a symlink staying inside the layer may be traversed
        const ex = await s.extract(Readable.from([await buildTar([
          { name: 'real', type: 'directory' },
          { name: 'via', type: 'symlink', linkname: 'real' },
          { name: 'via/file', content: 'in' },
        ])]));
        const l = await s.register(null, ex);
        assert.equal(await readFile(join(await s.diffPath(l.chainId), 'real/file'), 'utf8'), 'in');
      });
    });
  });
}

test('extract on writer threads: 600 small files in batches, a hard link to and an overwrite of a file still in a batch, a file replaced by a directory', async () => {
  const { extractLayerTar } = await import('../../src/engine/layers/extract.js');
  const entries: E[] = [{ name: 'many/', type: 'directory', mode: 0o755 }];
  for (let i = 0; i < 600; i++) entries.push({ name: `many/f${i}`, content: `file ${i}\n`.repeat(i % 7 + 1), mode: i % 2 ? 0o640 : 0o4755, uid: i % 3, gid: i % 5, mtime: new Date(1_500_000_000_000 + i * 1000) });
  entries.push({ name: 'many/link599', type: 'link', linkname: 'many/f599' });
  entries.push({ name: 'many/f598', content: 'second version\n', mode: 0o600 });
  entries.push({ name: 'many/f597/', type: 'directory', mode: 0o700 });
  entries.push({ name: 'many/f597/inside', content: 'in a dir that was a file\n' });
  const dir = await mkdtemp(join(tmpdir(), 'wharf-unit-threads-'));
  try {
    const r = await extractLayerTar(Readable.from([await buildTar(entries)]), dir);
    assert.equal(r.entries, entries.length);
    for (const i of [0, 1, 2, 300, 596]) {
      const p = join(dir, 'many', `f${i}`);
      assert.equal(await readFile(p, 'utf8'), `file ${i}\n`.repeat(i % 7 + 1));
      const st = await stat(p);
      assert.equal(st.mode & 0o7777, i % 2 ? 0o640 : 0o4755, `mode of f${i}`);
      assert.equal(st.uid, i % 3);
      assert.equal(st.gid, i % 5);
      assert.equal(st.mtimeMs, 1_500_000_000_000 + i * 1000);
    }
    const a = await stat(join(dir, 'many', 'f599'));
    const b = await stat(join(dir, 'many', 'link599'));
    assert.equal(a.ino, b.ino, 'the hard link shares the inode');
    assert.equal(await readFile(join(dir, 'many', 'f598'), 'utf8'), 'second version\n');
    assert.equal((await stat(join(dir, 'many', 'f598'))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(dir, 'many', 'f597', 'inside'), 'utf8'), 'in a dir that was a file\n');
    assert.equal((await readdir(join(dir, 'many'))).length, 601);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('extraction thread (extractworker.ts)', () => {
  const many: E[] = [{ name: 'd/', type: 'directory', mode: 0o755 }];
  for (let i = 0; i < 300; i++) many.push({ name: `d/f${i}`, content: `content ${i}\n`.repeat(i % 50 + 1), mode: 0o644 });

  test('a gzip and a zstd blob are decompressed on the thread; same diffID, files and sidecar as the uncompressed tar', async () => {
    const { gzipSync, zstdCompressSync } = await import('node:zlib');
    const tar = await buildTar(many);
    await withStore('overlay', async (s, root) => {
      for (const [compression, blob] of [['gzip', gzipSync(tar)], ['zstd', zstdCompressSync(tar)], [null, tar]] as const) {
        // the blob arrives in odd-sized pieces, as from a socket
        const pieces: Buffer[] = [];
        for (let at = 0; at < blob.length; at += 7777) pieces.push(blob.subarray(at, at + 7777));
        const ex = await s.extract(Readable.from(pieces), { compression });
        assert.equal(ex.diffId, sha256(tar), `diffID (${compression})`);
        const l = await s.register(null, ex);
        const dir = join(root, 'overlay', ex.cacheId, 'diff');
        assert.equal(await readFile(join(dir, 'd', 'f299'), 'utf8'), 'content 299\n'.repeat(50));
        assert.equal((await readdir(join(dir, 'd'))).length, 300);
        // the sidecar reproduces the tar byte for byte
        assert.ok(sha256(await streamBytes(await s.tarStream(l.chainId))) === sha256(tar), `tar-split round trip (${compression})`);
        await s.release(l.chainId);
      }
    });
  });

  test('a corrupt gzip blob, a path escaping the root and a failing source each reject with their own error and leave nothing behind', async () => {
    const { gzipSync } = await import('node:zlib');
    await withStore('overlay', async (s, root) => {
      const gz = gzipSync(await buildTar(many));
      const corrupt = Buffer.from(gz);
      corrupt.fill(0x55, 100, 400);
      await assert.rejects(s.extract(Readable.from([corrupt]), { compression: 'gzip' }), (e: Error & { statusCode?: number }) => {
        assert.match(e.message, /failed to register layer/);
        return true;
      });
      await assert.rejects(s.extract(Readable.from([await buildTar([{ name: '../../escape', content: 'x' }])])),
        (e: Error) => e instanceof InvalidParameterError && /escapes the layer root/.test(e.message));
      const failing = new Readable({ read() { /* pushed below */ } });
      failing.push(gz.subarray(0, 5000));
      setTimeout(() => failing.destroy(new Error('connection reset by peer')), 50);
      await assert.rejects(s.extract(failing, { compression: 'gzip' }), /connection reset by peer/);
      // nothing half-extracted stays in the driver directory or the sidecars
      assert.deepEqual((await readdir(join(root, 'overlay')).catch(() => [])).filter((n) => n !== 'l'), []);
      assert.deepEqual(await readdir(join(root, 'layers', 'tarsplit')).catch(() => []), []);
      // and the thread is still good for the next layer
      const ok = await s.extract(Readable.from([gz]), { compression: 'gzip' });
      assert.match(ok.diffId, /^sha256:/);
      await s.discard!(ok);
    });
  });

  test('three layers extracted at once, each on a thread of its own, from 64 KiB pieces', async () => {
    await withStore('overlay', async (s, root) => {
      const tars = await Promise.all([0, 1, 2].map((k) => buildTar(many.map((e) => ({ ...e, name: e.name.replace(/^d/, `d${k}`) })))));
      const xs = await Promise.all(tars.map((t) => s.extract(Readable.from((function* () {
        for (let at = 0; at < t.length; at += 65536) yield t.subarray(at, at + 65536);
      })()))));
      for (const [k, x] of xs.entries()) {
        assert.equal(x.diffId, sha256(tars[k]!));
        assert.equal((await readdir(join(root, 'overlay', x.cacheId, 'diff', `d${k}`))).length, 300);
        await s.discard!(x);
      }
    });
  });
});

test('an idle extraction thread is kept for the next layer, then ended after its linger', { timeout: 30_000 }, async () => {
  const { idleExtractionThreads } = await import('../../src/engine/layers/extractworker.js');
  await withStore('overlay', async (s) => {
    const tar = await buildTar([{ name: 'f', content: 'x' }]);
    const a = await s.extract(Readable.from([tar]));
    assert.equal(idleExtractionThreads() >= 1, true, 'kept after the first layer');
    const before = idleExtractionThreads();
    const b = await s.extract(Readable.from([tar]));
    assert.equal(idleExtractionThreads(), before, 'the second layer reused an idle thread');
    await s.discard!(a);
    await s.discard!(b);
    const idleSince = Date.now();
    await waitFor(() => idleExtractionThreads() === 0, { timeout: 8000, interval: 100, message: 'idle extraction threads to end' });
    assert.ok(Date.now() - idleSince >= 4000, `ended after 5 s idle, not at once (${Date.now() - idleSince} ms)`);
  });
});

test('writer threads end after their linger without work, and a later batch starts a new one', async () => {
  const { FileWriterPool } = await import('../../src/engine/layers/filewriter.js');
  const dir = await mkdtemp(join(tmpdir(), 'wharf-writers-'));
  try {
    const pool = new FileWriterPool(2, 300);
    const batch = async (name: string, text: string) => {
      const bytes = Buffer.from(text);
      const data = pool.takeBuffer(bytes.length);
      new Uint8Array(data).set(bytes);
      await pool.write([{ path: join(dir, name), mode: 0o644, uid: process.getuid!(), gid: process.getgid!(), mtime: 1_600_000_000, len: bytes.length }], data, 0o022);
    };
    await batch('a', 'first');
    assert.equal(pool.threads, 1, 'a thread for the first batch');
    await new Promise((r) => setTimeout(r, 100));
    await batch('b', 'second');
    assert.equal(pool.threads, 1, 'the lingering thread took the second batch');
    const idleSince = Date.now();
    assert.ok(pool.freeBuffers >= 1, 'batch buffers kept for reuse while a thread lingers');
    await waitFor(() => pool.threads === 0, { timeout: 5000, interval: 20, message: 'idle writer threads to end' });
    assert.equal(pool.freeBuffers, 0, 'and dropped with the last thread');
    assert.ok(Date.now() - idleSince >= 200, `ended after the linger, not at once (${Date.now() - idleSince} ms)`);
    await batch('c', 'third');
    assert.equal(pool.threads, 1);
    assert.deepEqual(await Promise.all(['a', 'b', 'c'].map((f) => readFile(join(dir, f), 'utf8'))), ['first', 'second', 'third']);
    await waitFor(() => pool.threads === 0, { timeout: 5000, interval: 20, message: 'the last writer thread to end' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
