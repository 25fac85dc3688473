/**
 * The body of `POST /containers/create`: checked and normalized once, before anything is made, with dockerd's
 * status (400) and messages; and the HostConfig → runtime spec mapping `ContainerRunner.start` uses.
 *
 * Three layers, as dockerd has them:
 *  1. JSON shapes: done before this module, by the API's one decoder (`api/decode.ts`, Go's encoding/json rules
 *     against the schemas of `wire/schema.ts`): the body here is canonical and well-typed.
 *  2. Values: memory/cpu/cpuset/oom/shm limits, ports, binds, restart policy, capabilities, security options,
 *     sysctls, ulimits, tmpfs, devices — what dockerd's verifyContainerSettings refuses, plus what runc would
 *     only refuse at start (sysctls outside the container's namespaces, ulimit names, device rules).
 *  3. Security options no runtime here can honour are refused or reported, never dropped silently: AppArmor
 *     and SELinux labels are accepted as dockerd accepts them on a host without those LSMs (they cannot apply)
 *     with a warning in the create response; on a host that has them they are refused (wharfd loads no
 *     profiles). `userns` other than "host" is refused (wharfd does not remap users).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { ConflictError, InvalidParameterError } from '../../lib/errors.js';
import type { ContainerCreateRequest } from '../../wire/index.js';
import { normalizeCapabilities, parseDeviceCgroupRule, type DeviceSpec, type RlimitSpec, type SpecOptions } from '../runtime/index.js';
import { parseSeccompJson, type DockerSeccompProfile } from '../runtime/index.js';
import { isMissing } from '../../lib/fsutil.js';
import { checkLogConfig, type LogSettings } from '../runtime/index.js';

// ------------------------------------------------------------------------------------------ values

const MIN_MEMORY = 6 * 1024 * 1024;

/** "0-2,4" → [0,1,2,4]; null when malformed. */
export function parseCpuList(s: string): number[] | null {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const a = Number(m[1]), b = Number(m[2] ?? m[1]);
    if (b < a) return null;
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

function readFirst(paths: string[]): string | null {
  for (const p of paths) {
    try { return readFileSync(p, 'utf8').trim(); } catch (e) { if (!isMissing(e)) throw e; /* next */ }
  }
  return null;
}

function checkCpuset(value: string, kind: 'cpus' | 'mems'): void {
  const list = parseCpuList(value);
  if (!list) throw new InvalidParameterError(`Invalid value ${value} for cpuset ${kind}: invalid format: ${value}`);
  const avail = kind === 'cpus'
    ? readFirst(['/sys/fs/cgroup/cpuset/cpuset.effective_cpus', '/sys/fs/cgroup/cpuset/cpuset.cpus', '/sys/fs/cgroup/cpuset.cpus.effective', '/sys/devices/system/cpu/online'])
    : readFirst(['/sys/fs/cgroup/cpuset/cpuset.effective_mems', '/sys/fs/cgroup/cpuset/cpuset.mems', '/sys/fs/cgroup/cpuset.mems.effective', '/sys/devices/system/node/online']) ?? '0';
  const have = new Set(parseCpuList(avail ?? '') ?? []);
  if (avail !== null && list.some((c) => !have.has(c))) {
    throw new InvalidParameterError(kind === 'cpus'
      ? `Requested CPUs are not available - requested ${value}, available: ${avail}`
      : `Requested memory nodes are not available - requested ${value}, available: ${avail}`);
  }
}

/** "80", "8000-8010" as a port range; null when not a uint16 (range) or reversed. */
function portRange(s: string): [number, number] | null {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) return null;
  const a = Number(m[1]), b = Number(m[2] ?? m[1]);
  if (a > 65535 || b > 65535 || b < a) return null;
  return [a, b];
}

