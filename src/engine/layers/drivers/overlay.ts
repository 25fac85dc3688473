import { mkdir, mkdtemp, readFile, readdir, rm, stat, statfs, symlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SystemError } from '../../../lib/errors.js';
import { run } from '../extract.js';
import { listedSize, overlayChanges } from '../../fsroot/index.js';
import { listInRoot, mountFs, packLayerFromRoot, unmountFs } from '../../fsroot/index.js';
import { isMountpoint, populateInit, setMode } from './common.js';
import type { Driver, DriverFactory, RwLayer } from './types.js';
import type { MountOptions } from '../types.js';
import { missingAs } from '../../../lib/fsutil.js';

/**
 * overlay: the kernel's overlayfs, laid out as dockerd's overlay2.
 *
 * <dataRoot>/overlay/<cacheId>/diff   a read-only layer's own files (overlay form, as extracted)
 * <dataRoot>/overlay/<id>/{upper,work,merged}   an RW layer: the container's writes, overlayfs' work dir, the
 *                                      mount point; `init` (the init layer, lowest above the image) or `lower`
 *                                      (an empty lower dir for a scratch RW layer without init)
 * <dataRoot>/overlay/l/<short>         symlinks to diff dirs, used when the lowerdir option gets too long for
 *                                      one page (the mount then runs with the driver's home as cwd)
 */

const LONG_OPTS = 3500;

