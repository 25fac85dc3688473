/**
 * docker cp out of a container (GET/HEAD /containers/{id}/archive?path=): the path resolved inside the container's
 * rootfs (symlinks followed within it, never onto the host), its stat in X-Docker-Container-Path-Stat, and a tar
 * whose root entry is the path's base name.
 */
import { chmod, lchown, link, lstat, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { ForbiddenError, InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import { resolveInRoot } from '../build/scope.js';
import type { LayerStore } from '../layers/types.js';
import type { ContainerService } from './service.js';

/** Go's os.FileMode bits for the stat header. */
function goMode(st: import('node:fs').Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 2 ** 27;
  if (st.mode & 0o4000) m |= 2 ** 23;
  if (st.mode & 0o2000) m |= 2 ** 22;
  if (st.mode & 0o1000) m |= 2 ** 20;
  return m >>> 0;
}

function major(rdev: number): number { return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff); }
function minor(rdev: number): number { return (rdev & 0xff) | ((rdev >> 12) & ~0xff & 0xfffff); }

/**
 * Writes the tree at `abs` into `pack` under the name `base` ('.' for "its contents"): directories before their
 * sorted contents, files, symlinks, hard links (a second name of an inode already written becomes a link entry,
 * as docker's archiver does), character/block devices and FIFOs; sockets are skipped.
 */
async function packTree(pack: tarStream.Pack, abs: string, base: string): Promise<void> {
  const seen = new Map<string, string>();
  const add = (h: Partial<tarStream.Header> & { name: string }, body?: Readable): Promise<void> => new Promise((resolve, reject) => {
    if (!body) { pack.entry(h, Buffer.alloc(0), (err) => (err ? reject(err) : resolve())); return; }
    const w = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    // a consumer that goes away mid-entry destroys the entry too: an error to report, not to crash on
    w.on('error', reject);
    body.on('error', reject).pipe(w);
  });
  const walk = async (p: string, n: string): Promise<void> => {
    const s = await lstat(p);
    const common = { name: n, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: s.mtime };
    if (s.isDirectory()) {
      if (n !== '.') await add({ ...common, type: 'directory' });
      for (const e of (await readdir(p)).sort()) await walk(join(p, e), n === '.' ? e : `${n}/${e}`);
      return;
    }
    if (s.nlink > 1 && !s.isSymbolicLink()) {
      const key = `${s.dev}:${s.ino}`;
      const first = seen.get(key);
      if (first !== undefined) { await add({ ...common, type: 'link', linkname: first }); return; }
      seen.set(key, n);
    }
    if (s.isSymbolicLink()) await add({ ...common, type: 'symlink', linkname: await readlink(p) });
    else if (s.isFile()) await add({ ...common, type: 'file', size: s.size }, createReadStream(p));
    else if (s.isCharacterDevice() || s.isBlockDevice()) {
      await add({ ...common, type: s.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(s.rdev), devminor: minor(s.rdev) });
    } else if (s.isFIFO()) await add({ ...common, type: 'fifo' });
  };
  await walk(abs, base);
}

export class ArchiveReader {
  constructor(private readonly c: ContainerService, private readonly layers: LayerStore) {}

  /**
   * GET /containers/{id}/export: the container's whole filesystem (image layers + its own, whiteouts applied:
   * the overlay's merged view) as one plain tar; the rootfs stays mounted until the stream ends.
   */
  async export(ref: string): Promise<Readable> {
    const r = this.c.get(ref);
    const root = await this.layers.mount(r.ID);
    const pack = tarStream.pack();
    void (async () => {
      try {
        await packTree(pack, root, '.');
        pack.finalize();
      } catch (e) {
        pack.destroy(e as Error);
      } finally {
        await this.layers.unmount(r.ID).catch(() => {});
      }
    })();
    return pack as unknown as Readable;
  }

  /** The stat (for HEAD and the header) and, unless `statOnly`, the tar stream; the rootfs stays mounted until it ends. */
  async get(ref: string, path: string, statOnly: boolean): Promise<{ stat: Record<string, unknown>; tar?: Readable }> {
    const r = this.c.get(ref);
    const root = await this.layers.mount(r.ID);
    let handedOff = false;
    try {
      // the last component is not followed (docker cp copies a symlink as a symlink) unless the path ends in "/" or "/."
      const follow = /\/\.?$/.test(path);
      const rel = await resolveInRoot(root, path, follow);
      const abs = join(root, rel);
      const st = await lstat(abs).catch(() => null);
      if (!st) throw new NotFoundError(`Could not find the file ${path} in container ${ref}`);
      const name = posix.basename(posix.normalize('/' + path)) || '/';
      const stat = {
        name, size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(),
        linkTarget: st.isSymbolicLink() ? await readlink(abs) : '',
      };
      if (statOnly) return { stat };
      const pack = tarStream.pack();
      const base = /\/\.$/.test(path) ? '.' : name === '/' ? '.' : name;
      void (async () => {
        try {
          await packTree(pack, abs, base);
          pack.finalize();
        } catch (e) {
          pack.destroy(e as Error);
        } finally {
          await this.layers.unmount(r.ID).catch(() => {});
        }
      })();
      handedOff = true;
      return { stat, tar: pack as unknown as Readable };
    } finally {
      if (!handedOff) await this.layers.unmount(r.ID).catch(() => {});
    }
  }

  /**
   * PUT /containers/{id}/archive?path=: extracts a tar into the directory `path` of the container's filesystem
   * (its RW layer receives the writes). Entries are placed where they resolve inside the container root (a
   * symlink in the tar or in the container never leads outside it); without copyUIDGID the files belong to
   * root, as docker cp does; noOverwriteDirNonDir refuses replacing a directory by a file or the reverse.
   */
  async put(ref: string, path: string, body: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    const r = this.c.get(ref);
    if (r.HostConfig.ReadonlyRootfs) throw new ForbiddenError('container rootfs is marked read-only');
    const root = await this.layers.mount(r.ID);
    try {
      const destRel = await resolveInRoot(root, path, true);
      const st = await lstat(join(root, destRel)).catch(() => null);
      if (!st) throw new NotFoundError(`Could not find the file ${path} in container ${ref}`);
      if (!st.isDirectory()) throw new InvalidParameterError(`extraction point is not a directory`);
      const ex = tarStream.extract();
      const dirTimes: [string, Date][] = [];
      const done = (async () => {
        for await (const entry of ex) {
          const h = entry.header;
          // docker's untar refuses an entry that climbs out of the destination ("breakout")
          const rel = posix.normalize(h.name);
          if (rel === '..' || rel.startsWith('../') || rel.startsWith('/')) {
            entry.resume();
            throw new InvalidParameterError(`${JSON.stringify(h.name)} is outside of ${JSON.stringify(path)}`);
          }
          const parts = rel.split('/').filter((x) => x !== '' && x !== '.');
          if (parts.length === 0) { entry.resume(); continue; }
          const parentRel = await resolveInRoot(root, [destRel, ...parts.slice(0, -1)].join('/'), true);
          const target = join(root, parentRel, parts[parts.length - 1]!);
          const existing = await lstat(target).catch(() => null);
          const isDir = h.type === 'directory';
          if (existing && opts.noOverwriteDirNonDir && existing.isDirectory() !== isDir) {
            entry.resume();
            throw new InvalidParameterError(`cannot overwrite ${existing.isDirectory() ? 'directory' : 'non-directory'} "${'/' + posix.join(parentRel, parts[parts.length - 1]!)}" with ${isDir ? 'directory' : 'non-directory'} "${h.name}"`);
          }
          await mkdir(join(root, parentRel), { recursive: true });
          const mode = (h.mode ?? 0o644) & 0o7777;
          if (isDir) {
            if (existing && !existing.isDirectory()) await rm(target, { force: true });
            if (!existing || !existing.isDirectory()) await mkdir(target);
            await chmod(target, mode);
            if (h.mtime) dirTimes.push([target, h.mtime]);
            entry.resume();
          } else {
            // never write through what is there: a symlink at the target would lead elsewhere
            if (existing) await rm(target, { recursive: existing.isDirectory(), force: true });
            if (h.type === 'symlink') {
              await symlink(h.linkname ?? '', target);
              entry.resume();
            } else if (h.type === 'link') {
              const lt = posix.normalize('/' + (h.linkname ?? '')).split('/').filter(Boolean);
              const srcRel = await resolveInRoot(root, [destRel, ...lt].join('/'), false);
              await link(join(root, srcRel), target);
              entry.resume();
            } else if (h.type === 'file' || h.type === 'contiguous-file') {
              await pipeline(entry, createWriteStream(target, { mode, flags: 'wx' }));
              await chmod(target, mode);
            } else {
              entry.resume();
              continue;
            }
          }
          const uid = opts.copyUIDGID ? h.uid ?? 0 : 0;
          const gid = opts.copyUIDGID ? h.gid ?? 0 : 0;
          await lchown(target, uid, gid);
          if (!isDir && h.type !== 'symlink' && h.mtime) await utimes(target, h.mtime, h.mtime).catch(() => {});
        }
        for (const [d, t] of dirTimes.reverse()) await utimes(d, t, t).catch(() => {});
      })();
      body.on('error', (e) => ex.destroy(e));
      body.pipe(ex);
      await done;
    } finally {
      await this.layers.unmount(r.ID).catch(() => {});
    }
  }
}
