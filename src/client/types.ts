/** Engine API shapes the client reads (API 1.41), as the daemon sends them (the shared ones are in src/wire/). */
import type { ImageSummary as WireImageSummary } from '../wire/index.js';

export type { DeleteItem, HistoryItem, ImagePruneReport as PruneReport } from '../wire/index.js';

/** GET /images/json's row as the client reads it: other daemons may send null for the tag and digest lists. */
export interface ImageSummary extends Omit<WireImageSummary, 'RepoTags' | 'RepoDigests'> {
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
}

export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Image?: string;
  ImageID?: string;
  Command?: string;
  Created?: number;
  State?: string;
  Status?: string;
  SizeRw?: number;
  SizeRootFs?: number;
  Mounts?: { Name?: string; Type?: string }[];
}

export interface VolumeSummary {
  Name: string;
  Driver?: string;
  Mountpoint?: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

export interface BuildCacheRecord {
  ID: string;
  Type?: string;
  Size: number;
  CreatedAt?: string;
  LastUsedAt?: string | null;
  UsageCount?: number;
  InUse?: boolean;
  Shared?: boolean;
}

export interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[] | null;
  Containers: ContainerSummary[] | null;
  Volumes: VolumeSummary[] | null;
  BuildCache: BuildCacheRecord[] | null;
}

export interface VersionComponent { Name: string; Version: string; Details?: Record<string, string> }

export interface ServerVersion {
  Platform?: { Name: string };
  Components?: VersionComponent[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
  Experimental?: boolean;
  BuildTime?: string;
}

export type Info = Record<string, unknown>;
