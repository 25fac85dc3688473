/**
 * Pulls through a fault-injecting proxy in front of a real docker-registry (test/support/registry.ts), with the
 * Puller and real stores (as pull-engine): connection resets, 503s, 429 + Retry-After and layer bodies cut
 * mid-way are retried or resumed and the image is exactly the registry's; blobs redirected to a storage host get
 * there without the registry's Authorization; an oversized manifest and a registry that keeps failing end the
 * pull cleanly with nothing kept. Everything on loopback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD, type Registry } from '../support/registry.js';
import { buildOciLayout, pushLayout, busyboxSpec, type ImageSpec, type BuiltImage } from '../support/oci-images.js';
import { Puller } from '../../src/engine/distribution/pull.js';
import { setRetryPolicy, LIMITS } from '../../src/engine/distribution/transport.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { openImageStore, openReferenceStore } from '../../src/engine/images/store.js';
import { DEFAULT_CONFIG } from '../../src/engine/config.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import { chainIds, type Digest } from '../../src/lib/digest.js';

const cleanups: (() => Promise<void>)[] = [];
let reg: Registry;
let authReg: Registry;

async function newEnv() {
  const dataRoot = await mkdtemp(join(tmpdir(), 'wharf-faults-'));
  cleanups.push(() => rm(dataRoot, { recursive: true, force: true }));
  const layers = await openLayerStore({ dataRoot, ...(process.env.WHARF_TEST_DRIVER ? { driver: process.env.WHARF_TEST_DRIVER } : {}) });
  const images = await openImageStore(dataRoot, layers);
  const refs = await openReferenceStore(dataRoot);
  const puller = new Puller({ layers, images, refs, config: { ...DEFAULT_CONFIG, dataRoot }, dataRoot });
  const pull = async (ref: string, opts: Parameters<Puller['pull']>[1] = {}) => {
    const msgs: JSONMessage[] = [];
    await puller.pull(ref, opts, (m) => msgs.push(m));
    return msgs;
  };
  return { dataRoot, layers, images, refs, pull };
}

async function push(r: Registry, spec: ImageSpec, repoTag: string, creds?: string): Promise<BuiltImage> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-oci-'));
  try {
    const img = await buildOciLayout(dir, spec);
    await pushLayout(dir, r.host, repoTag, creds ? { creds } : {});
    return img;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Seen { method: string; path: string; auth: string | undefined; range: string | undefined }
/** What the proxy does with one request: forward it, or a fault. */
type Fault = 'pass' | 'reset' | 'cut' | { status: number; headers?: Record<string, string> } | { redirect: string } | { oversized: number };