function checkPortBindings(pb: Record<string, unknown>): void {
  for (const [key, list] of Object.entries(pb)) {
    const slash = key.lastIndexOf('/');
    const port = slash < 0 ? key : key.slice(0, slash);
    const proto = slash < 0 ? 'tcp' : key.slice(slash + 1).toLowerCase();
    const r = /^\d+$/.test(port) ? portRange(port) : null;
    if (!r || r[0] === 0) throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(port)}`);
    if (proto !== 'tcp' && proto !== 'udp') throw new InvalidParameterError(`invalid proto ${JSON.stringify(proto)} in port ${JSON.stringify(key)}: wharfd publishes tcp and udp ports`);
    if (!Array.isArray(list)) continue;
    for (const b of list as unknown[]) {
      if (b === null) continue;
      const { HostIp, HostPort } = b as { HostIp?: string; HostPort?: string };
      const hp = (HostPort as string | undefined) ?? '';
      if (hp !== '' && !portRange(hp)) throw new InvalidParameterError(`invalid port specification: ${JSON.stringify(hp)}`);
      if (typeof HostIp === 'string' && HostIp !== '' && !isIp(HostIp)) throw new InvalidParameterError(`invalid IP address: ${HostIp}`);
    }
  }
}

function isIp(s: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}$/.test(s) ? s.split('.').every((x) => Number(x) <= 255) : /^[0-9a-fA-F:]+(%\w+)?$/.test(s) && s.includes(':');
}

/** A named volume's name, as the local driver accepts it (a directory under the data root: at most 255 bytes). */
export function checkVolumeName(name: string): void {
  if (Buffer.byteLength(name) > 255) throw new InvalidParameterError(`create ${name.slice(0, 64)}…: a volume name is at most 255 bytes long`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) {
    throw new InvalidParameterError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
}

export interface ParsedBind { source: string; destination: string; mode: string; rw: boolean; propagation?: string; volume: boolean }

const PROPAGATIONS = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];

/**
 * A HostConfig.Binds entry: "/host:/ctr[:opts]" (a bind) or "name:/ctr[:opts]" (a named volume), opts a comma
 * list of at most one each of rw|ro, z|Z, a propagation, nocopy (volumes only) — dockerd's messages.
 */
export function parseBind(spec: string): ParsedBind {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') throw new InvalidParameterError(`invalid volume specification: '${spec}'`);
  const [src, dst0, mode = ''] = parts as [string, string, string?];
  const volume = !src.startsWith('/');
  const kind = volume ? 'volume' : 'bind';
  if (!dst0.startsWith('/')) throw new InvalidParameterError(`invalid volume specification: '${spec}': invalid mount config for type "${kind}": invalid mount path: '${dst0}' mount path must be absolute`);
  const dst = dst0.length > 1 ? dst0.replace(/\/+$/, '') : dst0;
  if (dst === '/') throw new InvalidParameterError(`invalid volume specification: '${spec}': invalid mount config for type "${kind}": invalid specification: destination can't be '/'`);
  if (volume) checkVolumeName(src);
  const opts = mode === '' ? [] : mode.split(',');
  const seen = { rw: 0, label: 0, prop: 0, copy: 0 };
  let propagation: string | undefined;
  for (const o of opts) {
    if (o === 'rw' || o === 'ro') seen.rw++;
    else if (o === 'z' || o === 'Z') seen.label++;
    else if (PROPAGATIONS.includes(o)) { seen.prop++; propagation = o; } else if (o === 'nocopy') seen.copy++;
    else throw new InvalidParameterError(`invalid mode: ${mode}`);
  }
  if (seen.rw > 1 || seen.label > 1 || seen.prop > 1 || seen.copy > 1) throw new InvalidParameterError(`invalid mode: ${mode}`);
  if (!volume && seen.copy) throw new InvalidParameterError(`invalid volume specification: '${spec}': invalid mount config for type "bind": field VolumeOptions must not be specified`);
  return { source: src, destination: dst, mode, rw: !opts.includes('ro'), ...(propagation ? { propagation } : {}), volume };
}

// ------------------------------------------------------------------------------------------ security options

export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** undefined: docker's default profile. */
  seccomp?: 'unconfined' | DockerSeccompProfile;
  apparmor?: string;
  labels: string[];
}

const parseBool = (s: string): boolean | null => {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return null;
};

/** HostConfig.SecurityOpt, as dockerd's parseSecurityOpt ("key=value", the deprecated "key:value"). */
export function parseSecurityOpts(list: string[]): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, labels: [] };
  for (const opt of list) {
    if (opt === 'no-new-privileges') { out.noNewPrivileges = true; continue; }
    if (opt === 'disable') { out.labels.push('disable'); continue; }
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : null;
    if (!sep) throw new InvalidParameterError(`invalid --security-opt 1: ${JSON.stringify(opt)}`);
    const i = opt.indexOf(sep);
    const key = opt.slice(0, i), value = opt.slice(i + 1);
    switch (key) {
      case 'label': out.labels.push(value); break;
      case 'apparmor': out.apparmor = value; break;
      case 'seccomp':
        if (value === 'unconfined') out.seccomp = 'unconfined';
        else if (value === '' || value === 'builtin' || value === 'default') delete out.seccomp;
        else out.seccomp = parseSeccompJson(value);
        break;
      case 'no-new-privileges': {
        const b = parseBool(value);
        if (b === null) throw new InvalidParameterError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
        out.noNewPrivileges = b;
        break;
      }
      default: throw new InvalidParameterError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
    }
  }
  return out;
}

