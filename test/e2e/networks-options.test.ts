/**
 * Per-container network options, wharfd beside Debian's dockerd: --link on the default bridge (the environment
 * variables and the /etc/hosts line docker writes), --add-host, --dns, --dns-search, --dns-option, --hostname,
 * --domainname and --mac-address; the same files and variables on both (addresses and IDs aside).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

let w: Daemon;
let ref: Daemon | undefined;
let refSkip: string | undefined;
let work: string;
const tag = `o${process.pid.toString(36)}`;

before(async () => {
  w = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-netopts-'));
  await loadBusybox(w);
  ({ ref, skip: refSkip } = await startReference(w));
});
after(async () => {
  for (const d of [w, ref]) await d?.docker(['rm', '-f', `${tag}-db`, `${tag}-parent`]).catch(() => {});
  await w?.docker(['network', 'rm', `${tag}-n`]).catch(() => {});
  await w?.stop();
  await ref?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Addresses and IDs differ between the daemons: replaced by placeholders. */
const norm = (r: RunResult, ip: string): string => `${r.code}\n${r.stdout}${r.stderr}`
  .split(ip).join('<db-ip>').replace(/\b(172|10|192)\.\d+\.\d+\.\d+\b/g, '<ip>').replace(/\b[0-9a-f]{12}\b/g, '<short>');

async function probe(d: Daemon): Promise<Record<string, string>> {
  const db = await d.docker(['run', '-d', '--name', `${tag}-db`, '--expose', '5432', '--expose', '53/udp', '-e', 'SECRET=s3', 'busybox', 'sleep', '60']);
  assert.equal(db.code, 0, show(db));
  const ip = (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `${tag}-db`])).stdout.trim();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  const out: Record<string, string> = {};
  const link = await d.docker(['run', '--rm', '--name', `${tag}-app`, '--link', `${tag}-db:db`, '--add-host', 'extra.example:10.1.2.3',
    '--hostname', 'apphost', '--domainname', 'example.org', 'busybox', 'sh', '-c', 'env | grep ^DB_ | sort; cat /etc/hosts; hostname; ping -c1 -W2 db >/dev/null && echo PING-DB']);
  out.link = norm(link, ip);
  const dns = await d.docker(['run', '--rm', '--dns', '10.9.9.9', '--dns-search', 'corp.example', '--dns-option', 'ndots:2',
    'busybox', 'sh', '-c', 'cat /etc/resolv.conf']);
  out.dns = norm(dns, ip);
  const notRunning = await d.docker(['run', '--rm', '--link', 'nosuchcontainer:x', 'busybox', 'true']);
  out.missing = `${notRunning.code}`;
  // docker rm --link: the parent forgets the link; a plain name or an unknown link is refused
  assert.equal((await d.docker(['create', '--name', `${tag}-parent`, '--link', `${tag}-db:db`, 'busybox', 'true'])).code, 0);
  const links = async () => (await d.docker(['inspect', '-f', '{{json .HostConfig.Links}}', `${tag}-parent`])).stdout;
  const rmLink = async (name: string) => { const r = await d.docker(['rm', '--link', name]); return `${r.code} ${r.stdout}${r.stderr}`; };
  out.rmLink = [await links(), await rmLink(`/${tag}-parent/nolink`), await rmLink(`${tag}-parent`),
    await rmLink(`/${tag}-parent/db`), await links()].join('|').split(tag).join('<tag>');
  await d.docker(['rm', '-f', `${tag}-parent`]);
  await d.docker(['rm', '-f', `${tag}-db`]);
  return out;
}

test('--link, --add-host, --dns*, --hostname, --domainname, --mac-address: as dockerd makes them', { skip: process.env.WHARF_E2E_DAEMON === 'dockerd' && 'compares wharfd with dockerd: nothing to compare when both are dockerd' }, async (t) => {
  const mine = await probe(w);
  assert.match(mine.link!, /^0\nDB_ENV_SECRET=s3\nDB_NAME=\/o\w+-app\/db\nDB_PORT=udp:\/\/<db-ip>:53\n/, mine.link);
  assert.match(mine.link!, /DB_PORT_5432_TCP_ADDR=<db-ip>\n/);
  assert.match(mine.link!, /\n<db-ip>\tdb <short> o\w+-db\n/);
  assert.match(mine.link!, /\n10\.1\.2\.3\textra\.example\n|\n<ip>\textra\.example\n/);
  assert.match(mine.link!, /\napphost\nPING-DB\n$/);
  assert.match(mine.dns!, /^0\nsearch corp\.example\nnameserver <ip>\noptions ndots:2\n$/, mine.dns);
  // the docker CLI sends --mac-address only with API 1.44: through wharf, on the default bridge and a user network
  const mac = await w.wharf(['run', '--rm', '--mac-address', '02:42:0a:0b:0c:0d', 'busybox', 'cat', '/sys/class/net/eth0/address']);
  assert.equal(mac.stdout, '02:42:0a:0b:0c:0d\n', show(mac));
  assert.equal((await w.docker(['network', 'create', `${tag}-n`])).code, 0);
  const mac2 = await w.wharf(['run', '--rm', '--network', `${tag}-n`, '--mac-address', '02:42:0a:0b:0c:0e', 'busybox', 'cat', '/sys/class/net/eth0/address']);
  assert.equal(mac2.stdout, '02:42:0a:0b:0c:0e\n', show(mac2));
  assert.equal((await w.docker(['network', 'rm', `${tag}-n`])).code, 0);
  assert.notEqual(mine.missing, '0');
  if (!ref) return t.skip(refSkip);
  assert.deepEqual(mine, await probe(ref));
});
