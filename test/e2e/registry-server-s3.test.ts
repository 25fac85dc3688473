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
import { makeBucket, removeBucket, rgwClient, s3Driver, startRgw } from '../support/rgw.js';

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
