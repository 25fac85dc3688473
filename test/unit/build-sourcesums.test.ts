/** SourceSums (engine/build/sources.ts): the remembered COPY/ADD source hashes — what the key covers, and its bound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceSums } from '../../src/engine/build/sources.js';
import type { Digest } from '../../src/lib/digest.js';

const img = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const base = { sources: ['/a.out'], heredocs: new Map<string, string>(), exclude: [] as string[], parents: false, destIsDir: false };

test('the key changes with the image and with everything that decides the source hash', () => {
  const k = SourceSums.key(img('a'), base);
  assert.equal(SourceSums.key(img('a'), { ...base, heredocs: new Map() }), k);
  const others = [
    SourceSums.key(img('b'), base),
    SourceSums.key(img('a'), { ...base, sources: ['/b.out'] }),
    SourceSums.key(img('a'), { ...base, sources: ['/a.out', '/b.out'] }),
    SourceSums.key(img('a'), { ...base, exclude: ['*.md'] }),
    SourceSums.key(img('a'), { ...base, parents: true }),
    SourceSums.key(img('a'), { ...base, destIsDir: true }),
    SourceSums.key(img('a'), { ...base, heredocs: new Map([['x', 'y']]) }),
    SourceSums.key(img('a'), { ...base, kind: 'add' }),
    SourceSums.key(`context:${img('a')}`, base),
    SourceSums.key(`context:${img('c')}`, base),
  ];
  assert.equal(SourceSums.key(img('a'), { ...base, kind: 'copy' }), k);
  for (const o of others) assert.notEqual(o, k);
  assert.equal(new Set(others).size, others.length);
});

test('remembers the most recent SourceSums.MAX keys; a lookup counts as use', () => {
  const s = new SourceSums();
  const key = (i: number) => SourceSums.key(img('a'), { ...base, sources: [`/f${i}`] });
  for (let i = 0; i < SourceSums.MAX; i++) s.set(key(i), `file:${i}`);
  assert.equal(s.get(key(0)), 'file:0'); // now the most recent
  s.set(key(SourceSums.MAX), 'file:new'); // evicts the least recent: key(1)
  assert.equal(s.get(key(1)), undefined);
  assert.equal(s.get(key(0)), 'file:0');
  assert.equal(s.get(key(2)), 'file:2');
  assert.equal(s.get(key(SourceSums.MAX)), 'file:new');
  s.set(key(2), 'file:2b');
  assert.equal(s.get(key(2)), 'file:2b');
});
