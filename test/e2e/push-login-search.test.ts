/**
 * docker login / docker search (daemon side: POST /auth, GET /images/search) through the real docker CLI
 * against wharfd and Debian's docker-registry, with htpasswd auth and without.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pushBusybox } from '../support/oci-images.js';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, lines } from '../support/cli.js';
import { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD, type Registry } from '../support/registry.js';
import { startRegistryServer } from '../../src/registry/server.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let daemon: Daemon;
let secured: Registry;
let open: Registry;
before(async () => {
  [daemon, secured, open] = await Promise.all([startDaemon(), startRegistry({ auth: 'htpasswd' }), startRegistry()]);
  const creds = `${REGISTRY_USER}:${REGISTRY_PASSWORD}`;
  for (const repo of ['alpha/busybox:1', 'lab/nginx:1', 'lab/busy-tools:1']) {
    await pushBusybox(secured.host, repo, { creds });
    await pushBusybox(open.host, repo);
  }
});
after(async () => {
  await daemon?.stop();
  await secured?.stop();
  await open?.stop();
});

test('docker login checks the credentials against the registry (Basic auth)', { timeout: 120_000 }, async () => {
  const bad = await daemon.docker(['login', '-u', REGISTRY_USER, '--password-stdin', secured.host], { input: 'wrong\n' });
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stderr, new RegExp(`Error response from daemon: login attempt to http://${secured.host.replace(/\./g, '\\.')}/v2/ failed with status: 401 Unauthorized`), show(bad));

  const good = await daemon.docker(['login', '-u', REGISTRY_USER, '--password-stdin', secured.host], { input: `${REGISTRY_PASSWORD}\n` });
  assert.equal(good.code, 0, show(good));
  assert.match(good.stdout, /Login Succeeded/);

  // a registry without auth accepts any login
  const anon = await daemon.docker(['login', '-u', 'nobody', '--password-stdin', open.host], { input: 'x\n' });
  assert.equal(anon.code, 0, show(anon));
  await daemon.docker(['logout', open.host]);
});

test('docker search on a private registry lists the catalog entries matching the term', { timeout: 120_000 }, async () => {
  const r = await daemon.docker(['search', '--format', '{{.Name}}|{{.StarCount}}|{{.Description}}|', `${open.host}/busy`]);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(lines(r.stdout), [`${open.host}/alpha/busybox|0||`, `${open.host}/lab/busy-tools|0||`]);

  const lim = await daemon.docker(['search', '--format', '{{.Name}}', '--limit', '1', `${open.host}/lab`]);
  assert.equal(lim.code, 0, show(lim));
  assert.deepEqual(lines(lim.stdout), [`${open.host}/lab/busy-tools`]);

  const stars = await daemon.docker(['search', '--format', '{{.Name}}', '-f', 'stars=1', `${open.host}/busy`]);
  assert.equal(stars.code, 0, show(stars));
  assert.deepEqual(lines(stars.stdout), []);

  const table = await daemon.docker(['search', `${open.host}/nginx`]);
  assert.equal(table.code, 0, show(table));
  assert.match(lines(table.stdout)[0]!, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL/);
  assert.match(lines(table.stdout)[1]!, new RegExp(`^${open.host.replace(/\./g, '\\.')}/lab/nginx\\s+0`));

  const badFilter = await daemon.docker(['search', '-f', 'color=red', `${open.host}/busy`]);
  assert.equal(badFilter.code, 1, show(badFilter));
  assert.match(badFilter.stderr, /Error response from daemon: Invalid filter 'color'/);

  const limit = await daemon.docker(['search', '--limit', '101', `${open.host}/busy`]);
  assert.equal(limit.code, 1, show(limit));
  assert.match(limit.stderr, /Limit 101 is outside the range of \[1, 100\]/);
});

test('docker search on an htpasswd registry needs the login', { timeout: 120_000 }, async () => {
  await daemon.docker(['logout', secured.host]);
  const anon = await daemon.docker(['search', `${secured.host}/busy`]);
  assert.equal(anon.code, 1, show(anon));
  assert.match(anon.stderr, /Error response from daemon: Get "http:\/\/127\.0\.0\.1:\d+\/v2\/_catalog\?n=1000": no basic auth credentials/);

  const login = await daemon.docker(['login', '-u', REGISTRY_USER, '--password-stdin', secured.host], { input: `${REGISTRY_PASSWORD}\n` });
  assert.equal(login.code, 0, show(login));
  const r = await daemon.docker(['search', '--format', '{{.Name}}', `${secured.host}/busy`]);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(lines(r.stdout), [`${secured.host}/alpha/busybox`, `${secured.host}/lab/busy-tools`]);
});

test('docker search without network ends with dockerd\'s message for Docker Hub', { timeout: 60_000 }, async () => {
  const r = await daemon.docker(['search', 'busybox']);
  if (r.code === 0) { assert.ok(r.stdout.includes('busybox'), show(r)); return; } // the machine can reach Docker Hub
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /^Error response from daemon: Get "https:\/\/index\.docker\.io\/v1\/search\?q=busybox&n=25": dial tcp: lookup index\.docker\.io on [\d.:[\]a-f]+:53: no such host$/m);
});

test('docker login and search against wharf registry serve with bearer tokens', { timeout: 120_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-e2e-login-token-'));
  const htpasswd = join(work, 'htpasswd');
  await promisify(execFile)('htpasswd', ['-Bbc', htpasswd, 'tok', 'tok-secret']);
  const srv = await startRegistryServer({ root: join(work, 'reg'), addr: '127.0.0.1:0', htpasswd, token: { service: 'wharf-e2e' } });
  try {
    await pushBusybox(srv.host, 'team/busybox:1', { creds: 'tok:tok-secret' });
    await pushBusybox(srv.host, 'team/other:1', { creds: 'tok:tok-secret' });
    const bad = await daemon.docker(['login', '-u', 'tok', '--password-stdin', srv.host], { input: 'nope\n' });
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /Error response from daemon: Get "http:\/\/127\.0\.0\.1:\d+\/v2\/": unauthorized: invalid username or password/);
    const good = await daemon.docker(['login', '-u', 'tok', '--password-stdin', srv.host], { input: 'tok-secret\n' });
    assert.equal(good.code, 0, show(good));
    assert.match(good.stdout, /Login Succeeded/);
    const r = await daemon.docker(['search', '--format', '{{.Name}}', `${srv.host}/busy`]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), [`${srv.host}/team/busybox`]);
  } finally {
    await daemon.docker(['logout', srv.host]);
    await srv.close();
    await rm(work, { recursive: true, force: true });
  }
});
