/**
 * Engine API 1.41 container shapes (moby's api/types/container, api/types/mount, api/types/network and the
 * swagger's ContainerConfig, HostConfig, ContainerInspectResponse, ContainerSummary…), with canonical key names.
 * Request bodies are decoded into these by `api/decode.ts` against the schemas in `schema.ts`; answers are built
 * by the engine in these shapes (every key dockerd 20.10 sends, with its defaults).
 */

/** container.HealthConfig: durations in nanoseconds. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** container.Config (the create body's top level, the image config's `config`). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  /** "80/tcp" → {} */
  ExposedPorts?: Record<string, object> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

export interface RestartPolicy { Name: string; MaximumRetryCount: number }
export interface LogConfig { Type: string; Config: Record<string, string> | null }
export interface PortBinding { HostIp: string; HostPort: string }
/** nat.PortMap: "80/tcp" → bindings. */
export type PortMap = Record<string, PortBinding[] | null>;
export interface DeviceMapping { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }
export interface DeviceRequest {
  Driver: string;
  Count: number;
  DeviceIDs: string[] | null;
  Capabilities: string[][] | null;
  Options: Record<string, string> | null;
}
export interface WeightDevice { Path: string; Weight: number }
export interface ThrottleDevice { Path: string; Rate: number }
export interface Ulimit { Name: string; Soft: number; Hard: number }

/** mount.Mount (HostConfig.Mounts). */
export interface Mount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string> | null;
    DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null;
  } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

/**
 * container.HostConfig with its embedded Resources: every key dockerd 20.10 answers with (65 keys). In a request
 * every key is optional; in an inspect answer every key is present.
 */
export interface HostConfig {
  Binds: string[] | null;
  ContainerIDFile: string;
  LogConfig: LogConfig;
  NetworkMode: string;
  PortBindings: PortMap | null;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  VolumeDriver: string;
  VolumesFrom: string[] | null;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  CgroupnsMode: string;
  Dns: string[] | null;
  DnsOptions: string[] | null;
  DnsSearch: string[] | null;
  ExtraHosts: string[] | null;
  GroupAdd: string[] | null;
  IpcMode: string;
  Cgroup: string;
  Links: string[] | null;
  OomScoreAdj: number;
  PidMode: string;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  StorageOpt?: Record<string, string> | null;
  Tmpfs?: Record<string, string> | null;
  UTSMode: string;
  UsernsMode: string;
  ShmSize: number;
  Sysctls?: Record<string, string> | null;
  Runtime: string;
  ConsoleSize: [number, number];
  Isolation: string;
  // Resources
  CpuShares: number;
  Memory: number;
  NanoCpus: number;
  CgroupParent: string;
  BlkioWeight: number;
  BlkioWeightDevice: WeightDevice[] | null;
  BlkioDeviceReadBps: ThrottleDevice[] | null;
  BlkioDeviceWriteBps: ThrottleDevice[] | null;
  BlkioDeviceReadIOps: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps: ThrottleDevice[] | null;
  CpuPeriod: number;
  CpuQuota: number;
  CpuRealtimePeriod: number;
  CpuRealtimeRuntime: number;
  CpusetCpus: string;
  CpusetMems: string;
  Devices: DeviceMapping[] | null;
  DeviceCgroupRules: string[] | null;
  DeviceRequests: DeviceRequest[] | null;
  KernelMemory: number;
  KernelMemoryTCP: number;
  MemoryReservation: number;
  MemorySwap: number;
  MemorySwappiness: number | null;
  OomKillDisable: boolean | null;
  PidsLimit: number | null;
  Ulimits: Ulimit[] | null;
  CpuCount: number;
  CpuPercent: number;
  IOMaximumIOps: number;
  IOMaximumBandwidth: number;
  Mounts?: Mount[] | null;
  Init?: boolean | null;
  MaskedPaths: string[] | null;
  ReadonlyPaths: string[] | null;
}

