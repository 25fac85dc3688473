/** Engine API shapes the client reads (API 1.41), as the daemon sends them (the shared ones are in src/wire/). */
import type { DiskUsage as WireDiskUsage, ImageSummary as WireImageSummary } from '../wire/index.js';

export type { DeleteItem, HistoryItem, ImagePruneReport as PruneReport } from '../wire/index.js';

/** GET /images/json's row as the client reads it: other daemons may send null for the tag and digest lists. */
export interface ImageSummary extends Omit<WireImageSummary, 'RepoTags' | 'RepoDigests'> {
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
}

export type { BuildCacheRecord, ContainerSummary, SystemVersion as ServerVersion, ComponentVersion as VersionComponent } from '../wire/index.js';
/** A volume as list and df show it (df adds UsageData). */
export type { Volume as VolumeSummary } from '../wire/index.js';

/** GET /system/df as the client reads it (images may come from another daemon: nullable tag lists). */
export interface DiskUsage extends Omit<WireDiskUsage, 'Images'> {
  Images: ImageSummary[] | null;
}

export type { SystemInfo as Info } from '../wire/index.js';
