/**
 * User-defined networks through a real wharfd (netavark + aardvark-dns under it) and real busybox containers, driven
 * by the docker CLI and by wharf, with Debian's dockerd beside it as the reference for what docker prints:
 * create/ls/inspect/rm/prune and bad input answered as dockerd answers; two networks isolated from each other;
 * DNS by name, alias and short ID on a network and not across networks; connect/disconnect of a running container;
 * --internal without a way out; and nothing left on the host (bridges, veths, iptables rules, netns files).
 */
// wharf-test: alone
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let w: Daemon;
let ref: Daemon | undefined;
let refSkip: string | undefined;
let work: string;
const tag = `n${process.pid.toString(36)}`;
const net = (s: string): string => `${tag}-${s}`;
/**
 * WHARF_E2E_DAEMON=dockerd: the daemon under test is Debian's dockerd, started with --iptables=false (no isolation
 * rules) and without a reachable upstream name server (an unknown name times out instead of "can't find").
 */
const REFERENCE = process.env.WHARF_E2E_DAEMON === 'dockerd';
const unknownName = (name: string): RegExp => new RegExp(REFERENCE ? `can't find ${name}|no servers could be reached` : `can't find ${name}`);

function hostState(): { links: string[]; rules: string[] } {
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter(Boolean);
  const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => !l.startsWith('#') && !l.startsWith(':'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ''));
  return { links, rules };
}

