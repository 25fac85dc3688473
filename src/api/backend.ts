/**
 * What the HTTP layer needs from the engine, one interface per API resource (moby's router/…/backend.go idea).
 * Routes parse the request, call one method, encode the answer; nothing else. Shapes are the Engine API's.
 */
import type { Readable } from 'node:stream';
import type { ProgressSink } from '../lib/jsonmessage.js';

/** Docker's `filters` query parameter, decoded: {"dangling":{"true":true}} → { dangling: ["true"] }. */
export type Filters = Record<string, string[]>;

/** Registry credentials as sent in X-Registry-Auth (base64url JSON). */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

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

export interface PullOptions {
  /** "os/arch[/variant]"; host platform when absent. */
  platform?: string;
  /** Pull every tag of the repository (docker pull -a). */
  allTags?: boolean;
  auth?: AuthConfig;
  signal?: AbortSignal;
}

export interface ImportOptions {
  repo?: string;
  tag?: string;
  message?: string;
  changes?: string[];
  platform?: string;
  /** The source named in history: "-" for a body, a URL otherwise. */
  source: string;
}

export interface ImageBackend {
  /** POST /images/create?fromImage=&tag= — streams progress; errors after streaming started go to the sink. */
  pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void>;
  /** POST /images/create?fromSrc= — docker import. Returns the new image ID. */
  importImage(tar: Readable, opts: ImportOptions, progress: ProgressSink): Promise<string>;
  /** POST /images/bootstrap?name=busybox|debian:<suite> (Wharf extension). Returns the image ID. */
  bootstrap(name: string, progress: ProgressSink): Promise<string>;
  list(opts: { all: boolean; filters: Filters; sharedSize?: boolean }): Promise<ImageSummary[]>;
  /** GET /images/{name}/json: the full ImageInspect object. */
  inspect(name: string): Promise<Record<string, unknown>>;
  history(name: string): Promise<HistoryItem[]>;
  tag(source: string, repo: string, tag: string | undefined): Promise<void>;
  remove(name: string, opts: { force: boolean; noPrune: boolean }): Promise<DeleteItem[]>;
  prune(filters: Filters): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }>;
}

export interface SystemBackend {
  /** GET /version */
  version(): Promise<Record<string, unknown>>;
  /** GET /info */
  info(): Promise<Record<string, unknown>>;
  /** GET /system/df: { LayersSize, Images, Containers, Volumes, BuildCache } */
  df(): Promise<Record<string, unknown>>;
}

export interface Backends {
  images: ImageBackend;
  system: SystemBackend;
  /** The classic builder (POST /build); absent in daemons built without it. */
  build?: BuildBackend;
}

/** POST /build's parameters, decoded (the classic builder's ImageBuildOptions). */
export interface BuildRequest {
  /** `t`, each a reference to tag the result with. */
  tags: string[];
  /** Path of the Dockerfile inside the context ("Dockerfile" when absent). */
  dockerfile: string;
  /** `buildargs`: a null value means "take it from the daemon's environment" (docker's --build-arg NAME). */
  buildArgs: Record<string, string | null>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  rm: boolean;
  forceRm: boolean;
  /** `q`: only the image ID is streamed at the end. */
  quiet: boolean;
  labels: Record<string, string>;
  cacheFrom: string[];
  /** `remote`: a tarball URL, a Dockerfile URL, or a git URL (`#ref:subdir`). */
  remote?: string;
  networkMode?: string;
  /** `platform` ("os/arch[/variant]"): FROM's platform when the instruction gives none (docker build --platform). */
  platform?: string;
  /** X-Registry-Config: credentials by registry host ("https://index.docker.io/v1/" for Docker Hub), for FROM pulls. */
  registryAuth?: Record<string, AuthConfig>;
  signal?: AbortSignal;
}

export interface BuildBackend {
  /**
   * POST /build — the classic builder. `context` is the request body (a tar, possibly compressed, or a bare
   * Dockerfile). Streams {stream}/{aux}/{status} messages; resolves with the final image ID. A failing RUN rejects
   * with an error carrying `exitCode` (sent as errorDetail.code).
   */
  build(context: Readable, opts: BuildRequest, progress: ProgressSink): Promise<string>;
}
