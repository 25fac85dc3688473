/**
 * The registry transport against a fault-injecting registry (node:http on loopback): connection resets, 500s,
 * 429 with Retry-After, bodies that break mid-way (with and without Range support, with and without a length),
 * slow and stalled bodies, a redirect to another host, oversized manifests, token answers and error bodies, and
 * uploads that must not be retried.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Repository, PushSession } from '../../src/engine/distribution/registry.js';
import { LIMITS, RegistryHttpError, ResponseTooLargeError, setRetryPolicy } from '../../src/engine/distribution/transport.js';
import type { Digest } from '../../src/lib/digest.js';
import { fakeServer, type Fake } from '../support/fakehttp.js';
import { waitFor } from '../support/wait.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

let reg: Fake;
let cdn: Fake;
const cfg = { registryMirrors: [], insecureRegistries: [] };

const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('cfg'), size: 3 }, layers: [],
}));
const blob = randomBytes(3 << 20);
const blobDigest = sha(blob);

/** The registry part every scenario shares: /v2/ answers 200; `routes` decide the rest. */
function registry(routes: (req: IncomingMessage, res: ServerResponse, url: URL, n: number) => boolean): void {
  const counts = new Map<string, number>();
  reg.handler = (req, res, url) => {
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    const key = `${req.method} ${url.pathname}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (!routes(req, res, url, n)) res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
  };
}

const sendManifest = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'content-length': manifest.length }).end(manifest);
const count = (f: Fake, method: string, part: string) => f.seen.filter((s) => s.method === method && s.path.includes(part)).length;

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Serves `blob` from `start`, writing half of what is asked then cutting the connection when `cut`. */
function serveBlob(req: IncomingMessage, res: ServerResponse, o: { range: boolean; length: boolean; cut: boolean }): void {
  const m = o.range ? /^bytes=(\d+)-/.exec(String(req.headers.range ?? '')) : null;
  const start = m ? Number(m[1]) : 0;
  const part = blob.subarray(start);
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', etag: `"${blobDigest}"` };
  if (o.length) headers['content-length'] = part.length;
  if (m) headers['content-range'] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
  if (o.range) headers['accept-ranges'] = 'bytes';
  res.writeHead(m ? 206 : 200, headers);
  if (!o.cut) { res.end(part); return; }
  res.write(part.subarray(0, Math.floor(part.length / 2)), () => setTimeout(() => req.socket.destroy(), 20));
}

before(async () => {
  reg = await fakeServer();
  cdn = await fakeServer();
  // short backoffs for the test; Retry-After is still honoured up to maxTimeout
  setRetryPolicy({ minTimeout: 20, maxTimeout: 1500, bodyTimeout: 400 });
});
after(() => { setRetryPolicy(null); reg.server.close(); cdn.server.close(); });
beforeEach(() => { reg.seen = []; cdn.seen = []; });

test('a connection reset before the answer is retried', async () => {
  registry((req, res, url, n) => {
    if (!url.pathname.includes('/manifests/')) return false;
    if (n === 1) { req.socket.destroy(); return true; }
    sendManifest(res);
    return true;
  });
  const m = await new Repository(reg.host, 'faults/reset', { config: cfg }).getManifest('v1');
  assert.equal(m.digest, sha(manifest));
  assert.equal(count(reg, 'GET', '/manifests/v1'), 2);
});

test('500s are retried with backoff; a registry that keeps failing gives up after 5 tries with its status', async () => {
  registry((_req, res, url, n) => {
    if (url.pathname.endsWith('/manifests/flaky')) {
      if (n <= 2) { res.writeHead(500).end('oops'); return true; }
      sendManifest(res);
      return true;
    }
    if (url.pathname.endsWith('/manifests/down')) { res.writeHead(503).end(); return true; }
    return false;
  });
  const repo = new Repository(reg.host, 'faults/5xx', { config: cfg });
  assert.equal((await repo.getManifest('flaky')).digest, sha(manifest));
  assert.equal(count(reg, 'GET', '/manifests/flaky'), 3);
  await assert.rejects(repo.getManifest('down'), (e: unknown) =>
    e instanceof RegistryHttpError && e.status === 503 && /received unexpected HTTP status: 503 Service Unavailable$/.test(e.message));
  assert.equal(count(reg, 'GET', '/manifests/down'), 5, 'bounded: 1 try + 4 retries');
});

test('429 waits for Retry-After before trying again; a lasting 429 is TOOMANYREQUESTS', async () => {
  registry((_req, res, url, n) => {
    if (url.pathname.endsWith('/manifests/busy')) {
      if (n === 1) { res.writeHead(429, { 'retry-after': '1' }).end(); return true; }
      sendManifest(res);
      return true;
    }
    if (url.pathname.endsWith('/manifests/never')) { res.writeHead(429, { 'retry-after': '0' }).end(); return true; }
    return false;
  });
  const repo = new Repository(reg.host, 'faults/429', { config: cfg });
  const t0 = Date.now();
  assert.equal((await repo.getManifest('busy')).digest, sha(manifest));
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms for Retry-After: 1`);
  assert.equal(count(reg, 'GET', '/manifests/busy'), 2);
  await assert.rejects(repo.getManifest('never'), (e: unknown) =>
    e instanceof RegistryHttpError && e.status === 429 && e.errors[0]?.code === 'TOOMANYREQUESTS');
  assert.equal(count(reg, 'GET', '/manifests/never'), 5);
});

