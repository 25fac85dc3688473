import { lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile, chown, chmod, utimes } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { chainIdOf, hexOf, isDigest, type Digest } from '../../lib/digest.js';
import { fsyncDir, fsyncFile, writeFileAtomic } from '../../lib/atomic.js';
import { ConflictError, InvalidParameterError, NotFoundError, SystemError } from '../../lib/errors.js';
import type { ExtractedLayer, Layer, LayerStore } from './types.js';
import { run } from './extract.js';
import { extractOffThread } from './extractworker.js';
import type { Compression } from './compression.js';
import { tarSplitSize, tarSplitStream } from './tarsplit.js';
import { isOpaque, isWhiteout, listedSize, naiveChanges, overlayChanges, readXattrs, listInRoot, packLayerFromRoot } from '../fsroot/index.js';
import { isENOENT } from '../../lib/fsutil.js';
import { Mutex } from '../../lib/sync.js';

/**
 * The layer store.
 *
 * Metadata: <dataRoot>/layers/layerdb/sha256/<chainHex>/{diff,size,parent,cache-id,refs} (plain text files as
 * docker's layerdb; `parent` absent for a base layer). A layer directory is written as `.tmp-*` and renamed into
 * place: a layer exists exactly when its directory does. RW layers: <dataRoot>/layers/mounts/<id>/{parent}.
 *
 * References: `refs` counts external references (register, retain: images, the puller); each child layer and each
 * RW layer implicitly holds one on its parent (derived from the metadata at open, so never lost or doubled by a
 * crash). A layer whose total reaches 0 is deleted (metadata first, then driver data) and its parent is released.
 *
 * Drivers:
 * - overlay: <dataRoot>/overlay/<cacheId>/diff (a layer's own files; whiteouts as 0/0 char devices, opaque dirs
 *   with trusted.overlay.opaque=y), <dataRoot>/overlay/<id>/{upper,work,merged} for RW layers
 *   (+ `lower` for scratch), <dataRoot>/overlay/l/<short> symlinks used when the lowerdir option gets long.
 * - vfs: <dataRoot>/vfs/dir/<cacheId> is a full copy of the parent with the layer applied; RW layers are copies
 *   at <dataRoot>/vfs/dir/<id>; extraction stages the layer in <dataRoot>/vfs/staging/<cacheId>.
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

/**
 * Docker's init layer: mount targets created below the container's RW layer when the image lacks them, so that
 * the runtime's bind mounts never show up in `docker diff` / commit.
 */
const INIT_ITEMS: [string, 'dir' | 'file' | 'symlink', string?][] = [
  ['dev/pts', 'dir'],
  ['dev/shm', 'dir'],
  ['proc', 'dir'],
  ['sys', 'dir'],
  ['.dockerenv', 'file'],
  ['etc/resolv.conf', 'file'],
  ['etc/hosts', 'file'],
  ['etc/hostname', 'file'],
  ['dev/console', 'file'],
  ['etc/mtab', 'symlink', '/proc/mounts'],
];

const LONG_OPTS = 3500;

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

async function isMountpoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const esc = path.replace(/[\\ \t\n]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f[4] === esc) return true;
  }
  return false;
}

