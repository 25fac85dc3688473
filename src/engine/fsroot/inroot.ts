/**
 * Single-file access inside a container or image root from the daemon itself: every path is resolved by the
 * kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) relative to a descriptor of the root, so absolute
 * symlinks and ".." stay inside it whatever the tree holds or a running container changes meanwhile. The last
 * component is then acted on relative to its parent's descriptor (/proc/self/fd/N/name, never followed).
 */
import { closeSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, errnoError, openat2 } from './native.js';

const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

function components(path: string): string[] {
  return posix.normalize('/' + path).split('/').filter((p) => p !== '' && p !== '.');
}

function withRoot<T>(root: string, fn: (rootFd: number) => T): T {
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  try {
    return fn(rootFd);
  } finally {
    closeSync(rootFd);
  }
}

/**
 * The content of a regular file at `path` inside `root` (symlinks followed inside the root); null when it is
 * missing, not a regular file (a FIFO or device must not block or feed the daemon) or unreadable.
 */
export function readFileInRoot(root: string, path: string, maxBytes = 16 * 1024 * 1024): Buffer | null {
  return withRoot(root, (rootFd) => {
    let fd: number;
    try {
      fd = openat2(rootFd, components(path).join('/') || '.', O_NONBLOCK, IN_ROOT);
    } catch {
      return null;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > maxBytes) return null;
      return readFileSync(fd);
    } catch {
      return null;
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * mkdir -p of `path` inside `root` (existing symlinks followed inside the root, dangling ones made real there, as
 * docker's MkdirAllInRoot); new directories get `mode` and, when given, `owner`. Returns whether the path is a
 * directory in the end.
 */
export function mkdirAllInRoot(root: string, path: string, mode = 0o755, owner?: { uid: number; gid: number }): boolean {
  return withRoot(root, (rootFd) => {
    const rootReal = readlinkSync(`/proc/self/fd/${rootFd}`);
    let parts = components(path);
    let links = 0;
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1).join('/');
      let fd: number;
      try {
        fd = openat2(rootFd, sub, O_PATH | O_DIRECTORY, IN_ROOT);
        closeSync(fd);
        continue;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR') return false;
        if (code !== 'ENOENT') throw e;
      }
      // the parent exists (it was made or found in the previous step): act on the name relative to it
      const parent = openat2(rootFd, parts.slice(0, i).join('/') || '.', O_PATH | O_DIRECTORY, IN_ROOT);
      try {
        const at = `/proc/self/fd/${parent}/${parts[i]}`;
        const st = lstatSync(at, { throwIfNoEntry: false });
        if (st?.isSymbolicLink()) {
          // a dangling link: continue with its target, taken inside the root
          if (++links > 40) throw errnoError(osConstants.errno.ELOOP, 'mkdir', path);
          const target = readlinkSync(at);
          const parentReal = readlinkSync(`/proc/self/fd/${parent}`);
          const parentInRoot = parentReal === rootReal ? '/' : parentReal.slice(rootReal.length);
          parts = components(posix.join(target.startsWith('/') ? '/' : parentInRoot, target, ...parts.slice(i + 1)));
          i = -1;
          continue;
        }
        if (st) return false; // a non-directory
        try {
          mkdirSync(at, { mode });
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
          i--; // made meanwhile: look again
          continue;
        }
        if (owner) {
          const dfd = openat2(parent, parts[i]!, O_DIRECTORY | O_NOFOLLOW, IN_ROOT);
          try { fchownSync(dfd, owner.uid, owner.gid); } finally { closeSync(dfd); }
        }
      } finally {
        closeSync(parent);
      }
    }
    return true;
  });
}
