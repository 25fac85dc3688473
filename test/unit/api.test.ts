import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Server } from 'node:http';
import type { Backends, Filters, ImageBackend, PullOptions, ImportOptions, SystemBackend } from '../../src/api/backend.js';
import { createApiServer, createRequestListener, compareVersions, parseTarget, splitVersion } from '../../src/api/server.js';
import { createServer } from 'node:http';
import { boolValue, decodeRegistryAuth, sendJson, Router } from '../../src/api/router.js';
import { parseFilters } from '../../src/lib/filters.js';
import { ConflictError, InvalidParameterError, NotFoundError } from '../../src/lib/errors.js';
import type { ProgressSink } from '../../src/lib/jsonmessage.js';
import { createLogger } from '../../src/lib/log.js';
import type { SystemInfo, SystemVersion } from '../../src/wire/index.js';

interface Call { fn: string; args: unknown[] }

const calls: Call[] = [];
const logs: string[] = [];

const images: ImageBackend = {
  async pull(ref: string, opts: PullOptions, progress: ProgressSink) {
    calls.push({ fn: 'pull', args: [ref, { ...opts, signal: undefined }] });
    if (ref.includes('nope')) throw new NotFoundError(`manifest for ${ref} not found: manifest unknown`);
    if (ref.includes('midway')) {
      progress({ status: 'Pulling from library/midway', id: 'latest' });
      throw new Error('connection reset by peer');
    }
    progress({ status: 'Pulling from library/busybox', id: 'latest' });
    progress({ status: 'Digest: sha256:' + 'a'.repeat(64) });
    progress({ status: 'Status: Downloaded newer image for ' + ref });
  },
  async importImage(tar: Readable, opts: ImportOptions, progress: ProgressSink) {
    let n = 0;
    for await (const c of tar as AsyncIterable<Buffer>) n += c.length;
    calls.push({ fn: 'import', args: [n, opts] });
    progress({ status: 'sha256:' + 'b'.repeat(64) });
    return 'sha256:' + 'b'.repeat(64);
  },
  async bootstrap(name: string, progress: ProgressSink) {
    calls.push({ fn: 'bootstrap', args: [name] });
    progress({ status: `Bootstrapping ${name}` });
    return 'sha256:' + 'c'.repeat(64);
  },
  async list(opts: { all: boolean; filters: Filters; sharedSize?: boolean }) {
    calls.push({ fn: 'list', args: [opts] });
    return [];
  },
  async inspect(name: string) {
    calls.push({ fn: 'inspect', args: [name] });
    if (name === 'missing') throw new NotFoundError(`No such image: ${name}`);
    if (name === 'bad') throw new InvalidParameterError('invalid reference format');
    if (name === 'boom') throw new Error('disk on fire');
    return { Id: 'sha256:' + 'd'.repeat(64), RepoTags: [name] };
  },
  async history(name: string) {
    calls.push({ fn: 'history', args: [name] });
    return [{ Id: 'sha256:x', Created: 1, CreatedBy: 'sh', Tags: [name], Size: 3, Comment: '' }];
  },
  async tag(source: string, repo: string, tag: string | undefined) {
    calls.push({ fn: 'tag', args: [source, repo, tag] });
  },
  async remove(name: string, opts: { force: boolean; noPrune: boolean }) {
    calls.push({ fn: 'remove', args: [name, opts] });
    if (name === 'busy') throw new ConflictError('conflict: unable to delete busy (must be forced)');
    return [{ Untagged: name }];
  },
  async prune(filters: Filters) {
    calls.push({ fn: 'prune', args: [filters] });
    return { ImagesDeleted: null, SpaceReclaimed: 0 };
  },
};

const system: SystemBackend = {
  // partial answers: the routes pass them through untouched
  async version() { return { Version: '0.1.0', ApiVersion: '1.41' } as unknown as SystemVersion; },
  async info() { return { ID: 'X', Images: 7 } as unknown as SystemInfo; },
  async df() { return { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] }; },
};

const backends: Backends = { images, system };

