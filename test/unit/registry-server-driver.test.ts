// The storage driver conformance suite (test/support/registry-conformance.ts) on the filesystem driver; the S3
// driver runs the same suite in test/e2e/registry-server-s3.test.ts (over Ceph RGW).
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDriver } from '../../src/registry/fs-driver.js';
import { driverConformance } from '../support/registry-conformance.js';

const root = await mkdtemp(join(tmpdir(), 'wharf-regdriver-'));
after(() => rm(root, { recursive: true, force: true }));

driverConformance('filesystem', { open: () => FsDriver.open(root) });
