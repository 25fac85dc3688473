import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SearchService, parseSearchFilters, splitSearchTerm } from '../../src/engine/distribution/search.js';
import { login, registryHostOf } from '../../src/engine/distribution/auth.js';
import { SystemError, UnauthorizedError } from '../../src/lib/errors.js';

type H = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(h: H): Promise<{ host: string; close(): Promise<void>; seen: string[] }> {
  const seen: string[] = [];
  const srv = createServer((req, res) => { seen.push(`${req.method} ${req.url}`); h(req, res); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return { host: `127.0.0.1:${port}`, seen, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

const cfg = { insecureRegistries: [] as string[] };

test('search terms split into index and remote name like dockerd', () => {
  assert.deepEqual(splitSearchTerm('busybox'), { index: 'docker.io', remote: 'busybox' });
  assert.deepEqual(splitSearchTerm('library/busybox'), { index: 'docker.io', remote: 'library/busybox' });
  assert.deepEqual(splitSearchTerm('localhost/busy'), { index: 'localhost', remote: 'busy' });
  assert.deepEqual(splitSearchTerm('127.0.0.1:5000/lab/ng'), { index: '127.0.0.1:5000', remote: 'lab/ng' });
  assert.deepEqual(splitSearchTerm('registry.example.com/x'), { index: 'registry.example.com', remote: 'x' });
});

test('search filters are validated with dockerd messages', () => {
  assert.deepEqual(parseSearchFilters({ 'is-official': ['true'], stars: ['3', '10', '2'] }), { official: true, stars: 10 });
  assert.deepEqual(parseSearchFilters({ 'is-automated': ['false'] }), { automated: false });
  assert.throws(() => parseSearchFilters({ foo: ['1'] }), /^InvalidParameterError: Invalid filter 'foo'$|Invalid filter 'foo'/);
  assert.throws(() => parseSearchFilters({ 'is-official': ['yes'] }), /Invalid filter 'is-official=\[yes\]'/);
  assert.throws(() => parseSearchFilters({ stars: ['many'] }), /Invalid filter 'stars=many'/);
});

test('limit out of range and schemes are refused before any request', async () => {
  const s = new SearchService(cfg);
  await assert.rejects(s.search({ term: 'busybox', limit: 101 }), /Limit 101 is outside the range of \[1, 100\]/);
  await assert.rejects(s.search({ term: 'busybox', limit: -1 }), /Limit -1 is outside the range/);
  await assert.rejects(s.search({ term: 'http://x/busybox' }), /Invalid repository name/);
});

test('a private registry with v1 search is asked /v1/search with the limit; filters apply to the answer', async () => {
  const srv = await serve((req, res) => {
    if (req.url === '/v1/_ping') { res.end('true'); return; }
    if (req.url?.startsWith('/v1/search')) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ query: 'busy', num_results: 3, results: [
        { name: 'library/busybox', description: 'tiny', star_count: 50, is_official: true, is_automated: false },
        { name: 'me/busy', description: '', star_count: 1, is_official: false, is_automated: true },
        { name: 'you/busy', description: 'd', star_count: 7, is_official: false, is_automated: false },
      ] }));
      return;
    }
    res.statusCode = 404; res.end();
  });
  try {
    const s = new SearchService(cfg);
    const all = await s.search({ term: `${srv.host}/busy`, limit: 7 });
    assert.deepEqual(all.map((r) => r.name), ['library/busybox', 'me/busy', 'you/busy']);
    assert.deepEqual(Object.keys(all[0]!), ['star_count', 'is_official', 'name', 'is_automated', 'description']);
    assert.ok(srv.seen.includes('GET /v1/search?q=busy&n=7'), srv.seen.join(','));
    assert.deepEqual((await s.search({ term: `${srv.host}/busy`, filters: { stars: ['5'] } })).map((r) => r.name), ['library/busybox', 'you/busy']);
    assert.deepEqual((await s.search({ term: `${srv.host}/busy`, filters: { 'is-automated': ['true'] } })).map((r) => r.name), ['me/busy']);
    assert.deepEqual((await s.search({ term: `${srv.host}/busy`, filters: { 'is-official': ['false'], stars: ['2'] } })).map((r) => r.name), ['you/busy']);
    assert.ok(srv.seen.includes('GET /v1/search?q=busy&n=25'), 'default limit 25');
  } finally { await srv.close(); }
});

