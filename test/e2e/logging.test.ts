/**
 * wharfd's log through a real daemon: `--log-level debug` gives one `Calling …` line per API request with a request
 * ID (dockerd's words, compared with dockerd -l debug), daemon.json `"debug": true` does the same; an ordinary
 * `run --rm` leaves no warning (cleanups that find nothing to clean stay silent); failures that used to vanish are
 * logged: the exit state of a container that cannot be written, and a container record that cannot be read at
 * start (which used to be deleted with the container's directory, and is now kept).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
const skip = reference ? 'wharfd\'s own log lines (request IDs, its messages)' : false;

let d: Daemon;
let work: string;
const immutable: string[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-logging-'));
  d = await startDaemon({ extraArgs: ['--log-level', 'debug'] });
  await loadBusybox(d);
});
after(async () => {
  for (const p of immutable) if (existsSync(p)) execFileSync('chattr', ['-i', p]);
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const lines = (text: string) => text.split('\n').filter((l) => l.startsWith('time="'));
const newLines = (from: number) => lines(d.log().slice(from));

test('--log-level debug: one line per request, dockerd\'s words, with a request ID', { skip }, async () => {
  const from = d.log().length;
  const ps = await d.docker(['ps']);
  assert.equal(ps.code, 0, show(ps));
  const got = await waitFor(() => newLines(from).find((l) => l.includes('msg="Calling GET /v1.41/containers/json"')), { message: 'the request line' });
  assert.match(got, /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z" level=debug msg="Calling GET \/v1\.41\/containers\/json" module=api request-id=[0-9a-f]{12}$/);
  const ping = newLines(from).find((l) => l.includes('msg="Calling HEAD /_ping"') || l.includes('msg="Calling GET /_ping"'));
  assert.ok(ping, `the CLI's ping is logged too:\n${d.log().slice(from)}`);
  assert.notEqual(/request-id=(\w+)/.exec(ping)![1], /request-id=(\w+)/.exec(got)![1]);
});

test('dockerd -l debug logs the same request with the same words', async () => {
  const ref = await startDaemon({ engine: 'dockerd', extraArgs: ['--log-level', 'debug'] });
  try {
    const ps = await ref.docker(['ps']);
    assert.equal(ps.code, 0, show(ps));
    const got = await waitFor(() => lines(ref.log()).find((l) => l.includes('msg="Calling GET /v1.41/containers/json"')), { message: 'dockerd\'s request line' });
    assert.match(got, /^time="[^"]+" level=debug msg="Calling GET \/v1\.41\/containers\/json"/);
  } finally {
    await ref.stop();
  }
});

test('daemon.json "debug": true logs requests; without it (info) they are not', { skip }, async () => {
  const cf = join(work, 'daemon.json');
  await writeFile(cf, JSON.stringify({ debug: true }));
  const dbg = await startDaemon({ extraArgs: ['--config-file', cf] });
  try {
    assert.equal((await dbg.api('GET', '/v1.41/version')).status, 200);
    await waitFor(() => lines(dbg.log()).find((l) => /level=debug msg="Calling GET \/v1\.41\/version" module=api request-id=[0-9a-f]{12}$/.test(l)),
      { message: 'the request line' });
  } finally {
    await dbg.stop();
  }
  await writeFile(cf, JSON.stringify({ 'log-level': 'info' }));
  const quiet = await startDaemon({ extraArgs: ['--config-file', cf] });
  try {
    assert.equal((await quiet.api('GET', '/v1.41/version')).status, 200);
    assert.ok(lines(quiet.log()).some((l) => l.includes('level=info msg="API listen on ')), quiet.log());
    assert.ok(!quiet.log().includes('Calling '), quiet.log());
  } finally {
    await quiet.stop();
  }
});

test('an ordinary run --rm, stop and rm log no warning: cleanups that find nothing stay silent', { skip }, async () => {
  const from = d.log().length;
  const r = await d.docker(['run', '--rm', 'busybox', 'true']);
  assert.equal(r.code, 0, show(r));
  const c = await d.docker(['run', '-d', '--name', 'quiet', 'busybox', 'sleep', '30']);
  assert.equal(c.code, 0, show(c));
  assert.equal((await d.docker(['stop', '-t', '1', 'quiet'])).code, 0);
  assert.equal((await d.docker(['rm', 'quiet'])).code, 0);
  const bad = newLines(from).filter((l) => /level=(warning|error)/.test(l));
  assert.deepEqual(bad, []);
});

test('a container\'s exit state that cannot be written is logged at error with its ID (it used to vanish)', { skip }, async () => {
  const c = await d.docker(['run', '-d', '--name', 'frozen', 'busybox', 'sleep', '1']);
  assert.equal(c.code, 0, show(c));
  const id = c.stdout.trim();
  const dir = join(d.dataRoot, 'containers', id);
  const from = d.log().length;
  // an immutable directory: the record's atomic rewrite (temp file + rename) fails, as on a broken disk
  execFileSync('chattr', ['+i', dir]);
  immutable.push(dir);
  try {
    const got = await waitFor(() => newLines(from).find((l) => l.includes('msg="writing the exit state"')), { timeout: 15_000, message: 'the exit state error' });
    assert.match(got, new RegExp(`level=error msg="writing the exit state" container=${id} error="[^"]*(EPERM|operation not permitted)[^"]*" exitCode=0 module=containers`));
  } finally {
    execFileSync('chattr', ['-i', dir]);
    immutable.pop();
  }
  assert.equal((await d.docker(['rm', '-f', 'frozen'])).code, 0);
});

test('a container record that cannot be read at start is logged and kept, not deleted with its directory', { skip }, async () => {
  const c = await d.docker(['create', '--name', 'scrambled', 'busybox', 'true']);
  assert.equal(c.code, 0, show(c));
  const id = c.stdout.trim();
  const record = join(d.dataRoot, 'containers', id, 'config.v2.json');
  const original = await readFile(record, 'utf8');
  await d.kill('SIGTERM');
  await writeFile(record, original.slice(0, 40));
  const from = d.log().length;
  await d.restart();
  const got = lines(d.log().slice(from)).find((l) => l.includes('container record unreadable'));
  assert.ok(got, d.log().slice(from));
  assert.match(got, new RegExp(`level=error msg="container record unreadable: not loaded, left in place" container=${id} error="[^"]*JSON[^"]*" module=containers`));
  assert.ok(existsSync(record), 'the record is still there for a person to repair');
  assert.equal((await d.docker(['inspect', id])).code, 1, 'not loaded');
  // repaired, it is a container again after the next start
  await writeFile(record, original);
  await d.restart();
  const ins = await d.docker(['inspect', '--format', '{{.Name}}', id]);
  assert.equal(ins.stdout.trim(), '/scrambled', show(ins));
  assert.equal((await d.docker(['rm', 'scrambled'])).code, 0);
});
