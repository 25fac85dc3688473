/**
 * The container, exec, commit and volume routes against fake backends (api/backend.ts): what each route hands its
 * backend (bodies decoded as Go decodes them: keys case-insensitive, unknown keys dropped, strslice as lists) and
 * what it answers (status codes, shapes, errors mapped to docker's statuses, wrong types a 400 naming the field).
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  Backends, CommitBackend, ContainerBackend, ContainerRuntimeBackend, ExecBackend, VolumeBackend,
} from '../../src/api/backend.js';
import { createApiServer } from '../../src/api/server.js';
import type { AuthConfig } from '../../src/wire/index.js';
import { ConflictError, NotFoundError } from '../../src/lib/errors.js';
import type { ContainerInspect, Volume } from '../../src/wire/index.js';

interface Call { fn: string; args: unknown[] }
let calls: Call[] = [];
const rec = (fn: string, ...args: unknown[]) => { calls.push({ fn, args }); };

const ID = 'f'.repeat(64);
const inspectAnswer = { Id: ID, Name: '/x', HostConfig: { LogConfig: { Type: 'json-file', Config: {} } } } as unknown as ContainerInspect;

const containers: ContainerBackend = {
  async create(name, body) {
    rec('create', name, body);
    if (body.Image === 'missing') throw new NotFoundError('No such image: missing:latest');
    return { Id: ID, Warnings: [] };
  },
  async inspect(ref, opts) {
    rec('inspect', ref, opts);
    if (ref === 'nope') throw new NotFoundError(`No such container: ${ref}`);
    return inspectAnswer;
  },
  async list(opts) { rec('list', opts); return []; },
  async prune(filters) { rec('prune', filters); return { ContainersDeleted: null, SpaceReclaimed: 0 }; },
  logReading(ref) { rec('logReading', ref); return { attrs: '' }; },
  async removeLink(name) { rec('removeLink', name); },
  async rename(ref, name) { rec('rename', ref, name); },
  async remove(ref, opts) {
    rec('remove', ref, opts);
    if (ref === 'busy') throw new ConflictError(`You cannot remove a running container ${ID}. Stop the container before attempting removal or force remove`);
  },
  attachInfo(ref) { rec('attachInfo', ref); return { id: ID, tty: false, openStdin: false }; },
};

const runtime: ContainerRuntimeBackend = {
  async start(ref) { rec('start', ref); },
  async wait(ref, condition) { rec('wait', ref, condition); return { StatusCode: 3, Error: null }; },
  async pause(ref) { rec('pause', ref); },
  async unpause(ref) { rec('unpause', ref); },
  async restart(ref, t) { rec('restart', ref, t); },
  async stop(ref, t) { rec('stop', ref, t); },
  async kill(ref, signal) { rec('kill', ref, signal); },
  async top(ref, ps) { rec('top', ref, ps); return { Titles: ['PID'], Processes: [['1']] }; },
  async resize(ref, h, w) { rec('resize', ref, h, w); },
  async changes(ref) { rec('changes', ref); return [{ path: '/tmp', kind: 0 }, { path: '/tmp/a', kind: 1 }]; },
  isTty() { return false; },
  async *logs(ref, o) {
    rec('logs', ref, o);
    yield { stream: 'stdout', time: '2026-01-01T00:00:00.000000000Z', data: Buffer.from('out\n') };
    yield { stream: 'stderr', time: '2026-01-01T00:00:01.000000000Z', data: Buffer.from('err\n') };
  },
  async attach(ref) { rec('attach', ref); },
};

const exec: ExecBackend = {
  create(ref, body) { rec('execCreate', ref, body); return { Id: 'e'.repeat(64) }; },
  get(id) {
    if (id !== 'e'.repeat(64)) throw new NotFoundError(`No such exec instance: ${id}`);
    return { ID: id, OpenStdin: false, OpenStdout: true, OpenStderr: true, DetachKeys: '', ProcessConfig: { tty: false } };
  },
  inspect(id) { return { ID: id }; },
  async resize(id, h, w) { rec('execResize', id, h, w); },
  async start(id) { rec('execStart', id); return 0; },
};

const commit: CommitBackend = {
  async commit(ref, o) { rec('commit', ref, o); return 'sha256:' + 'c'.repeat(64); },
};

const vol: Volume = { CreatedAt: '2026-01-01T00:00:00Z', Driver: 'local', Labels: null, Mountpoint: '/v/_data', Name: 'v', Options: null, Scope: 'local' };
const volumes: VolumeBackend = {
  async list(f) { rec('volList', f); return [vol]; },
  async create(body) { rec('volCreate', body); return { ...vol, Name: body.Name ?? 'random' }; },
  get(name) { if (name !== 'v') throw new NotFoundError(`get ${name}: no such volume`); return vol; },
  async remove(name, force) { rec('volRemove', name, force); },
  async prune(f) { rec('volPrune', f); return { VolumesDeleted: null, SpaceReclaimed: 0 }; },
};

const backends: Backends = {
  images: {} as Backends['images'],
  system: {} as Backends['system'],
  containers, runtime, exec, commit, volumes,
  auth: { async login(a: AuthConfig) { rec('login', a); return { IdentityToken: '', Status: 'Login Succeeded' }; } },
  search: { async search() { return []; } },
};

let dir = '';
let sock = '';
let server: Server;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-api-ctr-'));
  sock = join(dir, 'api.sock');
  server = createApiServer(backends);
  await new Promise<void>((resolve) => server.listen(sock, resolve));
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => { calls = []; });

function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), type: res.headers['content-type'] }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

const only = (fn: string): unknown[] => {
  const c = calls.filter((x) => x.fn === fn);
  assert.equal(c.length, 1, `one call to ${fn}: ${JSON.stringify(calls)}`);
  return c[0]!.args;
};

test('create: keys matched case-insensitively into the canonical body, unknown keys dropped, strslice as lists', async () => {
  const r = await call('POST', '/v1.41/containers/create?name=web', {
    image: 'busybox', CMD: 'echo hi', entrypoint: null, Bogus: 1, labels: { Keep: 'Case' },
    hostconfig: { memory: 67108864, CPURealtimePeriod: 0, logconfig: { type: 'none', config: { 'max-size': '1m' } }, restartpolicy: { name: 'on-failure', maximumretrycount: 2 }, capadd: 'NET_ADMIN', portbindings: { '80/tcp': [{ hostport: '8080' }] }, mounts: [{ type: 'volume', source: 'v', target: '/data', readonly: true }], nope: true },
    networkingconfig: { endpointsconfig: { bridge: { aliases: ['a'] } } },
  });
  assert.equal(r.status, 201, r.body);
  assert.deepEqual(JSON.parse(r.body), { Id: ID, Warnings: [] });
  assert.deepEqual(only('create'), ['web', {
    Image: 'busybox', Cmd: ['echo hi'], Labels: { Keep: 'Case' },
    HostConfig: {
      Memory: 67108864, CpuRealtimePeriod: 0, LogConfig: { Type: 'none', Config: { 'max-size': '1m' } },
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 }, CapAdd: ['NET_ADMIN'], PortBindings: { '80/tcp': [{ HostPort: '8080' }] },
      Mounts: [{ Type: 'volume', Source: 'v', Target: '/data', ReadOnly: true }],
    },
    NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: ['a'] } } },
  }]);
});

test('create: wrong types are a 400 naming the field as Go does; nothing reaches the backend', async () => {
  const cases: [unknown, string][] = [
    [{ Image: 'busybox', HostConfig: { Memory: '1g' } }, 'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64'],
    [{ Image: 'busybox', hostConfig: { restartPolicy: { maximumRetryCount: 'x' } } }, 'json: cannot unmarshal string into Go struct field RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount of type int'],
    [{ Image: 'busybox', Tty: 1 }, 'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Tty of type bool'],
    [{ Image: 'busybox', HostConfig: { Memory: 1.5 } }, 'json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64'],
    [{ Image: 'busybox', HostConfig: { BlkioWeight: 70000 } }, 'json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16'],
    [{ Image: 'busybox', Healthcheck: { Test: 'true' } }, 'json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Test of type []string'],
    [{ Image: 'busybox', HostConfig: { Ulimits: [{ Name: 'nofile', Soft: '1' }] } }, 'json: cannot unmarshal string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64'],
    [{ Image: 'busybox', ExposedPorts: { '80/tcp': 1 } }, 'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.ExposedPorts of type struct {}'],
    [[1], 'json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper'],
  ];
  for (const [body, message] of cases) {
    const r = await call('POST', '/containers/create', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.deepEqual(JSON.parse(r.body), { message }, JSON.stringify(body));
  }
  assert.deepEqual(calls, []);
  const bad = await call('POST', '/containers/create', '{"Image":');
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /^invalid JSON body/);
  for (const empty of ['', 'null']) {
    const e = await call('POST', '/containers/create', empty);
    assert.equal(e.status, 400);
    assert.equal(JSON.parse(e.body).message, 'Config cannot be empty in order to create a container');
  }
  const nf = await call('POST', '/containers/create', { Image: 'missing' });
  assert.equal(nf.status, 404);
});

test('inspect, list, rename, remove, prune: status codes and what the backend is asked', async () => {
  let r = await call('GET', '/containers/x/json?size=1');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), inspectAnswer);
  assert.deepEqual(only('inspect'), ['x', { size: true }]);
  r = await call('GET', '/containers/nope/json');
  assert.equal(r.status, 404);
  assert.deepEqual(JSON.parse(r.body), { message: 'No such container: nope' });
  r = await call('GET', '/containers/json?all=1&size=true&limit=2&filters=' + encodeURIComponent('{"status":{"exited":true}}'));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), []);
  assert.deepEqual(JSON.parse(JSON.stringify(only('list'))), [{ all: true, limit: 2, size: true, filters: { status: ['exited'] } }], 'filters as plain data (lib/filters.ts makes them without a prototype)');
  r = await call('POST', '/containers/x/rename?name=y');
  assert.equal(r.status, 204);
  r = await call('DELETE', '/containers/busy?v=1');
  assert.equal(r.status, 409);
  assert.deepEqual(calls.filter((c) => c.fn === 'remove').map((c) => c.args), [['busy', { force: false, volumes: true }]]);
  r = await call('DELETE', '/containers/x?force=1');
  assert.equal(r.status, 204);
  // docker rm --link /web/db: the link's name is a path of two segments
  r = await call('DELETE', '/containers//web/db?link=1');
  assert.equal(r.status, 204);
  assert.deepEqual(calls.filter((c) => c.fn === 'removeLink').map((c) => c.args), [['/web/db']]);
  r = await call('POST', '/containers/prune');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { ContainersDeleted: null, SpaceReclaimed: 0 });
  r = await call('POST', '/containers/prune?filters=' + encodeURIComponent('{"until":["1h"]}'));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(JSON.stringify(calls.filter((c) => c.fn === 'prune').map((c) => c.args))), [[{}], [{ until: ['1h'] }]]);
});

test('runtime routes: start, stop/restart timeouts, wait, top, changes, logs frames', async () => {
  assert.equal((await call('POST', '/containers/x/start')).status, 204);
  assert.equal((await call('POST', '/containers/x/stop?t=3')).status, 204);
  assert.deepEqual(only('stop'), ['x', 3]);
  assert.equal((await call('POST', '/containers/x/restart')).status, 204);
  assert.deepEqual(only('restart'), ['x', undefined]);
  assert.equal((await call('POST', '/containers/x/kill?signal=HUP')).status, 204);
  const w = await call('POST', '/containers/x/wait?condition=next-exit');
  assert.deepEqual(JSON.parse(w.body), { StatusCode: 3, Error: null });
  assert.deepEqual(only('wait'), ['x', 'next-exit']);
  assert.deepEqual(JSON.parse((await call('GET', '/containers/x/top?ps_args=aux')).body), { Titles: ['PID'], Processes: [['1']] });
  assert.deepEqual(JSON.parse((await call('GET', '/containers/x/changes')).body), [{ Path: '/tmp', Kind: 0 }, { Path: '/tmp/a', Kind: 1 }]);
  assert.equal((await call('GET', '/containers/x/logs')).status, 400);
  const l = await call('GET', '/containers/x/logs?stdout=1&stderr=1&tail=5');
  assert.equal(l.status, 200);
  // stdcopy frames: 1 = stdout, 2 = stderr, big-endian length
  const raw = Buffer.from(l.body, 'latin1');
  assert.deepEqual([...raw.subarray(0, 8)], [1, 0, 0, 0, 0, 0, 0, 4]);
  assert.equal(raw.subarray(8, 12).toString(), 'out\n');
  assert.equal(raw[12], 2);
  assert.deepEqual(only('logs'), ['x', { follow: false, tail: 5 }]);
  assert.equal((await call('POST', '/containers/x/resize?h=x')).status, 400);
});

test('exec and commit bodies go through the decoder (docker-py\'s detachKeys, a config with lower-case keys)', async () => {
  let r = await call('POST', '/containers/x/exec', { cmd: ['ls', '-l'], attachStdout: true, detachKeys: 'ctrl-x', tty: false, extra: 1 });
  assert.equal(r.status, 201);
  assert.deepEqual(only('execCreate'), ['x', { Cmd: ['ls', '-l'], AttachStdout: true, DetachKeys: 'ctrl-x', Tty: false }]);
  r = await call('POST', '/containers/x/exec', { Cmd: ['ls'], Privileged: 'yes' });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).message, 'json: cannot unmarshal string into Go struct field ExecConfig.Privileged of type bool');
  r = await call('POST', `/exec/${'e'.repeat(64)}/start`, { detach: true });
  assert.equal(r.status, 200);
  r = await call('POST', '/exec/nope/start', {});
  assert.equal(r.status, 404);
  r = await call('POST', '/commit?container=x&repo=img&tag=1&pause=0&changes=ENV%20A%3D1', { cmd: ['sh'], labels: { a: 'b' } });
  assert.equal(r.status, 201);
  assert.deepEqual(JSON.parse(r.body), { Id: 'sha256:' + 'c'.repeat(64) });
  assert.deepEqual(only('commit'), ['x', {
    repo: 'img', tag: '1', comment: '', author: '', changes: ['ENV A=1'], pause: false, config: { Cmd: ['sh'], Labels: { a: 'b' } },
  }]);
});

test('volumes: create body decoded, list shape, filters checked, 404 and remove', async () => {
  let r = await call('POST', '/volumes/create', { name: 'v', labels: { a: 'b' }, driveropts: { o: 'x' }, Extra: true });
  assert.equal(r.status, 201);
  assert.deepEqual(only('volCreate'), [{ Name: 'v', Labels: { a: 'b' }, DriverOpts: { o: 'x' } }]);
  r = await call('POST', '/volumes/create');
  assert.equal(r.status, 201);
  assert.equal(JSON.parse(r.body).Name, 'random');
  r = await call('POST', '/volumes/create', { Name: 5 });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).message, 'json: cannot unmarshal number into Go struct field VolumeCreateBody.Name of type string');
  r = await call('GET', '/volumes');
  assert.deepEqual(JSON.parse(r.body), { Volumes: [vol], Warnings: null });
  assert.equal((await call('GET', '/volumes?filters=' + encodeURIComponent('{"bogus":["x"]}'))).status, 400);
  assert.equal((await call('GET', '/volumes/v')).status, 200);
  assert.equal((await call('GET', '/volumes/w')).status, 404);
  assert.equal((await call('DELETE', '/volumes/v?force=1')).status, 204);
  assert.deepEqual(only('volRemove'), ['v', true]);
});

test('POST /auth: types.AuthConfig decoded case-insensitively; a wrong type is a 400', async () => {
  let r = await call('POST', '/auth', { Username: 'u', PASSWORD: 'p', serverAddress: 'localhost:5000', email: '', x: 1 });
  assert.equal(r.status, 200);
  assert.deepEqual(only('login'), [{ username: 'u', password: 'p', serveraddress: 'localhost:5000' }]);
  r = await call('POST', '/auth', { username: 5 });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).message, 'json: cannot unmarshal number into Go struct field AuthConfig.username of type string');
});

test('create: map keys are data ("__proto__" is a label, not a prototype); nulls leave Go\'s zero values', async () => {
  const r = await call('POST', '/containers/create', '{"Image":"busybox","Labels":{"__proto__":"x","a":null},"Env":null,'
    + '"NetworkingConfig":{"EndpointsConfig":{"__proto__":{"Aliases":["p"]}}},"HostConfig":{"Memory":null,"CapAdd":null}}');
  assert.equal(r.status, 201, r.body);
  const body = only('create')[1] as Record<string, any>;
  assert.deepEqual(Object.keys(body.Labels), ['__proto__', 'a']);
  assert.equal(Object.getPrototypeOf(body.Labels), Object.prototype);
  assert.equal(body.Labels.a, '');
  assert.deepEqual(Object.keys(body.NetworkingConfig.EndpointsConfig), ['__proto__']);
  assert.equal(Object.getPrototypeOf(body.NetworkingConfig.EndpointsConfig), Object.prototype);
  assert.ok(!('Env' in body));
  assert.deepEqual(body.HostConfig, {});
});
