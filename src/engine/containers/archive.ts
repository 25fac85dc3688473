/**
 * docker cp in and out of a container (PUT/GET/HEAD /containers/{id}/archive?path=) and docker export. The
 * container's root is read and written only by the chrooted worker of engine/fsroot: paths resolve inside the
 * root (symlinks and ".." followed within it, never onto the host), even while a running container swaps a
 * directory for a symlink. The stat goes in X-Docker-Container-Path-Stat; the tar's root entry is the path's base
 * name.
 */
import type { Readable } from 'node:stream';
import { ForbiddenError } from '../../lib/errors.js';
import { statInRoot, exportFromRoot, extractIntoRoot, packFromRoot } from '../fsroot/index.js';
import type { LayerStore } from '../layers/types.js';
import type { ContainerService } from './service.js';

/** The stream, with the rootfs unmounted once it ends or fails. */
function unmountAfter(s: Readable, unmount: () => void): Readable {
  let done = false;
  const once = () => { if (!done) { done = true; unmount(); } };
  s.on('end', once).on('error', once).on('close', once);
  return s;
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
    const unmount = () => { void this.layers.unmount(r.ID).catch(() => {}); };
    try {
      const tar = unmountAfter(await exportFromRoot(root), unmount);
      this.c.emit(r, 'export');
      return tar;
    } catch (e) {
      unmount();
      throw e;
    }
  }

  /** The stat (for HEAD and the header) and, unless `statOnly`, the tar stream; the rootfs stays mounted until it ends. */
  async get(ref: string, path: string, statOnly: boolean): Promise<{ stat: Record<string, unknown>; tar?: Readable }> {
    const r = this.c.get(ref);
    const root = await this.layers.mount(r.ID);
    const unmount = () => { void this.layers.unmount(r.ID).catch(() => {}); };
    try {
      if (statOnly) {
        const stat = statInRoot(root, path, ref);
        unmount();
        return { stat: { ...stat } };
      }
      const { stat, tar } = await packFromRoot(root, path, ref);
      return { stat: { ...stat }, tar: unmountAfter(tar, unmount) };
    } catch (e) {
      unmount();
      throw e;
    }
  }

  /**
   * PUT /containers/{id}/archive?path=: extracts a tar into the directory `path` of the container's filesystem
   * (its RW layer receives the writes); without copyUIDGID the files belong to root, as docker cp does;
   * noOverwriteDirNonDir refuses replacing a directory by a file or the reverse.
   */
  async put(ref: string, path: string, body: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    const r = this.c.get(ref);
    if (r.HostConfig.ReadonlyRootfs) throw new ForbiddenError('container rootfs is marked read-only');
    const root = await this.layers.mount(r.ID);
    try {
      await extractIntoRoot(root, path, body, { label: ref, ...opts });
    } finally {
      await this.layers.unmount(r.ID).catch(() => {});
    }
  }
}
