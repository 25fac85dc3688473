/** Engine API 1.41 POST /build. */
import type { Duplex } from 'node:stream';
import type { AuthConfig } from './auth.js';

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
  /** `extrahosts` (repeated "host:ip"): /etc/hosts lines of the RUN containers (docker build --add-host). */
  extraHosts?: string[];
  /** `platform` ("os/arch[/variant]"): FROM's platform when the instruction gives none (docker build --platform). */
  platform?: string;
  /** X-Registry-Config: credentials by registry host ("https://index.docker.io/v1/" for Docker Hub), for FROM pulls. */
  registryAuth?: Record<string, AuthConfig>;
  /**
   * The client's build session this build may use (`wharf build --secret/--ssh`; headers X-Wharf-Build-Session,
   * X-Wharf-Build-Secret-Ids, X-Wharf-Build-Ssh-Ids): its id and the secret and agent ids it offers. The values
   * stay on the client until a step mounts them (never in a header, the query, the context tar or a log).
   */
  session?: BuildSessionRef;
  /** Build secrets by id, reached through the session (the engine fills this from `session`). */
  secrets?: ReadonlyMap<string, BuildSecretSource>;
  /**
   * SSH agents by id, reached through the session (the engine fills this from `session`): `RUN --mount=type=ssh`
   * serves a socket whose connections reach the client's agent (never a path on the daemon's host).
   */
  ssh?: ReadonlyMap<string, SshAgentSource>;
  signal?: AbortSignal;
}

/** A build session named by a build request, and what it offers. */
export interface BuildSessionRef {
  id: string;
  secrets: string[];
  ssh: string[];
}

/** A build secret on the client's side, fetched through the client's build session for each step that mounts it. */
export interface BuildSecretSource {
  read(signal?: AbortSignal): Promise<Buffer>;
}

/** An SSH agent on the client's side, reached through the client's build session. */
export interface SshAgentSource {
  /** Why the agent cannot be reached now (the session is missing or closed), or null when it can. */
  unavailable(): string | null;
  /** A new connection to the agent (throws when the session is gone). */
  connect(): Duplex;
}

/** POST /build/prune's answer (types.BuildCachePruneReport). */
export interface BuildCachePruneReport {
  CachesDeleted: string[] | null;
  SpaceReclaimed: number;
}
