/**
 * End to end, issue 2 through the real docker CLI (28.x, API negotiated down to 1.41): two wharfd daemons
 * get the same sequence of commands — daemon A from `docker`, daemon B from `wharf` — against one registry with
 * fixture images. Every docker command must succeed (or fail exactly where docker fails), and wharf must print
 * the same stdout and stderr with the same exit code. Paths under each daemon's own directory and tag times
 * are the only things normalized.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { buildOciLayout, busyboxSpec, pushBusybox, pushLayout, type BuiltImage, type ImageSpec } from '../support/oci-images.js';
import { lines, shortId, type RunResult } from '../support/cli.js';

let reg: Registry;
let A: Daemon; // driven by docker
let B: Daemon; // driven by wharf
let H: string;
let work: string;
const img: Record<string, BuiltImage> = {};

async function push(name: string, repoTag: string, spec: ImageSpec): Promise<void> {
  const dir = join(work, name);
  img[name] = await buildOciLayout(dir, spec);
  await pushLayout(dir, H, repoTag);
}

async function appSpec(version: string): Promise<ImageSpec> {
  const base = await busyboxSpec();
  return {
    layers: [
      base.layers[0]!,
      { files: [{ path: 'app/hello.txt', content: `hello ${version}\n` }, { path: 'app/gone.txt', content: 'x\n' }], createdBy: `/bin/sh -c #(nop) COPY app ${version}` },
      { files: [{ path: 'app/gone.txt', type: 'whiteout' }], createdBy: '/bin/sh -c rm /app/gone.txt' },
    ],
    config: { Cmd: ['sh'], Labels: { 'org.example.version': version } },
    emptyHistory: ['/bin/sh -c #(nop)  CMD ["sh"]'],
  };
}

function normalize(s: string, dm: Daemon): string {
  return s.split(dm.dir).join('<dir>').replace(/"LastTagTime": "[^"]*"/g, '"LastTagTime": "<time>"');
}

/** For `inspect`: driver directories hold random cache IDs; keep only the keys of GraphDriver.Data. */
function normalizeInspect(s: string): string {
  try {
    const arr = JSON.parse(s) as Record<string, any>[];
    for (const o of arr) {
      if (o.GraphDriver?.Data) o.GraphDriver.Data = Object.keys(o.GraphDriver.Data).sort();
      if (o.Metadata) o.Metadata.LastTagTime = '<time>';
    }
    return JSON.stringify(arr, null, 2);
  } catch {
    return s;
  }
}

/**
 * exact: byte for byte. rows: the first line (a table header) exactly, the others as a set — dockerd itself
 * lists images with equal creation times, and the tags of one image, in no fixed order. set: all lines as a
 * set. pull: see below. inspect: JSON with driver paths and tag times normalized.
 */
type Kind = 'exact' | 'rows' | 'set' | 'pull' | 'inspect';

/** Per-layer progress statuses whose appearance depends on timing (dockerd prints them or not). */
const TIMING = /^[0-9a-f]{12}: (Verifying Checksum|Downloading|Extracting|Waiting)\b/;

/**
 * Differences found in the current test. A step that differs does not stop the test (the two daemons must go
 * through the same commands to stay comparable); each test ends with done(), which fails listing them all.
 */
let problems: string[] = [];
function done(): void {
  const p = problems;
  problems = [];
  assert.ok(p.length === 0, `${p.length} step(s) differ:\n\n${p.join('\n\n')}`);
}

/** Runs `args` with docker on A and wharf on B; checks docker's exit code, then that wharf printed the same. */
async function both(args: string[], opts: { code?: number; kind?: Kind } = {}): Promise<{ docker: RunResult; wharf: RunResult }> {
  const [docker, wharf] = await Promise.all([A.docker(args), B.wharf(args)]);
  try {
    compare(args, opts, docker, wharf);
  } catch (e) {
    if (!(e instanceof assert.AssertionError)) throw e;
    problems.push(e.message);
  }
  return { docker, wharf };
}

