/**
 * Lexical in-root resolution for trees that no process changes while they are read: a build context (unpacked
 * from a user-supplied tar into a private directory) and image layer directories (read-only once registered).
 * Symlinks are followed *within* the root as if it were `/` (moby's FollowSymlinkInScope), never into the host's
 * filesystem. The result is a path, so it is only as good as the tree's stillness: a container's root (which a
 * running container can change between the check and the use) goes through `inroot.ts` (openat2 descriptors)
 * or the chrooted worker (`worker.ts`), never through these.
 */
import { lstat, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { InvalidParameterError } from '../../lib/errors.js';
import { missingAs } from '../../lib/fsutil.js';

/** How the resolver sees a tree: lstat and readlink of a root-relative path. */
interface TreeView {
  lstat(rel: string): Promise<import('node:fs').Stats | null>;
  readlink(rel: string): Promise<string>;
}

/** The walk both resolvers share: components one by one, symlinks expanded in place, `..` stopping at the root. */
async function resolveIn(view: TreeView, rel: string, followLast: boolean): Promise<string> {
  const pending = posix.normalize('/' + rel).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    if (!followLast && pending.length === 0) { done.push(part); break; }
    const cur = [...done, part].join('/');
    if ((await view.lstat(cur))?.isSymbolicLink()) {
      if (++links > 255) throw new InvalidParameterError(`too many links in ${rel}`);
      const target = await view.readlink(cur);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return done.join('/');
}

/**
 * Resolves a slash path relative to `root`, following symlinks inside the root (absolute targets are taken
 * relative to the root, `..` stops at the root). Returns the root-relative path ('' for the root itself).
 * Missing components are kept as they are. `followLast: false` leaves a symlink in the last component as it is.
 */
export function resolveInRoot(root: string, rel: string, { followLast = true }: { followLast?: boolean } = {}): Promise<string> {
  return resolveIn({
    lstat: (r) => lstat(join(root, r)).catch(missingAs(null)),
    readlink: (r) => readlink(join(root, r)),
  }, rel, followLast);
}

/** lstat in the merged view of layer directories (top first): overlay whiteouts hide what is below. */
export async function mergedLstat(dirs: string[], rel: string): Promise<import('node:fs').Stats | null> {
  const clean = posix.normalize('/' + rel).slice(1);
  if (clean === '') return dirs.length ? lstat(dirs[0]!).catch(missingAs(null)) : null;
  for (const dir of dirs) {
    const s = await lstat(join(dir, clean)).catch(missingAs(null));
    if (s) return s.isCharacterDevice() && s.rdev === 0 ? null : s;
    const wh = await lstat(join(dir, posix.dirname(clean), `.wh.${posix.basename(clean)}`)).catch(missingAs(null));
    if (wh) return null;
  }
  return null;
}

async function mergedReadlink(dirs: string[], rel: string): Promise<string> {
  for (const dir of dirs) {
    const s = await lstat(join(dir, rel)).catch(missingAs(null));
    if (s?.isSymbolicLink()) return readlink(join(dir, rel));
  }
  return '';
}

/** resolveInRoot over the merged view of layer directories (top first). */
export function resolveInLayers(dirs: string[], rel: string, { followLast = true }: { followLast?: boolean } = {}): Promise<string> {
  return resolveIn({ lstat: (r) => mergedLstat(dirs, r), readlink: (r) => mergedReadlink(dirs, r) }, rel, followLast);
}
