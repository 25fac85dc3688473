import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { chainIdOf, hexOf, isDigest, type Digest } from '../../lib/digest.js';
import { fsyncDir, fsyncFile, writeFileAtomic } from '../../lib/atomic.js';
import { ConflictError, InvalidParameterError, NotFoundError, SystemError } from '../../lib/errors.js';
import type { ExtractedLayer, Layer, LayerStore, MountOptions } from './types.js';
import { extractOffThread } from './extractworker.js';
import type { Compression } from '../../lib/compression.js';
import { tarSplitSize, tarSplitStream } from './tarsplit.js';
import { DRIVERS, driverFactory } from './drivers/index.js';
import type { Driver, RwLayer } from './drivers/types.js';
import { setMode } from './drivers/common.js';
import { isENOENT, missingAs } from '../../lib/fsutil.js';
import { KeyedMutex, Mutex } from '../../lib/sync.js';

/**
 * The layer store: what is the same for every storage driver (drivers/types.ts says what a driver does).
 *
 * Metadata: <dataRoot>/layers/layerdb/sha256/<chainHex>/{diff,size,parent,cache-id,refs} (plain text files as
 * docker's layerdb; `parent` absent for a base layer). A layer directory is written as `.tmp-*` and renamed into
 * place: a layer exists exactly when its directory does. RW layers: <dataRoot>/layers/mounts/<id>/{parent,init}.
 * The driver in use is recorded in <dataRoot>/layers/driver; another one is refused while layers exist.
 *
 * References: `refs` counts external references (register, retain: images, the puller); each child layer and each
 * RW layer implicitly holds one on its parent (derived from the metadata at open, so never lost or doubled by a
 * crash). A layer whose total reaches 0 is deleted (metadata first, then driver data) and its parent is released.
 */

interface Rec {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | null;
  size: number;
  cacheId: string;
  refs: number;
  children: number;
  rw: number;
}

interface RwRec {
  id: string;
  parent: Digest | null;
  /** Whether the RW layer sits on an init layer (docker's <id>-init: mount targets the runtime needs). */
  init: boolean;
}


async function readText(p: string): Promise<string | null> {
  try {
    return (await readFile(p, 'utf8')).trim();
  } catch (e) {
    if (isENOENT(e)) return null;
    throw e;
  }
}

function validId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new InvalidParameterError(`invalid layer id ${JSON.stringify(id)}`);
}

export async function openLayerStore(opts: { dataRoot: string; driver?: string }): Promise<LayerStore> {
  const { dataRoot } = opts;
  await mkdir(join(dataRoot, 'layers', 'layerdb', 'sha256'), { recursive: true, mode: 0o700 });
  await mkdir(join(dataRoot, 'layers', 'mounts'), { recursive: true, mode: 0o700 });
  const driverFile = join(dataRoot, 'layers', 'driver');
  const previous = await readText(driverFile);
  const wanted = opts.driver ?? previous ?? undefined;
  let driver: Driver | null = null;
  if (wanted !== undefined) {
    const factory = driverFactory(wanted);
    if (!factory) {
      throw new InvalidParameterError(`unknown storage driver ${JSON.stringify(wanted)} (supported: ${DRIVERS.map((d) => d.name).join(', ')})`);
    }
    driver = await factory.create(dataRoot);
    if (!driver) throw new SystemError(`storage driver ${wanted}: ${wanted === 'overlay' ? 'overlayfs cannot be mounted here' : 'not supported here'}`);
  } else {
    for (const factory of DRIVERS) {
      driver = await factory.create(dataRoot);
      if (driver) break;
    }
    if (!driver) throw new SystemError('no storage driver works here');
  }
  if (previous !== null && previous !== driver.name) {
    const existing = (await readdir(join(dataRoot, 'layers', 'layerdb', 'sha256'))).filter((n) => !n.startsWith('.'));
    if (existing.length) {
      throw new InvalidParameterError(`storage driver ${driver.name} requested, but ${dataRoot} holds layers of driver ${previous}`);
    }
  }
  if (previous !== driver.name) await writeFileAtomic(driverFile, driver.name);
  const store = new FsLayerStore(dataRoot, driver);
  await store.load();
  return store;
}

