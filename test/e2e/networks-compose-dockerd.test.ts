/**
 * The Compose project of test/support/compose.ts on wharfd and on Debian's dockerd: the same `docker-compose ps`
 * (port numbers aside), the same answer from the web service by name, the same logs, nothing left after down -v.
 * Skipped when dockerd cannot start here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { compose, lifecycle, writeProject } from '../support/compose.js';

let w: Daemon;
let ref: Daemon | undefined;
let refSkip: string | undefined;
let work: string;
const project = `d${process.pid.toString(36)}`;

before(async () => {
  w = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-compose-ref-'));
  await writeProject(work);
  await loadBusybox(w);
  ({ ref, skip: refSkip } = await startReference(w));
});
after(async () => {
  for (const d of [w, ref]) if (d) await compose(d, work, project, ['down', '-v']).catch(() => {});
  await w?.stop();
  await ref?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the same Compose project on wharfd and dockerd: same ps, same answers, nothing left', async (t) => {
  if (!ref) return t.skip(refSkip);
  const [mine, theirs] = await Promise.all([lifecycle(w, work, project, false), lifecycle(ref, work, project, false)]);
  assert.equal(mine.get, 'hello-from-compose\n');
  assert.deepEqual(mine, theirs);
});
