/**
 * engine/fsroot's door: everything other modules may use to touch paths inside a container's or an image's root.
 * - `inroot.ts`: single files and mkdir -p in the daemon, through openat2(RESOLVE_IN_ROOT) descriptors;
 * - `view.ts`: a container's view (its root with its volumes and binds over it): walked in the daemon through
 *   descriptors, mounted in the worker's own mount namespace;
 * - `cp.ts`: docker cp in that view: single regular files in the daemon, the rest through the worker;
 * - `beneath.ts`: layer directories (commit's and a build step's layer tar, docker diff's listing, sizes) walked
 *   in the daemon through descriptors (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS next to each parent);
 * - `worker.ts`: tree operations (cp of trees, export, copy-up) in a chrooted child;
 * - `lexical.ts`: lexical in-root resolution, only for trees nothing changes while they are read;
 * - `native.ts` (through here: `mountFs`, `unmountFs`, `pidfdOpen`, `pidfdSignal`): mount(2)/umount2(2) for the
 *   daemon's own mounts (RW layers' overlays) without a `mount(8)` process each, and signals to a container's init
 *   through a pidfd without a `runc kill` process each;
 * - `tree.ts`: the tree walks, tar packing and change lists those operations run (in the child or, for image
 *   layers the daemon alone writes, in the daemon).
 */
export { mergedLstat, resolveInLayers, resolveInRoot } from './lexical.js';
export { mkdirAllInRoot, readFileInRoot } from './inroot.js';
export { statInView, type ViewMount } from './view.js';
export { extractIntoView, packFromView } from './cp.js';
export { exportFromRoot, extractIntoRoot, packFromRoot, prestartWorker } from './worker.js';
export { listInRoot, packLayerFromRoot } from './beneath.js';
export { mountFs, pidfdOpen, pidfdSignal, unmountFs } from './native.js';
export {
  isOpaque, isWhiteout, listedSize, naiveChanges, overlayChanges, readXattrs,
  type Change, type PackItem, type TreeEntry, type XattrMap,
} from './tree.js';