before(async () => {
  w = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-networks-'));
  await loadBusybox(w);
  try {
    ref = await startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 });
    const tar = join(work, 'busybox.tar');
    assert.equal((await w.wharf(['save', '-o', tar, 'busybox'])).code, 0);
    const l = await ref.docker(['load', '-i', tar]);
    assert.equal(l.code, 0, show(l));
  } catch (e) {
    refSkip = `dockerd could not start here: ${(e as Error).message.split('\n')[0]}`;
  }
});
after(async () => {
  await w?.docker(['rm', '-f', ...['a1', 'a2', 'b1', 'c1', 'c2'].map(net)]).catch(() => {});
  await ref?.docker(['rm', '-f', net('c1'), net('c2')]).catch(() => {});
  // a network's bridge outlives a stopped daemon (as dockerd's): whatever a failed test left is removed here
  for (const d of [w, ref]) await d?.docker(['network', 'rm', ...['a', 's', 'x', 'p1', 'p2', 'one', 'two', 'int'].map(net)]).catch(() => {});
  await w?.stop();
  await ref?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const norm = (r: RunResult): string => `${r.code}\n${r.stdout}${r.stderr}`.replace(/\b[0-9a-f]{64}\b/g, '<id>').replace(/\b[0-9a-f]{12}\b/g, '<short>');

test('create/ls/inspect/connect/rm/prune and bad input: the docker CLI prints on wharfd what it prints on dockerd', async (t) => {
  if (!ref) return t.skip(refSkip);
  const cases: string[][] = [
    ['network', 'create', net('a')],
    ['network', 'create', net('a')],
    ['network', 'create', '-d', 'nosuchdriver', net('x')],
    ['network', 'create', '--subnet', 'notacidr', net('x')],
    ['network', 'create', '--subnet', '10.231.0.0/24', '--label', 'k=v', net('s')],
    ['network', 'create', '--subnet', '10.231.0.0/25', net('x')],
    ['network', 'create', '--subnet', '10.232.0.0/24', '--gateway', '10.233.0.1', net('x')],
    ['network', 'create', 'bridge'],
    ['network', 'ls', '--filter', `name=${tag}`, '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}}'],
    ['network', 'ls', '-f', 'type=builtin', '--format', '{{.Name}} {{.Driver}}'],
    ['network', 'ls', '-f', 'label=k=v', '--format', '{{.Name}}'],
    ['network', 'ls', '-f', 'bogus=1'],
    ['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}} {{.IPAM.Driver}} {{.IPAM.Config}} {{.Internal}} {{.Attachable}} {{.Containers}} {{.Options}} {{.Labels}}', net('s'), 'host', 'none'],
    ['network', 'inspect', 'nosuch'],
    ['network', 'rm', 'nosuch'],
    ['network', 'rm', 'bridge'],
    ['create', '--name', net('c1'), '--network', net('s'), 'busybox', 'true'],
    ['network', 'connect', net('s'), net('c1')],
    ['network', 'disconnect', net('a'), net('c1')],
    ['network', 'connect', net('a'), 'nosuchcontainer'],
    ['run', '--rm', '--network', net('a'), '--ip', '10.231.0.9', 'busybox', 'true'],
    ['run', '--rm', '--network', net('s'), '--ip', '10.231.0.9', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | cut -d" " -f7'],
    ['run', '--rm', '--network-alias', 'x', 'busybox', 'true'],
    ['run', '--rm', '--network', 'nosuchnetwork', 'busybox', 'true'],
    ['run', '--rm', '--link', 'nosuchcontainer:x', 'busybox', 'true'],
    ['run', '-d', '--name', net('c2'), '--network', net('s'), '--network-alias', 'svc', 'busybox', 'sleep', '60'],
    ['network', 'rm', net('s')],
    ['network', 'connect', net('a'), net('c2')],
    ['network', 'connect', net('a'), net('c2')],
    ['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{len $v.Aliases}} {{$v.IPPrefixLen}} {{end}}', net('c2')],
    ['run', '--rm', '--name', net('c3'), 'busybox', 'true'],
    ['create', '--name', net('c3'), 'busybox', 'true'],
    ['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{len $v.NetworkID}} {{$v.EndpointID}}|{{$v.IPAddress}}|{{end}}', net('c3')],
    ['rm', net('c3')],
    ['network', 'disconnect', net('a'), net('c2')],
    ['rm', '-f', net('c1'), net('c2')],
    ['network', 'rm', net('a'), net('s')],
    ['network', 'ls', '--filter', `name=${tag}`, '--format', '{{.Name}}'],
  ];
  const diffs: string[] = [];
  for (const args of cases) {
    const [x, y] = [await ref.docker(args), await w.docker(args)];
    if (norm(x) !== norm(y)) diffs.push(`docker ${args.join(' ')}\n  dockerd: ${norm(x)}\n  wharfd:  ${norm(y)}`);
  }
  assert.deepEqual(diffs, []);
});

test('wharf network prints what docker prints; prune removes unused networks only', async () => {
  for (const args of [['network', 'create', '--label', 'p=1', net('p1')], ['network', 'create', net('p2')]]) {
    const r = await w.wharf(args);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/, show(r));
  }
  const used = await w.docker(['run', '-d', '--name', net('a1'), '--network', net('p2'), 'busybox', 'sleep', '60']);
  assert.equal(used.code, 0, show(used));
  for (const args of [
    ['network', 'ls'], ['network', 'ls', '-q'], ['network', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Name}}'],
    ['network', 'inspect', net('p1')], ['network', 'inspect', '-f', '{{json .Containers}}', net('p2')],
  ]) {
    const [a, b] = [await w.wharf(args), await w.docker(args)];
    assert.equal(a.stdout, b.stdout, `wharf ${args.join(' ')}`);
    assert.equal(a.code, 0, show(a));
  }
  const ls = await w.wharf(['network', 'ls']);
  assert.match(ls.stdout, /^NETWORK ID {5}NAME +DRIVER +SCOPE\n/);
  assert.match(ls.stdout, /\n[0-9a-f]{12} {3}bridge +bridge +local\n/);
  const inUse = await w.wharf(['network', 'rm', net('p2')]);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /^Error response from daemon: error while removing network: network .* has active endpoints/);
  const pr = await w.wharf(['network', 'prune', '-f', '--filter', 'label=p=1']);
  assert.equal(pr.stdout, `Deleted Networks:\n${net('p1')}\n\n`, show(pr));
  assert.equal((await w.docker(['rm', '-f', net('a1')])).code, 0);
  const pr2 = await w.docker(['network', 'prune', '-f']);
  assert.match(pr2.stdout, new RegExp(`^Deleted Networks:\\n(.*\\n)*${net('p2')}\\n`), show(pr2));
  const none = await w.docker(['network', 'ls', '--filter', `name=${tag}`, '-q']);
  assert.equal(none.stdout, '');
});

