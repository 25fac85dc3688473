/**
 * docker cp out of a container (GET/HEAD /containers/{id}/archive?path=): the path resolved inside the container's
 * rootfs (symlinks followed within it, never onto the host), its stat in X-Docker-Container-Path-Stat, and a tar
 * whose root entry is the path's base name.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { NotFoundError } from '../../lib/errors.js';
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

export class ArchiveReader {
  constructor(private readonly c: ContainerService, private readonly layers: LayerStore) {}

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
        const walk = async (p: string, n: string): Promise<void> => {
          const s = await lstat(p);
          const common = { name: n, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: s.mtime };
          if (s.isDirectory()) {
            if (n !== '.') pack.entry({ ...common, type: 'directory' });
            for (const e of (await readdir(p)).sort()) await walk(join(p, e), n === '.' ? e : `${n}/${e}`);
          } else if (s.isSymbolicLink()) {
            pack.entry({ ...common, type: 'symlink', linkname: await readlink(p) });
          } else if (s.isFile()) {
            await new Promise<void>((resolve, reject) => {
              const w = pack.entry({ ...common, type: 'file', size: s.size }, (err) => (err ? reject(err) : resolve()));
              createReadStream(p).on('error', reject).pipe(w);
            });
          }
        };
        try {
          await walk(abs, base);
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
}
