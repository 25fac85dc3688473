/**
 * `wharf registry serve` as a real process, driven by skopeo (push from an OCI layout and back out, docker
 * schema 2, multi-platform index, basic auth), kill -9 in the middle of a push, and `gc`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildOciIndex, buildOciLayout, pushLayout } from '../support/oci-images.js';
import { freePort } from '../support/registry.js';
import { sleep } from '../support/wait.js';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const MAIN = resolve(here, '../../src/registry/main.js');
const NODE = process.execPath;

interface Served {
  url: string;
  host: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function serve(root: string, args: string[] = [], port?: number): Promise<Served> {
  const p = port ?? (await freePort());
  const child = spawn(NODE, [MAIN, 'serve', '--addr', `127.0.0.1:${p}`, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`registry did not start: ${err}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) { clearTimeout(t); res(m[1]!); }
    });
    child.once('exit', (code) => { clearTimeout(t); rej(new Error(`registry exited ${code}: ${err}`)); });
  });
  return {
    url, host: url.replace(/^https?:\/\//, ''), child,
    stop: () => new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileP('skopeo', args, { maxBuffer: 64 << 20 });
  return stdout;
}

/** Every committed blob's content hashes to its name. */
async function assertBlobsIntact(root: string): Promise<number> {
  const dir = join(root, 'blobs', 'sha256');
  let n = 0;
  for (const hex of await readdir(dir)) {
    if (!/^[a-f0-9]{64}$/.test(hex)) continue;
    assert.equal(sha(await readFile(join(dir, hex))), `sha256:${hex}`, `blob ${hex} is intact`);
    n++;
  }
  return n;
}

let work: string;
before(async () => { work = await mkdtemp(join(tmpdir(), 'wharf-e2e-regsrv-')); });
after(async () => { await rm(work, { recursive: true, force: true }); });

test('skopeo pushes an OCI layout in and copies it back out byte for byte (2 workers)', { timeout: 120_000 }, async () => {
  const root = join(work, 'r1');
  const srv = await serve(root, ['--workers', '2']);
  try {
    const layout = join(work, 'l1');
    const img = await buildOciLayout(layout, {
      layers: [
        { files: [{ path: 'etc/hello', content: 'hello\n' }, { path: 'bin', type: 'dir' }] },
        { compression: 'zstd', files: [{ path: 'opt/data', content: randomBytes(3 << 20) }] },
        { files: [{ path: 'etc/hello', type: 'whiteout' }] },
      ],
      config: { Cmd: ['sh'] },
    });
    await pushLayout(layout, srv.host, 'e2e/app:v1');
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/e2e/app:v1`]);
    assert.equal(raw, img.manifest.toString());
    const out = join(work, 'l1-out');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', `docker://${srv.host}/e2e/app:v1`, `oci:${out}:latest`]);
    const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(idx.manifests[0]!.digest, img.manifestDigest);
    for (const l of img.layers) {
      const back = await readFile(join(out, 'blobs', 'sha256', l.digest.slice(7)));
      assert.equal(sha(back), l.digest);
    }
    // Tags and catalog through skopeo.
    await pushLayout(layout, srv.host, 'e2e/app:v2');
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${srv.host}/e2e/app`])) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['v1', 'v2']);
    // Docker schema 2 (skopeo converts the manifest); the config and layers keep their digests.
    const gzLayout = join(work, 'l1gz');
    const gz = await buildOciLayout(gzLayout, { layers: [{ files: [{ path: 'etc/os', content: 'v2s2\n' }] }] });
    await pushLayout(gzLayout, srv.host, 'e2e/docker:v1', { format: 'v2s2' });
    const dm = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/e2e/docker:v1`])) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
    assert.equal(dm.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(dm.config.digest, gz.configDigest);
    assert.equal(dm.layers[0]!.digest, gz.layers[0]!.digest);
    const res = await fetch(`${srv.url}/v2/e2e/docker/manifests/v1`, { method: 'HEAD' });
    assert.equal(res.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');
    // Cross-repository mount: skopeo reuses blobs of another repository of the same registry.
    await pushLayout(layout, srv.host, 'e2e/other:v1');
    const other = await fetch(`${srv.url}/v2/e2e/other/blobs/${img.layers[1]!.digest}`, { method: 'HEAD' });
    assert.equal(other.status, 200);
  } finally {
    await srv.stop();
  }
});

