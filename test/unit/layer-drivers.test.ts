// The storage-driver conformance suite: the same cases, through the layer store and the Driver interface, on
// every driver listed in src/engine/layers/drivers/index.ts. A driver that cannot work on this machine (no
// overlayfs) is skipped, saying so. Driver-specific layouts are not looked at: trees are read through
// LayerStore.lookupDirs and the mount, leftovers through the driver's `home`.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { addLayer, buildTar, type TarEntry } from '../support/tar.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { DRIVERS } from '../../src/engine/layers/drivers/index.js';
import type { Driver } from '../../src/engine/layers/drivers/types.js';
import type { LayerStore } from '../../src/engine/layers/types.js';
import { chainIdOf, sha256, type Digest } from '../../src/lib/digest.js';

type E = TarEntry;

async function tarNames(s: Readable): Promise<string[]> {
  const ex = tarStream.extract();
  const names: string[] = [];
  const feed = (async () => {
    for await (const c of s) ex.write(c);
    ex.end(undefined as never);
  })();
  for await (const e of ex) {
    names.push(e.header.name.replace(/\/$/, ''));
    e.resume();
  }
  await feed;
  return names;
}

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(p: string): boolean {
  try {
    return execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', p], { stdio: ['ignore', 'pipe', 'ignore'] }).toString() === 'y';
  } catch {
    return false;
  }
}

/** What a path is in the union of `dirs` (top first, overlay form): null when absent, whited out or hidden by an opaque dir. */
async function visible(dirs: string[], rel: string): Promise<Stats | null> {
  const parts = rel.split('/');
  for (const d of dirs) {
    const st = await lstat(join(d, rel)).catch(() => null);
    if (st) return isWhiteout(st) ? null : st;
    for (let i = 1; i < parts.length; i++) {
      const anc = join(d, ...parts.slice(0, i));
      const as = await lstat(anc).catch(() => null);
      if (as && (isWhiteout(as) || !as.isDirectory() || isOpaque(anc))) return null;
    }
  }
  return null;
}

/** Every path under `root`, sorted (what a crash may leave behind is compared with this). */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

const L1: E[] = [
  { name: 'a', content: 'A' },
  { name: 'b', content: 'B' },
  { name: 'd/', type: 'directory', mode: 0o755 },
  { name: 'd/x', content: 'X' },
  { name: 'd/y', content: 'Y' },
  { name: 'keep', content: 'keep me' },
  { name: 'c', content: 'C' },
];
const L2: E[] = [
  { name: '.wh.a' },
  { name: 'd/', type: 'directory', mode: 0o755 },
  { name: 'd/.wh..wh..opq' },
  { name: 'd/z', content: 'Z' },
  { name: 'two', content: '2' },
];
const INIT_TOP = ['.dockerenv', 'dev', 'etc', 'proc', 'sys'];

