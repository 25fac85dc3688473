/**
 * Debian's docker-compose (1.29) runs a real project against wharfd unchanged (test/support/compose.ts): a service
 * built from a Dockerfile serving HTTP, a client reaching it by service name on the project network, a named volume,
 * environment, a published port, depends_on; up -d, ps, logs, exec, restart, --scale, down -v leaving no network,
 * container or volume. networks-compose-dockerd.test.ts compares the same project with dockerd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { compose, lifecycle, writeProject } from '../support/compose.js';

let w: Daemon;
let work: string;
const project = `c${process.pid.toString(36)}`;

before(async () => {
  w = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-compose-'));
  await writeProject(work);
  await loadBusybox(w);
});
after(async () => {
  if (w) await compose(w, work, project, ['down', '-v']).catch(() => {});
  await w?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a Compose project: up -d, ps, exec by service name, logs, restart, --scale, down -v', async () => {
  const mine = await lifecycle(w, work, project);
  assert.equal(mine.get, 'hello-from-compose\n', 'the client reached the web service by name');
  assert.match(mine.ps, new RegExp(`${project}_client_1 .* Up +\\n${project}_web_1 .* Up +127\\.0\\.0\\.1:<port>->8080/tcp`), mine.ps);
  assert.match(mine.logs, /web_1 +\| started\n/);
  assert.equal(mine.scaled, 'hello-from-compose\n2\n', 'the second client reaches web, and "client" names both replicas');
  assert.equal(mine.starts, '2', 'the named volume kept the first start through the restart');
  assert.equal(mine.left, '||', 'down -v left no container, network or volume');
});
