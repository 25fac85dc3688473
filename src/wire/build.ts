/** Engine API 1.41 POST /build. */
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
   * Build secrets by id (`wharf build --secret`): they come in the X-Wharf-Build-Secrets header (never in the
   * query, the context tar or a log) and reach only `RUN --mount=type=secret` steps.
   */
  secrets?: ReadonlyMap<string, Buffer>;
  /**
   * SSH agents by id (`wharf build --ssh`): the path of an agent socket on the daemon's host, from the
   * X-Wharf-Build-Ssh header; `RUN --mount=type=ssh` binds it into the step (a daemon on the client's host only).
   */
  ssh?: ReadonlyMap<string, string>;
  signal?: AbortSignal;
}

/** POST /build/prune's answer (types.BuildCachePruneReport). */
export interface BuildCachePruneReport {
  CachesDeleted: string[] | null;
  SpaceReclaimed: number;
}
