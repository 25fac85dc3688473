/**
 * OCI runtime spec (config.json) for a container, shaped like the one dockerd 20.10 hands containerd/runc:
 * docker's default mounts, capabilities, masked/readonly paths, device cgroup allow-list, and the
 * /etc/hosts, /etc/hostname, /etc/resolv.conf files kept in a per-container directory and bind-mounted in.
 *
 * Seccomp: docker's default allow-list profile (`seccomp.ts`), resolved against the container's capabilities
 * and architecture; `seccomp: 'unconfined'` and `privileged` turn it off, and a caller may pass a docker-format
 * profile (what `--security-opt seccomp=<json>` carries) instead.
 *
 * Capabilities: docker's default set with CapAdd/CapDrop applied as dockerd does (`ALL` on either side); the
 * inheritable set is always empty (CVE-2022-24769), in the container's process and in exec's.
 *
 * rlimits: runc fails at start when asked to raise a hard limit above the caller's (no CAP_SYS_RESOURCE here),
 * so every rlimit is clamped to the daemon's own hard limits read from /proc/self/limits.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidParameterError } from '../../lib/errors.js';
import { defaultProfile, toOciSeccomp, type DockerSeccompProfile } from './seccomp.js';
import { readFileInRoot } from '../fsroot/index.js';
import { isMissing, missingAs } from '../../lib/fsutil.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];

export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: Mount[];
  linux: Record<string, unknown> & {
    namespaces: { type: string; path?: string }[];
    resources?: Record<string, unknown>;
    cgroupsPath?: string;
  };
  [k: string]: unknown;
}

export type NetworkMode =
  | { mode: 'none' } // a new, empty netns (only lo)
  | { mode: 'host' } // share the host's
  | { mode: 'path'; path: string }; // join a prepared netns (bridge endpoint)

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
  /** "rprivate" (default), "rshared", … */
  propagation?: string;
}

export interface RlimitSpec { type: string; soft: number; hard: number }

/** A host device made available in the container (docker's --device). */
export interface DeviceSpec { pathOnHost: string; pathInContainer: string; permissions: string }

export interface SpecOptions {
  /** Container ID (full, 64 hex). Used for cgroupsPath. */
  id: string;
  /** Merged rootfs path. */
  rootfs: string;
  args: string[];
  env?: string[];
  cwd?: string;
  /** "", "1000", "1000:1000", "nobody", "user:group", "user:1000". Names resolved from the rootfs. */
  user?: string;
  terminal?: boolean;
  hostname?: string;
  domainname?: string;
  /** Per-container directory where hosts/hostname/resolv.conf are written (created if missing). */
  containerDir: string;
  network?: NetworkMode;
  /** IP address of this container on its network (for /etc/hosts). */
  ip?: string;
  /** Extra /etc/hosts lines: "name:ip" as --add-host. */
  extraHosts?: string[];
  /** DNS servers overriding the host's resolv.conf. */
  dns?: string[];
  /** Replacement for 127.x nameservers when filtering the host's resolv.conf (default 8.8.8.8/8.8.4.4). */
  dnsFallback?: string[];
  /** --dns-search and --dns-option: replace the host's search and options lines. */
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Host resolv.conf path (tests). */
  hostResolvConf?: string;
  binds?: BindMount[];
  /** Bytes, 0 = unlimited. */
  memory?: number;
  /** Memory + swap in bytes (-1 = unlimited swap), as docker's MemorySwap. */
  memorySwap?: number;
  memoryReservation?: number;
  oomKillDisable?: boolean;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** --cpus as a number of CPUs (e.g. 1.5). */
  cpus?: number;
  cpuShares?: number;
  pidsLimit?: number;
  shmSize?: number;
  rlimits?: RlimitSpec[];
  oomScoreAdj?: number;
  readonlyRootfs?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** 'default' (docker's default profile), 'unconfined', or a docker-format profile. */
  seccomp?: 'default' | 'unconfined' | DockerSeccompProfile;
  noNewPrivileges?: boolean;
  /** --group-add: group names (resolved in the rootfs' /etc/group) or numbers. */
  groupAdd?: string[];
  /** --tmpfs: destination → mount options ("size=1m,mode=1700"). */
  tmpfs?: Record<string, string>;
  devices?: DeviceSpec[];
  /** --device-cgroup-rule: "c 1:3 mr", "a *:* rwm". */
  deviceCgroupRules?: string[];
  /** HostConfig.MaskedPaths / ReadonlyPaths (docker's --security-opt systempaths=unconfined sends both empty). */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /** Namespaces shared with the host (docker's --pid=host, --uts=host, --ipc=host). */
  hostNamespaces?: ('pid' | 'uts' | 'ipc')[];
  /** Namespaces joined from another container (--pid/--ipc container:X): its /proc/<pid>/ns/<type>. */
  joinNamespaces?: { type: 'pid' | 'ipc'; path: string }[];
  /**
   * /dev/shm from a host directory instead of a private tmpfs: a `shareable` IPC donor's own (`<containerDir>/shm`,
   * made here), the donor's for `--ipc container:X`, the host's /dev/shm for `--ipc host`; '' (`--ipc none`): none.
   */
  shmDir?: string;
  memorySwappiness?: number;
  blkioWeight?: number;
  /** cgroupfs parent (default "/wharf"). */
  cgroupParent?: string;
  /** docker's --init: true (the host's /usr/bin/docker-init) or a path to a static init (tini), bind-mounted
   *  read-only at /sbin/docker-init and run as PID 1 with the command after "--". */
  init?: boolean | string;
  sysctl?: Record<string, string>;
}

// ---------- users ----------

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

/** The lines of a file inside the rootfs, resolved in it (an image's symlink at /etc/passwd never reaches the host's). */
function readLinesInRoot(rootfs: string, path: string): string[] {
  return readFileInRoot(rootfs, path)?.toString('utf8').split('\n') ?? [];
}

function parsePasswd(lines: string[]): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const l of lines) {
    if (!l || l.startsWith('#')) continue;
    const f = l.split(':');
    if (f.length < 4) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' });
  }
  return out;
}

