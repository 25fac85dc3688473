/** Engine API 1.41 system shapes: GET /version, GET /info (the keys clients read), GET /system/df. */
import type { ContainerSummary } from './containers.js';
import type { ImageSummary } from './images.js';
import type { Volume } from './volumes.js';

export interface ComponentVersion { Name: string; Version: string; Details?: Record<string, string> }

/** GET /version (types.Version). */
export interface SystemVersion {
  Platform: { Name: string };
  Components: ComponentVersion[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  Experimental?: boolean;
  BuildTime: string;
}

/** GET /info (types.Info): the keys clients rely on are typed; the rest pass through. */
export interface SystemInfo {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: [string, string][] | null;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  Name: string;
  ServerVersion: string;
  DockerRootDir: string;
  [key: string]: unknown;
}

export interface BuildCacheRecord {
  ID: string;
  Parent?: string;
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string | null;
  UsageCount: number;
}

/** GET /system/df (types.DiskUsage). */
export interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[] | null;
  Containers: ContainerSummary[] | null;
  Volumes: Volume[] | null;
  BuildCache: BuildCacheRecord[] | null;
  /** Deprecated in 1.41, still sent by dockerd 20.10 (0 without BuildKit). */
  BuilderSize?: number;
}