for (const factory of DRIVERS) {
  describe(`storage driver conformance: ${factory.name}`, () => {
    /** A fresh data root with a store on this driver, and the driver itself (for its home and direct calls). */
    async function withStore(t: { skip(msg?: string): void }, fn: (s: LayerStore, root: string, drv: Driver) => Promise<void>): Promise<void> {
      const root = await mkdtemp(join(tmpdir(), `wharf-driver-${factory.name}-`));
      try {
        const drv = await factory.create(root);
        if (!drv) {
          t.skip(`${factory.name} does not work on this machine`);
          return;
        }
        const s = await openLayerStore({ dataRoot: root, driver: factory.name });
        assert.equal(s.driverName, factory.name);
        await fn(s, root, drv);
      } finally {
        const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(root));
        for (const m of mounts.reverse()) {
          try { execFileSync('umount', [m]); } catch { /* ignore */ }
        }
        await rm(root, { recursive: true, force: true });
      }
    }

    test('a layer from a tar and a child stacked on it: the chain\'s tree has whiteouts and opaque dirs applied, in lookupDirs and through a mount', async (t) => {
      await withStore(t, async (s) => {
        const c1 = await addLayer(s, null, L1);
        const c2 = await addLayer(s, c1, L2);
        assert.equal((await s.get(c2))!.parent, c1);
        assert.equal(await s.chainSize(c2), 1 + 1 + 1 + 1 + 7 + 1 + 1 + 1);
        const one = await s.lookupDirs(c1);
        assert.equal((await readFile(join(one[0]!, 'a'), 'utf8')), 'A');
        const dirs = await s.lookupDirs(c2);
        assert.ok(dirs.length >= 1);
        for (const [rel, want] of [['keep', 'keep me'], ['two', '2'], ['d/z', 'Z'], ['b', 'B']] as const) {
          const st = await visible(dirs, rel);
          assert.ok(st?.isFile(), `${rel} visible`);
          const top = await Promise.all(dirs.map((d) => exists(join(d, rel))));
          assert.equal(await readFile(join(dirs[top.indexOf(true)]!, rel), 'utf8'), want);
        }
        for (const rel of ['a', 'd/x', 'd/y']) assert.equal(await visible(dirs, rel), null, `${rel} hidden`);
        assert.deepEqual(await s.lookupDirs(null), []);
        // the same tree through a mounted RW layer without init
        await s.createRW('view', c2, { init: false });
        const m = await s.mount('view');
        try {
          assert.deepEqual((await readdir(m)).sort(), ['b', 'c', 'd', 'keep', 'two']);
          assert.deepEqual(await readdir(join(m, 'd')), ['z']);
          assert.equal(await readFile(join(m, 'keep'), 'utf8'), 'keep me');
        } finally {
          await s.unmount('view');
        }
        await s.removeRW('view');
        // each layer's tar comes back byte for byte
        assert.equal(sha256(await bytes(await s.tarStream(c2))), sha256(await buildTar(L2)));
      });
    });

    test('an RW layer over a chain: writes, changes, size and diff; the diff committed as a new layer', async (t) => {
      await withStore(t, async (s) => {
        const c1 = await addLayer(s, null, L1);
        const c2 = await addLayer(s, c1, L2);
        await s.createRW('ctr', c2);
        await assert.rejects(s.createRW('ctr', c2), /already exists/);
        const m = await s.mount('ctr');
        let diffTar: Buffer;
        try {
          assert.equal(await s.mount('ctr'), m, 'nested mounts give the same root');
          await s.unmount('ctr');
          assert.equal(await readFile(join(m, 'etc/hosts'), 'utf8'), '', 'init layer entries exist');
          assert.deepEqual(await s.changes('ctr'), [], 'init layer entries are no changes');
          await writeFile(join(m, 'new'), 'new file');
          await writeFile(join(m, 'keep'), 'modified');
          await unlink(join(m, 'c'));
          // container inspect's GraphDriver.Data: overlay2's four dirs (the write is in UpperDir), vfs none
          const gd = s.rwGraphDriverData('ctr');
          if (factory.name === 'overlay') {
            assert.deepEqual(Object.keys(gd ?? {}), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir']);
            assert.equal(gd!.MergedDir, m);
            assert.equal(await readFile(join(gd!.UpperDir!, 'new'), 'utf8'), 'new file');
            assert.equal(gd!.LowerDir!.split(':').length, 3, gd!.LowerDir); // init, L2, L1
          } else assert.equal(gd, null);
          assert.throws(() => s.rwGraphDriverData('nope'), /not found/);
          await rm(join(m, 'd'), { recursive: true });
          await mkdir(join(m, 'd'));
          await writeFile(join(m, 'd/fresh'), 'fresh');
          const byPath = new Map((await s.changes('ctr')).map((c) => [c.path, c.kind]));
          assert.equal(byPath.get('/c'), 2);
          assert.equal(byPath.get('/keep'), 0);
          assert.equal(byPath.get('/new'), 1);
          assert.equal(byPath.get('/d/z'), 2);
          assert.equal(byPath.get('/d/fresh'), 1);
          assert.ok(!byPath.has('/two') && !byPath.has('/etc/hosts'));
          assert.ok((await s.rwSize('ctr')) >= 'new file'.length + 'modified'.length + 'fresh'.length);
          diffTar = await bytes(await s.diff('ctr'));
          const names = await tarNames(Readable.from([diffTar]));
          for (const n of ['.wh.c', 'keep', 'new', 'd/fresh']) assert.ok(names.includes(n), `diff has ${n}: ${names}`);
          assert.ok(!names.includes('etc/hosts'));
        } finally {
          await s.unmount('ctr');
        }
        const c3 = await addLayer(s, c2, []); // an empty layer stacks too
        assert.equal((await s.get(c3))!.size, 0);
        const ex = await s.extract(Readable.from([diffTar]));
        const c4 = (await s.register(c2, ex)).chainId;
        assert.equal(sha256(await bytes(await s.tarStream(c4))), ex.diffId);
        await s.createRW('next', c4);
        const m2 = await s.mount('next');
        try {
          assert.deepEqual((await readdir(m2)).filter((n) => !INIT_TOP.includes(n)).sort(), ['b', 'd', 'keep', 'new', 'two']);
          assert.equal(await readFile(join(m2, 'keep'), 'utf8'), 'modified');
          assert.deepEqual(await readdir(join(m2, 'd')), ['fresh']);
        } finally {
          await s.unmount('next');
        }
        await s.removeRW('next');
        await s.removeRW('ctr');
      });
    });

    test('remove: removeRW and the last release delete the driver\'s data; unknown ids are not found', async (t) => {
      await withStore(t, async (s, root, drv) => {
        const empty = await tree(drv.home);
        const c1 = await addLayer(s, null, L1);
        await s.createRW('gone', c1);
        const m = await s.mount('gone');
        await writeFile(join(m, 'w'), 'w');
        await s.unmount('gone');
        await s.removeRW('gone');
        await assert.rejects(s.mount('gone'), /not found/);
        await assert.rejects(s.removeRW('gone'), /not found/);
        assert.deepEqual(await readdir(join(root, 'layers/mounts')), []);
        assert.deepEqual(await s.release(c1), [c1]);
        assert.deepEqual(await tree(drv.home), empty);
        assert.deepEqual(await readdir(join(root, 'layers/layerdb/sha256')), []);
        await assert.rejects(s.diffPath(c1), /not found/);
      });
    });

    test('reference counts: shared layers live until the last holder (image, child, RW layer) lets go; counts survive a reopen', async (t) => {
      await withStore(t, async (s, root) => {
        const a1 = await addLayer(s, null, L1);
        const a2 = await addLayer(s, a1, L2);
        const b2 = await addLayer(s, a1, [{ name: 'only-b', content: 'b' }]);
        await s.retain(a2);
        assert.deepEqual(await s.release(a1), [], 'children hold the base');
        assert.deepEqual(await s.release(a2), []);
        const again = await addLayer(s, a1, L2); // the same chain registered twice is one layer, two references
        assert.equal(again, a2);
        assert.deepEqual(await s.release(a2), []);
        await s.createRW('holder', b2);
        assert.deepEqual(await s.release(b2), [], 'the RW layer holds b2');
        const s2 = await openLayerStore({ dataRoot: root, driver: factory.name });
        assert.equal((await s2.list()).length, 3);
        assert.deepEqual(await s2.release(a2), [a2]);
        assert.equal(await s2.has(a1), true);
        await s2.removeRW('holder');
        assert.equal(await s2.has(b2), false);
        assert.equal(await s2.has(a1), false);
        await assert.rejects(s2.release(a1), /not found/);
      });
    });

    test('crash leftovers are removed at open: half-written layers and RW layers, unregistered extractions, temporaries', async (t) => {
      await withStore(t, async (s, root, drv) => {
        const c1 = await addLayer(s, null, L1);
        await s.createRW('live', c1);
        const before = await tree(root);
        // a crash mid-pull, mid-create, mid-delete
        const orphan = await s.extract(Readable.from([await buildTar([{ name: 'orphan', content: 'o' }])]));
        assert.notEqual(orphan.cacheId, (await s.get(c1))!.cacheId);
        await drv.createRW({ id: 'ghost', parents: [(await s.get(c1))!.cacheId], init: true });
        await mkdir(join(drv.home, 'deadbeef-half-written', 'diff'), { recursive: true });
        await writeFile(join(drv.home, 'deadbeef-half-written', 'diff', 'junk'), 'j');
        await mkdir(join(root, 'layers/layerdb/sha256/.tmp-123456-abc'), { recursive: true });
        await writeFile(join(root, 'layers/layerdb/sha256/.tmp-123456-abc/diff'), 'x');
        await mkdir(join(root, 'layers/mounts/.del-abcdef'), { recursive: true });
        assert.notDeepEqual(await tree(root), before);
        const s2 = await openLayerStore({ dataRoot: root, driver: factory.name });
        assert.deepEqual(await tree(root), before);
        const m = await s2.mount('live');
        try {
          assert.equal(await readFile(join(m, 'keep'), 'utf8'), 'keep me');
        } finally {
          await s2.unmount('live');
        }
        // a crash after the last reference was dropped but before the deletion
        await s2.removeRW('live');
        assert.equal(await s2.has(c1), true);
        await writeFile(join(root, 'layers/layerdb/sha256', c1.slice(7), 'refs'), '0');
        const s3 = await openLayerStore({ dataRoot: root, driver: factory.name });
        assert.equal(await s3.has(c1), false);
        assert.deepEqual(await readdir(drv.home).then((n) => n.filter((x) => x !== 'l')), []);
      });
    });

    test('modes: the driver\'s home and each layer\'s directory 0710 (no other user reaches a layer\'s files), repaired at open', async (t) => {
      await withStore(t, async (s, root, drv) => {
        const c1 = await addLayer(s, null, [{ name: 'suid', content: '#!/bin/sh\n', mode: 0o4755 }]);
        const layerDir = dirname(await s.diffPath(c1));
        assert.equal((await stat(drv.home)).mode & 0o7777, 0o710);
        assert.equal((await stat(layerDir)).mode & 0o7777, 0o710);
        assert.equal((await stat(join(root, 'layers'))).mode & 0o7777, 0o700);
        assert.equal((await stat(join(await s.diffPath(c1), 'suid'))).mode & 0o7777, 0o4755);
        await chmod(drv.home, 0o755);
        await chmod(layerDir, 0o755);
        await chmod(join(root, 'layers'), 0o755);
        await openLayerStore({ dataRoot: root, driver: factory.name });
        assert.equal((await stat(drv.home)).mode & 0o7777, 0o710);
        assert.equal((await stat(layerDir)).mode & 0o7777, 0o710);
        assert.equal((await stat(join(root, 'layers'))).mode & 0o7777, 0o700);
      });
    });
  });
}

