/** Engine API 1.41 volume shapes (swagger's Volume, VolumeCreateOptions, VolumeListResponse, VolumePruneResponse). */

export interface Volume {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local' | 'global';
  /** GET /system/df only. */
  UsageData?: { Size: number; RefCount: number };
}

/** POST /volumes/create's body (moby's VolumeCreateBody). */
export interface VolumeCreateRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

export interface VolumeListResponse { Volumes: Volume[]; Warnings: string[] | null }
export interface VolumePruneReport { VolumesDeleted: string[] | null; SpaceReclaimed: number }