function parseGroup(lines: string[]): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const l of lines) {
    if (!l || l.startsWith('#')) continue;
    const f = l.split(':');
    if (f.length < 3) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isNum = (s: string) => /^\d+$/.test(s);

export interface ResolvedUser { uid: number; gid: number; additionalGids: number[]; home: string }

/**
 * Resolves docker's --user forms against the rootfs' /etc/passwd and /etc/group, with docker's errors:
 * "unable to find user X: no matching entries in passwd file", "unable to find group X: no matching entries in group file".
 */
export async function resolveUser(rootfs: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = user ?? '';
  const [u = '', g] = spec.split(':', 2) as [string?, string?];
  const passwd = parsePasswd(readLinesInRoot(rootfs, '/etc/passwd'));
  let uid = 0, gid = 0, home = '/', name: string | null = null;
  if (u === '') {
    const root = passwd.find((p) => p.uid === 0);
    name = root?.name ?? 'root';
    home = root?.home ?? '/root';
  } else if (isNum(u)) {
    uid = Number(u);
    const p = passwd.find((e) => e.uid === uid);
    if (p) { gid = p.gid; home = p.home; name = p.name; }
  } else {
    const p = passwd.find((e) => e.name === u);
    if (!p) throw new InvalidParameterError(`unable to find user ${u}: no matching entries in passwd file`);
    uid = p.uid; gid = p.gid; home = p.home; name = p.name;
  }
  const groups = parseGroup(readLinesInRoot(rootfs, '/etc/group'));
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const e = groups.find((x) => x.name === g);
      if (!e) throw new InvalidParameterError(`unable to find group ${g}: no matching entries in group file`);
      gid = e.gid;
    }
  }
  const additionalGids: number[] = [];
  if (name !== null && (g === undefined || g === '')) {
    for (const e of groups) if (e.members.includes(name) && e.gid !== gid && !additionalGids.includes(e.gid)) additionalGids.push(e.gid);
  }
  return { uid, gid, additionalGids, home };
}

// ---------- rlimits ----------