function compare(args: string[], opts: { code?: number; kind?: Kind }, docker: RunResult, wharf: RunResult): void {
  const what = `${args.join(' ')}\n--- docker (exit ${docker.code})\n${docker.stdout}${docker.stderr}--- wharf (exit ${wharf.code})\n${wharf.stdout}${wharf.stderr}`;
  assert.equal(docker.code, opts.code ?? 0, `docker failed: ${what}`);
  assert.equal(wharf.code, docker.code, `exit codes differ: ${what}`);
  let ds = normalize(docker.stdout, A);
  let ws = normalize(wharf.stdout, B);
  if (opts.kind === 'inspect') { ds = normalizeInspect(ds); ws = normalizeInspect(ws); }
  if (opts.kind === 'pull') {
    // Layers download concurrently: the order of per-layer lines may differ, the lines may not; the head
    // (tag, "Pulling from") and the tail (digest, status, reference) are fixed.
    const dl = lines(ds).filter((l) => !TIMING.test(l));
    const wl = lines(ws).filter((l) => !TIMING.test(l));
    assert.deepEqual([...wl].sort(), [...dl].sort(), `pull lines differ: ${what}`);
    assert.deepEqual(wl.slice(-3), dl.slice(-3), `pull tail differs: ${what}`);
    assert.equal(wl[0], dl[0], `pull head differs: ${what}`);
  } else if (opts.kind === 'rows' || opts.kind === 'set') {
    const keep = opts.kind === 'rows' ? 1 : 0;
    const dl = lines(ds);
    const wl = lines(ws);
    assert.deepEqual([...wl.slice(0, keep), ...wl.slice(keep).sort()], [...dl.slice(0, keep), ...dl.slice(keep).sort()], `output differs: ${what}`);
  } else {
    assert.equal(ws, ds, `stdout differs: ${what}`);
  }
  assert.equal(normalize(wharf.stderr, B), normalize(docker.stderr, A), `stderr differs: ${what}`);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-dockercli-'));
  reg = await startRegistry();
  H = reg.host;
  [A, B] = await Promise.all([startDaemon(), startDaemon()]);
  await push('busybox', 'library/busybox:latest', await busyboxSpec());
  await push('appv1', 'test/app:v1', await appSpec('v1'));
  await push('appv2', 'test/app:v2', await appSpec('v2'));
});

