/**
 * 20 containers across 3 user networks, created, started and removed in parallel through the docker CLI: every
 * container gets a distinct address on its network and resolves a peer by name, and afterwards nothing is left on
 * the host — no bridge, no veth, no netns file, no iptables rule of the networks, no address held.
 */
// wharf-test: alone
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

let d: Daemon;
const tag = `s${process.pid.toString(36)}`;
const nets = [0, 1, 2].map((i) => `${tag}-n${i}`);
const names = Array.from({ length: 20 }, (_, i) => `${tag}-c${i}`);

before(async () => {
  d = await startDaemon();
  await loadBusybox(d);
});
after(async () => {
  await d?.docker(['rm', '-f', ...names]).catch(() => {});
  await d?.docker(['network', 'rm', ...nets]).catch(() => {});
  await d?.stop();
});

const links = (): string[] => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n')
  .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((l) => /^(vn[0-9a-f]{13}|veth\d{1,6}|br-.*)$/.test(l));

test('20 containers on 3 networks in parallel: distinct addresses, names resolve, nothing left after removal', async () => {
  const linksBefore = links();
  for (const n of nets) assert.equal((await d.docker(['network', 'create', n])).code, 0);
  const subnets = await Promise.all(nets.map(async (n) => (await d.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', n])).stdout.trim()));
  const ids = await Promise.all(nets.map(async (n) => (await d.docker(['network', 'inspect', '-f', '{{.Id}}', n])).stdout.trim()));
  const runs = await Promise.all(names.map((c, i) => d.docker(['run', '-d', '--name', c, '--network', nets[i % 3]!, 'busybox', 'sleep', '120'])));
  for (const r of runs) assert.equal(r.code, 0, show(r));

  const ips = await Promise.all(names.map(async (c, i) => (await d.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${nets[i % 3]}").IPAddress}}`, c])).stdout.trim()));
  assert.equal(new Set(ips).size, 20, `distinct addresses: ${ips.join(' ')}`);
  // each container resolves the next one on its network (c0 → c3, c1 → c4, …)
  const looks = await Promise.all(names.slice(0, 17).map((c, i) => d.docker(['exec', c, 'nslookup', names[i + 3]!])));
  looks.forEach((r, i) => assert.match(r.stdout, new RegExp(`Address: ${ips[i + 3]!.replace(/\./g, '\\.')}\\n`), show(r)));
  const members = await d.docker(['network', 'inspect', '-f', '{{len .Containers}}', nets[0]!]);
  assert.equal(members.stdout.trim(), '7');

  const rms = await Promise.all(names.map((c) => d.docker(['rm', '-f', c])));
  for (const r of rms) assert.equal(r.code, 0, show(r));
  const rmn = await d.docker(['network', 'rm', ...nets]);
  assert.equal(rmn.code, 0, show(rmn));

  assert.deepEqual(links().filter((l) => !linksBefore.includes(l)), [], 'no bridge or veth left');
  const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => subnets.some((s) => l.includes(s)));
  assert.deepEqual(rules, [], 'no iptables rule of the networks');
  if (d.engine === 'dockerd') return; // below: wharfd's own files (dockerd keeps other netns files in its exec root)
  assert.deepEqual(await readdir(join(d.execRoot, 'netns')).catch(() => [] as string[]), [], 'no netns file');
  assert.deepEqual(await readdir(join(d.dataRoot, 'network', 'endpoints')), []);
  const left = (await readdir(join(d.dataRoot, 'network'))).filter((f) => ids.some((id) => f.startsWith(id)));
  assert.deepEqual(left, [], 'no IPAM table of the removed networks');
  const claims = JSON.parse(await readFile('/run/wharf-ipam/pools.json', 'utf8').catch(() => '{}')) as Record<string, { owner: string }>;
  assert.deepEqual(Object.values(claims).filter((c) => ids.includes(c.owner)), [], 'no host-wide subnet claim left');
});
