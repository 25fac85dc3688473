/**
 * The swarm, node, service, task, secret, config and plugin endpoints answer as a dockerd outside a swarm does
 * (issue 14 item 4): the same status and body from wharfd and the reference dockerd, request by request, and
 * the same docker CLI output.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startDaemon, type Daemon } from '../support/daemon.js';

let haveDockerd = true;
try { execFileSync('which', ['dockerd'], { stdio: 'ignore' }); } catch { haveDockerd = false; }

let w: Daemon;
let r: Daemon;

before(async () => {
  if (!haveDockerd) return;
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
});
after(async () => {
  await Promise.all([w?.stop(), r?.stop()]);
});

const REQUESTS = [
  'GET /swarm', 'GET /swarm/unlockkey', 'POST /swarm/unlock', 'POST /swarm/leave', 'POST /swarm/init', 'POST /swarm/join',
  'POST /swarm/update', 'GET /nodes', 'GET /nodes/x', 'DELETE /nodes/x', 'GET /services', 'GET /services/x', 'POST /services/create',
  'DELETE /services/x', 'GET /services/x/logs', 'GET /services/x/logs?stdout=1', 'GET /tasks', 'GET /tasks/x', 'GET /secrets',
  'GET /secrets/x', 'POST /secrets/create', 'GET /configs', 'GET /configs/x', 'GET /v1.41/plugins', 'GET /plugins/foo/json',
  'DELETE /plugins/foo', 'POST /plugins/foo/enable', 'POST /plugins/foo/enable?timeout=30', 'POST /plugins/foo/disable',
];

test('each swarm and plugin request gets dockerd\'s status and body', { skip: !haveDockerd }, async () => {
  const diffs: string[] = [];
  for (const req of REQUESTS) {
    const [m, u] = req.split(' ') as [string, string];
    const body = m === 'POST' ? '{}' : undefined;
    const [a, b] = await Promise.all([w.api(m, u, body), r.api(m, u, body)]);
    if (a.status !== b.status || a.body !== b.body) diffs.push(`${req}: wharfd ${a.status} ${a.body.trim()} / dockerd ${b.status} ${b.body.trim()}`);
  }
  assert.deepEqual(diffs, []);
});

test('the docker CLI prints the same for node/service/secret/config/stack ls, swarm leave and plugin ls/inspect', { skip: !haveDockerd }, async () => {
  for (const args of [['node', 'ls'], ['service', 'ls'], ['secret', 'ls'], ['config', 'ls'], ['stack', 'ls'], ['swarm', 'leave'], ['plugin', 'ls'], ['plugin', 'inspect', 'foo']]) {
    const [a, b] = await Promise.all([w.docker(args), r.docker(args)]);
    assert.deepEqual(a, b, args.join(' '));
  }
});
