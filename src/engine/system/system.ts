/**
 * SystemService: GET /version, /info and /system/df in the shapes the docker CLI decodes (moby's
 * types.Version, types.Info, types.DiskUsage; field lists from dockerd 20.10's answers).
 */
import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as os from 'node:os';
import type { BuildCacheRecord, ContainerSummary, DiskUsage, ImageSummary, SystemInfo, SystemVersion, Volume } from '../../wire/index.js';
import type { DaemonConfig } from '../config.js';
import { writeFileAtomic } from '../../lib/atomic.js';
import { goArch, rfc3339NanoFixed } from '../../lib/go.js';
import { DEFAULT_DOMAIN, INDEX_SERVER } from '../../lib/reference.js';
import { isENOENT } from '../../lib/fsutil.js';

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/** What /system/df needs from the image side. */
export interface ImagesDiskUsage {
  /** Sum of the sizes of all layers, each counted once. */
  LayersSize: number;
  Images: ImageSummary[];
}

export interface SystemServiceOptions {
  config: DaemonConfig;
  /** Product version ("0.1.0"). */
  version: string;
  /** The storage driver's name ("overlay2", "vfs"). */
  driverName: string;
  /** Number of images in the store, intermediate ones included (docker's "Images"). */
  countImages: () => Promise<number>;
  /** Image half of `docker system df`. */
  imagesDiskUsage: () => Promise<ImagesDiskUsage>;
  /** `system df`'s BuildCache records (the builder's cache mounts). */
  buildCacheDiskUsage?: () => Promise<BuildCacheRecord[]>;
  /** Containers of `docker system df` (list entries with SizeRw/SizeRootFs). */
  containersDiskUsage?: () => Promise<ContainerSummary[]>;
  /** Volumes of `docker system df` (with UsageData). */
  volumesDiskUsage?: () => Promise<Volume[]>;
  /** Containers by state, for info's Containers, ContainersRunning, ContainersPaused, ContainersStopped. */
  containerCounts?: () => { running: number; paused: number; stopped: number };
  /** Engine ID (docker's "ID"); read from or written to <data-root>/engine-id when absent. */
  engineId?: string;
  /** Extra "DriverStatus" pairs. */
  driverStatus?: [string, string][];
}

/** Reads /etc/os-release → { PRETTY_NAME, VERSION_ID, … }. */
export function readOsRelease(path = '/etc/os-release'): Record<string, string> {
  const out: Record<string, string> = {};
  let text = '';
  try { text = readFileSync(path, 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]!] = v.replace(/\\(.)/g, '$1');
  }
  return out;
}

/** Docker's 20.10-style engine ID: 12 groups of 4 base32 characters. */
export function newEngineId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const b = randomBytes(48);
  const groups: string[] = [];
  for (let g = 0; g < 12; g++) {
    let s = '';
    for (let i = 0; i < 4; i++) s += alphabet[b[g * 4 + i]! & 31];
    groups.push(s);
  }
  return groups.join(':');
}

/** The engine ID kept in <dataRoot>/engine-id, created on first use. */
export async function loadEngineId(dataRoot: string): Promise<string> {
  const p = join(dataRoot, 'engine-id');
  try {
    const s = (await readFile(p, 'utf8')).trim();
    if (s !== '') return s;
  } catch (e) { if (!isENOENT(e)) throw e; /* first start */ }
  const id = newEngineId();
  await mkdir(dataRoot, { recursive: true });
  await writeFileAtomic(p, id + '\n', 0o600);
  return id;
}

function cgroupVersion(): string {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1';
}

function openFds(): number {
  try { return readdirSync('/proc/self/fd').length; } catch { return 0; }
}