class FsLayerStore implements LayerStore {
  private layers = new Map<string, Rec>(); // by chain hex
  private rws = new Map<string, RwRec>();
  /** Mounted RW layers: the merged root and how many mount() calls hold it. */
  private mounts = new Map<string, { path: string; n: number }>();
  private lock = new Mutex();
  /** Mounts and unmounts of one RW layer, one at a time (different layers' run side by side). */
  private mountLock = new KeyedMutex();
  /** Tar sizes of the sidecars, by cache ID (a cache ID names one extraction: its sidecar never changes), counted
   *  by the recorder at extraction or read from the sidecar once (layers from before a restart). Save asked for
   *  it before every save, each time a gunzip and a walk of the whole sidecar (12 MB for Debian). */
  private readonly tarSizes = new Map<string, number>();
  private readonly dbDir: string;
  private readonly mountsDir: string;
  readonly driverName: string;
  readonly graphDriverName: string;

  constructor(private readonly dataRoot: string, private readonly driver: Driver) {
    this.dbDir = join(dataRoot, 'layers', 'layerdb', 'sha256');
    this.mountsDir = join(dataRoot, 'layers', 'mounts');
    this.driverName = driver.name;
    this.graphDriverName = driver.graphDriverName;
  }

  /** The tar-split sidecar of a layer (tarsplit.ts): how its original tar is reproduced for push/save. */
  private splitPath(cacheId: string): string {
    return join(this.dataRoot, 'layers', 'tarsplit', `${cacheId}.gz`);
  }

  // ---------- open ----------

