/**
 * wharfd (driven by the docker CLI, whose output is stable while wharf's own CLI grows) pulling from
 * `wharf registry serve`: a multi-platform index and a single image, without auth and through anonymous
 * bearer tokens issued by the server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox, buildOciLayout, pushLayout } from '../support/oci-images.js';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { startRegistryServer, type RegistryServer } from '../../src/registry/server.js';

let work: string;
let daemon: Daemon;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-regwharfd-'));
  daemon = await startDaemon();
});
after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

test('wharfd pulls an index and an image from wharf registry serve', { timeout: 180_000 }, async () => {
  const srv: RegistryServer = await startRegistryServer({ root: join(work, 'r1'), addr: '127.0.0.1:0' });
  try {
    const pushed = (await pushBusybox(srv.host, 'library/busybox:multi', { multiArch: true })) as { indexDigest: string };
    const pull = await daemon.docker(['pull', `${srv.host}/library/busybox:multi`]);
    assert.equal(pull.code, 0, show(pull));
    assert.match(pull.stdout, new RegExp(`Digest: ${pushed.indexDigest}`));
    const layout = join(work, 'l1');
    const img = await buildOciLayout(layout, { layers: [{ files: [{ path: 'etc/from-wharf-registry', content: 'yes\n' }] }] });
    await pushLayout(layout, srv.host, 'e2e/one:v1');
    const one = await daemon.docker(['pull', `${srv.host}/e2e/one:v1`]);
    assert.equal(one.code, 0, show(one));
    assert.match(one.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
    const ids = await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', `${srv.host}/e2e/one:v1`]);
    assert.equal(ids.stdout.trim(), img.configDigest);
    const missing = await daemon.docker(['pull', `${srv.host}/e2e/one:nope`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /manifest unknown|not found/);
  } finally {
    await srv.close();
  }
});

test('wharfd pulls through anonymous bearer tokens issued by the server', { timeout: 180_000 }, async () => {
  const srv = await startRegistryServer({ root: join(work, 'r2'), addr: '127.0.0.1:0', token: { service: 'wharf-e2e' } });
  try {
    const layout = join(work, 'l2');
    const img = await buildOciLayout(layout, { layers: [{ files: [{ path: 'etc/token', content: 'anon\n' }] }] });
    // Pushing needs a user: the server has none, so the anonymous token only pulls. Seed the storage directly.
    const seed = await startRegistryServer({ root: join(work, 'r2'), addr: '127.0.0.1:0' });
    try {
      await pushLayout(layout, seed.host, 'e2e/anon:v1');
    } finally {
      await seed.close();
    }
    const denied = await fetch(`${srv.url}/v2/e2e/anon/manifests/v1`);
    assert.equal(denied.status, 401);
    await denied.arrayBuffer();
    const pull = await daemon.docker(['pull', `${srv.host}/e2e/anon:v1`]);
    assert.equal(pull.code, 0, show(pull));
    assert.match(pull.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
  } finally {
    await srv.close();
  }
});
