import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, errorText, formatLine, parseLogLevel, type LogLevel } from '../../src/lib/log.js';
import { NotFoundError } from '../../src/lib/errors.js';
import { createApiServer } from '../../src/api/server.js';
import { sendJson } from '../../src/api/router.js';
import type { Backends } from '../../src/api/backend.js';
import { ConfigError, parseDaemonArgs } from '../../src/daemon/config.js';
import { effectiveLogLevel } from '../../src/daemon/log.js';
import { waitFor } from '../support/wait.js';
import { VolumeStore } from '../../src/engine/volumes/store.js';
import { openImageStore, openReferenceStore } from '../../src/engine/images/store.js';
import { openLayerStore } from '../../src/engine/layers/store.js';

const T = new Date('2026-12-07T02:40:43.123Z');

function capture(level: LogLevel): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ level, write: (l) => { lines.push(l); }, now: () => T }) };
}

test('format: logrus text lines, fields sorted, values quoted only when needed', () => {
  assert.equal(formatLine(T, 'info', 'API listen on /run/wharf/wharf.sock', {}),
    'time="2026-12-07T02:40:43.123000000Z" level=info msg="API listen on /run/wharf/wharf.sock"\n');
  assert.equal(formatLine(T, 'warn', 'x', { module: 'containers', container: 'abc123', n: 3, path: '/a b', empty: '' }),
    'time="2026-12-07T02:40:43.123000000Z" level=warning msg="x" container=abc123 empty="" module=containers n=3 path="/a b"\n');
  // a message with a newline or quote stays on one line
  const line = formatLine(T, 'error', 'bad "thing"\nsecond', { error: new Error('a\nb') });
  assert.equal(line.split('\n').length, 2);
  assert.match(line, /msg="bad \\"thing\\"\\nsecond" error="a\\nb"\n$/);
});

test('levels filter; enabled() agrees; fatal writes no event', () => {
  for (const [level, want] of [['debug', 4], ['info', 3], ['warn', 2], ['error', 1], ['fatal', 0]] as const) {
    const { lines, log } = capture(level);
    log.debug('d'); log.info('i'); log.warn('w'); log.error('e');
    assert.equal(lines.length, want, level);
    assert.equal(log.enabled('debug'), level === 'debug');
  }
  const { lines, log } = capture('warn');
  log.info('dropped'); log.warn('kept');
  assert.deepEqual(lines.map((l) => /msg="([^"]*)"/.exec(l)![1]), ['kept']);
});

test('child loggers add fields (module) without changing the parent; call fields win', () => {
  const { lines, log } = capture('debug');
  const c = log.child({ module: 'containers' });
  const cc = c.child({ container: 'c1' });
  log.info('root');
  cc.info('leaf', { extra: 1 });
  c.info('override', { module: 'other' });
  assert.doesNotMatch(lines[0]!, /module=/);
  assert.match(lines[1]!, / container=c1 extra=1 module=containers\n$/);
  assert.match(lines[2]!, / module=other\n$/);
});

test('onError / unlessGone: what a swallowed failure turns into', () => {
  const { lines, log } = capture('debug');
  const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  log.unlessGone('cleanup', { container: 'c1' })(enoent);
  log.unlessGone('cleanup', { container: 'c1' })(new NotFoundError('No such container: c1'));
  assert.equal(lines.length, 0, 'a missing file or a NotFoundError is what a cleanup wanted');
  log.unlessGone('cleanup', { container: 'c1' })(eacces);
  log.onError('writing the exit state', { container: 'c1' }, 'error')(new Error('disk full'));
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /level=warning msg="cleanup" container=c1 error="EACCES: permission denied"/);
  assert.match(lines[1]!, /level=error msg="writing the exit state" container=c1 error="disk full"/);
});

test('errorText follows causes that add information', () => {
  const root = new Error('EIO: i/o error');
  assert.equal(errorText(new Error('reading state', { cause: root })), 'reading state: EIO: i/o error');
  assert.equal(errorText(new Error('reading state: EIO: i/o error', { cause: root })), 'reading state: EIO: i/o error');
  assert.equal(errorText('plain'), 'plain');
});

