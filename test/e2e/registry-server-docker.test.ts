/**
 * The real docker CLI (through Debian's dockerd on a private socket and data root, see test/support/daemon.ts
 * in its `WHARF_E2E_DAEMON=dockerd` mode) pulling from and pushing to `wharf registry serve`: pull, push of a
 * new layer (docker's streamed PATCH upload), cross-repository mount ("Mounted from"), the digest line, and
 * docker login / logout against htpasswd auth.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { layerTar, pushBusybox } from '../support/oci-images.js';
import { freePort } from '../support/registry.js';
import { startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const MAIN = resolve(here, '../../src/registry/main.js');

async function serve(root: string, args: string[] = []): Promise<{ url: string; host: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, 'serve', '--addr', `127.0.0.1:${port}`, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`registry did not start: ${err}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) { clearTimeout(t); res(m[1]!); }
    });
    child.once('exit', (c) => { clearTimeout(t); rej(new Error(`registry exited ${c}: ${err}`)); });
  });
  return { url, host: url.replace(/^https?:\/\//, ''), child };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

let work: string;
let daemon: Daemon | undefined;
let skip: string | false = false;
const servers: ChildProcess[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-regdocker-'));
  const reference = await startReference();
  daemon = reference.ref;
  if (reference.skip) skip = reference.skip;
});

after(async () => {
  for (const c of servers) await stop(c);
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

test('docker pulls from and pushes to wharf registry serve', { timeout: 300_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const d = daemon!;
  const reg = await serve(join(work, 'r1'));
  servers.push(reg.child);
  await pushBusybox(reg.host, 'library/busybox:latest');

  const pull = await d.docker(['pull', `${reg.host}/library/busybox:latest`]);
  assert.equal(pull.code, 0, show(pull));
  assert.match(pull.stdout, /Status: Downloaded newer image/);
  const run = await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${reg.host}/library/busybox:latest`]);
  assert.equal(run.code, 0, show(run));
  const head = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, { method: 'HEAD' });
  assert.ok(run.stdout.includes(head.headers.get('docker-content-digest')!), run.stdout);

  // Same layers into another repository: docker mounts them instead of uploading.
  assert.equal((await d.docker(['tag', `${reg.host}/library/busybox:latest`, `${reg.host}/copy/busybox:v1`])).code, 0);
  const push = await d.docker(['push', `${reg.host}/copy/busybox:v1`]);
  assert.equal(push.code, 0, show(push));
  assert.match(push.stdout, /Mounted from library\/busybox/);
  const line = /v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(push.stdout);
  assert.ok(line, push.stdout);
  const m = await fetch(`${reg.url}/v2/copy/busybox/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('docker-content-digest'), line[1]);
  assert.equal((await m.arrayBuffer()).byteLength, Number(line[2]));

  // A new layer: docker uploads it (POST, streamed PATCH, PUT ?digest=).
  const tar = await layerTar([{ path: 'data/random', content: randomBytes(2 << 20) }, { path: 'etc/marker', content: 'imported\n' }]);
  const imp = await d.docker(['import', '-', `${reg.host}/fresh/app:v1`], { input: tar });
  assert.equal(imp.code, 0, show(imp));
  const push2 = await d.docker(['push', `${reg.host}/fresh/app:v1`]);
  assert.equal(push2.code, 0, show(push2));
  assert.match(push2.stdout, /Pushed/);
  const digest2 = /v1: digest: (sha256:[0-9a-f]{64})/.exec(push2.stdout)![1]!;
  // Pushing again finds every layer already there.
  const again = await d.docker(['push', `${reg.host}/fresh/app:v1`]);
  assert.equal(again.code, 0, show(again));
  assert.match(again.stdout, /Layer already exists/);
  assert.ok(again.stdout.includes(digest2), 'same manifest digest on the second push');

  // Remove locally and pull back through docker.
  assert.equal((await d.docker(['rmi', `${reg.host}/fresh/app:v1`])).code, 0);
  const back = await d.docker(['pull', `${reg.host}/fresh/app:v1`]);
  assert.equal(back.code, 0, show(back));
  assert.ok(back.stdout.includes(digest2), back.stdout);
  const tags = await fetch(`${reg.url}/v2/_catalog`);
  const cat = (await tags.json()) as { repositories: string[] };
  assert.deepEqual(cat.repositories, ['copy/busybox', 'fresh/app', 'library/busybox']);
});

test('docker login / push / logout against htpasswd auth', { timeout: 300_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const d = daemon!;
  const htpasswd = join(work, 'htpasswd');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'docker-user', 'docker-pass']);
  const reg = await serve(join(work, 'r2'), ['--htpasswd', htpasswd]);
  servers.push(reg.child);
  const tar = await layerTar([{ path: 'etc/auth', content: 'auth\n' }]);
  assert.equal((await d.docker(['import', '-', `${reg.host}/secure/app:v1`], { input: tar })).code, 0);
  const denied = await d.docker(['push', `${reg.host}/secure/app:v1`]);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr + denied.stdout, /no basic auth credentials|unauthorized|authentication required/);
  const bad = await d.docker(['login', '-u', 'docker-user', '--password-stdin', reg.host], { input: 'wrong\n' });
  assert.notEqual(bad.code, 0);
  const login = await d.docker(['login', '-u', 'docker-user', '--password-stdin', reg.host], { input: 'docker-pass\n' });
  assert.equal(login.code, 0, show(login));
  assert.match(login.stdout, /Login Succeeded/);
  const push = await d.docker(['push', `${reg.host}/secure/app:v1`]);
  assert.equal(push.code, 0, show(push));
  assert.match(push.stdout, /v1: digest: sha256:/);
  assert.equal((await d.docker(['logout', reg.host])).code, 0);
  assert.equal((await d.docker(['rmi', `${reg.host}/secure/app:v1`])).code, 0);
  const pull = await d.docker(['pull', `${reg.host}/secure/app:v1`]);
  assert.notEqual(pull.code, 0);
  assert.match(pull.stderr, /no basic auth credentials|unauthorized/);
});

test('docker login and push with token auth (the server issues bearer tokens)', { timeout: 300_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const d = daemon!;
  const htpasswd = join(work, 'htpasswd-token');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'tok-user', 'tok-pass']);
  const reg = await serve(join(work, 'r3'), ['--htpasswd', htpasswd, '--token-auth', '--token-service', 'wharf-test']);
  servers.push(reg.child);
  const challenge = await fetch(`${reg.url}/v2/`);
  assert.equal(challenge.status, 401);
  assert.match(challenge.headers.get('www-authenticate')!, /^Bearer realm="http:\/\/[^"]+\/auth\/token",service="wharf-test"/);
  const tar = await layerTar([{ path: 'etc/token', content: 'token\n' }]);
  assert.equal((await d.docker(['import', '-', `${reg.host}/tok/app:v1`], { input: tar })).code, 0);
  const denied = await d.docker(['push', `${reg.host}/tok/app:v1`]);
  assert.notEqual(denied.code, 0);
  const login = await d.docker(['login', '-u', 'tok-user', '--password-stdin', reg.host], { input: 'tok-pass\n' });
  assert.equal(login.code, 0, show(login));
  const push = await d.docker(['push', `${reg.host}/tok/app:v1`]);
  assert.equal(push.code, 0, show(push));
  assert.match(push.stdout, /v1: digest: sha256:/);
  assert.equal((await d.docker(['rmi', `${reg.host}/tok/app:v1`])).code, 0);
  const pull = await d.docker(['pull', `${reg.host}/tok/app:v1`]);
  assert.equal(pull.code, 0, show(pull));
  // skopeo speaks the same token protocol.
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'tok-user:tok-pass', `docker://${reg.host}/tok/app:v1`]);
  assert.match(stdout, /"schemaVersion":\s*2/);
  await assert.rejects(execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'tok-user:nope', `docker://${reg.host}/tok/app:v1`]));
});
