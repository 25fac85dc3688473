/**
 * `RUN --mount=type=cache,sharing=locked`: the lock of a cache directory (cache-mounts.ts). Waiters are served in
 * arrival order; a waiter whose build is cancelled (its client went away) leaves the queue at once, never takes
 * the cache afterwards, and does not hold up the waiters behind it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheMounts, type HeldCache } from '../../src/engine/build/cache-mounts.js';
import { BuildCancelledError } from '../../src/engine/build/run-executor.js';

const req = { id: 'apt', sharing: 'locked' as const, mode: 0o755, uid: 0, gid: 0 };

async function withCaches(fn: (c: CacheMounts) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'wharf-cachelock-'));
  try { await fn(new CacheMounts(root)); } finally { await rm(root, { recursive: true, force: true }); }
}

/** Lets pending promise callbacks and a few I/O turns run (the acquire writes its metadata file). */
const settle = () => new Promise((r) => setTimeout(r, 30));

/** Tracks whether an acquire has resolved (or how it failed). */
function track(p: Promise<HeldCache>): { state: () => 'waiting' | 'held' | 'cancelled' | 'failed'; held: Promise<HeldCache> } {
  let state: 'waiting' | 'held' | 'cancelled' | 'failed' = 'waiting';
  const held = p.then((h) => { state = 'held'; return h; }, (e: unknown) => { state = e instanceof BuildCancelledError ? 'cancelled' : 'failed'; throw e; });
  held.catch(() => {});
  return { state: () => state, held };
}

test('a cancelled waiter leaves the queue; the one behind it gets the cache when the holder lets go', () => withCaches(async (c) => {
  const a = await c.acquire(req);
  const bAbort = new AbortController();
  const b = track(c.acquire({ ...req, signal: bAbort.signal }));
  const cc = track(c.acquire(req));
  await settle();
  assert.deepEqual([b.state(), cc.state(), c.waiters('apt')], ['waiting', 'waiting', 2]);
  bAbort.abort();
  await settle();
  assert.equal(b.state(), 'cancelled');
  await assert.rejects(b.held, /build cancelled/);
  assert.equal(c.waiters('apt'), 1);
  assert.equal(cc.state(), 'waiting'); // the holder still has it
  a.release();
  const held = await cc.held;
  assert.equal(held.path, a.path);
  // the cancelled build never took it: the next one waits for C, not for B
  const d = track(c.acquire(req));
  await settle();
  assert.equal(d.state(), 'waiting');
  held.release();
  (await d.held).release();
}));

test('with the only waiter cancelled, the next build after the holder gets the cache at once', () => withCaches(async (c) => {
  const a = await c.acquire(req);
  const bAbort = new AbortController();
  const b = track(c.acquire({ ...req, signal: bAbort.signal }));
  await settle();
  bAbort.abort();
  await settle();
  assert.equal(b.state(), 'cancelled');
  assert.equal(c.waiters('apt'), 0);
  a.release();
  const next = track(c.acquire(req));
  await settle();
  assert.equal(next.state(), 'held');
  const third = track(c.acquire(req));
  await settle();
  assert.equal(third.state(), 'waiting'); // the lock still works
  (await next.held).release();
  (await third.held).release();
}));

test('a waiter cancelled as the cache is handed to it passes the cache on', () => withCaches(async (c) => {
  const a = await c.acquire(req);
  const bAbort = new AbortController();
  const b = track(c.acquire({ ...req, signal: bAbort.signal }));
  const cc = track(c.acquire(req));
  await settle();
  a.release(); // hands over to B…
  bAbort.abort(); // …whose client leaves before B runs
  await settle();
  assert.deepEqual([b.state(), cc.state()], ['cancelled', 'held']);
  (await cc.held).release();
  const d = track(c.acquire(req));
  await settle();
  assert.equal(d.state(), 'held');
  (await d.held).release();
}));

test('an already cancelled build holds nothing; shared holders keep a locked waiter out until the last lets go', () => withCaches(async (c) => {
  const gone = new AbortController();
  gone.abort();
  await assert.rejects(c.acquire({ ...req, signal: gone.signal }), BuildCancelledError);
  const s1 = await c.acquire({ ...req, sharing: 'shared' });
  const s2 = await c.acquire({ ...req, sharing: 'shared' });
  const l = track(c.acquire(req));
  await settle();
  s1.release();
  await settle();
  assert.equal(l.state(), 'waiting');
  s2.release();
  await settle();
  assert.equal(l.state(), 'held');
  (await l.held).release();
  assert.deepEqual((await c.records()).map((r) => r.InUse), [false]);
}));
