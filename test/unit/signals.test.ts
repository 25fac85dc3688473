/** lib/signals.ts: docker's signal.ParseSignal (kill -s, STOPSIGNAL). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSignal } from '../../src/lib/signals.js';

test('names with or without SIG in any case, real-time names, non-zero numbers; dockerd\'s error otherwise', () => {
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('sigterm'), 15);
  assert.equal(parseSignal('SIGUSR1'), 10);
  assert.equal(parseSignal('cld'), 17);
  assert.equal(parseSignal('RTMIN+3'), 37);
  assert.equal(parseSignal('RTMAX-1'), 63);
  assert.equal(parseSignal('12'), 12);
  for (const bad of ['0', 'NOPE', 'SIG', '', 'RTMIN+16']) assert.throws(() => parseSignal(bad), { message: `Invalid signal: ${bad}` });
});
