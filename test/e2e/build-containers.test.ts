/**
 * End to end: the classic builder's step containers are real containers of the daemon (dockerd's
 * containerManager): RUN on the default bridge (an address in the subnet `docker run` containers get, the
 * resolv.conf `docker run` gets), `--network none` (only lo); `--rm=false` leaves every step's container in
 * `ps -a` (wharf build and `DOCKER_BUILDKIT=0 docker build`); a failing RUN keeps its container with the exit code
 * unless `--force-rm`; a cancelled build (client gone) leaves no container.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

let d: Daemon;
let ctx: string;

before(async () => {
  d = await startDaemon();
  const r = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(r.code, 0, show(r));
  ctx = await mkdtemp(join(tmpdir(), 'wharf-bc-ctx-'));
});

after(async () => {
  await d?.stop();
  if (ctx) await rm(ctx, { recursive: true, force: true });
});

async function dockerfile(name: string, text: string): Promise<string> {
  await writeFile(join(ctx, name), text);
  return join(ctx, name);
}

/** IDs (12) of "Running in" lines, in order. */
function runningIn(out: string): string[] {
  return [...out.matchAll(/ ---> Running in ([0-9a-f]{12})/g)].map((m) => m[1]!);
}

function removed(out: string): string[] {
  return [...out.matchAll(/Removing intermediate container ([0-9a-f]{12})/g)].map((m) => m[1]!);
}

/** `ps -a` as rows: id, command, status. */
async function psAll(): Promise<{ id: string; command: string; status: string }[]> {
  const r = await d.wharf(['ps', '-a', '--no-trunc', '--format', '{{.ID}}\t{{.Command}}\t{{.Status}}']);
  assert.equal(r.code, 0, show(r));
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const [id, command, status] = l.split('\t') as [string, string, string];
    return { id, command, status };
  });
}

async function clearContainers(): Promise<void> {
  for (const c of await psAll()) await d.wharf(['rm', '-f', c.id]);
  assert.deepEqual(await psAll(), []);
}

function ok(r: RunResult): string {
  assert.equal(r.code, 0, show(r));
  return r.stdout + r.stderr;
}

/** "a.b.c.d/len" → the network's number and the mask. */
function subnetOf(addr: string, len: number): number {
  const n = addr.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return (n & mask) >>> 0;
}

/** `ip -4 -o addr` lines → interface and address. */
function inet(out: string): { ifname: string; addr: string; len: number }[] {
  return [...out.matchAll(/^\d+:\s+(\S+)\s+inet\s+([\d.]+)\/(\d+)/gm)].map((m) => ({ ifname: m[1]!, addr: m[2]!, len: Number(m[3]) }));
}

test('RUN is on the default bridge (the subnet and resolv.conf of docker run); --network none has only lo, --network host the host addresses', async () => {
  await clearContainers();
  const f = await dockerfile('Dockerfile.net', 'FROM busybox\nRUN ip -4 -o addr > /addr && cat /etc/resolv.conf > /resolv && echo RUN-ADDR && cat /addr\n');
  const out = ok(await d.wharf(['build', '--no-cache', '-f', f, '-t', 'bc-net', ctx]));
  assert.match(out, /RUN-ADDR/);
  const seen = inet(ok(await d.wharf(['run', '--rm', 'bc-net', 'cat', '/addr'])));
  const others = seen.filter((a) => a.ifname !== 'lo');
  assert.equal(others.length, 1, `one interface besides lo: ${JSON.stringify(seen)}`);
  // a container of `docker run` on the same daemon: its address and prefix give the bridge's subnet
  const cid = ok(await d.wharf(['run', '-d', 'busybox', 'sleep', '30'])).trim().split('\n').pop()!;
  const ip = ok(await d.wharf(['inspect', '--format', '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.IPPrefixLen}}', cid])).trim().split(' ');
  const len = Number(ip[1]);
  assert.ok(ip[0] && len > 0, `docker run's container has a bridge address: ${ip.join(' ')}`);
  assert.equal(others[0]!.len, len);
  assert.equal(subnetOf(others[0]!.addr, len), subnetOf(ip[0]!, len), `${others[0]!.addr} in ${ip[0]}/${len}`);
  const hostAddrs = Object.values(networkInterfaces()).flat().map((a) => a?.address);
  assert.ok(!hostAddrs.includes(others[0]!.addr), `not one of the host's addresses: ${others[0]!.addr}`);
  // DNS as docker run's: the same resolv.conf
  const runResolv = ok(await d.wharf(['exec', cid, 'cat', '/etc/resolv.conf']));
  const buildResolv = ok(await d.wharf(['run', '--rm', 'bc-net', 'cat', '/resolv']));
  assert.equal(buildResolv, runResolv);
  await d.wharf(['rm', '-f', cid]);
  // --rm (the default): no step container is left
  assert.deepEqual(await psAll(), []);

  const none = ok(await d.wharf(['build', '--no-cache', '--network', 'none', '-f', f, '-t', 'bc-none', ctx]));
  assert.match(none, /RUN-ADDR/);
  const noneAddrs = inet(ok(await d.wharf(['run', '--rm', 'bc-none', 'cat', '/addr'])));
  assert.deepEqual(noneAddrs.map((a) => a.ifname), ['lo']);
  assert.deepEqual(await psAll(), []);

  // --network host: the host's own interfaces
  ok(await d.docker(['build', '--no-cache', '--network', 'host', '-f', f, '-t', 'bc-host', ctx]));
  const hostSeen = inet(ok(await d.wharf(['run', '--rm', 'bc-host', 'cat', '/addr']))).map((a) => a.addr);
  const hostV4 = Object.values(networkInterfaces()).flat().filter((a) => a?.family === 'IPv4' && !a.internal).map((a) => a!.address);
  assert.ok(hostV4.some((a) => hostSeen.includes(a)), `${JSON.stringify(hostSeen)} has one of the host addresses ${JSON.stringify(hostV4)}`);
});

