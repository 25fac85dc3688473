/** The stage plan (build/plan.ts): the target, the stages it needs, step numbers as the classic builder prints them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planStages, stageDependencies } from '../../src/engine/build/plan.js';
import { parseInstructions } from '../../src/engine/build/dockerfile/instructions.js';

const DF = parseInstructions([
  'ARG BASE=busybox',
  'FROM $BASE AS a',
  'RUN true',
  'FROM busybox AS unused',
  'RUN false',
  'FROM a AS b',
  'COPY --from=0 /x /x',
  'FROM busybox',
  'COPY --from=b /x /y',
  'CMD ["x"]',
].join('\n'));

test('the last stage and what it needs through FROM and COPY --from; unneeded stages skipped', () => {
  const p = planStages(DF, { metaEnv: new Map([['BASE', 'busybox']]) });
  assert.equal(p.target, 3);
  assert.deepEqual(p.order, [0, 2, 3]);
  // 1 meta ARG + (1+1) + (1+1) + (1+2)
  assert.equal(p.total, 8);
  assert.deepEqual([...p.firstStep], [[0, 1], [2, 3], [3, 5]]);
});

test('--target picks a stage by name; an unknown one fails as dockerd', () => {
  const p = planStages(DF, { target: 'B', metaEnv: new Map() });
  assert.equal(p.target, 2);
  assert.deepEqual(p.order, [0, 2]);
  assert.throws(() => planStages(DF, { target: 'nope', metaEnv: new Map() }), /failed to reach build target nope in Dockerfile/);
});

test('a COPY --from with a variable depends on every earlier stage', () => {
  const df = parseInstructions('FROM busybox AS one\nFROM busybox AS two\nFROM busybox\nARG S\nCOPY --from=$S /a /a\n');
  assert.deepEqual(stageDependencies(df, df.stages[2]!, new Map()), [0, 1]);
});
