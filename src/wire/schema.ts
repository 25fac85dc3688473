/**
 * The Go types request bodies are decoded into, as data: `api/decode.ts` reads a JSON body the way Go's
 * encoding/json reads it into these (keys matched case-insensitively to the canonical names, unknown keys
 * ignored, a wrong type refused with Go's message naming the field). One schema per body; the TypeScript types
 * of the decoded values are in containers.ts and volumes.ts.
 */

/** A Go type: its kind for decoding and its name for error messages (`of type int64`, `of type nat.PortMap`). */
export type GoType =
  | { kind: 'string'; go: string }
  | { kind: 'bool'; go: string }
  | { kind: 'int'; go: string; min: number; max: number }
  /** docker's strslice.StrSlice: a list of strings, or one string (→ a list of one). */
  | { kind: 'strslice'; go: string }
  | { kind: 'slice'; go: string; elem: GoType }
  | { kind: 'map'; go: string; elem: GoType }
  | { kind: 'struct'; go: string; name: string; fields: Record<string, GoType> }
  /** struct{} (the values of ExposedPorts and Volumes). */
  | { kind: 'empty'; go: string };

const I64 = 2 ** 63;
export const str: GoType = { kind: 'string', go: 'string' };
export const bool: GoType = { kind: 'bool', go: 'bool' };
export const int64: GoType = { kind: 'int', go: 'int64', min: -I64, max: I64 - 1 };
export const int: GoType = { kind: 'int', go: 'int', min: -I64, max: I64 - 1 };
export const uint16: GoType = { kind: 'int', go: 'uint16', min: 0, max: 65535 };
export const uint64: GoType = { kind: 'int', go: 'uint64', min: 0, max: 2 ** 64 - 1 };
export const duration: GoType = { kind: 'int', go: 'time.Duration', min: -I64, max: I64 - 1 };
export const strslice: GoType = { kind: 'strslice', go: 'strslice.StrSlice' };
export const strings: GoType = { kind: 'slice', go: '[]string', elem: str };
export const strMap: GoType = { kind: 'map', go: 'map[string]string', elem: str };
const set = (go: string): GoType => ({ kind: 'map', go, elem: { kind: 'empty', go: 'struct {}' } });
const slice = (elem: GoType): GoType => ({ kind: 'slice', go: `[]${elem.kind === 'struct' ? `*${elem.go}` : elem.go}`, elem });
const struct = (go: string, fields: Record<string, GoType>): GoType => ({ kind: 'struct', go, name: go.slice(go.lastIndexOf('.') + 1), fields });

export const HEALTH_CONFIG = struct('container.HealthConfig', {
  Test: strings, Interval: duration, Timeout: duration, StartPeriod: duration, Retries: int,
});

/** container.Config's fields (the create body's top level, POST /commit's body). */
export const CONFIG_FIELDS: Record<string, GoType> = {
  Hostname: str, Domainname: str, User: str, AttachStdin: bool, AttachStdout: bool, AttachStderr: bool,
  ExposedPorts: set('nat.PortSet'), Tty: bool, OpenStdin: bool, StdinOnce: bool, Env: strings, Cmd: strslice,
  Healthcheck: HEALTH_CONFIG, ArgsEscaped: bool, Image: str, Volumes: set('map[string]struct {}'), WorkingDir: str,
  Entrypoint: strslice, NetworkDisabled: bool, MacAddress: str, OnBuild: strings, Labels: strMap, StopSignal: str,
  StopTimeout: int, Shell: strslice,
};

export const CONTAINER_CONFIG = struct('container.Config', CONFIG_FIELDS);

const PORT_BINDING = struct('nat.PortBinding', { HostIp: str, HostPort: str });
const THROTTLE = struct('blkiodev.ThrottleDevice', { Path: str, Rate: uint64 });

export const MOUNT = struct('mount.Mount', {
  Type: str, Source: str, Target: str, ReadOnly: bool, Consistency: str,
  BindOptions: struct('mount.BindOptions', { Propagation: str, NonRecursive: bool }),
  VolumeOptions: struct('mount.VolumeOptions', {
    NoCopy: bool, Labels: strMap, DriverConfig: struct('mount.Driver', { Name: str, Options: strMap }),
  }),
  TmpfsOptions: struct('mount.TmpfsOptions', { SizeBytes: int64, Mode: { kind: 'int', go: 'fs.FileMode', min: 0, max: 2 ** 32 - 1 } }),
});