let dir: string;
let sock: string;
let server: Server;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-api-'));
  sock = join(dir, 'api.sock');
  server = createApiServer(backends, { log: createLogger({ level: 'debug', write: (l) => { logs.push(l); } }) });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

interface Resp { status: number; headers: Record<string, string | string[] | undefined>; body: string; rawHeaders: string[] }

function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), rawHeaders: res.rawHeaders,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function lastCall(fn: string): Call {
  const c = [...calls].reverse().find((x) => x.fn === fn);
  assert.ok(c, `expected a call to ${fn}`);
  return c;
}

test('HEAD and GET /_ping carry docker headers', async () => {
  const head = await call('HEAD', '/_ping');
  assert.equal(head.status, 200);
  assert.equal(head.headers['api-version'], '1.41');
  assert.equal(head.headers['docker-experimental'], 'false');
  assert.equal(head.headers['ostype'], 'linux');
  assert.equal(head.headers['builder-version'], '1');
  assert.equal(head.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  assert.equal(head.headers['pragma'], 'no-cache');
  assert.equal(head.headers['content-length'], '0');
  assert.match(String(head.headers['server']), /^Wharf\/\d+\.\d+\.\d+ \(linux\)$/);
  // header names spelled as dockerd's trace spells them
  assert.ok(head.rawHeaders.includes('Api-Version'));
  assert.ok(head.rawHeaders.includes('Ostype'));
  const get = await call('GET', '/_ping');
  assert.equal(get.status, 200);
  assert.equal(get.body, 'OK');
  assert.equal(get.headers['content-type'], 'text/plain; charset=utf-8');
  const versioned = await call('GET', '/v1.41/_ping');
  assert.equal(versioned.body, 'OK');
});

test('the common headers go out on every kind of head, on API servers and on plain node:http servers', async () => {
  const extraRoutes = [(r: Router) => {
    r.get('/t/json', ({ res }) => { sendJson(res, 200, { a: 1 }); });
    r.get('/t/implicit', ({ res }) => { res.setHeader('X-Mine', 'm'); res.statusCode = 202; res.end('body'); });
    r.get('/t/stream', ({ res }) => { res.setHeader('Content-Type', 'text/plain'); res.write('a'); res.end('b'); });
    r.get('/t/reason', ({ res }) => { res.writeHead(200, 'Fine', { 'X-Mine': 'r' }); res.end(); });
    r.get('/t/raw', ({ res }) => { res.writeHead(200, ['X-Mine', 'raw', 'Content-Length', '0']); res.end(); });
  }];
  const plainSock = join(dir, 'plain.sock');
  const plain = createServer(createRequestListener(backends, { extraRoutes }));
  const api = createApiServer(backends, { extraRoutes });
  const apiSock = join(dir, 'extra.sock');
  await new Promise<void>((resolve) => plain.listen(plainSock, resolve));
  await new Promise<void>((resolve) => api.listen(apiSock, resolve));
  try {
    for (const s of [apiSock, plainSock]) {
      const get = (path: string) => new Promise<{ status: number; message: string; raw: string[]; body: string }>((resolve, reject) => {
        request({ socketPath: s, path }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => { body += c; });
          res.on('end', () => resolve({ status: res.statusCode!, message: res.statusMessage!, raw: res.rawHeaders, body }));
        }).on('error', reject).end();
      });
      for (const [path, status, mine] of [['/t/json', 200, null], ['/t/implicit', 202, 'm'], ['/t/stream', 200, null], ['/t/reason', 200, 'r'], ['/t/raw', 200, 'raw'], ['/nothing', 404, null]] as const) {
        const r = await get(path);
        assert.equal(r.status, status, `${s} ${path}`);
        const names = r.raw.filter((_, i) => i % 2 === 0);
        const value = (n: string) => r.raw[r.raw.indexOf(n) + 1];
        // dockerd's spelling, each once, the API's first
        for (const n of ['Api-Version', 'Docker-Experimental', 'Ostype', 'Server']) assert.equal(names.filter((x) => x === n).length, 1, `${s} ${path} ${n}: ${names.join(',')}`);
        assert.equal(value('Api-Version'), '1.41');
        assert.equal(value('Ostype'), 'linux');
        assert.match(value('Server')!, /^Wharf\/\S+ \(linux\)$/);
        if (mine !== null) assert.equal(value('X-Mine'), mine, `${s} ${path}`);
        if (path === '/t/reason') assert.equal(r.message, 'Fine');
        if (path === '/t/stream') { assert.equal(r.body, 'ab'); assert.equal(value('Content-Type'), 'text/plain'); }
        if (path === '/t/json') assert.deepEqual(JSON.parse(r.body), { a: 1 });
      }
    }
  } finally {
    await new Promise<void>((resolve) => plain.close(() => resolve()));
    await new Promise<void>((resolve) => api.close(() => resolve()));
  }
});

