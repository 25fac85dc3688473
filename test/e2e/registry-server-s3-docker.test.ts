/**
 * The real docker CLI against Debian's dockerd (private socket, its own bridge) and skopeo, with two
 * `wharf registry serve --storage s3` replicas over one RGW bucket (scripts/ceph-rgw.sh; skipped with the reason
 * when it cannot start): dockerd builds and pushes to A and pulls from B (B with --redirect) and runs the image;
 * skopeo copies from A to B and inspects the copy through A.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox } from '../support/oci-images.js';
import { startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { run, show } from '../support/cli.js';
import { makeBucket, removeBucket, startReplica, startRgw, type Replica, type Rgw } from '../support/rgw.js';

const rgwOrSkip = await startRgw();
let skip: string | false = 'skip' in rgwOrSkip ? rgwOrSkip.skip : false;
const rgw = rgwOrSkip as Rgw;
let bucket = '';
let work = '';
let daemon: Daemon | undefined;
const replicas: Replica[] = [];

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-regs3docker-'));
  bucket = await makeBucket(rgw, 'wharf-docker');
  replicas.push(await startReplica(rgw, bucket), await startReplica(rgw, bucket, ['--redirect']));
  const reference = await startReference();
  daemon = reference.ref;
  if (reference.skip) skip = reference.skip;
});

after(async () => {
  for (const r of replicas) await r.stop();
  await daemon?.stop();
  if (bucket) await removeBucket(rgw, bucket);
  if (work) await rm(work, { recursive: true, force: true });
});

test('dockerd pushes to replica A and pulls from replica B; skopeo copies A → B', { timeout: 120_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const d = daemon!;
  const [A, B] = replicas as [Replica, Replica];
  await pushBusybox(A.host, 'library/busybox:latest');
  const ctx = join(work, 'ctx');
  await mkdir(ctx, { recursive: true });
  const payload = randomBytes(2 * 1024 * 1024);
  await writeFile(join(ctx, 'payload'), payload);
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${B.host}/library/busybox:latest\nCOPY payload /payload\n`);
  const img = `${A.host}/e2e/docker:v1`;
  const build = await d.docker(['build', '-q', '-t', img, ctx]);
  assert.equal(build.code, 0, show(build));
  const push = await d.docker(['push', img]);
  assert.equal(push.code, 0, show(push));
  const digest = /v1: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  assert.equal((await d.docker(['rmi', img, `${B.host}/library/busybox:latest`])).code, 0);
  const pull = await d.docker(['pull', `${B.host}/e2e/docker:v1`]);
  assert.equal(pull.code, 0, show(pull));
  assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));
  const out = await d.docker(['run', '--rm', `${B.host}/e2e/docker:v1`, 'busybox', 'sha256sum', '/payload']);
  assert.equal(out.code, 0, show(out));
  assert.equal(out.stdout.split(' ')[0], createHash('sha256').update(payload).digest('hex'));

  const copy = await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${A.host}/e2e/docker:v1`, `docker://${B.host}/e2e/skopeo:v1`]);
  assert.equal(copy.code, 0, show(copy));
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${A.host}/e2e/skopeo:v1`]);
  assert.equal(inspect.code, 0, show(inspect));
  const layers = (JSON.parse(inspect.stdout) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
  const pushed = (await (await fetch(`${A.url}/v2/e2e/docker/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json()) as { layers: { digest: string }[] };
  assert.deepEqual(layers, pushed.layers.map((l) => l.digest), 'the copy names the same layers');
});
