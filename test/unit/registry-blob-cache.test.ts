// The registry's blob cache (src/registry/blob-cache.ts): a replica's local copy of blob bytes in front of a remote
// store. Here the "remote" store is the filesystem driver with its local files hidden (so the server cannot serve
// them itself); test/e2e/registry-server-s3.test.ts runs the cache on real replicas over Ceph RGW.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlobCache } from '../../src/registry/blob-cache.js';
import { FsDriver } from '../../src/registry/fs-driver.js';
import { RegistryStorage, blobKey } from '../../src/registry/storage.js';
import { startRegistryServer } from '../../src/registry/server.js';
import { serveOptions } from '../../src/registry/main.js';
import type { PendingObject, StorageDriver } from '../../src/registry/driver.js';
import { sha256, type Digest } from '../../src/lib/digest.js';
import { waitFor } from '../support/wait.js';

const base = await mkdtemp(join(tmpdir(), 'wharf-blobcache-'));
after(() => rm(base, { recursive: true, force: true }));
let n = 0;
const fresh = (what: string) => join(base, `${what}-${n++}`);

/**
 * The filesystem driver as a remote store: no local path, monolithic uploads written unseen until published (as
 * S3's writeObject), and reads that a test can make lie.
 */
async function remoteStore(): Promise<{ driver: StorageDriver; lie: { bytes: Buffer | null }; reads: { n: number } }> {
  const fs = await FsDriver.open(fresh('store'));
  const lie = { bytes: null as Buffer | null };
  const reads = { n: 0 };
  const driver: StorageDriver = Object.create(fs, {
    kind: { value: 'remote' },
    localPath: { value: undefined },
    read: {
      value: async (key: string, start: number, end: number) => {
        reads.n++;
        if (lie.bytes) return (async function* () { yield lie.bytes!.subarray(start, end + 1); })();
        return fs.read(key, start, end);
      },
    },
    writeObject: {
      value: async (key: string, body: AsyncIterable<unknown>, tap: (b: Buffer) => void): Promise<PendingObject> => {
        const parts: Buffer[] = [];
        for await (const c of body) { tap(c as Buffer); parts.push(c as Buffer); }
        const data = Buffer.concat(parts);
        return { size: data.length, publish: () => fs.put(key, data), discard: async () => {} };
      },
    },
  }) as StorageDriver;
  return { driver, lie, reads };
}