test('version prefix: stripped, too new and too old rejected with 400', async () => {
  const ok = await call('GET', '/v1.41/version');
  assert.equal(ok.status, 200);
  assert.deepEqual(JSON.parse(ok.body), { Version: '0.1.0', ApiVersion: '1.41' });
  assert.ok(ok.body.endsWith('\n'));
  const old = await call('GET', '/v1.24/info');
  assert.equal(old.status, 200);
  const unprefixed = await call('GET', '/info');
  assert.equal(JSON.parse(unprefixed.body).Images, 7);

  const tooNew = await call('GET', '/v1.99/version');
  assert.equal(tooNew.status, 400);
  assert.equal(tooNew.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(tooNew.body), { message: 'client version 1.99 is too new. Maximum supported API version is 1.41' });
  const tooOld = await call('GET', '/v1.12/version');
  assert.equal(tooOld.status, 400);
  assert.match(JSON.parse(tooOld.body).message, /^client version 1\.12 is too old\. Minimum supported API version is 1\.24/);
  const pingNew = await call('GET', '/v1.50/_ping');
  assert.equal(pingNew.status, 400);
});

test('compareVersions and splitVersion', () => {
  assert.equal(compareVersions('1.41', '1.41'), 0);
  assert.equal(compareVersions('1.9', '1.41'), -1);
  assert.equal(compareVersions('1.100', '1.41'), 1);
  assert.deepEqual(splitVersion('/v1.41/images/json'), { version: '1.41', path: '/images/json' });
  assert.deepEqual(splitVersion('/images/json'), { version: null, path: '/images/json' });
  assert.deepEqual(splitVersion('/version'), { version: null, path: '/version' });
});

test('parseTarget: the path and query WHATWG URL gives, plain paths split without a URL', () => {
  const targets = ['/v1.41/containers/json?all=1&filters=%7B%22a%22%3A%7B%22b%22%3Atrue%7D%7D', '/_ping', '/', '/v1.41/images/a%2Fb/json',
    '/v1.41/containers/../images/json', '/v1.41/x/%2e%2E/y', '/a/./b', '/a/b/.', '/a b/c', '/a/"q"', '/a?b=1#frag', '/a#b?c', '/a/%zz/b',
    '//x/y', '/v1.41/images/localhost:5000/r:tag/json', "/a/b'c/(d)", '/a/.hidden/..x', '/a/..'];
  for (const t of targets) {
    const u = new URL(`http://localhost${t}`);
    const got = parseTarget(t);
    assert.ok(got, t);
    assert.equal(got.pathname, u.pathname, t);
    assert.equal(got.query.toString(), u.searchParams.toString(), t);
  }
});

test('Router: routes indexed by their first segment still match in registration order, parameters first included', () => {
  const r = new Router();
  const hit = (name: string) => () => { throw new Error(name); };
  r.get('/images/json', hit('list'));
  r.get('/{any}/json', hit('any'));
  r.get('/images/{name*}/json', hit('image'));
  r.post('/images/json', hit('post'));
  const which = (m: string, p: string) => {
    const found = r.match(m, p);
    if (!found) return null;
    try { void found.handler({} as never); } catch (e) { return [(e as Error).message, found.params]; }
    return null;
  };
  assert.deepEqual(which('GET', '/images/json'), ['list', {}]);
  assert.deepEqual(which('GET', '/volumes/json'), ['any', { any: 'volumes' }]);
  assert.deepEqual(which('GET', '/images/a/b/json'), ['image', { name: 'a/b' }]);
  assert.deepEqual(which('POST', '/images/json'), ['post', {}]);
  assert.equal(which('POST', '/volumes/json'), null);
  r.post('/{any}/json', hit('late'));
  assert.deepEqual(which('POST', '/volumes/json'), ['late', { any: 'volumes' }], 'a route added after a lookup is found');
});

