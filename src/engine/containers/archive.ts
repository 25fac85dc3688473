/**
 * docker cp in and out of a container (PUT/GET/HEAD /containers/{id}/archive?path=) and docker export. cp sees
 * the container as its processes do: its root with its volumes, bind mounts and the managed /etc/hosts,
 * /etc/hostname and /etc/resolv.conf over it (running or stopped, as dockerd mounts them for the copy). Every
 * path resolves inside that view through engine/fsroot (symlinks and ".." followed within it, never onto the
 * host), even while a running container swaps a directory for a symlink. The stat goes in
 * X-Docker-Container-Path-Stat; the tar's root entry is the path's base name. export is the root alone, as
 * dockerd's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { exportFromRoot, extractIntoView, packFromView, statInView, type ViewMount } from '../fsroot/index.js';
import type { LayerStore } from '../layers/types.js';
import { parseBind } from './hostconfig.js';
import type { ContainerRecord, ContainerService } from './service.js';
import { discardLogger, type Logger } from '../../lib/log.js';

/** The stream, with the rootfs unmounted once it ends or fails. */
function unmountAfter(s: Readable, unmount: () => void): Readable {
  let done = false;
  const once = () => { if (!done) { done = true; unmount(); } };
  s.on('end', once).on('error', once).on('close', once);
  return s;
}

/** The managed files the runtime binds over the image's (spec.ts writeEtcFiles), once the container has them. */
const ETC_FILES: [string, string][] = [['resolv.conf', '/etc/resolv.conf'], ['hostname', '/etc/hostname'], ['hosts', '/etc/hosts']];

export class ArchiveReader {
  constructor(private readonly c: ContainerService, private readonly layers: LayerStore, private readonly log: Logger = discardLogger) {}

  /**
   * What is mounted over the container's root when it runs: the managed /etc files (unless a user mount takes
   * their place), then its volumes and bind mounts (the recorded mount points; HostConfig.Binds for records
   * older than them). tmpfs mounts hold nothing to copy, as with dockerd.
   */
  mountsOf(r: ContainerRecord): ViewMount[] {
    const user: ViewMount[] = r.MountPoints
      ? r.MountPoints.map((m) => ({ destination: m.Destination, source: m.Source, readonly: !m.RW }))
      : ((Array.isArray(r.HostConfig.Binds) ? r.HostConfig.Binds : []) as string[]).map((b) => parseBind(b))
        .filter((p) => !p.volume).map((p) => ({ destination: p.destination, source: p.source, readonly: !p.rw }));
    const etc = ETC_FILES.map(([f, destination]) => ({ destination, source: join(this.c.dir(r.ID), f), readonly: false }))
      .filter((m) => existsSync(m.source) && !user.some((u) => u.destination === m.destination));
    return [...etc, ...user];
  }

  /**
   * GET /containers/{id}/export: the container's whole filesystem (image layers + its own, whiteouts applied:
   * the overlay's merged view) as one plain tar; the rootfs stays mounted until the stream ends.
   */
  async export(ref: string): Promise<Readable> {
    const r = this.c.get(ref);
    const root = await this.layers.mount(r.ID);
    const unmount = () => { void this.layers.unmount(r.ID).catch(this.log.onError('unmounting after export', { container: r.ID })); };
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
    const unmount = () => { void this.layers.unmount(r.ID).catch(this.log.onError('unmounting after a copy out', { container: r.ID })); };
    try {
      const mounts = this.mountsOf(r);
      if (statOnly) {
        const stat = statInView(root, mounts, path, ref);
        unmount();
        return { stat: { ...stat } };
      }
      const { stat, tar } = await packFromView(root, mounts, path, ref);
      return { stat: { ...stat }, tar: unmountAfter(tar, unmount) };
    } catch (e) {
      unmount();
      throw e;
    }
  }

  /**
   * PUT /containers/{id}/archive?path=: extracts a tar into the directory `path` of the container's filesystem
   * (its RW layer, or the volume or bind mount the path is in, receives the writes); without copyUIDGID the files
   * belong to root, as docker cp does; noOverwriteDirNonDir refuses replacing a directory by a file or the
   * reverse; a read-only mount, or a read-only rootfs outside the mounts, refuses the copy.
   */
  async put(ref: string, path: string, body: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    const r = this.c.get(ref);
    const root = await this.layers.mount(r.ID);
    try {
      await extractIntoView(root, this.mountsOf(r), path, body, { label: ref, ...opts, readonlyRootfs: !!r.HostConfig.ReadonlyRootfs });
    } finally {
      await this.layers.unmount(r.ID).catch(this.log.onError('unmounting after a copy in', { container: r.ID }));
    }
  }
}
