/**
 * Tar-split: a layer's tar comes back byte for byte from the layer store (push and save depend on it),
 * whatever produced it — GNU tar in gnu/posix/ustar formats with user names, long names, hard links,
 * symlinks and trailing record blocks, tar-stream with PAX records — on both storage drivers. And the
 * regeneration never reads a file outside the layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { sha256 } from '../../src/lib/digest.js';

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function withDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try { return await fn(dir); } finally {
    for (const m of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((x) => x.startsWith(dir)).reverse()) {
      try { execFileSync('umount', [m]); } catch { /* ignore */ }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** A source tree with what real layers contain. */
async function makeTree(src: string): Promise<void> {
  await mkdir(join(src, 'etc', 'deep', 'a'.repeat(60), 'b'.repeat(60)), { recursive: true });
  await writeFile(join(src, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(src, 'etc', 'deep', 'a'.repeat(60), 'b'.repeat(60), `${'c'.repeat(120)}.txt`), 'long name\n');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(700_000, 7));
  await writeFile(join(src, 'empty'), '');
  await link(join(src, 'etc', 'passwd'), join(src, 'etc', 'passwd-hard'));
  await symlink('passwd', join(src, 'etc', 'pw'));
  await writeFile(join(src, 'ünïcode name'), 'u\n');
}

for (const driver of ['overlay', 'vfs']) {
  for (const format of ['gnu', 'posix', 'ustar']) {
    test(`${driver}: a GNU tar --format=${format} layer comes back byte for byte`, async () => {
      await withDir(`wharf-ts-${driver}-${format}-`, async (dir) => {
        const src = join(dir, 'src');
        await mkdir(src);
        await makeTree(src);
        const tarFile = join(dir, 'layer.tar');
        // --owner names on purpose: user/group names are what a regenerated tar cannot guess
        const args = ['-C', src, `--format=${format}`, '-cf', tarFile, '--owner=daemon:1', '--group=adm:4', '.'];
        if (format === 'ustar') args.splice(3, 0, '--exclude=./etc/deep'); // ustar cannot hold the long name
        execFileSync('tar', args);
        const original = await readFile(tarFile);
        const s = await openLayerStore({ dataRoot: join(dir, 'root'), driver });
        const ex = await s.extract(Readable.from([original]));
        assert.equal(ex.diffId, sha256(original));
        const l = await s.register(null, ex);
        const again = await bytes(await s.tarStream(l.chainId));
        assert.equal(again.length, original.length);
        assert.equal(sha256(again), sha256(original));
      });
    });
  }

  test(`${driver}: tar-stream PAX records, an odd order and a second layer on top`, async () => {
    await withDir(`wharf-ts-${driver}-pax-`, async (dir) => {
      const pack = tarStream.pack();
      const add = (h: Partial<tarStream.Header> & { name: string }, body?: string) => new Promise<void>((res, rej) => pack.entry(h, body ?? '', (e) => (e ? rej(e) : res())));
      const t = new Date(1_700_000_000_000);
      await add({ name: 'z-last-first', mode: 0o644, mtime: t, uname: 'someone', gname: 'staff', uid: 1000, gid: 50 }, 'zz');
      await add({ name: 'dir/', type: 'directory', mode: 0o755, mtime: t });
      await add({ name: 'dir/f', mode: 0o600, mtime: t, pax: { 'SCHILY.xattr.user.k': 'v', comment: 'kept verbatim' } }, 'ff');
      await add({ name: `dir/${'x'.repeat(150)}`, mode: 0o644, mtime: t }, 'long');
      pack.finalize();
      const original = await bytes(pack as unknown as Readable);
      const top = tarStream.pack();
      const addTop = (h: Partial<tarStream.Header> & { name: string }, body?: string) => new Promise<void>((res, rej) => top.entry(h, body ?? '', (e) => (e ? rej(e) : res())));
      await addTop({ name: '.wh.z-last-first', mode: 0o644, mtime: t });
      await addTop({ name: 'dir/f', mode: 0o644, mtime: t }, 'changed');
      top.finalize();
      const upper = await bytes(top as unknown as Readable);
      const s = await openLayerStore({ dataRoot: join(dir, 'root'), driver });
      const l1 = await s.register(null, await s.extract(Readable.from([original])));
      const l2 = await s.register(l1.chainId, await s.extract(Readable.from([upper])));
      assert.equal(sha256(await bytes(await s.tarStream(l1.chainId))), sha256(original), 'lower layer unchanged by the upper one');
      assert.equal(sha256(await bytes(await s.tarStream(l2.chainId))), sha256(upper));
    });
  });
}

test('regeneration never follows a symlink out of the layer', async () => {
  await withDir('wharf-ts-escape-', async (dir) => {
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'host secret, same size!');
    const pack = tarStream.pack();
    const add = (h: Partial<tarStream.Header> & { name: string }, body?: string) => new Promise<void>((res, rej) => pack.entry(h, body ?? '', (e) => (e ? rej(e) : res())));
    await add({ name: 'd/', type: 'directory', mode: 0o755 });
    await add({ name: 'd/secret', mode: 0o644 }, 'layer content, same size');
    pack.finalize();
    const original = await bytes(pack as unknown as Readable);
    const s = await openLayerStore({ dataRoot: join(dir, 'root'), driver: 'vfs' });
    const l = await s.register(null, await s.extract(Readable.from([original])));
    // tamper: the layer's directory becomes a symlink to a host directory holding a file of the same size
    const layerDir = await s.diffPath(l.chainId);
    await rm(join(layerDir, 'd'), { recursive: true });
    await symlink(outside, join(layerDir, 'd'));
    await assert.rejects(bytes(await s.tarStream(l.chainId)), /outside the layer/);
  });
});

test('opening the store drops sidecars of layers that were never registered, keeps the others', async () => {
  await withDir('wharf-ts-orphan-', async (dir) => {
    const root = join(dir, 'root');
    const s = await openLayerStore({ dataRoot: root, driver: 'vfs' });
    const pack = tarStream.pack();
    pack.entry({ name: 'f', mode: 0o644 }, 'content');
    pack.finalize();
    const original = await bytes(pack as unknown as Readable);
    const l = await s.register(null, await s.extract(Readable.from([original])));
    const sideDir = join(root, 'layers', 'tarsplit');
    const kept = (await readdir(sideDir));
    assert.equal(kept.length, 1);
    await writeFile(join(sideDir, `${'ab'.repeat(32)}.gz`), 'left by a killed extraction');
    const s2 = await openLayerStore({ dataRoot: root, driver: 'vfs' });
    assert.deepEqual(await readdir(sideDir), kept);
    assert.equal(sha256(await bytes(await s2.tarStream(l.chainId))), sha256(original));
  });
});