test('unknown route → 404 page not found', async () => {
  const r = await call('GET', '/v1.41/nothing/here');
  assert.equal(r.status, 404);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.body, '{"message":"page not found"}\n');
  const wrongMethod = await call('PUT', '/v1.41/images/json');
  assert.equal(wrongMethod.status, 404);
});

test('typed errors map to status and {"message"} body', async () => {
  const nf = await call('GET', '/v1.41/images/missing/json');
  assert.equal(nf.status, 404);
  assert.equal(nf.body, '{"message":"No such image: missing"}\n');
  assert.equal(nf.headers['api-version'], '1.41');
  const bad = await call('GET', '/v1.41/images/bad/json');
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.body).message, 'invalid reference format');
  const boom = await call('GET', '/v1.41/images/boom/json');
  assert.equal(boom.status, 500);
  assert.equal(JSON.parse(boom.body).message, 'disk on fire');
  const conflict = await call('DELETE', '/v1.41/images/busy');
  assert.equal(conflict.status, 409);
  assert.match(JSON.parse(conflict.body).message, /^conflict: unable to delete busy/);
  const badFilter = await call('GET', '/v1.41/images/json?filters=%7Bnot-json');
  assert.equal(badFilter.status, 400);
  assert.match(JSON.parse(badFilter.body).message, /^invalid filter/);
});

test('image names with slashes route by suffix', async () => {
  const r = await call('GET', '/v1.41/images/localhost:5002/library/busybox/json');
  assert.equal(r.status, 200);
  assert.deepEqual(lastCall('inspect').args, ['localhost:5002/library/busybox']);
  const h = await call('GET', '/v1.41/images/localhost:5002/lab/nginx:v3/history');
  assert.equal(h.status, 200);
  assert.deepEqual(lastCall('history').args, ['localhost:5002/lab/nginx:v3']);
  const t = await call('POST', '/v1.41/images/localhost:5002/library/busybox/tag?repo=docker.io%2Flibrary%2Fbusybox&tag=latest');
  assert.equal(t.status, 201);
  assert.equal(t.body, '');
  assert.deepEqual(lastCall('tag').args, ['localhost:5002/library/busybox', 'docker.io/library/busybox', 'latest']);
  const untagged = await call('POST', '/v1.41/images/busybox/tag?repo=bb');
  assert.equal(untagged.status, 201);
  assert.deepEqual(lastCall('tag').args, ['busybox', 'bb', undefined]);
  const d = await call('DELETE', '/v1.41/images/localhost:5002/lab/nginx:v3?force=1&noprune=true');
  assert.equal(d.status, 200);
  assert.deepEqual(JSON.parse(d.body), [{ Untagged: 'localhost:5002/lab/nginx:v3' }]);
  assert.deepEqual(lastCall('remove').args, ['localhost:5002/lab/nginx:v3', { force: true, noPrune: true }]);
  const escaped = await call('GET', '/v1.41/images/sha256%3A' + 'e'.repeat(8) + '/json');
  assert.equal(escaped.status, 200);
  assert.deepEqual(lastCall('inspect').args, ['sha256:' + 'e'.repeat(8)]);
});