async function drain(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

async function readAll(c: BlobCache, d: Digest, size: number): Promise<Buffer | null> {
  const fh = await c.openBlob(d, size);
  if (!fh) return null;
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

test('a fill is served only once committed; an aborted one leaves nothing; a file of another size is dropped', async () => {
  const dir = fresh('cache');
  const c = await BlobCache.open({ dir, maxBytes: 1 << 30 });
  const blob = randomBytes(300_000);
  const d = sha256(blob);
  const f = c.fill(d)!;
  assert.ok(f);
  assert.equal(c.fill(d), null, 'one fill of a blob at a time');
  f.write(blob.subarray(0, 100_000));
  f.write(blob.subarray(100_000));
  assert.equal(await readAll(c, d, blob.length), null, 'not visible before commit');
  await f.commit();
  assert.deepEqual(await readAll(c, d, blob.length), blob);
  assert.equal(await readAll(c, d, blob.length + 1), null, 'the store says another size: not served');
  await assert.rejects(lstat(join(dir, 'sha256', d.slice(7))), /ENOENT/, 'and removed');
  const other = randomBytes(1000);
  const g = c.fill(sha256(other))!;
  g.write(other);
  await g.abort();
  assert.equal(await readAll(c, sha256(other), other.length), null);
  assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp file left');
  assert.equal((await lstat(dir)).mode & 0o777, 0o700, 'private directory');
});

test('the store stays the truth: a whole-blob read fills the cache only with bytes of the right digest and size', async () => {
  const { driver, lie, reads } = await remoteStore();
  const cache = await BlobCache.open({ dir: fresh('cache'), maxBytes: 1 << 30 });
  const st = await RegistryStorage.open(driver, { cache });
  try {
    const blob = randomBytes(200_000);
    const d = sha256(blob);
    await driver.put(blobKey(d), blob);
    // The store answers other bytes of the same size: served (the store is the truth) but never cached.
    lie.bytes = randomBytes(blob.length);
    await drain(await st.readBlob(d, 0, blob.length - 1, blob.length));
    assert.equal(await st.openBlobFile(d, blob.length), null, 'wrong bytes are not cached');
    // A short body is not cached either.
    lie.bytes = blob.subarray(0, 1000);
    await drain(await st.readBlob(d, 0, blob.length - 1, blob.length));
    assert.equal(await st.openBlobFile(d, blob.length), null, 'a short body is not cached');
    lie.bytes = null;
    // A range read is passed through, not cached.
    assert.deepEqual(await drain(await st.readBlob(d, 10, 19, blob.length)), blob.subarray(10, 20));
    assert.equal(await st.openBlobFile(d, blob.length), null);
    // A reader that stops early leaves no copy.
    for await (const _ of await st.readBlob(d, 0, blob.length - 1, blob.length)) break;
    assert.equal(await st.openBlobFile(d, blob.length), null);
    // The whole blob, right bytes: cached, and the next read is the local file.
    assert.deepEqual(await drain(await st.readBlob(d, 0, blob.length - 1, blob.length)), blob);
    const fh = await st.openBlobFile(d, blob.length);
    assert.ok(fh, 'cached after a whole, verified read');
    assert.deepEqual(await fh.readFile(), blob);
    await fh.close();
    assert.ok(reads.n >= 5);
  } finally {
    await st.close();
  }
});

test('a monolithic push is cached once its digest checks; a refused push leaves no copy', async () => {
  const { driver } = await remoteStore();
  const dir = fresh('cache');
  const cache = await BlobCache.open({ dir, maxBytes: 1 << 30 });
  const st = await RegistryStorage.open(driver, { cache });
  try {
    const blob = randomBytes(150_000);
    const body = async function* () { yield blob.subarray(0, 50_000); yield blob.subarray(50_000); };
    await st.putBlob('lib/x', sha256(blob), body());
    const fh = await st.openBlobFile(sha256(blob), blob.length);
    assert.ok(fh);
    assert.deepEqual(await fh.readFile(), blob);
    await fh.close();
    const other = randomBytes(1000);
    const claimed = sha256(randomBytes(10));
    await assert.rejects(st.putBlob('lib/x', claimed, (async function* () { yield other; })()), /digest mismatch/);
    assert.equal(await cache.openBlob(claimed, other.length), null);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  } finally {
    await st.close();
  }
});

test('the server answers from the cache only what the store still has: a blob deleted from the store is 404', async () => {
  const { driver, reads } = await remoteStore();
  const srv = await startRegistryServer({ driver, addr: '127.0.0.1:0', blobCache: { dir: fresh('cache'), maxBytes: 1 << 30 } });
  try {
    const blob = randomBytes(500_000);
    const d = sha256(blob);
    assert.equal((await fetch(`${srv.url}/v2/lib/y/blobs/uploads/?digest=${d}`, { method: 'POST', body: blob })).status, 201);
    const before = reads.n;
    const got = await fetch(`${srv.url}/v2/lib/y/blobs/${d}`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), blob);
    const part = await fetch(`${srv.url}/v2/lib/y/blobs/${d}`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), blob.subarray(100, 200));
    assert.equal(reads.n, before, 'both answered from the cache, not the store');
    // Garbage collection deleted the blob from the store: the replica's copy must not answer for it.
    await driver.delete(blobKey(d));
    assert.equal((await fetch(`${srv.url}/v2/lib/y/blobs/${d}`)).status, 404);
  } finally {
    await srv.close();
  }
  await assert.rejects(startRegistryServer({ root: fresh('fsroot'), addr: '127.0.0.1:0', blobCache: { dir: fresh('cache'), maxBytes: 1 << 20 } }), /--blob-cache is for a remote store/);
  await assert.rejects(serveOptions({ addr: '127.0.0.1:0', root: fresh('r'), storage: 's3', s3Bucket: 'b', blobCache: fresh('c'), blobCacheSize: 'lots' }), /invalid --blob-cache-size "lots"/);
  await assert.rejects(serveOptions({ addr: '127.0.0.1:0', root: fresh('r'), blobCacheSize: '1g' }), /--blob-cache-size needs --blob-cache/);
  const o = await serveOptions({ addr: '127.0.0.1:0', root: fresh('r'), storage: 's3', s3Bucket: 'b', s3Endpoint: 'http://127.0.0.1:1', blobCache: 'rel/dir', blobCacheSize: '512m' });
  assert.equal(o.blobCache?.maxBytes, 512 * 1024 * 1024);
  assert.equal(o.blobCache?.dir, join(process.cwd(), 'rel/dir'));
  await o.driver?.close();
});

