/** BuildService: the BuildBackend of POST /build over the classic builder. */
import type { Readable } from 'node:stream';
import type { BuildCachePruneReport, BuildCacheRecord, BuildRequest } from '../../wire/index.js';
import type { CachePruneOptions } from './cache-mounts.js';
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import type { Mux } from '../../lib/mux.js';
import { Builder, type BuilderDeps } from './builder.js';
import { BuildSessions } from './sessions.js';

export class BuildService {
  private readonly builder: Builder;
  private readonly sessions = new BuildSessions();
  constructor(deps: BuilderDeps) {
    this.builder = new Builder(deps);
  }

  /** A build naming a session gets the secrets and SSH agents it offers, reached through it at each use. */
  build(context: Readable, opts: BuildRequest, progress: ProgressSink): Promise<string> {
    const { session, ...rest } = opts;
    return this.builder.build(context, session ? { ...rest, ...this.sessions.sources(session) } : rest, progress);
  }

  hasSession(id: string): boolean { return this.sessions.has(id); }

  addSession(id: string, mux: Mux): void { this.sessions.add(id, mux); }

  /**
   * POST /build/prune: the cache mounts' records that `opts` select go (the ones a running step holds stay), and the
   * kept build contexts (unreported cache: they are forgotten by every prune).
   */
  async prune(opts: CachePruneOptions = {}): Promise<BuildCachePruneReport> {
    let r;
    try {
      r = await this.builder.caches.prune(opts);
      await this.builder.contexts.clear();
    } catch (e) {
      // dockerd wraps the builder's error, keeping its type (a bad filter stays a 400)
      const message = `failed to prune build cache: ${(e as Error).message}`;
      if (e instanceof InvalidParameterError) throw new InvalidParameterError(message, { cause: e });
      if (e instanceof SystemError) throw new SystemError(message, { cause: e });
      throw e;
    }
    return { CachesDeleted: r.CachesDeleted.length ? r.CachesDeleted : null, SpaceReclaimed: r.SpaceReclaimed };
  }

  /** `system df`'s BuildCache: the cache mounts. */
  cacheRecords(): Promise<BuildCacheRecord[]> {
    return this.builder.caches.records();
  }
}
