/**
 * The Engine API's answers have dockerd 20.10's shapes: the same containers (a bare body as docker-py sends it,
 * lower-case keys, a docker CLI create with many options, a run that exited, a running one) are made on wharfd and
 * on Debian's dockerd, and inspect, list and the volume answers are compared KEY SET by key set, recursively (a
 * missing or extra key anywhere fails), plus the default values dockerd fills in for a bare body. Wrong types in
 * a body are refused with Go's message, word for word. Skipped when dockerd is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBusybox, sameBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;

before(async () => {
  if (!haveDockerd) return;
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  await sameBusybox(w, r);
  // WHARF_E2E_DAEMON=dockerd (the test checked against docker itself): `w` is a dockerd too, and needs its own busybox
  if (w.engine !== 'wharfd') await loadBusybox(w);
});
after(async () => {
  for (const d of [w, r]) {
    if (!d) continue;
    for (const c of ['bare', 'lower', 'opts', 'ran', 'up', 'nonet']) await d.api('DELETE', `/containers/${c}?force=1&v=1`).catch(() => {});
    for (const v of ['shapes-vol', 'shapes-vol2']) await d.api('DELETE', `/volumes/${v}?force=1`).catch(() => {});
  }
  await Promise.all([w?.stop(), r?.stop()]);
});

/** Paths whose key sets are known to differ, with the reason. */
const KNOWN: Record<string, string> = {};

/**
 * dockerd leaves `Runtime` (omitempty) out of a container created without any HostConfig until its first start;
 * Wharf names the runtime from the create on (docker-py and the docker CLI always send a HostConfig).
 */
const BARE_KNOWN = ['HostConfig.Runtime'];

/** Every key present on one side only, recursively (objects by key; arrays by their first elements). */
function keyDiff(ours: unknown, theirs: unknown, path = '', known: string[] = []): string[] {
  if (KNOWN[path.slice(1)] || known.includes(path.slice(1))) return [];
  const obj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(ours) && Array.isArray(theirs)) {
    // elements paired by name or ID when they have one (lists come in different orders), else the first ones
    const key = (x: any) => (x && typeof x === 'object' ? x.Name ?? (Array.isArray(x.Names) ? x.Names[0] : undefined) ?? x.Id : undefined);
    const pairs = ours.map((x) => [x, theirs.find((y) => key(y) !== undefined && key(y) === key(x))]).filter(([, y]) => y !== undefined);
    if (pairs.length) return pairs.flatMap(([x, y]) => keyDiff(x, y, `${path}[${key(x)}]`, known));
    return ours.length && theirs.length ? keyDiff(ours[0], theirs[0], `${path}[0]`, known) : [];
  }
  if (obj(ours) !== obj(theirs)) return [`${path}: ${JSON.stringify(ours)?.slice(0, 60)} here, ${JSON.stringify(theirs)?.slice(0, 60)} in dockerd`];
  if (!obj(ours) || !obj(theirs)) return [];
  const out: string[] = [];
  for (const k of Object.keys(theirs)) if (!(k in ours) && !known.includes(`${path}.${k}`.slice(1))) out.push(`${path}.${k} missing`);
  for (const k of Object.keys(ours)) if (!(k in theirs) && !known.includes(`${path}.${k}`.slice(1))) out.push(`${path}.${k} extra`);
  for (const k of Object.keys(ours)) if (k in theirs) out.push(...keyDiff(ours[k], theirs[k], `${path}.${k}`, known));
  return out;
}

