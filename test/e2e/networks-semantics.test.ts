/**
 * Networks' semantics beyond the basics, through the docker CLI against a real wharfd (Debian's dockerd beside it
 * where docker's answer is the question): --ip-range (addresses from the range only, the gateway dockerd picks);
 * a user network isolated from the default bridge both ways (docker's DOCKER-ISOLATION chains); a default-bridge
 * container connected live to a user network resolves that network's names, and gets its name servers back when
 * it leaves; parallel `network create` never hands one subnet out twice; a user network's bridge keeps the MAC of
 * its gateway while containers come and go; a default-bridge container's published ports leave with `network
 * disconnect bridge` and come back with `network connect bridge`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadBusybox, startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/registry.js';

let w: Daemon;
let ref: Daemon | undefined;
let refSkip: string | undefined;
const tag = `m${process.pid.toString(36)}`;
const nm = (s: string): string => `${tag}-${s}`;
const NETS = ['r1', 'r2', 'iso', 'dns', 'mac', 'br', ...Array.from({ length: 8 }, (_, i) => `p${i}`)].map(nm);
const CTRS = ['ub', 'ud', 'bb', 'bd', 'dn', 'ds', 'pu', 'pb', 'pc', 'pp'].map(nm);
/** WHARF_E2E_DAEMON=dockerd: the tests run against Debian's dockerd (started with --iptables=false, see daemon.ts). */
const REFERENCE = process.env.WHARF_E2E_DAEMON === 'dockerd';

before(async () => {
  w = await startDaemon();
  await loadBusybox(w);
  if (!REFERENCE) ({ ref, skip: refSkip } = await startReference(w));
  else refSkip = "the daemon under test is dockerd already";
});
after(async () => {
  for (const d of [w, ref]) {
    await d?.docker(['rm', '-f', ...CTRS]).catch(() => {});
    await d?.docker(['network', 'rm', ...NETS]).catch(() => {});
  }
  await w?.stop();
  await ref?.stop();
});

const ok = (r: RunResult): RunResult => { assert.equal(r.code, 0, show(r)); return r; };