const appArmorEnabled = () => existsSync('/sys/module/apparmor') && readFirst(['/sys/module/apparmor/parameters/enabled']) === 'Y';
const selinuxEnabled = () => existsSync('/sys/fs/selinux/enforce');

// ------------------------------------------------------------------------------------------ sysctls, ulimits

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** Only sysctls of namespaces the container has of its own (runc's rule; dockerd passes its message on). */
function checkSysctl(key: string, networkMode: string, utsMode: string): void {
  if (IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.')) return;
  if (key === 'kernel.domainname' && utsMode !== 'host') return;
  if (key.startsWith('net.')) {
    if (networkMode === 'host') throw new InvalidParameterError(`sysctl ${JSON.stringify(key)} not allowed in host network namespace`);
    return;
  }
  if (key === 'kernel.domainname' && utsMode === 'host') throw new InvalidParameterError(`sysctl ${JSON.stringify(key)} not allowed in host UTS namespace`);
  if (key === 'kernel.hostname') throw new InvalidParameterError(`sysctl ${JSON.stringify(key)} is not allowed as it conflicts with the OCI "hostname" field`);
  throw new InvalidParameterError(`sysctl ${JSON.stringify(key)} is not in a separate kernel namespace`);
}

export const ULIMIT_NAMES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

function checkUlimits(list: unknown[]): RlimitSpec[] {
  const out: RlimitSpec[] = [];
  for (const u of list) {
    if (u === null) continue;
    const { Name, Soft, Hard } = u as { Name?: string; Soft?: number; Hard?: number };
    const name = String(Name ?? '');
    if (!ULIMIT_NAMES.includes(name)) throw new InvalidParameterError(`invalid ulimit type: ${name}`);
    const soft = Number(Soft ?? 0), hard = Number(Hard ?? 0);
    if (soft > hard) throw new InvalidParameterError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
    // -1 is unlimited (docker's CLI sends it for "unlimited")
    const v = (n: number) => (n < 0 ? 18446744073709551615 : n);
    out.push({ type: `RLIMIT_${name.toUpperCase()}`, soft: v(soft), hard: v(hard) });
  }
  return out;
}

// ------------------------------------------------------------------------------------------ the body

/**
 * Checks a create body (decoded by the API's decoder: canonical keys, Go's types); returns dockerd's warnings.
 * Throws InvalidParameterError (400) with dockerd's message for anything dockerd would refuse.
 */
export function validateCreateBody(body: ContainerCreateRequest): { warnings: string[] } {
  const warnings: string[] = [];
  const hc = (body.HostConfig ?? {}) as Record<string, unknown>;
  const num = (k: string) => (typeof hc[k] === 'number' ? hc[k] as number : 0);
  for (const m of (hc.Mounts ?? []) as ({ Type?: string; Source?: string } | null)[]) {
    if (m?.Type === 'volume' && m.Source) checkVolumeName(m.Source);
  }

  // memory (dockerd's verifyPlatformContainerResources)
  const memory = num('Memory'), swap = num('MemorySwap'), reservation = num('MemoryReservation');
  if (memory !== 0 && memory < MIN_MEMORY) throw new InvalidParameterError('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap > 0 && swap < memory) throw new InvalidParameterError('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (memory === 0 && swap > 0) throw new InvalidParameterError('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (reservation !== 0 && reservation < MIN_MEMORY) throw new InvalidParameterError('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) throw new InvalidParameterError('Minimum memory limit can not be less than memory reservation limit, see usage');
  if (hc.OomKillDisable === true && memory === 0) warnings.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
  const swappiness = hc.MemorySwappiness;
  if (typeof swappiness === 'number' && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw new InvalidParameterError(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  }
  if (num('KernelMemory') !== 0) throw new InvalidParameterError('kernel memory limits are not supported by wharfd (deprecated in docker)');
  // cpu
  const ncpu = cpus().length;
  const nano = num('NanoCpus');
  if (nano < 0 || nano > ncpu * 1e9) throw new InvalidParameterError(`Range of CPUs is from 0.01 to ${ncpu}.00, as there are only ${ncpu} CPUs available`);
  if (nano > 0 && (num('CpuPeriod') > 0 || num('CpuQuota') > 0)) throw new InvalidParameterError('Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set');
  if (num('CpuPeriod') !== 0 && (num('CpuPeriod') < 1000 || num('CpuPeriod') > 1000000)) throw new InvalidParameterError('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (num('CpuQuota') > 0 && num('CpuQuota') < 1000) throw new InvalidParameterError('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (num('CpuShares') < 0) throw new InvalidParameterError(`invalid CPU shares ${num('CpuShares')}: must not be negative`);
  if (num('CpuRealtimePeriod') !== 0 || num('CpuRealtimeRuntime') !== 0) throw new InvalidParameterError('CPU real-time period and runtime are not supported by wharfd');
  if (num('BlkioWeight') !== 0 && (num('BlkioWeight') < 10 || num('BlkioWeight') > 1000)) throw new InvalidParameterError('Range of blkio weight is from 10 to 1000');
  if (typeof hc.CpusetCpus === 'string' && hc.CpusetCpus !== '') checkCpuset(hc.CpusetCpus, 'cpus');
  if (typeof hc.CpusetMems === 'string' && hc.CpusetMems !== '') checkCpuset(hc.CpusetMems, 'mems');
  // process
  const oom = num('OomScoreAdj');
  if (oom < -1000 || oom > 1000) throw new InvalidParameterError(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);
  if (num('ShmSize') < 0) throw new InvalidParameterError('SHM size can not be less than 0');
  // restart policy
  if (hc.RestartPolicy !== undefined && hc.RestartPolicy !== null) {
    const rp = hc.RestartPolicy as { Name?: string; MaximumRetryCount?: number };
    const name = (rp.Name as string | undefined) ?? '';
    const count = (rp.MaximumRetryCount as number | undefined) ?? 0;
    if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw new InvalidParameterError(`invalid restart policy '${name}'`);
    if (name !== 'on-failure' && count !== 0) throw new InvalidParameterError(`maximum retry count cannot be used with restart policy '${name}'`);
    if (count < 0) throw new InvalidParameterError('maximum retry count cannot be negative');
    if (hc.AutoRemove === true && name !== '' && name !== 'no') throw new InvalidParameterError("can't create 'AutoRemove' container with restart policy");
  }
  if (hc.StorageOpt && Object.keys(hc.StorageOpt as object).length) {
    throw new InvalidParameterError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
  }
  // ports, binds, tmpfs
  if (hc.PortBindings) checkPortBindings(hc.PortBindings as Record<string, unknown>);
  for (const b of (hc.Binds ?? []) as string[]) parseBind(b);
  for (const dst of Object.keys((hc.Tmpfs ?? {}) as object)) {
    if (!dst.startsWith('/')) throw new InvalidParameterError(`invalid mount path: '${dst}' mount path must be absolute`);
  }
  // capabilities, security options, user namespace
  normalizeCapabilities((hc.CapAdd ?? []) as string[], 'CapAdd');
  normalizeCapabilities((hc.CapDrop ?? []) as string[], 'CapDrop');
  const so = parseSecurityOpts((hc.SecurityOpt ?? []) as string[]);
  if (so.apparmor !== undefined && so.apparmor !== 'unconfined') {
    if (appArmorEnabled()) throw new InvalidParameterError(`apparmor profile ${JSON.stringify(so.apparmor)}: wharfd does not load AppArmor profiles`);
    warnings.push(`AppArmor is not enabled on this host: the apparmor profile ${JSON.stringify(so.apparmor)} is not applied.`);
  }
  const labels = so.labels.filter((l) => l !== 'disable');
  if (labels.length) {
    if (selinuxEnabled()) throw new InvalidParameterError(`label ${JSON.stringify(labels[0])}: wharfd does not apply SELinux labels`);
    warnings.push(`SELinux is not enabled on this host: the label options ${labels.map((l) => JSON.stringify(l)).join(', ')} are not applied.`);
  }
  const userns = (hc.UsernsMode as string | undefined) ?? '';
  if (userns !== '' && userns !== 'host') throw new InvalidParameterError(`invalid UsernsMode ${JSON.stringify(userns)}: wharfd does not remap users, only "host" is supported`);
  // namespaces shared with the host or another container
  for (const [k, flag, ok] of [['PidMode', '--pid', ['', 'host']], ['UTSMode', '--uts', ['', 'host']], ['CgroupnsMode', '--cgroupns', ['', 'host']]] as const) {
    const v = (hc[k] as string | undefined) ?? '';
    if (k === 'PidMode' && /^container:./.test(v)) continue;
    if (!(ok as readonly string[]).includes(v)) throw new InvalidParameterError(`${k} ${JSON.stringify(v)} is not supported by wharfd (${flag} accepts ${ok.filter(Boolean).map((x) => JSON.stringify(x)).join(', ')})`);
  }
  const ipc = (hc.IpcMode as string | undefined) ?? '';
  if (!['', 'private', 'shareable', 'host', 'none'].includes(ipc) && !/^container:./.test(ipc)) throw new InvalidParameterError(`Invalid IPC mode: ${ipc}`);
  checkRuntime((hc.Runtime as string | undefined) ?? '');
  if (hc.UTSMode === 'host' && typeof body.Hostname === 'string' && body.Hostname !== '') throw new InvalidParameterError('Conflicting options: hostname and the UTS mode');
  const parent = (hc.CgroupParent as string | undefined) ?? '';
  if (parent.split('/').includes('..')) throw new InvalidParameterError(`invalid CgroupParent ${JSON.stringify(parent)}`);
  // sysctls, ulimits, devices
  const netMode = (hc.NetworkMode as string | undefined) ?? '';
  for (const k of Object.keys((hc.Sysctls ?? {}) as object)) checkSysctl(k, netMode, (hc.UTSMode as string | undefined) ?? '');
  if (hc.Ulimits) checkUlimits(hc.Ulimits as unknown[]);
  for (const r of (hc.DeviceCgroupRules ?? []) as string[]) parseDeviceCgroupRule(r);
  if (hc.Devices) checkDevices(hc.Devices as unknown[]);
  if (Array.isArray(hc.MaskedPaths) || Array.isArray(hc.ReadonlyPaths)) {
    for (const p of [...((hc.MaskedPaths ?? []) as string[]), ...((hc.ReadonlyPaths ?? []) as string[])]) {
      if (!p.startsWith('/')) throw new InvalidParameterError(`invalid path ${JSON.stringify(p)}: masked and read-only paths must be absolute`);
    }
  }
  return { warnings };
}

function checkDevices(list: unknown[]): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  for (const d of list) {
    if (d === null) continue;
    const { PathOnHost, PathInContainer, CgroupPermissions } = d as { PathOnHost?: string; PathInContainer?: string; CgroupPermissions?: string };
    const host = (PathOnHost as string | undefined) ?? '';
    const perms = (CgroupPermissions as string | undefined) ?? 'rwm';
    if (!/^[rwm]{0,3}$/.test(perms) || new Set(perms).size !== perms.length) throw new InvalidParameterError(`bad mode specified: ${perms}`);
    let st;
    try { st = statSync(host); } catch {
      throw new InvalidParameterError(`error gathering device information while adding custom device "${host}": no such file or directory`);
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new InvalidParameterError(`error gathering device information while adding custom device "${host}": not a device node`);
    const inCtr = (PathInContainer as string | undefined) || host;
    if (!inCtr.startsWith('/')) throw new InvalidParameterError(`${inCtr} is not an absolute path`);
    out.push({ pathOnHost: host, pathInContainer: inCtr, permissions: perms || 'rwm' });
  }
  return out;
}

/** HostConfig.Runtime: runc, or crun when installed (dockerd's `Unknown runtime specified X` otherwise). */
function checkRuntime(name: string): void {
  if (name === '' || name === 'runc') return;
  if (name === 'crun' && ['/usr/bin/crun', '/usr/sbin/crun', '/usr/local/bin/crun'].some((p) => existsSync(p))) return;
  throw new InvalidParameterError(`Unknown runtime specified ${name}`);
}

// ------------------------------------------------------------------------------------------ namespaces of other containers

/** What joining another container's namespaces needs to know about it. */
export interface NamespaceDonor { id: string; running: boolean; pid: number; ipcMode: string; dir: string }

/**
 * `--pid container:X` / `--ipc container:X|host|shareable` as runtime options, at start (the donor must run then,
 * and lend its IPC only when `shareable`, with dockerd's words otherwise). `/dev/shm` goes with the IPC
 * namespace: a shareable container's is a directory of its own (`<containerDir>/shm`) that joiners bind too.
 */
export function namespaceOptionsOf(hc: Record<string, unknown>, containerDir: string, donor: (ref: string) => NamespaceDonor): Partial<SpecOptions> {
  const o: Partial<SpecOptions> = {};
  const join: NonNullable<SpecOptions['joinNamespaces']> = [];
  const pid = String(hc.PidMode ?? '');
  if (pid.startsWith('container:')) {
    const d = donor(pid.slice('container:'.length));
    if (!d.running || d.pid <= 0) throw new ConflictError(`container ${d.id} is not running`);
    join.push({ type: 'pid', path: `/proc/${d.pid}/ns/pid` });
  }
  const ipc = String(hc.IpcMode ?? '');
  if (ipc === 'shareable') o.shmDir = `${containerDir}/shm`;
  else if (ipc.startsWith('container:')) {
    const d = donor(ipc.slice('container:'.length));
    if (!d.running || d.pid <= 0) throw new ConflictError(`can't join IPC of container ${d.id}: container ${d.id} is not running`);
    if (d.ipcMode !== 'shareable') throw new ConflictError(`can't join IPC of container ${d.id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
    join.push({ type: 'ipc', path: `/proc/${d.pid}/ns/ipc` });
    o.shmDir = `${d.dir}/shm`;
  }
  if (join.length) o.joinNamespaces = join;
  return o;
}

// ------------------------------------------------------------------------------------------ log drivers

/** The daemon's default log driver and options (daemon.json `log-driver`, `log-opts`). */
export interface LogDefaults { driver: string; opts: Record<string, string> }

/**
 * A create body's LogConfig as dockerd records it: an empty Type takes the daemon's driver, and a container
 * using the daemon's driver takes the daemon's options it does not set itself; then checked (unknown driver,
 * unknown option, bad size or count → 400 with dockerd's words).
 */
export function resolveLogConfig(lc: unknown, defaults: LogDefaults = { driver: 'json-file', opts: {} }): { Type: string; Config: Record<string, string> } {
  const given = (lc && typeof lc === 'object' ? lc : {}) as { Type?: string; Config?: Record<string, string> | null };
  const type = given.Type || defaults.driver;
  const config = { ...(given.Config ?? {}) };
  if (type === defaults.driver) for (const [k, v] of Object.entries(defaults.opts)) if (!(k in config)) config[k] = v;
  checkLogConfig(type, config);
  return { Type: type, Config: config };
}

/** What the runtime's create needs from a recorded HostConfig: the log driver and the OCI runtime. */
export function createOptionsOf(hc: Record<string, unknown>): { log: LogSettings; runtime?: string } {
  const runtime = typeof hc.Runtime === 'string' && hc.Runtime !== '' ? hc.Runtime : undefined;
  return { log: logSettingsOf(hc), ...(runtime ? { runtime } : {}) };
}

/** The log settings of a recorded HostConfig (records from before log drivers: json-file, no rotation). */
export function logSettingsOf(hc: Record<string, unknown>): LogSettings {
  const lc = (hc.LogConfig && typeof hc.LogConfig === 'object' ? hc.LogConfig : {}) as { Type?: string; Config?: Record<string, string> | null };
  try { return checkLogConfig(lc.Type || 'json-file', lc.Config ?? {}); } catch { return { driver: 'json-file', maxSize: null, maxFile: 1, compress: false }; }
}

// ------------------------------------------------------------------------------------------ to the runtime

/** The runtime spec options a recorded HostConfig asks for (the body was validated at create). */
export function specOptionsOf(hc: Record<string, unknown>): Partial<SpecOptions> {
  const n = (k: string) => (typeof hc[k] === 'number' ? hc[k] as number : 0);
  const strs = (k: string) => (Array.isArray(hc[k]) ? hc[k] as string[] : typeof hc[k] === 'string' ? [hc[k] as string] : []);
  const so = parseSecurityOpts(strs('SecurityOpt'));
  const o: Partial<SpecOptions> = {};
  if (hc.Privileged === true) o.privileged = true;
  if (hc.ReadonlyRootfs === true) o.readonlyRootfs = true;
  if (strs('CapAdd').length) o.capAdd = strs('CapAdd');
  if (strs('CapDrop').length) o.capDrop = strs('CapDrop');
  if (n('Memory') > 0) o.memory = n('Memory');
  if (n('MemorySwap') !== 0) o.memorySwap = n('MemorySwap');
  if (n('MemoryReservation') > 0) o.memoryReservation = n('MemoryReservation');
  if (hc.OomKillDisable === true) o.oomKillDisable = true;
  if (n('NanoCpus') > 0) o.cpus = n('NanoCpus') / 1e9;
  else if (n('CpuQuota') > 0) o.cpus = n('CpuQuota') / (n('CpuPeriod') || 100000);
  if (n('CpuShares') > 0) o.cpuShares = Math.max(2, n('CpuShares'));
  if (typeof hc.CpusetCpus === 'string' && hc.CpusetCpus) o.cpusetCpus = hc.CpusetCpus;
  if (typeof hc.CpusetMems === 'string' && hc.CpusetMems) o.cpusetMems = hc.CpusetMems;
  if (n('PidsLimit') > 0) o.pidsLimit = n('PidsLimit');
  if (n('ShmSize') > 0) o.shmSize = n('ShmSize');
  if (n('OomScoreAdj') !== 0) o.oomScoreAdj = n('OomScoreAdj');
  if (hc.Init === true) o.init = true;
  if (strs('GroupAdd').length) o.groupAdd = strs('GroupAdd');
  if (hc.Tmpfs && typeof hc.Tmpfs === 'object') o.tmpfs = { ...(hc.Tmpfs as Record<string, string>) };
  // --mount type=tmpfs: TmpfsOptions.SizeBytes and Mode (a file mode number), ReadOnly
  for (const m of (Array.isArray(hc.Mounts) ? hc.Mounts : []) as { Type?: string; Target?: string; ReadOnly?: boolean; TmpfsOptions?: { SizeBytes?: number; Mode?: number } }[]) {
    if (m.Type !== 'tmpfs' || !m.Target) continue;
    const opts: string[] = [];
    if (m.TmpfsOptions?.SizeBytes) opts.push(`size=${m.TmpfsOptions.SizeBytes}`);
    if (m.TmpfsOptions?.Mode) opts.push(`mode=${(m.TmpfsOptions.Mode & 0o7777).toString(8)}`);
    if (m.ReadOnly) opts.push('ro');
    (o.tmpfs ??= {})[m.Target] = opts.join(',');
  }
  if (Array.isArray(hc.Devices) && hc.Devices.length) o.devices = checkDevices(hc.Devices);
  if (strs('DeviceCgroupRules').length) o.deviceCgroupRules = strs('DeviceCgroupRules');
  if (hc.Sysctls && typeof hc.Sysctls === 'object' && Object.keys(hc.Sysctls).length) o.sysctl = hc.Sysctls as Record<string, string>;
  if (Array.isArray(hc.Ulimits) && hc.Ulimits.length) o.rlimits = checkUlimits(hc.Ulimits);
  const modeKey = { pid: 'PidMode', uts: 'UTSMode', ipc: 'IpcMode' } as const;
  const shared = (['pid', 'uts', 'ipc'] as const).filter((n) => hc[modeKey[n]] === 'host');
  if (shared.length) o.hostNamespaces = [...shared];
  if (hc.IpcMode === 'host') o.shmDir = '/dev/shm';
  if (hc.IpcMode === 'none') o.shmDir = '';
  if (typeof hc.MemorySwappiness === 'number' && hc.MemorySwappiness >= 0) o.memorySwappiness = hc.MemorySwappiness;
  if (n('BlkioWeight') > 0) o.blkioWeight = n('BlkioWeight');
  if (typeof hc.CgroupParent === 'string' && hc.CgroupParent !== '') o.cgroupParent = hc.CgroupParent.startsWith('/') ? hc.CgroupParent : `/${hc.CgroupParent}`;
  if (Array.isArray(hc.MaskedPaths)) o.maskedPaths = hc.MaskedPaths as string[];
  if (Array.isArray(hc.ReadonlyPaths)) o.readonlyPaths = hc.ReadonlyPaths as string[];
  if (so.noNewPrivileges) o.noNewPrivileges = true;
  if (so.seccomp) o.seccomp = so.seccomp;
  return o;
}
