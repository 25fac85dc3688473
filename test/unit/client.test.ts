/** EngineClient against a fake Engine API on a temporary unix socket. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient, ConnectionError, isDaemonError } from '../../src/client/client.js';
import { JSONValueSplitter } from '../../src/client/jsonstream.js';
import { parseHost, resolveHost } from '../../src/client/host.js';
import { credentialsFor, encodeAuthHeader } from '../../src/client/auth.js';
import { NotFoundError, ConflictError } from '../../src/lib/errors.js';

let dir: string;
let sock: string;
let server: Server;
let serverVersion = '1.40';
const seen: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-client-test-'));
  sock = join(dir, 'api.sock');
  server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const url = req.url!;
    if (url === '/_ping') {
      res.writeHead(200, { 'Api-Version': serverVersion, 'Ostype': 'linux', 'Content-Length': 0 });
      res.end();
      return;
    }
    const m = /^\/v[\d.]+(\/[^?]*)/.exec(url);
    const path = m?.[1] ?? '';
    if (path === '/images/json') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('[{"Id":"sha256:abc","RepoTags":["a:1"],"RepoDigests":[],"Created":1,"Size":2,"SharedSize":-1,"Containers":-1,"ParentId":"","Labels":null}]');
    } else if (path === '/images/nosuch/json') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"message":"No such image: nosuch:latest"}\n');
    } else if (path === '/images/busy/json') {
      res.writeHead(409, { 'Content-Type': 'text/plain' });
      res.end('in use\n');
    } else if (path === '/images/create') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      // CRLF delimiters, a value split across writes, two values on one line
      res.write('{"status":"Pulling from library/busybox","id":"latest"}\r\n{"status":"Dig');
      setTimeout(() => {
        res.end('est: sha256:1"}{"status":"Status: Downloaded"}\n');
      }, 10);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"message":"page not found"}');
    }
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test('negotiates min(1.41, server) and prefixes paths with it', async () => {
  serverVersion = '1.40';
  const c = new EngineClient({ host: `unix://${sock}` });
  const list = await c.imageList({ all: true, filters: '{"dangling":{"true":true}}' });
  assert.equal(list[0]!.Id, 'sha256:abc');
  const req = seen.at(-1)!;
  assert.equal(req.url, '/v1.40/images/json?all=1&filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D');
  assert.equal(seen.at(-2)!.method, 'HEAD');
  c.close();
  serverVersion = '1.47';
  const c2 = new EngineClient({ host: `unix://${sock}` });
  assert.equal(await c2.apiVersion(), '1.41');
  c2.close();
});

test('error responses become typed errors with the daemon message', async () => {
  const c = new EngineClient({ host: `unix://${sock}` });
  await assert.rejects(c.imageInspect('nosuch'), (e: unknown) => e instanceof NotFoundError && e.message === 'No such image: nosuch:latest' && isDaemonError(e));
  await assert.rejects(c.imageInspect('busy'), (e: unknown) => e instanceof ConflictError && e.message === 'in use');
  c.close();
});

test('pull: streaming JSON decoded across chunks and CRLF, X-Registry-Auth sent', async () => {
  const c = new EngineClient({ host: `unix://${sock}` });
  const stream = await c.imagePull('docker.io/library/busybox', 'latest', { auth: {} });
  const msgs = [];
  for await (const m of stream) msgs.push(m.status);
  assert.deepEqual(msgs, ['Pulling from library/busybox', 'Digest: sha256:1', 'Status: Downloaded']);
  const req = seen.at(-1)!;
  assert.equal(req.url, '/v1.41/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest');
  assert.equal(req.headers['x-registry-auth'], 'e30=');
  c.close();
});

test('nothing listening: ConnectionError naming the endpoint', async () => {
  const c = new EngineClient({ host: `unix://${join(dir, 'missing.sock')}` });
  await assert.rejects(c.imageList(), (e: unknown) => e instanceof ConnectionError && e.message.includes(`unix://${join(dir, 'missing.sock')}`));
});

test('JSONValueSplitter: values split anywhere, strings with braces and escapes', () => {
  const sp = new JSONValueSplitter();
  assert.deepEqual(sp.push('{"a":"}{\\"x'), []);
  assert.deepEqual(sp.push('"}\n{"b":[1,{"c":2}]}{"d"'), ['{"a":"}{\\"x"}', '{"b":[1,{"c":2}]}']);
  assert.deepEqual(sp.push(':3}\r\n'), ['{"d":3}']);
  assert.deepEqual(sp.end(), []);
});

test('hosts: docker forms, explicit vs default', () => {
  assert.deepEqual(parseHost('unix:///x/y.sock'), { kind: 'unix', socketPath: '/x/y.sock', url: 'unix:///x/y.sock' });
  assert.deepEqual(parseHost('tcp://1.2.3.4:2375'), { kind: 'tcp', host: '1.2.3.4', port: 2375, tls: false, url: 'tcp://1.2.3.4:2375' });
  assert.equal((parseHost('localhost', true) as { port: number }).port, 2376);
  assert.throws(() => parseHost('ssh://x'));
  assert.deepEqual(resolveHost(undefined, {}), { host: 'unix:///run/wharf/wharf.sock', explicit: false });
  assert.deepEqual(resolveHost(undefined, { DOCKER_HOST: 'tcp://h:1' }), { host: 'tcp://h:1', explicit: true });
  assert.deepEqual(resolveHost('unix:///a', { DOCKER_HOST: 'tcp://h:1' }), { host: 'unix:///a', explicit: true });
});

test('registry auth from config.json auths', () => {
  const cfg = join(dir, 'cfg');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'config.json'), JSON.stringify({ auths: {
    'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
    'localhost:5000': { auth: Buffer.from('u:p:x').toString('base64') },
  } }));
  assert.deepEqual(credentialsFor('docker.io', cfg), { username: 'hubuser', password: 'hubpass', serveraddress: 'https://index.docker.io/v1/' });
  assert.deepEqual(credentialsFor('localhost:5000', cfg), { username: 'u', password: 'p:x', serveraddress: 'localhost:5000' });
  assert.deepEqual(credentialsFor('other:1', cfg), {});
  const h = encodeAuthHeader({ username: 'u', password: 'p?>' });
  assert.ok(!/[+/]/.test(h));
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { username: 'u', password: 'p?>' });
});
