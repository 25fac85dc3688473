import { chmod, chown, lstat, mkdir, readdir, rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { run } from '../extract.js';
import { isOpaque, isWhiteout, listedSize, naiveChanges, readXattrs } from '../../fsroot/index.js';
import { listInRoot, packLayerFromRoot } from '../../fsroot/index.js';
import { populateInit, setMode } from './common.js';
import type { Driver, DriverFactory, RwLayer } from './types.js';
import { missingAs } from '../../../lib/fsutil.js';

/**
 * vfs: plain directories, no mounts; works on any filesystem (and is the fallback when overlayfs cannot be
 * mounted). Every layer is a full copy of its parent with the layer applied (`cp -a --reflink=auto`), so a
 * layer's diff dir is the whole tree of its chain and changes are found by comparing trees.
 *
 * <dataRoot>/vfs/dir/<cacheId>     a read-only layer: the full tree of its chain
 * <dataRoot>/vfs/staging/<cacheId> an extraction in overlay form, applied onto a copy of the parent at commit
 * <dataRoot>/vfs/dir/<id>-init     an RW layer's base: the chain plus the init layer's entries
 * <dataRoot>/vfs/dir/<id>          an RW layer: a copy of its base the container writes in (its own root)
 */

export const vfsDriver: DriverFactory = {
  name: 'vfs',
  async create(dataRoot) {
    return new VfsDriver(dataRoot);
  },
};

class VfsDriver implements Driver {
  readonly name = 'vfs';
  readonly graphDriverName = 'vfs';
  readonly home: string;
  private readonly staging: string;

  constructor(private readonly dataRoot: string) {
    this.home = join(dataRoot, 'vfs', 'dir');
    this.staging = join(dataRoot, 'vfs', 'staging');
  }

  async open(): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o710 });
    await setMode(this.home, 0o710);
    await setMode(join(this.dataRoot, 'vfs'), 0o710);
  }

  async cleanup(layers: ReadonlySet<string>, rws: ReadonlySet<string>): Promise<void> {
    for (const name of await readdir(this.home)) {
      if (layers.has(name) || rws.has(name) || rws.has(name.replace(/-init$/, ''))) continue;
      await rm(join(this.home, name), { recursive: true, force: true });
    }
    await rm(this.staging, { recursive: true, force: true });
    await mkdir(this.staging, { mode: 0o700 });
  }

  // ---- read-only layers

  diffDir(cacheId: string): string {
    return join(this.home, cacheId);
  }

  async prepareExtract(cacheId: string): Promise<string> {
    const dir = join(this.staging, cacheId);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Builds <vfs>/dir/<cacheId> = a copy of the parent + the staged layer applied. */
  async commit(cacheId: string, parents: readonly string[]): Promise<void> {
    const staging = join(this.staging, cacheId);
    const dst = this.diffDir(cacheId);
    await rm(dst, { recursive: true, force: true });
    await mkdir(dst);
    if (parents.length) await run('cp', ['-a', '--reflink=auto', `${this.diffDir(parents[0]!)}/.`, `${dst}/`]);
    const xs = await readXattrs(staging, 'trusted.overlay.opaque');
    await applyOverlayDir(staging, dst, xs);
    const st = await lstat(staging);
    await chown(dst, st.uid, st.gid);
    await chmod(dst, st.mode & 0o7777);
    await utimes(dst, st.atime, st.mtime);
    await rm(staging, { recursive: true, force: true });
  }

  async discard(cacheId: string): Promise<void> {
    await rm(join(this.staging, cacheId), { recursive: true, force: true });
  }

  async remove(cacheId: string): Promise<void> {
    await rm(this.diffDir(cacheId), { recursive: true, force: true });
  }

  lookupDirs(chain: readonly string[]): string[] {
    return chain.length ? [this.diffDir(chain[0]!)] : [];
  }

  layerTar(cacheId: string, parents: readonly string[]): Promise<Readable> {
    return this.packNaive(this.diffDir(cacheId), parents.length ? this.diffDir(parents[0]!) : null);
  }

  graphDriverData(): Record<string, string> | null {
    return null; // dockerd's vfs driver reports no metadata ("Data": null)
  }

  graphDriverDataRW(): Record<string, string> | null {
    return null; // as for images
  }

  // ---- read-write layers

  /** The tree an RW layer's changes are computed against. */
  private base(rw: RwLayer): string | null {
    if (rw.init) return join(this.home, `${rw.id}-init`);
    return rw.parents.length ? this.diffDir(rw.parents[0]!) : null;
  }

  async createRW(rw: RwLayer): Promise<void> {
    const dir = join(this.home, rw.id);
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}-init`, { recursive: true, force: true });
    const base = rw.init ? `${dir}-init` : dir;
    await mkdir(base, { recursive: true });
    if (rw.parents.length) await run('cp', ['-a', '--reflink=auto', `${this.diffDir(rw.parents[0]!)}/.`, `${base}/`]);
    if (rw.init) {
      await populateInit(base, []);
      await mkdir(dir);
      await run('cp', ['-a', '--reflink=auto', `${base}/.`, `${dir}/`]);
    }
  }

  async mountRW(rw: RwLayer): Promise<string> { // plain directories: nothing to sync differently when volatile
    return join(this.home, rw.id);
  }

  async unmountRW(): Promise<void> {
    // nothing is mounted
  }

  async removeRW(id: string): Promise<void> {
    await rm(join(this.home, id), { recursive: true, force: true });
    await rm(join(this.home, `${id}-init`), { recursive: true, force: true });
  }

  async changesRW(rw: RwLayer): Promise<{ path: string; kind: 0 | 1 | 2 }[]> {
    return naiveChanges(await listInRoot(join(this.home, rw.id), false), this.base(rw));
  }

  diffRW(rw: RwLayer): Promise<Readable> {
    return this.packNaive(join(this.home, rw.id), this.base(rw));
  }

  async sizeRW(rw: RwLayer): Promise<number> {
    const list = await listInRoot(join(this.home, rw.id), false);
    const changed = new Set((await naiveChanges(list, this.base(rw))).filter((c) => c.kind !== 2).map((c) => c.path.slice(1)));
    return listedSize(list.filter((e) => changed.has(e.rel)));
  }

  /** The changes of full tree `upper` over `lower` as an OCI layer tar. */
  private async packNaive(upper: string, lower: string | null): Promise<Readable> {
    const ch = await naiveChanges(await listInRoot(upper, false), lower);
    return packLayerFromRoot(upper, ch.map((c) => ({ rel: c.path.slice(1), whiteout: c.kind === 2 })));
  }
}

/** vfs: applies an overlay-format directory onto a full tree (whiteouts delete, opaque dirs drop inherited content). */
async function applyOverlayDir(src: string, dst: string, xs: Map<string, Map<string, Buffer>>): Promise<void> {
  for (const n of (await readdir(src)).sort()) {
    const s = join(src, n);
    const d = join(dst, n);
    const st = await lstat(s, { bigint: true });
    const ds = await lstat(d).catch(missingAs(null));
    if (isWhiteout(st)) {
      if (ds) await rm(d, { recursive: true, force: true });
      continue;
    }
    if (st.isDirectory()) {
      if (ds && !ds.isDirectory()) await rm(d, { force: true });
      if (!ds || !ds.isDirectory()) await mkdir(d);
      else if (isOpaque(xs, s)) {
        for (const c of await readdir(d)) await rm(join(d, c), { recursive: true, force: true });
      }
      await applyOverlayDir(s, d, xs);
      await chown(d, Number(st.uid), Number(st.gid));
      await chmod(d, Number(st.mode & 0o7777n));
      await utimes(d, new Date(Number(st.atimeMs)), new Date(Number(st.mtimeMs)));
    } else {
      if (ds) await rm(d, { recursive: true, force: true });
      await rename(s, d);
    }
  }
}
