// The small shared helpers, one home each: lib/go.ts (Go compatibility), lib/sync.ts, lib/streams.ts,
// lib/fsutil.ts and Docker Hub's names in lib/reference.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { goArch, goMatch, goQuote, rfc3339, rfc3339Nano, rfc3339NanoFixed } from '../../src/lib/go.js';
import { Mutex, Semaphore } from '../../src/lib/sync.js';
import { peek } from '../../src/lib/streams.js';
import { isENOENT } from '../../src/lib/fsutil.js';
import { INDEX_SERVER, isDockerHub } from '../../src/lib/reference.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

test('goArch: Node architectures as Go names them; unknown names pass through', () => {
  assert.deepEqual(['x64', 'ia32', 'arm64', 'arm', 'ppc64', 's390x', 'riscv64', 'mips64el', 'loong64'].map((a) => goArch(a)),
    ['amd64', '386', 'arm64', 'arm', 'ppc64le', 's390x', 'riscv64', 'mips64le', 'loong64']);
  assert.equal(goArch('sparc'), 'sparc');
  assert.equal(goArch(), goArch(process.arch));
});

test('RFC 3339 layouts: seconds, Nano (trailing zeros trimmed), NanoFixed (nine digits)', () => {
  const d = new Date('2026-11-24T16:01:11.850Z');
  const whole = new Date('2026-11-24T16:01:11.000Z');
  assert.equal(rfc3339(d), '2026-11-24T16:01:11Z');
  assert.equal(rfc3339Nano(d), '2026-11-24T16:01:11.85Z');
  assert.equal(rfc3339Nano(whole), '2026-11-24T16:01:11Z');
  assert.equal(rfc3339Nano(new Date('2026-11-24T16:01:11.007Z')), '2026-11-24T16:01:11.007Z');
  assert.equal(rfc3339NanoFixed(d), '2026-11-24T16:01:11.850000000Z');
  assert.equal(rfc3339NanoFixed(whole), '2026-11-24T16:01:11.000000000Z');
  assert.equal(rfc3339NanoFixed(d, true), '2026-11-24T16:01:11.850000000+00:00');
});

test('goQuote is strconv.Quote: escapes, printable Unicode kept, the rest as \\x, \\u, \\U', () => {
  assert.equal(goQuote('a "b" \\ c'), '"a \\"b\\" \\\\ c"');
  assert.equal(goQuote('\x07\b\f\n\r\t\v'), '"\\a\\b\\f\\n\\r\\t\\v"');
  assert.equal(goQuote('\x00\x1b\x7f'), '"\\x00\\x1b\\x7f"');
  assert.equal(goQuote('héllo ✓ 😀'), '"héllo ✓ 😀"');
  assert.equal(goQuote('\u00a0\u200b'), '"\\u00a0\\u200b"');
  assert.equal(goQuote('\u{e0001}'), '"\\U000e0001"');
});

test('goMatch is Go\'s path.Match', () => {
  const cases: [string, string, boolean][] = [
    ['abc', 'abc', true], ['*', 'abc', true], ['*c', 'abc', true], ['a*', 'a', true], ['a*', 'ab/c', false],
    ['a*/b', 'abc/b', true], ['a*b*c*d*e*/f', 'axbxcxdxe/f', true], ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a?b', 'a/b', false], ['ab[c]', 'abc', true], ['ab[b-d]', 'abc', true], ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false], ['ab[^b-d]', 'abe', true], ['a\\*b', 'a*b', true], ['a\\*b', 'ab', false],
    ['a[\\]]b', 'a]b', true], ['[a-ζ]*', 'α', true], ['*x', 'xxx', true], ['[!a]', '!', true], ['[!a]', 'b', false],
    ['busy*', 'busybox:latest', true], ['*', 'localhost:5002/library/busybox', false], ['*/*/*', 'localhost:5002/library/busybox', true],
  ];
  for (const [p, n, want] of cases) assert.equal(goMatch(p, n), want, `Match(${p}, ${n})`);
  for (const bad of ['[', '[^', '[^bc', 'a[', 'a\\', '[a-', '[x-]', '[]a]', '[-]', '[z-a]', '*x[']) {
    assert.throws(() => goMatch(bad, 'x'), (e: unknown) => e instanceof InvalidParameterError && (e as Error).message === 'syntax error in pattern', bad);
  }
});

