/**
 * What the HTTP layer needs from the engine, one interface per API resource (moby's router/…/backend.go idea).
 * Routes parse the request, call one method, encode the answer; nothing else. Shapes are the Engine API's.
 */
import type { Mux } from '../lib/mux.js';
import type { Readable } from 'node:stream';
import type { ProgressSink } from '../lib/jsonmessage.js';
import type { Filters } from '../lib/filters.js';
import type {
  AuthConfig, BuildCachePruneReport, BuildRequest, CommitOptions, ContainerUpdate, EventMessage, StatsJson, ContainerChange, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect,
  ContainerListOptions, ContainerPruneReport, ContainerSummary, ContainerTopResponse, ContainerWaitResponse, DeleteItem,
  DiskUsage, EndpointSettings, ExecCreateRequest, NetworkCreateRequest, NetworkPruneReport, NetworkResource, SystemInfo, SystemVersion, HistoryItem, ImagePruneReport, ImageSummary, ImportOptions, PullOptions, Volume,
  VolumeCreateRequest, VolumePruneReport,
} from '../wire/index.js';

export type { Filters } from '../lib/filters.js';
export type { AuthConfig, BuildCachePruneReport, BuildRequest, ContainerUpdate, DeleteItem, HistoryItem, ImagePruneReport, ImageSummary, ImportOptions, PullOptions } from '../wire/index.js';

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
  version(): Promise<SystemVersion>;
  /** GET /info */
  info(): Promise<SystemInfo>;
  /** GET /system/df: { LayersSize, Images, Containers, Volumes, BuildCache } */
  df(): Promise<DiskUsage>;
}

/** One record of a container's log, as the logs route frames it. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** RFC3339Nano (`logs -t`). */
  time: string;
  data: Buffer;
}

/** Where an attached container's (or exec's) output goes and its input comes from. */
export interface AttachStreams {
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
  stdin?: Readable;
}

