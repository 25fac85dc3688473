/** FromSums (engine/build/builder.ts): the remembered COPY --from source hashes — what the key covers, and its bound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FromSums } from '../../src/engine/build/builder.js';
import type { Digest } from '../../src/lib/digest.js';

const img = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const base = { sources: ['/a.out'], heredocs: new Map<string, string>(), exclude: [] as string[], parents: false, destIsDir: false };

test('the key changes with the image and with everything that decides the source hash', () => {
  const k = FromSums.key(img('a'), base);
  assert.equal(FromSums.key(img('a'), { ...base, heredocs: new Map() }), k);
  const others = [
    FromSums.key(img('b'), base),
    FromSums.key(img('a'), { ...base, sources: ['/b.out'] }),
    FromSums.key(img('a'), { ...base, sources: ['/a.out', '/b.out'] }),
    FromSums.key(img('a'), { ...base, exclude: ['*.md'] }),
    FromSums.key(img('a'), { ...base, parents: true }),
    FromSums.key(img('a'), { ...base, destIsDir: true }),
    FromSums.key(img('a'), { ...base, heredocs: new Map([['x', 'y']]) }),
  ];
  for (const o of others) assert.notEqual(o, k);
  assert.equal(new Set(others).size, others.length);
});

test('remembers the most recent FromSums.MAX keys; a lookup counts as use', () => {
  const s = new FromSums();
  const key = (i: number) => FromSums.key(img('a'), { ...base, sources: [`/f${i}`] });
  for (let i = 0; i < FromSums.MAX; i++) s.set(key(i), `file:${i}`);
  assert.equal(s.get(key(0)), 'file:0'); // now the most recent
  s.set(key(FromSums.MAX), 'file:new'); // evicts the least recent: key(1)
  assert.equal(s.get(key(1)), undefined);
  assert.equal(s.get(key(0)), 'file:0');
  assert.equal(s.get(key(2)), 'file:2');
  assert.equal(s.get(key(FromSums.MAX)), 'file:new');
  s.set(key(2), 'file:2b');
  assert.equal(s.get(key(2)), 'file:2b');
});