test('multi-platform index with skopeo --all', { timeout: 120_000 }, async () => {
  const root = join(work, 'r2');
  const srv = await serve(root);
  try {
    const layout = join(work, 'l2');
    const { indexDigest, index, images } = await buildOciIndex(layout, [
      { layers: [{ files: [{ path: 'etc/arch', content: 'amd64\n' }] }], architecture: 'amd64' },
      { layers: [{ files: [{ path: 'etc/arch', content: 'arm64\n' }] }], architecture: 'arm64' },
    ]);
    await pushLayout(layout, srv.host, 'e2e/multi:v1', { all: true });
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/e2e/multi:v1`]);
    assert.equal(raw, index.toString());
    const head = await fetch(`${srv.url}/v2/e2e/multi/manifests/v1`, { method: 'HEAD' });
    assert.equal(head.headers.get('docker-content-digest'), indexDigest);
    const out = join(work, 'l2-out');
    await skopeo(['copy', '--quiet', '--all', '--src-tls-verify=false', '--preserve-digests', `docker://${srv.host}/e2e/multi:v1`, `oci:${out}:latest`]);
    for (const im of images) assert.ok(existsSync(join(out, 'blobs', 'sha256', im.manifestDigest.slice(7))));
  } finally {
    await srv.stop();
  }
});

test('htpasswd auth with skopeo: refused without credentials, accepted with them', { timeout: 120_000 }, async () => {
  const root = join(work, 'r3');
  const htpasswd = join(work, 'htpasswd');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'dora', 's3cret']);
  const srv = await serve(root, ['--htpasswd', htpasswd]);
  try {
    const layout = join(work, 'l3');
    const img = await buildOciLayout(layout, { layers: [{ files: [{ path: 'etc/a', content: 'a\n' }] }] });
    await assert.rejects(pushLayout(layout, srv.host, 'e2e/auth:v1'), /unauthorized|authentication required|401/i);
    await assert.rejects(pushLayout(layout, srv.host, 'e2e/auth:v1', { creds: 'dora:wrong' }), /unauthorized|invalid username|401/i);
    await pushLayout(layout, srv.host, 'e2e/auth:v1', { creds: 'dora:s3cret' });
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', 'dora:s3cret', `docker://${srv.host}/e2e/auth:v1`]);
    assert.equal(raw, img.manifest.toString());
  } finally {
    await srv.stop();
  }
});

