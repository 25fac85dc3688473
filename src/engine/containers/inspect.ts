/**
 * The answers of `GET /containers/{id}/json` and `GET /containers/json` built from a container record, in dockerd
 * 20.10's full shapes: every key it sends, in its order, with its defaults for what the create body left out
 * (a body with only Image and Cmd, as docker-py sends, still inspects with all 65 HostConfig keys,
 * `LogConfig {Type: json-file, Config: {}}`, `RestartPolicy {Name: "", MaximumRetryCount: 0}`…). Keys Go marks
 * `omitempty` appear only when set. The record keeps what the client asked for; the defaults live here.
 */
import { join } from 'node:path';
import type {
  ContainerConfig, ContainerInspect, ContainerState, ContainerSummary, EndpointSettings, HostConfig, MountPoint as WireMountPoint,
  NetworkSettings,
} from '../../wire/index.js';
import { MASKED_PATHS, READONLY_PATHS } from '../runtime/index.js';
import type { ContainerRecord, MountPoint } from './service.js';

/** dockerd's default /dev/shm size (64 MiB), which the runtime spec applies too. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
/** The log driver dockerd reports when the body named none (its daemon default). */
export const DEFAULT_LOG_DRIVER = 'json-file';

/** What a view needs besides the record. */
export interface ViewContext {
  /** The container's directory (resolv.conf, hosts, hostname, log). */
  dir: string;
  /** The OCI runtime the daemon uses when HostConfig.Runtime is empty. */
  runtime: string;
  /** The storage driver's name as dockerd reports it (overlay2). */
  graphDriver: string;
  /** The RW layer's `GraphDriver.Data` (null: the driver has none, or the layer is gone). */
  graphDriverData?: Record<string, string> | null;
  /** Running exec IDs (null when none). */
  execIDs?: string[] | null;
  sizes?: { SizeRw: number; SizeRootFs: number };
  /** NetworkSettings.Networks from the network service (absent: the default bridge's endpoint from the record). */
  networks?: Record<string, EndpointSettings>;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Go's omitempty: absent for the zero value, null, and empty slices and maps. */
function empty(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

/** Copies `keys` in order: the given value, or the default; keys marked omitempty only when not empty. */
function ordered<T>(src: Record<string, unknown>, defaults: [string, unknown, 'omitempty'?][]): T {
  const out: Record<string, unknown> = {};
  for (const [k, def, omit] of defaults) {
    const v = src[k] !== undefined ? src[k] : def;
    if (omit && empty(v)) continue;
    out[k] = v;
  }
  return out as T;
}

/** HostConfig with dockerd's defaults for what the body did not set. */
export function hostConfigView(hc0: Record<string, unknown>, runtime: string): HostConfig {
  const hc = hc0 as Partial<HostConfig>;
  const privileged = hc.Privileged === true;
  return ordered<HostConfig>({
    ...hc0,
    LogConfig: { Type: hc.LogConfig?.Type || DEFAULT_LOG_DRIVER, Config: hc.LogConfig?.Config ?? {} },
    RestartPolicy: { Name: hc.RestartPolicy?.Name ?? '', MaximumRetryCount: hc.RestartPolicy?.MaximumRetryCount ?? 0 },
    NetworkMode: hc.NetworkMode || 'default',
    CgroupnsMode: hc.CgroupnsMode || 'host',
    IpcMode: hc.IpcMode || 'private',
    ShmSize: hc.ShmSize || DEFAULT_SHM_SIZE,
    Runtime: hc.Runtime || runtime,
    ConsoleSize: hc.ConsoleSize ?? [0, 0],
    MaskedPaths: hc.MaskedPaths ?? (privileged ? null : [...MASKED_PATHS]),
    ReadonlyPaths: hc.ReadonlyPaths ?? (privileged ? null : [...READONLY_PATHS]),
  }, [
    ['Binds', null], ['ContainerIDFile', ''], ['LogConfig', null], ['NetworkMode', null], ['PortBindings', null],
    ['RestartPolicy', null], ['AutoRemove', false], ['VolumeDriver', ''], ['VolumesFrom', null], ['CapAdd', null],
    ['CapDrop', null], ['CgroupnsMode', null], ['Dns', null], ['DnsOptions', null], ['DnsSearch', null],
    ['ExtraHosts', null], ['GroupAdd', null], ['IpcMode', null], ['Cgroup', ''], ['Links', null], ['OomScoreAdj', 0],
    ['PidMode', ''], ['Privileged', false], ['PublishAllPorts', false], ['ReadonlyRootfs', false], ['SecurityOpt', null],
    ['StorageOpt', null, 'omitempty'], ['Tmpfs', null, 'omitempty'], ['UTSMode', ''], ['UsernsMode', ''],
    ['ShmSize', null], ['Sysctls', null, 'omitempty'], ['Runtime', null], ['ConsoleSize', null], ['Isolation', ''],
    ['CpuShares', 0], ['Memory', 0], ['NanoCpus', 0], ['CgroupParent', ''], ['BlkioWeight', 0],
    ['BlkioWeightDevice', null], ['BlkioDeviceReadBps', null], ['BlkioDeviceWriteBps', null],
    ['BlkioDeviceReadIOps', null], ['BlkioDeviceWriteIOps', null], ['CpuPeriod', 0], ['CpuQuota', 0],
    ['CpuRealtimePeriod', 0], ['CpuRealtimeRuntime', 0], ['CpusetCpus', ''], ['CpusetMems', ''], ['Devices', null],
    ['DeviceCgroupRules', null], ['DeviceRequests', null], ['KernelMemory', 0], ['KernelMemoryTCP', 0],
    ['MemoryReservation', 0], ['MemorySwap', 0], ['MemorySwappiness', null], ['OomKillDisable', false],
    ['PidsLimit', null], ['Ulimits', null], ['CpuCount', 0], ['CpuPercent', 0], ['IOMaximumIOps', 0],
    ['IOMaximumBandwidth', 0], ['Mounts', null, 'omitempty'], ['MaskedPaths', null], ['ReadonlyPaths', null],
    ['Init', null, 'omitempty'],
  ]);
}

/** container.Config in dockerd's key order, omitempty keys only when set. */
export function configView(cfg: Record<string, unknown>): ContainerConfig {
  return ordered<ContainerConfig>(cfg, [
    ['Hostname', ''], ['Domainname', ''], ['User', ''], ['AttachStdin', false], ['AttachStdout', false],
    ['AttachStderr', false], ['ExposedPorts', null, 'omitempty'], ['Tty', false], ['OpenStdin', false],
    ['StdinOnce', false], ['Env', null], ['Cmd', null], ['Healthcheck', null, 'omitempty'],
    ['ArgsEscaped', false, 'omitempty'], ['Image', ''], ['Volumes', null], ['WorkingDir', ''], ['Entrypoint', null],
    ['NetworkDisabled', false, 'omitempty'], ['MacAddress', '', 'omitempty'], ['OnBuild', null], ['Labels', {}],
    ['StopSignal', '', 'omitempty'], ['StopTimeout', null, 'omitempty'], ['Shell', null, 'omitempty'],
  ]);
}

/** Whether the config has a healthcheck that runs (not absent, not ["NONE"]). */
function hasHealthcheck(cfg: ContainerConfig): boolean {
  const t = cfg.Healthcheck?.Test;
  return Array.isArray(t) && t.length > 0 && t[0] !== 'NONE';
}

/**
 * State; `Health` only for a container with a healthcheck that has been started (dockerd starts its monitor then):
 * "starting" until a probe reports, and "unhealthy" once the container has stopped, as dockerd's SetStopped.
 */
export function stateView(r: ContainerRecord): ContainerState {
  const s = r.State;
  const out: ContainerState = {
    Status: s.Status, Running: s.Running, Paused: s.Paused, Restarting: s.Restarting, OOMKilled: s.OOMKilled,
    Dead: s.Dead, Pid: s.Pid, ExitCode: s.ExitCode, Error: s.Error, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
  };
  if (hasHealthcheck(r.Config as ContainerConfig) && (s.Health || s.StartedAt !== ZERO_TIME)) {
    const h = s.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    out.Health = s.Running ? h : { ...h, Status: 'unhealthy' };
  }
  return out;
}

/** docker's MountPoint view (inspect's Mounts, list's Mounts). */
export function mountsView(r: ContainerRecord): WireMountPoint[] {
  const mps = r.MountPoints ?? ((Array.isArray(r.HostConfig.Binds) ? r.HostConfig.Binds : []) as string[]).map((b): MountPoint => {
    const [src, dst, mode = ''] = b.split(':') as [string, string, string | undefined];
    return { Type: 'bind', Source: src, Destination: dst, Mode: mode, RW: !mode.split(',').includes('ro'), Propagation: 'rprivate' };
  });
  return mps.map((m): WireMountPoint => (m.Type === 'volume'
    ? { Type: 'volume', Name: m.Name ?? '', Source: m.Source, Destination: m.Destination, Driver: 'local', Mode: m.Mode === '' ? 'z' : m.Mode, RW: m.RW, Propagation: '' }
    : { Type: 'bind', Source: m.Source, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation ?? 'rprivate' }));
}

/** The network a container's NetworkMode names ("default" is the bridge). */
function networkName(r: ContainerRecord): string {
  const mode = String(r.HostConfig.NetworkMode || 'default');
  return mode === 'default' ? 'bridge' : mode;
}

/** NetworkSettings.Networks: one endpoint, dockerd's keys; empty addresses until the container runs. */
export function networksView(r: ContainerRecord): Record<string, EndpointSettings> {
  const n = r.Net;
  return {
    [networkName(r)]: {
      IPAMConfig: null, Links: null, Aliases: null, NetworkID: '', EndpointID: '', Gateway: n?.Gateway ?? '',
      IPAddress: n?.IPAddress ?? '', IPPrefixLen: n?.IPPrefixLen ?? 0, IPv6Gateway: '', GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0, MacAddress: n?.MacAddress ?? '', DriverOpts: null,
    },
  };
}

export function networkSettingsView(r: ContainerRecord, networks?: Record<string, EndpointSettings>): NetworkSettings {
  const n = r.Net;
  return {
    Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
    Ports: n?.Ports ?? {}, SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '',
    Gateway: n?.Gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: n?.IPAddress ?? '',
    IPPrefixLen: n?.IPPrefixLen ?? 0, IPv6Gateway: '', MacAddress: n?.MacAddress ?? '',
    Networks: networks ?? networksView(r),
  };
}

/** GET /containers/{id}/json. */
export function inspectView(r: ContainerRecord, c: ViewContext): ContainerInspect {
  return {
    Id: r.ID,
    Created: r.Created,
    Path: r.Path,
    Args: r.Args,
    State: stateView(r),
    Image: r.Image,
    ResolvConfPath: join(c.dir, 'resolv.conf'),
    HostnamePath: join(c.dir, 'hostname'),
    HostsPath: join(c.dir, 'hosts'),
    LogPath: join(c.dir, `${r.ID}-json.log`),
    Name: r.Name,
    RestartCount: r.RestartCount,
    Driver: c.graphDriver,
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: c.execIDs ?? null,
    HostConfig: hostConfigView(r.HostConfig, c.runtime),
    GraphDriver: { Data: c.graphDriverData ?? null, Name: c.graphDriver },
    ...(c.sizes ? { SizeRw: c.sizes.SizeRw, SizeRootFs: c.sizes.SizeRootFs } : {}),
    Mounts: mountsView(r),
    Config: configView(r.Config),
    NetworkSettings: networkSettingsView(r, c.networks),
  };
}

/** dockerd's list Command: arguments holding a space are wrapped in single quotes, nothing else is escaped. */
function commandOf(r: ContainerRecord): string {
  return r.Args.length ? `${r.Path} ${r.Args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}` : r.Path;
}

/** The Ports of a list entry: published bindings, and exposed ports with no binding. */
export function portsView(r: ContainerRecord): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  return Object.entries(r.Net?.Ports ?? {}).flatMap(([k, bs]) => {
    const [port, proto] = k.split('/') as [string, string];
    if (!bs) return [{ PrivatePort: Number(port), Type: proto }];
    return bs.map((b) => ({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: proto }));
  });
}

/** One row of GET /containers/json; SizeRw/SizeRootFs with ?size=1, omitted when 0 as Go's omitempty does. */
export function summaryView(
  r: ContainerRecord, status: string, sizes?: { SizeRw: number; SizeRootFs: number }, networks?: Record<string, EndpointSettings>,
): ContainerSummary {
  return {
    Id: r.ID,
    Names: [r.Name],
    Image: (r.Config.Image as string | undefined) || r.Image,
    ImageID: r.Image,
    Command: commandOf(r),
    Created: Math.floor(Date.parse(r.Created) / 1000),
    Ports: portsView(r),
    ...(sizes?.SizeRw ? { SizeRw: sizes.SizeRw } : {}),
    ...(sizes?.SizeRootFs ? { SizeRootFs: sizes.SizeRootFs } : {}),
    Labels: (r.Config.Labels ?? {}) as Record<string, string>,
    State: r.State.Status,
    Status: status,
    HostConfig: { NetworkMode: String(r.HostConfig.NetworkMode || 'default') },
    NetworkSettings: { Networks: networks ?? networksView(r) },
    Mounts: mountsView(r),
  };
}
