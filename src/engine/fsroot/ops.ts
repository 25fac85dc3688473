/**
 * What the chrooted tree worker does, once it is inside the root ("/" is the container's root, or an RW layer's
 * upper directory): plain Node fs calls and tar-stream, which the kernel confines to the root whatever symlinks
 * and ".." the tree holds or a running container swaps in meanwhile. Everything here is imported before the
 * chroot (static imports only: nothing may be loaded from the root afterwards).
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import { chmodSync, closeSync, constants as fsc, fchmodSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, realpathSync, rmSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import tarStream from 'tar-stream';
import { InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import { missingAs } from '../../lib/fsutil.js';
import { packTree } from './tree.js';
import { lxattrs } from './native.js';
import type { ViewMount } from './view.js';

/** A request to the worker (one per process). */
export type Request =
  | { op: 'pack'; root: string; path: string; label: string; mounts?: ViewMount[] }
  | { op: 'export'; root: string }
  | { op: 'extract'; root: string; path: string; label: string; noOverwriteDirNonDir: boolean; copyUIDGID: boolean; mounts?: ViewMount[] }
  | { op: 'selftest'; root: string; mounts?: ViewMount[] };

/** The stat docker sends in X-Docker-Container-Path-Stat. */
export interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

/** The owner and mode bits of the path itself (volume copy-up gives them to the volume). */
export interface Owner { uid: number; gid: number; mode: number }

/** Go's os.FileMode bits for the stat header. */
export function goMode(st: import('node:fs').Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 2 ** 27;
  if (st.mode & 0o4000) m |= 2 ** 23;
  if (st.mode & 0o2000) m |= 2 ** 22;
  if (st.mode & 0o1000) m |= 2 ** 20;
  return m >>> 0;
}

async function realOrNull(p: string): Promise<string | null> {
  return realpath(p).catch(missingAs(null));
}

/**
 * docker cp's path: the last component is not followed (a symlink is copied as a symlink) unless the path ends
 * in "/" or "/.". Returns the real path in the chroot and its stat.
 */
