/**
 * The registry client against a fake registry (node:http): Bearer token flow with basic credentials and
 * scope, token caching, Accept list, schema 1 refusal, tags pagination, cross-origin blob redirects without
 * credentials, docker's error wording.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { Repository } from '../../src/engine/distribution/registry.js';
import { MANIFEST_ACCEPT } from '../../src/lib/oci/mediatypes.js';
import { UnauthorizedError, InvalidParameterError } from '../../src/lib/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as const;

async function serve(h: Handler): Promise<{ server: Server; base: string; host: string }> {
  const server = createServer((req, res) => h(req, res, new URL(req.url!, 'http://x')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, base: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` };
}

const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('cfg'), size: 3 }, layers: [],
}));
const blob = Buffer.from('hello blob');
let tokenRequests: string[] = [];
let accepts: string[] = [];
let blobAuth: (string | undefined)[] = [];
let reg: Awaited<ReturnType<typeof serve>>;
let cdn: Awaited<ReturnType<typeof serve>>;

before(async () => {
  cdn = await serve((req, res) => {
    blobAuth.push(req.headers.authorization);
    res.writeHead(200, { 'content-length': blob.length }).end(blob);
  });
  reg = await serve((req, res, url) => {
    const auth = req.headers.authorization ?? '';
    if (url.pathname === '/token') {
      tokenRequests.push(`${url.searchParams.get('service')}|${url.searchParams.get('scope')}|${auth}`);
      if (auth !== `Basic ${Buffer.from('u:p').toString('base64')}` && url.searchParams.get('scope')!.includes('private')) {
        res.writeHead(401).end('{"details":"incorrect username or password"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok-${tokenRequests.length}`, expires_in: 300 }));
      return;
    }
    if (!auth.startsWith('Bearer tok-')) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.base}/token",service="fake.registry"`, 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (url.pathname === '/v2/') { res.writeHead(200).end('{}'); return; }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(url.pathname);
    if (!m) { res.writeHead(404).end(); return; }
    const [, , kind, ref] = m;
    if (kind === 'manifests') {
      accepts.push(String(req.headers.accept));
      if (ref === 'v1' || ref === sha(manifest) || ref!.startsWith('sha256:0000')) {
        res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'docker-content-digest': sha(manifest), 'content-length': manifest.length });
        res.end(req.method === 'HEAD' ? undefined : manifest);
        return;
      }
      if (ref === 'old') {
        res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' })
          .end(JSON.stringify({ schemaVersion: 1, name: 'lib/app', tag: 'old', fsLayers: [] }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      return;
    }
    if (kind === 'blobs') { res.writeHead(307, { location: `${cdn.base}/blob?sig=1` }).end(); return; }
    if (kind === 'tags') {
      if (!url.searchParams.get('last')) {
        res.writeHead(200, { link: `</v2/lib/app/tags/list?last=b&n=2>; rel="next"`, 'content-type': 'application/json' }).end('{"name":"lib/app","tags":["a","b"]}');
      } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"lib/app","tags":["c"]}');
      return;
    }
    res.writeHead(404).end();
  });
});

after(() => { reg.server.close(); cdn.server.close(); });

const cfg = { registryMirrors: [], insecureRegistries: [] };

test('bearer flow: anonymous token with pull scope, cached across requests, Accept list sent', async () => {
  tokenRequests = []; accepts = [];
  const repo = new Repository(reg.host, 'lib/app', { config: cfg });
  const m = await repo.getManifest('v1');
  assert.equal(m.kind, 'manifest');
  assert.equal(m.digest, sha(manifest));
  assert.equal(repo.baseUrl, reg.base, 'loopback falls back from https to http');
  const again = new Repository(reg.host, 'lib/app', { config: cfg });
  await again.getManifest(sha(manifest));
  assert.deepEqual(tokenRequests, ['fake.registry|repository:lib/app:pull|']);
  for (const a of accepts) for (const t of MANIFEST_ACCEPT) assert.ok(a.includes(t), `${t} in Accept`);
  const head = await repo.headManifest('v1');
  assert.equal(head?.digest, sha(manifest));
  assert.equal(await repo.headManifest('nope'), null);
});

test('bearer flow with credentials: basic auth on the token request; wrong ones refused', async () => {
  tokenRequests = [];
  const repo = new Repository(reg.host, 'private/app', { config: cfg, auth: { username: 'u', password: 'p' } });
  await assert.rejects(repo.getManifest('zzz'), /manifest unknown: manifest unknown/);
  assert.deepEqual(tokenRequests, [`fake.registry|repository:private/app:pull|Basic ${Buffer.from('u:p').toString('base64')}`]);
  const bad = new Repository(reg.host, 'private/app', { config: cfg, auth: { username: 'u', password: 'x' } });
  await assert.rejects(bad.getManifest('v1'), UnauthorizedError);
});

test('schema 1 is refused with the deprecation notice; digest references are verified', async () => {
  const repo = new Repository(reg.host, 'lib/app', { config: cfg });
  await assert.rejects(repo.getManifest('old'), (e: Error) => e instanceof InvalidParameterError && /^\[DEPRECATION NOTICE\] Docker Image Format v1/.test(e.message));
  const wrong = `sha256:${'0'.repeat(64)}`;
  await assert.rejects(repo.getManifest(wrong), (e: Error) => e.message === `manifest verification failed for digest ${wrong}`);
});

test('tags list follows Link pagination', async () => {
  const repo = new Repository(reg.host, 'lib/app', { config: cfg });
  assert.deepEqual(await repo.tags(), ['a', 'b', 'c']);
});

test('blob GET follows a cross-origin redirect without forwarding credentials', async () => {
  blobAuth = [];
  const repo = new Repository(reg.host, 'lib/app', { config: cfg });
  const got = await repo.fetchBlobBytes(sha(blob));
  assert.deepEqual(got, blob);
  assert.deepEqual(blobAuth, [undefined]);
});

test('HTTPS_PROXY is used for remote registries (CONNECT), never for loopback ones', async () => {
  const seen: string[] = [];
  const proxy = createServer((req, res) => { seen.push(`${req.method} ${req.url}`); res.writeHead(502).end(); });
  proxy.on('connect', (req, socket) => { seen.push(`CONNECT ${req.url}`); socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'); });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const old = process.env.HTTPS_PROXY;
  process.env.HTTPS_PROXY = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  try {
    const remote = new Repository('registry.wharf.test', 'x/y', { config: cfg });
    await assert.rejects(remote.getManifest('v1'));
    assert.ok(seen.includes('CONNECT registry.wharf.test:443'), `proxy saw ${JSON.stringify(seen)}`);
    const before = seen.length;
    const local = new Repository(reg.host, 'lib/app', { config: cfg });
    assert.equal((await local.getManifest('v1')).digest, sha(manifest));
    assert.equal(seen.length, before, 'loopback registry bypasses the proxy');
  } finally {
    if (old === undefined) delete process.env.HTTPS_PROXY; else process.env.HTTPS_PROXY = old;
    proxy.close();
  }
});