const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU', 'Max file size': 'RLIMIT_FSIZE', 'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK', 'Max core file size': 'RLIMIT_CORE', 'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC', 'Max open files': 'RLIMIT_NOFILE', 'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS', 'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE', 'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** 2^64-1 as runc reads it (RLIM_INFINITY); JSON numbers lose precision there, runc accepts the rounded value. */
export const RLIM_INFINITY = 18446744073709551615;

let ownLimits: Map<string, { soft: number; hard: number }> | null = null;

/** The daemon's own limits (RLIMIT_* → soft/hard), from /proc/self/limits. */
export function daemonLimits(): Map<string, { soft: number; hard: number }> {
  if (ownLimits) return ownLimits;
  const m = new Map<string, { soft: number; hard: number }>();
  for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
    const name = Object.keys(LIMIT_NAMES).find((k) => line.startsWith(k));
    if (!name) continue;
    const rest = line.slice(name.length).trim().split(/\s+/);
    const val = (s: string | undefined) => (s === 'unlimited' || s === undefined ? RLIM_INFINITY : Number(s));
    m.set(LIMIT_NAMES[name]!, { soft: val(rest[0]), hard: val(rest[1]) });
  }
  ownLimits = m;
  return m;
}

/** Clamps requested rlimits to the daemon's hard limits; adds RLIMIT_NOFILE = the daemon's (docker/containerd use 1048576). */
export function clampRlimits(req: RlimitSpec[] | undefined): { type: string; soft: number; hard: number }[] {
  const own = daemonLimits();
  const out = new Map<string, { type: string; soft: number; hard: number }>();
  const nofile = own.get('RLIMIT_NOFILE');
  if (nofile) {
    const v = Math.min(1048576, nofile.hard);
    out.set('RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', soft: v, hard: v });
  }
  for (const r of req ?? []) {
    const type = r.type.startsWith('RLIMIT_') ? r.type.toUpperCase() : `RLIMIT_${r.type.toUpperCase()}`;
    const cap = own.get(type)?.hard ?? RLIM_INFINITY;
    const hard = Math.min(r.hard, cap);
    out.set(type, { type, hard, soft: Math.min(r.soft, hard) });
  }
  return [...out.values()];
}

// ---------- etc files ----------

export function hostsContent(hostname: string, ip: string | undefined, extra: string[] = [], domainname?: string): string {
  let s = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n' +
    'ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';
  for (const e of extra) {
    const i = e.indexOf(':');
    if (i > 0) s += `${e.slice(i + 1)}\t${e.slice(0, i)}\n`;
  }
  if (ip) s += `${ip}\t${domainname ? `${hostname}.${domainname} ` : ''}${hostname}\n`;
  return s;
}

/**
 * docker's resolv.conf rule: the host's file with localhost nameservers (127.x, ::1) removed; when none are
 * left, the fallback (default Google's 8.8.8.8/8.8.4.4). `dns` replaces the nameservers entirely.
 */
export function resolvConfContent(host: string, dns?: string[], fallback: string[] = ['8.8.8.8', '8.8.4.4'], search?: string[], options?: string[]): string {
  const lines = host.split('\n');
  const kept: string[] = [];
  const hostServers: string[] = [];
  let hostSearch: string[] = [];
  let hostOptions: string[] = [];
  for (const l of lines) {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    if (m) {
      const a = m[1]!;
      if (a.startsWith('127.') || a === '::1' || a.startsWith('fe80:')) continue;
      hostServers.push(a);
    }
    const sm = /^\s*search\s+(.*)$/.exec(l);
    if (sm) hostSearch = sm[1]!.trim().split(/\s+/);
    const om = /^\s*options\s+(.*)$/.exec(l);
    if (om) hostOptions = om[1]!.trim().split(/\s+/);
    kept.push(l);
  }
  if (!dns?.length && !search?.length && !options?.length) {
    // the host's file, its localhost name servers dropped (the fallback when none is left)
    const out = kept.filter((l) => !/^\s*nameserver\s+(127\.|::1|fe80:)/.test(l));
    while (out.length && out[out.length - 1] === '') out.pop();
    if (hostServers.length === 0) for (const s of fallback) out.push(`nameserver ${s}`);
    return out.join('\n') + '\n';
  }
  // dockerd's resolvconf.Build: search, name servers, options — each given or the host's ("." alone: no search)
  const domains = (search?.length ? search : hostSearch).filter((d) => d !== '.');
  const servers = dns?.length ? dns : hostServers.length ? hostServers : fallback;
  const opts = options?.length ? options : hostOptions;
  let out = '';
  if (domains.length) out += `search ${domains.join(' ')}\n`;
  for (const s of servers) out += `nameserver ${s}\n`;
  if (opts.length) out += `options ${opts.join(' ')}\n`;
  return out;
}

