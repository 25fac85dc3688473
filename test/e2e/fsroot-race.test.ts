/**
 * Container filesystem access racing the container (the CVE-2018-15664 class): a running busybox container swaps
 * /race/d between a real directory and a symlink to a host directory (the test's canary directory, a path that
 * does not exist inside the container) in a tight loop, while the test copies into and out of /race/d through
 * the API, exports the container, diffs it and commits it with --pause=false. Nothing may land in the canary
 * directory, and the canary's secret file must never appear in anything read back.
 */
// wharf-test: slow
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const ROUNDS = Number(process.env.WHARF_RACE_ROUNDS ?? 200);
const SECRET_NAME = 'host-secret-c4n4ry';
const SECRET_TEXT = 'HOST-SECRET-CONTENT-7f3a9';

let d: Daemon;
let work: string;
let canary: string;
let id: string;

function call(method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: d.sock, method, path, headers: body ? { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', () => resolve({ status: 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    // a connection the daemon drops counts as a failed call (status 0), not as the test's failure
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0), headers: {} }));
    req.end(body);
  });
}

async function tarOf(files: { name: string; content?: string }[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const f of files) pack.entry({ name: f.name, mode: 0o644 }, f.content ?? 'x\n');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** What the canary directory holds besides its secret (anything there was written by the daemon). */
async function intruders(): Promise<string[]> {
  return (await readdir(canary)).filter((n) => n !== SECRET_NAME);
}

function leaks(buf: Buffer): boolean {
  return buf.includes(SECRET_NAME) || buf.includes(SECRET_TEXT);
}

before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-race-'));
  canary = join(work, 'canary');
  await mkdir(canary);
  await writeFile(join(canary, SECRET_NAME), SECRET_TEXT);
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  const script = `mkdir -p /race; while :; do rm -rf /race/d; mkdir /race/d; echo in > /race/d/own; rm -rf /race/d; ln -s ${canary} /race/d; done`;
  const r = await d.wharf(['run', '-d', '--name', 'racer', 'busybox', 'sh', '-c', script]);
  assert.equal(r.code, 0, show(r));
  id = r.stdout.trim();
  await new Promise((res) => setTimeout(res, 300));
});
after(async () => {
  await d?.wharf(['rm', '-f', 'racer']);
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('cp in and out while the container swaps a directory and a symlink to the host: nothing reaches the host', async () => {
  let puts = 0, gets = 0, leaked = 0;
  const into = await tarOf(Array.from({ length: 16 }, (_, i) => ({ name: `in-${i}` })));
  const nested = await tarOf([{ name: 'd/' }, ...Array.from({ length: 16 }, (_, i) => ({ name: `d/nested-${i}` }))]);
  // each round one copy in and one copy out, alternating the forms: into /race/d, into /race with entries
  // under d/; out of /race/d/ (followed) and of a file below it
  for (let i = 0; i < ROUNDS; i++) {
    const a = i % 2 ? await call('PUT', `/containers/${id}/archive?path=/race/d`, into) : await call('PUT', `/containers/${id}/archive?path=/race`, nested);
    if (a.status === 200) puts++;
    const c = i % 2 ? await call('GET', `/containers/${id}/archive?path=/race/d/`) : await call('GET', `/containers/${id}/archive?path=/race/d/${SECRET_NAME}`);
    if (c.status !== 200) continue; // (a 404's message names the path asked for)
    gets++;
    if (leaks(c.body) || leaks(Buffer.from(String(c.headers['x-docker-container-path-stat'] ?? ''), 'base64'))) leaked++;
  }
  const found = await intruders();
  console.log(`# cp race: ${ROUNDS} rounds, ${puts} successful puts, ${gets} successful gets, ${found.length} files on the host, ${leaked} reads of the host`);
  assert.ok(puts > 0 && gets > 0, 'the copies ran (some succeed while /race/d is a directory)');
  assert.deepEqual(found, [], 'nothing written into the host directory');
  assert.equal(leaked, 0, 'nothing read from the host directory');
});

test('export, diff and commit --pause=false of the racing container read nothing of the host', async () => {
  let leaked = 0, ok = 0;
  const failures: string[] = [];
  const rounds = Math.max(5, Math.round(ROUNDS / 10));
  for (let i = 0; i < rounds; i++) {
    const ex = await call('GET', `/containers/${id}/export`);
    if (ex.status === 200) ok++; else failures.push(`export ${ex.status}: ${ex.body.toString().slice(0, 300)}`);
    if (ex.status === 200 && leaks(ex.body)) leaked++;
    const df = await call('GET', `/containers/${id}/changes`);
    if (df.status === 200) ok++; else failures.push(`diff ${df.status}: ${df.body.toString().slice(0, 300)}`);
    if (df.status === 200 && leaks(df.body)) leaked++;
    const cm = await call('POST', `/commit?container=${id}&repo=racecommit&tag=t${i}&pause=false`);
    if (cm.status !== 201) { failures.push(`commit ${cm.status}: ${cm.body.toString().slice(0, 300)}`); continue; }
    ok++;
    const img = JSON.parse(cm.body.toString()).Id as string;
    const saved = await call('GET', `/images/${img}/get`);
    assert.equal(saved.status, 200);
    if (leaks(saved.body)) leaked++;
    await call('DELETE', `/images/${img}?force=1`);
  }
  console.log(`# export/diff/commit race: ${rounds} rounds each, ${ok} of ${rounds * 3} calls succeeded, ${leaked} reads of the host`);
  assert.deepEqual(failures, [], 'export, diff and commit succeed while the container changes its files');
  assert.equal(ok, rounds * 3);
  assert.deepEqual(await intruders(), []);
  assert.equal(leaked, 0, 'nothing of the host directory in export, diff or a committed layer');
});