test('query parsing: bools and filters', async () => {
  await call('GET', '/v1.41/images/json?all=1&filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D');
  // filters are lib/filters.ts's (objects without a prototype): compared as plain data
  const args = (fn: string) => JSON.parse(JSON.stringify(lastCall(fn).args)) as unknown;
  assert.deepEqual(args('list'), [{ all: true, filters: { dangling: ['true'] }, sharedSize: false }]);
  await call('GET', '/v1.41/images/json?all=0&shared-size=true');
  assert.deepEqual(args('list'), [{ all: false, filters: {}, sharedSize: true }]);
  await call('GET', '/v1.41/images/json?all=false&filters=%7B%22reference%22%3A%5B%22busybox%22%5D%7D');
  assert.deepEqual(args('list'), [{ all: false, filters: { reference: ['busybox'] }, sharedSize: false }]);
  await call('DELETE', '/v1.41/images/x?force=0');
  assert.deepEqual(lastCall('remove').args, ['x', { force: false, noPrune: false }]);
  const pr = await call('POST', '/v1.41/images/prune?filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%2C%22label%22%3A%7B%22a%3Db%22%3Atrue%2C%22c%22%3Afalse%7D%7D');
  assert.equal(pr.status, 200);
  assert.deepEqual(JSON.parse(pr.body), { ImagesDeleted: null, SpaceReclaimed: 0 });
  // every key counts, whatever its boolean (Go's filters.Args.Get lists the map's keys): "c":false is a filter too
  assert.deepEqual(args('prune'), [{ dangling: ['false'], label: ['a=b', 'c'] }]);

  const q = (s: string) => new URLSearchParams(s);
  assert.equal(boolValue(q('a=1'), 'a'), true);
  assert.equal(boolValue(q('a=true'), 'a'), true);
  assert.equal(boolValue(q('a=TRUE'), 'a'), true);
  assert.equal(boolValue(q('a=0'), 'a'), false);
  assert.equal(boolValue(q('a=no'), 'a'), false);
  assert.equal(boolValue(q('a='), 'a'), false);
  assert.equal(boolValue(q(''), 'a'), false);
  assert.deepEqual({ ...parseFilters('') }, {});
  assert.deepEqual({ ...parseFilters('{"since":{"busybox":true}}') }, { since: ['busybox'] });
  assert.throws(() => parseFilters('[1]'), InvalidParameterError);
});

test('X-Registry-Auth is decoded (base64url JSON) and never logged', async () => {
  const cred = { username: 'u', password: 'p+/?=secret', serveraddress: 'localhost:5002' };
  const header = Buffer.from(JSON.stringify(cred)).toString('base64url');
  const r = await call('POST', '/v1.41/images/create?fromImage=localhost%3A5002%2Flibrary%2Fbusybox&tag=latest', {
    headers: { 'X-Registry-Auth': header },
  });
  assert.equal(r.status, 200);
  const [ref, opts] = lastCall('pull').args as [string, PullOptions];
  assert.equal(ref, 'localhost:5002/library/busybox:latest');
  assert.deepEqual(opts.auth, cred);
  assert.ok(!logs.some((l) => l.includes(header) || l.includes('secret')), 'credentials must not be logged');
  assert.ok(logs.some((l) => l.includes('POST /v1.41/images/create')), 'requests are logged in debug mode');

  await call('POST', '/v1.41/images/create?fromImage=busybox&tag=latest', { headers: { 'X-Registry-Auth': 'e30=' } });
  assert.deepEqual((lastCall('pull').args[1] as PullOptions).auth, {});
  // standard base64 with padding is accepted too
  const std = Buffer.from(JSON.stringify({ username: 'v', password: 'w' })).toString('base64');
  await call('POST', '/v1.41/images/create?fromImage=busybox&tag=1', { headers: { 'X-Registry-Auth': std } });
  assert.deepEqual((lastCall('pull').args[1] as PullOptions).auth, { username: 'v', password: 'w' });
  assert.equal(decodeRegistryAuth(undefined), undefined);
  assert.deepEqual(decodeRegistryAuth('!!!not base64 json'), {});
});