test('bounded: the least recently used blobs go past the bound; a blob bigger than the bound is never kept', async () => {
  const dir = fresh('cache');
  const c = await BlobCache.open({ dir, maxBytes: 1000 });
  const put = async (b: Buffer) => { const f = c.fill(sha256(b))!; f.write(b); await f.commit(); };
  const blobs = [randomBytes(300), randomBytes(300), randomBytes(300)];
  for (const [i, b] of blobs.entries()) {
    await put(b);
    // Distinct ages (oldest first), older than the hit refresh interval so that a hit moves the blob up.
    const t = new Date(Date.now() - (10 - i) * 120_000);
    await utimes(join(dir, 'sha256', sha256(b).slice(7)), t, t);
  }
  const hit = await c.openBlob(sha256(blobs[0]!), 300); // the oldest is used again
  await hit!.close();
  await waitFor(async () => (await lstat(join(dir, 'sha256', sha256(blobs[0]!).slice(7)))).mtimeMs > Date.now() - 60_000);
  await put(randomBytes(300)); // 1200 > 1000: down to ≤ 900
  const left = new Set(await readdir(join(dir, 'sha256')));
  assert.equal(left.size, 3);
  assert.ok(left.has(sha256(blobs[0]!).slice(7)), 'the blob used last stays');
  assert.ok(!left.has(sha256(blobs[1]!).slice(7)), 'the least recently used goes');
  assert.equal(c.size, 900);
  const big = randomBytes(1500);
  const f = c.fill(sha256(big))!;
  f.write(big);
  await f.commit();
  assert.equal(await c.openBlob(sha256(big), big.length), null);
  assert.deepEqual(await readdir(join(dir, 'tmp')), []);
});

test('at open: a cache of another boot is emptied, stale temp files and foreign entries go, symlinks are never followed', async () => {
  const dir = fresh('cache');
  const c = await BlobCache.open({ dir, maxBytes: 1 << 20 });
  const blob = randomBytes(100);
  const f = c.fill(sha256(blob))!;
  f.write(blob);
  await f.commit();
  const hex = sha256(blob).slice(7);
  // Leftovers of a dead process: an old temp file goes, a fresh one (a live fill of another worker) stays.
  await writeFile(join(dir, 'tmp', 'old'), 'x');
  const old = new Date(Date.now() - 3600_000);
  await utimes(join(dir, 'tmp', 'old'), old, old);
  await writeFile(join(dir, 'tmp', 'live'), 'x');
  // Hostile entries: a symlink named like a blob to a file outside, a directory.
  const outside = join(base, `outside-${n++}`);
  await writeFile(outside, randomBytes(100));
  const evil = sha256(randomBytes(8)).slice(7);
  await symlink(outside, join(dir, 'sha256', evil));
  await mkdir(join(dir, 'sha256', 'not-a-blob'));
  const again = await BlobCache.open({ dir, maxBytes: 1 << 20 });
  assert.deepEqual((await readdir(join(dir, 'sha256'))).sort(), [hex], 'the symlink and the directory are gone');
  assert.deepEqual(await readFile(outside).then((b) => b.length), 100, 'the symlink target is untouched');
  assert.deepEqual((await readdir(join(dir, 'tmp'))).sort(), ['live']);
  assert.deepEqual(await readAll(again, sha256(blob), 100), blob);
  // A symlink planted after open is not followed either.
  await rm(join(dir, 'sha256', hex));
  await symlink(outside, join(dir, 'sha256', hex));
  assert.equal(await readAll(again, sha256(blob), 100), null);
  // Written in another boot: emptied.
  await rm(join(dir, 'sha256', hex));
  await f.commit(); // no-op: already committed
  const g = again.fill(sha256(randomBytes(5)));
  await g?.abort();
  const h = (await BlobCache.open({ dir, maxBytes: 1 << 20 })).fill(sha256(blob))!;
  h.write(blob);
  await h.commit();
  await writeFile(join(dir, 'boot-id'), 'another-boot\n');
  await BlobCache.open({ dir, maxBytes: 1 << 20 });
  assert.deepEqual(await readdir(join(dir, 'sha256')), []);
  assert.notEqual((await readFile(join(dir, 'boot-id'), 'utf8')).trim(), 'another-boot');
  // A cached file cut short on disk (a torn write) is not served for the size the store answers.
  const k = await BlobCache.open({ dir, maxBytes: 1 << 20 });
  const i = k.fill(sha256(blob))!;
  i.write(blob);
  await i.commit();
  await truncate(join(dir, 'sha256', hex), 50);
  assert.equal(await readAll(k, sha256(blob), 100), null);
});

