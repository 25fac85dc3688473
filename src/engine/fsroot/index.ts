/**
 * engine/fsroot's door: everything other modules may use to touch paths inside a container's or an image's root.
 * - `inroot.ts`: single files and mkdir -p in the daemon, through openat2(RESOLVE_IN_ROOT) descriptors;
 * - `worker.ts`: tree operations (cp, export, diff, commit's reads, sizes, copy-up) in a chrooted child;
 * - `lexical.ts`: lexical in-root resolution, only for trees nothing changes while they are read;
 * - `tree.ts`: the tree walks, tar packing and change lists those operations run (in the child or, for image
 *   layers the daemon alone writes, in the daemon).
 */
export { mergedLstat, resolveInLayers, resolveInRoot } from './lexical.js';
export { lstatInRoot, mkdirAllInRoot, opaqueDirsInRoot, readFileInRoot, statInRoot } from './inroot.js';
export { exportFromRoot, extractIntoRoot, listInRoot, packFromRoot, packLayerFromRoot, prestartWorker } from './worker.js';
export {
  isOpaque, isWhiteout, listedSize, naiveChanges, overlayChanges, readXattrs,
  type Change, type PackItem, type TreeEntry, type XattrMap,
} from './tree.js';