/** Short git commit of the checkout wharfd runs from, when it is one ("" otherwise). */
function gitCommit(): string {
  try {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (let i = 0; i < 6; i++) {
      const head = join(dir, '.git', 'HEAD');
      if (existsSync(head)) {
        const h = readFileSync(head, 'utf8').trim();
        if (/^[0-9a-f]{40}$/.test(h)) return h.slice(0, 7);
        const m = /^ref: (.+)$/.exec(h);
        if (m) {
          const refFile = join(dir, '.git', m[1]!);
          if (existsSync(refFile)) return readFileSync(refFile, 'utf8').trim().slice(0, 7);
          const packed = join(dir, '.git', 'packed-refs');
          if (existsSync(packed)) {
            const line = readFileSync(packed, 'utf8').split('\n').find((l) => l.endsWith(' ' + m[1]));
            if (line) return line.slice(0, 7);
          }
        }
        return '';
      }
      dir = dirname(dir);
    }
  } catch { /* not a checkout */ }
  return '';
}

function buildTime(): string {
  try {
    return rfc3339NanoFixed(statSync(fileURLToPath(import.meta.url)).mtime, true);
  } catch {
    return '';
  }
}

/** Whether a string is an IPv4/IPv6 CIDR ("127.0.0.0/8"). */
function isCidr(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(s) || /^[0-9a-fA-F:]+\/\d{1,3}$/.test(s);
}

export class SystemService {
  private readonly opts: SystemServiceOptions;
  private engineId: string | undefined;
  private commit: string | undefined;
  private built: string | undefined;

  constructor(opts: SystemServiceOptions) {
    this.opts = opts;
    this.engineId = opts.engineId;
  }

  private async id(): Promise<string> {
    if (this.engineId === undefined) this.engineId = await loadEngineId(this.opts.config.dataRoot);
    return this.engineId;
  }

  async version(): Promise<SystemVersion> {
    this.commit ??= gitCommit();
    this.built ??= buildTime();
    const v = this.opts.version;
    const details = {
      ApiVersion: API_VERSION,
      Arch: goArch(),
      BuildTime: this.built,
      Experimental: 'false',
      GitCommit: this.commit,
      GoVersion: `node${process.versions.node}`,
      KernelVersion: os.release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: 'linux',
    };
    return {
      Platform: { Name: 'Wharf Engine' },
      Components: [{ Name: 'Engine', Version: v, Details: details }],
      Version: v,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: this.commit,
      GoVersion: details.GoVersion,
      Os: 'linux',
      Arch: details.Arch,
      KernelVersion: details.KernelVersion,
      BuildTime: this.built,
    };
  }

  /** docker info's RegistryConfig from the daemon's mirrors and insecure registries. */
  registryConfig(): Record<string, unknown> {
    const cfg = this.opts.config;
    const cidrs = ['127.0.0.0/8'];
    const indexConfigs: Record<string, unknown> = {
      [DEFAULT_DOMAIN]: { Name: DEFAULT_DOMAIN, Mirrors: [...cfg.registryMirrors], Secure: true, Official: true },
    };
    for (const r of cfg.insecureRegistries) {
      if (isCidr(r)) {
        if (!cidrs.includes(r)) cidrs.push(r);
      } else {
        indexConfigs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
      }
    }
    return {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: cidrs,
      IndexConfigs: indexConfigs,
      Mirrors: [...cfg.registryMirrors],
    };
  }

