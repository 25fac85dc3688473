/**
 * docker cp in and out of a container's view (`view.ts`): a single regular file is copied by the daemon itself
 * through descriptors of the view's walk (no worker, no extra pipe); everything else (directories, symlinks, any
 * tar entry after the first that is not a plain file at the top) goes through the chrooted worker with the
 * view's mounts.
 *
 * Why in the daemon for single files: the bytes of a large file crossed one more pipe and one more process, and a
 * waiting worker had to be handed the request (issue 12: a 10 MB cp was 1.8–2.4x slower than before the worker).
 * Reading or writing one file through a descriptor whose path was walked component by component without following
 * (the last one created O_EXCL|O_NOFOLLOW next to its parent's descriptor) is as race-free as the chroot.
 */
import { closeSync, constants as fsc, fchmodSync, fchownSync, fstatSync, futimesSync, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { ForbiddenError, InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import { peek } from '../../lib/streams.js';
import type { Owner, PathStat } from './ops.js';
import { fileEntryFromFd } from './tree.js';
import { locateInView, missing, pathStatOf, withView, type Place, type ViewMount, type Walker } from './view.js';
import { extractIntoRoot, packFromRoot } from './worker.js';

/** GET /archive: the stat and the tar of `path` in the view of `mounts` over `root`. */
export async function packFromView(root: string, mounts: ViewMount[], path: string, label: string): Promise<{ stat: PathStat; owner: Owner; tar: Readable }> {
  const local = withView(root, mounts, (w) => {
    const p = locateInView(w, path);
    if (!p) throw new NotFoundError(`Could not find the file ${path} in container ${label}`);
    try {
      // a tree the walk reached without crossing a mount, with none inside it: the worker needs no mounts
      if (!p.st.isFile()) return { worker: p.crossed || w.mountsUnder(p.parts) ? w.canonical : [] };
      const stat = pathStatOf(path, p);
      // read through the walked descriptor (O_NONBLOCK: a FIFO swapped in meanwhile cannot block the daemon)
      const fd = openSync(`/proc/self/fd/${p.fd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
      const st = fstatSync(fd);
      if (!st.isFile() || st.ino !== p.st.ino || st.dev !== p.st.dev) { closeSync(fd); return { worker: w.canonical }; }
      return { stat, st, fd };
    } finally {
      closeSync(p.fd);
    }
  });
  if ('worker' in local) return packFromRoot(root, path, label, local.worker);
  const { stat, st, fd } = local;
  const pack = tarStream.pack();
  const header = { name: stat.name, type: 'file' as const, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  fileEntryFromFd(pack, header, fd).then(() => pack.finalize(), (e: Error) => pack.destroy(e));
  return { stat, owner: { uid: st.uid, gid: st.gid, mode: st.mode }, tar: pack as unknown as Readable };
}

/** The name of a tar header block that is a plain file at the top of the archive (ustar, no prefix); else null. */
function topFileName(h: tarStream.Header): string | null {
  if (h.type !== 'file' && h.type !== 'contiguous-file') return null;
  const name = h.name.replace(/^(\.\/)+/, '');
  if (!name || name === '.' || name === '..' || name.includes('/')) return null;
  return name;
}

/** Whether the first block of a tar is a plain file at the top (typeflag 0, ustar magic, no prefix, no "/"). */
function startsWithTopFile(head: Buffer): boolean {
  if (head.length < 512) return false;
  const type = head[156];
  if (type !== 0x30 && type !== 0) return false;
  if (head.subarray(257, 262).toString('latin1') !== 'ustar' || head[345] !== 0) return false;
  const end = head.indexOf(0);
  const name = head.subarray(0, end < 0 || end > 100 ? 100 : end).toString('latin1').replace(/^(\.\/)+/, '');
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

interface ExtractOptions { label: string; noOverwriteDirNonDir: boolean; copyUIDGID: boolean; readonlyRootfs?: boolean }

/**
 * Writes the top-level file `name` of `h` into the destination directory in the daemon; false (nothing done, the
 * content not read) when the worker must do it: a directory or a mount is in the way.
 */
async function writeTopFile(w: Walker, dest: Place, name: string, entry: Readable, h: tarStream.Header, o: ExtractOptions): Promise<boolean> {
  const viewPath = '/' + [...dest.parts, name].join('/');
  if (w.mountAt([...dest.parts, name])) return false;
  const at = `/proc/self/fd/${dest.fd}/${name}`;
  const existing = lstatSync(at, { throwIfNoEntry: false });
  if (existing?.isDirectory()) {
    if (o.noOverwriteDirNonDir) throw new InvalidParameterError(`cannot overwrite directory "${viewPath}" with non-directory "${h.name}"`);
    return false;
  }
  // never write through what is there: a symlink at the name would lead elsewhere
  if (existing) unlinkSync(at);
  const mode = (h.mode ?? 0o644) & 0o7777;
  const fd = openSync(at, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode & 0o777);
  try {
    for await (const chunk of entry) {
      const b = chunk as Buffer;
      for (let off = 0; off < b.length;) off += writeSync(fd, b, off);
    }
    fchownSync(fd, o.copyUIDGID ? h.uid ?? 0 : 0, o.copyUIDGID ? h.gid ?? 0 : 0);
    fchmodSync(fd, mode);
    if (h.mtime) futimesSync(fd, h.mtime, h.mtime);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * PUT /archive: `body` (a tar) extracted into the directory `path` of the view. Refused as dockerd does: into a
 * read-only mount ("mounted volume is marked read-only"), or outside every mount of a read-only rootfs. Plain
 * files at the top of the tar are written here while they come first; from the first other entry on, the rest
 * goes to the worker, in order.
 */
export async function extractIntoView(root: string, mounts: ViewMount[], path: string, body: Readable, o: ExtractOptions): Promise<void> {
  const { head, stream } = await peek(body, 512);
  await withView(root, mounts, async (w) => {
    let dest: Place;
    try {
      dest = w.resolve(path, true);
    } catch (e) {
      if (missing(e)) throw new NotFoundError(`Could not find the file ${path} in container ${o.label}`);
      throw e;
    }
    try {
      if (!dest.st.isDirectory()) throw new InvalidParameterError('extraction point is not a directory');
      const mount = w.mountOf(dest.parts);
      if (mount?.readonly) throw new InvalidParameterError('mounted volume is marked read-only');
      if (!mount && o.readonlyRootfs) throw new ForbiddenError('container rootfs is marked read-only');
      const worker = (tar: Readable) => extractIntoRoot(root, path, tar, { label: o.label, noOverwriteDirNonDir: o.noOverwriteDirNonDir, copyUIDGID: o.copyUIDGID, mounts: w.canonical });
      if (!startsWithTopFile(head)) return worker(stream);
      const ex = tarStream.extract();
      stream.on('error', (e) => ex.destroy(e));
      stream.pipe(ex);
      let rest: { pack: tarStream.Pack; done: Promise<void> } | null = null;
      try {
        for await (const entry of ex) {
          const h = entry.header;
          if (!rest) {
            const name = topFileName(h);
            if (name !== null && await writeTopFile(w, dest, name, entry as unknown as Readable, h, o)) continue;
            const pack = tarStream.pack();
            rest = { pack, done: worker(pack as unknown as Readable) };
            rest.done.catch(() => {}); // awaited below; a failure also ends the loop through the pack
          }
          const r = rest;
          // the worker failing stops reading the pack: its error ends the wait
          await Promise.race([
            new Promise<void>((resolve, reject) => {
              const into = r.pack.entry({ ...h }, (err) => (err ? reject(err) : resolve()));
              entry.on('error', reject);
              entry.pipe(into);
            }),
            r.done.then(() => new Promise<void>(() => {})),
          ]);
        }
        if (rest) {
          rest.pack.finalize();
          await rest.done;
        }
      } catch (e) {
        stream.unpipe(ex);
        stream.resume();
        if (rest) {
          rest.pack.destroy();
          await rest.done.catch(() => {});
        }
        throw e;
      }
    } finally {
      closeSync(dest.fd);
    }
  });
}
