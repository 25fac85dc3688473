/**
 * The name server of user networks forwards what it does not know: a container started with --dns on a user
 * network resolves the other containers by name (aardvark-dns on the gateway) and every other name through the
 * given server (here a small DNS server of the test on 127.0.0.77:53). And `docker build --add-host` reaches the
 * RUN containers' /etc/hosts. A container on two networks resolves the names of both through its first name
 * server, as docker's embedded DNS answers for every network of the container (compared with dockerd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

let d: Daemon;
let dns: Socket | undefined;
let work: string;
const asked: string[] = [];
const tag = `q${process.pid.toString(36)}`;

/** Answers every A question with 10.11.12.13 (and remembers the names asked). */
function answer(msg: Buffer): Buffer {
  let o = 12;
  const labels: string[] = [];
  while (msg[o]! > 0) { labels.push(msg.subarray(o + 1, o + 1 + msg[o]!).toString()); o += msg[o]! + 1; }
  const qtype = msg.readUInt16BE(o + 1);
  const question = msg.subarray(12, o + 5);
  asked.push(labels.join('.'));
  const head = Buffer.alloc(12);
  msg.copy(head, 0, 0, 2);
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 11, 12, 13]);
  return Buffer.concat([head, question, ...(qtype === 1 ? [rr] : [])]);
}

