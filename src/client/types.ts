/** Engine API shapes the client reads (API 1.41), as the daemon sends them. */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string> | null;
  Containers: number;
}

export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

export interface DeleteItem { Untagged?: string; Deleted?: string }

export interface PruneReport { ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }

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