/** Probes whether overlayfs can be mounted under `dataRoot`; returns the extra options it accepts, or null. */
async function probeOverlay(dataRoot: string): Promise<string | null> {
  const dir = join(dataRoot, `overlay-probe-${randomBytes(4).toString('hex')}`);
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d), { recursive: true });
    for (const extra of [',index=off,metacopy=off,redirect_dir=off', ',index=off', '']) {
      try {
        await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w${extra}`, `${dir}/m`]);
        await run('umount', [`${dir}/m`]);
        return extra;
      } catch {
        // try the next option set
      }
    }
    return null;
  } finally {
    await run('umount', [`${dir}/m`]).catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

export async function openLayerStore(opts: { dataRoot: string; driver?: string }): Promise<LayerStore> {
  const { dataRoot } = opts;
  await mkdir(join(dataRoot, 'layers', 'layerdb', 'sha256'), { recursive: true, mode: 0o700 });
  await mkdir(join(dataRoot, 'layers', 'mounts'), { recursive: true, mode: 0o700 });
  const driverFile = join(dataRoot, 'layers', 'driver');
  const previous = await readText(driverFile);
  let driver = opts.driver ?? previous ?? undefined;
  let overlayOpts = '';
  if (driver !== undefined && driver !== 'overlay' && driver !== 'vfs') {
    throw new InvalidParameterError(`unknown storage driver ${JSON.stringify(driver)} (supported: overlay, vfs)`);
  }
  if (driver === undefined || driver === 'overlay') {
    const extra = await probeOverlay(dataRoot);
    if (extra === null) {
      if (driver === 'overlay') throw new SystemError('storage driver overlay: overlayfs cannot be mounted here');
      driver = 'vfs';
    } else {
      driver = 'overlay';
      overlayOpts = extra;
    }
  }
  if (previous !== null && previous !== driver) {
    const existing = (await readdir(join(dataRoot, 'layers', 'layerdb', 'sha256'))).filter((n) => !n.startsWith('.'));
    if (existing.length) {
      throw new InvalidParameterError(`storage driver ${driver} requested, but ${dataRoot} holds layers of driver ${previous}`);
    }
  }
  if (previous !== driver) await writeFileAtomic(driverFile, driver);
  const store = new FsLayerStore(dataRoot, driver as 'overlay' | 'vfs', overlayOpts);
  await store.load();
  return store;
}

class FsLayerStore implements LayerStore {
  private layers = new Map<string, Rec>(); // by chain hex
  private rws = new Map<string, RwRec>();
  private mounts = new Map<string, number>();
  private lock = new Mutex();
  private mountLock = new Mutex();
  private readonly dbDir: string;
  private readonly mountsDir: string;
  private readonly driverRoot: string;

  constructor(private readonly dataRoot: string, readonly driverName: 'overlay' | 'vfs', private readonly overlayOpts: string) {
    this.dbDir = join(dataRoot, 'layers', 'layerdb', 'sha256');
    this.mountsDir = join(dataRoot, 'layers', 'mounts');
    this.driverRoot = driverName === 'overlay' ? join(dataRoot, 'overlay') : join(dataRoot, 'vfs', 'dir');
  }

  // ---------- paths ----------

  private layerDir(cacheId: string): string {
    return this.driverName === 'overlay' ? join(this.driverRoot, cacheId, 'diff') : join(this.driverRoot, cacheId);
  }

  private stagingDir(cacheId: string): string {
    return this.driverName === 'overlay' ? join(this.driverRoot, cacheId, 'diff') : join(this.dataRoot, 'vfs', 'staging', cacheId);
  }

  /** The tar-split sidecar of a layer (tarsplit.ts): how its original tar is reproduced for push/save. */
  private splitPath(cacheId: string): string {
    return join(this.dataRoot, 'layers', 'tarsplit', `${cacheId}.gz`);
  }

  private rwRoot(id: string): string {
    return this.driverName === 'overlay' ? join(this.driverRoot, id, 'merged') : join(this.driverRoot, id);
  }

  private upperDir(id: string): string {
    return this.driverName === 'overlay' ? join(this.driverRoot, id, 'upper') : join(this.driverRoot, id);
  }

  // ---------- open ----------

  async load(): Promise<void> {
    await mkdir(this.driverRoot, { recursive: true, mode: 0o710 });
    await this.repairModes();
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
    // driver directories that no layer or RW layer references
    const keep = new Set<string>();
    for (const r of this.layers.values()) keep.add(r.cacheId);
    for (const id of this.rws.keys()) {
      keep.add(id);
      keep.add(`${id}-init`);
    }
    for (const name of await readdir(this.driverRoot)) {
      if (name === 'l' || keep.has(name)) continue;
      const p = join(this.driverRoot, name);
      if (this.driverName === 'overlay') await run('umount', [join(p, 'merged')]).catch(() => {});
      await rm(p, { recursive: true, force: true });
    }
    if (this.driverName === 'vfs') {
      await rm(join(this.dataRoot, 'vfs', 'staging'), { recursive: true, force: true });
      await mkdir(join(this.dataRoot, 'vfs', 'staging'), { mode: 0o700 });
    } else {
      const l = join(this.driverRoot, 'l');
      for (const name of await readdir(l).catch(() => [] as string[])) {
        const target = await stat(join(l, name)).catch(() => null);
        if (!target) await rm(join(l, name), { force: true });
      }
    }
    // tar-split sidecars of layers that were never registered (a crash mid-extract) or already deleted
    for (const name of await readdir(join(this.dataRoot, 'layers', 'tarsplit')).catch(() => [] as string[])) {
      if (!keep.has(name.replace(/\.gz$/, ''))) await rm(join(this.dataRoot, 'layers', 'tarsplit', name), { force: true });
    }
    for (const name of await readdir(this.dataRoot)) {
      if (name.startsWith('overlay-probe-')) await rm(join(this.dataRoot, name), { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * dockerd's modes (overlay2 Init and create): the driver root and each layer's directory 0710, `l/` 0700, so
   * no user but root can enter a layer's files; a data root made before these modes gets them here, at open.
   */
  private async repairModes(): Promise<void> {
    const set = (p: string, mode: number) => chmod(p, mode).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    await set(join(this.dataRoot, 'layers'), 0o700);
    await set(join(this.dataRoot, 'layers', 'tarsplit'), 0o700);
    await set(this.driverRoot, 0o710);
    if (this.driverName === 'vfs') {
      await set(join(this.dataRoot, 'vfs'), 0o710);
      return;
    }
    await set(join(this.driverRoot, 'l'), 0o700);
    for (const name of await readdir(this.driverRoot)) if (name !== 'l') await set(join(this.driverRoot, name), 0o710);
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
    const dir = this.stagingDir(cacheId);
    if (this.driverName === 'overlay') await mkdir(dirname(dir), { recursive: true, mode: 0o710 });
    await mkdir(dir, { recursive: true });
    const side = this.splitPath(cacheId);
    await mkdir(dirname(side), { recursive: true, mode: 0o700 });
    try {
      const { result: res, sidecarUsable } = await extractOffThread(tar, dir, side, opts.compression ?? null);
      if (sidecarUsable) await fsyncFile(side);
      else await rm(side, { force: true });
      return { diffId: res.diffId, size: res.size, cacheId };
    } catch (e) {
      await this.discard({ cacheId } as ExtractedLayer);
      throw e;
    }
  }

  /** Drops an extracted layer that will not be registered. */
  async discard(extracted: ExtractedLayer): Promise<void> {
    await rm(this.splitPath(extracted.cacheId), { force: true });
    if (this.driverName === 'overlay') await rm(join(this.driverRoot, extracted.cacheId), { recursive: true, force: true });
    else await rm(this.stagingDir(extracted.cacheId), { recursive: true, force: true });
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
      if (this.driverName === 'vfs') await this.vfsMaterialize(parentRec, extracted.cacheId);
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
    await rm(join(this.driverRoot, r.cacheId), { recursive: true, force: true });
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
    return this.layerDir(this.rec(chainId).cacheId);
  }

  async tarStream(chainId: Digest): Promise<Readable> {
    const r = this.rec(chainId);
    // the layer's original bytes when its tar-split sidecar exists (every layer extracted since it was added)
    const side = this.splitPath(r.cacheId);
    if (await stat(side).then(() => true, () => false)) return tarSplitStream(side, this.layerDir(r.cacheId));
    if (this.driverName === 'overlay') return packLayerFromRoot(this.layerDir(r.cacheId), null);
    const lower = r.parent ? this.layerDir(this.rec(r.parent).cacheId) : null;
    return this.packNaive(this.layerDir(r.cacheId), lower);
  }

  async exactTarSize(chainId: Digest): Promise<number | null> {
    const side = this.splitPath(this.rec(chainId).cacheId);
    if (!(await stat(side).then(() => true, () => false))) return null;
    return tarSplitSize(side);
  }

  /** vfs: builds <vfs>/dir/<cacheId> = copy of the parent + the staged layer applied. */
  private async vfsMaterialize(parent: Rec | null, cacheId: string): Promise<void> {
    const staging = this.stagingDir(cacheId);
    const dst = this.layerDir(cacheId);
    await rm(dst, { recursive: true, force: true });
    if (parent) {
      await mkdir(dst);
      await run('cp', ['-a', '--reflink=auto', `${this.layerDir(parent.cacheId)}/.`, `${dst}/`]);
    } else {
      await mkdir(dst);
    }
    const xs = await readXattrs(staging, 'trusted.overlay.opaque');
    await applyOverlayDir(staging, dst, xs);
    const st = await lstat(staging);
    await chown(dst, st.uid, st.gid);
    await chmod(dst, st.mode & 0o7777);
    await utimes(dst, st.atime, st.mtime);
    await rm(staging, { recursive: true, force: true });
  }

  // ---------- RW layers ----------

  createRW(id: string, parent: Digest | null, opts: { init?: boolean } = {}): Promise<void> {
    validId(id);
    const init = opts.init ?? true;
    return this.lock.run(async () => {
      if (this.rws.has(id)) throw new ConflictError(`RW layer ${id} already exists`);
      const parentRec = parent ? this.rec(parent) : null;
      const dir = join(this.driverRoot, id);
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}-init`, { recursive: true, force: true });
      if (this.driverName === 'overlay') {
        await mkdir(dir, { mode: 0o710 });
        for (const d of ['upper', 'work', 'merged']) await mkdir(join(dir, d), { recursive: true, mode: d === 'work' ? 0o700 : 0o755 });
        if (init) {
          await mkdir(join(dir, 'init'));
          await populateInit(join(dir, 'init'), this.lowers(parent));
        } else if (!parentRec) await mkdir(join(dir, 'lower'));
      } else {
        const base = init ? `${dir}-init` : dir;
        await mkdir(base, { recursive: true });
        if (parentRec) await run('cp', ['-a', '--reflink=auto', `${this.layerDir(parentRec.cacheId)}/.`, `${base}/`]);
        if (init) {
          await populateInit(base, []);
          await mkdir(dir);
          await run('cp', ['-a', '--reflink=auto', `${base}/.`, `${dir}/`]);
        }
      }
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

  private rwRec(id: string): RwRec {
    const r = this.rws.get(id);
    if (!r) throw new NotFoundError(`RW layer ${id}: not found`);
    return r;
  }

  /** overlay: the lower dirs of an RW layer's mount, top first (init layer, then the chain). */
  private rwLowers(rw: RwRec): string[] {
    const dir = join(this.driverRoot, rw.id);
    const out = this.lowers(rw.parent);
    if (rw.init) out.unshift(join(dir, 'init'));
    if (out.length === 0) out.push(join(dir, 'lower'));
    return out;
  }

  /** vfs: the tree an RW layer's changes are computed against. */
  private rwBase(rw: RwRec): string | null {
    if (rw.init) return join(this.driverRoot, `${rw.id}-init`);
    return rw.parent ? this.layerDir(this.rec(rw.parent).cacheId) : null;
  }

  /** Lower diff dirs, top first. */
  private lowers(parent: Digest | null): string[] {
    const out: string[] = [];
    let c = parent;
    while (c) {
      const r = this.rec(c);
      out.push(this.layerDir(r.cacheId));
      c = r.parent;
    }
    return out;
  }

  private async shortLink(cacheId: string): Promise<string> {
    const name = createHash('sha256').update(cacheId).digest('base64url').replace(/[-_]/g, 'x').slice(0, 16);
    const p = join(this.driverRoot, 'l', name);
    try {
      await symlink(`../${cacheId}/diff`, p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(join(this.driverRoot, 'l'), { recursive: true, mode: 0o700 });
        await symlink(`../${cacheId}/diff`, p).catch((e2) => {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
        });
      } else if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    return `l/${name}`;
  }

  mount(id: string): Promise<string> {
    return this.mountLock.run(async () => {
      const rw = this.rwRec(id);
      const merged = this.rwRoot(id);
      const n = this.mounts.get(id) ?? 0;
      if (this.driverName === 'vfs') {
        this.mounts.set(id, n + 1);
        return merged;
      }
      if (n > 0 || (await isMountpoint(merged))) {
        this.mounts.set(id, n + 1);
        return merged;
      }
      const dir = join(this.driverRoot, id);
      const lowers = this.rwLowers(rw);
      let options = `lowerdir=${lowers.join(':')},upperdir=${dir}/upper,workdir=${dir}/work${this.overlayOpts}`;
      let cwd: string | undefined;
      if (options.length > LONG_OPTS) {
        const short: string[] = [];
        if (rw.init) short.push(`${id}/init`);
        else if (!rw.parent) short.push(`${id}/lower`);
        let c = rw.parent;
        while (c) {
          const r = this.rec(c);
          short.push(await this.shortLink(r.cacheId));
          c = r.parent;
        }
        options = `lowerdir=${short.join(':')},upperdir=${id}/upper,workdir=${id}/work${this.overlayOpts}`;
        cwd = this.driverRoot;
        if (options.length > 4000) throw new SystemError(`RW layer ${id}: too many layers to mount (${short.length})`);
      }
      await run('mount', ['-t', 'overlay', 'overlay', '-o', options, merged], { cwd });
      this.mounts.set(id, 1);
      return merged;
    });
  }

  unmount(id: string): Promise<void> {
    return this.mountLock.run(async () => {
      this.rwRec(id);
      const n = this.mounts.get(id) ?? 0;
      if (n > 1) {
        this.mounts.set(id, n - 1);
        return;
      }
      this.mounts.delete(id);
      if (this.driverName === 'overlay' && (await isMountpoint(this.rwRoot(id)))) await run('umount', [this.rwRoot(id)]);
    });
  }

  removeRW(id: string): Promise<void> {
    return this.lock.run(async () => {
      const rw = this.rwRec(id);
      await this.mountLock.run(async () => {
        if (this.driverName === 'overlay' && (await isMountpoint(this.rwRoot(id)))) {
          try {
            await run('umount', [this.rwRoot(id)]);
          } catch (e) {
            throw new ConflictError(`RW layer ${id} is in use: ${(e as Error).message}`);
          }
        }
        this.mounts.delete(id);
      });
      const dead = join(this.mountsDir, `.del-${randomBytes(6).toString('hex')}`);
      await rename(join(this.mountsDir, id), dead);
      this.rws.delete(id);
      await rm(join(this.driverRoot, id), { recursive: true, force: true });
      await rm(join(this.driverRoot, `${id}-init`), { recursive: true, force: true });
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
   * swapping directories for symlinks meanwhile); only the image's layers, which no container writes, are read
   * here.
   */

  async changes(id: string): Promise<{ path: string; kind: 0 | 1 | 2 }[]> {
    const rw = this.rwRec(id);
    if (this.driverName === 'vfs') return naiveChanges(await listInRoot(this.upperDir(id), false), this.rwBase(rw));
    return overlayChanges(await listInRoot(this.upperDir(id), true), this.rwLowers(rw));
  }

  async diff(id: string): Promise<Readable> {
    const rw = this.rwRec(id);
    if (this.driverName === 'overlay') return packLayerFromRoot(this.upperDir(id), null);
    return this.packNaive(this.upperDir(id), this.rwBase(rw));
  }

  /** vfs: the changes of full tree `upper` over `lower` as an OCI layer tar. */
  private async packNaive(upper: string, lower: string | null): Promise<Readable> {
    const ch = await naiveChanges(await listInRoot(upper, false), lower);
    return packLayerFromRoot(upper, ch.map((c) => ({ rel: c.path.slice(1), whiteout: c.kind === 2 })));
  }

  async rwSize(id: string): Promise<number> {
    const rw = this.rwRec(id);
    const list = await listInRoot(this.upperDir(id), false);
    if (this.driverName === 'overlay') return listedSize(list);
    const changed = new Set((await naiveChanges(list, this.rwBase(rw))).filter((c) => c.kind !== 2).map((c) => c.path.slice(1)));
    return listedSize(list.filter((e) => changed.has(e.rel)));
  }
}

/** The topmost entry at `rel` among `dirs` (null when absent or whited out). */
async function topmost(dirs: string[], rel: string): Promise<import('node:fs').BigIntStats | null> {
  for (const l of dirs) {
    try {
      const st = await lstat(join(l, rel), { bigint: true });
      return isWhiteout(st) ? null : st;
    } catch {
      // not in this layer
    }
  }
  return null;
}

/**
 * Creates docker's init-layer entries in `target` for those the image (`target` itself, then `lowers`) lacks.
 * Parent directories that exist below get their owner, mode and times copied (as an overlay copy-up would).
 */
async function populateInit(target: string, lowers: string[]): Promise<void> {
  const all = [target, ...lowers];
  for (const [rel, kind, linkTarget] of INIT_ITEMS) {
    if (await topmost(all, rel)) continue;
    const parts = rel.split('/');
    let ok = true;
    for (let i = 1; i < parts.length && ok; i++) {
      const anc = parts.slice(0, i).join('/');
      const mine = await lstat(join(target, anc)).catch(() => null);
      if (mine) {
        ok = mine.isDirectory();
        continue;
      }
      const below = await topmost(lowers, anc);
      if (below && !below.isDirectory()) {
        ok = false;
        continue;
      }
      await mkdir(join(target, anc), { mode: 0o755 });
      if (below) {
        await chown(join(target, anc), Number(below.uid), Number(below.gid));
        await chmod(join(target, anc), Number(below.mode & 0o7777n));
      }
    }
    if (!ok) continue;
    const p = join(target, rel);
    if (kind === 'dir') await mkdir(p, { mode: 0o755 });
    else if (kind === 'file') await writeFile(p, '', { mode: 0o755 });
    else await symlink(linkTarget!, p);
  }
  // directory times last, after their content
  for (const [rel] of INIT_ITEMS) {
    const parts = rel.split('/');
    for (let i = parts.length - 1; i >= 1; i--) {
      const anc = parts.slice(0, i).join('/');
      const below = await topmost(lowers, anc);
      if (below && below.isDirectory() && (await lstat(join(target, anc)).catch(() => null))) {
        await utimes(join(target, anc), new Date(Number(below.atimeMs)), new Date(Number(below.mtimeMs)));
      }
    }
  }
}

/** vfs: applies an overlay-format directory onto a full tree (whiteouts delete, opaque dirs drop inherited content). */
async function applyOverlayDir(src: string, dst: string, xs: Map<string, Map<string, Buffer>>): Promise<void> {
  for (const n of (await readdir(src)).sort()) {
    const s = join(src, n);
    const d = join(dst, n);
    const st = await lstat(s, { bigint: true });
    const ds = await lstat(d).catch(() => null);
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
