/**
 * The directories behind `RUN --mount=type=cache`: one per cache id under `<data-root>/build-cache/`, kept
 * across builds (never part of a layer: the step's container sees it as a bind mount), shared by every step
 * that names the same id. Sharing modes as BuildKit's: `shared` (writers at once), `locked` (one holder at a
 * time, the others wait), `private` (a busy cache gives the newcomer an instance of its own).
 *
 * Each instance is a build-cache record as BuildKit reports its cache mounts (type `exec.cachemount`): `system df`
 * lists them, and `prune` (POST /build/prune) deletes them with BuildKit's rules as dockerd 20.10 passes them on
 * (its toBuildkitPruneInfo): never one a running step holds; `filters` until/unused-for (unused for that long),
 * id (substring: BuildKit's `~=` regexp, taken literally here), parent, type, description, inuse, shared,
 * private; `keep-storage` (the least recently used go first, until the records left take at most that many
 * bytes). `all` adds BuildKit's internal and frontend records, which Wharf does not have.
 *
 * A `locked` cache is handed from holder to waiter in arrival order. A waiter whose build is cancelled (its
 * client went away: the request's signal) leaves the queue at once, so it neither holds up the builds behind it
 * nor takes the cache after the current holder.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dirSize, missingAs } from '../../lib/fsutil.js';
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import { validateFilters, type Filters } from '../../lib/filters.js';
import { parseGoDuration } from '../../lib/go.js';
import type { BuildCacheRecord } from '../../wire/index.js';
import type { Logger } from '../../lib/log.js';
import type { CacheSharing } from './dockerfile/run-mounts.js';
import { BuildCancelledError } from './run-executor.js';

export interface CacheMountRequest {
  id: string;
  sharing: CacheSharing;
  /** The root's mode, owner (applied when the cache is made). */
  mode: number;
  uid: number;
  gid: number;
  /** Fills a new (empty) cache: `from=`/`source=` of the mount. */
  seed?: (dir: string) => Promise<void>;
  /** The record's description (BuildKit's "cached mount TARGET…"). */
  description?: string;
  /** The build's cancellation: a `locked` wait ends with BuildCancelledError (nothing held). */
  signal?: AbortSignal;
}

/** What the daemon keeps beside a cache's data (never anything of the build's secrets). */
interface CacheMeta { id: string; description: string; createdAt: string; lastUsedAt: string | null; usageCount: number }

export interface CachePruneOptions { all?: boolean; filters?: Filters; keepStorage?: number }

/** The filters dockerd 20.10 accepts on POST /build/prune (label and label! are accepted and ignored, as there). */
const PRUNE_FILTERS = ['until', 'unused-for', 'label', 'label!', 'id', 'parent', 'type', 'description', 'inuse', 'shared', 'private'];
const CACHE_FIELDS = ['id', 'parent', 'type', 'description', 'inuse', 'shared', 'private'] as const;

/** A record's field as BuildKit's filter adaptor gives it: booleans are present (as "") only when true. */
function field(r: BuildCacheRecord, name: typeof CACHE_FIELDS[number]): string | undefined {
  switch (name) {
    case 'id': return r.ID;
    case 'parent': return r.Parent ? r.Parent : undefined;
    case 'type': return r.Type;
    case 'description': return r.Description ? r.Description : undefined;
    case 'inuse': return r.InUse ? '' : undefined;
    case 'shared': return r.Shared ? '' : undefined;
    case 'private': return r.Shared ? undefined : '';
  }
}

