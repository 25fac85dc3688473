import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitFor } from '../support/wait.js';

test('waitFor returns the first truthy value as soon as the condition holds', async () => {
  let n = 0;
  const t0 = Date.now();
  const v = await waitFor(() => (++n >= 3 ? `try ${n}` : ''), { interval: 5 });
  assert.equal(v, 'try 3');
  assert.ok(Date.now() - t0 < 1000);
});

test('waitFor treats a throwing or async condition as not yet true', async () => {
  let n = 0;
  const v = await waitFor(async () => { if (++n < 3) throw new Error('not yet'); return n; }, { interval: 1 });
  assert.equal(v, 3);
});

test('waitFor fails after the timeout, naming what it waited for and the last value or error', async () => {
  const t0 = Date.now();
  await assert.rejects(waitFor(() => 0, { timeout: 100, interval: 10, message: 'the answer' }),
    /timed out after 100 ms waiting for the answer; last value: 0/);
  assert.ok(Date.now() - t0 >= 100);
  await assert.rejects(waitFor(() => { throw new Error('refused'); }, { timeout: 30 }), /last error: refused/);
});

test('sleep waits at least the time asked', async () => {
  const t0 = Date.now();
  await sleep(50);
  assert.ok(Date.now() - t0 >= 49);
});