test('parseLogLevel: dockerd names, warning too; others refused', () => {
  assert.equal(parseLogLevel('DEBUG'), 'debug');
  assert.equal(parseLogLevel('warning'), 'warn');
  assert.equal(parseLogLevel('fatal'), 'fatal');
  assert.throws(() => parseLogLevel('verbose'), /unable to parse logging level: verbose/);
});

test('daemon flags: -l/--log-level, daemon.json log-level, -D and debug: true win as in dockerd', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-log-'));
  try {
    const cf = join(dir, 'daemon.json');
    await writeFile(cf, '{}');
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf]).config), 'info');
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf, '-l', 'warn']).config), 'warn');
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf, '--log-level', 'error']).config), 'error');
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf, '-l', 'error', '-D']).config), 'debug');
    assert.throws(() => parseDaemonArgs(['--config-file', cf, '-l', 'loud']), (e: unknown) => e instanceof ConfigError && /unable to parse logging level: loud/.test(e.message));
    await writeFile(cf, JSON.stringify({ 'log-level': 'warn' }));
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf]).config), 'warn');
    assert.throws(() => parseDaemonArgs(['--config-file', cf, '-l', 'info']), /specified both as a flag and in the configuration file: log-level/);
    await writeFile(cf, JSON.stringify({ debug: true, 'log-level': 'error' }));
    assert.equal(effectiveLogLevel(parseDaemonArgs(['--config-file', cf]).config), 'debug');
    await writeFile(cf, JSON.stringify({ 'log-level': 3 }));
    assert.throws(() => parseDaemonArgs(['--config-file', cf]), /invalid value for "log-level": expected a string/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const noBackends = {} as Backends;

function call(sock: string, method: string, path: string, opts: { abortAfterMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => (opts.abortAfterMs !== undefined ? resolve({ status: 0, body: String(e) }) : reject(e)));
    req.end();
    if (opts.abortAfterMs !== undefined) setTimeout(() => req.destroy(), opts.abortAfterMs);
  });
}

test('API: one debug line per request with a request ID; a 500 logs its error with the same ID; a client that leaves is not an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-log-api-'));
  const sock = join(dir, 'api.sock');
  const lines: string[] = [];
  let slowDone: (v: unknown) => void = () => {};
  const slowFinished = new Promise((r) => { slowDone = r; });
  const server = createApiServer(noBackends, {
    log: createLogger({ level: 'debug', write: (l) => { lines.push(l); } }),
    extraRoutes: [(r) => {
      r.get('/ok', ({ res }) => sendJson(res, 200, { ok: true }));
      r.get('/boom', () => { throw new Error('state file corrupt', { cause: new Error('EIO: i/o error') }); });
      r.get('/missing', () => { throw new NotFoundError('No such thing: x'); });
      r.get('/slow', async ({ signal }) => {
        // a handler that fails because its client went away
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        slowDone(undefined);
        throw new Error('aborted: the client went away');
      });
    }],
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    assert.equal((await call(sock, 'GET', '/v1.41/ok?secret=1')).status, 200);
    assert.equal((await call(sock, 'GET', '/v1.41/boom')).status, 500);
    assert.equal((await call(sock, 'GET', '/v1.41/missing')).status, 404);
    await call(sock, 'GET', '/v1.41/slow', { abortAfterMs: 50 });
    await slowFinished;
    await waitFor(() => lines.some((l) => l.includes('Handler for GET /v1.41/slow stopped')), { timeout: 5000 });

    const idOf = (l: string) => / request-id=([0-9a-f]{12})\b/.exec(l)?.[1];
    const calling = lines.filter((l) => l.includes('msg="Calling '));
    assert.deepEqual(calling.map((l) => /msg="Calling ([^"]*)"/.exec(l)![1]),
      ['GET /v1.41/ok', 'GET /v1.41/boom', 'GET /v1.41/missing', 'GET /v1.41/slow'], 'paths without their query');
    for (const l of calling) assert.match(l, /level=debug/);
    const ids = calling.map(idOf);
    assert.ok(ids.every((x) => x !== undefined), 'every request line has an ID');
    assert.equal(new Set(ids).size, ids.length, 'IDs differ');

    const errors = lines.filter((l) => l.includes('level=error'));
    assert.equal(errors.length, 1, `only the 500 is an error:\n${lines.join('')}`);
    assert.match(errors[0]!, /msg="Handler for GET \/v1.41\/boom returned error: state file corrupt"/);
    assert.match(errors[0]!, /cause="EIO: i\/o error"/);
    assert.equal(idOf(errors[0]!), ids[1], 'the error line repeats the request ID');
    const notFound = lines.find((l) => l.includes('/missing returned error'))!;
    assert.match(notFound, /level=debug/);
    assert.equal(idOf(notFound), ids[2]);
    const gone = lines.find((l) => l.includes('/slow stopped'))!;
    assert.match(gone, /level=debug/);
    assert.equal(idOf(gone), ids[3]);
    assert.ok(!lines.some((l) => l.includes('secret')), 'the query is not logged');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
});