for (const c of [
  { name: 'resumes with a Range request', range: true, length: true },
  { name: 'starts over when the registry ignores Range', range: false, length: true },
  { name: 'starts over when the registry ignores Range (no length either)', range: false, length: false },
]) {
  test(`a blob body that breaks mid-way ${c.name}; the bytes are exactly the blob's`, async () => {
    registry((req, res, url, n) => {
      if (!url.pathname.endsWith(`/blobs/${blobDigest}`)) return false;
      serveBlob(req, res, { range: c.range, length: c.length, cut: n === 1 });
      return true;
    });
    const { body } = await new Repository(reg.host, 'faults/blob', { config: cfg }).fetchBlob(blobDigest);
    const got = await drain(body);
    assert.equal(got.length, blob.length);
    assert.equal(sha(got), blobDigest);
    const gets = reg.seen.filter((s) => s.method === 'GET' && s.path.includes('/blobs/'));
    // the client resumes with Range; a registry that answers 200 to it instead of 206 makes the download start over
    assert.deepEqual(gets.map((g) => g.headers.range === undefined ? 'full' : 'range'), c.range ? ['full', 'range'] : ['full', 'range', 'full']);
    assert.match(String(gets[1]!.headers.range), new RegExp(`^bytes=${blob.length / 2}-`));
  });
}

test('a slow body is read to the end; a stalled one is resumed after the body timeout', async () => {
  registry((req, res, url, n) => {
    if (url.pathname.endsWith('/blobs/slow')) {
      // 3 MiB in 24 pieces, 50 ms apart (each gap below the 400 ms body timeout)
      res.writeHead(200, { 'content-length': blob.length });
      let i = 0;
      const step = blob.length / 24;
      const tick = () => { res.write(blob.subarray(i * step, (i + 1) * step)); if (++i < 24) setTimeout(tick, 50); else res.end(); };
      tick();
      return true;
    }
    if (url.pathname.endsWith('/blobs/stall')) {
      if (n > 1) { serveBlob(req, res, { range: true, length: true, cut: false }); return true; }
      res.writeHead(200, { 'content-length': blob.length, 'accept-ranges': 'bytes', etag: `"${blobDigest}"` });
      res.write(blob.subarray(0, 1 << 20)); // then nothing: the connection stays open
      return true;
    }
    return false;
  });
  const repo = new Repository(reg.host, 'faults/slow', { config: cfg });
  const t0 = Date.now();
  assert.equal(sha(await drain((await repo.fetchBlob('slow' as Digest)).body)), blobDigest);
  assert.ok(Date.now() - t0 >= 1000, 'the trickle took its time');
  assert.equal(count(reg, 'GET', '/blobs/slow'), 1, 'a slow but moving body is not retried');
  const stalled = await drain((await repo.fetchBlob('stall' as Digest)).body);
  assert.equal(sha(stalled), blobDigest);
  const gets = reg.seen.filter((s) => s.path.endsWith('/blobs/stall'));
  assert.equal(gets.length, 2);
  assert.equal(gets[1]!.headers.range, `bytes=${1 << 20}-${blob.length - 1}`);
});