/** Container records: create, inspect, list, rename, remove, prune (moby's stateBackend + monitorBackend). */
export interface ContainerBackend {
  /** POST /containers/create: the body decoded by api/decode.ts (canonical keys, Go's types). */
  create(name: string | null, body: ContainerCreateRequest): Promise<ContainerCreateResponse>;
  /** GET /containers/{id}/json: the full ContainerJSON, with SizeRw/SizeRootFs when `size`. */
  inspect(ref: string, opts: { size: boolean }): Promise<ContainerInspect>;
  list(opts: ContainerListOptions): Promise<ContainerSummary[]>;
  /** POST /containers/prune (filters until, label, label!). */
  prune(filters: Filters): Promise<ContainerPruneReport>;
  rename(ref: string, name: string): Promise<void>;
  /** How GET /containers/{id}/logs reads a container's log: refused for the `none` driver; `--details` attributes. */
  logReading(ref: string): { attrs: string };
  /** DELETE /containers/{/parent/alias}?link=1: the parent's legacy link goes. */
  removeLink(name: string): Promise<void>;
  /** DELETE /containers/{id}; waiters for `condition=removed` are released. */
  remove(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void>;
  /** What attach needs to know before it hijacks the connection. */
  attachInfo(ref: string): { id: string; tty: boolean; openStdin: boolean };
}

/** Running containers (moby's stateBackend/streamBackend): the lifecycle. */
export interface ContainerRuntimeBackend {
  start(ref: string): Promise<void>;
  wait(ref: string, condition: string): Promise<ContainerWaitResponse>;
  pause(ref: string): Promise<void>;
  unpause(ref: string): Promise<void>;
  restart(ref: string, timeout: number | undefined): Promise<void>;
  stop(ref: string, timeout: number | undefined): Promise<void>;
  kill(ref: string, signal: string): Promise<void>;
  top(ref: string, psArgs: string): Promise<ContainerTopResponse>;
  resize(ref: string, height: number, width: number): Promise<void>;
  /** Kind 0 modified, 1 added, 2 deleted (the route answers ContainerChange's Path/Kind). */
  changes(ref: string): Promise<{ path: string; kind: ContainerChange['Kind'] }[]>;
  isTty(ref: string): boolean;
  logs(ref: string, o: { follow: boolean; since?: number; until?: number; tail?: number }): AsyncIterable<LogLine>;
  attach(ref: string, s: AttachStreams, opts: { logs: boolean; stream: boolean }): Promise<void>;
}

/** What the exec start route needs of an exec instance. */
export interface ExecInfo {
  ID: string;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  DetachKeys: string;
  ProcessConfig: { tty: boolean };
}

export interface ExecBackend {
  create(ref: string, body: ExecCreateRequest): { Id: string };
  get(id: string): ExecInfo;
  /** GET /exec/{id}/json (the shape is the lifecycle's: engine/containers/exec.ts). */
  inspect(id: string): Record<string, unknown>;
  resize(id: string, height: number, width: number): Promise<void>;
  start(id: string, s: AttachStreams): Promise<number>;
}

/** POST /commit. Resolves with the new image's ID. */
export interface CommitBackend {
  commit(ref: string, o: CommitOptions): Promise<string>;
}

/** docker cp and export: GET/HEAD/PUT /containers/{id}/archive, GET /containers/{id}/export. */
export interface ContainerArchiveBackend {
  export(ref: string): Promise<Readable>;
  /** The path's stat (X-Docker-Container-Path-Stat) and, unless `statOnly`, its tar. */
  get(ref: string, path: string, statOnly: boolean): Promise<{ stat: Record<string, unknown>; tar?: Readable }>;
  put(ref: string, path: string, body: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void>;
}

export interface VolumeBackend {
  list(filters: Filters): Promise<Volume[]>;
  create(body: VolumeCreateRequest): Promise<Volume>;
  get(name: string): Volume;
  remove(name: string, force: boolean): Promise<void>;
  prune(filters: Filters): Promise<VolumePruneReport>;
}

/** GET /images/get, GET /images/{name}/get (docker save) and POST /images/load (docker load). */
export interface ImageArchiveBackend {
  save(names: string[]): Promise<Readable>;
  load(input: Readable, progress: ProgressSink): Promise<void>;
}

/** POST /images/{name}/push. */
export interface PushBackend {
  push(name: string, tag: string | undefined, opts: { auth?: AuthConfig; signal?: AbortSignal }, progress: ProgressSink): Promise<void>;
}

/** POST /auth (docker login, daemon side). */
export interface RegistryAuthBackend {
  login(auth: AuthConfig, signal?: AbortSignal): Promise<{ IdentityToken: string; Status: string }>;
}

/** GET /images/search. */
export interface SearchBackend {
  search(opts: { term: string; limit?: number; filters?: Filters; auth?: AuthConfig; signal?: AbortSignal }): Promise<unknown[]>;
}

/** Every resource's backend; buildRouter registers the routes of those present. */
export interface Backends {
  images: ImageBackend;
  system: SystemBackend;
  /** The classic builder (POST /build); absent in daemons built without it. */
  build?: BuildBackend;
  containers?: ContainerBackend;
  /** The container lifecycle (start, stop, logs, attach…); absent: only records (create, inspect, list, rm). */
  runtime?: ContainerRuntimeBackend;
  exec?: ExecBackend;
  commit?: CommitBackend;
  containerArchive?: ContainerArchiveBackend;
  volumes?: VolumeBackend;
  imageArchive?: ImageArchiveBackend;
  push?: PushBackend;
  auth?: RegistryAuthBackend;
  search?: SearchBackend;
  /** GET /events. */
  events?: EventsBackend;
  /** GET /containers/{id}/stats, POST /containers/{id}/update. */
  containerResources?: ContainerResourcesBackend;
  /** /networks; absent in daemons without networking. */
  networks?: NetworkBackend;
}

export interface ContainerResourcesBackend {
  /** One answer (stream false), or one a second until `signal` aborts. */
  stats(id: string, opts: { stream: boolean; oneShot: boolean; signal?: AbortSignal }): AsyncIterable<StatsJson>;
  update(id: string, body: ContainerUpdate): Promise<{ Warnings: string[] | null }>;
}

export interface EventsBackend {
  /**
   * A subscription: `past` holds the buffered events matching the filters between `since` and `until` (Unix
   * nanoseconds; none when both are absent), `onEvent` receives the live ones until `close()`.
   */
  subscribe(opts: { since?: bigint; until?: bigint; filters: Filters }): {
    past: EventMessage[]; onEvent(fn: (e: EventMessage) => void): void; close(): void;
  };
  /** One event as a line of the stream (dockerd's json.Encoder output: exact timeNano, newline). */
  encode(e: EventMessage): string;
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
  /**
   * POST /build/prune — deletes build-cache records (RUN --mount=type=cache directories no step holds) that
   * the filters select, the least recently used first while more than `keepStorage` bytes remain.
   */
  prune(opts: { all: boolean; filters: Filters; keepStorage: number }): Promise<BuildCachePruneReport>;
  /** Whether a build session of this id is open (POST /build/session). */
  hasSession(id: string): boolean;
  /** A client's build session, open until its Mux ends: builds naming it reach its secrets and agents. */
  addSession(id: string, mux: Mux): void;
}
