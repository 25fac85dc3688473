/**
 * Exec instances as dockerd keeps them: a container's ExecIDs lists only those that have not ended; the daemon keeps
 * an ended one for `GET /exec/{id}/json` until its collector has seen it not running twice (CanRemove at the first
 * pass, gone at the second), so the daemon does not grow with every exec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecService } from '../../src/engine/containers/exec.js';
import { NotFoundError } from '../../src/lib/errors.js';
import type { ContainerService } from '../../src/engine/containers/service.js';
import type { Runtime } from '../../src/engine/runtime/index.js';

function service(): { x: ExecService; events: string[] } {
  const events: string[] = [];
  const record = { ID: 'c'.repeat(64), State: { Running: true } };
  const c = { get: () => record, emit: (_r: unknown, action: string) => { events.push(action); } } as unknown as ContainerService;
  // a runtime whose exec fails at once: the instance runs, fails to start, and ends (exit code 126)
  const rt = { exec: async () => { throw new Error('no runtime here'); } } as unknown as Runtime;
  return { x: new ExecService(c, rt, '/nonexistent-exec-root'), events };
}

test('ExecIDs lists execs not ended; an ended one stays inspectable until the second collector pass', async () => {
  const { x } = service();
  const cid = 'c'.repeat(64);
  const a = x.create(cid, { Cmd: ['true'] }).Id;
  const b = x.create(cid, { Cmd: ['sh', '-c', 'exit 3'] }).Id;
  assert.deepEqual(x.idsOf(cid)?.sort(), [a, b].sort(), 'both created, neither ended');
  await assert.rejects(x.start(b, {}));
  assert.equal(x.inspect(b).Running, false);
  assert.equal(x.inspect(b).ExitCode, 126);
  assert.deepEqual(x.idsOf(cid), [a], 'the ended exec left the container\'s list');

  x.collect();
  assert.equal(x.inspect(b).CanRemove, true, 'marked at the first pass, still inspectable');
  assert.equal(x.inspect(a).CanRemove, true, 'a created, never started exec is not running either');
  x.collect();
  assert.throws(() => x.inspect(b), (e: unknown) => e instanceof NotFoundError && /No such exec instance/.test((e as Error).message));
  assert.throws(() => x.inspect(a), NotFoundError);
  assert.equal(x.idsOf(cid), null);
});

test('a running exec is never collected', () => {
  const { x } = service();
  const cid = 'c'.repeat(64);
  const a = x.create(cid, { Cmd: ['sleep', '9'] }).Id;
  x.get(a).Running = true;
  x.collect();
  x.collect();
  x.collect();
  assert.equal(x.inspect(a).Running, true);
  assert.equal(x.inspect(a).CanRemove, false);
});