test('kill -9 in the middle of a push: committed images still pull and verify, the push can be redone', { timeout: 300_000 }, async () => {
  const root = join(work, 'r4');
  const port = await freePort();
  let srv = await serve(root, ['--workers', '1'], port);
  const small = join(work, 'l4a');
  const a = await buildOciLayout(small, { layers: [{ files: [{ path: 'etc/a', content: 'committed\n' }] }, { files: [{ path: 'opt/b', content: randomBytes(1 << 20) }] }] });
  await pushLayout(small, srv.host, 'e2e/kept:v1');
  const big = join(work, 'l4b');
  const b = await buildOciLayout(big, { layers: [{ compression: 'none', files: [{ path: 'big', content: randomBytes(96 << 20) }] }] });
  // Push the big image and kill the server once part of its layer has arrived.
  const push = pushLayout(big, srv.host, 'e2e/big:v1').then(() => 'pushed', (e: Error) => e.message);
  const deadline = Date.now() + 60_000;
  let killedAt = -1;
  while (Date.now() < deadline) {
    const ups = await readdir(join(root, 'uploads')).catch(() => [] as string[]);
    let biggest = 0;
    for (const u of ups) biggest = Math.max(biggest, (await stat(join(root, 'uploads', u, 'data')).catch(() => ({ size: 0 }))).size);
    if (biggest > 4 << 20) {
      srv.child.kill('SIGKILL');
      killedAt = biggest;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(killedAt > 0, 'the server was killed mid-upload');
  const dead = srv.child;
  if (dead.exitCode === null && dead.signalCode === null) await new Promise((r) => dead.once('exit', r));
  assert.notEqual(await push, 'pushed');
  // Nothing of the big layer is visible as a blob.
  assert.equal(existsSync(join(root, 'blobs', 'sha256', b.layers[0]!.digest.slice(7))), false);
  srv = await serve(root, ['--workers', '1'], port);
  try {
    await assertBlobsIntact(root);
    const out = join(work, 'l4-out');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', `docker://${srv.host}/e2e/kept:v1`, `oci:${out}:latest`]);
    const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(idx.manifests[0]!.digest, a.manifestDigest);
    for (const l of a.layers) assert.equal(sha(await readFile(join(out, 'blobs', 'sha256', l.digest.slice(7)))), l.digest);
    const missing = await fetch(`${srv.url}/v2/e2e/big/manifests/v1`);
    assert.equal(missing.status, 404);
    // The push goes through after the restart.
    await pushLayout(big, srv.host, 'e2e/big:v1');
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/e2e/big:v1`]);
    assert.equal(raw, b.manifest.toString());
    const n = await assertBlobsIntact(root);
    assert.ok(n >= 6, `blobs of both images present (${n})`);
  } finally {
    await srv.stop();
  }
});

test('gc subcommand removes what no manifest references', { timeout: 120_000 }, async () => {
  const root = join(work, 'r5');
  const srv = await serve(root);
  try {
    const keep = join(work, 'l5a');
    const drop = join(work, 'l5b');
    const k = await buildOciLayout(keep, { layers: [{ files: [{ path: 'keep', content: 'keep\n' }] }] });
    const d = await buildOciLayout(drop, { layers: [{ files: [{ path: 'drop', content: 'drop\n' }] }] });
    await pushLayout(keep, srv.host, 'e2e/keep:v1');
    await pushLayout(drop, srv.host, 'e2e/drop:v1');
    const del = await fetch(`${srv.url}/v2/e2e/drop/manifests/${d.manifestDigest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const { stdout } = await execFileP(NODE, [MAIN, 'gc', '--root', root]);
    assert.match(stdout, /3 blobs deleted/);
    for (const x of [d.manifestDigest, d.configDigest, d.layers[0]!.digest]) {
      assert.equal(existsSync(join(root, 'blobs', 'sha256', x.slice(7))), false, `${x} deleted`);
    }
    for (const x of [k.manifestDigest, k.configDigest, k.layers[0]!.digest]) {
      assert.ok(existsSync(join(root, 'blobs', 'sha256', x.slice(7))), `${x} kept`);
    }
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/e2e/keep:v1`]);
    assert.equal(raw, k.manifest.toString());
  } finally {
    await srv.stop();
  }
});

/** Every tag resolves to a stored manifest whose blobs and child manifests are all present and intact. */
async function assertConsistent(url: string, root: string): Promise<number> {
  await assertBlobsIntact(root);
  const cat = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
  let tags = 0;
  for (const repo of cat.repositories) {
    const tl = await fetch(`${url}/v2/${repo}/tags/list`);
    const { tags: ts } = (await tl.json()) as { tags: string[] };
    for (const t of ts) {
      const m = await fetch(`${url}/v2/${repo}/manifests/${t}`);
      assert.equal(m.status, 200, `${repo}:${t}`);
      const bytes = Buffer.from(await m.arrayBuffer());
      assert.equal(sha(bytes), m.headers.get('docker-content-digest'));
      const man = JSON.parse(bytes.toString()) as { config?: { digest: string }; layers?: { digest: string }[] };
      for (const b of [man.config, ...(man.layers ?? [])]) {
        if (!b) continue;
        const h = await fetch(`${url}/v2/${repo}/blobs/${b.digest}`, { method: 'HEAD' });
        assert.equal(h.status, 200, `${repo}:${t} → ${b.digest}`);
      }
      tags++;
    }
  }
  return tags;
}

test('repeated kill -9 at random moments of parallel pushes never leaves a tag pointing at missing data', { timeout: 300_000 }, async (t) => {
  const root = join(work, 'r6');
  const port = await freePort();
  const layouts: string[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = join(work, `l6-${i}`);
    await buildOciLayout(dir, { layers: [
      { files: [{ path: `etc/img${i}`, content: `image ${i}\n` }] },
      { compression: 'none', files: [{ path: 'blob', content: randomBytes((2 + i) << 20) }] },
    ] });
    layouts.push(dir);
  }
  let complete = 0;
  for (let round = 0; round < 6; round++) {
    const srv = await serve(root, ['--workers', '2'], port);
    const pushes = layouts.map((dir, i) => pushLayout(dir, srv.host, `crash/img${i}:r${round}`).then(() => true, () => false));
    // the point: the servers are killed at a random moment of the pushes
    await sleep(30 + Math.floor(Math.random() * 400));
    // Kill the primary and its workers at once.
    const workers = (await execFileP('pgrep', ['-P', String(srv.child.pid)]).catch(() => ({ stdout: '' }))).stdout.split(/\s+/).filter(Boolean).map(Number);
    assert.equal(workers.length, 2, 'two workers');
    for (const pid of [...workers, srv.child.pid!]) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    complete += (await Promise.all(pushes)).filter(Boolean).length;
    const dead = srv.child;
    if (dead.exitCode === null && dead.signalCode === null) await new Promise((r) => dead.once('exit', r));
    await new Promise((r) => setTimeout(r, 100));
  }
  const srv = await serve(root, ['--workers', '1'], port);
  try {
    const tags = await assertConsistent(srv.url, root);
    t.diagnostic(`${complete} of 18 pushes completed before their kill; ${tags} tags consistent after`);
    assert.ok(tags >= complete, `every push that completed is there (${tags} tags, ${complete} completed pushes)`);
    // And the registry still takes pushes.
    await pushLayout(layouts[0]!, srv.host, 'crash/img0:final');
    assert.ok((await assertConsistent(srv.url, root)) > tags);
  } finally {
    await srv.stop();
  }
});

test('TLS: skopeo pushes and pulls over https with the given certificate', { timeout: 120_000 }, async () => {
  const dir = join(work, 'tls');
  await execFileP('mkdir', ['-p', join(dir, 'certs')]);
  await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'certs', 'ca.crt'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  const srv = await serve(join(dir, 'root'), ['--tls-cert', join(dir, 'certs', 'ca.crt'), '--tls-key', join(dir, 'key.pem')]);
  try {
    assert.match(srv.url, /^https:/);
    const layout = join(work, 'l7');
    const img = await buildOciLayout(layout, { layers: [{ files: [{ path: 'etc/tls', content: 'tls\n' }] }] });
    // Verified against the certificate (as a CA directory), not just with verification off.
    await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-cert-dir', join(dir, 'certs'), `oci:${layout}:latest`, `docker://${srv.host}/e2e/tls:v1`]);
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', join(dir, 'certs'), `docker://${srv.host}/e2e/tls:v1`]);
    assert.equal(raw, img.manifest.toString());
    await assert.rejects(skopeo(['inspect', '--raw', `docker://${srv.host}/e2e/tls:v1`]), /certificate|x509/i);
  } finally {
    await srv.stop();
  }
});

test('wharf registry serve --addr 0.0.0.0 --htpasswd without TLS: prints the bound address and a clear-text credentials warning', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(work, 'wide-'));
  const htpasswd = join(dir, 'htpasswd');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'u', 'secret-u']);
  const port = await freePort();
  const cli = resolve(here, '../../src/cli/main.js');
  const child = spawn(NODE, [cli, 'registry', 'serve', '--addr', `0.0.0.0:${port}`, '--root', join(dir, 'root'), '--htpasswd', htpasswd, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  try {
    const t0 = Date.now();
    while (!out.includes('listening on')) {
      assert.ok(Date.now() - t0 < 20_000 && child.exitCode === null, `no "listening on": ${out}${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(out, `listening on http://0.0.0.0:${port}\n`);
    assert.match(err, new RegExp(`^warning: --htpasswd without TLS on 0\\.0\\.0\\.0:${port}: Basic credentials travel in clear text`, 'm'));
    // the server does answer (on loopback), and wants credentials
    const r = await fetch(`http://127.0.0.1:${port}/v2/`);
    assert.equal(r.status, 401);
    await r.arrayBuffer();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(undefined); else child.once('exit', r); });
  }
  // on loopback, the same flags print no warning
  const port2 = await freePort();
  const quiet = spawn(NODE, [cli, 'registry', 'serve', '--addr', `127.0.0.1:${port2}`, '--root', join(dir, 'root'), '--htpasswd', htpasswd, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out2 = '';
  let err2 = '';
  quiet.stdout!.on('data', (d: Buffer) => { out2 += d.toString(); });
  quiet.stderr!.on('data', (d: Buffer) => { err2 += d.toString(); });
  try {
    const t0 = Date.now();
    while (!out2.includes('listening on')) {
      assert.ok(Date.now() - t0 < 20_000 && quiet.exitCode === null, `no "listening on": ${out2}${err2}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(out2, `listening on http://127.0.0.1:${port2}\n`);
    assert.equal(err2, '');
  } finally {
    quiet.kill('SIGTERM');
    await new Promise((r) => { if (quiet.exitCode !== null || quiet.signalCode !== null) r(undefined); else quiet.once('exit', r); });
  }
});
