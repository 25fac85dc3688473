/**
 * The wharf CLI's distribution commands against a real wharfd and Debian's docker-registry, compared with the
 * real docker CLI on the same daemon: push (lines, digest, -q), save -o / load -i round trip keeping IDs and
 * tags, save to a pipe, load -q, import with -c/-m, login/logout (config file mode 0600, the password never
 * printed, htpasswd checked by the registry), search of a private registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD, type Registry } from '../support/registry.js';

let d: Daemon;
let reg: Registry;
let secured: Registry;
let work: string;
before(async () => {
  [d, reg, secured] = await Promise.all([startDaemon(), startRegistry(), startRegistry({ auth: 'htpasswd' })]);
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-clidist-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => {
  await d?.stop();
  await reg?.stop();
  await secured?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const mask = (s: string) => s.replace(/[a-f0-9]{12}: /g, 'LAYER: ');

test('push prints docker\'s lines; a second push finds every layer; -q prints the name', async () => {
  const ref = `${reg.host}/lab/bb:v1`;
  assert.equal((await d.wharf(['tag', 'busybox', ref])).code, 0);
  const first = await d.wharf(['push', ref]);
  assert.equal(first.code, 0, show(first));
  const lines = first.stdout.split('\n');
  assert.equal(lines[0], `The push refers to repository [${reg.host}/lab/bb]`);
  assert.match(first.stdout, /^[a-f0-9]{12}: Pushed$/m);
  assert.match(first.stdout, new RegExp(`^v1: digest: sha256:[a-f0-9]{64} size: \\d+$`, 'm'));
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(first.stdout)![1];
  const again = await d.wharf(['push', ref]);
  const docker = await d.docker(['push', ref]);
  assert.equal(mask(again.stdout), mask(docker.stdout), 'the same lines as the docker CLI');
  assert.match(again.stdout, /Layer already exists/);
  assert.ok(again.stdout.includes(digest!), 'same manifest digest when pushed again');
  const q = await d.wharf(['push', '-q', ref]);
  assert.deepEqual([q.code, q.stdout], [0, `${ref}\n`], show(q));
  const noTag = await d.wharf(['push', `${reg.host}/lab/bb`]);
  assert.match(noTag.stdout, /^Using default tag: latest\n/);
  assert.notEqual(noTag.code, 0);
  assert.match(noTag.stderr, /tag does not exist|An image does not exist locally/);
});

test('save -o and load -i keep IDs and tags; save to a pipe; load -q; refuse a terminal-less stdin mistake', async () => {
  assert.equal((await d.wharf(['tag', 'busybox', 'saved:one'])).code, 0);
  const id = (await d.wharf(['inspect', '--format', '{{.Id}}', 'saved:one'])).stdout.trim();
  const file = join(work, 'saved.tar');
  const s = await d.wharf(['save', '-o', file, 'saved:one']);
  assert.deepEqual([s.code, s.stdout, s.stderr], [0, '', ''], show(s));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' });
  assert.match(names, /^manifest\.json$/m);
  const piped = await d.wharf(['save', 'saved:one']);
  assert.equal(piped.code, 0);
  assert.equal(Buffer.byteLength(piped.stdout, 'latin1') > 1000, true);

  const fresh = await startDaemon();
  try {
    const l = await fresh.wharf(['load', '-i', file]);
    assert.deepEqual([l.code, l.stdout], [0, 'Loaded image: saved:one\n'], show(l));
    assert.equal((await fresh.wharf(['inspect', '--format', '{{.Id}}', 'saved:one'])).stdout.trim(), id);
    const lq = await fresh.wharf(['load', '-q'], { input: await readFile(file) });
    assert.deepEqual([lq.code, lq.stdout], [0, 'Loaded image: saved:one\n'], show(lq));
    const bad = await fresh.wharf(['load', '-i', join(work, 'absent.tar')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no such file or directory/);
    const missing = await d.wharf(['save', '-o', join(work, 'x.tar'), 'no-such-image:1']);
    assert.equal(missing.code, 1, show(missing));
    assert.match(missing.stderr, /No such image|reference does not exist/);
  } finally {
    await fresh.stop();
  }
});

test('import with -c and -m makes a one-layer image with docker\'s history', async () => {
  const tarFile = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', '/etc', '-cf', tarFile, 'hostname', 'os-release']);
  const imp = await d.wharf(['import', '-c', 'CMD ["cat","/os-release"]', '-m', 'from a file', tarFile, 'imported:1']);
  assert.match(imp.stdout, /^sha256:[a-f0-9]{64}\n$/, show(imp));
  const hist = await d.wharf(['history', '--format', '{{.CreatedBy}}|{{.Comment}}', 'imported:1']);
  assert.equal(hist.stdout, '|from a file\n');
  const cmd = await d.wharf(['inspect', '--format', '{{json .Config.Cmd}}', 'imported:1']);
  assert.equal(cmd.stdout, '["cat","/os-release"]\n');
  const dash = await d.wharf(['import', '-', 'imported:2'], { input: await readFile(tarFile) });
  assert.equal(dash.code, 0, show(dash));
  const h2 = await d.wharf(['history', '--format', '{{.Comment}}', 'imported:2']);
  assert.equal(h2.stdout, 'Imported from -\n');
});

test('login stores credentials 0600 without printing them; push needs them; logout removes them; search', async () => {
  const cfg = join(work, 'cfg');
  const env = { DOCKER_CONFIG: cfg };
  const ref = `${secured.host}/lab/secret:v1`;
  assert.equal((await d.wharf(['tag', 'busybox', ref])).code, 0);
  const denied = await d.wharf(['push', ref], { env });
  assert.notEqual(denied.code, 0, show(denied));
  const bad = await d.wharf(['login', '-u', REGISTRY_USER, '--password-stdin', secured.host], { env, input: 'wrong\n' });
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stderr, /401 Unauthorized/);
  const good = await d.wharf(['login', '-u', REGISTRY_USER, '--password-stdin', secured.host], { env, input: `${REGISTRY_PASSWORD}\n` });
  assert.equal(good.code, 0, show(good));
  assert.equal(good.stdout, 'Login Succeeded\n');
  assert.match(good.stderr, /^WARNING! Your credentials are stored unencrypted in '.*config\.json'\./);
  assert.ok(!good.stdout.includes(REGISTRY_PASSWORD) && !good.stderr.includes(REGISTRY_PASSWORD));
  const file = join(cfg, 'config.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(Buffer.from(saved.auths[secured.host].auth, 'base64').toString(), `${REGISTRY_USER}:${REGISTRY_PASSWORD}`);
  const pushed = await d.wharf(['push', ref], { env });
  assert.equal(pushed.code, 0, show(pushed));
  const found = await d.wharf(['search', '--format', '{{.Name}}', `${secured.host}/lab`], { env });
  assert.equal(found.code, 0, show(found));
  assert.match(found.stdout, new RegExp(`^${secured.host.replace(/\./g, '\\.')}/lab/secret$`, 'm'));
  const table = await d.wharf(['search', `${secured.host}/lab`], { env });
  assert.match(table.stdout, /^NAME +DESCRIPTION +STARS +OFFICIAL\n/);
  const out = await d.wharf(['logout', secured.host], { env });
  assert.deepEqual([out.code, out.stdout], [0, `Removing login credentials for ${secured.host}\n`], show(out));
  assert.equal(JSON.parse(await readFile(file, 'utf8')).auths[secured.host], undefined);
  const again = await d.wharf(['logout', secured.host], { env });
  assert.equal(again.stdout, `Not logged in to ${secured.host}\n`);
});

test('wharf registry serve: the CLI starts the registry server, which answers /v2/ and takes a push', async () => {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('../support/registry.js');
  const { NODE, WHARF_CLI } = await import('../support/cli.js');
  const port = await freePort();
  const child = spawn(NODE, [WHARF_CLI, 'registry', 'serve', '--addr', `127.0.0.1:${port}`, '--root', join(work, 'own-registry')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('listening on')) resolve(); });
      child.on('exit', (c) => reject(new Error(`registry exited ${c}: ${out}`)));
      setTimeout(() => reject(new Error(`no "listening on" line: ${out}`)), 20_000);
    });
    const res = await fetch(`http://127.0.0.1:${port}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const ref = `127.0.0.1:${port}/own/bb:1`;
    assert.equal((await d.wharf(['tag', 'busybox', ref])).code, 0);
    const p = await d.wharf(['push', ref]);
    assert.equal(p.code, 0, show(p));
    assert.match(p.stdout, /1: digest: sha256:[a-f0-9]{64} size: \d+/);
  } finally {
    child.kill('SIGTERM');
  }
});
