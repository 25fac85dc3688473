import type { Readable } from 'node:stream';
import type { Digest } from '../../lib/digest.js';
import type { Compression } from '../../lib/compression.js';

/**
 * The layer store: read-only layers keyed by chain ID, plus read-write layers for containers.
 *
 * Terms:
 * - diffID: sha256 of a layer's *uncompressed* tar (the OCI changeset).
 * - chainID: identity of a layer *with its parents* (see lib/digest chainIdOf); two images that share
 *   the same first N layers share the same N chain IDs, and each layer is stored once.
 * - cacheID: the storage driver's directory id for a layer (random, so a re-registration after a crash
 *   never collides with a half-written directory).
 * - a read-only layer is *referenced* by every image whose rootfs contains its chain ID (and by every child
 *   layer); `release` drops a reference, and a layer with no references is deleted, top down.
 * - an RW layer (mount id = container id) is a container's writable layer over a read-only chain.
 *
 * Stories:
 * 1. Pull: for each layer (in parallel) `extract` streams the uncompressed tar into a fresh driver directory,
 *    converting OCI whiteouts to the driver's own (overlay: 0/0 char devices and trusted.overlay.opaque);
 *    returns an ExtractedLayer holding diffID and size. Then, in order, `register(parent, extracted)`
 *    publishes it (metadata written atomically, last). An extracted layer that is never registered is
 *    garbage at next start.
 * 2. Run: `createRW(id, chainID)`, `mount(id)` gives a merged rootfs path, `unmount`, `removeRW`.
 * 3. Commit: `diff(id)` streams the RW layer's changes as an OCI tar (whiteouts back to `.wh.` form);
 *    extract+register it on top of the image's top chain ID.
 *
 * Layout (<root> = <data-root>/layers): layerdb/sha256/<chainHex>/{diff,size,parent,cache-id,refs},
 * mounts/<id>/{parent,init}; each driver's data as drivers/<driver>.ts describes (drivers/types.ts: the Driver).
 */
/** How an RW layer is mounted (LayerStore.mount, Driver.mountRW). */
export interface MountOptions {
  /** The layer is thrown away after this run: its writes need not be synced nor survive a crash. */
  volatile?: boolean;
}

export interface Layer {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | null;
  /** Uncompressed size of this layer's own content, bytes (as docker's "size" of a layer). */
  size: number;
  cacheId: string;
}

export interface ExtractedLayer {
  diffId: Digest;
  size: number;
  cacheId: string;
}

export interface LayerStore {
  /** The storage driver's name (`docker info`'s Driver). */
  readonly driverName: string;
  /** The name image inspect reports as `GraphDriver.Name` (overlay2 for overlay, as dockerd). */
  readonly graphDriverName: string;
  get(chainId: Digest): Promise<Layer | null>;
  has(chainId: Digest): Promise<boolean>;
  /**
   * Streams an uncompressed layer tar into a new driver directory, hashing as it goes. Tar entries that
   * would escape the layer (.., absolute links resolved outside) are refused with InvalidParameterError and
   * nothing is kept. With `compression`, `tar` is the compressed blob and is decompressed on the way.
   */
  extract(tar: Readable, opts?: { compression?: Compression }): Promise<ExtractedLayer>;
  /**
   * Publishes an extracted layer on top of `parent` and takes one reference on it. If the chain already
   * exists the extracted directory is dropped and the existing layer gets the reference.
   */
  register(parent: Digest | null, extracted: ExtractedLayer): Promise<Layer>;
  /** Drops an extracted layer that will not be registered (otherwise it is removed at next open). */
  discard?(extracted: ExtractedLayer): Promise<void>;
  /** Takes a reference on an existing chain (another image uses it). */
  retain(chainId: Digest): Promise<void>;
  /** Drops a reference; deletes the layer (and walks to its parent) when none remain. Returns deleted chain IDs. */
  release(chainId: Digest): Promise<Digest[]>;
  /** Sum of the sizes of the chain (the image's virtual size). */
  chainSize(chainId: Digest | null): Promise<number>;
  /** The uncompressed tar of one layer (for push/save), regenerated from the driver directory. */
  tarStream(chainId: Digest): Promise<Readable>;
  /**
   * The byte length of `tarStream(chainId)` when the layer's original tar is kept reproducibly (tar-split
   * sidecar), so callers can stream it without spooling; null when the tar would be regenerated.
   */
  exactTarSize?(chainId: Digest): Promise<number | null>;
  /**
   * Directory holding a read-only layer's files in the driver's format: the layer's own files (overlay) or the
   * whole tree of its chain (vfs). To read an image's tree use lookupDirs.
   */
  diffPath(chainId: Digest): Promise<string>;
  /** Directories whose union, top first, is the tree of the chain (whiteouts in overlay form); [] for null. */
  lookupDirs(chainId: Digest | null): Promise<string[]>;
  /** image inspect's `GraphDriver.Data` for an image whose top layer is `chainId` (null when the driver has none). */
  graphDriverData(chainId: Digest | null): Promise<Record<string, string> | null>;
  /** Container inspect's `GraphDriver.Data` for the RW layer `id` (null when the driver has none); NotFound without it. */
  rwGraphDriverData(id: string): Record<string, string> | null;
  list(): Promise<Layer[]>;
  /**
   * Start-up repair: makes each layer's external reference count equal `expected` (chain ID → number of images
   * holding it) and deletes layers nothing references. Returns the deleted chain IDs.
   */
  reconcile?(expected: ReadonlyMap<Digest, number>): Promise<Digest[]>;

  /**
   * Creates a container's RW layer. Unless `opts.init` is false, an init layer (docker's `<id>-init`) sits between
   * the image and the RW layer holding the mount targets the image lacks (/etc/hosts, /etc/hostname,
   * /etc/resolv.conf, /dev/pts, /dev/shm, /dev/console, /proc, /sys, /.dockerenv, /etc/mtab), so they never appear
   * in changes()/diff(). The RW layer holds a reference on `parent` until removeRW.
   */
  createRW(id: string, parent: Digest | null, opts?: { init?: boolean }): Promise<void>;
  /**
   * Mounts and returns the merged rootfs path; nested calls are counted. `opts.volatile` (a container removed after
   * this run): its writes need not survive a crash (see the Driver's `mountRW`); only the first, mounting, call's
   * options count.
   */
  mount(id: string, opts?: MountOptions): Promise<string>;
  unmount(id: string): Promise<void>;
  removeRW(id: string): Promise<void>;
  /** The container's changes as an OCI layer tar. */
  diff(id: string): Promise<Readable>;
  /** Changes as docker's `diff` lists them: kind 0 modified, 1 added, 2 deleted. */
  changes(id: string): Promise<{ path: string; kind: 0 | 1 | 2 }[]>;
  /** Bytes in the RW layer. */
  rwSize(id: string): Promise<number>;
}
