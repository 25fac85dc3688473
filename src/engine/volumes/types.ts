/** The volumes module's door: what the containers module does with volumes (the API's calls go through api/backend.ts). */
import type { Volume } from '../../wire/index.js';

export type { Volume } from '../../wire/index.js';

/** Named and anonymous volumes as the containers that mount them use them (`VolumeStore` implements it). */
export interface Volumes {
  has(name: string): boolean;
  /** Anonymous volumes (the `com.docker.volume.anonymous` label) go with their container on `rm -v` and `--rm`. */
  isAnonymous(name: string): boolean;
  /** An existing name is returned as it is; `anonymous` gives a random name and the label. */
  create(opts?: { Name?: string; Driver?: string; Labels?: Record<string, string> | null; DriverOpts?: Record<string, string> | null; anonymous?: boolean }): Promise<Volume>;
  /**
   * A container mounts the volume (at create, or when the daemon loads its record). A volume with mount options
   * is mounted for its first user: `whenMounted` says when (or why not).
   */
  retain(name: string, containerId: string): void;
  release(name: string, containerId: string): void;
  /** Resolves once a volume with mount options is mounted; rejects with the mount's error. */
  whenMounted(name: string): Promise<void>;
  /** A volume in use is a conflict unless `force`. */
  remove(name: string, force?: boolean): Promise<void>;
}