test('Mutex runs work one at a time in call order, and a failure does not stop the next', async () => {
  const mu = new Mutex();
  const log: string[] = [];
  const job = (name: string, ms: number, fail = false) => mu.run(async () => {
    log.push(`${name}+`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`${name}-`);
    if (fail) throw new Error(name);
    return name;
  });
  const all = Promise.allSettled([job('a', 20), job('b', 5, true), job('c', 1)]);
  const r = await all;
  assert.deepEqual(log, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('Semaphore: never more than max holders, waiters in order, a released slot goes to the next waiter', async () => {
  const sem = new Semaphore(2);
  let now = 0, peak = 0;
  const order: number[] = [];
  await Promise.all(Array.from({ length: 8 }, (_, i) => sem.run(async () => {
    order.push(i);
    peak = Math.max(peak, ++now);
    await new Promise((r) => setTimeout(r, 5));
    now--;
  })));
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(sem.holders, 0);
  // handoff: with one slot held and one waiter, a release must not let a newcomer in beside the waiter
  const one = new Semaphore(1);
  await one.acquire();
  let waiterIn = false;
  const waiter = one.acquire().then(() => { waiterIn = true; });
  one.release();
  let newcomerIn = false;
  const newcomer = one.acquire().then(() => { newcomerIn = true; });
  await waiter;
  assert.equal(waiterIn, true);
  assert.equal(newcomerIn, false, 'the newcomer waits for the waiter\'s release');
  one.release();
  await newcomer;
  assert.equal(one.holders, 1);
});

test('peek returns the head and a stream that still starts at byte 0 (long, short and empty streams)', async () => {
  const body = Buffer.from('0123456789'.repeat(1000));
  const src = new PassThrough();
  setImmediate(() => { src.write(body.subarray(0, 3)); setImmediate(() => src.end(body.subarray(3))); });
  const { head, stream } = await peek(src, 6);
  assert.ok(head.length >= 6);
  assert.equal(head.subarray(0, 6).toString(), '012345');
  const all: Buffer[] = [];
  for await (const c of stream) all.push(c as Buffer);
  assert.deepEqual(Buffer.concat(all), body);

  const short = await peek(Readable.from([Buffer.from('ab')]), 512);
  assert.equal(short.head.toString(), 'ab');
  const rest: Buffer[] = [];
  for await (const c of short.stream) rest.push(c as Buffer);
  assert.equal(Buffer.concat(rest).toString(), 'ab');

  const empty = await peek(Readable.from([]), 4);
  assert.equal(empty.head.length, 0);
  for await (const _ of empty.stream) assert.fail('an empty stream yields nothing');

  const broken = new PassThrough();
  setImmediate(() => broken.destroy(new Error('reset')));
  await assert.rejects(peek(broken, 4), /reset/);
});

test('isENOENT tells a missing file from other errors', async () => {
  const e = await readFile('/nonexistent/wharf-test').catch((x: unknown) => x);
  assert.equal(isENOENT(e), true);
  const dir = await readFile('/').catch((x: unknown) => x);
  assert.equal(isENOENT(dir), false);
  assert.equal(isENOENT(null), false);
  assert.equal(isENOENT(new Error('x')), false);
});

test('Docker Hub under its names', () => {
  assert.deepEqual(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'localhost:5000', 'docker.io.example'].map(isDockerHub),
    [true, true, true, false, false]);
  assert.equal(INDEX_SERVER, 'https://index.docker.io/v1/');
});

test('writeFileAtomic: a symlink planted at the next (predictable) temp name is neither followed nor replaced', async () => {
  const { mkdtemp, symlink, writeFile, readFile: rf, readlink, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join, basename } = await import('node:path');
  const { tempNameFor, writeFileAtomic } = await import('../../src/lib/atomic.js');
  const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
  try {
    const target = join(dir, 'state.json');
    const outside = join(dir, 'outside');
    await writeFile(outside, 'untouched');
    // the names count up: the one after this is what writeFileAtomic takes next
    const seen = basename(tempNameFor(target));
    const hex = seen.slice(5, 17);
    const next = ((parseInt(hex, 16) + 1) % 2 ** 48).toString(16).padStart(12, '0');
    const planted = join(dir, `.tmp-${next}-state.json`);
    await symlink(outside, planted);
    await writeFileAtomic(target, 'new');
    assert.equal(await rf(target, 'utf8'), 'new');
    assert.equal(await rf(outside, 'utf8'), 'untouched');
    assert.equal(await readlink(planted), outside);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
