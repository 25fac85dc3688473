// docker's PromptForConfirmation, the one copy the prune commands share (cli/context.ts confirmOrCancel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledError, confirmOrCancel } from '../../src/cli/context.js';

async function answer(line: string): Promise<{ out: string; error?: unknown }> {
  let out = '';
  const ctx = { out: (s: string) => { out += s; }, readLine: async () => line };
  try {
    await confirmOrCancel(ctx, 'WARNING! Sure?', 'x has been cancelled');
    return { out };
  } catch (error) {
    return { out, error };
  }
}

test('only y or Y goes on, as docker; the prompt ends in [y/N]', async () => {
  for (const yes of ['y', 'Y', ' y ', 'y\r']) {
    const r = await answer(yes);
    assert.equal(r.error, undefined, JSON.stringify(yes));
    assert.equal(r.out, 'WARNING! Sure? [y/N] ');
  }
  for (const no of ['', 'n', 'N', 'yes', 'yy', 'no']) {
    const r = await answer(no);
    assert.ok(r.error instanceof CancelledError, JSON.stringify(no));
    assert.equal((r.error as Error).message, 'x has been cancelled');
  }
});