interface Proxy { server: Server; host: string; base: string; seen: Seen[]; rule: (req: IncomingMessage, n: number) => Fault }

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** Forwards a request to `target` (host:port) and the answer back; `cut` sends half the body, then resets. */
function forward(target: string, req: IncomingMessage, res: ServerResponse, path: string, extraHeaders: Record<string, string>, cut: boolean): void {
  const [host, port] = target.split(':');
  const up = httpRequest({ host, port: Number(port), method: req.method, path, headers: { ...req.headers, host: target, ...extraHeaders } }, (ures) => {
    res.writeHead(ures.statusCode!, ures.headers);
    if (!cut) { ures.pipe(res); return; }
    const half = Math.floor(Number(ures.headers['content-length'] ?? 0) / 2);
    let sent = 0;
    ures.on('data', (c: Buffer) => {
      if (sent >= half) return;
      const piece = c.subarray(0, half - sent);
      sent += piece.length;
      res.write(piece);
      if (sent >= half) { ures.destroy(); setTimeout(() => req.socket.destroy(), 20); }
    });
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

async function faultProxy(target: string): Promise<Proxy> {
  const counts = new Map<string, number>();
  const p = { seen: [], rule: () => 'pass' } as unknown as Proxy;
  p.server = createServer((req, res) => {
    const path = req.url!;
    p.seen.push({ method: req.method!, path, auth: req.headers.authorization, range: req.headers.range });
    const key = `${req.method} ${path.split('?')[0]}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const f = p.rule(req, n);
    if (f === 'pass' || f === 'cut') { forward(target, req, res, path, {}, f === 'cut'); return; }
    if (f === 'reset') { req.socket.destroy(); return; }
    if ('redirect' in f) { res.writeHead(307, { location: f.redirect }).end(); return; }
    if ('oversized' in f) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      let written = 0;
      const piece = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && written < f.oversized) {
          written += piece.length;
          if (!res.write(piece)) { res.once('drain', pump); return; }
        }
        if (!res.destroyed) res.end();
      };
      pump();
      return;
    }
    res.writeHead(f.status, f.headers ?? {}).end();
  });
  p.host = await listen(p.server);
  p.base = `http://${p.host}`;
  cleanups.push(() => new Promise<void>((r) => { p.server.closeAllConnections(); p.server.close(() => r()); }));
  return p;
}

const isBlob = (req: IncomingMessage) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!);
const unique = () => randomBytes(6).toString('hex');

before(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ auth: 'htpasswd' });
  // short backoffs; Retry-After is still honoured
  setRetryPolicy({ minTimeout: 20, maxTimeout: 2000 });
});

after(async () => {
  setRetryPolicy(null);
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await reg?.stop();
  await authReg?.stop();
});

test('resets, 503s, 429 + Retry-After and layer bodies cut mid-way: the pull retries, resumes and gets exactly the image', async () => {
  const u = unique();
  const big = randomBytes(3 << 20);
  const spec = await busyboxSpec();
  spec.layers.push({ compression: 'gzip', files: [{ path: 'data/big', content: big }] });
  const built = await push(reg, spec, `faults/image-${u}:v1`);
  const proxy = await faultProxy(reg.host);
  const configPath = `/blobs/${built.configDigest}`;
  proxy.rule = (req, n) => {
    if (req.url === '/v2/' && n === 1) return 'reset';
    if (req.url!.endsWith('/manifests/v1') && n === 1) return { status: 503 };
    if (req.url!.endsWith(configPath) && n === 1) return { status: 429, headers: { 'retry-after': '1' } };
    if (isBlob(req) && !req.url!.endsWith(configPath) && n === 1) return 'cut';
    return 'pass';
  };
  const env = await newEnv();
  const t0 = Date.now();
  const msgs = await env.pull(`${proxy.host}/faults/image-${u}:v1`);
  assert.ok(Date.now() - t0 >= 950, 'Retry-After: 1 was waited for');
  assert.equal(msgs.at(-1)!.status, `Status: Downloaded newer image for ${proxy.host}/faults/image-${u}:v1`);
  assert.ok(await env.images.has(built.configDigest as Digest));
  const chains = chainIds(built.layers.map((l) => l.diffId as Digest));
  for (const c of chains) assert.ok(await env.layers.has(c), `layer ${c} registered (its diffID verified)`);
  // every layer was cut once, then resumed from where it broke with a Range request
  for (const l of built.layers) {
    const gets = proxy.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${l.digest}`));
    assert.equal(gets.length, 2, `${l.digest}: ${JSON.stringify(gets)}`);
    assert.equal(gets[0]!.range, undefined);
    assert.match(String(gets[1]!.range), new RegExp(`^bytes=${Math.floor(l.size / 2)}-`));
  }
  assert.equal(proxy.seen.filter((s) => s.path.endsWith('/manifests/v1')).length, 2);
  assert.equal(proxy.seen.filter((s) => s.path.endsWith(configPath)).length, 2);
  // the bytes in the layer store are the registry's
  const id = randomBytes(8).toString('hex');
  await env.layers.createRW(id, chains.at(-1)!);
  try {
    const root = await env.layers.mount(id);
    try { assert.ok((await readFile(join(root, 'data/big'))).equals(big)); } finally { await env.layers.unmount(id); }
  } finally { await env.layers.removeRW(id); }
});

test('blobs redirected to a storage host get there without the registry\'s Authorization', async () => {
  const u = unique();
  const creds = `${REGISTRY_USER}:${REGISTRY_PASSWORD}`;
  const built = await push(authReg, await busyboxSpec({ marker: u }), `faults/redirect-${u}:v1`, creds);
  const storageSeen: Seen[] = [];
  let cutOnce = true;
  // "S3": serves blobs by a signed-looking URL, fetching them from the registry with its own credentials
  const storage = createServer((req, res) => {
    storageSeen.push({ method: req.method!, path: req.url!, auth: req.headers.authorization, range: req.headers.range });
    const digest = new URL(req.url!, 'http://x').searchParams.get('d')!;
    const cut = cutOnce;
    cutOnce = false;
    forward(authReg.host, req, res, `/v2/faults/redirect-${u}/blobs/${digest}`, { authorization: `Basic ${Buffer.from(creds).toString('base64')}` }, cut);
  });
  const storageHost = await listen(storage);
  cleanups.push(() => new Promise<void>((r) => { storage.closeAllConnections(); storage.close(() => r()); }));
  const proxy = await faultProxy(authReg.host);
  proxy.rule = (req) => {
    if (isBlob(req) && req.headers.authorization) {
      const digest = /\/blobs\/(sha256:[0-9a-f]+)/.exec(req.url!)![1]!;
      return { redirect: `http://${storageHost}/bucket/blob?d=${digest}&sig=${u}` };
    }
    return 'pass';
  };
  const env = await newEnv();
  await env.pull(`${proxy.host}/faults/redirect-${u}:v1`, { auth: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } });
  assert.ok(await env.images.has(built.configDigest as Digest));
  assert.ok(proxy.seen.some((s) => /\/blobs\//.test(s.path) && s.auth?.startsWith('Basic ')), 'the registry got the credentials');
  assert.ok(storageSeen.length >= 3, `config + layer (+ resume) at the storage host: ${JSON.stringify(storageSeen)}`);
  for (const s of storageSeen) assert.equal(s.auth, undefined, `storage request ${s.path} carried Authorization`);
  assert.ok(storageSeen.some((s) => s.range !== undefined), 'the cut body resumed at the storage host');
});

test('an oversized manifest and a layer that keeps failing end the pull cleanly, nothing kept', async () => {
  const u = unique();
  const built = await push(reg, { layers: [{ files: [{ path: 'f', content: randomBytes(100_000) }] }] }, `faults/fail-${u}:v1`);
  const proxy = await faultProxy(reg.host);
  proxy.rule = (req) => {
    if (req.url!.endsWith('/manifests/huge')) return { oversized: 64 << 20 };
    if (req.url!.endsWith(`/blobs/${built.layers[0]!.digest}`)) return { status: 503 };
    return 'pass';
  };
  const env = await newEnv();
  await assert.rejects(env.pull(`${proxy.host}/faults/fail-${u}:huge`), (e: Error) =>
    new RegExp(`^Get "http://${proxy.host}/v2/faults/fail-${u}/manifests/huge": manifest exceeds the limit of ${LIMITS.manifest} bytes \\(4 MiB\\)`).test(e.message));
  await assert.rejects(env.pull(`${proxy.host}/faults/fail-${u}:v1`), (e: Error) => /503/.test(e.message));
  assert.equal(proxy.seen.filter((s) => s.path.endsWith(`/blobs/${built.layers[0]!.digest}`)).length, 5, 'bounded: 1 try + 4 retries');
  assert.deepEqual(await env.layers.list(), []);
  assert.deepEqual(await env.images.list(), []);
  assert.deepEqual([...env.refs.all().keys()], []);
});