  async info(): Promise<SystemInfo> {
    const cfg = this.opts.config;
    const osr = readOsRelease();
    const [id, images] = await Promise.all([this.id(), this.opts.countImages()]);
    const warnings: string[] = [];
    const counts = this.opts.containerCounts?.() ?? { running: 0, paused: 0, stopped: 0 };
    return {
      ID: id,
      Containers: counts.running + counts.paused + counts.stopped,
      ContainersRunning: counts.running,
      ContainersPaused: counts.paused,
      ContainersStopped: counts.stopped,
      Images: images,
      Driver: this.opts.driverName,
      DriverStatus: this.opts.driverStatus ?? this.defaultDriverStatus(),
      Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
      MemoryLimit: true,
      SwapLimit: true,
      KernelMemory: false,
      KernelMemoryTCP: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: readFlag('/proc/sys/net/ipv4/ip_forward'),
      BridgeNfIptables: readFlag('/proc/sys/net/bridge/bridge-nf-call-iptables'),
      BridgeNfIp6tables: readFlag('/proc/sys/net/bridge/bridge-nf-call-ip6tables'),
      Debug: cfg.debug,
      NFd: openFds(),
      OomKillDisable: false,
      NGoroutines: process.getActiveResourcesInfo().length,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: cgroupVersion(),
      NEventsListener: 0,
      KernelVersion: os.release(),
      OperatingSystem: osr['PRETTY_NAME'] ?? 'Linux',
      OSVersion: osr['VERSION_ID'] ?? '',
      OSType: 'linux',
      Architecture: os.machine(),
      IndexServerAddress: INDEX_SERVER,
      RegistryConfig: this.registryConfig(),
      NCPU: os.availableParallelism(),
      MemTotal: os.totalmem(),
      GenericResources: null,
      DockerRootDir: cfg.dataRoot,
      HttpProxy: process.env['HTTP_PROXY'] ?? process.env['http_proxy'] ?? '',
      HttpsProxy: process.env['HTTPS_PROXY'] ?? process.env['https_proxy'] ?? '',
      NoProxy: process.env['NO_PROXY'] ?? process.env['no_proxy'] ?? '',
      Name: os.hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: this.opts.version,
      Runtimes: { [runtimeName(cfg.defaultRuntime)]: { path: cfg.defaultRuntime } },
      DefaultRuntime: runtimeName(cfg.defaultRuntime),
      Swarm: {
        NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null,
      },
      LiveRestoreEnabled: false,
      Isolation: '',
      InitBinary: '',
      ContainerdCommit: { ID: '', Expected: '' },
      RuncCommit: { ID: '', Expected: '' },
      InitCommit: { ID: '', Expected: '' },
      SecurityOptions: ['name=seccomp,profile=default'],
      Warnings: warnings,
    };
  }

  private defaultDriverStatus(): [string, string][] {
    const fs = backingFilesystem(this.opts.config.dataRoot);
    return fs === '' ? [] : [['Backing Filesystem', fs]];
  }

  async df(): Promise<DiskUsage> {
    const usage = await this.opts.imagesDiskUsage();
    const buildCache = (await this.opts.buildCacheDiskUsage?.()) ?? [];
    return {
      LayersSize: usage.LayersSize,
      Images: usage.Images,
      Containers: (await this.opts.containersDiskUsage?.()) ?? [],
      Volumes: (await this.opts.volumesDiskUsage?.()) ?? [],
      BuildCache: buildCache,
      // dockerd counts the records that are not shared
      BuilderSize: buildCache.reduce((n, r) => n + (r.Shared ? 0 : r.Size), 0),
    };
  }
}

function readFlag(path: string): boolean {
  try { return readFileSync(path, 'utf8').trim() === '1'; } catch { return false; }
}

/** statfs f_type → docker's "Backing Filesystem" name. */
const FS_NAMES: Record<number, string> = {
  0xef53: 'extfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x01021994: 'tmpfs', 0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs', 0x6969: 'nfs', 0x65735546: 'fuse', 0xf2f52010: 'f2fs', 0x5346544e: 'ntfs',
};

/** The filesystem type under dir, as docker's DriverStatus names it ("extfs", "xfs", …; "" when unknown). */
export function backingFilesystem(dir: string): string {
  try {
    const t = statfsSync(dir).type >>> 0;
    return FS_NAMES[t] ?? `<unknown 0x${t.toString(16)}>`;
  } catch {
    return '';
  }
}

/** The name `info` shows for a runtime given by name or path ("/opt/bin/crun" → "crun"). */
function runtimeName(runtime: string): string {
  return runtime.slice(runtime.lastIndexOf('/') + 1);
}
