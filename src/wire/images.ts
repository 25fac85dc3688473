/** Engine API 1.41 image shapes: GET /images/json, /images/{name}/history, DELETE /images, POST /images/prune. */
import type { AuthConfig } from './auth.js';

/** One row of GET /images/json, as the daemon sends it. */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
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

/** POST /images/prune's answer. */
export interface ImagePruneReport { ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }

/** POST /images/create?fromImage=, decoded. */
export interface PullOptions {
  /** "os/arch[/variant]"; host platform when absent. */
  platform?: string;
  /** Pull every tag of the repository (docker pull -a). */
  allTags?: boolean;
  auth?: AuthConfig;
  signal?: AbortSignal;
}

/** POST /images/create?fromSrc=, decoded (docker import). */
export interface ImportOptions {
  repo?: string;
  tag?: string;
  message?: string;
  changes?: string[];
  platform?: string;
  /** The source named in history: "-" for a body, a URL otherwise. */
  source: string;
}
