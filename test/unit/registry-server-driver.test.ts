// The storage driver conformance suite (test/support/registry-conformance.ts) on the filesystem driver; the S3
// driver runs the same suite in test/e2e/registry-server-s3.test.ts (over Ceph RGW).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { storageDriver } from '../../src/registry/main.js';
import { S3Driver } from '../../src/registry/s3-driver.js';
import { startRegistryServer } from '../../src/registry/server.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FsDriver } from '../../src/registry/fs-driver.js';
import { driverConformance } from '../support/registry-conformance.js';

const root = await mkdtemp(join(tmpdir(), 'wharf-regdriver-'));
after(() => rm(root, { recursive: true, force: true }));

driverConformance('filesystem', { open: () => FsDriver.open(root) });

test('storage flags: filesystem by default; s3 flags and distribution\'s environment variables; bad input refused clearly', async () => {
  assert.equal(storageDriver({ root: root }), null);
  assert.throws(() => storageDriver({ root, storage: 'gcs' }), /unknown --storage "gcs" \(filesystem or s3\)/);
  assert.throws(() => storageDriver({ root, storage: 's3' }), /--storage s3 needs --s3-bucket/);
  assert.throws(() => storageDriver({ root, storage: 's3', s3Bucket: 'b', s3AccessKey: 'k' }), /go together/);
  assert.throws(() => storageDriver({ root, storage: 's3', s3Bucket: 'b', s3ChunkSize: '1000' }), /invalid --s3-chunk-size 1000/);
  const d = storageDriver({ root, storage: 's3', s3Bucket: 'bk', s3RootDirectory: '/reg/', s3Endpoint: 'http://127.0.0.1:1', s3ForcePathStyle: true });
  assert.ok(d instanceof S3Driver);
  assert.equal(d.location, 's3://bk/reg');
  await d.close();
  process.env.REGISTRY_STORAGE = 's3';
  process.env.REGISTRY_STORAGE_S3_BUCKET = 'from-env';
  try {
    const e = storageDriver({ root });
    assert.equal(e?.location, 's3://from-env/');
    await e?.close();
  } finally {
    delete process.env.REGISTRY_STORAGE;
    delete process.env.REGISTRY_STORAGE_S3_BUCKET;
  }
  await assert.rejects(startRegistryServer({ root, addr: '127.0.0.1:0', redirect: true }), /--redirect needs a storage driver that presigns URLs/);
});

test('a manifest GET or HEAD reads the revision and the manifest blob in one round trip to the store (one more for a tag)', async () => {
  // Round trips counted on the driver: a call that starts while none is in flight opens a round. Each call yields
  // to the event loop before the store is touched, so calls made together overlap.
  const dir = await mkdtemp(join(tmpdir(), 'wharf-regrounds-'));
  const inner = await FsDriver.open(dir);
  const seen = { inflight: 0, rounds: 0, calls: [] as string[] };
  const counted = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (prop !== 'get' && prop !== 'stat' && prop !== 'list') return v.bind(target);
      return async (...args: unknown[]) => {
        if (seen.inflight++ === 0) seen.rounds++;
        seen.calls.push(`${String(prop)} ${String(args[0])}`);
        try {
          await new Promise((r) => setImmediate(r));
          return await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          seen.inflight--;
        }
      };
    },
  });
  const srv = await startRegistryServer({ driver: counted, addr: '127.0.0.1:0' });
  try {
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const up = await fetch(`${srv.url}/v2/rt/img/blobs/uploads/?digest=${sha(config)}`, { method: 'POST', body: config });
    assert.equal(up.status, 201);
    const mt = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [] }));
    const put = await fetch(`${srv.url}/v2/rt/img/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': mt } });
    assert.equal(put.status, 201);
    const rounds = async (method: string, ref: string): Promise<number> => {
      seen.rounds = 0;
      seen.calls = [];
      const r = await fetch(`${srv.url}/v2/rt/img/manifests/${ref}`, { method, headers: { Accept: mt } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('docker-content-digest'), sha(manifest));
      if (method === 'GET') assert.deepEqual(Buffer.from(await r.arrayBuffer()), manifest);
      return seen.rounds;
    };
    assert.equal(await rounds('GET', sha(manifest)), 1, `GET by digest: ${seen.calls.join(', ')}`);
    assert.equal(await rounds('HEAD', sha(manifest)), 1, `HEAD by digest: ${seen.calls.join(', ')}`);
    assert.equal(await rounds('GET', 'v1'), 2, `GET by tag: ${seen.calls.join(', ')}`);
    assert.equal(await rounds('HEAD', 'v1'), 2, `HEAD by tag: ${seen.calls.join(', ')}`);
    // A revision without its blob (the blob went) is still unknown.
    await inner.delete(`blobs/sha256/${sha(manifest).slice(7)}`);
    const gone = await fetch(`${srv.url}/v2/rt/img/manifests/v1`, { headers: { Accept: mt } });
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
  } finally {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  }
});