test('API at info level: no request lines, 500s still logged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-log-api-'));
  const sock = join(dir, 'api.sock');
  const lines: string[] = [];
  const server = createApiServer(noBackends, {
    log: createLogger({ level: 'info', write: (l) => { lines.push(l); } }),
    extraRoutes: [(r) => { r.get('/ok', ({ res }) => sendJson(res, 200, {})); r.get('/boom', () => { throw new Error('kaput'); }); }],
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    await call(sock, 'GET', '/ok');
    await call(sock, 'GET', '/boom');
    assert.equal(lines.length, 1, lines.join(''));
    assert.match(lines[0]!, /level=error msg="Handler for GET \/boom returned error: kaput" request-id=[0-9a-f]{12} status=500/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
});

test('stores at open: state that exists but cannot be read is logged and kept; half-made leftovers go silently', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-log-stores-'));
  try {
    const { lines, log } = capture('debug');
    // volumes: a corrupt opts.json keeps the volume and its data; a directory without one is a create that died
    await mkdir(join(root, 'volumes', 'precious', '_data'), { recursive: true });
    await writeFile(join(root, 'volumes', 'precious', '_data', 'f'), 'data');
    await writeFile(join(root, 'volumes', 'precious', 'opts.json'), '{"Name": "prec');
    await mkdir(join(root, 'volumes', 'half', '_data'), { recursive: true });
    const vols = await new VolumeStore(root, log).open();
    assert.deepEqual(await vols.list(), []);
    assert.equal(await readFile(join(root, 'volumes', 'precious', '_data', 'f'), 'utf8'), 'data');
    assert.equal(existsSync(join(root, 'volumes', 'half')), false);
    assert.equal(lines.length, 1, lines.join(''));
    assert.match(lines[0]!, /level=error msg="volume metadata unreadable: not loaded, left in place" error="[^"]*JSON[^"]*" volume=precious/);

    // tags: a corrupt repositories.json is copied aside before anything can overwrite it
    lines.length = 0;
    await mkdir(join(root, 'image'), { recursive: true });
    await writeFile(join(root, 'image', 'repositories.json'), '{"Repositories": {"busybox": ');
    const refs = await openReferenceStore(root, log);
    assert.deepEqual([...refs.all()], []);
    assert.equal(await readFile(join(root, 'image', 'repositories.json.corrupt'), 'utf8'), '{"Repositories": {"busybox": ');
    assert.match(lines.join(''), /level=error msg="tags and digests unreadable: starting without them; the file is kept as .corrupt"/);

    // images: a config that cannot be read (here a directory: EISDIR) stays; one whose bytes do not match its name goes, with a warning
    lines.length = 0;
    const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
    const content = join(root, 'image', 'imagedb', 'content', 'sha256');
    await mkdir(content, { recursive: true });
    const unreadable = 'a'.repeat(64);
    const corrupt = 'b'.repeat(64);
    await mkdir(join(content, unreadable));
    await writeFile(join(content, corrupt), '{}');
    const images = await openImageStore(root, layers, log);
    assert.deepEqual(await images.list(), []);
    assert.equal(existsSync(join(content, unreadable)), true);
    assert.equal(existsSync(join(content, corrupt)), false);
    const text = lines.join('');
    assert.match(text, new RegExp(`level=error msg="image config unreadable: not loaded, left in place" error="EISDIR[^"]*" image="?sha256:${unreadable}`));
    assert.match(text, new RegExp(`level=warning msg="removing an unusable image config" error="digest mismatch" image="?sha256:${corrupt}`));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