// ---------- devices ----------

const ALLOWED_DEVICES = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts/*
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // net/tun
];

const DEFAULT_DEVICES = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0 },
].map((d) => ({ ...d, fileMode: 0o666, uid: 0, gid: 0 }));

/** A --device as an OCI device: the host node's type and numbers (a path that is not a device node is refused). */
async function deviceOf(d: DeviceSpec): Promise<{ path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number }> {
  const st = await stat(d.pathOnHost).catch(missingAs(null));
  if (!st) throw new InvalidParameterError(`error gathering device information while adding custom device "${d.pathOnHost}": no such file or directory`);
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new InvalidParameterError(`error gathering device information while adding custom device "${d.pathOnHost}": not a device node`);
  const rdev = st.rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  return { path: d.pathInContainer || d.pathOnHost, type: st.isCharacterDevice() ? 'c' : 'b', major, minor, fileMode: st.mode & 0o777, uid: 0, gid: 0 };
}

/** "c 1:3 mr", "a *:* rwm" (docker's --device-cgroup-rule) as an OCI device cgroup rule. */
export function parseDeviceCgroupRule(rule: string): Record<string, unknown> {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule);
  if (!m) throw new InvalidParameterError(`invalid device cgroup format '${rule}'`);
  return {
    allow: true, type: m[1], access: m[4],
    ...(m[2] !== '*' ? { major: Number(m[2]) } : {}), ...(m[3] !== '*' ? { minor: Number(m[3]) } : {}),
  };
}

/** --group-add: numbers as they are, names looked up in the rootfs' /etc/group (docker's error when missing). */
async function groupIds(rootfs: string, names: string[]): Promise<number[]> {
  if (!names.length) return [];
  const groups = parseGroup(readLinesInRoot(rootfs, '/etc/group'));
  return names.map((n) => {
    if (isNum(n)) return Number(n);
    const g = groups.find((x) => x.name === n);
    if (!g) throw new InvalidParameterError(`Unable to find group ${n}: no matching entries in group file`);
    return g.gid;
  });
}

// ---------- the spec ----------

function withDefaultEnv(env: string[], hostname: string, terminal: boolean, home: string): string[] {
  const has = (k: string) => env.some((e) => e.startsWith(`${k}=`));
  const out: string[] = [];
  if (!has('PATH')) out.push(`PATH=${DEFAULT_PATH}`);
  if (!has('HOSTNAME')) out.push(`HOSTNAME=${hostname}`);
  if (terminal && !has('TERM')) out.push('TERM=xterm');
  out.push(...env);
  if (!has('HOME')) out.push(`HOME=${home}`);
  return out;
}

/** "sys_admin", "CAP_SYS_ADMIN", "ALL" → "CAP_SYS_ADMIN" / "ALL"; unknown names refused with dockerd's message. */
export function normalizeCapabilities(list: string[], field: 'CapAdd' | 'CapDrop'): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const u = raw.trim().toUpperCase();
    if (u === 'ALL') { out.push('ALL'); continue; }
    const c = u.startsWith('CAP_') ? u : `CAP_${u}`;
    if (!ALL_CAPS.includes(c)) throw new InvalidParameterError(`invalid ${field}: unknown capability: ${JSON.stringify(c)}`);
    out.push(c);
  }
  return out;
}

/**
 * The container's capability set, as dockerd's TweakCapabilities: privileged or `--cap-add ALL` give every
 * capability (less the named drops); `--cap-drop ALL` leaves only the adds; otherwise the default set minus
 * drops plus adds. Capabilities the daemon itself lacks are left out (runc would fail "unable to apply caps").
 */
