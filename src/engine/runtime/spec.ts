/**
 * OCI runtime spec (config.json) for a container, shaped like the one dockerd 20.10 hands containerd/runc:
 * docker's default mounts, capabilities, masked/readonly paths, device cgroup allow-list, and the
 * /etc/hosts, /etc/hostname, /etc/resolv.conf files kept in a per-container directory and bind-mounted in.
 *
 * Seccomp: docker's default profile is a ~350-entry allow-list. We ship a short *deny-list* instead
 * (default action ALLOW, EPERM for syscalls docker's profile refuses to unprivileged containers and that the
 * capability set does not already block: kernel keyring, bpf, perf_event_open, userfaultfd, kexec, module
 * loading, accounting, swap, obsolete/dangerous syscalls). It keeps the attack surface close to docker's for
 * the notable calls while staying small and reviewable; `seccomp: 'unconfined'` turns it off, and a caller may
 * pass a full profile object (e.g. docker's JSON) instead.
 *
 * rlimits: runc fails at start when asked to raise a hard limit above the caller's (no CAP_SYS_RESOURCE here),
 * so every rlimit is clamped to the daemon's own hard limits read from /proc/self/limits.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidParameterError } from '../../lib/errors.js';
import { readFileInRoot } from '../fsroot/inroot.js';

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

/** Syscalls our default seccomp profile refuses with EPERM (see the header comment). */
export const SECCOMP_DENY = [
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
  'finit_module', 'get_kernel_syms', 'get_mempolicy', 'init_module', 'ioperm', 'iopl', 'kcmp',
  'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'move_pages', 'name_to_handle_at',
  'nfsservctl', 'open_by_handle_at', 'perf_event_open', 'pivot_root', 'process_vm_readv', 'process_vm_writev',
  'query_module', 'quotactl', 'request_key', 'set_mempolicy', 'setns', 'settimeofday', 'stime', 'swapoff',
  'swapon', 'sysfs', '_sysctl', 'umount', 'umount2', 'unshare', 'uselib', 'userfaultfd', 'ustat', 'vm86',
  'vm86old', 'mount', 'syslog',
];

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
  /** Host resolv.conf path (tests). */
  hostResolvConf?: string;
  binds?: BindMount[];
  /** Bytes, 0 = unlimited. */
  memory?: number;
  memorySwap?: number;
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
  /** 'default' (our deny-list), 'unconfined', or a full OCI seccomp object. */
  seccomp?: 'default' | 'unconfined' | Record<string, unknown>;
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
export function resolvConfContent(host: string, dns?: string[], fallback: string[] = ['8.8.8.8', '8.8.4.4']): string {
  const lines = host.split('\n');
  const kept: string[] = [];
  let ns = 0;
  for (const l of lines) {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    if (m) {
      if (dns?.length) continue;
      const a = m[1]!;
      if (a.startsWith('127.') || a === '::1' || a.startsWith('fe80:')) continue;
      ns++;
    }
    kept.push(l);
  }
  while (kept.length && kept[kept.length - 1] === '') kept.pop();
  const servers = dns?.length ? dns : ns === 0 ? fallback : [];
  for (const s of servers) kept.push(`nameserver ${s}`);
  return kept.join('\n') + '\n';
}

// ---------- seccomp ----------

export function defaultSeccomp(): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: SECCOMP_DENY, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
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

function caps(opts: SpecOptions): string[] {
  const norm = (c: string) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
  if (opts.privileged) return ALL_CAPS.filter((_c, i) => inBoundingSet(i));
  let set = [...DEFAULT_CAPABILITIES];
  const drop = (opts.capDrop ?? []).map(norm);
  if (drop.includes('CAP_ALL')) set = [];
  else set = set.filter((c) => !drop.includes(c));
  for (const c of (opts.capAdd ?? []).map(norm)) {
    if (c === 'CAP_ALL') return ALL_CAPS.filter((_x, i) => inBoundingSet(i));
    if (!set.includes(c)) set.push(c);
  }
  return set;
}

/**
 * Whether capability number `n` is in the daemon's bounding set: a container cannot be given more than the
 * daemon has (runc fails with "unable to apply caps" otherwise), which matters for --privileged in a sandbox.
 */
function inBoundingSet(n: number): boolean {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return true;
    return (BigInt(`0x${m[1]}`) >> BigInt(n)) & 1n ? true : false;
  } catch {
    return true;
  }
}

/** Every capability, in the kernel's numbering (index = capability number). */
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
];