test('the driver is chosen once per data root: an unknown name is refused, another driver is refused while layers exist', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-driver-choice-'));
  try {
    await assert.rejects(openLayerStore({ dataRoot: root, driver: 'nope' }), new RegExp(`supported: ${DRIVERS.map((d) => d.name).join(', ')}`));
    const s = await openLayerStore({ dataRoot: root, driver: 'vfs' });
    await addLayer(s, null, L1);
    await assert.rejects(openLayerStore({ dataRoot: root, driver: DRIVERS.find((d) => d.name !== 'vfs')!.name }), /holds layers of driver vfs/);
    assert.equal((await openLayerStore({ dataRoot: root })).driverName, 'vfs', 'the recorded driver is used when none is asked for');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('overlay: the kernel\'s own answers settle the driver without a mount only when they are plain', async () => {
  const { overlayVerdict, FULL_OPTS } = await import('../../src/engine/layers/drivers/overlay.js');
  const good = {
    filesystems: 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n',
    fsType: 0xef53,
    params: ['check_copy_up', 'index', 'metacopy', 'nfs_export', 'redirect_dir', 'xino_auto'],
    status: 'Name:\twharfd\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n',
    uidMap: '         0          0 4294967295\n',
  };
  assert.equal(overlayVerdict(good), FULL_OPTS);
  assert.equal(overlayVerdict({ ...good, fsType: 0x01021994 }), FULL_OPTS, 'tmpfs');
  assert.equal(overlayVerdict({ ...good, fsType: 0x9123683e }), FULL_OPTS, 'btrfs');
  for (const [why, f] of [
    ['overlay not registered', { ...good, filesystems: 'nodev\tsysfs\n\text4\nnodev\toverlayx\n' }],
    ['module parameters missing (an old kernel)', { ...good, params: ['index', 'redirect_dir'] }],
    ['module not loaded', { ...good, params: [] }],
    ['data root on xfs (d_type unknown)', { ...good, fsType: 0x58465342 }],
    ['data root on overlayfs', { ...good, fsType: 0x794c7630 }],
    ['data root on nfs', { ...good, fsType: 0x6969 }],
    ['no CAP_SYS_ADMIN', { ...good, status: 'CapEff:\t00000000001fffff\n' }],
    ['no CapEff line', { ...good, status: 'Name:\tx\n' }],
    ['in a user namespace', { ...good, uidMap: '         0     100000      65536\n' }],
  ] as const) assert.equal(overlayVerdict(f), null, why);
});

test('overlay: on this machine the kernel\'s answers agree with a real mount', async (t) => {
  const { overlayVerdict, probeOverlay, readOverlayFacts } = await import('../../src/engine/layers/drivers/overlay.js');
  const root = await mkdtemp(join(tmpdir(), 'wharf-ovl-facts-'));
  try {
    const facts = await readOverlayFacts(root);
    assert.ok(facts, 'the facts are readable');
    const fast = overlayVerdict(facts);
    if (fast === null) { t.skip('the kernel\'s answers do not settle it here: the mount probe decides'); return; }
    assert.equal(await probeOverlay(root), fast, 'a mount with the same options works');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