test('the directory is the cache\'s alone: another directory with content, one others can write to, a file or a symlink are refused, untouched', async () => {
  const busy = fresh('busy');
  await mkdir(busy, { mode: 0o755 });
  await writeFile(join(busy, 'notes.txt'), 'mine');
  await assert.rejects(BlobCache.open({ dir: busy, maxBytes: 1 << 20 }), /not empty and not a blob cache \(notes\.txt\)/);
  assert.equal((await lstat(busy)).mode & 0o777, 0o755, 'its mode untouched');
  assert.equal(await readFile(join(busy, 'notes.txt'), 'utf8'), 'mine');
  const open = fresh('open');
  await mkdir(open);
  await chmod(open, 0o777);
  await assert.rejects(BlobCache.open({ dir: open, maxBytes: 1 << 20 }), /writable by other users/);
  const file = fresh('file');
  await writeFile(file, 'x');
  await assert.rejects(BlobCache.open({ dir: file, maxBytes: 1 << 20 }), /not a directory/);
  const link = fresh('link');
  await symlink(busy, link);
  await assert.rejects(BlobCache.open({ dir: link, maxBytes: 1 << 20 }), /not a directory/);
  // An empty directory (0755) is taken and made private; a cache made before is opened again.
  const empty = fresh('empty');
  await mkdir(empty, { mode: 0o755 });
  await BlobCache.open({ dir: empty, maxBytes: 1 << 20 });
  assert.equal((await lstat(empty)).mode & 0o777, 0o700);
  assert.deepEqual((await readdir(empty)).sort(), ['boot-id', 'sha256', 'tmp']);
  await BlobCache.open({ dir: empty, maxBytes: 1 << 20 });
});

test('copies of several MiB, written in odd-sized chunks by two fills at once, come out byte for byte (the write buffers are shared)', async () => {
  const c = await BlobCache.open({ dir: fresh('cache'), maxBytes: 1 << 30 });
  const blobs = [randomBytes(3.5 * 1024 * 1024 + 17), randomBytes(2 * 1024 * 1024 + 4093)];
  const fills = blobs.map((b) => c.fill(sha256(b))!);
  const offs = [0, 0];
  // Interleaved, chunk sizes from 1 byte to ~300 KiB; the caller reuses its chunk buffer right after each write.
  const scratch = Buffer.alloc(300_000);
  for (let i = 0; offs.some((o, j) => o < blobs[j]!.length); i++) {
    const j = i % 2;
    if (offs[j]! >= blobs[j]!.length) continue;
    const n = Math.min(1 + ((i * 7919) % 300_000), blobs[j]!.length - offs[j]!);
    blobs[j]!.copy(scratch, 0, offs[j]!, offs[j]! + n);
    fills[j]!.write(scratch.subarray(0, n));
    scratch.fill(0xaa, 0, n);
    offs[j]! += n;
    if (i % 5 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(fills.map((f) => f.commit()));
  for (const b of blobs) assert.ok((await readAll(c, sha256(b), b.length))!.equals(b));
});
