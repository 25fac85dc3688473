/**
 * Debian's netavark (podman's network stack) driven directly: one JSON document per container per network on
 * stdin, `setup`/`teardown` of a network namespace path. netavark makes the bridge, the veth pair, the address and
 * route inside the namespace, the NAT and isolation rules, and feeds aardvark-dns (the name server it starts on
 * each bridge's gateway, which outlives the daemon). It does no IPAM: Wharf's Ipam chooses every address.
 * Teardown needs the very document setup had, so the caller keeps it. See ../../../../shared/notes/netavark.md for
 * the measurements and the gotchas this module works around.
 */
import { execCollect, type ExecResult } from '../../lib/exec.js';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SystemError } from '../../lib/errors.js';

export const NETAVARK_BIN = ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark'].find((p) => existsSync(p)) ?? '/usr/lib/podman/netavark';
export const AARDVARK_BIN = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'].find((p) => existsSync(p)) ?? '/usr/lib/podman/aardvark-dns';

export interface NetavarkNetwork {
  name: string;
  id: string;
  driver: 'bridge';
  network_interface: string;
  subnets: { subnet: string; gateway: string }[];
  ipv6_enabled: boolean;
  internal: boolean;
  dns_enabled: boolean;
  options: Record<string, string>;
  ipam_options: { driver: string };
}

/** The setup/teardown document of one container on one network. */
export interface NetavarkDoc {
  container_id: string;
  container_name: string;
  networks: Record<string, { interface_name: string; static_ips: string[]; aliases: string[]; static_mac?: string }>;
  network_info: Record<string, NetavarkNetwork>;
  port_mappings: never[];
  dns_servers?: string[];
}

export interface NetavarkStatus {
  interfaces: Record<string, { mac_address: string; subnets: { gateway: string; ipnet: string }[] }>;
  dns_server_ips?: string[];
}

function run(configDir: string, verb: 'setup' | 'teardown', netns: string, doc: NetavarkDoc): Promise<ExecResult> {
  return execCollect(NETAVARK_BIN, ['--config', configDir, '--aardvark-binary', AARDVARK_BIN, verb, netns], {
    input: JSON.stringify(doc), env: { ...process.env, NETAVARK_FW: 'iptables' },
  }).catch((err: Error) => { throw new SystemError(`netavark: ${err.message}`, { cause: err }); });
}

function errorOf(stdout: string, stderr: string, code: number): string {
  try {
    const e = (JSON.parse(stdout) as { error?: string }).error;
    if (e) return e;
  } catch { /* not JSON */ }
  return stderr.trim().split('\n').filter((l) => !l.includes('syslog')).join('; ') || `exit status ${code}`;
}

/**
 * netavark signals the aardvark-dns of the pid file (SIGHUP to reload) and starts one only when that fails. An
 * aardvark that exited (it does when the last container leaves) stays a zombie until PID 1 reaps it, and a
 * signal to a zombie succeeds: a setup in that window would leave the network without DNS. A recycled pid would
 * get the signal too. So before each setup a pid file naming anything but a live aardvark-dns is removed.
 */
async function dropStaleAardvarkPid(configDir: string): Promise<void> {
  const pidFile = join(configDir, 'aardvark-dns', 'aardvark.pid');
  const pid = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
  if (!/^\d+$/.test(pid)) return;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!stat || state === 'Z' || state === 'X' || !cmd.includes('aardvark-dns')) await rm(pidFile, { force: true });
}

/** `netavark setup`: the network's status for the container (its interface and address). */
export async function netavarkSetup(configDir: string, netns: string, doc: NetavarkDoc): Promise<NetavarkStatus> {
  await dropStaleAardvarkPid(configDir);
  const r = await run(configDir, 'setup', netns, doc);
  if (r.code !== 0) throw new SystemError(`failed to set up network: ${errorOf(r.stdout, r.stderr, r.code)}`);
  const out = JSON.parse(r.stdout) as Record<string, NetavarkStatus>;
  return Object.values(out)[0] ?? { interfaces: {} };
}

/**
 * `netavark teardown`. A dead aardvark-dns makes netavark report "aardvark pid not found" although everything
 * was removed: that is not a failure. Nor is a namespace already gone (the links went with it).
 */
export async function netavarkTeardown(configDir: string, netns: string, doc: NetavarkDoc): Promise<void> {
  const r = await run(configDir, 'teardown', netns, doc);
  if (r.code === 0) return;
  const msg = errorOf(r.stdout, r.stderr, r.code);
  if (/aardvark pid not found/.test(msg)) return;
  throw new SystemError(`failed to tear down network: ${msg}`);
}

