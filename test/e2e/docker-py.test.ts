/**
 * docker-py, an SDK client nobody here wrote (Debian's python3-docker 5.0.3), against wharfd: run with and without
 * detach, reload, HostConfig keys it reads (`LogConfig` was a KeyError once), logs, wait, remove, images, volumes
 * and an API error, leaving nothing behind. Skipped when python3-docker is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { projectRoot, run, show } from '../support/cli.js';

const havePy = existsSync('/usr/lib/python3/dist-packages/docker/__init__.py') && existsSync('/usr/bin/python3');
let d: Daemon | undefined;

before(async () => {
  if (!havePy) return;
  d = await startDaemon();
  await loadBusybox(d);
});
after(async () => { await d?.stop(); });

test('docker-py: containers.run, detach, reload, attrs, logs, wait, exec_run, top, kill, remove, images, volumes', { skip: !havePy && 'python3-docker is not installed', timeout: 50_000 }, async () => {
  const r = await run('/usr/bin/python3', [join(projectRoot, 'test', 'fixtures', 'docker-py-smoke.py'), 'dockerpy'], {
    env: { ...process.env, DOCKER_HOST: d!.host, PYTHONPATH: '' },
  });
  assert.equal(r.code, 0, show(r));
  const o = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(o.version, '5.0.3');
  assert.equal(o.run, 'hi\n');
  assert.deepEqual(o.wait, { StatusCode: 3, Error: null });
  assert.equal(o.status, 'exited');
  assert.equal(o.exit_code, 3);
  assert.deepEqual(o.log_config, { Type: 'json-file', Config: {} });
  assert.deepEqual(o.restart_policy, { Name: 'no', MaximumRetryCount: 0 });
  assert.equal(o.memory, 64 * 1024 * 1024);
  assert.deepEqual(o.labels, { k: 'v' });
  assert.deepEqual(o.logs.split('\n').sort(), ['', 'err', 'out']);
  assert.equal(o.stdout, 'out\n');
  assert.deepEqual(o.listed, ['dockerpy-det']);
  assert.deepEqual(o.listed_after, []);
  // stdout and stderr are two pipes: their order in the merged output is the scheduler's
  assert.equal(o.exec[0], 2);
  assert.deepEqual(o.exec[1].split('\n').sort(), ['', 'hi', 'there']);
  assert.equal(o.top.length, 1);
  assert.equal(o.up_status, 'running');
  assert.equal(o.up_ip, true);
  assert.equal(o.up_wait, 137);
  assert.ok(o.images.includes('busybox:latest'), o.images.join());
  assert.deepEqual(o.volume, { name: 'dockerpy-vol', driver: 'local', labels: { a: 'b' } });
  assert.deepEqual(o.volumes, ['dockerpy-vol']);
  assert.deepEqual(o.volumes_after, []);
  assert.deepEqual(o.error, { status: 400, explanation: 'Minimum memory limit allowed is 6MB' });
  // nothing left behind: no container (the --rm one included) and no volume
  assert.deepEqual(JSON.parse((await d!.api('GET', '/containers/json?all=1')).body), []);
  assert.deepEqual(JSON.parse((await d!.api('GET', '/volumes')).body).Volumes, []);
});