export function capabilitiesOf(opts: { privileged?: boolean; capAdd?: string[]; capDrop?: string[] }): string[] {
  const held = (list: string[]) => list.filter((c) => inBoundingSet(ALL_CAPS.indexOf(c)));
  if (opts.privileged) return held(ALL_CAPS);
  const add = normalizeCapabilities(opts.capAdd ?? [], 'CapAdd');
  const drop = normalizeCapabilities(opts.capDrop ?? [], 'CapDrop');
  let set: string[];
  if (add.includes('ALL')) set = ALL_CAPS.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) set = add;
  else set = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return held([...new Set(set)]);
}

/**
 * Whether capability number `n` is in the daemon's bounding set: a container cannot be given more than the
 * daemon has (runc fails with "unable to apply caps" otherwise), which matters for --privileged in a sandbox.
 */
function inBoundingSet(n: number): boolean {
  if (n < 0) return false;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return true;
    return (BigInt(`0x${m[1]}`) >> BigInt(n)) & 1n ? true : false;
  } catch {
    return true;
  }
}

/** Every capability, in the kernel's numbering (index = capability number). */
export const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Writes hosts/hostname/resolv.conf into `containerDir` and returns their bind mounts. */
export async function writeEtcFiles(opts: SpecOptions, hostname: string): Promise<Mount[]> {
  await mkdir(opts.containerDir, { recursive: true });
  const hostNet = opts.network?.mode === 'host';
  const hostsPath = join(opts.containerDir, 'hosts');
  const resolvPath = join(opts.containerDir, 'resolv.conf');
  const hostnamePath = join(opts.containerDir, 'hostname');
  let hosts: string;
  if (hostNet) hosts = await readFile('/etc/hosts', 'utf8').catch((e) => { if (!isMissing(e)) throw e; return hostsContent(hostname, undefined); });
  else hosts = hostsContent(hostname, opts.network?.mode === 'none' ? undefined : opts.ip, opts.extraHosts, opts.domainname);
  if (hostNet && opts.extraHosts?.length) hosts += hostsContent('', undefined, opts.extraHosts).split('\n').slice(6).join('\n');
  const hostResolv = await readFile(opts.hostResolvConf ?? '/etc/resolv.conf', 'utf8').catch(missingAs(''));
  // host networking reaches the host's own resolvers (127.0.0.53 …): docker copies the file unfiltered
  const resolv = hostNet && !opts.dns?.length && !opts.dnsSearch?.length && !opts.dnsOptions?.length
    ? hostResolv : resolvConfContent(hostResolv, opts.dns, opts.dnsFallback, opts.dnsSearch, opts.dnsOptions);
  await Promise.all([
    writeFile(hostsPath, hosts),
    writeFile(resolvPath, resolv),
    writeFile(hostnamePath, `${hostname}\n`),
  ]);
  const bind = (source: string, destination: string): Mount => ({
    destination, type: 'bind', source, options: ['rbind', 'rprivate'],
  });
  return [bind(resolvPath, '/etc/resolv.conf'), bind(hostnamePath, '/etc/hostname'), bind(hostsPath, '/etc/hosts')];
}