test('pull streams one JSON object + CRLF per message', async () => {
  const r = await call('POST', '/v1.41/images/create?fromImage=busybox&tag=latest&platform=linux%2Farm64');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  const lines = r.body.split('\r\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, 3);
  assert.deepEqual(JSON.parse(lines[0]!), { status: 'Pulling from library/busybox', id: 'latest' });
  assert.equal(lines[0], '{"status":"Pulling from library/busybox","id":"latest"}');
  assert.equal(JSON.parse(lines[2]!).status, 'Status: Downloaded newer image for busybox:latest');
  const opts = lastCall('pull').args[1] as PullOptions;
  assert.equal(opts.platform, 'linux/arm64');
  assert.equal(opts.allTags, undefined);

  await call('POST', '/v1.41/images/create?fromImage=busybox&tag=sha256%3A' + 'f'.repeat(64));
  assert.equal(lastCall('pull').args[0], 'busybox@sha256:' + 'f'.repeat(64));
  await call('POST', '/v1.41/images/create?fromImage=localhost%3A5002%2Fbusybox&tag=');
  assert.equal(lastCall('pull').args[0], 'localhost:5002/busybox');
  assert.equal((lastCall('pull').args[1] as PullOptions).allTags, true);
});

test('pull error before streaming → real status; after → errorDetail line with 200', async () => {
  const early = await call('POST', '/v1.41/images/create?fromImage=localhost%3A5002%2Flibrary%2Fnope&tag=1');
  assert.equal(early.status, 404);
  assert.equal(early.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(early.body), { message: 'manifest for localhost:5002/library/nope:1 not found: manifest unknown' });

  const late = await call('POST', '/v1.41/images/create?fromImage=midway&tag=latest');
  assert.equal(late.status, 200);
  const lines = late.body.split('\r\n').filter((l) => l !== '');
  assert.equal(lines.length, 2);
  assert.deepEqual(JSON.parse(lines[1]!), { errorDetail: { message: 'connection reset by peer' }, error: 'connection reset by peer' });

  const neither = await call('POST', '/v1.41/images/create');
  assert.equal(neither.status, 400);
});

test('import from the request body streams the new image ID', async () => {
  const body = Buffer.alloc(3000, 7);
  const r = await call('POST', '/v1.41/images/create?fromSrc=-&repo=imported%3A1&message=hi&changes=CMD%20sh&changes=ENV%20A%3Db', {
    headers: { 'Content-Type': 'text/plain' }, body,
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, `{"status":"sha256:${'b'.repeat(64)}"}\r\n`);
  const [n, opts] = lastCall('import').args as [number, ImportOptions];
  assert.equal(n, 3000);
  assert.deepEqual(opts, { source: '-', repo: 'imported:1', message: 'hi', changes: ['CMD sh', 'ENV A=b'] });
});

test('bootstrap streams progress and the image ID', async () => {
  const r = await call('POST', '/v1.41/images/bootstrap?name=busybox');
  assert.equal(r.status, 200);
  const lines = r.body.split('\r\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  assert.deepEqual(lines, [{ status: 'Bootstrapping busybox' }, { aux: { ID: 'sha256:' + 'c'.repeat(64) } }]);
  const missing = await call('POST', '/v1.41/images/bootstrap');
  assert.equal(missing.status, 400);
});

test('system routes return backend JSON', async () => {
  const df = await call('GET', '/v1.41/system/df');
  assert.equal(df.status, 200);
  assert.deepEqual(JSON.parse(df.body).BuildCache, []);
  const hist = await call('GET', '/v1.41/images/busybox/history');
  assert.equal(JSON.parse(hist.body)[0].CreatedBy, 'sh');
});

test('extra routes are served after the built-in ones; no request timeout', async () => {
  const s2 = createApiServer(backends, {
    extraRoutes: [(r) => r.get('/containers/{id}/json', ({ res, params }) => sendJson(res, 200, { Id: params.id }))],
  });
  assert.equal(s2.requestTimeout, 0);
  assert.equal(server.requestTimeout, 0);
  const sock2 = join(dir, 'api2.sock');
  await new Promise<void>((resolve) => s2.listen(sock2, resolve));
  try {
    const r = await new Promise<string>((resolve, reject) => {
      const req = request({ socketPath: sock2, path: '/v1.41/containers/c1/json' }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => { b += c.toString(); });
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(JSON.parse(r), { Id: 'c1' });
  } finally {
    await new Promise<void>((resolve) => s2.close(() => resolve()));
  }
  const without = await call('GET', '/v1.41/containers/c1/json');
  assert.equal(without.status, 404);
});