before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-netdns-'));
  await loadBusybox(d);
  dns = createSocket('udp4');
  dns.on('message', (m, r) => { try { dns!.send(answer(m), r.port, r.address); } catch { /* a malformed question */ } });
  await new Promise<void>((res, rej) => { dns!.once('error', rej); dns!.bind(53, '127.0.0.77', () => res()); });
});
after(async () => {
  await d?.docker(['rm', '-f', `${tag}-srv`, ...['a', 'b', 'c', 'e'].map((x) => `${tag}-m${x}`)]).catch(() => {});
  await d?.docker(['network', 'rm', `${tag}-m1`, `${tag}-m2`]).catch(() => {});
  await d?.docker(['network', 'rm', `${tag}-net`]).catch(() => {});
  dns?.close();
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// dockerd's embedded DNS forwards from inside the container's netns: a --dns server on the host's loopback is out of reach
test('a user network forwards unknown names to --dns servers and still answers container names', { skip: process.env.WHARF_E2E_DAEMON === 'dockerd' && 'dockerd forwards from the container, which cannot reach the host loopback server' }, async () => {
  assert.equal((await d.docker(['network', 'create', `${tag}-net`])).code, 0);
  // containers that come and go first: the last one leaving stops aardvark-dns, whose zombie must not pass for
  // a live server at the next start (aardvark.ts, livePid)
  for (let i = 0; i < 3; i++) assert.equal((await d.docker(['run', '--rm', '--network', `${tag}-net`, 'busybox', 'true'])).code, 0);
  const srv = await d.docker(['run', '-d', '--name', `${tag}-srv`, '--network', `${tag}-net`, 'busybox', 'sleep', '60']);
  assert.equal(srv.code, 0, show(srv));
  const ip = (await d.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${tag}-net").IPAddress}}`, `${tag}-srv`])).stdout.trim();
  const r = await d.docker(['run', '--rm', '--network', `${tag}-net`, '--dns', '127.0.0.77', 'busybox', 'sh', '-c',
    `nslookup -type=a far.example.test; nslookup ${tag}-srv; cat /etc/resolv.conf`]);
  assert.match(r.stdout, /Name:\s+far\.example\.test\nAddress: 10\.11\.12\.13\n/, show(r));
  assert.match(r.stdout, new RegExp(`Name:\\s+${tag}-srv\\nAddress: ${ip.replace(/\./g, '\\.')}\\n`));
  assert.ok(asked.includes('far.example.test'), `the test's server was asked: ${asked.join(' ')}`);
  assert.ok(!asked.includes(`${tag}-srv`), 'a container name is answered by the network, not forwarded');
  assert.match(r.stdout, /^nameserver \d+\.\d+\.\d+\.1\n/m, 'the container asks the network gateway');
});

test('docker build --add-host: the RUN containers see the extra host', async () => {
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN grep -E "^10\\.4\\.4\\.4\\s+buildhost$" /etc/hosts\n');
  const ok = await d.docker(['build', '--add-host', 'buildhost:10.4.4.4', '-q', ctx], { env: { DOCKER_BUILDKIT: '0' } });
  assert.equal(ok.code, 0, show(ok));
  const without = await d.docker(['build', '--no-cache', '-q', ctx], { env: { DOCKER_BUILDKIT: '0' } });
  assert.notEqual(without.code, 0, 'without --add-host the RUN step fails (the test can fail)');
});

test('a container on two networks resolves the names of both through its first name server; others only their own', async (t) => {
  const m = (x: string): string => `${tag}-m${x}`;
  const run = async (e: Daemon): Promise<string[]> => {
    const out: string[] = [];
    const ok = async (args: string[]) => { const r = await e.docker(args); assert.equal(r.code, 0, show(r)); return r; };
    await ok(['network', 'create', m('1')]);
    await ok(['network', 'create', m('2')]);
    await ok(['run', '-d', '--name', m('a'), '--network', m('1'), 'busybox', 'sleep', '120']);
    await ok(['run', '-d', '--name', m('b'), '--network', m('2'), 'busybox', 'sleep', '120']);
    // one joined live, one joined before its start
    await ok(['run', '-d', '--name', m('c'), '--network', m('1'), 'busybox', 'sleep', '120']);
    await ok(['network', 'connect', m('2'), m('c')]);
    await ok(['create', '--name', m('e'), '--network', m('2'), 'busybox', 'sleep', '120']);
    await ok(['network', 'connect', m('1'), m('e')]);
    await ok(['start', m('e')]);
    const first = 'sed -n "s/^nameserver //p" /etc/resolv.conf | head -1';
    for (const [who, name] of [['c', 'a'], ['c', 'b'], ['e', 'a'], ['e', 'b'], ['a', 'b'], ['b', 'a']] as const) {
      const r = await e.docker(['exec', m(who), 'sh', '-c', `nslookup ${m(name)} $(${first}) >/dev/null 2>&1 && echo yes || echo no`]);
      out.push(`${who}→${name} ${r.stdout.trim()}`);
    }
    await e.docker(['rm', '-f', m('a'), m('b'), m('c'), m('e')]);
    await e.docker(['network', 'rm', m('1'), m('2')]);
    return out;
  };
  const mine = await run(d);
  assert.deepEqual(mine, ['c→a yes', 'c→b yes', 'e→a yes', 'e→b yes', 'a→b no', 'b→a no']);
  const { ref, skip } = await startReference(d);
  if (!ref) return t.skip(skip);
  try {
    assert.deepEqual(mine, await run(ref));
  } finally {
    await ref.stop();
  }
});

test('an alias with a line break, a space or a comma cannot add records to the name server (API input is not its file format)', async () => {
  const net = `${tag}-hx`;
  const ok = async (args: string[]) => { const r = await d.docker(args); assert.equal(r.code, 0, show(r)); return r; };
  await ok(['network', 'create', net]);
  try {
    // the aliases would have written a line of their own (a made-up id → 10.99.0.9 named spoofed), and split fields
    const aliases = [`${tag}-legit`, `${tag}-x\nffffffffffff 10.99.0.9  ${tag}-spoofed`, `${tag}-sp ace`, `${tag}-c1,${tag}-c2`];
    const created = await d.api('POST', `/v1.41/containers/create?name=${tag}-hxa`, JSON.stringify({
      Image: 'busybox', Cmd: ['sleep', '120'], HostConfig: { NetworkMode: net }, NetworkingConfig: { EndpointsConfig: { [net]: { Aliases: aliases } } },
    }));
    assert.equal(created.status, 201, created.body);
    await ok(['start', `${tag}-hxa`]);
    const ip = (await ok(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, `${tag}-hxa`])).stdout.trim();
    const look = (name: string) => `nslookup ${name} 2>&1 | sed -n '/^Name:/,$p' | sed -n 's/^Address[^:]*: *//p' | head -1`;
    const r = await ok(['run', '--rm', '--network', net, 'busybox', 'sh', '-c',
      [`${tag}-legit`, `${tag}-spoofed`, 'ffffffffffff', `${tag}-c2`].map((n) => `echo "${n}=$(${look(n)})"`).join('; ')]);
    assert.deepEqual(r.stdout.trim().split('\n'), [`${tag}-legit=${ip}`, `${tag}-spoofed=`, 'ffffffffffff=', `${tag}-c2=`]);
  } finally {
    await d.docker(['rm', '-f', `${tag}-hxa`]);
    await d.docker(['network', 'rm', net]);
  }
});
