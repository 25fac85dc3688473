// The storage driver conformance suite (test/support/registry-conformance.ts) on the S3 driver, over Ceph's RADOS
// Gateway from scripts/ceph-rgw.sh (skipped, with the reason, when the micro-cluster cannot start here).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { startRegistryServer } from '../../src/registry/server.js';
import { S3Driver } from '../../src/registry/s3-driver.js';
import { RegistryStorage } from '../../src/registry/storage.js';
import { sha256 } from '../../src/lib/digest.js';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { driverConformance } from '../support/registry-conformance.js';
import { request as httpRequest } from 'node:http';
import { listKeys, makeBucket, removeBucket, rgwClient, s3Driver, startReplica, startRgw } from '../support/rgw.js';
import { waitFor } from '../support/wait.js';
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rgw = await startRgw();
const bucket = 'skip' in rgw ? '' : await makeBucket(rgw, 'wharf-conf');
after(async () => { if (!('skip' in rgw)) await removeBucket(rgw, bucket); });

driverConformance('s3', 'skip' in rgw
  ? { open: () => Promise.reject(new Error(rgw.skip)), skip: rgw.skip }
  : { open: async () => s3Driver(rgw, bucket, { rootDirectory: 'conf' }) });

test('s3: incomplete multipart uploads (a replica killed mid-chunk) are invisible and swept by age', { skip: 'skip' in rgw ? rgw.skip : false }, async () => {
  if ('skip' in rgw) return;
  const c = rgwClient(rgw);
  const d = s3Driver(rgw, bucket, { rootDirectory: 'sweep' });
  try {
    const mp = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'sweep/uploads/x/chunks/0000000000000000' }));
    await c.send(new UploadPartCommand({ Bucket: bucket, Key: 'sweep/uploads/x/chunks/0000000000000000', UploadId: mp.UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
    assert.equal(await d.uploadModified('x'), null, 'nothing visible');
    assert.equal(await d.sweepIncomplete(3_600_000), 0, 'a young one stays (it may be in flight)');
    assert.equal(await d.sweepIncomplete(0), 1);
    const left = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'sweep/' }));
    assert.deepEqual(left.Uploads ?? [], []);
  } finally {
    c.destroy();
    await d.close();
  }
});

