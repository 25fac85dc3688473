/**
 * Network tests: IPAM, and a private test bridge (own name and subnet, removed at the end) with real
 * containers under conmon + runc from a busybox rootfs. Traffic only goes to loopback and to the
 * namespaces made here. Needs root.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile, copyFile } from 'node:fs/promises';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { buildSpec, writeBundle, type SpecOptions } from '../../src/engine/runtime/spec.js';
import { createRuntime, type Runtime } from '../../src/engine/runtime/runc.js';
import { readLogs } from '../../src/engine/runtime/logs.js';
import { BridgeNetwork, macForIp, vethName, type Endpoint } from '../../src/engine/network/bridge.js';
import { HostClaims, Ipam } from '../../src/engine/network/ipam.js';
import { publishPort } from '../../src/engine/network/portproxy.js';
import { waitFor } from '../support/wait.js';

const CG_PARENT = '/wharf-test-net';
const BRIDGE = `wtst${process.pid % 100000}`;
const SUBNET = '172.31.250.0/24';

async function makeBusyboxRootfs(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await Promise.all(['etc', 'tmp', 'www'].map((d) => mkdir(join(dir, d), { recursive: true })));
  await copyFile('/bin/busybox', join(dir, 'bin/busybox'));
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  await Promise.all(applets.map((a) => symlink('busybox', join(dir, 'bin', a))));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  execFileSync('chmod', ['1777', join(dir, 'tmp')]);
  return dir;
}

const newId = () => randomBytes(32).toString('hex');
const sh = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }); } catch { return ''; } };

describe('ipam', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp('/tmp/wharf-ipam-'); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('sequential, idempotent per owner, persisted, released, concurrent-safe, exhaustion', async () => {
    const f = join(dir, 'a.json');
    const a = new Ipam(f, '10.1.0.0/24');
    assert.equal(a.gateway, '10.1.0.1');
    assert.equal(await a.allocate('c1'), '10.1.0.2');
    assert.equal(await a.allocate('c2'), '10.1.0.3');
    assert.equal(await a.allocate('c1'), '10.1.0.2');
    const b = new Ipam(f, '10.1.0.0/24');
    assert.deepEqual(await b.allocations(), { '10.1.0.2': 'c1', '10.1.0.3': 'c2' });
    await b.release('c1');
    assert.equal(await b.allocate('c3'), '10.1.0.2');
    await assert.rejects(b.allocate('c4', '10.1.0.3'), /Address already in use/);
    assert.equal(await b.allocate('c4', '10.1.0.77'), '10.1.0.77');
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => b.allocate(`m${i}`)));
    assert.equal(new Set(many).size, 40);
    const t = JSON.parse(await readFile(f, 'utf8')) as { allocated: Record<string, string> };
    assert.equal(Object.keys(t.allocated).length, 43);
    const small = new Ipam(join(dir, 'b.json'), '10.2.0.0/30');
    assert.equal(await small.allocate('x'), '10.2.0.2');
    await assert.rejects(small.allocate('y'), /no available IPv4 addresses/);
  });

  test('an IP range (docker --ip-range): addresses from it only, gateway its first address unless given, --ip anywhere in the subnet', async () => {
    const r = new Ipam(join(dir, 'range.json'), '10.4.0.0/16', undefined, undefined, '10.4.5.0/24');
    assert.equal(r.gateway, '10.4.5.0', 'dockerd gives the gateway the first address of the range');
    assert.equal(await r.allocate('a'), '10.4.5.1');
    assert.equal(await r.allocate('s', '10.4.7.7'), '10.4.7.7');
    const g = new Ipam(join(dir, 'range2.json'), '10.5.0.0/24', '10.5.0.130', undefined, '10.5.0.128/30');
    assert.deepEqual(await Promise.all(['x', 'y', 'z'].map((o) => g.allocate(o))), ['10.5.0.128', '10.5.0.129', '10.5.0.131']);
    await assert.rejects(g.allocate('full'), /no available IPv4 addresses/);
    assert.equal(new Ipam(join(dir, 'range3.json'), '10.6.0.0/24', undefined, undefined, '10.6.0.0/30').gateway, '10.6.0.1', 'never the network address');
  });

  test('daemons waiting together on a stale lock (its holder was killed) never pick one subnet twice', async () => {
    const cands = Array.from({ length: 20 }, (_, i) => `172.${17 + i}.0.0/16`);
    await writeFile(join(dir, 'live-ns'), '');
    for (let round = 0; round < 20; round++) {
      const file = join(dir, `stale${round}`, 'pools.json');
      await mkdir(`${file}.lock`, { recursive: true });
      const old = new Date(Date.now() - 60_000);
      await utimes(`${file}.lock`, old, old);
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => new HostClaims(file, `/daemon/${i}`, () => join(dir, 'live-ns')).pick(`net${i}`, cands)));
      assert.equal(new Set(got).size, got.length, `round ${round}: ${got.join(' ')}`);
      assert.equal(existsSync(`${file}.lock`), false, 'the lock is released');
    }
  });

  test('two daemons on one bridge: host-wide claims keep their addresses apart; a dead claim is taken back', async () => {
    const claimsFile = join(dir, 'claims', 'wharf-test0.json');
    const nsDir = join(dir, 'ns');
    await mkdir(nsDir, { recursive: true });
    const nsOf = (d: string) => (owner: string) => join(nsDir, `${d}-${owner}`);
    const one = new Ipam(join(dir, 'one.json'), '10.3.0.0/24', undefined, new HostClaims(claimsFile, '/daemon/one', nsOf('one')));
    const two = new Ipam(join(dir, 'two.json'), '10.3.0.0/24', undefined, new HostClaims(claimsFile, '/daemon/two', nsOf('two')));
    // interleaved and concurrent allocations of two daemons never collide
    const got = await Promise.all([...Array.from({ length: 10 }, (_, i) => one.allocate(`a${i}`)), ...Array.from({ length: 10 }, (_, i) => two.allocate(`b${i}`))]);
    assert.equal(new Set(got).size, 20, got.join(' '));
    assert.equal(await one.allocate('a0'), got[0], 'idempotent per owner');
    await assert.rejects(two.allocate('bx', got[0]), /Address already in use/);
    // released by one daemon: free for the other
    await one.release('a0');
    assert.equal(await two.allocate('b-new'), got[0]);
    // a claim whose netns is gone and that is old is dead: another daemon may take the address
    const claims = JSON.parse(await readFile(claimsFile, 'utf8')) as Record<string, { at: number }>;
    const victim = got[1]!;
    claims[victim]!.at = Date.now() - 120_000;
    await writeFile(claimsFile, JSON.stringify(claims));
    assert.equal(await two.allocate('b-after', victim), victim);
    // while its netns exists, a claim holds however old it is
    const held = got[2]!;
    await writeFile(nsOf('one')('a2'), '');
    const again = JSON.parse(await readFile(claimsFile, 'utf8')) as Record<string, { at: number }>;
    again[held]!.at = Date.now() - 120_000;
    await writeFile(claimsFile, JSON.stringify(again));
    await assert.rejects(two.allocate('b-held', held), /Address already in use/);
    assert.ok(!existsSync(`${claimsFile}.lock`), 'the lock is released');
  });
});

describe('bridge network with containers', () => {
  let tmp: string;
  let rootfs: string;
  let rt: Runtime;
  let net: BridgeNetwork;
  const ids: string[] = [];

  before(async () => {
    tmp = await mkdtemp('/tmp/wnt-');
    rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
    await writeFile(join(rootfs, 'www/index.html'), 'served by busybox httpd\n');
    rt = createRuntime({ root: join(tmp, 'run') });
    net = new BridgeNetwork({ dataRoot: join(tmp, 'data'), execRoot: join(tmp, 'exec'), claimsDir: join(tmp, 'claims'), bridge: BRIDGE, subnet: SUBNET });
    await net.ensure();
  });

  after(async () => {
    for (const id of ids) {
      await rt.delete(id, true).catch(() => {});
      await net.disconnect(id).catch(() => {});
    }
    await net.removeBridge();
    const links = sh('ip', ['-o', 'link', 'show']);
    const nat = sh('iptables', ['-w', '-t', 'nat', '-S']);
    const filt = sh('iptables', ['-w', '-S']);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(tmp));
    const cgs = ['memory', 'pids', 'cpu', 'devices'].flatMap((c) => sh('ls', [`/sys/fs/cgroup/${c}${CG_PARENT}`]).split('\n').filter((x) => /^[0-9a-f]{64}$/.test(x)));
    await rm(tmp, { recursive: true, force: true });
    for (const c of sh('ls', ['/sys/fs/cgroup']).split('\n').filter(Boolean)) {
      try { execFileSync('rmdir', [`/sys/fs/cgroup/${c}${CG_PARENT}`], { stdio: 'ignore' }); } catch { /* absent */ }
    }
    assert.equal(links.includes(BRIDGE), false, 'bridge left');
    for (const id of ids) assert.equal(links.includes(vethName(id)), false, 'veth left');
    assert.equal(nat.includes(`wharf:${BRIDGE}`), false, 'nat rule left');
    assert.equal(filt.includes(`wharf:${BRIDGE}`), false, 'filter rule left');
    assert.deepEqual(mounts, [], 'netns/other mounts left');
    assert.deepEqual(cgs, [], 'cgroups left');
  });

  async function container(args: string[], mode: 'bridge' | 'none' | 'host', extra: Partial<SpecOptions> = {}) {
    const id = newId();
    ids.push(id);
    const dir = join(tmp, 'c', id);
    const ep = await net.connect(id, mode, { name: `ctr${ids.length}` });
    const spec = await buildSpec({
      id, rootfs, containerDir: dir, cgroupParent: CG_PARENT, args, ip: ep.ip,
      network: mode === 'bridge' ? { mode: 'path', path: ep.netnsPath! } : { mode },
      dnsFallback: ep.gateway ? [ep.gateway] : undefined, ...extra,
    });
    await writeBundle(join(dir, 'bundle'), spec);
    const logPath = join(dir, 'log');
    try {
      await rt.create(id, join(dir, 'bundle'), { stdio: 'null', logPath });
    } catch (e) {
      await net.disconnect(id);
      throw e;
    }
    await rt.start(id);
    return { id, ep, logPath };
  }

  async function finish(c: { id: string; logPath: string }) {
    const code = await rt.wait(c.id);
    let stdout = '', stderr = '';
    for await (const r of readLogs(c.logPath)) { if (r.stream === 'stdout') stdout += r.data; else stderr += r.data; }
    await rt.delete(c.id);
    await net.disconnect(c.id);
    return { code, stdout, stderr };
  }

  async function stop(c: { id: string; logPath: string }) {
    await rt.kill(c.id, 'KILL').catch(() => {});
    return finish(c);
  }

  test('bridge setup: address, NAT and forward rules, ip_forward', () => {
    assert.match(sh('ip', ['-o', '-4', 'addr', 'show', 'dev', BRIDGE]), /inet 172\.31\.250\.1\/24/);
    assert.match(sh('iptables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']), new RegExp(`-s 172.31.250.0/24 ! -o ${BRIDGE} .*wharf:${BRIDGE}.* -j MASQUERADE`));
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1');
  });

  test('a bridge container: eth0 with its IP and docker MAC, lo up, default route, /etc/hosts', async () => {
    const c = await container(['sh', '-c', 'ip -o -4 addr show; cat /sys/class/net/eth0/address; ip route; grep "$(hostname)" /etc/hosts; ls /sys/class/net'], 'bridge');
    assert.equal(c.ep.ip, '172.31.250.2');
    const r = await finish(c);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lo\s+inet 127\.0\.0\.1\/8/);
    assert.match(r.stdout, /eth0\s+inet 172\.31\.250\.2\/24/);
    assert.match(r.stdout, /^02:42:ac:1f:fa:02$/m);
    assert.match(r.stdout, /^default via 172\.31\.250\.1 dev eth0/m);
    assert.match(r.stdout, new RegExp(`^172\\.31\\.250\\.2\\t${c.id.slice(0, 12)}$`, 'm'));
    assert.match(r.stdout, /^eth0\nlo\n$/m);
    assert.equal(existsSync(net.netnsPath(c.id)), false, 'netns file removed');
    assert.equal(sh('ip', ['-o', 'link', 'show']).includes(vethName(c.id)), false, 'veth removed');
    assert.deepEqual(await net.ipam.allocations(), {}, 'IP released');
  });

  test('two containers on the bridge ping each other by IP', async () => {
    const a = await container(['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.05; done'], 'bridge');
    const b = await container(['sh', '-c', `ping -c 2 -W 2 ${a.ep.ip} && echo OK`], 'bridge');
    // a restarted daemon finds the endpoint again (to re-publish its ports)
    const again = new BridgeNetwork({ dataRoot: join(tmp, 'data'), execRoot: join(tmp, 'exec'), claimsDir: join(tmp, 'claims'), bridge: BRIDGE, subnet: SUBNET });
    const restored = await again.restore(a.id);
    assert.equal(restored?.ip, a.ep.ip);
    assert.equal(restored?.netnsPath, a.ep.netnsPath);
    assert.deepEqual(Object.keys(await again.ipam.allocations()).sort(), [a.ep.ip, b.ep.ip].sort());
    assert.notEqual(a.ep.ip, b.ep.ip);
    const rb = await finish(b);
    assert.equal(rb.code, 0, rb.stdout + rb.stderr);
    assert.match(rb.stdout, /2 packets transmitted, 2 packets received/);
    // and back, via exec inside a
    const ex = await rt.exec(a.id, { args: ['ping', '-c', '1', '-W', '1', b.ep.ip!], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 },
      capabilities: { bounding: ['CAP_NET_RAW'], effective: ['CAP_NET_RAW'], permitted: ['CAP_NET_RAW'], inheritable: [], ambient: [] } }, {});
    ex.stdout.resume(); ex.stderr.resume();
    assert.equal(await ex.exit, 1, 'b is gone: its address no longer answers');
    await stop(a);
  });

  test('published port: 127.0.0.1:<port> reaches busybox httpd in the container; docker errors when taken', async () => {
    const c = await container(['httpd', '-f', '-p', '80', '-h', '/www'], 'bridge');
    const [p] = await net.publish(c.ep, [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 }]);
    assert.ok(p!.hostPort > 0);
    let body = '';
    await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${p!.hostPort}/index.html`);
      body = await res.text();
      return res.status === 200;
    }, { timeout: 2000, message: 'the published port to answer' }).catch(() => {});
    assert.equal(body, 'served by busybox httpd\n');
    // the same host port again: docker's "port is already allocated"
    await assert.rejects(net.publish(c.ep, [{ hostPort: p!.hostPort, containerPort: 80 }]),
      (e: Error) => e.message === `driver failed programming external connectivity on endpoint ${c.ep.endpointId}: Bind for 0.0.0.0:${p!.hostPort} failed: port is already allocated`);
    // a port some other process holds
    const foreign = createServer();
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', () => r()));
    const fport = (foreign.address() as { port: number }).port;
    await assert.rejects(publishPort('x (y)', c.ep.ip!, { hostIp: '127.0.0.1', hostPort: fport, containerPort: 80 }),
      /driver failed programming external connectivity on endpoint x \(y\): Error starting userland proxy: listen tcp4 127.0.0.1:\d+: bind: address already in use/);
    foreign.close();
    await stop(c);
    // the proxy is gone with the endpoint
    await assert.rejects(fetch(`http://127.0.0.1:${p!.hostPort}/`));
  });

  test('published UDP port: datagrams reach the container netns and replies come back', async () => {
    // busybox has no UDP server applet: run a UDP echo server (node) inside the container's network namespace
    const c = await container(['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.05; done'], 'bridge');
    const srv = spawn('nsenter', [`--net=${c.ep.netnsPath}`, process.execPath, '-e',
      `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('echo:'+m,r.port,r.address));s.bind(5353,'0.0.0.0',()=>console.log('ready'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(srv.stdout!, 'data');
    const [p] = await net.publish(c.ep, [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 5353, proto: 'udp' }]);
    const s = createSocket('udp4');
    let reply = '';
    s.on('message', (m) => { reply += m.toString(); });
    await waitFor(() => { s.send('ping-udp', p!.hostPort, '127.0.0.1'); return reply; }, { timeout: 2000, interval: 50, message: 'a UDP reply' }).catch(() => {});
    s.close();
    srv.kill();
    await once(srv, 'exit');
    await stop(c);
    assert.match(reply, /^echo:ping-udp/);
  });

  test('--network none has only lo; host shares the host interfaces', async () => {
    const none = await container(['sh', '-c', 'ls /sys/class/net; ip -o link | wc -l; ip -o -4 addr'], 'none');
    assert.equal(none.ep.ip, undefined);
    const r = await finish(none);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], 'lo');
    assert.equal(r.stdout.split('\n')[1], '1');
    assert.match(r.stdout, /lo\s+inet 127\.0\.0\.1/);
    const host = await container(['sh', '-c', 'ls /sys/class/net'], 'host');
    const h = await finish(host);
    assert.equal(h.code, 0, h.stderr);
    assert.ok(h.stdout.split('\n').includes(BRIDGE), 'host mode sees the host interfaces');
  });

  test('20 bridge containers created, run and removed in parallel: distinct IPs, nothing leaked', async () => {
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, async () => {
      const c = await container(['sh', '-c', 'ip -o -4 addr show dev eth0'], 'bridge');
      const r = await finish(c);
      return { ip: c.ep.ip!, ...r };
    }));
    console.log(`# 20 parallel bridge containers: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(new Set(results.map((r) => r.ip)).size, 20);
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(`inet ${r.ip}/24`), r.stdout);
    }
    assert.deepEqual(await net.ipam.allocations(), {});
    const links = sh('ip', ['-o', 'link', 'show']);
    assert.equal(/veth[0-9a-f]{7}@/.test(links) && ids.some((id) => links.includes(vethName(id))), false, 'veths left');
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(tmp, 'exec', 'netns')), false, 'netns mounts left');
  });

  test('failed connect leaves nothing behind', async () => {
    const id = newId();
    await assert.rejects(net.connect(id, 'bridge', { ip: '10.0.0.5' }), /not in subnet/);
    assert.equal(existsSync(net.netnsPath(id)), false);
    assert.deepEqual(await net.ipam.allocations(), {});
  });
});