test('a v2-only registry falls back to the catalog (paginated, basic auth), filtered by the term', async () => {
  const repos = ['alpha/busybox', 'lab/nginx', 'lab/busy-tools', 'zeta'];
  const srv = await serve((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}` && req.url?.startsWith('/v2/')) {
      res.statusCode = 401; res.setHeader('www-authenticate', 'Basic realm="r"'); res.end(); return;
    }
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/v2/_catalog') {
      const last = u.searchParams.get('last');
      const start = last ? repos.indexOf(last) + 1 : 0;
      const page = repos.slice(start, start + 2);
      if (start + 2 < repos.length) res.setHeader('link', `</v2/_catalog?last=${page[page.length - 1]}&n=2>; rel="next"`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ repositories: page }));
      return;
    }
    res.statusCode = 404; res.end('404 page not found');
  });
  try {
    const s = new SearchService(cfg);
    const found = await s.search({ term: `${srv.host}/BUSY`, auth: { username: 'u', password: 'p' } });
    assert.deepEqual(found.map((r) => r.name), [`${srv.host}/alpha/busybox`, `${srv.host}/lab/busy-tools`]);
    assert.deepEqual(found[0], { star_count: 0, is_official: false, name: `${srv.host}/alpha/busybox`, is_automated: false, description: '' });
    assert.equal((await s.search({ term: `${srv.host}/`, limit: 3, auth: { username: 'u', password: 'p' } })).length, 3);
    await assert.rejects(s.search({ term: `${srv.host}/busy` }), (e: Error) => e instanceof SystemError && !(e instanceof UnauthorizedError) && /no basic auth credentials/.test(e.message));
    await assert.rejects(s.search({ term: `${srv.host}/busy`, auth: { username: 'u', password: 'bad' } }), /unauthorized/);
  } finally { await srv.close(); }
});

test('an unreachable registry gives dockerd\'s endpoint message', async () => {
  const srv = await serve(() => undefined);
  const host = srv.host;
  await srv.close();
  await assert.rejects(new SearchService(cfg).search({ term: `${host}/x` }),
    (e: Error) => {
      assert.match(e.message, new RegExp(`^invalid registry endpoint "https://${host}/v1/". HTTPS attempt: Get "https://${host}/v1/_ping": dial tcp ${host}: connect: connection refused. HTTP attempt: Get "http://${host}/v1/_ping": dial tcp ${host}: connect: connection refused$`));
      return true;
    });
});

test('login: Basic registry accepts good credentials and reports dockerd\'s failure otherwise', async () => {
  const good = `Basic ${Buffer.from('u:p').toString('base64')}`;
  const srv = await serve((req, res) => {
    if (req.url === '/v2/' && req.headers.authorization === good) { res.end('{}'); return; }
    res.statusCode = 401; res.setHeader('www-authenticate', 'Basic realm="r"'); res.end();
  });
  try {
    assert.deepEqual(await login({ username: 'u', password: 'p', serveraddress: srv.host }, cfg), { IdentityToken: '', Status: 'Login Succeeded' });
    assert.deepEqual(await login({ auth: Buffer.from('u:p').toString('base64'), serveraddress: `http://${srv.host}` }, cfg), { IdentityToken: '', Status: 'Login Succeeded' });
    await assert.rejects(login({ username: 'u', password: 'x', serveraddress: srv.host }, cfg),
      new RegExp(`^Error: login attempt to http://${srv.host}/v2/ failed with status: 401 Unauthorized$|login attempt to http://${srv.host.replace(/\./g, '\\.')}/v2/ failed with status: 401 Unauthorized`));
  } finally { await srv.close(); }
});

test('login: Bearer registry exchanges credentials for a token and returns the refresh token as identity', async () => {
  let srvHost = '';
  const srv = await serve((req, res) => {
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/token') {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) { res.statusCode = 401; res.end('{"details":"incorrect username or password"}'); return; }
      assert.equal(u.searchParams.get('service'), 'reg');
      assert.equal(u.searchParams.get('offline_token'), 'true');
      assert.equal(u.searchParams.get('account'), 'u');
      res.end(JSON.stringify({ token: 'T1', refresh_token: 'R1' }));
      return;
    }
    if (u.pathname === '/v2/' && req.headers.authorization === 'Bearer T1') { res.end('{}'); return; }
    res.statusCode = 401;
    res.setHeader('www-authenticate', `Bearer realm="http://${srvHost}/token",service="reg"`);
    res.end();
  });
  srvHost = srv.host;
  try {
    assert.deepEqual(await login({ username: 'u', password: 'p', serveraddress: srv.host }, cfg), { IdentityToken: 'R1', Status: 'Login Succeeded' });
    await assert.rejects(login({ username: 'u', password: 'no', serveraddress: srv.host }, cfg), /unauthorized: incorrect username or password/);
  } finally { await srv.close(); }
});

test('login server addresses name the registry host; empty is Docker Hub', () => {
  assert.equal(registryHostOf(undefined), 'index.docker.io');
  assert.equal(registryHostOf('https://index.docker.io/v1/'), 'index.docker.io');
  assert.equal(registryHostOf('localhost:5000'), 'localhost:5000');
  assert.equal(registryHostOf('http://127.0.0.1:5002/'), '127.0.0.1:5002');
});