async function json(d: Daemon, method: string, path: string, body?: unknown): Promise<any> {
  const res = await d.api(method, path, body === undefined ? undefined : JSON.stringify(body));
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.body}`);
  return res.body.trim() === '' ? null : JSON.parse(res.body);
}

/** Makes the same containers and volumes on a daemon. */
async function populate(d: Daemon): Promise<void> {
  await json(d, 'POST', '/containers/create?name=bare', { Image: 'busybox', Cmd: ['echo', 'hi'] });
  await json(d, 'POST', '/containers/create?name=lower', {
    image: 'busybox', cmd: 'true', labels: { a: 'b' }, hostconfig: { memory: 67108864, logconfig: { type: 'none' }, restartpolicy: { name: 'no' } }, bogus: 1,
  });
  const c = await d.docker(['create', '--name', 'opts', '--health-cmd', 'true', '-p', '8080:80', '-v', 'shapes-vol:/data',
    '--restart', 'on-failure:3', '--cap-add', 'NET_ADMIN', '--shm-size', '32m', '--tmpfs', '/run', '-e', 'A=1', '--label', 'x=y',
    '--stop-signal', 'SIGINT', '--stop-timeout', '5', '--init', '--ulimit', 'nofile=1024:2048', 'busybox', 'sleep', '5']);
  assert.equal(c.code, 0, show(c));
  const ran = await d.docker(['run', '--name', 'ran', '--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'echo', 'hi']);
  assert.equal(ran.code, 0, show(ran));
  const nonet = await d.docker(['create', '--name', 'nonet', '--network', 'none', '--privileged', 'busybox', 'true']);
  assert.equal(nonet.code, 0, show(nonet));
  const up = await d.docker(['run', '-d', '--name', 'up', '-p', '127.0.0.1::80', '--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'sleep', '60']);
  assert.equal(up.code, 0, show(up));
  await json(d, 'POST', '/volumes/create', { Name: 'shapes-vol2', Labels: { k: 'v' }, driver: 'local' });
}

test('inspect, list and volume answers have dockerd\'s key sets; a bare body gets dockerd\'s defaults', { skip: !haveDockerd && 'dockerd is not installed', timeout: 55_000 }, async () => {
  await Promise.all([populate(w!), populate(r!)]);
  const problems: string[] = [];
  for (const name of ['bare', 'lower', 'opts', 'ran', 'up', 'nonet']) {
    const [a, b] = await Promise.all([w!, r!].map((d) => json(d, 'GET', `/containers/${name}/json?size=1`)));
    problems.push(...keyDiff(a, b, '', name === 'bare' ? BARE_KNOWN : []).map((p) => `inspect ${name}${p}`));
  }
  const [la, lb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/containers/json?all=1')));
  const byName = (l: any[], n: string) => l.find((x) => x.Names[0] === `/${n}`);
  for (const name of ['bare', 'opts', 'up', 'nonet']) problems.push(...keyDiff(byName(la, name), byName(lb, name)).map((p) => `list ${name}${p}`));
  const [sa, sb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/containers/json?all=1&size=1')));
  problems.push(...keyDiff(byName(sa, 'opts'), byName(sb, 'opts')).map((p) => `list?size=1 opts${p}`));
  const [va, vb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/volumes')));
  problems.push(...keyDiff(va, vb).map((p) => `volumes${p}`));
  const [v1, v2] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/volumes/shapes-vol2')));
  problems.push(...keyDiff(v1, v2).map((p) => `volume${p}`));
  const [da, db] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/system/df')));
  problems.push(...keyDiff(da, db).map((p) => `df${p}`));
  const [ia, ib] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/version')));
  problems.push(...keyDiff(ia, ib).map((p) => `version${p}`));
  assert.deepEqual(problems, []);
  // GraphDriver.Data: dockerd's overlay2 keys, and the directories are the running container's own
  const [ga, gb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/containers/up/json')));
  assert.deepEqual(Object.keys(ga.GraphDriver.Data).sort(), Object.keys(gb.GraphDriver.Data).sort());
  assert.equal(ga.GraphDriver.Name, gb.GraphDriver.Name);
  const gd = ga.GraphDriver.Data as Record<string, string>;
  const wrote = await w!.docker(['exec', 'up', 'sh', '-c', 'echo graph > /graph-probe']);
  assert.equal(wrote.code, 0, show(wrote));
  assert.equal(await readFile(join(gd.UpperDir!, 'graph-probe'), 'utf8'), 'graph\n');
  assert.equal(await readFile(join(gd.MergedDir!, 'graph-probe'), 'utf8'), 'graph\n');
  assert.ok(gd.LowerDir!.split(':').length >= 2, gd.LowerDir); // the init layer, then the image's layers
  assert.ok((await stat(join(gd.LowerDir!.split(':').at(-1)!, 'bin'))).isDirectory());
  assert.ok((await stat(gd.WorkDir!)).isDirectory());
  const [na, nb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/containers/nonet/json')));
  assert.deepEqual(Object.keys(na.NetworkSettings.Networks), Object.keys(nb.NetworkSettings.Networks));
  assert.deepEqual([na.HostConfig.MaskedPaths, na.HostConfig.ReadonlyPaths], [nb.HostConfig.MaskedPaths, nb.HostConfig.ReadonlyPaths], 'privileged');
  assert.deepEqual(byName(la, 'up').Ports.map((p: any) => [p.IP, p.PrivatePort, p.Type]), byName(lb, 'up').Ports.map((p: any) => [p.IP, p.PrivatePort, p.Type]));
  // containers with a healthcheck: State.Health before the first probe (running), after the exit (exited)
  for (const [name, status] of [['up', 'starting'], ['ran', 'unhealthy']]) {
    const [ha, hb] = await Promise.all([w!, r!].map((d) => json(d, 'GET', `/containers/${name}/json`)));
    assert.deepEqual(ha.State.Health, hb.State.Health, name);
    assert.deepEqual(ha.State.Health, { Status: status, FailingStreak: 0, Log: [] }, name);
  }

  // the defaults dockerd gives a bare body (docker-py's) and a lower-case one, value for value
  for (const name of ['bare', 'lower']) {
    const [a, b] = await Promise.all([w!, r!].map((d) => json(d, 'GET', `/containers/${name}/json`)));
    // MemorySwap: dockerd doubles Memory at create, Wharf leaves swap to the runtime (reported as asked)
    const drop = (hc: Record<string, unknown>) => { const { MemorySwap: _s, Runtime: _r, ...rest } = hc; return rest; };
    assert.deepEqual(drop(a.HostConfig), drop(b.HostConfig), `${name}: HostConfig`);
    // dockerd's 65 keys once `Runtime` is set (Wharf sets it at create; dockerd at the first start: BARE_KNOWN)
    assert.equal(Object.keys(a.HostConfig).length, 'Runtime' in a.HostConfig ? 65 : 64);
    if (w!.engine === 'wharfd') assert.equal(a.HostConfig.Runtime, 'runc');
    const { Hostname: _h1, ...ca } = a.Config;
    const { Hostname: _h2, ...cb } = b.Config;
    assert.deepEqual(ca, cb, `${name}: Config`);
    assert.deepEqual(a.State, b.State, `${name}: State`);
    assert.deepEqual(a.Mounts, b.Mounts);
  }
  const [oa, ob] = await Promise.all([w!, r!].map((d) => json(d, 'GET', '/containers/opts/json')));
  for (const k of ['LogConfig', 'RestartPolicy', 'CapAdd', 'ShmSize', 'Tmpfs', 'Init', 'Ulimits', 'PortBindings', 'Binds']) {
    assert.deepEqual(oa.HostConfig[k], ob.HostConfig[k], `opts: HostConfig.${k}`);
  }
  for (const k of ['StopSignal', 'StopTimeout', 'Healthcheck', 'ExposedPorts', 'Labels']) assert.deepEqual(oa.Config[k], ob.Config[k], `opts: Config.${k}`);
});

test('wrong types in a body are refused with Go\'s message, naming the field', { skip: !haveDockerd && 'dockerd is not installed' }, async () => {
  const bodies: [string, unknown][] = [
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { Memory: 'x' } }],
    ['/containers/create', { image: 'busybox', cmd: ['true'], hostconfig: { memory: 'x' } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], Tty: 'yes' }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { RestartPolicy: { Name: 5 } } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 80 }] } } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { Mounts: [{ Type: 'volume', Target: 7 }] } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], Healthcheck: { Interval: 'x' } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: 'x' } } } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { CpuShares: 1.5 } }],
    ['/containers/create', { Image: 'busybox', Cmd: 5 }],
    ['/containers/create', { Image: 'busybox', Cmd: ['a', 5] }],
    ['/containers/create', [1]],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: 'x' }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { OomKillDisable: 3 } }],
    ['/containers/create', { Image: 'busybox', Cmd: ['true'], Env: ['A=1', 2] }],
    ['/volumes/create', { Name: 5 }],
    ['/volumes/create', { name: 'ok', labels: { a: 1 } }],
    ['/auth', { Username: 5 }],
    ['/containers/x/exec', { Cmd: ['true'], privileged: 'yes' }],
    ['/containers/x/exec', { Cmd: 'true' }],
  ];
  const count = async () => (JSON.parse((await w!.api('GET', '/containers/json?all=1')).body) as unknown[]).length;
  const before = await count();
  for (const [path, body] of bodies) {
    const [a, b] = await Promise.all([w!, r!].map((d) => d.api('POST', path, JSON.stringify(body))));
    // dockerd 20.10 answers 500 for a create body it cannot decode (400 for volumes); Wharf says 400, a client error
    if (w!.engine === 'wharfd') assert.equal(a.status, 400, `${JSON.stringify(body)}: ${a.body}`);
    else assert.ok(a.status >= 400, `${JSON.stringify(body)}: ${a.status} ${a.body}`);
    assert.ok(b.status >= 400, `${JSON.stringify(body)}: dockerd ${b.status}`);
    assert.equal(JSON.parse(a.body).message, JSON.parse(b.body).message, JSON.stringify(body));
  }
  assert.equal(await count(), before, 'a refused body leaves no container behind');
});
