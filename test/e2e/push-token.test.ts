/**
 * docker push through wharfd to `wharf registry serve` with bearer token auth (users from htpasswd): tokens are
 * asked with `pull,push` scope, a cross-repository mount asks for `pull` on the source repository too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, shortId } from '../support/cli.js';
import { startRegistryServer, type RegistryServer } from '../../src/registry/server.js';

const execFileP = promisify(execFile);
let work: string;
let d: Daemon;
let srv: RegistryServer;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-pushtoken-'));
  const htpasswd = join(work, 'htpasswd');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'pusher', 'push-secret']);
  [d, srv] = await Promise.all([
    startDaemon(),
    startRegistryServer({ root: join(work, 'reg'), addr: '127.0.0.1:0', htpasswd, token: { service: 'wharf-e2e' } }),
  ]);
});
after(async () => {
  await d?.stop();
  await srv?.close();
  await rm(work, { recursive: true, force: true });
});

test('push with bearer tokens: refused anonymously, pushed with credentials, mounted into another repository', { timeout: 180_000 }, async () => {
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
  await writeFile(join(ctx, 'f'), 'token push\n');
  const ref = `${srv.host}/team/app:1`;
  const b = await d.docker(['build', '-t', ref, ctx]);
  assert.equal(b.code, 0, show(b));
  const [diffId] = JSON.parse((await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])).stdout) as string[];

  const anon = await d.docker(['push', ref]);
  assert.notEqual(anon.code, 0, show(anon));
  assert.match(anon.stderr, /unauthorized|denied|authentication required/, anon.stderr);

  const auth = Buffer.from('pusher:push-secret').toString('base64');
  await writeFile(join(d.dir, 'docker-config', 'config.json'), JSON.stringify({ auths: { [srv.host]: { auth } } }));
  const ok = await d.docker(['push', ref]);
  assert.equal(ok.code, 0, show(ok));
  assert.match(ok.stdout, new RegExp(`${shortId(diffId!)}: Pushed`));
  const digest = /1: digest: (sha256:[a-f0-9]{64}) size: \d+/.exec(ok.stdout)?.[1];
  assert.ok(digest, ok.stdout);

  const tg = await d.docker(['tag', ref, `${srv.host}/other/app:2`]);
  assert.equal(tg.code, 0, show(tg));
  const m = await d.docker(['push', `${srv.host}/other/app:2`]);
  assert.equal(m.code, 0, show(m));
  assert.match(m.stdout, new RegExp(`${shortId(diffId!)}: Mounted from team/app`));
  assert.match(m.stdout, new RegExp(`2: digest: ${digest}`));
});
