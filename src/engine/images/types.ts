import type { Digest } from '../../lib/digest.js';

/** Docker image spec v1.2 / OCI image config "config" section: the Engine API's container.Config. */
export type { ContainerConfig } from '../../wire/index.js';
import type { ContainerConfig } from '../../wire/index.js';

/**
 * `--change` lines (Dockerfile instructions) applied to a copy of a container config, as `docker commit -c` and
 * `docker import -c` do (dockerd's BuildFromConfig). The builder's (`build/changes.ts`): the composition root
 * passes it to the image and commit services, so neither imports the builder.
 */
export type ChangeApplier = (base: ContainerConfig, changes: readonly string[]) => ContainerConfig;

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The image config JSON; its sha256 is the image ID. Keys as docker writes them. */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  container?: string;
  container_config?: ContainerConfig;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  [k: string]: unknown;
}

export interface Image {
  id: Digest;
  config: ImageConfig;
  /** The exact bytes whose digest is `id`. */
  raw: Buffer;
  /** Parent image (builds, commits): docker's "Parent". */
  parent: Digest | null;
  /** When this image was stored locally (ms since epoch). */
  lastTagTime?: string;
}

/**
 * The image store: image configs by ID, parent links, and the reference store (tags and digests → ID).
 * Layout under <data-root>/image: imagedb/content/sha256/<hex> (config bytes), imagedb/metadata/sha256/<hex>/
 * {parent,lastUpdated}, repositories.json (tags and repo digests, written atomically).
 * Creating an image retains its top chain in the layer store; deleting releases it.
 */
export interface ImageStore {
  /** Stores a config (idempotent); its layers must already be registered. Returns the image. */
  create(rawConfig: Buffer, parent?: Digest | null): Promise<Image>;
  get(id: Digest): Promise<Image>;
  has(id: Digest): Promise<boolean>;
  list(): Promise<Image[]>;
  /** Children (images whose parent is id). */
  children(id: Digest): Promise<Digest[]>;
  /** Deletes an image record and releases its layers. Returns deleted layer chain IDs. */
  remove(id: Digest): Promise<Digest[]>;
  setParent(id: Digest, parent: Digest | null): Promise<void>;
  /** Records "now" (or `when`) as the image's last tag time (docker's Metadata.LastTagTime). */
  setLastUpdated(id: Digest, when?: Date): Promise<void>;
}

/** A normalized reference: "docker.io/library/busybox:latest" or "host:5000/repo@sha256:…". */
export interface ReferenceStore {
  /** Tags or repo-digests pointing at an image ID; `force` moves an existing tag. */
  add(ref: string, id: Digest): Promise<void>;
  delete(ref: string): Promise<boolean>;
  get(ref: string): Digest | null;
  /** All references of an image. */
  refsOf(id: Digest): string[];
  all(): Map<string, Digest>;
}
