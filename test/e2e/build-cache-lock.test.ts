/**
 * `RUN --mount=type=cache,sharing=locked` and a client that goes away: build A holds the cache (its step
 * sleeps), build B waits for it, B's docker CLI is killed. B's build is cancelled where it waits: it never takes
 * the cache, never makes its step's container, leaves no image; when A finishes, a third build C gets the cache
 * next. (BuildKit is the reference for `sharing=locked`: "only one writer at a time", Dockerfile reference, RUN
 * --mount=type=cache; a cancelled build releases what it waits for.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { DOCKER, show, ok, writeTree } from '../support/cli.js';

const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
const only = { skip: reference && 'BuildKit-era syntax: dockerd 20.10\'s classic builder refuses RUN --mount' };
let d: Daemon;
let work: string;

before(async () => {
  if (reference) return;
  // debug: the builder says when a step starts waiting for a locked cache, and when a waiter is cancelled
  d = await startDaemon({ extraArgs: ['--log-level', 'debug'] });
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-cachelock-'));
  ok(await d.wharf(['image', 'bootstrap', 'busybox']));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** `docker build` as a process of its own (so the test can kill it), its output collected. */
function startBuild(name: string, ctx: string): { proc: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const proc = spawn(DOCKER, ['build', '-t', name, ctx], {
    env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.dir, 'docker-config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  const done = new Promise<{ code: number | null; out: string }>((res) => proc.on('close', (code) => res({ code, out })));
  return { proc, done };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n--- daemon log (tail)\n${d.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const count = (s: string, re: RegExp) => (s.match(new RegExp(re, 'g')) ?? []).length;
const WAITING = /waiting for the cache another step holds/;
const CANCELLED = /build cancelled while waiting for the cache/;

test('sharing=locked: a build whose client is killed while it waits for the cache is cancelled there; the next build gets the cache', only, async () => {
  const step = (body: string) => `FROM busybox\nRUN --network=none --mount=type=cache,id=lockcase,target=/cache,sharing=locked ${body}\n`;
  const ctxA = await writeTree(join(work, 'a'), { Dockerfile: step('echo A-start >> /cache/log && while [ ! -e /cache/go ]; do sleep 0.1; done && echo A-end >> /cache/log') });
  const ctxB = await writeTree(join(work, 'b'), { Dockerfile: step('echo B >> /cache/log') });
  const ctxC = await writeTree(join(work, 'c'), { Dockerfile: step('echo C >> /cache/log') });
  const t0 = Date.now();
  const imagesBefore = new Set(ok(await d.docker(['images', '-aq', '--no-trunc'])).split('\n').filter(Boolean)).size;

  // A takes the cache and holds it until the test lets it go (a file the test writes into the cache)
  const a = startBuild('lock-a', ctxA);
  const cacheLog = async () => {
    const root = join(d.dataRoot, 'build-cache');
    for (const n of await readdir(root).catch(() => [] as string[])) {
      const t = await readFile(join(root, n, 'data', 'log'), 'utf8').catch(() => null);
      if (t !== null) return { dir: join(root, n, 'data'), text: t };
    }
    return null;
  };
  await until('A to hold the cache', async () => (await cacheLog())?.text.includes('A-start') ?? false);

  // B waits for it; then its client is killed
  const logBefore = d.log().length;
  const b = startBuild('lock-b', ctxB);
  await until('B to wait for the cache', () => WAITING.test(d.log().slice(logBefore)));
  b.proc.kill('SIGKILL');
  await b.done;
  // (judged below by what B's build did: a daemon that ignored the disconnect would keep B in the queue)
  await until('B\'s build to be cancelled where it waits', () => CANCELLED.test(d.log().slice(logBefore)), 15_000).catch(() => {});

  // C comes while A still holds the cache: it waits, behind nobody else
  const c = startBuild('lock-c', ctxC);
  await until('C to wait for the cache', () => count(d.log().slice(logBefore), WAITING) === 2);
  await writeFile(join((await cacheLog())!.dir, 'go'), '');
  const ra = await a.done;
  assert.equal(ra.code, 0, ra.out);
  const rc = await c.done;
  assert.equal(rc.code, 0, rc.out);

  // B never ran its step, never made its container, left no image
  assert.equal((await cacheLog())!.text, 'A-start\nA-end\nC\n');
  const t1 = Date.now();
  const ev = await d.api('GET', `/events?since=${(t0 / 1000).toFixed(3)}&until=${(t1 / 1000 + 1).toFixed(3)}&filters=${encodeURIComponent(JSON.stringify({ type: ['container'], event: ['create'] }))}`);
  assert.equal(ev.status, 200, ev.body);
  assert.equal(ev.body.split('\n').filter(Boolean).length, 2, `one step container each for A and C:\n${ev.body}`);
  assert.equal(ok(await d.docker(['ps', '-aq'])), '');
  const images = [...new Set(ok(await d.docker(['images', '-aq', '--no-trunc'])).split('\n').filter(Boolean))];
  assert.equal(images.length, imagesBefore + 2, `A's and C's step images only:\n${images.join('\n')}`);
  const nob = await d.docker(['image', 'inspect', 'lock-b']);
  assert.notEqual(nob.code, 0, show(nob));
  assert.match(d.log().slice(logBefore), CANCELLED);
  // the cache is free: nothing holds or waits for it
  const df = JSON.parse((await d.api('GET', '/system/df')).body) as { BuildCache: { InUse: boolean }[] };
  assert.deepEqual(df.BuildCache.map((r) => r.InUse), [false]);
});