describe('bridge MAC', () => {
  const name = `wmac${process.pid % 100000}`;
  const subnet = '172.31.249.0/24';
  let tmp: string;
  let net: BridgeNetwork;
  const read = (f: string) => readFileSync(`/sys/class/net/${name}/${f}`, 'utf8').trim();

  before(async () => {
    tmp = await mkdtemp('/tmp/wmac-');
    // a bridge as an older wharfd left it: no MAC of its own
    execFileSync('ip', ['link', 'add', name, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', '172.31.249.1/24', 'dev', name]);
    execFileSync('ip', ['link', 'set', name, 'up']);
    net = new BridgeNetwork({ dataRoot: join(tmp, 'data'), execRoot: join(tmp, 'exec'), claimsDir: join(tmp, 'claims'), bridge: name, subnet });
  });

  after(async () => {
    await net.removeBridge();
    try { execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' }); } catch { /* removed */ }
    await rm(tmp, { recursive: true, force: true });
  });

  test('the bridge keeps the MAC of its gateway while ports with lower MACs join and leave', async () => {
    await net.ensure();
    const fixed = macForIp('172.31.249.1');
    assert.equal(fixed, '02:42:ac:1f:f9:01');
    assert.equal(read('address'), fixed, 'an existing bridge without a MAC gets the fixed one');
    assert.equal(read('addr_assign_type'), '3', 'set, not taken from a port');
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${name}/arp_notify`, 'utf8').trim(), '1');
    const a = newId(), b = newId();
    try {
      await net.connect(a, 'bridge');
      await net.connect(b, 'bridge');
      // host ends with MACs below 02:42:…: a bridge without a MAC of its own would take the lowest
      execFileSync('ip', ['link', 'set', 'dev', vethName(a), 'address', '02:00:00:00:00:01']);
      execFileSync('ip', ['link', 'set', 'dev', vethName(b), 'address', '02:00:00:00:00:02']);
      assert.equal(read('address'), fixed, 'ports joined');
      await net.disconnect(a);
      assert.equal(read('address'), fixed, 'the lowest port left');
      await net.disconnect(b);
      assert.equal(read('address'), fixed, 'no port left');
    } finally {
      await net.disconnect(a);
      await net.disconnect(b);
    }
  });
});

export type { Endpoint };