test('a blob redirected to another host gets the bytes without the registry\'s Authorization', async () => {
  const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
  reg.handler = (req, res, url) => {
    if (req.headers.authorization !== basic) { res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end(); return; }
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    if (url.pathname.endsWith(`/blobs/${blobDigest}`)) { res.writeHead(307, { location: `${cdn.base}/storage/blob?sig=abc` }).end(); return; }
    res.writeHead(404).end();
  };
  let cut = true;
  cdn.handler = (req, res) => { serveBlob(req, res, { range: true, length: true, cut }); cut = false; };
  const repo = new Repository(reg.host, 'faults/redirect', { config: cfg, auth: { username: 'u', password: 'p' } });
  const got = await drain((await repo.fetchBlob(blobDigest)).body);
  assert.equal(sha(got), blobDigest);
  assert.ok(reg.seen.some((s) => s.path.includes('/blobs/') && s.headers.authorization === basic), 'the registry got the credentials');
  assert.equal(cdn.seen.length, 2, 'the storage host was asked again (Range) after the break');
  for (const s of cdn.seen) assert.equal(s.headers.authorization, undefined, `storage request ${s.path} carried Authorization`);
  assert.match(String(cdn.seen[1]!.headers.range), /^bytes=\d+-/);
});

test('an oversized manifest is refused at the limit: by its Content-Length, or while streaming, connection dropped', async () => {
  let streamed = 0;
  let closed = false;
  registry((_req, res, url) => {
    if (url.pathname.endsWith('/manifests/declared')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': LIMITS.manifest + 1 });
      res.end(Buffer.alloc(LIMITS.manifest + 1, 0x20));
      return true;
    }
    if (url.pathname.endsWith('/manifests/endless')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const piece = Buffer.alloc(64 * 1024, 0x20);
      res.on('close', () => { closed = true; });
      const pump = () => {
        while (!closed && streamed < (256 << 20)) {
          streamed += piece.length;
          if (!res.write(piece)) { res.once('drain', pump); return; }
        }
        if (!closed) res.end();
      };
      pump();
      return true;
    }
    return false;
  });
  const repo = new Repository(reg.host, 'faults/big', { config: cfg });
  const limitMsg = new RegExp(`manifest exceeds the limit of ${LIMITS.manifest} bytes \\(4 MiB\\)`);
  await assert.rejects(repo.getManifest('declared'), (e: unknown) => e instanceof ResponseTooLargeError && limitMsg.test((e as Error).message));
  await assert.rejects(repo.getManifest('endless'), (e: unknown) => e instanceof ResponseTooLargeError && limitMsg.test((e as Error).message));
  await waitFor(() => closed, { timeout: 1000, message: 'the client to drop the connection' }).catch(() => {});
  assert.ok(closed, 'the client dropped the connection');
  assert.ok(streamed < 32 << 20, `the server could push only ${streamed} bytes before the drop (of 256 MiB)`);
});

test('an oversized token answer and an oversized error body fail clearly', async () => {
  reg.handler = (req, res, url) => {
    if (url.pathname === '/token') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"token":"');
      res.end(Buffer.alloc(LIMITS.token + 10, 0x61));
      return;
    }
    if (url.pathname.includes('/tokened/') && !req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.base}/token",service="fake"` }).end();
      return;
    }
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    if (url.pathname.includes('/huge-error/')) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(Buffer.alloc(LIMITS.errorBody + 10, 0x20));
      return;
    }
    res.writeHead(404).end();
  };
  await assert.rejects(new Repository(reg.host, 'tokened/x', { config: cfg }).getManifest('v1'),
    (e: unknown) => e instanceof ResponseTooLargeError && /token response exceeds the limit of 1048576 bytes \(1 MiB\)/.test((e as Error).message));
  await assert.rejects(new Repository(reg.host, 'huge-error/x', { config: cfg }).getManifest('v1'),
    (e: unknown) => e instanceof RegistryHttpError && e.status === 400 && /received unexpected HTTP status: 400 Bad Request \(error body larger than the 1 MiB limit, not read\)/.test((e as Error).message));
});

