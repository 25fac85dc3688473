/**
 * What the HTTP layer needs from the engine, one interface per API resource (moby's router/…/backend.go idea).
 * Routes parse the request, call one method, encode the answer; nothing else. Shapes are the Engine API's.
 */
import type { Readable } from 'node:stream';
import type { ProgressSink } from '../lib/jsonmessage.js';
import type { Filters } from '../lib/filters.js';
import type { BuildRequest, DeleteItem, EndpointSettings, HistoryItem, ImagePruneReport, ImageSummary, ImportOptions, NetworkCreateRequest, NetworkPruneReport, NetworkResource, PullOptions } from '../wire/index.js';

export type { Filters } from '../lib/filters.js';
export type { AuthConfig, BuildRequest, DeleteItem, HistoryItem, ImagePruneReport, ImageSummary, ImportOptions, PullOptions } from '../wire/index.js';

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
  prune(filters: Filters): Promise<ImagePruneReport>;
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
  /** /networks; absent in daemons without networking. */
  networks?: NetworkBackend;
}

export interface NetworkBackend {
  /** GET /networks (filters dangling, driver, id, label, name, scope, type). */
  list(filters: Filters): NetworkResource[];
  /** GET /networks/{id}: by full ID, name or unique ID prefix. */
  inspect(ref: string): NetworkResource;
  create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }>;
  remove(ref: string): Promise<void>;
  prune(filters: Filters): Promise<NetworkPruneReport>;
  connectContainer(network: string, container: string, cfg: Partial<EndpointSettings> | null | undefined): Promise<void>;
  disconnectContainer(network: string, container: string, force: boolean): Promise<void>;
}

export interface BuildBackend {
  /**
   * POST /build — the classic builder. `context` is the request body (a tar, possibly compressed, or a bare
   * Dockerfile). Streams {stream}/{aux}/{status} messages; resolves with the final image ID. A failing RUN rejects
   * with an error carrying `exitCode` (sent as errorDetail.code).
   */
  build(context: Readable, opts: BuildRequest, progress: ProgressSink): Promise<string>;
}