test('s3: a missing bucket or wrong credentials fail at startup with the reason', { skip: 'skip' in rgw ? rgw.skip : false }, async () => {
  if ('skip' in rgw) return;
  await assert.rejects(startRegistryServer({ driver: s3Driver(rgw, 'wharf-no-such-bucket'), addr: '127.0.0.1:0' }), /s3 storage s3:\/\/wharf-no-such-bucket\/: no such bucket/);
  const wrong = new S3Driver({ bucket, endpoint: rgw.endpoint, forcePathStyle: true, accessKey: rgw.accessKey, secretKey: 'wrong' });
  await assert.rejects(startRegistryServer({ driver: wrong, addr: '127.0.0.1:0' }), /access denied \(check the credentials/);
});

test('s3: two replicas appending at one offset: the stored chunk wins, and a digest of the other bytes is refused, never published', { skip: 'skip' in rgw ? rgw.skip : false }, async () => {
  if ('skip' in rgw) return;
  const a = await RegistryStorage.open(s3Driver(rgw, bucket, { rootDirectory: 'race' }));
  const b = await RegistryStorage.open(s3Driver(rgw, bucket, { rootDirectory: 'race' }));
  try {
    const up = await a.startUpload('race/x');
    const ua = await a.getUpload('race/x', up.id);
    const ub = await b.getUpload('race/x', up.id);
    const bytesA = randomBytes(10_000);
    const bytesB = randomBytes(10_000);
    await a.appendUpload(ua, Readable.from([bytesA]));
    await b.appendUpload(ub, Readable.from([bytesB]));
    const stored: Buffer[] = [];
    for await (const c of a.driver.readUpload(up.id)) stored.push(c);
    const winner = Buffer.concat(stored);
    assert.ok(winner.equals(bytesA) || winner.equals(bytesB), 'one chunk, whole');
    const [loserStore, loserBytes] = winner.equals(bytesA) ? [b, bytesB] : [a, bytesA];
    const lu = await loserStore.getUpload('race/x', up.id);
    assert.equal(lu.size, 10_000);
    await assert.rejects(loserStore.finishUpload(lu, sha256(loserBytes)), /digest mismatch/);
    assert.equal(await a.hasBlob(sha256(loserBytes)), false, 'no blob under a digest its bytes do not have');
    assert.equal(await a.hasBlob(sha256(winner)), false);
  } finally {
    await a.close();
    await b.close();
  }
});

test('s3: a monolithic upload streams to the blob key and is published only once its digest checks', { skip: 'skip' in rgw ? rgw.skip : false, timeout: 120_000 }, async () => {
  if ('skip' in rgw) return;
  const c = rgwClient(rgw);
  const srv = await startRegistryServer({ driver: s3Driver(rgw, bucket, { rootDirectory: 'mono' }), addr: '127.0.0.1:0' });
  const multipart = async () => (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'mono/' }))).Uploads ?? [];
  try {
    // 20 MiB: two parts of a multipart upload of the blob's own key.
    const blob = randomBytes(20 * 1024 * 1024);
    const good = await fetch(`${srv.url}/v2/mono/x/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob });
    assert.equal(good.status, 201, await good.text());
    assert.equal(sha256(Buffer.from(await (await fetch(`${srv.url}/v2/mono/x/blobs/${sha256(blob)}`)).arrayBuffer())), sha256(blob));
    // Bytes that do not match the digest claimed: refused, and nothing at the claimed key, no upload left.
    const other = randomBytes(20 * 1024 * 1024);
    const claimed = sha256(randomBytes(64));
    const bad = await fetch(`${srv.url}/v2/mono/x/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: other });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DIGEST_INVALID');
    assert.equal((await fetch(`${srv.url}/v2/mono/x/blobs/${claimed}`, { method: 'HEAD' })).status, 404);
    // The same through POST then PUT with the whole body.
    const post = await fetch(`${srv.url}/v2/mono/x/blobs/uploads/`, { method: 'POST' });
    const loc = new URL(post.headers.get('location')!, srv.url);
    loc.searchParams.set('digest', claimed);
    const badPut = await fetch(loc, { method: 'PUT', body: other });
    assert.equal(badPut.status, 400);
    loc.searchParams.set('digest', sha256(other));
    assert.equal((await fetch(loc, { method: 'PUT', body: other })).status, 404, 'the session ended with the refused PUT');
    const keys = await listKeys(rgw, bucket);
    assert.deepEqual(keys.filter((k) => k.startsWith('mono/blobs/')), [`mono/blobs/sha256/${sha256(blob).slice(7)}`]);
    assert.deepEqual(keys.filter((k) => k.startsWith('mono/uploads/')), [], 'no upload session left');
    assert.deepEqual(await multipart(), [], 'no multipart upload left');
  } finally {
    await srv.close();
    c.destroy();
  }
});

