/**
 * Pull throughput of `wharf registry serve` against Debian's docker-registry on the same blob (the measurement
 * of bench/registry.ts: 10 parallel curl clients, alternating rounds, medians). Reported as diagnostics. The
 * assertion is a loose regression guard (≥ 0.5× docker-registry), not the performance target (≥ 1.0×, checked
 * by `node dist/bench/run.js registry`), because the machine is shared while tests run.
 */
// wharf-test: alone
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, measureRegistryThroughput } from '../../bench/registry.js';

test('pull throughput with 10 parallel clients: wharf registry vs docker-registry', { timeout: 300_000 }, async (t) => {
  const r = await measureRegistryThroughput({
    clients: Number(process.env.WHARF_BENCH_CLIENTS ?? 10), rep: Number(process.env.WHARF_BENCH_REP ?? 3), rounds: Number(process.env.WHARF_BENCH_ROUNDS ?? 3),
  });
  t.diagnostic(`docker-registry: ${describe(r.theirs)}`);
  t.diagnostic(`wharf registry:  ${describe(r.ours)}`);
  t.diagnostic(`ratio (aggregate): ${r.ratio.toFixed(2)}x`);
  assert.ok(r.ratio >= 0.5, `wharf registry serves at ${r.ratio.toFixed(2)}x docker-registry's throughput`);
});