test('DNS by name, alias and short ID within a network, nothing across; isolation; live connect/disconnect; --internal; nothing left behind', async () => {
  const before = hostState();
  const made: string[] = [];
  for (const n of ['one', 'two']) {
    const r = await w.docker(['network', 'create', net(n)]);
    assert.equal(r.code, 0, show(r));
    made.push(net(n));
  }
  const ri = await w.wharf(['network', 'create', '--internal', net('int')]);
  assert.equal(ri.code, 0, show(ri));
  const subnets = await Promise.all(['one', 'two', 'int'].map(async (n) => (await w.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', net(n)])).stdout.trim()));
  const bridges = await Promise.all(['one', 'two', 'int'].map(async (n) => `br-${(await w.docker(['network', 'inspect', '-f', '{{.Id}}', net(n)])).stdout.trim().slice(0, 12)}`));
  assert.equal(new Set(subnets).size, 3, `three distinct subnets: ${subnets.join(' ')}`);

  const a1 = await w.docker(['run', '-d', '--name', net('a1'), '--network', net('one'), '--network-alias', 'web', 'busybox', 'sleep', '120']);
  assert.equal(a1.code, 0, show(a1));
  const a2 = await w.wharf(['run', '-d', '--name', net('a2'), '--network', net('one'), '--network-alias', 'web', 'busybox', 'sleep', '120']);
  assert.equal(a2.code, 0, show(a2));
  const b1 = await w.docker(['run', '-d', '--name', net('b1'), '--network', net('two'), 'busybox', 'sleep', '120']);
  assert.equal(b1.code, 0, show(b1));
  const ipOf = async (c: string, n: string): Promise<string> => (await w.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${n}").IPAddress}}`, c])).stdout.trim();
  const [ipA1, ipA2, ipB1] = [await ipOf(net('a1'), net('one')), await ipOf(net('a2'), net('one')), await ipOf(net('b1'), net('two'))];
  assert.match(ipA1, /^\d+\.\d+\.\d+\.\d+$/);
  const short = a1.stdout.trim().slice(0, 12);

  // names on one network: container name, alias (shared by two containers), short ID; not b1 of the other network
  const probe = await w.docker(['exec', net('a2'), 'sh', '-c',
    `nslookup ${net('a1')}; nslookup web; nslookup ${short}; nslookup ${net('b1')}; ping -c1 -W2 ${net('a1')} >/dev/null && echo PING-SAME-OK; ping -c1 -W1 ${ipB1} >/dev/null || echo PING-OTHER-BLOCKED`]);
  assert.match(probe.stdout, new RegExp(`Name:\\s+${net('a1')}\\nAddress: ${ipA1.replace(/\./g, '\\.')}`), show(probe));
  const webAnswers = [...probe.stdout.matchAll(/Name:\s+web\nAddress: (\S+)/g)].map((m) => m[1]).sort();
  assert.deepEqual(webAnswers, [ipA1, ipA2].sort(), `the alias "web" answers both containers:\n${probe.stdout}`);
  assert.match(probe.stdout, new RegExp(`Name:\\s+${short}\\nAddress: ${ipA1.replace(/\./g, '\\.')}`));
  assert.match(probe.stdout + probe.stderr, unknownName(net('b1')));
  assert.match(probe.stdout, /PING-SAME-OK/);
  if (!REFERENCE) assert.match(probe.stdout, /PING-OTHER-BLOCKED/, 'two user networks are isolated');
  const resolv = await w.docker(['exec', net('a2'), 'cat', '/etc/resolv.conf']);
  assert.match(resolv.stdout, REFERENCE ? /^nameserver 127\.0\.0\.11$/m : /^nameserver \d+\.\d+\.\d+\.1$/m);

  // live connect: b1 gets eth1 on "one" and resolves its names; then disconnect takes it away again
  const con = await w.wharf(['network', 'connect', '--alias', 'late', net('one'), net('b1')]);
  assert.equal(con.code, 0, show(con));
  const ifs = await w.docker(['exec', net('b1'), 'sh', '-c', 'ip -4 -o addr show | cut -d" " -f2 | sort | tr "\\n" " "']);
  assert.equal(ifs.stdout, 'eth0 eth1 lo ', show(ifs));
  const seen = await waitFor(async () => {
    const r = await w.docker(['exec', net('a1'), 'nslookup', 'late']);
    return /Name:\s+late\nAddress: /.test(r.stdout) ? r : null;
  }, { timeout: 5000, message: 'the alias of a live connect to resolve' });
  assert.match(seen.stdout, /Name:\s+late\nAddress: /, show(seen));
  const nets = await w.docker(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', net('b1')]);
  assert.equal(nets.stdout.trim(), `${net('one')} ${net('two')}`);
  const netIns = await w.docker(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', net('one')]);
  assert.deepEqual(netIns.stdout.trim().split(' ').sort(), [net('a1'), net('a2'), net('b1')].sort());
  const dis = await w.docker(['network', 'disconnect', net('one'), net('b1')]);
  assert.equal(dis.code, 0, show(dis));
  const ifs2 = await w.docker(['exec', net('b1'), 'sh', '-c', 'ip -4 -o addr show | cut -d" " -f2 | sort | tr "\\n" " "']);
  assert.equal(ifs2.stdout, 'eth0 lo ');
  // aardvark-dns reloads on SIGHUP, asynchronously: the name goes within moments
  let lastLook: RunResult | null = null;
  const gone = await waitFor(async () => {
    const r = lastLook = await w.docker(['exec', net('a1'), 'nslookup', 'late']);
    return unknownName('late').test(r.stdout + r.stderr) ? r : null;
  }, { timeout: 20_000, message: 'the alias to disappear' }).catch((e: Error) => { throw new Error(`${e.message}\n${show(lastLook!)}\n${w.log().slice(-3000)}`); });
  assert.match(gone.stdout + gone.stderr, unknownName('late'));

  // --internal: no default route, the outside unreachable; the network's own names still resolve
  const int = await w.docker(['run', '--rm', '--network', net('int'), 'busybox', 'sh', '-c', 'ip route; ping -c1 -W1 1.1.1.1 >/dev/null 2>&1 || echo NO-WAY-OUT']);
  // dockerd without iptables (the reference here) keeps a default route on an internal network; no way out all the same
  if (!REFERENCE) assert.doesNotMatch(int.stdout, /default/, show(int));
  assert.match(int.stdout, /NO-WAY-OUT/);
  const out = await w.docker(['exec', net('a1'), 'ip', 'route']);
  assert.match(out.stdout, /^default via /m, 'a normal network has a default route');

  // a network in use cannot go; after the containers it can, and nothing of it stays on the host
  assert.equal((await w.docker(['network', 'rm', net('one')])).code, 1);
  assert.equal((await w.docker(['rm', '-f', net('a1'), net('a2'), net('b1')])).code, 0);
  const rmr = await w.wharf(['network', 'rm', net('one'), net('two'), net('int')]);
  assert.equal(rmr.stdout, `${net('one')}\n${net('two')}\n${net('int')}\n`, show(rmr));
  const after = hostState();
  for (const b of bridges) assert.ok(!after.links.includes(b), `bridge ${b} removed`);
  // user-network veths are vn<13 hex> (veth0, veth1… were netavark's, kept for older daemons beside); veth<7 hex>
  // are other daemons' default-bridge ones
  // (all digits now and then: veth5076263 was one)
  assert.deepEqual(after.links.filter((l) => !before.links.includes(l) && /^(vn[0-9a-f]{13}|veth\d{1,6}|br-.*)$/.test(l)), [], 'no new veth or bridge');
  const mine = after.rules.filter((r) => subnets.some((s) => r.includes(s)) || bridges.some((b) => r.includes(b)));
  assert.deepEqual(mine, [], 'no iptables rule of these networks');
  if (REFERENCE) return; // wharfd's own files below
  assert.deepEqual((await readdir(join(w.execRoot, 'netns')).catch(() => [] as string[])), [], 'no netns file');
  assert.deepEqual(await readdir(join(w.dataRoot, 'network', 'endpoints')), []);
});