after(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('docker version and info work against wharfd', async () => {
  const v = await A.docker(['version', '--format', '{{.Server.APIVersion}}']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout, '1.41\n');
  const i = await A.docker(['info', '--format', '{{.Images}} {{.OSType}}']);
  assert.equal(i.code, 0, i.stderr);
  assert.equal(i.stdout, '0 linux\n');
});

test('docker pull: fresh, up to date, multi-layer with a shared layer', async () => {
  const p = await both(['pull', `${H}/library/busybox`], { kind: 'pull' });
  assert.ok(p.docker.stdout.includes(`Status: Downloaded newer image for ${H}/library/busybox:latest`), p.docker.stdout);
  await both(['pull', `${H}/library/busybox:latest`]);
  const app = await both(['pull', `${H}/test/app:v1`], { kind: 'pull' });
  assert.ok(app.docker.stdout.includes(`${shortId(img.appv1!.layers[0]!.digest)}: Already exists`), app.docker.stdout);
  done();
});

test('docker tag, images (flags and formats)', async () => {
  await both(['tag', `${H}/library/busybox`, 'bb:1']);
  await both(['images'], { kind: 'rows' });
  await both(['image', 'ls', '-a'], { kind: 'rows' });
  await both(['images', '-q'], { kind: 'set' });
  await both(['images', '--digests'], { kind: 'rows' });
  await both(['images', '--no-trunc'], { kind: 'rows' });
  await both(['images', '-f', 'dangling=true']);
  await both(['images', '-f', `reference=${H}/test/*`]);
  await both(['images', 'bb'], { kind: 'rows' });
  await both(['images', '--format', 'table {{.ID}}\t{{.Repository}}\t{{.Tag}}'], { kind: 'rows' });
  await both(['images', '--format', '{{json .}}'], { kind: 'set' });
  await both(['images', '--format', '{{.ID}}: {{.Repository}}'], { kind: 'set' });
  await both(['images', '-f', 'nope=1'], { code: 1 });
  done();
});

test('docker inspect and history', async () => {
  const r = await both(['image', 'inspect', `${H}/test/app:v1`], { kind: 'inspect' });
  assert.equal(JSON.parse(r.docker.stdout)[0].Id, img.appv1!.configDigest);
  await both(['inspect', '--format', '{{.Id}} {{.RootFS.Layers}}', 'bb:1']);
  await both(['history', `${H}/test/app:v1`]);
  await both(['history', '--no-trunc', `${H}/test/app:v1`]);
  await both(['image', 'inspect', 'nosuch:1'], { code: 1 });
  done();
});

test('docker system df', async () => {
  await both(['system', 'df']);
  await both(['system', 'df', '-v'], { kind: 'set' });
  done();
});

test('docker: more filters and formats', async () => {
  await both(['images', '-f', `before=${H}/test/app:v1`], { kind: 'rows' });
  await both(['images', '-f', `since=${H}/library/busybox`], { kind: 'rows' });
  await both(['images', '-f', 'label=org.example.version=v1'], { kind: 'rows' });
  await both(['images', '-f', 'dangling=false', '-q'], { kind: 'set' });
  await both(['images', '--format', '{{.Repository}} {{.Size}} {{.CreatedAt}} {{.Digest}}', '--digests'], { kind: 'set' });
  await both(['history', '-H=false', `${H}/test/app:v1`]);
  await both(['history', '--format', '{{.ID}} {{.Size}} {{.CreatedBy}}', `${H}/test/app:v1`]);
  await both(['history', '-q', `${H}/test/app:v1`]);
  await both(['inspect', '--format', '{{json .Config}}', `${H}/test/app:v1`]);
  await both(['inspect', '--format', '{{.Id}}', 'bb:1', 'nosuch:2'], { code: 1 });
  await both(['system', 'df', '--format', '{{json .}}']);
  await both(['tag', 'nosuch:1', 'x:1'], { code: 1 });
  done();
});

test('docker rmi, dangling after retag, image prune -f', async () => {
  await both(['rmi', 'bb:1']);
  await both(['tag', `${H}/test/app:v1`, 'mine:x']);
  await both(['rmi', `${H}/test/app:v1`]);
  await both(['pull', `${H}/test/app:v2`], { kind: 'pull' });
  await both(['tag', `${H}/test/app:v2`, 'mine:x']);
  const dg = await both(['images', '-f', 'dangling=true']);
  assert.ok(dg.docker.stdout.includes(shortId(img.appv1!.configDigest)), dg.docker.stdout);
  await both(['image', 'prune', '-f']);
  await both(['image', 'prune', '-f']);
  await both(['rmi', shortId(img.appv2!.configDigest)], { code: 1 });
  await both(['rmi', `${H}/library/busybox@${img.busybox!.manifestDigest}`]);
  await both(['rmi', 'mine:x']);
  await both(['rmi', img.appv2!.configDigest]);
  await both(['rmi', 'nosuch:1'], { code: 1 });
  await both(['images', '-a'], { kind: 'rows' });
  done();
});

test('docker image prune -a -f, then system df', async () => {
  await both(['image', 'prune', '-a', '-f'], { kind: 'rows' });
  await both(['images'], { kind: 'rows' });
  await both(['system', 'df']);
  done();
});

test('docker pull errors: bad reference, missing manifest', async () => {
  await both(['pull', 'INVALID::ref'], { code: 1 });
  await both(['pull', `${H}/library/nope:1`], { code: 1 });
  done();
});

test('docker pull by digest, rmi -f of an image in two repositories', async () => {
  await both(['pull', `${H}/test/app@${img.appv1!.manifestDigest}`], { kind: 'pull' });
  await both(['images', '--digests'], { kind: 'rows' });
  await both(['tag', `${H}/test/app@${img.appv1!.manifestDigest}`, 'other:1']);
  await both(['rmi', shortId(img.appv1!.configDigest)], { code: 1 });
  await both(['rmi', '-f', shortId(img.appv1!.configDigest)], { kind: 'rows' });
  await both(['images', '-a'], { kind: 'rows' });
  done();
});

test('docker pull of a multi-platform index: the host platform, and --platform', async () => {
  const multi = await pushBusybox(H, 'library/busybox:multi', { multiArch: true }) as { indexDigest: string; images: BuiltImage[] };
  const p = await both(['pull', `${H}/library/busybox:multi`], { kind: 'pull' });
  assert.ok(p.docker.stdout.includes(`Digest: ${multi.indexDigest}`), p.docker.stdout);
  await both(['image', 'inspect', `${H}/library/busybox:multi`], { kind: 'inspect' });
  await both(['images', '--digests'], { kind: 'rows' });
  await both(['pull', '--platform', 'linux/arm64', `${H}/library/busybox:multi`], { kind: 'pull' });
  await both(['inspect', '--format', '{{.Id}} {{.Architecture}} {{.RepoDigests}}', `${H}/library/busybox:multi`]);
  await both(['image', 'prune', '-f'], { kind: 'rows' });
  await both(['images', '-a'], { kind: 'rows' });
  done();
});