for (const cli of ['wharf', 'docker'] as const) {
  test(`--rm=false through ${cli} build: every step's container stays (RUN: Exited (0), /bin/sh -c …; ENV: Created)`, async () => {
    await clearContainers();
    const f = await dockerfile('Dockerfile.keep', 'FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nRUN ["sh", "-c", "echo three > /three"]\n');
    const r = cli === 'wharf'
      ? await d.wharf(['build', '--rm=false', '--no-cache', '-f', f, ctx])
      : await d.docker(['build', '--rm=false', '--no-cache', '-f', f, ctx]);
    const out = ok(r);
    const ids = runningIn(out);
    assert.equal(ids.length, 3, out);
    assert.deepEqual(removed(out), [], 'no "Removing intermediate container" with --rm=false');
    const ps = await psAll();
    assert.equal(ps.length, 3, JSON.stringify(ps));
    for (const id of ids) {
      const row = ps.find((p) => p.id.startsWith(id));
      assert.ok(row, `container ${id} of "Running in" is in ps -a: ${JSON.stringify(ps)}`);
      assert.match(row.status, /^Exited \(0\) /);
    }
    const cmds = ps.map((p) => p.command).sort();
    assert.deepEqual(cmds.filter((c) => c.startsWith('"/bin/sh -c')).length, 2, JSON.stringify(cmds));
    assert.ok(cmds.some((c) => c.startsWith('"sh -c')), JSON.stringify(cmds));
    // a config-only step's container is created (never started) and kept too: Created, with docker's Cmd
    await clearContainers();
    const e = await dockerfile('Dockerfile.keepenv', 'FROM busybox\nENV K=v\nHEALTHCHECK CMD true\nRUN echo $K > /k\n');
    const oute = ok(cli === 'wharf' ? await d.wharf(['build', '--rm=false', '--no-cache', '-f', e, ctx]) : await d.docker(['build', '--rm=false', '--no-cache', '-f', e, ctx]));
    const idse = runningIn(oute);
    assert.equal(idse.length, 3, oute);
    const pse = await psAll();
    assert.equal(pse.length, 3, JSON.stringify(pse));
    const env = pse.find((p) => p.id.startsWith(idse[0]!))!;
    assert.equal(env.status, 'Created');
    assert.match(env.command, /^"\/bin\/sh -c '#\(nop\) ' 'ENV K=v'"$/);
    assert.equal(pse.find((p) => p.id.startsWith(idse[1]!))!.status, 'Created');
    assert.match(pse.find((p) => p.id.startsWith(idse[2]!))!.status, /^Exited \(0\) /);
    // the RUN container runs no healthcheck (docker's withoutHealthcheck), whatever the image says
    assert.equal(ok(await d.wharf(['inspect', '--format', '{{json .Config.Healthcheck}}', idse[2]!])).trim(), '{"Test":["NONE"]}');
    // the default again: the same steps leave nothing
    const out2 = ok(cli === 'wharf' ? await d.wharf(['build', '--no-cache', '-f', f, ctx]) : await d.docker(['build', '--no-cache', '-f', f, ctx]));
    assert.deepEqual(removed(out2), runningIn(out2));
    assert.equal((await psAll()).length, 3);
  });
}