  async load(): Promise<void> {
    await setMode(join(this.dataRoot, 'layers'), 0o700);
    await setMode(join(this.dataRoot, 'layers', 'tarsplit'), 0o700);
    await this.driver.open();
    // metadata: drop half-written and half-deleted directories
    for (const name of await readdir(this.dbDir)) {
      const p = join(this.dbDir, name);
      if (name.startsWith('.')) {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      const chainId = `sha256:${name}`;
      if (!isDigest(chainId)) continue;
      const diff = await readText(join(p, 'diff'));
      const cacheId = await readText(join(p, 'cache-id'));
      if (!diff || !cacheId || !isDigest(diff)) {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      const parent = await readText(join(p, 'parent'));
      const size = Number((await readText(join(p, 'size'))) ?? '0');
      const refs = Number((await readText(join(p, 'refs'))) ?? '0');
      this.layers.set(name, {
        chainId, diffId: diff, parent: parent && isDigest(parent) ? parent : null, size, cacheId, refs, children: 0, rw: 0,
      });
    }
    for (const name of await readdir(this.mountsDir)) {
      const p = join(this.mountsDir, name);
      if (name.startsWith('.')) {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      const parent = await readText(join(p, 'parent'));
      if (parent === null) {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      const init = (await readText(join(p, 'init'))) === '1';
      this.rws.set(name, { id: name, parent: parent && isDigest(parent) ? parent : null, init });
    }
    for (const r of this.layers.values()) {
      if (r.parent) {
        const p = this.layers.get(hexOf(r.parent));
        if (p) p.children++;
      }
    }
    for (const rw of this.rws.values()) {
      if (rw.parent) {
        const p = this.layers.get(hexOf(rw.parent));
        if (p) p.rw++;
      }
    }
    // layers nobody references (a crash between the last release and the deletion)
    for (const r of [...this.layers.values()]) {
      if (this.layers.has(hexOf(r.chainId))) await this.collect(r);
    }
    // driver data that no layer or RW layer references
    const keep = new Set<string>();
    for (const r of this.layers.values()) keep.add(r.cacheId);
    await this.driver.cleanup(keep, new Set(this.rws.keys()));
    // tar-split sidecars of layers that were never registered (a crash mid-extract) or already deleted
    for (const name of await readdir(join(this.dataRoot, 'layers', 'tarsplit')).catch(missingAs([] as string[]))) {
      if (!keep.has(name.replace(/\.gz$/, ''))) await rm(join(this.dataRoot, 'layers', 'tarsplit', name), { force: true });
    }
  }

  // ---------- read-only layers ----------

  private toLayer(r: Rec): Layer {
    return { chainId: r.chainId, diffId: r.diffId, parent: r.parent, size: r.size, cacheId: r.cacheId };
  }

  private rec(chainId: Digest): Rec {
    const r = this.layers.get(hexOf(chainId));
    if (!r) throw new NotFoundError(`layer ${chainId}: not found`);
    return r;
  }

  /** The cache IDs of `chainId` and its ancestors, top first (empty for null). */
  private chainCacheIds(chainId: Digest | null): string[] {
    const out: string[] = [];
    for (let c = chainId; c; c = this.rec(c).parent) out.push(this.rec(c).cacheId);
    return out;
  }

  async get(chainId: Digest): Promise<Layer | null> {
    const r = this.layers.get(hexOf(chainId));
    return r ? this.toLayer(r) : null;
  }

  async has(chainId: Digest): Promise<boolean> {
    return this.layers.has(hexOf(chainId));
  }

  async list(): Promise<Layer[]> {
    return [...this.layers.values()].map((r) => this.toLayer(r));
  }

  async extract(tar: Readable, opts: { compression?: Compression } = {}): Promise<ExtractedLayer> {
    const cacheId = randomBytes(32).toString('hex');
    const dir = await this.driver.prepareExtract(cacheId);
    const side = this.splitPath(cacheId);
    await mkdir(dirname(side), { recursive: true, mode: 0o700 });
    try {
      const { result: res, sidecarLength } = await extractOffThread(tar, dir, side, opts.compression ?? null);
      if (sidecarLength !== null) {
        await fsyncFile(side);
        this.tarSizes.set(cacheId, sidecarLength);
      } else {
        await rm(side, { force: true });
      }
      return { diffId: res.diffId, size: res.size, cacheId };
    } catch (e) {
      await this.discard({ cacheId } as ExtractedLayer);
      throw e;
    }
  }

  /** Drops an extracted layer that will not be registered. */
  async discard(extracted: ExtractedLayer): Promise<void> {
    this.tarSizes.delete(extracted.cacheId);
    await rm(this.splitPath(extracted.cacheId), { force: true });
    await this.driver.discard(extracted.cacheId);
  }

  register(parent: Digest | null, extracted: ExtractedLayer): Promise<Layer> {
    return this.lock.run(async () => {
      const chainId = chainIdOf(parent, extracted.diffId);
      const hex = hexOf(chainId);
      const existing = this.layers.get(hex);
      if (existing) {
        await this.discard(extracted);
        await this.setRefs(existing, existing.refs + 1);
        return this.toLayer(existing);
      }
      const parentRec = parent ? this.rec(parent) : null;
      await this.driver.commit(extracted.cacheId, this.chainCacheIds(parent));
      const tmp = join(this.dbDir, `.tmp-${randomBytes(6).toString('hex')}`);
      await mkdir(tmp);
      await writeFile(join(tmp, 'diff'), extracted.diffId);
      await writeFile(join(tmp, 'size'), String(extracted.size));
      await writeFile(join(tmp, 'cache-id'), extracted.cacheId);
      if (parent) await writeFile(join(tmp, 'parent'), parent);
      await writeFile(join(tmp, 'refs'), '1');
      await fsyncDir(tmp);
      await rename(tmp, join(this.dbDir, hex));
      await fsyncDir(this.dbDir);
      const r: Rec = {
        chainId, diffId: extracted.diffId, parent, size: extracted.size, cacheId: extracted.cacheId, refs: 1, children: 0, rw: 0,
      };
      this.layers.set(hex, r);
      if (parentRec) parentRec.children++;
      return this.toLayer(r);
    });
  }

  private async setRefs(r: Rec, n: number): Promise<void> {
    await writeFileAtomic(join(this.dbDir, hexOf(r.chainId), 'refs'), String(n));
    r.refs = n;
  }

  retain(chainId: Digest): Promise<void> {
    return this.lock.run(async () => {
      const r = this.rec(chainId);
      await this.setRefs(r, r.refs + 1);
    });
  }

  release(chainId: Digest): Promise<Digest[]> {
    return this.lock.run(async () => {
      const r = this.rec(chainId);
      if (r.refs <= 0) throw new ConflictError(`layer ${chainId} has no references to release`);
      await this.setRefs(r, r.refs - 1);
      return this.collect(r);
    });
  }

  /**
   * Start-up repair after a crash: sets each layer's external reference count to what its holders say
   * (`expected`: chain ID → number of images whose top layer it is; nothing else holds references while no
   * pull or build runs) and deletes what is then unreferenced, e.g. layers a killed pull had registered.
   */
  reconcile(expected: ReadonlyMap<Digest, number>): Promise<Digest[]> {
    return this.lock.run(async () => {
      for (const r of this.layers.values()) {
        const want = expected.get(r.chainId) ?? 0;
        if (r.refs !== want) await this.setRefs(r, want);
      }
      const deleted: Digest[] = [];
      for (const r of [...this.layers.values()]) {
        if (this.layers.has(hexOf(r.chainId))) deleted.push(...await this.collect(r));
      }
      return deleted;
    });
  }

  /** Deletes `r` and then its ancestors while nothing references them. */
  private async collect(r: Rec | undefined): Promise<Digest[]> {
    const deleted: Digest[] = [];
    while (r && r.refs + r.children + r.rw <= 0) {
      deleted.push(r.chainId);
      r = await this.deleteChain(r);
    }
    return deleted;
  }

  /** Removes one layer (metadata first, atomically) and returns its parent record with the child reference dropped. */
  private async deleteChain(r: Rec): Promise<Rec | undefined> {
    const hex = hexOf(r.chainId);
    const dead = join(this.dbDir, `.del-${randomBytes(6).toString('hex')}`);
    await rename(join(this.dbDir, hex), dead);
    await fsyncDir(this.dbDir);
    this.layers.delete(hex);
    this.tarSizes.delete(r.cacheId);
    await this.driver.remove(r.cacheId);
    await rm(this.splitPath(r.cacheId), { force: true });
    await rm(dead, { recursive: true, force: true });
    if (!r.parent) return undefined;
    const p = this.layers.get(hexOf(r.parent));
    if (p) p.children--;
    return p;
  }

  async chainSize(chainId: Digest | null): Promise<number> {
    let total = 0;
    let c = chainId;
    while (c) {
      const r = this.rec(c);
      total += r.size;
      c = r.parent;
    }
    return total;
  }

  async diffPath(chainId: Digest): Promise<string> {
    return this.driver.diffDir(this.rec(chainId).cacheId);
  }

  async lookupDirs(chainId: Digest | null): Promise<string[]> {
    return this.driver.lookupDirs(this.chainCacheIds(chainId));
  }

  async graphDriverData(chainId: Digest | null): Promise<Record<string, string> | null> {
    return this.driver.graphDriverData(this.chainCacheIds(chainId));
  }

  async tarStream(chainId: Digest): Promise<Readable> {
    const r = this.rec(chainId);
    // the layer's original bytes when its tar-split sidecar exists (every layer extracted since it was added)
    const side = this.splitPath(r.cacheId);
    if (await stat(side).then(() => true, missingAs(false))) return tarSplitStream(side, this.driver.diffDir(r.cacheId));
    return this.driver.layerTar(r.cacheId, this.chainCacheIds(r.parent));
  }

  async exactTarSize(chainId: Digest): Promise<number | null> {
    const { cacheId } = this.rec(chainId);
    const known = this.tarSizes.get(cacheId);
    if (known !== undefined) return known;
    const side = this.splitPath(cacheId);
    if (!(await stat(side).then(() => true, missingAs(false)))) return null;
    const size = await tarSplitSize(side);
    this.tarSizes.set(cacheId, size);
    return size;
  }

  // ---------- RW layers ----------

  createRW(id: string, parent: Digest | null, opts: { init?: boolean } = {}): Promise<void> {
    validId(id);
    const init = opts.init ?? true;
    return this.lock.run(async () => {
      if (this.rws.has(id)) throw new ConflictError(`RW layer ${id} already exists`);
      const parentRec = parent ? this.rec(parent) : null;
      await this.driver.createRW({ id, parents: this.chainCacheIds(parent), init });
      const tmp = join(this.mountsDir, `.tmp-${randomBytes(6).toString('hex')}`);
      await mkdir(tmp);
      await writeFile(join(tmp, 'parent'), parent ?? '');
      await writeFile(join(tmp, 'init'), init ? '1' : '0');
      await fsyncDir(tmp);
      await rename(tmp, join(this.mountsDir, id));
      await fsyncDir(this.mountsDir);
      this.rws.set(id, { id, parent, init });
      if (parentRec) parentRec.rw++;
    });
  }

  /** Container inspect's `GraphDriver.Data` for the RW layer `id` (null when the driver reports none). */
  rwGraphDriverData(id: string): Record<string, string> | null {
    return this.driver.graphDriverDataRW(this.rwLayer(id));
  }

  /** The RW layer `id` as its driver sees it. */
  private rwLayer(id: string): RwLayer {
    const r = this.rws.get(id);
    if (!r) throw new NotFoundError(`RW layer ${id}: not found`);
    return { id, parents: this.chainCacheIds(r.parent), init: r.init };
  }

  mount(id: string, opts: MountOptions = {}): Promise<string> {
    return this.mountLock.run(id, async () => {
      const rw = this.rwLayer(id);
      const held = this.mounts.get(id);
      if (held) {
        held.n++;
        return held.path;
      }
      const path = await this.driver.mountRW(rw, opts);
      this.mounts.set(id, { path, n: 1 });
      return path;
    });
  }

  unmount(id: string): Promise<void> {
    return this.mountLock.run(id, async () => {
      this.rwLayer(id);
      const held = this.mounts.get(id);
      if (held && held.n > 1) {
        held.n--;
        return;
      }
      this.mounts.delete(id);
      await this.driver.unmountRW(id);
    });
  }

  removeRW(id: string): Promise<void> {
    return this.lock.run(async () => {
      const rw = this.rws.get(id);
      if (!rw) throw new NotFoundError(`RW layer ${id}: not found`);
      await this.mountLock.run(id, async () => {
        try {
          await this.driver.unmountRW(id);
        } catch (e) {
          throw new ConflictError(`RW layer ${id} is in use: ${(e as Error).message}`, { cause: e });
        }
        this.mounts.delete(id);
      });
      const dead = join(this.mountsDir, `.del-${randomBytes(6).toString('hex')}`);
      await rename(join(this.mountsDir, id), dead);
      this.rws.delete(id);
      await this.driver.removeRW(id);
      await rm(dead, { recursive: true, force: true });
      if (rw.parent) {
        const p = this.layers.get(hexOf(rw.parent));
        if (p) {
          p.rw--;
          await this.collect(p);
        }
      }
    });
  }

  /*
   * A container's RW layer is read by the chrooted worker of engine/fsroot (the container may be running and
   * swapping directories for symlinks meanwhile); the drivers call it, and read here only the image's layers,
   * which no container writes.
   */

  async changes(id: string): Promise<{ path: string; kind: 0 | 1 | 2 }[]> {
    return this.driver.changesRW(this.rwLayer(id));
  }

  async diff(id: string): Promise<Readable> {
    return this.driver.diffRW(this.rwLayer(id));
  }

  async rwSize(id: string): Promise<number> {
    return this.driver.sizeRW(this.rwLayer(id));
  }
}