/** Probes whether overlayfs can be mounted under `dataRoot`; returns the extra options it accepts, or null. */
export async function probeOverlay(dataRoot: string): Promise<string | null> {
  // mkdtemp, not a name from crypto's randomBytes: node:crypto is not loaded at start-up (bench/README.md, memory)
  const dir = await mkdtemp(join(dataRoot, 'overlay-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d), { recursive: true });
    for (const extra of [FULL_OPTS, ',index=off', '']) {
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
    await run('umount', [`${dir}/m`]).catch(() => {}); // not mounted: the probe unmounted it or never mounted
    await rm(dir, { recursive: true, force: true }).catch(() => {}); // what is left goes at the next start (create)
  }
}

/** The mount options the driver adds when the kernel has the features (no inode index, no metacopy, no redirects). */
export const FULL_OPTS = ',index=off,metacopy=off,redirect_dir=off';

/**
 * statfs types of backing filesystems overlayfs takes for its upper, work and lower dirs with d_type and trusted
 * xattrs always there: ext4 (and ext2/3), btrfs, tmpfs. Others (xfs, which lacks d_type when made with ftype=0;
 * overlay, aufs, ecryptfs, nfs and fuse, which overlayfs refuses as an upper dir; anything unknown) go through the
 * mount probe.
 */
const PLAIN_BACKING = new Set([0xef53, 0x9123683e, 0x01021994]);
const CAP_SYS_ADMIN = 21n;

/** What the kernel says about overlayfs, read from /proc and /sys (see `overlayVerdict`). */
export interface OverlayFacts {
  /** /proc/filesystems. */
  filesystems: string;
  /** statfs(2) f_type of the data root's filesystem. */
  fsType: number;
  /** The names in /sys/module/overlay/parameters (empty when the module is not loaded). */
  params: readonly string[];
  /** /proc/self/status. */
  status: string;
  /** /proc/self/uid_map. */
  uidMap: string;
}

/**
 * The mount options overlayfs takes under the data root when the kernel's own answers settle it without a mount,
 * or null when they do not (then `probeOverlay` mounts one). Settled means: overlay is a registered filesystem with
 * the index, metacopy and redirect_dir parameters (so the options in FULL_OPTS parse), the data root is on a
 * plain backing filesystem (PLAIN_BACKING), and the daemon holds CAP_SYS_ADMIN in the host's user namespace (the
 * identity uid map), which mounting overlayfs takes. A fresh daemon then starts no process at start (three fewer)
 * and maps no koffi until work needs it (~1.6 MB of its and libstdc++'s pages; bench/README.md, memory).
 */
export function overlayVerdict(f: OverlayFacts): string | null {
  if (!f.filesystems.split('\n').some((l) => l.split('\t').pop()?.trim() === 'overlay')) return null;
  if (!['index', 'metacopy', 'redirect_dir'].every((p) => f.params.includes(p))) return null;
  if (!PLAIN_BACKING.has(f.fsType)) return null;
  const cap = /^CapEff:\s*([0-9a-f]+)$/m.exec(f.status);
  if (!cap || ((BigInt(`0x${cap[1]}`) >> CAP_SYS_ADMIN) & 1n) === 0n) return null;
  if (f.uidMap.trim().split(/\s+/).join(' ') !== '0 0 4294967295') return null;
  return FULL_OPTS;
}

/** The facts `overlayVerdict` weighs, read for `dataRoot`; null when one cannot be read. */
export async function readOverlayFacts(dataRoot: string): Promise<OverlayFacts | null> {
  try {
    const [filesystems, fs, params, status, uidMap] = await Promise.all([
      readFile('/proc/filesystems', 'utf8'), statfs(dataRoot), readdir('/sys/module/overlay/parameters').catch(() => [] as string[]),
      readFile('/proc/self/status', 'utf8'), readFile('/proc/self/uid_map', 'utf8'),
    ]);
    return { filesystems, fsType: Number(fs.type), params, status, uidMap };
  } catch {
    return null;
  }
}

export const overlayDriver: DriverFactory = {
  name: 'overlay',
  async create(dataRoot) {
    // probes a crash interrupted
    for (const name of await readdir(dataRoot)) {
      if (name.startsWith('overlay-probe-')) await rm(join(dataRoot, name), { recursive: true, force: true }).catch(() => {});
    }
    const facts = await readOverlayFacts(dataRoot);
    const extra = (facts && overlayVerdict(facts)) ?? await probeOverlay(dataRoot);
    return extra === null ? null : new OverlayDriver(dataRoot, extra);
  },
};

class OverlayDriver implements Driver {
  readonly name = 'overlay';
  readonly graphDriverName = 'overlay2';
  readonly home: string;

  constructor(private readonly dataRoot: string, private readonly mountOpts: string) {
    this.home = join(dataRoot, 'overlay');
  }

  async open(): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o710 });
    await setMode(this.home, 0o710);
    await setMode(join(this.home, 'l'), 0o700);
    for (const name of await readdir(this.home)) if (name !== 'l') await setMode(join(this.home, name), 0o710);
  }

  async cleanup(layers: ReadonlySet<string>, rws: ReadonlySet<string>): Promise<void> {
    for (const name of await readdir(this.home)) {
      if (name === 'l' || layers.has(name) || rws.has(name)) continue;
      const p = join(this.home, name);
      await run('umount', [join(p, 'merged')]).catch(() => {}); // usually not mounted; if it is and stays, rm fails
      await rm(p, { recursive: true, force: true });
    }
    const l = join(this.home, 'l');
    for (const name of await readdir(l).catch(missingAs([] as string[]))) {
      const target = await stat(join(l, name)).catch(missingAs(null));
      if (!target) await rm(join(l, name), { force: true });
    }
  }

  // ---- read-only layers

  diffDir(cacheId: string): string {
    return join(this.home, cacheId, 'diff');
  }

  async prepareExtract(cacheId: string): Promise<string> {
    await mkdir(join(this.home, cacheId), { recursive: true, mode: 0o710 });
    const dir = this.diffDir(cacheId);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async commit(): Promise<void> {
    // the extracted directory is the layer
  }

  async discard(cacheId: string): Promise<void> {
    await rm(join(this.home, cacheId), { recursive: true, force: true });
  }

  async remove(cacheId: string): Promise<void> {
    await rm(join(this.home, cacheId), { recursive: true, force: true });
  }

  lookupDirs(chain: readonly string[]): string[] {
    return chain.map((c) => this.diffDir(c));
  }

  layerTar(cacheId: string): Promise<Readable> {
    return packLayerFromRoot(this.diffDir(cacheId), null);
  }

  graphDriverData(chain: readonly string[]): Record<string, string> | null {
    if (!chain.length) return null;
    const data: Record<string, string> = {};
    if (chain.length > 1) data.LowerDir = chain.slice(1).map((c) => this.diffDir(c)).join(':');
    data.MergedDir = join(this.home, chain[0]!, 'merged');
    data.UpperDir = this.diffDir(chain[0]!);
    data.WorkDir = join(this.home, chain[0]!, 'work');
    return data;
  }

  // ---- read-write layers

  private upperDir(id: string): string {
    return join(this.home, id, 'upper');
  }

  private merged(id: string): string {
    return join(this.home, id, 'merged');
  }

  /** The lower dirs of an RW layer's mount, top first (init layer, then the chain). */
  private rwLowers(rw: RwLayer): string[] {
    const dir = join(this.home, rw.id);
    const out = rw.parents.map((c) => this.diffDir(c));
    if (rw.init) out.unshift(join(dir, 'init'));
    if (out.length === 0) out.push(join(dir, 'lower'));
    return out;
  }

  /** As dockerd's overlay2: the init layer and the image's chain below, the container's own dirs. */
  graphDriverDataRW(rw: RwLayer): Record<string, string> | null {
    const dir = join(this.home, rw.id);
    return { LowerDir: this.rwLowers(rw).join(':'), MergedDir: join(dir, 'merged'), UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work') };
  }

  async createRW(rw: RwLayer): Promise<void> {
    const dir = join(this.home, rw.id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o710 });
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(dir, d), { recursive: true, mode: d === 'work' ? 0o700 : 0o755 });
    if (rw.init) {
      await mkdir(join(dir, 'init'));
      await populateInit(join(dir, 'init'), rw.parents.map((c) => this.diffDir(c)));
    } else if (!rw.parents.length) await mkdir(join(dir, 'lower'));
  }

  private async shortLink(cacheId: string): Promise<string> {
    const name = createHash('sha256').update(cacheId).digest('base64url').replace(/[-_]/g, 'x').slice(0, 16);
    const p = join(this.home, 'l', name);
    try {
      await symlink(`../${cacheId}/diff`, p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(join(this.home, 'l'), { recursive: true, mode: 0o700 });
        await symlink(`../${cacheId}/diff`, p).catch((e2) => {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
        });
      } else if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    return `l/${name}`;
  }

  async mountRW(rw: RwLayer, opts: MountOptions = {}): Promise<string> {
    const id = rw.id;
    const merged = this.merged(id);
    if (await isMountpoint(merged)) return merged;
    const dir = join(this.home, id);
    // a volatile mount leaves work/work/incompat/volatile behind, and overlayfs refuses the next mount while it is
    // there; the layer's last run ended cleanly if we are here (a crash removes an --rm container's layer)
    await rm(join(dir, 'work', 'work', 'incompat'), { recursive: true, force: true });
    const volatile = opts.volatile && this.volatileOk !== false ? ',volatile' : '';
    let options = `lowerdir=${this.rwLowers(rw).join(':')},upperdir=${dir}/upper,workdir=${dir}/work${this.mountOpts}`;
    let cwd: string | undefined;
    if (options.length > LONG_OPTS) {
      const short: string[] = [];
      if (rw.init) short.push(`${id}/init`);
      else if (!rw.parents.length) short.push(`${id}/lower`);
      for (const c of rw.parents) short.push(await this.shortLink(c));
      options = `lowerdir=${short.join(':')},upperdir=${id}/upper,workdir=${id}/work${this.mountOpts}`;
      cwd = this.home;
      if (options.length > 4000) throw new SystemError(`RW layer ${id}: too many layers to mount (${short.length})`);
    }
    // relative lower dirs need the driver's home as the cwd: a `mount` process of its own (the daemon's cwd is
    // everyone's); otherwise mount(2) from here, without a process
    if (cwd) await run('mount', ['-t', 'overlay', 'overlay', '-o', options, merged], { cwd });
    else if (!volatile) mountFs('overlay', merged, 'overlay', options);
    else {
      try {
        mountFs('overlay', merged, 'overlay', options + volatile);
        this.volatileOk = true;
      } catch (e) {
        // a kernel before 5.10 does not know `volatile` (EINVAL): mounted without it from now on
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL' || this.volatileOk) throw e;
        this.volatileOk = false;
        mountFs('overlay', merged, 'overlay', options);
      }
    }
    return merged;
  }

  /** Whether overlayfs took the `volatile` option here (unknown until the first volatile mount). */
  private volatileOk: boolean | undefined;

  async unmountRW(id: string): Promise<void> {
    unmountFs(this.merged(id));
  }

  async removeRW(id: string): Promise<void> {
    await rm(join(this.home, id), { recursive: true, force: true });
  }

  async changesRW(rw: RwLayer): Promise<{ path: string; kind: 0 | 1 | 2 }[]> {
    return overlayChanges(await listInRoot(this.upperDir(rw.id), true), this.rwLowers(rw));
  }

  diffRW(rw: RwLayer): Promise<Readable> {
    return packLayerFromRoot(this.upperDir(rw.id), null);
  }

  async sizeRW(rw: RwLayer): Promise<number> {
    return listedSize(await listInRoot(this.upperDir(rw.id), false));
  }
}