/** Builds config.json for a container and writes its /etc files. The caller writes the JSON into the bundle. */
export async function buildSpec(opts: SpecOptions): Promise<OciSpec> {
  const hostname = opts.hostname || opts.id.slice(0, 12);
  const user = await resolveUser(opts.rootfs, opts.user);
  const terminal = !!opts.terminal;
  const capList = capabilitiesOf(opts);
  const shm = opts.shmSize && opts.shmSize > 0 ? opts.shmSize : 64 * 1024 * 1024;
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shm}`] },
  ];
  if (opts.shmDir === '') mounts.splice(mounts.findIndex((m) => m.destination === '/dev/shm'), 1);
  else if (opts.shmDir !== undefined) {
    if (opts.shmDir === join(opts.containerDir, 'shm')) await mkdir(opts.shmDir, { recursive: true, mode: 0o1777 }).then(() => chmod(opts.shmDir!, 0o1777));
    mounts[mounts.findIndex((m) => m.destination === '/dev/shm')] = { destination: '/dev/shm', type: 'bind', source: opts.shmDir, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] };
  }
  if (opts.network?.mode === 'host') {
    // a new sysfs cannot be mounted without a new netns: docker bind-mounts the host's /sys read-only.
    mounts[3] = { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
  }
  const userBinds = opts.binds ?? [];
  const etc = await writeEtcFiles(opts, hostname);
  // docker: a user bind over /etc/hosts etc. wins over the managed file.
  for (const m of etc) if (!userBinds.some((b) => b.destination === m.destination)) mounts.push(m);
  for (const b of userBinds) {
    // docker drops default mounts that a user mount shadows (e.g. -v x:/dev/shm).
    const i = mounts.findIndex((m) => m.destination === b.destination);
    if (i >= 0) mounts.splice(i, 1);
    mounts.push({
      destination: b.destination, type: 'bind', source: b.source,
      options: ['rbind', b.propagation ?? 'rprivate', ...(b.readonly ? ['ro'] : [])],
    });
  }
  for (const [dst, o] of Object.entries(opts.tmpfs ?? {})) {
    // docker's --tmpfs: noexec,nosuid,nodev unless the options say otherwise
    const given = o.split(',').filter(Boolean);
    const defaults = ['noexec', 'nosuid', 'nodev'].filter((d) => !given.some((g) => g === d || g === d.replace(/^no/, '')));
    const i = mounts.findIndex((m) => m.destination === dst);
    if (i >= 0) mounts.splice(i, 1);
    mounts.push({ destination: dst, type: 'tmpfs', source: 'tmpfs', options: [...defaults, ...given] });
  }

  let args = opts.args;
  if (opts.init) {
    const initPath = typeof opts.init === 'string' ? opts.init : '/usr/bin/docker-init';
    mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: initPath, options: ['bind', 'ro'] });
    args = ['/sbin/docker-init', '--', ...opts.args];
  }

  const shared = opts.hostNamespaces ?? [];
  const joined = opts.joinNamespaces ?? [];
  const namespaces: { type: string; path?: string }[] = [
    { type: 'mount' }, { type: 'pid' }, { type: 'ipc' }, { type: 'uts' },
  ].filter((n) => !shared.includes(n.type as 'pid' | 'uts' | 'ipc'))
    .map((n) => { const j = joined.find((x) => x.type === n.type); return j ? { type: n.type, path: j.path } : n; });
  const net = opts.network ?? { mode: 'none' };
  if (net.mode === 'none') namespaces.push({ type: 'network' });
  else if (net.mode === 'path') namespaces.push({ type: 'network', path: net.path });

  const devices = [...DEFAULT_DEVICES];
  const deviceRules: Record<string, unknown>[] = opts.privileged ? [{ allow: true, access: 'rwm' }] : [...ALLOWED_DEVICES];
  for (const d of opts.devices ?? []) {
    const dev = await deviceOf(d);
    const i = devices.findIndex((x) => x.path === dev.path);
    if (i >= 0) devices.splice(i, 1);
    devices.push(dev);
    if (!opts.privileged) deviceRules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: d.permissions || 'rwm' });
  }
  if (!opts.privileged) for (const r of opts.deviceCgroupRules ?? []) deviceRules.push(parseDeviceCgroupRule(r));
  const resources: Record<string, unknown> = { devices: deviceRules };
  const mem: Record<string, unknown> = {};
  if (opts.memory && opts.memory > 0) {
    mem.limit = opts.memory;
    if (opts.memorySwap !== undefined && opts.memorySwap !== 0) mem.swap = opts.memorySwap;
  }
  if (opts.memoryReservation && opts.memoryReservation > 0) mem.reservation = opts.memoryReservation;
  if (opts.oomKillDisable) mem.disableOOMKiller = true;
  if (opts.memorySwappiness !== undefined && opts.memorySwappiness >= 0) mem.swappiness = opts.memorySwappiness;
  if (Object.keys(mem).length) resources.memory = mem;
  const cpu: Record<string, unknown> = {};
  if (opts.cpus && opts.cpus > 0) Object.assign(cpu, { quota: Math.round(opts.cpus * 100000), period: 100000 });
  if (opts.cpuShares) cpu.shares = opts.cpuShares;
  if (opts.cpusetCpus) cpu.cpus = opts.cpusetCpus;
  if (opts.cpusetMems) cpu.mems = opts.cpusetMems;
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (opts.pidsLimit && opts.pidsLimit > 0) resources.pids = { limit: opts.pidsLimit };
  if (opts.blkioWeight) resources.blockIO = { weight: opts.blkioWeight };

  let seccomp: Record<string, unknown> | undefined;
  if (opts.privileged || opts.seccomp === 'unconfined') seccomp = undefined;
  else {
    const profile = opts.seccomp && typeof opts.seccomp === 'object' ? opts.seccomp : defaultProfile();
    seccomp = toOciSeccomp(profile, { caps: capList }) as unknown as Record<string, unknown>;
  }

  const linux: OciSpec['linux'] = {
    resources,
    cgroupsPath: `${opts.cgroupParent ?? '/wharf'}/${opts.id}`,
    namespaces,
    devices,
    ...(opts.privileged ? {} : { maskedPaths: opts.maskedPaths ?? MASKED_PATHS, readonlyPaths: opts.readonlyPaths ?? READONLY_PATHS }),
    ...(seccomp ? { seccomp } : {}),
    ...(opts.sysctl ? { sysctl: opts.sysctl } : {}),
  };

  const gids = [...user.additionalGids];
  for (const g of await groupIds(opts.rootfs, opts.groupAdd ?? [])) if (!gids.includes(g)) gids.push(g);
  const process: OciProcess = {
    terminal,
    user: { uid: user.uid, gid: user.gid, ...(gids.length ? { additionalGids: gids } : {}) },
    args,
    env: withDefaultEnv(opts.env ?? [], hostname, terminal, user.home),
    cwd: opts.cwd || '/',
    capabilities: { bounding: capList, effective: capList, inheritable: [], permitted: capList, ambient: [] },
    rlimits: clampRlimits(opts.rlimits),
    noNewPrivileges: !!opts.noNewPrivileges,
    oomScoreAdj: opts.oomScoreAdj ?? 0,
  };
  if (!opts.args.length) throw new InvalidParameterError('No command specified');

  return {
    ociVersion: '1.0.2-dev',
    process,
    root: { path: opts.rootfs, readonly: !!opts.readonlyRootfs },
    // sharing the host's UTS namespace: runc may not set a hostname there
    ...(shared.includes('uts') ? {} : { hostname, ...(opts.domainname ? { domainname: opts.domainname } : {}) }),
    mounts,
    linux,
  };
}

/** A process spec for exec (same user resolution, env defaults and caps as the container). */
export async function buildExecProcess(
  base: OciSpec, rootfs: string,
  p: { args: string[]; env?: string[]; cwd?: string; user?: string; terminal?: boolean; privileged?: boolean },
): Promise<OciProcess> {
  const user = p.user ? await resolveUser(rootfs, p.user) : null;
  const env = [...base.process.env];
  for (const e of p.env ?? []) {
    const k = e.split('=')[0];
    const i = env.findIndex((x) => x.split('=')[0] === k);
    if (i >= 0) env[i] = e; else env.push(e);
  }
  if (p.terminal && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  const capList = p.privileged ? capabilitiesOf({ privileged: true }) : base.process.capabilities?.bounding ?? DEFAULT_CAPABILITIES;
  return {
    ...base.process,
    terminal: !!p.terminal,
    args: p.args,
    env,
    cwd: p.cwd || base.process.cwd,
    user: user ? { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) } : base.process.user,
    capabilities: { bounding: capList, effective: capList, inheritable: [], permitted: capList, ambient: [] },
  };
}

/** Writes `<bundle>/config.json` (RLIM_INFINITY kept exact: JSON numbers would round it). */
export async function writeBundle(bundleDir: string, spec: OciSpec): Promise<string> {
  await mkdir(bundleDir, { recursive: true });
  const json = JSON.stringify(spec).replace(/18446744073709552000/g, '18446744073709551615');
  const path = join(bundleDir, 'config.json');
  await writeFile(path, json);
  return path;
}
