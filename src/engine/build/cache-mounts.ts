/**
 * The directories behind `RUN --mount=type=cache`: one per cache id under `<data-root>/build-cache/`, kept
 * across builds (never part of a layer: the step's container sees it as a bind mount), shared by every step
 * that names the same id. Sharing modes as BuildKit's: `shared` (writers at once), `locked` (one holder at a
 * time, the others wait), `private` (a busy cache gives the newcomer an instance of its own). `prune` empties
 * them all (POST /build/prune), leaving the ones a running step holds.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dirSize, missingAs } from '../../lib/fsutil.js';
import type { CacheSharing } from './dockerfile/run-mounts.js';

export interface CacheMountRequest {
  id: string;
  sharing: CacheSharing;
  /** The root's mode, owner (applied when the cache is made). */
  mode: number;
  uid: number;
  gid: number;
  /** Fills a new (empty) cache: `from=`/`source=` of the mount. */
  seed?: (dir: string) => Promise<void>;
}

export interface HeldCache { path: string; release(): void }

export interface CachePruneReport { CachesDeleted: string[]; SpaceReclaimed: number }

export class CacheMounts {
  /** Instance directory name → holders. */
  private readonly holders = new Map<string, number>();
  /** locked: instance → waiters. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly root: string) {}

  private base(id: string): string { return createHash('sha256').update(id).digest('hex').slice(0, 32); }

  async acquire(req: CacheMountRequest): Promise<HeldCache> {
    const base = this.base(req.id);
    let name = base;
    if (req.sharing === 'private') {
      for (let n = 1; (this.holders.get(name) ?? 0) > 0; n++) name = `${base}-${n}`;
    } else if (req.sharing === 'locked') {
      while ((this.holders.get(name) ?? 0) > 0) {
        await new Promise<void>((r) => { const w = this.waiting.get(name) ?? []; w.push(r); this.waiting.set(name, w); });
      }
    }
    this.holders.set(name, (this.holders.get(name) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.holders.get(name) ?? 1) - 1;
      if (left > 0) this.holders.set(name, left);
      else this.holders.delete(name);
      const w = this.waiting.get(name);
      if (w?.length) { w.shift()!(); if (!w.length) this.waiting.delete(name); }
    };
    try {
      const dir = join(this.root, name);
      const data = join(dir, 'data');
      let fresh = false;
      try { await readdir(data); } catch {
        await mkdir(this.root, { recursive: true, mode: 0o700 });
        await rm(dir, { recursive: true, force: true });
        await mkdir(data, { recursive: true });
        // only the id: the daemon lists caches by it (never anything of the build's secrets)
        await writeFile(join(dir, 'id'), req.id);
        fresh = true;
      }
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

  /** Empties every cache no step holds now. */
  async prune(): Promise<CachePruneReport> {
    const names = await readdir(this.root).catch(missingAs([] as string[]));
    const out: CachePruneReport = { CachesDeleted: [], SpaceReclaimed: 0 };
    for (const n of names.sort()) {
      if ((this.holders.get(n) ?? 0) > 0) continue;
      const dir = join(this.root, n);
      const size = await dirSize(join(dir, 'data'));
      await rm(dir, { recursive: true, force: true });
      out.CachesDeleted.push(n);
      out.SpaceReclaimed += size;
    }
    return out;
  }

  /** The caches there are (id by instance), for tests and `system df`. */
  async list(): Promise<{ name: string; id: string; size: number }[]> {
    const names = await readdir(this.root).catch(missingAs([] as string[]));
    const out: { name: string; id: string; size: number }[] = [];
    for (const n of names.sort()) {
      const id = await readFile(join(this.root, n, 'id'), 'utf8').catch(missingAs(''));
      out.push({ name: n, id, size: await dirSize(join(this.root, n, 'data')) });
    }
    return out;
  }
}