/** container.HostConfig's fields, Resources included (embedded in Go). */
export const HOST_CONFIG_FIELDS: Record<string, GoType> = {
  Binds: strings, ContainerIDFile: str, LogConfig: struct('container.LogConfig', { Type: str, Config: strMap }),
  NetworkMode: str, PortBindings: { kind: 'map', go: 'nat.PortMap', elem: { kind: 'slice', go: '[]nat.PortBinding', elem: PORT_BINDING } },
  RestartPolicy: struct('container.RestartPolicy', { Name: str, MaximumRetryCount: int }),
  AutoRemove: bool, VolumeDriver: str, VolumesFrom: strings, CapAdd: strslice, CapDrop: strslice, CgroupnsMode: str,
  Dns: strings, DnsOptions: strings, DnsSearch: strings, ExtraHosts: strings, GroupAdd: strings, IpcMode: str,
  Cgroup: str, Links: strings, OomScoreAdj: int, PidMode: str, Privileged: bool, PublishAllPorts: bool,
  ReadonlyRootfs: bool, SecurityOpt: strings, StorageOpt: strMap, Tmpfs: strMap, UTSMode: str, UsernsMode: str,
  ShmSize: int64, Sysctls: strMap, Runtime: str,
  ConsoleSize: { kind: 'slice', go: '[2]uint', elem: { kind: 'int', go: 'uint', min: 0, max: 2 ** 64 - 1 } },
  Isolation: str,
  CpuShares: int64, Memory: int64, NanoCpus: int64, CgroupParent: str, BlkioWeight: uint16,
  BlkioWeightDevice: slice(struct('blkiodev.WeightDevice', { Path: str, Weight: uint16 })),
  BlkioDeviceReadBps: slice(THROTTLE), BlkioDeviceWriteBps: slice(THROTTLE), BlkioDeviceReadIOps: slice(THROTTLE),
  BlkioDeviceWriteIOps: slice(THROTTLE), CpuPeriod: int64, CpuQuota: int64, CpuRealtimePeriod: int64,
  CpuRealtimeRuntime: int64, CpusetCpus: str, CpusetMems: str,
  Devices: { kind: 'slice', go: '[]container.DeviceMapping', elem: struct('container.DeviceMapping', { PathOnHost: str, PathInContainer: str, CgroupPermissions: str }) },
  DeviceCgroupRules: strings,
  DeviceRequests: { kind: 'slice', go: '[]container.DeviceRequest', elem: struct('container.DeviceRequest', {
    Driver: str, Count: int, DeviceIDs: strings, Capabilities: { kind: 'slice', go: '[][]string', elem: strings }, Options: strMap,
  }) },
  KernelMemory: int64, KernelMemoryTCP: int64, MemoryReservation: int64, MemorySwap: int64,
  MemorySwappiness: int64, OomKillDisable: bool, PidsLimit: int64,
  Ulimits: slice(struct('units.Ulimit', { Name: str, Hard: int64, Soft: int64 })),
  CpuCount: int64, CpuPercent: int64, IOMaximumIOps: uint64, IOMaximumBandwidth: uint64,
  Mounts: { kind: 'slice', go: '[]mount.Mount', elem: MOUNT }, MaskedPaths: strings, ReadonlyPaths: strings,
  Init: bool,
};

export const HOST_CONFIG = struct('container.HostConfig', HOST_CONFIG_FIELDS);

/** container.Resources' fields (embedded in HostConfig and UpdateConfig). */
const RESOURCE_KEYS = [
  'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps',
  'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod',
  'CpuRealtimeRuntime', 'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemory',
  'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'Ulimits',
  'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth',
] as const;

/** POST /containers/{id}/update's body: container.UpdateConfig (Resources and the restart policy). */
export const CONTAINER_UPDATE = struct('container.UpdateConfig', {
  ...Object.fromEntries(RESOURCE_KEYS.map((k) => [k, HOST_CONFIG_FIELDS[k]!])),
  RestartPolicy: HOST_CONFIG_FIELDS.RestartPolicy!,
});

export const ENDPOINT_SETTINGS = struct('network.EndpointSettings', {
  IPAMConfig: struct('network.EndpointIPAMConfig', { IPv4Address: str, IPv6Address: str, LinkLocalIPs: strings }),
  Links: strings, Aliases: strings, NetworkID: str, EndpointID: str, Gateway: str, IPAddress: str, IPPrefixLen: int,
  IPv6Gateway: str, GlobalIPv6Address: str, GlobalIPv6PrefixLen: int, MacAddress: str, DriverOpts: strMap,
});

export const NETWORKING_CONFIG = struct('network.NetworkingConfig', {
  EndpointsConfig: { kind: 'map', go: 'map[string]*network.EndpointSettings', elem: ENDPOINT_SETTINGS },
});

/** POST /containers/create (moby's ContainerConfigWrapper: container.Config embedded, so its fields are top-level). */
export const CONTAINER_CREATE = struct('runconfig.ContainerConfigWrapper', {
  ...CONFIG_FIELDS, HostConfig: HOST_CONFIG, NetworkingConfig: NETWORKING_CONFIG,
});

/** POST /containers/{id}/exec (types.ExecConfig). */
export const EXEC_CREATE = struct('types.ExecConfig', {
  User: str, Privileged: bool, Tty: bool, AttachStdin: bool, AttachStderr: bool, AttachStdout: bool, Detach: bool,
  DetachKeys: str, Env: strings, WorkingDir: str, Cmd: strings,
  // API 1.42 (a newer client's first size; older ones resize after the start)
  ConsoleSize: { kind: 'slice', go: '*[2]uint', elem: { kind: 'int', go: 'uint', min: 0, max: 2 ** 64 - 1 } },
});

/** POST /exec/{id}/start (types.ExecStartCheck). */
export const EXEC_START = struct('types.ExecStartCheck', { Detach: bool, Tty: bool });

/** POST /volumes/create (volume.VolumeCreateBody). */
export const VOLUME_CREATE = struct('volume.VolumeCreateBody', { Driver: str, DriverOpts: strMap, Labels: strMap, Name: str });

/** POST /auth and X-Registry-Auth (types.AuthConfig: lower-case JSON names). */
export const AUTH_CONFIG = struct('types.AuthConfig', {
  username: str, password: str, auth: str, email: str, serveraddress: str, identitytoken: str, registrytoken: str,
});
