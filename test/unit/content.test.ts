import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openContentStore } from '../../src/engine/content/store.js';
import { sha256, type Digest } from '../../src/lib/digest.js';
import { InvalidParameterError, NotFoundError } from '../../src/lib/errors.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'wharf-content-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('put stores a blob under blobs/sha256/<hex> and reads it back', async () => {
  await withRoot(async (root) => {
    const cs = await openContentStore(root);
    const data = Buffer.from('hello wharf');
    const d = sha256(data);
    assert.equal(await cs.has(d), false);
    const info = await cs.put(data, d);
    assert.deepEqual(info, { digest: d, size: data.length });
    assert.equal(await cs.has(d), true);
    assert.equal(cs.pathOf(d), join(root, 'blobs', 'sha256', d.slice(7)));
    assert.deepEqual(await readFile(cs.pathOf(d)), data);
    assert.deepEqual(await cs.readBytes(d), data);
    assert.deepEqual(await streamToBuffer(await cs.reader(d)), data);
    assert.deepEqual(await cs.info(d), { digest: d, size: data.length });
    // without an expected digest the computed one is returned
    const info2 = await cs.put(Buffer.from('other'));
    assert.equal(info2.digest, sha256('other'));
    const all: Digest[] = [];
    for await (const b of cs.walk()) all.push(b.digest);
    assert.deepEqual(all.sort(), [d, sha256('other')].sort());
    assert.deepEqual(await readdir(join(root, 'ingest')), []);
    await cs.delete(d);
    assert.equal(await cs.has(d), false);
    await cs.delete(d); // idempotent
  });
});

test('put with the wrong digest fails with "digest mismatch" and leaves nothing', async () => {
  await withRoot(async (root) => {
    const cs = await openContentStore(root);
    const wrong = sha256('something else');
    await assert.rejects(cs.put(Buffer.from('actual bytes'), wrong), (e: unknown) => {
      assert.ok(e instanceof InvalidParameterError);
      assert.match((e as Error).message, /digest mismatch/);
      assert.match((e as Error).message, new RegExp(`expected ${wrong}, got ${sha256('actual bytes')}`));
      return true;
    });
    assert.equal(await cs.has(wrong), false);
    assert.equal(await cs.has(sha256('actual bytes')), false);
    assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')), []);
    assert.deepEqual(await readdir(join(root, 'ingest')), []);
  });
});

test('writer: ingest invisible until commit; size mismatch and abort discard', async () => {
  await withRoot(async (root) => {
    const cs = await openContentStore(root);
    const data = Buffer.from('a'.repeat(100000));
    const d = sha256(data);
    const w = await cs.writer();
    await w.write(data.subarray(0, 50000));
    assert.equal(w.written, 50000);
    assert.equal(await cs.has(d), false);
    assert.equal((await readdir(join(root, 'ingest'))).length, 1);
    await w.write(data.subarray(50000));
    const info = await w.commit(d, data.length);
    assert.equal(info.size, 100000);
    assert.equal(await cs.has(d), true);

    const w2 = await cs.writer();
    await w2.write(Buffer.from('xyz'));
    await assert.rejects(w2.commit(sha256('xyz'), 4), /digest mismatch/);
    assert.equal(await cs.has(sha256('xyz')), false);

    const w3 = await cs.writer();
    await w3.write(Buffer.from('abc'));
    await w3.abort();
    assert.deepEqual(await readdir(join(root, 'ingest')), []);
    assert.equal(await cs.has(sha256('abc')), false);
  });
});

test('missing blobs are NotFoundError; stale ingests are removed at open', async () => {
  await withRoot(async (root) => {
    const cs = await openContentStore(root);
    const d = sha256('nope');
    await assert.rejects(cs.info(d), NotFoundError);
    await assert.rejects(cs.readBytes(d), NotFoundError);
    await assert.rejects(cs.reader(d), NotFoundError);
    await cs.put(Buffer.from('kept'));
    // a crash mid-write leaves an ingest file
    const w = await cs.writer();
    await w.write(Buffer.from('half'));
    await writeFile(join(root, 'ingest', 'stale-from-crash'), 'partial');
    const cs2 = await openContentStore(root);
    assert.deepEqual(await readdir(join(root, 'ingest')), []);
    assert.equal(await cs2.has(sha256('kept')), true);
    assert.equal(await cs2.has(sha256('half')), false);
    await w.abort();
  });
});
