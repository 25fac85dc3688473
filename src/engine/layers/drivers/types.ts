import type { Readable } from 'node:stream';
import type { MountOptions } from '../types.js';

/**
 * A storage driver: how the layer store keeps layers' files on disk and gives containers a root filesystem.
 *
 * The layer store (`../store.ts`) owns everything that is the same for every driver — chain IDs, metadata in
 * `layers/layerdb`, reference counts, locks, mount counts, tar-split sidecars — and calls a Driver only with
 * names it made up itself. A driver keeps no metadata of its own: what it needs about a layer's ancestry comes
 * in each call, so a driver holds no state a crash could tear.
 *
 * Terms:
 * - cache ID: the name of one read-only layer's data in the driver (random, from the store).
 * - a read-only layer: the files of one image layer, never written again once committed. Its *diff dir* holds
 *   the layer in overlay form (whiteouts as 0/0 character devices, opaque directories marked with
 *   `trusted.overlay.opaque=y`) — either the layer's own files (overlay) or the whole tree of the chain up to
 *   and including it, the layer applied (vfs). Which one is the driver's choice; `lookupDirs` tells callers how
 *   to read a chain's tree.
 * - parents: a chain below a layer, as cache IDs, nearest first (`[parent, grandparent, …]`).
 * - a read-write (RW) layer: a container's writable layer on top of a chain, named by the container's ID.
 *   With `init`, docker's init layer (mount targets the image lacks) sits between the chain and the RW layer,
 *   so those targets never show up in the RW layer's changes.
 * - the *upper dir* of an RW layer: the directory the container's writes land in. The store never reads an
 *   RW layer's files itself: every read of one goes through engine/fsroot's chrooted worker, which the driver
 *   calls (the container may be running and swapping directories for symlinks meanwhile).
 *
 * How the store drives it:
 * 1. Import (pull, load, build, commit): `prepareExtract(cacheId)` gives an empty directory; the extractor
 *    writes the tar's files there in overlay form. Then either `commit(cacheId, parents)` makes it a layer on
 *    top of `parents` (the store publishes its metadata afterwards), or `discard(cacheId)` drops it.
 * 2. Stacking: a child is imported the same way with its parent chain as `parents`; the parents are only read.
 * 3. Running a container: `createRW(rw)` makes the RW layer (and its init layer), `mountRW(rw)` returns the
 *    path of the merged root the runtime uses, `unmountRW(id)` undoes it (the store counts nested mounts and
 *    calls these once), `removeRW(id)` deletes the RW layer after an unmount.
 * 4. Committing a container: `diffRW(rw)` streams the RW layer's changes as an OCI layer tar (`.wh.` names),
 *    which the store imports as in 1 on top of the container's chain. `changesRW` lists them as `docker diff`
 *    does, `sizeRW` counts their bytes.
 * 5. Removing an image: `remove(cacheId)` for each layer nothing references any more, top down.
 * 6. Opening after a crash: `open()` creates the driver's directories and repairs their modes; after the store
 *    has read its metadata, `cleanup(layers, rws)` deletes (unmounting first) every directory that is neither a
 *    registered layer nor a live RW layer: half-written imports, half-deleted layers and RW layers.
 *
 * Permissions are dockerd's: the driver's home and each layer's directory 0710 (root may enter, nobody else
 * may list or reach a layer's files), private scratch directories 0700.
 *
 * A new driver is one file exporting a `DriverFactory`, listed in `./index.ts`; `test/unit/layer-drivers.test.ts`
 * runs the conformance cases on every listed driver.
 */
export interface Driver {
  /** The driver's name as daemon.json / `--storage-driver` spell it, and as `docker info` shows it. */
  readonly name: string;
  /** The name image inspect reports in `GraphDriver.Name` (dockerd's overlay2 for overlay). */
  readonly graphDriverName: string;
  /** The directory that holds the driver's layers (under the data root). */
  readonly home: string;

  /** Creates the driver's directories and gives them (and every layer directory) their modes. */
  open(): Promise<void>;
  /** Deletes everything in the driver that is neither one of `layers` (cache IDs) nor one of `rws` (RW layer IDs). */
  cleanup(layers: ReadonlySet<string>, rws: ReadonlySet<string>): Promise<void>;

  // ---- read-only layers

  /** Creates the empty directory an extraction of layer `cacheId` writes into, and returns it. */
  prepareExtract(cacheId: string): Promise<string>;
  /** Makes the extracted `cacheId` a read-only layer on top of `parents`. */
  commit(cacheId: string, parents: readonly string[]): Promise<void>;
  /** Drops an extraction that will not be committed. */
  discard(cacheId: string): Promise<void>;
  /** Deletes a committed read-only layer. */
  remove(cacheId: string): Promise<void>;
  /** The diff dir of a committed layer (see the terms above). */
  diffDir(cacheId: string): string;
  /** Directories whose union, top first, is the tree of the chain `[top, ...parents]` (whiteouts in overlay form). */
  lookupDirs(chain: readonly string[]): string[];
  /** The layer's tar regenerated from its files (used only when the layer has no tar-split sidecar). */
  layerTar(cacheId: string, parents: readonly string[]): Promise<Readable>;
  /** What image inspect reports as `GraphDriver.Data` for an image whose top layer is `chain[0]`, or null. */
  graphDriverData(chain: readonly string[]): Record<string, string> | null;

  // ---- read-write layers

  /** Creates a container's RW layer (and its init layer when `rw.init`). */
  createRW(rw: RwLayer): Promise<void>;
  /**
   * Mounts the RW layer (when not already mounted) and returns the merged root's path. `opts.volatile`: the
   * layer is thrown away after this run (`docker run --rm`): its writes need not survive a crash, so a driver may
   * skip syncing them (overlayfs' `volatile`: no sync of the upper filesystem at unmount).
   */
  mountRW(rw: RwLayer, opts?: MountOptions): Promise<string>;
  /** Unmounts the RW layer's root if it is mounted; fails when it is busy. */
  unmountRW(id: string): Promise<void>;
  /** What container inspect reports as `GraphDriver.Data` for the RW layer (null when the driver has none). */
  graphDriverDataRW(rw: RwLayer): Record<string, string> | null;
  /** Deletes an unmounted RW layer and its init layer. */
  removeRW(id: string): Promise<void>;
  /** The RW layer's changes as `docker diff` lists them: kind 0 modified, 1 added, 2 deleted. */
  changesRW(rw: RwLayer): Promise<{ path: string; kind: 0 | 1 | 2 }[]>;
  /** The RW layer's changes as an OCI layer tar. */
  diffRW(rw: RwLayer): Promise<Readable>;
  /** Bytes of the files the container added or changed. */
  sizeRW(rw: RwLayer): Promise<number>;
}

/** An RW layer as the store describes it to its driver. */
export interface RwLayer {
  id: string;
  /** The image's chain below the RW layer, cache IDs nearest first (empty: scratch). */
  parents: readonly string[];
  /** Whether an init layer sits between the chain and the RW layer. */
  init: boolean;
}

/** How the store makes a driver: null when the driver cannot work under this data root (e.g. no overlayfs). */
export interface DriverFactory {
  readonly name: string;
  create(dataRoot: string): Promise<Driver | null>;
}