/** Writes hosts/hostname/resolv.conf into `containerDir` and returns their bind mounts. */
export async function writeEtcFiles(opts: SpecOptions, hostname: string): Promise<Mount[]> {
  await mkdir(opts.containerDir, { recursive: true });
  const hostNet = opts.network?.mode === 'host';
  const hostsPath = join(opts.containerDir, 'hosts');
  const resolvPath = join(opts.containerDir, 'resolv.conf');
  const hostnamePath = join(opts.containerDir, 'hostname');
  let hosts: string;
  if (hostNet) hosts = await readFile('/etc/hosts', 'utf8').catch(() => hostsContent(hostname, undefined));
  else hosts = hostsContent(hostname, opts.network?.mode === 'none' ? undefined : opts.ip, opts.extraHosts, opts.domainname);
  if (hostNet && opts.extraHosts?.length) hosts += hostsContent('', undefined, opts.extraHosts).split('\n').slice(6).join('\n');
  const hostResolv = await readFile(opts.hostResolvConf ?? '/etc/resolv.conf', 'utf8').catch(() => '');
  // host networking reaches the host's own resolvers (127.0.0.53 …): docker copies the file unfiltered
  const resolv = hostNet && !opts.dns?.length ? hostResolv : resolvConfContent(hostResolv, opts.dns, opts.dnsFallback);
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
  const capList = caps(opts);
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

  let args = opts.args;
  if (opts.init) {
    const initPath = typeof opts.init === 'string' ? opts.init : '/usr/bin/docker-init';
    mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: initPath, options: ['bind', 'ro'] });
    args = ['/sbin/docker-init', '--', ...opts.args];
  }

  const namespaces: { type: string; path?: string }[] = [
    { type: 'mount' }, { type: 'pid' }, { type: 'ipc' }, { type: 'uts' },
  ];
  const net = opts.network ?? { mode: 'none' };
  if (net.mode === 'none') namespaces.push({ type: 'network' });
  else if (net.mode === 'path') namespaces.push({ type: 'network', path: net.path });

  const resources: Record<string, unknown> = { devices: opts.privileged ? [{ allow: true, access: 'rwm' }] : ALLOWED_DEVICES };
  if (opts.memory && opts.memory > 0) {
    const mem: Record<string, number> = { limit: opts.memory };
    if (opts.memorySwap !== undefined && opts.memorySwap !== 0) mem.swap = opts.memorySwap;
    resources.memory = mem;
  }
  if (opts.cpus && opts.cpus > 0) resources.cpu = { quota: Math.round(opts.cpus * 100000), period: 100000 };
  if (opts.cpuShares) resources.cpu = { ...(resources.cpu as object), shares: opts.cpuShares };
  if (opts.pidsLimit && opts.pidsLimit > 0) resources.pids = { limit: opts.pidsLimit };

  let seccomp: Record<string, unknown> | undefined;
  if (opts.privileged || opts.seccomp === 'unconfined') seccomp = undefined;
  else if (opts.seccomp && typeof opts.seccomp === 'object') seccomp = opts.seccomp;
  else seccomp = defaultSeccomp();

  const linux: OciSpec['linux'] = {
    resources,
    cgroupsPath: `${opts.cgroupParent ?? '/wharf'}/${opts.id}`,
    namespaces,
    devices: DEFAULT_DEVICES,
    ...(opts.privileged ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
    ...(seccomp ? { seccomp } : {}),
    ...(opts.sysctl ? { sysctl: opts.sysctl } : {}),
  };

  const process: OciProcess = {
    terminal,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) },
    args,
    env: withDefaultEnv(opts.env ?? [], hostname, terminal, user.home),
    cwd: opts.cwd || '/',
    capabilities: { bounding: capList, effective: capList, inheritable: capList, permitted: capList, ambient: [] },
    rlimits: clampRlimits(opts.rlimits),
    noNewPrivileges: false,
    oomScoreAdj: opts.oomScoreAdj ?? 0,
  };
  if (!opts.args.length) throw new InvalidParameterError('No command specified');

  return {
    ociVersion: '1.0.2-dev',
    process,
    root: { path: opts.rootfs, readonly: !!opts.readonlyRootfs },
    hostname,
    ...(opts.domainname ? { domainname: opts.domainname } : {}),
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
  const capList = p.privileged ? ALL_CAPS : base.process.capabilities?.bounding ?? DEFAULT_CAPABILITIES;
  return {
    ...base.process,
    terminal: !!p.terminal,
    args: p.args,
    env,
    cwd: p.cwd || base.process.cwd,
    user: user ? { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) } : base.process.user,
    capabilities: { bounding: capList, effective: capList, inheritable: capList, permitted: capList, ambient: [] },
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