test('a failing RUN keeps its container (Exited (N)) under --rm; --force-rm removes it', async () => {
  await clearContainers();
  const f = await dockerfile('Dockerfile.fail', 'FROM busybox\nRUN echo fine > /ok\nRUN echo about to fail && exit 3\n');
  const r = await d.wharf(['build', '--no-cache', '-f', f, ctx]);
  assert.notEqual(r.code, 0);
  const out = r.stdout + r.stderr;
  assert.match(out, /returned a non-zero code: 3/);
  const ids = runningIn(out);
  assert.equal(ids.length, 2, out);
  assert.deepEqual(removed(out), [ids[0]], 'only the successful step is removed');
  const ps = await psAll();
  assert.equal(ps.length, 1, JSON.stringify(ps));
  assert.ok(ps[0]!.id.startsWith(ids[1]!));
  assert.match(ps[0]!.status, /^Exited \(3\) /);
  const code = ok(await d.wharf(['inspect', '--format', '{{.State.ExitCode}}', ids[1]!])).trim();
  assert.equal(code, '3');

  await clearContainers();
  const r2 = await d.docker(['build', '--no-cache', '--force-rm', '-f', f, ctx]);
  assert.notEqual(r2.code, 0);
  const out2 = r2.stdout + r2.stderr;
  const ids2 = runningIn(out2);
  assert.equal(ids2.length, 2, out2);
  assert.deepEqual(removed(out2), ids2);
  assert.deepEqual(await psAll(), []);
});

