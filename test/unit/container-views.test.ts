/**
 * engine/containers/inspect.ts: the inspect and list answers built from a record carry dockerd 20.10's keys, in its
 * order, with its defaults for what the body left out, and Go's omitempty keys only when set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configView, hostConfigView, inspectView, stateView, summaryView } from '../../src/engine/containers/inspect.js';
import type { ContainerRecord } from '../../src/engine/containers/service.js';
import { MASKED_PATHS } from '../../src/engine/runtime/spec.js';

const record = (over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  ID: 'a'.repeat(64), Created: '2026-01-01T00:00:00.000000000Z', Path: 'sh', Args: ['-c', 'echo a b'],
  Config: { Image: 'busybox', Cmd: ['sh', '-c', 'echo a b'] }, HostConfig: { NetworkMode: 'default' }, Image: 'sha256:' + 'b'.repeat(64),
  Name: '/x', Driver: 'overlay', RestartCount: 0,
  State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' },
  ...over,
});

test('an empty HostConfig inspects with dockerd\'s 65 keys and defaults', () => {
  const hc = hostConfigView({}, 'runc');
  assert.equal(Object.keys(hc).length, 65);
  assert.deepEqual(Object.keys(hc).slice(0, 6), ['Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy']);
  assert.deepEqual(hc.LogConfig, { Type: 'json-file', Config: {} });
  assert.deepEqual(hc.RestartPolicy, { Name: '', MaximumRetryCount: 0 });
  assert.equal(hc.NetworkMode, 'default');
  assert.equal(hc.ShmSize, 64 * 1024 * 1024);
  assert.equal(hc.Runtime, 'runc');
  assert.equal(hc.IpcMode, 'private');
  assert.equal(hc.CgroupnsMode, 'host');
  assert.deepEqual(hc.ConsoleSize, [0, 0]);
  assert.equal(hc.MemorySwappiness, null);
  assert.equal(hc.PidsLimit, null);
  assert.deepEqual(hc.MaskedPaths, MASKED_PATHS);
  for (const k of ['Mounts', 'Tmpfs', 'Sysctls', 'StorageOpt', 'Init']) assert.ok(!(k in hc), `${k} is omitempty`);
});

test('what the body set is kept; omitempty keys appear when set; privileged has no masked paths', () => {
  const hc = hostConfigView({ Memory: 1 << 26, Tmpfs: { '/run': '' }, Init: true, Privileged: true, LogConfig: { Type: 'none', Config: null }, Runtime: 'crun', Mounts: [] }, 'runc');
  assert.equal(hc.Memory, 1 << 26);
  assert.deepEqual(hc.Tmpfs, { '/run': '' });
  assert.equal(hc.Init, true);
  assert.ok(!('Mounts' in hc), 'an empty Mounts is left out');
  assert.equal(hc.MaskedPaths, null);
  assert.equal(hc.ReadonlyPaths, null);
  assert.deepEqual(hc.LogConfig, { Type: 'none', Config: {} });
  assert.equal(hc.Runtime, 'crun');
  assert.equal(Object.keys(hc).length, 67);
});

test('Config: dockerd\'s order, omitempty keys only when set, unknown keys of an old record dropped', () => {
  const c = configView({ Image: 'busybox', Cmd: ['true'], junk: 1, StopSignal: 'SIGINT', ExposedPorts: null });
  assert.deepEqual(Object.keys(c), ['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin',
    'StdinOnce', 'Env', 'Cmd', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels', 'StopSignal']);
  assert.deepEqual(c.Labels, {});
});

test('State.Health only for a started container with a healthcheck; unhealthy once stopped', () => {
  const hc = { Healthcheck: { Test: ['CMD-SHELL', 'true'] }, Image: 'busybox' };
  assert.ok(!('Health' in stateView(record({ Config: hc }))), 'created: no health yet');
  const started = record({ Config: hc });
  started.State = { ...started.State, Status: 'running', Running: true, StartedAt: '2026-01-01T00:00:01Z' };
  assert.deepEqual(stateView(started).Health, { Status: 'starting', FailingStreak: 0, Log: [] });
  const exited = record({ Config: hc });
  exited.State = { ...started.State, Status: 'exited', Running: false, FinishedAt: '2026-01-01T00:00:02Z' };
  assert.deepEqual(stateView(exited).Health, { Status: 'unhealthy', FailingStreak: 0, Log: [] });
  const none = record({ Config: { Healthcheck: { Test: ['NONE'] } } });
  none.State = started.State;
  assert.ok(!('Health' in stateView(none)));
});

test('inspect and summary: sizes only when asked (summary: omitted when 0), network and mounts shapes', () => {
  const r = record({ MountPoints: [{ Type: 'volume', Name: 'v', Source: '/d/v/_data', Destination: '/data', Mode: '', RW: true }] });
  const i = inspectView(r, { dir: '/c', runtime: 'runc', graphDriver: 'overlay2' });
  assert.ok(!('SizeRw' in i));
  assert.equal(i.Driver, 'overlay2');
  assert.deepEqual(i.Mounts, [{ Type: 'volume', Name: 'v', Source: '/d/v/_data', Destination: '/data', Driver: 'local', Mode: 'z', RW: true, Propagation: '' }]);
  assert.deepEqual(Object.keys(i.NetworkSettings.Networks), ['bridge']);
  assert.equal(Object.keys(i.NetworkSettings.Networks.bridge!).length, 13);
  const s = inspectView(r, { dir: '/c', runtime: 'runc', graphDriver: 'overlay2', sizes: { SizeRw: 0, SizeRootFs: 5 } });
  assert.equal(s.SizeRw, 0);
  const sum = summaryView(r, 'Created', { SizeRw: 0, SizeRootFs: 5 });
  assert.ok(!('SizeRw' in sum));
  assert.equal(sum.SizeRootFs, 5);
  assert.equal(sum.Command, "sh -c 'echo a b'");
  assert.deepEqual(sum.HostConfig, { NetworkMode: 'default' });
});
