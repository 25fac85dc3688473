/**
 * Two `wharf registry serve --storage s3` replicas (separate processes, loopback ports) over one bucket of Ceph's
 * RADOS Gateway (scripts/ceph-rgw.sh; the file skips with the reason when it cannot start): wharfd, driven by the
 * docker CLI, builds and pushes to A and pulls from B (B answers blob GETs with redirects to presigned URLs), an
 * image pushed and pulled back through a `--blob-cache` replica runs and leaves its layers in that replica's cache, an
 * upload whose replica is killed with SIGKILL mid-chunk resumes on the other, both replicas take the same image
 * at once, and `wharf registry gc --storage s3` runs during a push without breaking it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox } from '../support/oci-images.js';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { NODE, run, show } from '../support/cli.js';
import { sleep } from '../support/wait.js';
import {
  listKeys, makeBucket, removeBucket, REGISTRY_MAIN as MAIN, s3Args, s3Env, startReplica, startRgw, type Replica, type Rgw,
} from '../support/rgw.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const rgwOrSkip = await startRgw();
const skip = 'skip' in rgwOrSkip ? rgwOrSkip.skip : false;
const rgw = rgwOrSkip as Rgw;
let bucket = '';
let work: string;
let daemon: Daemon | undefined;
const replicas: Replica[] = [];

async function replica(extra: string[] = []): Promise<Replica> {
  const r = await startReplica(rgw, bucket, extra);
  replicas.push(r);
  return r;
}

let A: Replica;
let B: Replica;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-regs3-'));
  bucket = await makeBucket(rgw, 'wharf-replicas');
  A = await replica();
  B = await replica(['--redirect']);
  daemon = await startDaemon();
});

after(async () => {
  for (const r of replicas) await r.stop();
  await daemon?.stop();
  if (!skip) await removeBucket(rgw, bucket);
  if (work) await rm(work, { recursive: true, force: true });
});

test('wharfd builds and pushes to replica A, pulls from replica B (redirected blob GETs) and runs the image', { skip, timeout: 120_000 }, async () => {
  const d = daemon!;
  await pushBusybox(A.host, 'library/busybox:latest');
  const base = await d.docker(['pull', `${B.host}/library/busybox:latest`]);
  assert.equal(base.code, 0, show(base));
  const ctx = join(work, 'ctx');
  const payload = randomBytes(3 * 1024 * 1024);
  await run('mkdir', ['-p', ctx]);
  await writeFile(join(ctx, 'payload'), payload);
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${B.host}/library/busybox:latest\nCOPY payload /payload\n`);
  const img = `${A.host}/e2e/app:v1`;
  const build = await d.docker(['build', '-q', '-t', img, ctx]);
  assert.equal(build.code, 0, show(build));
  const push = await d.docker(['push', img]);
  assert.equal(push.code, 0, show(push));
  const line = /v1: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout);
  assert.ok(line, push.stdout);

  // B serves what A took, at once: the manifest, and the blobs by redirect to the store.
  const m = await fetch(`${B.url}/v2/e2e/app/manifests/v1`, { method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(m.headers.get('docker-content-digest'), line[1]);
  const manifest = (await (await fetch(`${B.url}/v2/e2e/app/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json()) as { layers: { digest: string; size: number }[] };
  const top = manifest.layers.at(-1)!;
  const redirected = await fetch(`${B.url}/v2/e2e/app/blobs/${top.digest}`, { redirect: 'manual' });
  assert.equal(redirected.status, 307);
  assert.equal(redirected.headers.get('docker-content-digest'), top.digest);
  const location = redirected.headers.get('location')!;
  assert.match(location, new RegExp(`^${rgw.endpoint}/${bucket}/blobs/sha256/${top.digest.slice(7)}\\?.*X-Amz-Signature=`));
  const ranged = await fetch(location, { headers: { Range: 'bytes=0-99' } });
  assert.equal(ranged.status, 206);
  const whole = Buffer.from(await (await fetch(location)).arrayBuffer());
  assert.equal(whole.length, top.size);
  assert.equal(sha(whole), top.digest, 'the presigned URL serves the blob itself');
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), whole.subarray(0, 100));
  const head = await fetch(`${B.url}/v2/e2e/app/blobs/${top.digest}`, { method: 'HEAD', redirect: 'manual' });
  assert.equal(head.status, 200, 'HEAD is answered by the replica');
  assert.equal(head.headers.get('content-length'), String(top.size));
  assert.equal((await fetch(`${A.url}/v2/e2e/app/blobs/${top.digest}`, { redirect: 'manual' })).status, 200, 'A (no --redirect) streams');

  assert.equal((await d.docker(['rmi', img, `${B.host}/library/busybox:latest`])).code, 0);
  const pull = await d.docker(['pull', `${B.host}/e2e/app:v1`]);
  assert.equal(pull.code, 0, show(pull));
  assert.match(pull.stdout, new RegExp(`Digest: ${line[1]}`));
  const out = await d.docker(['run', '--rm', `${B.host}/e2e/app:v1`, 'busybox', 'sha256sum', '/payload']);
  assert.equal(out.code, 0, show(out));
  assert.equal(out.stdout.split(' ')[0], sha(payload).slice(7));
});

test('wharfd pushes through a --blob-cache replica and pulls the image back through it: its layer is in the cache, a base layer is read through into it, and the image runs', { skip, timeout: 120_000 }, async () => {
  const d = daemon!;
  const cacheDir = join(work, 'blob-cache');
  const C = await replica(['--blob-cache', cacheDir]);
  await pushBusybox(C.host, 'library/busybox:cached');
  const ctx = join(work, 'ctx-cached');
  const payload = randomBytes(2 * 1024 * 1024);
  await run('mkdir', ['-p', ctx]);
  await writeFile(join(ctx, 'payload'), payload);
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${C.host}/library/busybox:cached\nCOPY payload /payload\n`);
  const img = `${C.host}/e2e/cached:v1`;
  assert.equal((await d.docker(['build', '-q', '-t', img, ctx])).code, 0);
  const push = await d.docker(['push', img]);
  assert.equal(push.code, 0, show(push));
  assert.equal((await d.docker(['rmi', img, `${C.host}/library/busybox:cached`])).code, 0);
  const pull = await d.docker(['pull', img]);
  assert.equal(pull.code, 0, show(pull));
  const manifest = (await (await fetch(`${C.url}/v2/e2e/cached/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json()) as { config: { digest: string }; layers: { digest: string; size: number }[] };
  // The layer the build added went through C in the push and the pull: it is in C's cache, byte for byte. (The
  // base layer may be 'Already exists' in wharfd: a GET of it reads it through into the cache.)
  const cachedOk = async (l: { digest: string; size: number }) => {
    const cached = await readFile(join(cacheDir, 'sha256', l.digest.slice(7)));
    assert.equal(cached.length, l.size);
    assert.equal(sha(cached), l.digest);
  };
  await cachedOk(manifest.layers.at(-1)!);
  const base = manifest.layers[0]!;
  assert.equal(sha(Buffer.from(await (await fetch(`${C.url}/v2/e2e/cached/blobs/${base.digest}`)).arrayBuffer())), base.digest);
  await cachedOk(base);
  const out = await d.docker(['run', '--rm', img, 'busybox', 'sha256sum', '/payload']);
  assert.equal(out.code, 0, show(out));
  assert.equal(out.stdout.split(' ')[0], sha(payload).slice(7));
});

test('a replica killed with SIGKILL mid-chunk leaves nothing visible; the upload resumes on the other', { skip, timeout: 60_000 }, async () => {
  const victim = await replica();
  const blob = randomBytes(6 * 1024 * 1024);
  const post = await fetch(`${victim.url}/v2/e2e/killed/blobs/uploads/`, { method: 'POST' });
  const loc = post.headers.get('location')!;
  const first = await fetch(`${victim.url}${loc}`, { method: 'PATCH', body: blob.subarray(0, 1_000_000), headers: { 'Content-Range': '0-999999' } });
  assert.equal(first.status, 202);
  // The second chunk streams slowly; the replica dies half-way.
  const exited = new Promise<string>((res) => victim.child.once('exit', (code, sig) => res(`${code}/${sig}`)));
  const sent = new Promise<void>((resolve) => {
    const req = httpRequest(`${victim.url}${loc}`, { method: 'PATCH', agent: false });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    req.write(blob.subarray(1_000_000, 3_000_000), () => {
      void victim.stop('SIGKILL').then(() => { req.destroy(); resolve(); });
    });
  });
  await sent;
  assert.equal(await exited, 'null/SIGKILL');
  assert.equal((await fetch(`${B.url}/v2/e2e/killed/blobs/${sha(blob)}`, { method: 'HEAD' })).status, 404, 'no blob visible');
  const st = await fetch(`${A.url}${loc}`);
  assert.equal(st.status, 204);
  assert.equal(st.headers.get('range'), '0-999999', 'the upload stands at its last complete chunk');
  const put = await fetch(`${A.url}${loc}?digest=${sha(blob)}`, { method: 'PUT', body: blob.subarray(1_000_000), headers: { 'Content-Range': `1000000-${blob.length - 1}` } });
  assert.equal(put.status, 201, await put.text());
  const got = Buffer.from(await (await fetch(`${A.url}/v2/e2e/killed/blobs/${sha(blob)}`)).arrayBuffer());
  assert.equal(sha(got), sha(blob));
  assert.deepEqual((await listKeys(rgw, bucket)).filter((k) => k.startsWith(`uploads/${loc.split('/').pop()}`)), [], 'the session is gone from the store');
});

test('the same image pushed by wharfd to both replicas at once: both pushes succeed, each blob stored once', { skip, timeout: 90_000 }, async () => {
  const d = daemon!;
  const ctx = join(work, 'ctx2');
  await run('mkdir', ['-p', ctx]);
  await writeFile(join(ctx, 'data'), randomBytes(2 * 1024 * 1024));
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${A.host}/library/busybox:latest\nCOPY data /data\n`);
  const build = await d.docker(['build', '-q', '-t', `${A.host}/e2e/race:v1`, ctx]);
  assert.equal(build.code, 0, show(build));
  assert.equal((await d.docker(['tag', `${A.host}/e2e/race:v1`, `${B.host}/e2e/race:v1`])).code, 0);
  const [pa, pb] = await Promise.all([d.docker(['push', `${A.host}/e2e/race:v1`]), d.docker(['push', `${B.host}/e2e/race:v1`])]);
  assert.equal(pa.code, 0, show(pa));
  assert.equal(pb.code, 0, show(pb));
  // (wharfd may describe the base layer differently to each registry: compare what each replica answers)
  const da = /v1: digest: (sha256:[0-9a-f]{64})/.exec(pa.stdout)?.[1];
  const db = /v1: digest: (sha256:[0-9a-f]{64})/.exec(pb.stdout)?.[1];
  assert.ok(da && db, show(pa) + show(pb));
  const accept = { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' };
  const tagA = (await fetch(`${A.url}/v2/e2e/race/manifests/v1`, { method: 'HEAD', headers: accept })).headers.get('docker-content-digest');
  const tagB = (await fetch(`${B.url}/v2/e2e/race/manifests/v1`, { method: 'HEAD', headers: accept })).headers.get('docker-content-digest');
  assert.equal(tagA, tagB, 'both replicas agree on the tag');
  assert.ok(tagA === da || tagA === db);
  for (const dg of [da, db]) {
    for (const r of [A, B]) assert.equal((await fetch(`${r.url}/v2/e2e/race/manifests/${dg}`, { method: 'HEAD', headers: accept })).status, 200);
  }
  const keys = await listKeys(rgw, bucket);
  const blobs = keys.filter((k) => k.startsWith('blobs/sha256/'));
  assert.equal(new Set(blobs).size, blobs.length);
  assert.ok(blobs.includes(`blobs/sha256/${da.slice(7)}`));
  assert.deepEqual(keys.filter((k) => k.startsWith('uploads/') && k.includes('/chunks/')), [], 'no upload chunk left behind');
});

test('wharf registry gc --storage s3 during a push: the orphan goes, the image pushed meanwhile pulls', { skip, timeout: 90_000 }, async () => {
  const d = daemon!;
  const orphan = randomBytes(4096);
  assert.equal((await fetch(`${A.url}/v2/e2e/orphan/blobs/uploads/?digest=${sha(orphan)}`, { method: 'POST', body: orphan })).status, 201);
  await sleep(2500); // the orphan ages past the grace period given below (2 s)
  const ctx = join(work, 'ctx3');
  await run('mkdir', ['-p', ctx]);
  await writeFile(join(ctx, 'data'), randomBytes(4 * 1024 * 1024));
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${A.host}/library/busybox:latest\nCOPY data /data\n`);
  const img = `${A.host}/e2e/during-gc:v1`;
  assert.equal((await d.docker(['build', '-q', '-t', img, ctx])).code, 0);
  const dry = await run(NODE, [MAIN, 'gc', '--dry-run', '--min-age', '2', ...s3Args(rgw, bucket)], { env: s3Env(rgw) });
  assert.equal(dry.code, 0, show(dry));
  assert.match(dry.stdout, new RegExp(`would delete ${sha(orphan)}`));
  const [push, gc] = await Promise.all([
    d.docker(['push', img]),
    run(NODE, [MAIN, 'gc', '--min-age', '2', ...s3Args(rgw, bucket)], { env: s3Env(rgw) }),
  ]);
  assert.equal(push.code, 0, show(push));
  assert.equal(gc.code, 0, show(gc));
  assert.match(gc.stdout, new RegExp(`deleted ${sha(orphan)}`));
  assert.equal((await fetch(`${B.url}/v2/e2e/orphan/blobs/${sha(orphan)}`, { method: 'HEAD' })).status, 404);
  assert.equal((await d.docker(['rmi', img])).code, 0);
  const pull = await d.docker(['pull', `${B.host}/e2e/during-gc:v1`]);
  assert.equal(pull.code, 0, show(pull));
  const out = await d.docker(['run', '--rm', `${B.host}/e2e/during-gc:v1`, 'ls', '-l', '/data']);
  assert.equal(out.code, 0, show(out));
  assert.match(out.stdout, /4194304/);
});