test('a cancelled build (the client goes away during RUN) kills and removes the step container', async () => {
  await clearContainers();
  const f = await dockerfile('Dockerfile.slow', 'FROM busybox\nRUN echo started && sleep 60\n');
  const started = Date.now();
  const build = d.wharf(['build', '--no-cache', '-f', f, ctx], { timeoutMs: 6000 });
  // while it runs, the step is a running container of the daemon
  let running: { id: string; command: string; status: string } | undefined;
  for (let i = 0; i < 50 && !running; i++) {
    running = (await psAll()).find((p) => p.status.startsWith('Up'));
    if (!running) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(running, 'the RUN step shows in ps while it runs');
  assert.match(running.command, /sleep 60/);
  const r = await build;
  assert.equal(r.code, 137, show(r));
  let left = await psAll();
  for (let i = 0; i < 100 && left.length; i++) {
    await new Promise((res) => setTimeout(res, 100));
    left = await psAll();
  }
  assert.deepEqual(left, []);
  assert.ok(Date.now() - started < 30_000, 'the sleep was killed, not waited for');
});

test('FROM --platform: pulled for that platform when missing (also through a meta ARG); an earlier stage must match; $BUILDPLATFORM predefined (BuildKit)', async () => {
  const { startRegistry } = await import('../support/registry.js');
  const { pushBusybox } = await import('../support/oci-images.js');
  const reg = await startRegistry();
  try {
    await pushBusybox(reg.host, 'multi/busybox:1', { multiArch: true });
    await pushBusybox(reg.host, 'multi/other:1', { multiArch: true });
    // the index has linux/amd64 and linux/arm64 (same host binary, /etc/platform names the entry)
    const f = await dockerfile('Dockerfile.plat', `FROM --platform=linux/arm64 ${reg.host}/multi/busybox:1\nRUN echo "entry=$(cat /etc/platform)"\n`);
    const out = ok(await d.wharf(['build', '-f', f, '-t', 'bc-plat', ctx]));
    assert.match(out, /\nentry=linux\/arm64\n/);
    assert.equal(ok(await d.wharf(['inspect', '--format', '{{.Os}}/{{.Architecture}}', 'bc-plat'])).trim(), 'linux/arm64');

    const g = await dockerfile('Dockerfile.platarg', `ARG PLAT=linux/arm64\nFROM --platform=$PLAT ${reg.host}/multi/other:1\nRUN echo "entry=$(cat /etc/platform)"\n`);
    const out2 = ok(await d.docker(['build', '--build-arg', 'PLAT=linux/amd64', '-f', g, ctx]));
    assert.match(out2, /\nentry=linux\/amd64\n/);
    assert.doesNotMatch(out2, /were not consumed/);

    // docker build --platform: the platform of a FROM that names none (both CLIs send it as platform=)
    await pushBusybox(reg.host, 'multi/third:1', { multiArch: true });
    await pushBusybox(reg.host, 'multi/fourth:1', { multiArch: true });
    const p1 = await dockerfile('Dockerfile.cliplat', `FROM ${reg.host}/multi/third:1\nRUN echo "entry=$(cat /etc/platform)"\n`);
    assert.match(ok(await d.docker(['build', '--no-cache', '--platform', 'linux/arm64', '-f', p1, ctx])), /\nentry=linux\/arm64\n/);
    const p2 = await dockerfile('Dockerfile.cliplat2', `FROM ${reg.host}/multi/fourth:1\nRUN echo "entry=$(cat /etc/platform)"\n`);
    assert.match(ok(await d.wharf(['build', '--no-cache', '--platform', 'linux/arm64', '-f', p2, ctx])), /\nentry=linux\/arm64\n/);

    // dockerd 20.10 prefers the local image: present, it is used whatever its platform
    const h = await dockerfile('Dockerfile.platlocal', `FROM --platform=linux/amd64 ${reg.host}/multi/busybox:1\nRUN echo "entry=$(cat /etc/platform)"\n`);
    assert.match(ok(await d.wharf(['build', '--no-cache', '-f', h, ctx])), /\nentry=linux\/arm64\n/);
  } finally {
    await reg.stop();
  }

  const host = ok(await d.wharf(['inspect', '--format', '{{.Os}}/{{.Architecture}}', 'busybox'])).trim();
  const other = host === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
  const s = await dockerfile('Dockerfile.platstage', `FROM busybox AS base\nRUN echo base\nFROM --platform=${other} base\nRUN echo never\n`);
  const r = await d.docker(['build', '-f', s, ctx]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, new RegExp(`image with reference sha256:[0-9a-f]{64} was found but does not match the specified platform: wanted ${other}, actual: ${host}\\n$`));
  assert.doesNotMatch(r.stdout, /never/);

  // BuildKit's automatic platform ARGs (Dockerfile reference, "Automatic platform ARGs in the global scope"), which
  // dockerd's classic builder lacks: $BUILDPLATFORM is the daemon's platform in FROM
  const b = await dockerfile('Dockerfile.buildplat', 'FROM --platform=$BUILDPLATFORM busybox\nRUN echo built-on-build-platform\n');
  if (process.env.WHARF_E2E_DAEMON === 'dockerd') {
    // the reference, dockerd 20.10's classic builder, predefines none
    const r2 = await d.docker(['build', '-f', b, ctx]);
    assert.equal(r2.code, 1, show(r2));
    assert.match(r2.stderr, /failed to parse platform : "": unknown operating system or architecture: invalid argument\n$/);
  } else assert.match(ok(await d.docker(['build', '-f', b, ctx])), /\nbuilt-on-build-platform\n/);
});

test('FROM scratch + RUN fails as docker does (the runtime cannot exec /bin/sh); the container stays unless --force-rm', async () => {
  await clearContainers();
  const f = await dockerfile('Dockerfile.scratch', 'FROM scratch\nRUN echo hi\n');
  const r = await d.docker(['build', '-f', f, ctx]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /OCI runtime create failed: runc create failed: unable to start container process: exec: "\/bin\/sh": stat \/bin\/sh: no such file or directory: unknown\n$/);
  const ids = runningIn(r.stdout);
  assert.equal(ids.length, 1, show(r));
  const ps = await psAll();
  assert.equal(ps.length, 1, JSON.stringify(ps));
  assert.ok(ps[0]!.id.startsWith(ids[0]!));
  const r2 = await d.docker(['build', '--force-rm', '-f', f, ctx]);
  assert.equal(r2.code, 1, show(r2));
  assert.deepEqual(removed(r2.stdout), runningIn(r2.stdout));
  assert.equal((await psAll()).length, 1);
});

test('RUN reaches a server on the host from its own bridge address, not from the host', async () => {
  const { createServer } = await import('node:http');
  const peers: string[] = [];
  const srv = createServer((q, s) => { peers.push(q.socket.remoteAddress ?? ''); s.end('hello-from-host\n'); });
  await new Promise<void>((res) => srv.listen(0, '0.0.0.0', () => res()));
  try {
    const port = (srv.address() as { port: number }).port;
    const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.'))?.address
      ?? Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)!.address;
    const f = await dockerfile('Dockerfile.wget', `FROM busybox\nRUN printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc ${hostIp} ${port}\n`);
    const out = ok(await d.wharf(['build', '--no-cache', '-f', f, ctx]));
    assert.match(out, /\nhello-from-host\n/);
    // it came from the step container's own address (the bridge), not from one of the host's
    const hostAddrs = Object.values(networkInterfaces()).flat().map((a) => a?.address);
    assert.equal(peers.length, 1);
    assert.ok(!hostAddrs.includes(peers[0]!.replace(/^::ffff:/, '')), `peer ${peers[0]} is not a host address`);
  } finally {
    srv.close();
  }
});
