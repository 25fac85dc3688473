/**
 * Ceph's RADOS Gateway for the S3 tests of `wharf registry serve`, from `scripts/ceph-rgw.sh` (one mon, one
 * memstore OSD, radosgw on loopback; idempotent: a running micro-cluster is reused).
 *
 *   const rgw = await startRgw();        // { endpoint, accessKey, secretKey, region } or { skip: 'why' }
 *   const bucket = await makeBucket(rgw); // a fresh bucket; removeBucket(rgw, bucket) empties and removes it
 *
 * When the cluster cannot start here (packages missing, no memstore…), `skip` says why and the tests skip; nothing
 * else in the suite depends on it. The cluster is left running for the next file (the script stops it:
 * `scripts/ceph-rgw.sh stop`). WHARF_S3_ENDPOINT + AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY in the environment
 * name another S3-compatible store instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client,
  ListMultipartUploadsCommand, AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { S3Driver } from '../../src/registry/s3-driver.js';
import { freePort } from './registry.js';
import { NODE, projectRoot } from './cli.js';

const execFileP = promisify(execFile);

export interface Rgw {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

let started: Promise<Rgw | { skip: string }> | null = null;

export function startRgw(): Promise<Rgw | { skip: string }> {
  started ??= (async () => {
    const e = process.env;
    if (e.WHARF_S3_ENDPOINT && e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY) {
      return { endpoint: e.WHARF_S3_ENDPOINT, accessKey: e.AWS_ACCESS_KEY_ID, secretKey: e.AWS_SECRET_ACCESS_KEY, region: e.AWS_REGION ?? 'us-east-1' };
    }
    const script = join(import.meta.dirname, '..', '..', '..', 'scripts', 'ceph-rgw.sh');
    try {
      const { stdout } = await execFileP('bash', [script, 'start'], { timeout: 120_000 });
      const env = Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
      return { endpoint: env.WHARF_S3_ENDPOINT!, accessKey: env.AWS_ACCESS_KEY_ID!, secretKey: env.AWS_SECRET_ACCESS_KEY!, region: env.AWS_REGION ?? 'us-east-1' };
    } catch (err) {
      const x = err as { stderr?: string; message?: string };
      return { skip: `Ceph RGW micro-cluster unavailable: ${(x.stderr || x.message || String(err)).trim().split('\n').pop()}` };
    }
  })();
  return started;
}

export function rgwClient(r: Rgw): S3Client {
  return new S3Client({
    endpoint: r.endpoint, region: r.region, forcePathStyle: true,
    credentials: { accessKeyId: r.accessKey, secretAccessKey: r.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function makeBucket(r: Rgw, prefix = 'wharf-test'): Promise<string> {
  const bucket = `${prefix}-${randomBytes(4).toString('hex')}`;
  const c = rgwClient(r);
  try {
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    c.destroy();
  }
  return bucket;
}

export function s3Driver(r: Rgw, bucket: string, extra: { rootDirectory?: string } = {}): S3Driver {
  return new S3Driver({ bucket, endpoint: r.endpoint, region: r.region, forcePathStyle: true, accessKey: r.accessKey, secretKey: r.secretKey, ...extra });
}

/** Every object key of the bucket. */
export async function listKeys(r: Rgw, bucket: string): Promise<string[]> {
  const c = rgwClient(r);
  const out: string[] = [];
  try {
    let token: string | undefined;
    do {
      const res = await c.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of res.Contents ?? []) out.push(o.Key!);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  } finally {
    c.destroy();
  }
  return out;
}

export async function removeBucket(r: Rgw, bucket: string): Promise<void> {
  const c = rgwClient(r);
  try {
    for (const k of await listKeys(r, bucket)) await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
    const mp = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of mp.Uploads ?? []) await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
    await c.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch {
    // best effort: the micro-cluster's memstore goes with `ceph-rgw.sh stop`
  } finally {
    c.destroy();
  }
}

/** The flags of `wharf registry serve|gc` for a bucket of `r` (credentials come from s3Env()). */
export function s3Args(r: Rgw, bucket: string): string[] {
  return ['--storage', 's3', '--s3-bucket', bucket, '--s3-endpoint', r.endpoint, '--s3-force-path-style', '--s3-region', r.region];
}

/** Credentials in the environment (the AWS SDK's chain), as an operator gives them. */
export function s3Env(r: Rgw): NodeJS.ProcessEnv {
  return { ...process.env, AWS_ACCESS_KEY_ID: r.accessKey, AWS_SECRET_ACCESS_KEY: r.secretKey };
}

export const REGISTRY_MAIN = join(projectRoot, 'dist', 'src', 'registry', 'main.js');

export interface Replica { url: string; host: string; child: ChildProcess; stop(signal?: NodeJS.Signals): Promise<void> }

/** A `wharf registry serve --storage s3` process (one worker) on a loopback port over `bucket`. */
export async function startReplica(r: Rgw, bucket: string, extra: string[] = []): Promise<Replica> {
  const port = await freePort();
  const child = spawn(NODE, [REGISTRY_MAIN, 'serve', '--addr', `127.0.0.1:${port}`, '--workers', '1', ...s3Args(r, bucket), ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: s3Env(r) });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`replica did not start: ${err}`)); }, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) { clearTimeout(t); res(m[1]!); }
    });
    child.once('exit', (c) => { clearTimeout(t); rej(new Error(`replica exited ${c}: ${err}`)); });
  });
  return {
    url, host: url.replace(/^https?:\/\//, ''), child,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill(signal);
    }),
  };
}