/** The prune request as BuildKit's PruneInfo: the record filter and the keep duration (ms). */
function pruneMatcher(filters: Filters): { keepMs: number; match: (r: BuildCacheRecord) => boolean } {
  validateFilters(filters, PRUNE_FILTERS);
  const until = filters.until ?? [];
  const unusedFor = filters['unused-for'] ?? [];
  if (until.length && unusedFor.length) throw new InvalidParameterError('conflicting filters: "until" and "unused-for"');
  const key = unusedFor.length ? 'unused-for' : 'until';
  const durations = [...until, ...unusedFor];
  if (durations.length > 1) throw new InvalidParameterError('filters expect only one value');
  let keepMs = 0;
  if (durations.length === 1) {
    try {
      keepMs = parseGoDuration(durations[0]!) / 1e6;
    } catch (e) {
      // dockerd 20.10 does not type this error: a 500
      throw new SystemError(`"${key}" filter expects a duration (e.g., '24h'): ${(e as Error).message}`, { cause: e });
    }
  }
  const tests: ((r: BuildCacheRecord) => boolean)[] = [];
  for (const name of CACHE_FIELDS) {
    const vals = filters[name];
    if (vals === undefined) continue;
    if (vals.length > 1) throw new InvalidParameterError('filters expect only one value');
    const want = vals[0];
    if (want === undefined) tests.push((r) => field(r, name) !== undefined);
    else if (name === 'id') tests.push((r) => r.ID.includes(want));
    else tests.push((r) => field(r, name) === want);
  }
  return { keepMs, match: (r) => tests.every((t) => t(r)) };
}

export interface HeldCache { path: string; release(): void }

export interface CachePruneReport { CachesDeleted: string[]; SpaceReclaimed: number }

