/**
 * The daemon's HTTP client (`lib/httpclient.ts`) on its own and under the registry transport: the backoff
 * arithmetic, a redirect whose second hop fails (retried on its own), the redirect limit and 303's GET, which
 * statuses each retry mode retries, a stale keep-alive socket, a resume refused because the object changed, and
 * HTTP(S)_PROXY / NO_PROXY against a small proxy on loopback (absolute-URI for http, a CONNECT tunnel for https),
 * and `insecure` kept to the origin asked for (two TLS servers nothing trusts, one redirecting to the other).
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { backoff, closeAgents, request, get, DEFAULT_HTTP_POLICY } from '../../src/lib/httpclient.js';
import { Repository, PushSession } from '../../src/engine/distribution/registry.js';
import { RegistryHttpError, setRetryPolicy } from '../../src/engine/distribution/transport.js';
import type { Digest } from '../../src/lib/digest.js';
import { fakeServer, type Fake } from '../support/fakehttp.js';
import { makeCerts } from '../support/tls.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('cfg'), size: 3 }, layers: [],
}));
const sendManifest = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'content-length': manifest.length }).end(manifest);
const cfg = { registryMirrors: [], insecureRegistries: [] };
const fast = { ...DEFAULT_HTTP_POLICY, minTimeout: 5, maxTimeout: 50, bodyTimeout: 400 };

let a: Fake;
let b: Fake;
before(async () => {
  a = await fakeServer();
  b = await fakeServer();
  setRetryPolicy({ minTimeout: 5, maxTimeout: 50, bodyTimeout: 400 });
});
after(() => { setRetryPolicy(null); a.server.close(); b.server.close(); closeAgents(); });
beforeEach(() => { a.seen = []; b.seen = []; });

test('backoff: exponential from minTimeout, each wait capped; Retry-After in seconds or as a date, capped too', () => {
  const p = { ...DEFAULT_HTTP_POLICY, minTimeout: 100, maxTimeout: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoff(n, p, undefined)), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoff(1, p, '0'), 100, 'Retry-After: 0 falls back to the backoff');
  assert.equal(backoff(3, p, '0.5'), 500);
  assert.equal(backoff(1, p, '30'), 1000, 'a long Retry-After waits at most maxTimeout');
  const inAMinute = new Date(Date.now() + 60_000).toUTCString();
  assert.equal(backoff(1, p, inAMinute), 1000);
  assert.equal(backoff(2, p, 'not a date'), 200);
});

test('each hop of a redirect is retried on its own: a 503 from the storage host does not ask the registry again', async () => {
  a.handler = (_req, res) => { res.writeHead(307, { location: `${b.base}/storage/x?sig=1` }).end(); };
  let n = 0;
  b.handler = (_req, res) => { if (++n < 3) { res.writeHead(503).end('busy'); return; } res.end('the bytes'); };
  const res = await request('GET', `${a.base}/v2/r/blobs/x`, { headers: { authorization: 'Bearer t' }, policy: fast });
  assert.equal(res.statusCode, 200);
  assert.equal(await text(res.body), 'the bytes');
  assert.equal(res.url, `${b.base}/storage/x?sig=1`);
  assert.equal(a.seen.length, 1, 'the registry was asked once');
  assert.equal(b.seen.length, 3, 'the storage host was retried twice');
  assert.ok(b.seen.every((s) => s.headers.authorization === undefined), 'no Authorization to another origin');
});

test('redirects: same-origin hops keep Authorization; at most 10 are followed; 303 turns a POST into a GET', async () => {
  a.handler = (req, res, url) => {
    const hop = Number(url.searchParams.get('hop') ?? 0);
    if (url.pathname === '/loop') { res.writeHead(302, { location: `/loop?hop=${hop + 1}` }).end(); return; }
    if (url.pathname === '/ten') { res.writeHead(hop < 10 ? 301 : 200, hop < 10 ? { location: `/ten?hop=${hop + 1}` } : {}).end(hop < 10 ? '' : `done ${req.headers.authorization}`); return; }
    if (url.pathname === '/form') { req.resume(); res.writeHead(303, { location: '/result' }).end(); return; }
    if (url.pathname === '/result') { res.end(`${req.method} ${req.headers['content-length'] ?? '-'}`); return; }
    res.writeHead(404).end();
  };
  const ten = await request('GET', `${a.base}/ten`, { headers: { authorization: 'Basic x' }, policy: fast });
  assert.equal(await text(ten.body), 'done Basic x');
  const loop = await request('GET', `${a.base}/loop`, { policy: fast });
  await text(loop.body);
  assert.equal(loop.statusCode, 302, 'the 11th redirect is handed back, not followed');
  assert.equal(a.seen.filter((s) => s.path.startsWith('/loop')).length, 11);
  const form = await request('POST', `${a.base}/form`, { body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, policy: fast });
  assert.equal(await text(form.body), 'GET -');
});

test('retry modes: pings retry resets but not statuses, uploads nothing, GETs 5xx at most maxRetries times', async () => {
  a.handler = (_req, res) => { res.writeHead(503).end(); };
  // the ping of a registry (retry: 'connection'): one try, the next endpoint decides
  await assert.rejects(new Repository(a.host, 'x/y', { config: cfg }).getManifest('v1'));
  assert.equal(a.seen.filter((s) => s.path === '/v2/').length, 1);
  a.seen = [];
  const res = await request('GET', `${a.base}/x`, { policy: { ...fast, maxRetries: 2 } });
  await text(res.body);
  assert.equal(res.statusCode, 503, 'the last answer is handed back');
  assert.equal(a.seen.length, 3, '1 try + 2 retries');
  a.seen = [];
  let resets = 0;
  a.handler = (req, res) => { if (resets++ === 0) { req.socket.destroy(); return; } res.end('ok'); };
  await assert.rejects(request('PUT', `${a.base}/upload`, { body: Readable.from([Buffer.from('x')]), policy: fast }), { code: 'ECONNRESET' });
  assert.equal(a.seen.length, 1, 'a streamed upload is not sent again');
  resets = 0;
  a.seen = [];
  closeAgents(); // a fresh socket: a reset on a reused one is a stale keep-alive socket, sent again (next test)
  await assert.rejects(request('GET', `${a.base}/none`, { retry: null, policy: fast }), { code: 'ECONNRESET' });
  assert.equal(a.seen.length, 1);
});

test('a keep-alive socket the server closed is replaced: the request is sent once more, even a PUT', async () => {
  // the first request is answered and its socket kept; the next one on that socket finds it closed
  const sockets = new Set<Socket>();
  a.handler = (req, res, url) => {
    if (url.pathname === '/first') { sockets.add(req.socket); res.end('one'); return; }
    if (sockets.has(req.socket)) { req.socket.destroy(); return; }
    req.resume();
    req.on('end', () => res.end(`stored ${req.headers['content-length']}`));
  };
  assert.equal(await text((await request('GET', `${a.base}/first`, { policy: fast })).body), 'one');
  const put = await request('PUT', `${a.base}/manifest`, { body: Buffer.from('{"m":1}'), policy: fast });
  assert.equal(await text(put.body), 'stored 7');
  assert.deepEqual(a.seen.map((s) => `${s.method} ${s.path}`), ['GET /first', 'PUT /manifest', 'PUT /manifest']);
});

test('a resume whose answer is another object (ETag changed) starts the blob over; the bytes are the new object\'s', async () => {
  const blob = randomBytes(2 << 20);
  let n = 0;
  a.handler = (req, res, url) => {
    if (url.pathname === '/v2/') { res.end('{}'); return; }
    n++;
    const range = /^bytes=(\d+)-/.exec(String(req.headers.range ?? ''));
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, { etag: '"other"', 'content-length': blob.length - start, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` }).end(blob.subarray(start));
      return;
    }
    res.writeHead(200, { etag: n === 1 ? '"first"' : '"other"', 'content-length': blob.length, 'accept-ranges': 'bytes' });
    if (n > 1) { res.end(blob); return; }
    res.write(blob.subarray(0, blob.length / 2), () => setTimeout(() => req.socket.destroy(), 20));
  };
  const { body } = await new Repository(a.host, 'x/etag', { config: cfg }).fetchBlob(sha(blob));
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  assert.equal(sha(Buffer.concat(chunks)), sha(blob));
  const gets = a.seen.filter((s) => s.path.includes('/blobs/'));
  assert.deepEqual(gets.map((g) => g.headers.range === undefined ? 'full' : 'range'), ['full', 'range', 'full']);
});

test('uploads through the transport: a POST answered 500 is not retried, a GET 500 is', async () => {
  a.handler = (_req, res, url) => {
    if (url.pathname === '/v2/') { res.end('{}'); return; }
    res.writeHead(500).end();
  };
  const s = new PushSession(a.host, 'x/up', { config: cfg });
  await assert.rejects(s.uploadBlob(sha('b'), 1, () => Buffer.from('b')), (e: unknown) => e instanceof RegistryHttpError && e.status === 500);
  assert.equal(a.seen.filter((x) => x.method === 'POST').length, 1);
});

// ---------------------------------------------------------------------------------------------------------
// Proxies

interface Proxy { server: Server; url: string; seen: string[] }

/** A forward proxy: absolute-URI requests and CONNECT tunnels, every name resolved to 127.0.0.1 on `ports`' port. */
async function proxy(ports: Record<string, number>): Promise<Proxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!);
    const port = ports[`${u.hostname}:${u.port || 80}`];
    if (!port) { res.writeHead(502).end(); return; }
    const up = httpRequest({ host: '127.0.0.1', port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connect', (req: IncomingMessage, sock: Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const port = ports[req.url!];
    if (!port) { sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'); return; }
    const up = netConnect(port, '127.0.0.1', () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

test('HTTP_PROXY / HTTPS_PROXY: http as absolute-URI requests, https through a CONNECT tunnel (insecure registry); NO_PROXY bypasses', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-proxy-'));
  const old = { HTTP_PROXY: process.env.HTTP_PROXY, HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY };
  const servers: Server[] = [];
  try {
    if (!(await makeCerts(dir))) { t.skip('openssl is missing'); return; }
    const registryHandler = (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/v2/') { res.end('{}'); return; }
      if (url.pathname.includes('/manifests/')) { sendManifest(res); return; }
      res.writeHead(404).end();
    };
    const tls = createTlsServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }, registryHandler);
    servers.push(tls);
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    a.handler = registryHandler;
    const p = await proxy({ 'plain.wharf.test:80': a.port, 'secure.wharf.test:443': (tls.address() as { port: number }).port });
    servers.push(p.server);
    process.env.HTTP_PROXY = p.url;
    process.env.HTTPS_PROXY = p.url;
    process.env.NO_PROXY = 'direct.wharf.test';
    closeAgents();
    const insecure = { registryMirrors: [], insecureRegistries: ['plain.wharf.test', 'secure.wharf.test', 'direct.wharf.test'] };
    // http: the https endpoint first (refused by the proxy's 502 to CONNECT), then plain http as an absolute URI
    const plain = await new Repository('plain.wharf.test', 'lib/app', { config: insecure }).getManifest('v1');
    assert.equal(plain.digest, sha(manifest));
    assert.ok(p.seen.includes('GET http://plain.wharf.test/v2/lib/app/manifests/v1'), JSON.stringify(p.seen));
    assert.ok(a.seen.some((s) => s.path === '/v2/lib/app/manifests/v1' && s.headers.host === 'plain.wharf.test'));
    // https: a tunnel to the TLS registry, its self-signed certificate accepted for an insecure registry
    p.seen.length = 0;
    const secure = await new Repository('secure.wharf.test', 'lib/app', { config: insecure }).getManifest('v1');
    assert.equal(secure.digest, sha(manifest));
    assert.deepEqual(p.seen, ['CONNECT secure.wharf.test:443'], 'one tunnel, kept alive for the ping and the manifest');
    // a verified registry through the same tunnel refuses the certificate
    await assert.rejects(new Repository('secure.wharf.test', 'lib/app', { config: cfg }).getManifest('v1'), /x509: /);
    // NO_PROXY: never through the proxy (the name does not resolve: Go's words for it)
    p.seen.length = 0;
    await assert.rejects(get('http://direct.wharf.test/x'), (e: unknown) => ['ENOTFOUND', 'EAI_AGAIN'].includes((e as { code?: string }).code ?? ''));
    assert.deepEqual(p.seen, []);
    // loopback: never through the proxy
    assert.equal(await text((await get(`${a.base}/v2/`)).body), '{}');
    assert.deepEqual(p.seen, []);
  } finally {
    for (const [k, v] of Object.entries(old)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    closeAgents();
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('insecure covers the origin asked for: its own redirects skip verification, a redirect to another https origin is verified', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-insecure-'));
  const servers: Server[] = [];
  try {
    if (!(await makeCerts(dir))) { t.skip('openssl is missing'); return; }
    // two https servers whose certificates nothing trusts (the test CA's and a self-signed one)
    const listen = async (cert: string, key: string, handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const s = createTlsServer({ key: await readFile(join(dir, key)), cert: await readFile(join(dir, cert)) }, handler);
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return `https://127.0.0.1:${(s.address() as { port: number }).port}`;
    };
    const other = await listen('rogue-cert.pem', 'rogue-key.pem', (_req, res) => { res.end('other'); });
    const origin = await listen('cert.pem', 'key.pem', (req, res) => {
      if (req.url === '/away') res.writeHead(302, { location: `${other}/blob` }).end();
      else if (req.url === '/here') res.writeHead(307, { location: '/blob' }).end();
      else res.end('origin');
    });
    closeAgents();
    // the origin itself, and a redirect within it: not verified, as asked
    assert.equal(await text((await request('GET', `${origin}/blob`, { insecure: true })).body), 'origin');
    assert.equal(await text((await request('GET', `${origin}/here`, { insecure: true })).body), 'origin');
    // the other origin asked for directly with insecure: reachable (its certificate is the only obstacle)
    assert.equal(await text((await request('GET', `${other}/blob`, { insecure: true })).body), 'other');
    // the redirect to it from the insecure origin: verified, refused
    await assert.rejects(request('GET', `${origin}/away`, { insecure: true, retry: null }),
      (e: unknown) => /self[- ]signed|certificate/i.test(String((e as Error).message)), 'the redirect target was not verified');
    // without insecure, the origin itself is refused too
    await assert.rejects(request('GET', `${origin}/blob`, { retry: null }), (e: unknown) => /certificate/i.test(String((e as Error).message)));
  } finally {
    closeAgents();
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  }
});