async function locate(path: string, label: string): Promise<{ abs: string; st: import('node:fs').Stats; stat: PathStat }> {
  const follow = /\/\.?$/.test(path);
  const clean = posix.normalize('/' + path);
  let abs: string | null;
  if (follow || clean === '/') abs = await realOrNull(clean);
  else {
    const dir = await realOrNull(posix.dirname(clean));
    abs = dir === null ? null : posix.join(dir, posix.basename(clean));
  }
  const st = abs === null ? null : await lstat(abs).catch(missingAs(null));
  if (!abs || !st) throw new NotFoundError(`Could not find the file ${path} in container ${label}`);
  const name = posix.basename(clean) || '/';
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = await readlink(abs).catch(missingAs(''));
  return { abs, st, stat: { name, size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

/** The tar of `path` (its contents for "dir/."), root entry named after the path's base name. */
export async function packPath(path: string, label: string, out: Writable, sendStat: (s: PathStat, owner: Owner) => void): Promise<void> {
  const { abs, st, stat } = await locate(path, label);
  sendStat(stat, { uid: st.uid, gid: st.gid, mode: st.mode });
  const pack = tarStream.pack();
  const base = /\/\.$/.test(path) ? './' : stat.name === '/' ? '.' : stat.name;
  const piped = pipeTo(pack, out);
  await packTree(pack, abs, base);
  pack.finalize();
  await piped;
}


/** The whole root as one tar (docker export). */
export async function exportRoot(out: Writable): Promise<void> {
  const pack = tarStream.pack();
  const piped = pipeTo(pack, out);
  await packTree(pack, '/', '.');
  pack.finalize();
  await piped;
}

function pipeTo(pack: tarStream.Pack, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const src = pack as unknown as Readable;
    src.on('error', reject);
    out.on('error', reject);
    src.on('end', () => resolve());
    src.pipe(out, { end: false });
  });
}

/**
 * docker cp in: extracts a tar into the directory `path`. Entries are placed where they resolve (the chroot keeps
 * that inside the root); the last component is never written through (an existing entry is replaced, files are
 * created O_EXCL|O_NOFOLLOW); without copyUIDGID the files belong to root; noOverwriteDirNonDir refuses replacing
 * a directory by a non-directory or the reverse; an entry climbing out of the destination is refused.
 */
export async function extractTar(body: Readable, o: { path: string; label: string; noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
  const dest = await realOrNull(posix.normalize('/' + o.path));
  const st = dest === null ? null : await lstat(dest).catch(missingAs(null));
  if (!dest || !st) throw new NotFoundError(`Could not find the file ${o.path} in container ${o.label}`);
  if (!st.isDirectory()) throw new InvalidParameterError(`extraction point is not a directory`);
  const ex = tarStream.extract();
  const dirTimes: [string, Date][] = [];
  // synchronous fs calls: the worker has nothing else to do, and thread-pool round trips cost more than the calls
  const real = (p: string) => { try { return realpathSync(p); } catch { return null; } };
  const lst = (p: string) => lstatSync(p, { throwIfNoEntry: false }) ?? null;
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      // docker's untar refuses an entry that climbs out of the destination ("breakout")
      const rel = posix.normalize(h.name);
      if (rel === '..' || rel.startsWith('../') || rel.startsWith('/')) {
        entry.resume();
        throw new InvalidParameterError(`${JSON.stringify(h.name)} is outside of ${JSON.stringify(o.path)}`);
      }
      const parts = rel.split('/').filter((x) => x !== '' && x !== '.');
      if (parts.length === 0) { entry.resume(); continue; }
      const last = parts[parts.length - 1]!;
      const parentPath = posix.join(dest, ...parts.slice(0, -1));
      mkdirSync(parentPath, { recursive: true });
      const parent = real(parentPath) ?? parentPath;
      const target = posix.join(parent, last);
      const existing = lst(target);
      const isDir = h.type === 'directory';
      if (existing && o.noOverwriteDirNonDir && existing.isDirectory() !== isDir) {
        entry.resume();
        throw new InvalidParameterError(`cannot overwrite ${existing.isDirectory() ? 'directory' : 'non-directory'} "${target}" with ${isDir ? 'directory' : 'non-directory'} "${h.name}"`);
      }
      const mode = (h.mode ?? 0o644) & 0o7777;
      if (isDir) {
        if (existing && !existing.isDirectory()) rmSync(target, { force: true });
        if (!existing || !existing.isDirectory()) {
          try { mkdirSync(target); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
        }
        chmodSync(target, mode);
        if (h.mtime) dirTimes.push([target, h.mtime]);
        entry.resume();
      } else {
        // never write through what is there: a symlink at the target would lead elsewhere
        if (existing) rmSync(target, { recursive: existing.isDirectory(), force: true });
        if (h.type === 'symlink') {
          symlinkSync(h.linkname ?? '', target);
          entry.resume();
        } else if (h.type === 'link') {
          const lt = posix.normalize('/' + (h.linkname ?? '')).split('/').filter(Boolean);
          const srcDir = real(posix.join(dest, ...lt.slice(0, -1))) ?? posix.join(dest, ...lt.slice(0, -1));
          linkSync(posix.join(srcDir, lt[lt.length - 1] ?? ''), target);
          entry.resume();
        } else if (h.type === 'file' || h.type === 'contiguous-file') {
          const fd = openSync(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
          try {
            for await (const chunk of entry) {
              const b = chunk as Buffer;
              for (let off = 0; off < b.length;) off += writeSync(fd, b, off);
            }
            fchmodSync(fd, mode);
          } finally {
            closeSync(fd);
          }
        } else {
          entry.resume();
          continue;
        }
      }
      const uid = o.copyUIDGID ? h.uid ?? 0 : 0;
      const gid = o.copyUIDGID ? h.gid ?? 0 : 0;
      lchownSync(target, uid, gid);
      if (!isDir && h.type !== 'symlink' && h.mtime) { try { utimesSync(target, h.mtime, h.mtime); } catch { /* as before */ } }
    }
    for (const [d, t] of dirTimes.reverse()) { try { utimesSync(d, t, t); } catch { /* gone */ } }
  })();
  body.on('error', (e) => ex.destroy(e));
  body.pipe(ex);
  try {
    await done;
  } catch (e) {
    body.unpipe(ex);
    body.resume();
    throw e;
  }
}
