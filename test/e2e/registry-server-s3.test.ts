// The storage driver conformance suite (test/support/registry-conformance.ts) on the S3 driver, over Ceph's RADOS
// Gateway from scripts/ceph-rgw.sh (skipped, with the reason, when the micro-cluster cannot start here).
import { after } from 'node:test';
import { driverConformance } from '../support/registry-conformance.js';
import { makeBucket, removeBucket, s3Driver, startRgw } from '../support/rgw.js';

const rgw = await startRgw();
const bucket = 'skip' in rgw ? '' : await makeBucket(rgw, 'wharf-conf');
after(async () => { if (!('skip' in rgw)) await removeBucket(rgw, bucket); });

driverConformance('s3', 'skip' in rgw
  ? { open: () => Promise.reject(new Error(rgw.skip)), skip: rgw.skip }
  : { open: async () => s3Driver(rgw, bucket, { rootDirectory: 'conf' }) });
