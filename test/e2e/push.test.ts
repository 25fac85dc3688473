/**
 * docker push through wharfd to Debian's docker-registry, with the real docker CLI: docker's messages, the same
 * manifest digest on a second push ("Layer already exists"), RepoDigests, a pull back into a second wharfd with
 * the same image ID, and a cross-repository mount.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD, type Registry } from '../support/registry.js';
import { show, shortId } from '../support/cli.js';

let work: string;
let a: Daemon;
let b: Daemon;
let reg: Registry;
let id = '';
let diffIds: string[] = [];
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-push-'));
  [a, b, reg] = await Promise.all([startDaemon(), startDaemon(), startRegistry()]);
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY one /one\nCOPY two /two\nCMD ["/bin/true"]\n');
  await writeFile(join(ctx, 'one'), 'first layer\n'.repeat(50_000));
  await writeFile(join(ctx, 'two'), 'second layer\n');
  const bld = await a.docker(['build', '-t', `${reg.host}/lab/app:v1`, ctx]);
  assert.equal(bld.code, 0, show(bld));
  const ins = await a.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RootFS.Layers}}', `${reg.host}/lab/app:v1`]);
  const [i, l] = ins.stdout.trim().split(' ');
  id = i!;
  diffIds = JSON.parse(l!);
  assert.equal(diffIds.length, 2);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop(), reg?.stop()]);
  await rm(work, { recursive: true, force: true });
});

test('docker push uploads the layers and a schema2 manifest; a second push finds every layer and gives the same digest', { timeout: 180_000 }, async () => {
  const ref = `${reg.host}/lab/app:v1`;
  const p1 = await a.docker(['push', ref]);
  assert.equal(p1.code, 0, show(p1));
  const out = p1.stdout;
  assert.match(out, new RegExp(`The push refers to repository \\[${reg.host}/lab/app\\]`));
  for (const d of diffIds) {
    assert.match(out, new RegExp(`${shortId(d)}: Preparing`));
    assert.match(out, new RegExp(`${shortId(d)}: Pushed`));
  }
  const m1 = /v1: digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(out);
  assert.ok(m1, out);

  // the registry holds exactly that manifest
  const res = await fetch(`${reg.url}/v2/lab/app/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), m1[1]);
  assert.equal(body.length, Number(m1[2]));
  const manifest = JSON.parse(body.toString());
  assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(manifest.config.digest, id);
  assert.equal(manifest.layers.length, 2);

  const p2 = await a.docker(['push', ref]);
  assert.equal(p2.code, 0, show(p2));
  for (const d of diffIds) assert.match(p2.stdout, new RegExp(`${shortId(d)}: Layer already exists`));
  assert.doesNotMatch(p2.stdout, /Pushed/);
  const m2 = /v1: digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(p2.stdout);
  assert.equal(m2?.[1], m1[1]);

  const rd = await a.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
  assert.deepEqual(JSON.parse(rd.stdout), [`${reg.host}/lab/app@${m1[1]}`]);

  // pulled back into another wharfd: the same image
  const pull = await b.docker(['pull', ref]);
  assert.equal(pull.code, 0, show(pull));
  assert.match(pull.stdout, new RegExp(`Digest: ${m1[1]}`));
  const got = await b.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
  assert.equal(got.stdout.trim(), id);
});

test('pushing to another repository of the same registry mounts the layers; pushing all tags; a missing tag', { timeout: 180_000 }, async () => {
  const p0 = await a.docker(['push', `${reg.host}/lab/app:v1`]);
  assert.equal(p0.code, 0, show(p0));
  for (const t of ['other/app:x', 'other/app:y']) {
    const tg = await a.docker(['tag', `${reg.host}/lab/app:v1`, `${reg.host}/${t}`]);
    assert.equal(tg.code, 0, show(tg));
  }
  const p = await a.docker(['push', '--all-tags', `${reg.host}/other/app`]);
  assert.equal(p.code, 0, show(p));
  for (const d of diffIds) assert.match(p.stdout, new RegExp(`${shortId(d)}: Mounted from lab/app`));
  assert.match(p.stdout, /x: digest: sha256:[a-f0-9]{64}/);
  assert.match(p.stdout, /y: digest: sha256:[a-f0-9]{64}/);
  const tags = await (await fetch(`${reg.url}/v2/other/app/tags/list`)).json() as { tags: string[] };
  assert.deepEqual(tags.tags.sort(), ['x', 'y']);

  const missing = await a.docker(['push', `${reg.host}/lab/app:nope`]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, new RegExp(`tag does not exist: ${reg.host}/lab/app:nope`));
});

test('an image pulled from the registry is pushed on by mounting the blobs the pull recorded (no recompression)', { timeout: 180_000 }, async () => {
  const src = `${reg.host}/lab/app:v1`;
  const p0 = await a.docker(['push', src]);
  assert.equal(p0.code, 0, show(p0));
  const c = await startDaemon();
  try {
    const pull = await c.docker(['pull', src]);
    assert.equal(pull.code, 0, show(pull));
    const again = await c.docker(['push', src]);
    assert.equal(again.code, 0, show(again));
    for (const d of diffIds) assert.match(again.stdout, new RegExp(`${shortId(d)}: Layer already exists`));
    const digest = /v1: digest: (sha256:[a-f0-9]{64})/.exec(p0.stdout)?.[1];
    assert.match(again.stdout, new RegExp(`v1: digest: ${digest}`));
    const tg = await c.docker(['tag', src, `${reg.host}/third/app:z`]);
    assert.equal(tg.code, 0, show(tg));
    const p = await c.docker(['push', `${reg.host}/third/app:z`]);
    assert.equal(p.code, 0, show(p));
    for (const d of diffIds) assert.match(p.stdout, new RegExp(`${shortId(d)}: Mounted from lab/app`));
    assert.match(p.stdout, new RegExp(`z: digest: ${digest}`));
  } finally {
    await c.stop();
  }
});

test('push to a registry with basic auth: refused without credentials, accepted with the X-Registry-Auth the CLI sends', { timeout: 180_000 }, async () => {
  const priv = await startRegistry({ auth: 'htpasswd' });
  const c = await startDaemon();
  try {
    const file = join(work, 'auth.tar');
    const s = await a.docker(['save', '-o', file, `${reg.host}/lab/app:v1`]);
    assert.equal(s.code, 0, show(s));
    const l = await c.docker(['load', '-i', file]);
    assert.equal(l.code, 0, show(l));
    const ref = `${priv.host}/priv/app:v1`;
    const tg = await c.docker(['tag', `${reg.host}/lab/app:v1`, ref]);
    assert.equal(tg.code, 0, show(tg));
    const denied = await c.docker(['push', ref]);
    assert.notEqual(denied.code, 0, show(denied));
    assert.match(denied.stderr, /no basic auth credentials/);
    // what `docker login` would store: the CLI sends it as X-Registry-Auth
    const auth = Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64');
    await writeFile(join(c.dir, 'docker-config', 'config.json'), JSON.stringify({ auths: { [priv.host]: { auth } } }));
    const ok = await c.docker(['push', ref]);
    assert.equal(ok.code, 0, show(ok));
    for (const d of diffIds) assert.match(ok.stdout, new RegExp(`${shortId(d)}: Pushed`));
    assert.match(ok.stdout, /v1: digest: sha256:[a-f0-9]{64} size: \d+/);
    const anon = await fetch(`${priv.url}/v2/priv/app/manifests/v1`);
    assert.equal(anon.status, 401);
    const withCreds = await fetch(`${priv.url}/v2/priv/app/manifests/v1`, {
      headers: { authorization: `Basic ${auth}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.equal(withCreds.status, 200);
    assert.equal((await withCreds.json() as { config: { digest: string } }).config.digest, id);
  } finally {
    await c.stop();
    await priv.stop();
  }
});

test('an image whose layers repeat (same diff ID twice) pushes and pulls back', { timeout: 180_000 }, async () => {
  const ctx = join(work, 'dup');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f /f\nCOPY g /g\nCOPY f /f\n');
  await writeFile(join(ctx, 'f'), 'same\n');
  await writeFile(join(ctx, 'g'), 'other\n');
  const ref = `${reg.host}/lab/dup:1`;
  const bld = await a.docker(['build', '-t', ref, ctx]);
  assert.equal(bld.code, 0, show(bld));
  const ins = await a.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RootFS.Layers}}', ref]);
  const [dupId, l] = ins.stdout.trim().split(' ');
  const layers = JSON.parse(l!) as string[];
  assert.equal(layers.length, 3);
  assert.equal(layers[0], layers[2], 'precondition: the build gives the two COPY f layers one diff ID');
  const p = await a.docker(['push', ref]);
  assert.equal(p.code, 0, show(p));
  const pull = await b.docker(['pull', ref]);
  assert.equal(pull.code, 0, show(pull));
  assert.equal((await b.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim(), dupId);
});

test('pushing to an unreachable registry fails with dockerd\'s message before any layer is listed', { timeout: 60_000 }, async () => {
  const { freePort } = await import('../support/registry.js');
  const port = await freePort();
  const ref = `127.0.0.1:${port}/x/y:1`;
  const tg = await a.docker(['tag', `${reg.host}/lab/app:v1`, ref]);
  assert.equal(tg.code, 0, show(tg));
  const p = await a.docker(['push', ref]);
  assert.notEqual(p.code, 0);
  assert.equal(p.stdout, `The push refers to repository [127.0.0.1:${port}/x/y]\n`);
  assert.equal(p.stderr, `Get "http://127.0.0.1:${port}/v2/": dial tcp 127.0.0.1:${port}: connect: connection refused\n`);
});