test('uploads are not retried: a 500 on the PUT fails after one try', async () => {
  registry((_req, res, url) => {
    if (url.pathname.endsWith('/blobs/uploads/')) { res.writeHead(202, { location: '/v2/faults/push/blobs/uploads/u1' }).end(); return true; }
    if (url.pathname.endsWith('/blobs/uploads/u1')) { res.writeHead(500).end(); return true; }
    return false;
  });
  const s = new PushSession(reg.host, 'faults/push', { config: cfg });
  const body = Buffer.from('layer bytes');
  await assert.rejects(s.uploadBlob(sha(body), body.length, () => body), (e: unknown) => e instanceof RegistryHttpError && e.status === 500);
  assert.equal(count(reg, 'PUT', '/blobs/uploads/u1'), 1);
  assert.equal(count(reg, 'POST', '/blobs/uploads/'), 1);
});

test('bearer tokens are per scope set and cached; a refused token is dropped and a fresh one fetched once', async () => {
  const issued: string[] = [];
  let refuse = new Set<string>();
  reg.handler = (req, res, url) => {
    if (url.pathname === '/token') {
      const tok = `tok-${issued.length + 1}`;
      issued.push(`${url.searchParams.getAll('scope').join(' ')}|${tok}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: tok, expires_in: 300 }));
      return;
    }
    const auth = String(req.headers.authorization ?? '');
    const tok = auth.replace(/^Bearer /, '');
    if (!auth.startsWith('Bearer ') || refuse.has(tok)) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.base}/token",service="fake"`, 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    if (url.pathname.includes('/manifests/')) { sendManifest(res); return; }
    res.writeHead(404).end();
  };
  const repo = new Repository(reg.host, 'tokens/a', { config: cfg });
  await repo.getManifest('v1');
  await repo.getManifest('v1');
  assert.deepEqual(issued, ['repository:tokens/a:pull|tok-1'], 'one token for two calls');
  // the registry stops accepting tok-1 (expired early, revoked): one new token, the call repeated once
  refuse = new Set(['tok-1']);
  assert.equal((await repo.getManifest('v1')).digest, sha(manifest));
  assert.deepEqual(issued.slice(1), ['repository:tokens/a:pull|tok-2']);
  // push asks for pull,push on its own repository
  await new PushSession(reg.host, 'tokens/a', { config: cfg }).blobExists(sha('x'));
  assert.deepEqual(issued.slice(2), ['repository:tokens/a:pull,push|tok-3']);
  // a registry that refuses every token: one repeat, then the 401 as docker words it
  refuse = new Set(['tok-2', 'tok-4', 'tok-5']);
  await assert.rejects(repo.getManifest('v1'), (e: unknown) => e instanceof RegistryHttpError && e.status === 401 && e.message === 'unauthorized: authentication required');
  assert.equal(issued.length, 4, issued.join(','));
});

test('an identity token is exchanged with the refresh-token grant; token fetches are retried on 503', async () => {
  const grants: string[] = [];
  let tokenCalls = 0;
  reg.handler = (req, res, url) => {
    if (url.pathname === '/token') {
      tokenCalls++;
      let body = '';
      req.on('data', (c: Buffer) => { body += c; });
      req.on('end', () => {
        if (tokenCalls === 1) { res.writeHead(503).end(); return; }
        grants.push(`${req.method} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"from-refresh","expires_in":300}');
      });
      return;
    }
    if (req.headers.authorization !== 'Bearer from-refresh') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.base}/token",service="fake"` }).end();
      return;
    }
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    if (url.pathname.includes('/manifests/')) { sendManifest(res); return; }
    res.writeHead(404).end();
  };
  const repo = new Repository(reg.host, 'identity/app', { config: cfg, auth: { identitytoken: 'refresh-me' } });
  assert.equal((await repo.getManifest('v1')).digest, sha(manifest));
  assert.equal(tokenCalls, 2, 'the 503 was retried');
  assert.equal(grants.length, 1);
  const form = new URLSearchParams(grants[0]!.slice('POST '.length));
  assert.equal(grants[0]!.split(' ')[0], 'POST');
  assert.equal(form.get('grant_type'), 'refresh_token');
  assert.equal(form.get('refresh_token'), 'refresh-me');
  assert.equal(form.get('scope'), 'repository:identity/app:pull');
  assert.equal(form.get('service'), 'fake');
});