export interface EndpointIPAMConfig { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null }

/** network.EndpointSettings (NetworkingConfig.EndpointsConfig values, inspect's NetworkSettings.Networks values). */
export interface EndpointSettings {
  IPAMConfig: EndpointIPAMConfig | null;
  Links: string[] | null;
  Aliases: string[] | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  MacAddress: string;
  DriverOpts: Record<string, string> | null;
}

export interface NetworkingConfig { EndpointsConfig?: Record<string, Partial<EndpointSettings> | null> | null }

/** POST /containers/create's body (moby's ContainerConfigWrapper: Config's fields at the top level). */
export interface ContainerCreateRequest extends ContainerConfig {
  HostConfig?: Partial<HostConfig> | null;
  NetworkingConfig?: NetworkingConfig | null;
}

export interface ContainerCreateResponse { Id: string; Warnings: string[] }

export interface HealthcheckResult { Start: string; End: string; ExitCode: number; Output: string }
export interface Health { Status: 'none' | 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: HealthcheckResult[] }

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Only when the container has a healthcheck. */
  Health?: Health;
}

/** types.MountPoint (inspect's and the summary's Mounts). */
export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export interface NetworkSettings {
  Bridge: string;
  SandboxID: string;
  HairpinMode: boolean;
  LinkLocalIPv6Address: string;
  LinkLocalIPv6PrefixLen: number;
  Ports: PortMap;
  SandboxKey: string;
  SecondaryIPAddresses: null;
  SecondaryIPv6Addresses: null;
  EndpointID: string;
  Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  MacAddress: string;
  Networks: Record<string, EndpointSettings>;
}

export interface GraphDriverData { Name: string; Data: Record<string, string> | null }

/** GET /containers/{id}/json (types.ContainerJSON). */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  MountLabel: string;
  ProcessLabel: string;
  AppArmorProfile: string;
  ExecIDs: string[] | null;
  HostConfig: HostConfig;
  GraphDriver: GraphDriverData;
  /** With ?size=1 only. */
  SizeRw?: number;
  SizeRootFs?: number;
  Mounts: MountPoint[];
  Config: ContainerConfig;
  NetworkSettings: NetworkSettings;
}

export interface Port { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }

/** One row of GET /containers/json (types.Container). */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: Port[];
  /** With ?size=1, and only when not 0 (omitempty). */
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string>;
  State: string;
  Status: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, EndpointSettings> };
  Mounts: MountPoint[];
}

export interface ContainerListOptions { all: boolean; limit?: number; size?: boolean; filters: Record<string, string[]> }

export interface ContainerWaitResponse { StatusCode: number; Error: { Message: string } | null }
export interface ContainerTopResponse { Titles: string[]; Processes: string[][] }
/** GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted. */
export interface ContainerChange { Path: string; Kind: 0 | 1 | 2 }
/** POST /commit's answer. */
export interface ContainerCommitResponse { Id: string }
export interface ContainerPruneReport { ContainersDeleted: string[] | null; SpaceReclaimed: number }

/** POST /containers/{id}/exec's body (types.ExecConfig). */
export interface ExecCreateRequest {
  User?: string;
  Privileged?: boolean;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStderr?: boolean;
  AttachStdout?: boolean;
  Detach?: boolean;
  DetachKeys?: string;
  Env?: string[] | null;
  WorkingDir?: string;
  Cmd?: string[] | null;
  /** [height, width] (API 1.42). */
  ConsoleSize?: [number, number] | null;
}

/** POST /exec/{id}/start's body. */
export interface ExecStartRequest { Detach?: boolean; Tty?: boolean }

/** POST /commit's query, decoded, with the body (a container.Config) as `config`. */
export interface CommitOptions {
  repo: string;
  tag: string;
  comment: string;
  author: string;
  changes: string[];
  pause: boolean;
  config?: ContainerConfig;
}