export class CacheMounts {
  /** Instance directory name → holders. */
  private readonly holders = new Map<string, number>();
  /** locked: instance → waiters, first come first served (each is handed the cache by the release before it). */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly root: string, private readonly log?: Logger) {}

  private base(id: string): string { return createHash('sha256').update(id).digest('hex').slice(0, 32); }

  /** How many steps wait for the locked cache `id` (for tests). */
  waiters(id: string): number { return this.waiting.get(this.base(id))?.length ?? 0; }

  async acquire(req: CacheMountRequest): Promise<HeldCache> {
    if (req.signal?.aborted) throw new BuildCancelledError();
    const base = this.base(req.id);
    let name = base;
    if (req.sharing === 'private') {
      for (let n = 1; (this.holders.get(name) ?? 0) > 0; n++) name = `${base}-${n}`;
    }
    if (req.sharing === 'locked' && ((this.holders.get(name) ?? 0) > 0 || this.waiting.has(name))) {
      // the release before us hands the cache over (the holder count stays)
      await this.waitTurn(name, req);
    } else {
      this.holders.set(name, (this.holders.get(name) ?? 0) + 1);
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.holders.get(name) ?? 1) - 1;
      const w = this.waiting.get(name);
      if (left === 0 && w?.length) {
        // the last holder hands a locked cache to the first waiter (the count stays 1)
        const next = w.shift()!;
        if (!w.length) this.waiting.delete(name);
        next();
      } else if (left > 0) this.holders.set(name, left);
      else this.holders.delete(name);
    };
    // cancelled while being handed the cache: pass it on
    if (req.signal?.aborted) { release(); throw new BuildCancelledError(); }
    try {
      const dir = join(this.root, name);
      const data = join(dir, 'data');
      let fresh = false;
      try { await readdir(data); } catch {
        await mkdir(this.root, { recursive: true, mode: 0o700 });
        await rm(dir, { recursive: true, force: true });
        await mkdir(data, { recursive: true });
        fresh = true;
      }
      const now = new Date().toISOString();
      const old = fresh ? null : await this.meta(name);
      await this.writeMeta(name, {
        id: req.id, description: old?.description || req.description || '', createdAt: old?.createdAt ?? now,
        lastUsedAt: now, usageCount: (old?.usageCount ?? 0) + 1,
      });
      if (fresh) {
        await chmod(dir, 0o700);
        if (req.seed) await req.seed(data);
        await chown(data, req.uid, req.gid);
        await chmod(data, req.mode);
      }
      return { path: data, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Queues for a locked cache; resolves holding it, rejects (out of the queue) when the build is cancelled. */
  private waitTurn(name: string, req: CacheMountRequest): Promise<void> {
    const signal = req.signal;
    this.log?.debug('RUN --mount=type=cache,sharing=locked: waiting for the cache another step holds', { id: req.id });
    return new Promise<void>((resolve, reject) => {
      const q = this.waiting.get(name) ?? [];
      this.waiting.set(name, q);
      const onAbort = () => {
        const i = q.indexOf(turn);
        if (i < 0) return; // handed over already: acquire() passes it on
        q.splice(i, 1);
        if (!q.length && this.waiting.get(name) === q) this.waiting.delete(name);
        this.log?.debug('RUN --mount=type=cache,sharing=locked: build cancelled while waiting for the cache', { id: req.id });
        reject(new BuildCancelledError());
      };
      const turn = () => { signal?.removeEventListener('abort', onAbort); resolve(); };
      q.push(turn);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async meta(name: string): Promise<CacheMeta> {
    const dir = join(this.root, name);
    const m = await readFile(join(dir, 'meta.json'), 'utf8').then((t) => JSON.parse(t) as Partial<CacheMeta>, missingAs(null));
    // caches made before the metadata file held only their id
    const id = m?.id ?? await readFile(join(dir, 'id'), 'utf8').catch(missingAs(''));
    return { id, description: m?.description ?? '', createdAt: m?.createdAt ?? new Date(0).toISOString(), lastUsedAt: m?.lastUsedAt ?? null, usageCount: m?.usageCount ?? 0 };
  }

  private async writeMeta(name: string, m: CacheMeta): Promise<void> {
    const p = join(this.root, name, 'meta.json');
    await writeFile(`${p}.tmp`, JSON.stringify(m), { mode: 0o600 });
    await rename(`${p}.tmp`, p);
  }

  /** Every cache instance as a build-cache record (`system df`'s BuildCache), oldest first. */
  async records(): Promise<BuildCacheRecord[]> {
    const names = await readdir(this.root).catch(missingAs([] as string[]));
    const out: BuildCacheRecord[] = [];
    for (const n of names.sort()) {
      if (n.endsWith('.tmp') || n.startsWith('.')) continue;
      const m = await this.meta(n);
      out.push({
        ID: n, Parent: '', Type: 'exec.cachemount', Description: m.description || `cached mount with id ${JSON.stringify(m.id)}`,
        InUse: (this.holders.get(n) ?? 0) > 0, Shared: false, Size: await dirSize(join(this.root, n, 'data')),
        CreatedAt: m.createdAt, LastUsedAt: m.lastUsedAt, UsageCount: m.usageCount,
      });
    }
    return out.sort((a, b) => a.CreatedAt.localeCompare(b.CreatedAt) || a.ID.localeCompare(b.ID));
  }

  /** POST /build/prune over the cache mounts (see the module comment for the rules). */
  async prune(opts: CachePruneOptions = {}): Promise<CachePruneReport> {
    const { keepMs, match } = pruneMatcher(opts.filters ?? {});
    const keepBytes = opts.keepStorage ?? 0;
    const all = await this.records();
    const now = Date.now();
    let candidates = all.filter((r) => !r.InUse && match(r)
      && !(keepMs > 0 && r.LastUsedAt !== null && Date.parse(r.LastUsedAt) > now - keepMs));
    let total = all.reduce((n, r) => n + r.Size, 0);
    if (keepBytes > 0) {
      if (total <= keepBytes) candidates = [];
      candidates.sort((a, b) => (a.LastUsedAt ?? '').localeCompare(b.LastUsedAt ?? ''));
    }
    const out: CachePruneReport = { CachesDeleted: [], SpaceReclaimed: 0 };
    for (const r of candidates) {
      if (keepBytes > 0 && total <= keepBytes) break;
      // a step may have taken it since the listing
      if ((this.holders.get(r.ID) ?? 0) > 0) continue;
      const size = await dirSize(join(this.root, r.ID, 'data'));
      await rm(join(this.root, r.ID), { recursive: true, force: true });
      out.CachesDeleted.push(r.ID);
      out.SpaceReclaimed += size;
      total -= size;
    }
    return out;
  }

  /** The caches there are (id by instance), for tests. */
  async list(): Promise<{ name: string; id: string; size: number }[]> {
    return Promise.all((await this.records()).map(async (r) => ({ name: r.ID, id: (await this.meta(r.ID)).id, size: r.Size })));
  }
}
