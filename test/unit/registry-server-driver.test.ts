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