test('--ip-range: addresses come from the range, the gateway is the one dockerd picks, --ip may lie outside it', async (t) => {
  const cases: string[][] = [
    ['network', 'create', '--subnet', '10.241.0.0/16', '--ip-range', '10.241.5.0/24', nm('r1')],
    ['network', 'inspect', '-f', '{{json .IPAM.Config}}', nm('r1')],
    ['run', '--rm', '--network', nm('r1'), 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | cut -d" " -f7; ip route | grep default | cut -d" " -f1-3'],
    ['run', '--rm', '--network', nm('r1'), '--ip', '10.241.7.7', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | cut -d" " -f7'],
    ['network', 'create', '--subnet', '10.242.0.0/24', '--ip-range', '10.242.0.128/25', '--gateway', '10.242.0.130', nm('r2')],
    ['network', 'inspect', '-f', '{{json .IPAM.Config}}', nm('r2')],
    ['run', '--rm', '--network', nm('r2'), 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | cut -d" " -f7; ip route | grep default | cut -d" " -f1-3'],
    ['network', 'rm', nm('r1'), nm('r2')],
  ];
  const out = async (d: Daemon) => { const o: string[] = []; for (const c of cases) { const r = await d.docker(c); o.push(`${r.code} ${r.stdout}${r.stderr}`.replace(/\b[0-9a-f]{64}\b/g, '<id>')); } return o; };
  const mine = await out(w);
  // what dockerd 20.10 answered (measured); checked again below when it runs here
  assert.match(mine[2]!, /^0 10\.241\.5\.1\/16\ndefault via 10\.241\.5\.0\n$/, mine.join('\n'));
  assert.match(mine[3]!, /^0 10\.241\.7\.7\/16\n$/);
  assert.match(mine[6]!, /^0 10\.242\.0\.128\/24\ndefault via 10\.242\.0\.130\n$/);
  if (!ref) return t.skip(refSkip);
  assert.deepEqual(mine, await out(ref));
});

test('a user network and the default bridge are isolated from each other both ways (ping and TCP)', async (t) => {
  // the reference dockerd runs with --iptables=false here: it isolates nothing
  if (REFERENCE) return t.skip('dockerd without iptables');
  ok(await w.docker(['network', 'create', nm('iso')]));
  const listen = 'while :; do echo pong | nc -l -p 7777; done';
  for (const [name, net] of [['ub', nm('iso')], ['ud', nm('iso')], ['bb', 'bridge'], ['bd', 'bridge']] as const) {
    ok(await w.docker(['run', '-d', '--name', nm(name), '--network', net, 'busybox', 'sh', '-c', listen]));
  }
  const ip = async (c: string, net: string) => (await w.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, nm(c)])).stdout.trim();
  const [ub, ud, bb, bd] = [await ip('ub', nm('iso')), await ip('ud', nm('iso')), await ip('bb', 'bridge'), await ip('bd', 'bridge')];
  for (const a of [ub, ud, bb, bd]) assert.match(a, /^\d+\.\d+\.\d+\.\d+$/);
  const reach = async (from: string, to: string) => {
    const r = await w.docker(['exec', nm(from), 'sh', '-c', `ping -c1 -W2 ${to} >/dev/null && echo PING; echo | nc -w 2 ${to} 7777`]);
    return r.stdout.replace(/\n/g, ' ').trim();
  };
  // within each network everything passes: the blocks below are isolation, not a broken container
  assert.equal(await reach('ub', ud), 'PING pong');
  assert.equal(await reach('bb', bd), 'PING pong');
  assert.equal(await reach('ub', bb), '', 'user network → default bridge');
  assert.equal(await reach('bb', ub), '', 'default bridge → user network');
  ok(await w.docker(['rm', '-f', nm('ub'), nm('ud'), nm('bb'), nm('bd')]));
  ok(await w.docker(['network', 'rm', nm('iso')]));
});

test('a default-bridge container connected live to a user network resolves its names; disconnected, its name servers come back', async () => {
  ok(await w.docker(['network', 'create', nm('dns')]));
  ok(await w.docker(['run', '-d', '--name', nm('ds'), '--network', nm('dns'), '--network-alias', 'svc', 'busybox', 'sleep', '120']));
  ok(await w.docker(['run', '-d', '--name', nm('dn'), 'busybox', 'sleep', '120']));
  const before = ok(await w.docker(['exec', nm('dn'), 'cat', '/etc/resolv.conf'])).stdout;
  const svcIp = (await w.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${nm('dns')}").IPAddress}}`, nm('ds')])).stdout.trim();
  const gw = (await w.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', nm('dns')])).stdout.trim();
  assert.match(svcIp, /^\d+\.\d+\.\d+\.\d+$/);
  ok(await w.docker(['network', 'connect', nm('dns'), nm('dn')]));
  const during = ok(await w.docker(['exec', nm('dn'), 'cat', '/etc/resolv.conf'])).stdout;
  // dockerd's embedded DNS listens on 127.0.0.11; wharfd's aardvark-dns on the network's gateway
  assert.deepEqual(during.split('\n').filter((l) => l.startsWith('nameserver')), [`nameserver ${REFERENCE ? '127.0.0.11' : gw}`], during);
  const found = await waitFor(async () => {
    const r = await w.docker(['exec', nm('dn'), 'nslookup', 'svc']);
    return r.stdout.includes(`Address: ${svcIp}`) ? r : null;
  }, { timeout: 10_000, message: 'the alias of the user network to resolve' });
  assert.match(found.stdout, new RegExp(`Name:\\s+svc\\nAddress: ${svcIp.replace(/\./g, '\\.')}`));
  ok(await w.docker(['network', 'disconnect', nm('dns'), nm('dn')]));
  const afterText = ok(await w.docker(['exec', nm('dn'), 'cat', '/etc/resolv.conf'])).stdout;
  // dockerd keeps its embedded DNS (127.0.0.11, still answering in the container's netns: measured); wharfd's name
  // server of that network is out of reach once the container left it, so the earlier name servers come back
  assert.equal(afterText, REFERENCE ? 'nameserver 127.0.0.11\noptions ndots:0\n' : before);
  ok(await w.docker(['rm', '-f', nm('dn'), nm('ds')]));
  ok(await w.docker(['network', 'rm', nm('dns')]));
});

test('parallel network create from several clients, on one wharfd and on two: every network its own subnet', async () => {
  // two wharfds share the host-wide subnet claims; two dockerds know nothing of each other (one is enough there)
  const w2 = REFERENCE ? w : await startDaemon();
  const ps = NETS.filter((n) => /-p\d$/.test(n));
  const on = (i: number): Daemon => (i % 2 ? w2 : w);
  try {
    const rs = await Promise.all(ps.map((n, i) => on(i).docker(['network', 'create', n])));
    for (const r of rs) ok(r);
    const subnets = await Promise.all(ps.map(async (n, i) => ok(await on(i).docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', n])).stdout.trim()));
    assert.equal(new Set(subnets).size, ps.length, subnets.join(' '));
    ok(await w.docker(['network', 'rm', ...ps.filter((_, i) => i % 2 === 0)]));
    ok(await w2.docker(['network', 'rm', ...ps.filter((_, i) => i % 2 === 1)]));
  } finally {
    if (w2 !== w) {
      await w2.docker(['network', 'rm', ...ps.filter((_, i) => i % 2 === 1)]).catch(() => {});
      await w2.stop();
    }
  }
});

test('a user network\'s bridge keeps the MAC of its gateway while containers come and go', async (t) => {
  if (REFERENCE) return t.skip('wharfd\'s MAC rule (dockerd sets a random one)');
  ok(await w.docker(['network', 'create', nm('mac')]));
  const id = ok(await w.docker(['network', 'inspect', '-f', '{{.Id}}', nm('mac')])).stdout.trim();
  const gw = ok(await w.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', nm('mac')])).stdout.trim();
  const br = `br-${id.slice(0, 12)}`;
  const want = ['02', '42', ...gw.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
  const mac = () => readFileSync(`/sys/class/net/${br}/address`, 'utf8').trim();
  assert.equal(mac(), want);
  const a = ok(await w.docker(['run', '-d', '--network', nm('mac'), 'busybox', 'sleep', '60'])).stdout.trim();
  const b = ok(await w.docker(['run', '-d', '--network', nm('mac'), 'busybox', 'sleep', '60'])).stdout.trim();
  assert.equal(mac(), want, 'ports joined');
  ok(await w.docker(['rm', '-f', a]));
  assert.equal(mac(), want, 'a port left');
  ok(await w.docker(['rm', '-f', b]));
  assert.equal(mac(), want, 'the last port left');
  assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${br}/arp_notify`, 'utf8').trim(), '1');
  ok(await w.docker(['network', 'rm', nm('mac')]));
});

test('network connect/disconnect bridge, live and stopped, as dockerd', async () => {
  const NETS_F = '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{if $v.IPAddress}}ip{{end}}:{{if $v.EndpointID}}ep{{end}}:{{if $v.MacAddress}}mac{{end}} {{end}}top={{if .NetworkSettings.IPAddress}}ip{{end}}';
  const IFS = 'ip -4 -o addr | cut -d" " -f2 | tr "\\n" " "; ip -4 route show default | head -1 | cut -d" " -f1-3';
  const steps: string[][] = [
    ['network', 'create', nm('br')],
    ['run', '-d', '--name', nm('pu'), '--network', nm('br'), 'busybox', 'sleep', '120'],
    ['network', 'connect', 'bridge', nm('pu')],
    ['network', 'connect', 'bridge', nm('pu')],
    ['inspect', '-f', NETS_F, nm('pu')],
    ['exec', nm('pu'), 'sh', '-c', `${IFS}; ping -c1 -W2 $BGW >/dev/null && echo GW-OK; tail -2 /etc/hosts`],
    ['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', 'bridge'],
    ['network', 'disconnect', 'bridge', nm('pu')],
    ['inspect', '-f', NETS_F, nm('pu')],
    ['exec', nm('pu'), 'sh', '-c', `${IFS}; tail -2 /etc/hosts`],
    ['run', '-d', '--name', nm('pb'), 'busybox', 'sleep', '120'],
    ['network', 'disconnect', 'bridge', nm('pb')],
    ['network', 'disconnect', 'bridge', nm('pb')],
    ['inspect', '-f', NETS_F, nm('pb')],
    ['exec', nm('pb'), 'sh', '-c', IFS],
    ['network', 'connect', 'bridge', nm('pb')],
    ['inspect', '-f', NETS_F, nm('pb')],
    ['exec', nm('pb'), 'sh', '-c', 'ip -4 -o addr | wc -l; ip -4 route show default | head -1 | cut -d" " -f1-3'],
    ['network', 'disconnect', 'bridge', nm('pb')],
    ['restart', '-t', '0', nm('pb')],
    ['inspect', '-f', NETS_F, nm('pb')],
    ['exec', nm('pb'), 'sh', '-c', IFS],
    ['create', '--name', nm('pc'), '--network', nm('br'), 'busybox', 'sleep', '120'],
    ['network', 'connect', 'bridge', nm('pc')],
    ['inspect', '-f', NETS_F, nm('pc')],
    ['start', nm('pc')],
    ['inspect', '-f', NETS_F.replace('top={{if .NetworkSettings.IPAddress}}ip{{end}}', ''), nm('pc')],
    ['exec', nm('pc'), 'sh', '-c', 'ip -4 -o addr | wc -l; ip -4 route show default | head -1 | cut -d" " -f1-3'],
    ['network', 'disconnect', 'bridge', nm('pc')],
    ['network', 'disconnect', 'bridge', nm('pc')],
    ['rm', '-f', nm('pu'), nm('pb'), nm('pc')],
    ['network', 'rm', nm('br')],
  ];
  const transcript = async (d: Daemon): Promise<string[]> => {
    const bgw = ok(await d.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', 'bridge'])).stdout.trim();
    const out: string[] = [];
    for (const c of steps) {
      const r = await d.docker(c.map((a) => a.replace('$BGW', bgw)));
      out.push(`${c.join(' ')} → ${r.code} ${r.stdout}${r.stderr}`.split(bgw).join('<bridge-gw>').replace(/\b[0-9a-f]{64}\b/g, '<id>').replace(/\b\d+\.\d+\.\d+\.\d+\b/g, '<ip>'));
    }
    return out;
  };
  const mine = await transcript(w);
  const at = (i: number): string => mine[i]!.slice(mine[i]!.indexOf('→'));
  // what dockerd answered (measured); compared whole with dockerd below when it runs here
  assert.equal(at(2), '→ 0 ', mine.join('\n'));
  assert.match(at(3), /already exists in network bridge/);
  assert.equal(at(4), `→ 0 bridge:ip:ep:mac ${nm('br')}:ip:ep:mac top=ip\n`);
  assert.match(at(5), /^→ 0 lo eth0 eth1 default via <bridge-gw>\nGW-OK\n<ip>\t([0-9a-f]{12})\n<ip>\t\1\n$/, 'the default route goes through the bridge, as dockerd; a hosts line for the new address');
  assert.match(at(9), /^→ 0 lo eth0 default via <ip>\n<ip>\t([0-9a-f]{12})\n<ip>\t\1\n$/, 'the user network\'s route back; dockerd leaves the hosts line');
  assert.equal(at(13), '→ 0 top=\n');
  assert.equal(at(14), '→ 0 lo ');
  assert.match(at(12), /is not connected to network bridge/);
  assert.equal(at(16), '→ 0 bridge:ip:ep:mac top=ip\n');
  assert.equal(at(17), '→ 0 2\ndefault via <bridge-gw>\n', 'joined again, live');
  assert.equal(at(20), '→ 0 top=\n', 'a disconnect outlives a restart');
  assert.equal(at(21), '→ 0 lo ');
  assert.equal(at(26), `→ 0 bridge:ip:ep:mac ${nm('br')}:ip:ep:mac \n`);
  assert.equal(at(27), '→ 0 3\ndefault via <bridge-gw>\n');
  if (!ref) return;
  const shortIds = (o: string[]) => o.map((l) => l.replace(/\b[0-9a-f]{12}\b/g, '<short>'));
  assert.deepEqual(shortIds(mine), shortIds(await transcript(ref)));
});

test('a default-bridge container\'s published port goes with `network disconnect bridge` and comes back with `network connect bridge`, as dockerd', async (t) => {
  const run = async (d: Daemon): Promise<string[]> => {
    const port = await freePort();
    const name = nm('pp');
    const get = async (): Promise<string> => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
        return `${r.status} ${(await r.text()).trim()}`;
      } catch { return 'no answer'; }
    };
    const answers = (what: string) => waitFor(async () => { const g = await get(); return g.startsWith('200') ? g : null; }, { timeout: 20_000, message: what }).catch(() => 'no answer');
    const out: string[] = [];
    ok(await d.docker(['run', '-d', '--name', name, '-p', `${port}:80`, 'busybox', 'sh', '-c', 'echo hi > /tmp/index.html; exec httpd -f -p 80 -h /tmp']));
    out.push(await answers('the published port to answer'));
    ok(await d.docker(['network', 'disconnect', 'bridge', name]));
    out.push(await get());
    ok(await d.docker(['network', 'connect', 'bridge', name]));
    out.push(await answers('the published port to answer again'));
    // dockerd also binds [::] (wharfd has no IPv6): the IPv4 line is compared
    out.push(ok(await d.docker(['port', name])).stdout.split('\n').filter((l) => !l.includes('[::]')).join('\n').replace(String(port), '<port>'));
    ok(await d.docker(['rm', '-f', name]));
    return out;
  };
  const mine = await run(w);
  assert.deepEqual(mine, ['200 hi', 'no answer', '200 hi', '80/tcp -> 0.0.0.0:<port>\n'], mine.join('\n'));
  if (!ref) return t.skip(refSkip);
  assert.deepEqual(mine, await run(ref));
});