test('s3: a replica killed mid-way through a monolithic upload leaves nothing visible, only an incomplete multipart upload that GC sweeps', { skip: 'skip' in rgw ? rgw.skip : false, timeout: 120_000 }, async () => {
  if ('skip' in rgw) return;
  const c = rgwClient(rgw);
  const victim = await startReplica(rgw, bucket, []);
  const blob = randomBytes(40 * 1024 * 1024);
  const key = `blobs/sha256/${sha256(blob).slice(7)}`;
  const onKey = async () => ((await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }))).Uploads ?? []);
  try {
    const req = httpRequest(`${victim.url}/v2/mono/killed/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', agent: false, headers: { 'Content-Length': blob.length } });
    req.on('error', () => {});
    req.write(blob.subarray(0, 20 * 1024 * 1024));
    // The first part has gone to the store (a multipart upload of the blob's key exists): kill the replica.
    await waitFor(async () => (await onKey()).length > 0, { timeout: 60_000, message: 'a multipart upload of the blob key' });
    await victim.stop('SIGKILL');
    req.destroy();
    const d = s3Driver(rgw, bucket);
    try {
      assert.equal(await d.stat(key), null, 'no blob visible');
      assert.equal((await onKey()).length, 1, 'an incomplete multipart upload, invisible');
      assert.ok((await d.sweepIncomplete(0)) >= 1);
      assert.deepEqual(await onKey(), [], 'swept');
    } finally {
      await d.close();
    }
  } finally {
    await victim.stop('SIGKILL');
    c.destroy();
  }
});

test('s3: --blob-cache: a replica serves blobs pushed through it from its cache, another reads through into its own, and none answers for a blob the store lost', { skip: 'skip' in rgw ? rgw.skip : false, timeout: 120_000 }, async () => {
  if ('skip' in rgw) return;
  const dirs = await mkdtemp(join(tmpdir(), 'wharf-s3cache-'));
  const a = await startReplica(rgw, bucket, ['--s3-root-directory', 'cached', '--blob-cache', join(dirs, 'a'), '--blob-cache-size', '64m']);
  const b = await startReplica(rgw, bucket, ['--s3-root-directory', 'cached', '--blob-cache', join(dirs, 'b')]);
  const cached = (dir: string, d: string) => readFile(join(dirs, dir, 'sha256', d.slice(7))).catch(() => null);
  try {
    // 12 MiB, monolithic: streamed to the store and into a's cache, kept once the digest checked.
    const blob = randomBytes(12 * 1024 * 1024);
    const d = sha256(blob);
    const push = await fetch(`${a.url}/v2/cache/x/blobs/uploads/?digest=${d}`, { method: 'POST', body: blob });
    assert.equal(push.status, 201, await push.text());
    assert.deepEqual(await cached('a', d), blob, "in a's cache");
    assert.equal(await cached('b', d), null);
    const whole = await fetch(`${a.url}/v2/cache/x/blobs/${d}`);
    assert.equal(whole.headers.get('docker-content-digest'), d);
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), blob);
    const part = await fetch(`${a.url}/v2/cache/x/blobs/${d}`, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${blob.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), blob.subarray(1000, 2000));
    // b has not seen it: a Range read passes through, a whole read is streamed from RGW and kept.
    const bpart = await fetch(`${b.url}/v2/cache/x/blobs/${d}`, { headers: { Range: 'bytes=5-9' } });
    assert.deepEqual(Buffer.from(await bpart.arrayBuffer()), blob.subarray(5, 10));
    assert.equal(await cached('b', d), null, 'a range is not cached');
    assert.deepEqual(Buffer.from(await (await fetch(`${b.url}/v2/cache/x/blobs/${d}`)).arrayBuffer()), blob);
    await waitFor(async () => (await cached('b', d))?.equals(blob) ?? false, { timeout: 10_000, message: "the blob in b's cache" });
    // A cached copy cut short on disk is not served: the bytes come from the store again.
    await truncate(join(dirs, 'a', 'sha256', d.slice(7)), 100);
    assert.deepEqual(Buffer.from(await (await fetch(`${a.url}/v2/cache/x/blobs/${d}`)).arrayBuffer()), blob);
    // The store lost the blob (garbage collection): neither replica answers for it from its cache.
    const drv = s3Driver(rgw, bucket, { rootDirectory: 'cached' });
    try {
      await drv.delete(`blobs/sha256/${d.slice(7)}`);
    } finally {
      await drv.close();
    }
    assert.ok(await cached('b', d));
    assert.equal((await fetch(`${a.url}/v2/cache/x/blobs/${d}`)).status, 404);
    assert.equal((await fetch(`${b.url}/v2/cache/x/blobs/${d}`)).status, 404);
  } finally {
    await a.stop();
    await b.stop();
    await rm(dirs, { recursive: true, force: true });
  }
});
