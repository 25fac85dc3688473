/**
 * A container's filesystem as its processes see it: its root plus the mounts the runtime adds over it (volumes,
 * bind mounts, the managed /etc/hosts, /etc/hostname and /etc/resolv.conf), as dockerd's `docker cp` sees it (it
 * mounts the volumes over the rootfs for the copy).
 *
 * Two ways of seeing it, one per side:
 * - in the daemon, `resolveInView` walks a path one component at a time through descriptors: each name is opened
 *   relative to its parent's descriptor without following it (openat2 RESOLVE_IN_ROOT, O_NOFOLLOW), a name that is
 *   a mount's destination opens the mount's source instead, symlinks are read and their targets walked the same
 *   way (absolute ones from the view's root, never the host's), and ".." goes back along the path walked (from
 *   a mount's root to its parent in the view). A container swapping a directory for a symlink meanwhile changes
 *   only what is found, never leaves the view.
 * - the chrooted worker (`child.ts`) calls `mountView` before its chroot: a mount namespace of its own, private,
 *   with the sources bind-mounted over their destinations (each destination opened in-root, the mount made on
 *   /proc/self/fd/N), read-only ones remounted read-only; the namespace ends with the process.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { NotFoundError } from '../../lib/errors.js';
import { mkdirAllInRoot } from './inroot.js';
import { goMode, type PathStat } from './ops.js';
import {
  O_DIRECTORY, O_NOFOLLOW, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, bindMount, errnoError, openat2, readlinkFd,
  remountReadonly, unshareMounts,
} from './native.js';

const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/** A mount over a container's root: a host path (trusted: the daemon's volume or a bind source) and where it goes. */
export interface ViewMount { destination: string; source: string; readonly: boolean }

function split(p: string): string[] {
  return p.split('/').filter((x) => x !== '' && x !== '.');
}

/** Shallow destinations first (a mount inside another is made after it), the given order kept otherwise. */
export function sortMounts(mounts: ViewMount[]): ViewMount[] {
  return mounts.map((m, i) => ({ m, i, depth: split(posix.normalize(m.destination)).length }))
    .sort((a, b) => a.depth - b.depth || a.i - b.i).map((x) => x.m);
}

/**
 * Where the walk is: a descriptor (O_PATH) and its path in the view, as components (no symlinks, no ".."); `crossed`:
 * the walk went through a mount (without the mounts the same path would lead elsewhere).
 */
export interface Place { fd: number; parts: string[]; st: Stats; crossed: boolean }

class Walker {
  /** canonical destination ("a/b") → mount; later mounts at the same place win */
  private readonly at = new Map<string, ViewMount>();
  /** The mounts with their canonical destinations, for the worker (it mounts them there, without following). */
  readonly canonical: ViewMount[] = [];

  constructor(private readonly rootFd: number, mounts: ViewMount[]) {
    for (const m of sortMounts(mounts)) {
      const key = this.destinationOf(m.destination);
      this.at.set(key, m);
      this.canonical.push({ ...m, destination: '/' + key });
    }
  }

  /**
   * Where the runtime mounts at `destination`: resolved inside the view made so far (a symlink on the way or at
   * the end is followed, a dangling last one to where it points, as runc does); lexical when a parent is missing.
   */
  private destinationOf(destination: string): string {
    try {
      const p = this.resolve(destination, true);
      closeSync(p.fd);
      return p.parts.join('/');
    } catch { /* missing */ }
    try {
      const p = this.resolve(destination, false);
      try {
        if (!p.st.isSymbolicLink()) return p.parts.join('/');
        const target = readlinkFd(p.fd);
        const base = target.startsWith('/') ? [] : p.parts.slice(0, -1);
        return split(posix.normalize('/' + [...base, ...split(target)].join('/'))).join('/');
      } finally {
        closeSync(p.fd);
      }
    } catch {
      return split(posix.normalize(destination)).join('/');
    }
  }

  /** The mount whose root `parts` is, if any. */
  mountAt(parts: string[]): ViewMount | undefined {
    return this.at.get(parts.join('/'));
  }

  /** The innermost mount holding `parts`, if any. */
  mountOf(parts: string[]): ViewMount | undefined {
    for (let i = parts.length; i > 0; i--) {
      const m = this.at.get(parts.slice(0, i).join('/'));
      if (m) return m;
    }
    return undefined;
  }

  /** Whether a mount's destination is `parts` or below it. */
  mountsUnder(parts: string[]): boolean {
    const pre = parts.join('/');
    for (const k of this.at.keys()) if (pre === '' || k === pre || k.startsWith(pre + '/')) return true;
    return false;
  }

  private crossed = false;

  /** One name in the directory `cur` (at `parts`), never followed; a mount's destination opens its source. */
  private step(cur: number, parts: string[], name: string): number {
    const m = this.at.size ? this.at.get([...parts, name].join('/')) : undefined;
    if (m) { this.crossed = true; return openSync(m.source, O_PATH); }
    try {
      return openat2(cur, name, O_PATH | O_NOFOLLOW, IN_ROOT);
    } catch (e) {
      // a missing parent of a mount's destination (a container never started): made, as the runtime and dockerd
      // make it, next to its parent's descriptor
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !this.parentOfMount([...parts, name])) throw e;
      try { mkdirSync(`/proc/self/fd/${cur}/${name}`, 0o755); } catch (e2) { if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2; }
      return openat2(cur, name, O_PATH | O_NOFOLLOW, IN_ROOT);
    }
  }

  private parentOfMount(parts: string[]): boolean {
    const pre = parts.join('/') + '/';
    for (const k of this.at.keys()) if (k.startsWith(pre)) return true;
    return false;
  }

  /** The directory at canonical `parts`, opened again from the root (each component must be a directory). */
  private reopen(parts: string[]): number {
    let fd = openat2(this.rootFd, '.', O_PATH | O_DIRECTORY, IN_ROOT);
    try {
      for (let i = 0; i < parts.length; i++) {
        const next = this.step(fd, parts.slice(0, i), parts[i]!);
        closeSync(fd);
        fd = next;
        if (!fstatSync(fd).isDirectory()) throw errnoError(osConstants.errno.ENOTDIR, 'open', '/' + parts.join('/'));
      }
      return fd;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** `path` walked in the view; the last component is followed when it is a symlink only if `followLast`. */
  resolve(path: string, followLast: boolean): Place {
    const queue = split(path);
    let parts: string[] = [];
    this.crossed = false;
    let fd = this.reopen([]);
    let links = 0;
    try {
      let st = fstatSync(fd);
      while (queue.length) {
        const name = queue.shift()!;
        if (name === '..') {
          if (parts.length) {
            parts = parts.slice(0, -1);
            const up = this.reopen(parts);
            closeSync(fd);
            fd = up;
            st = fstatSync(fd);
          }
          continue;
        }
        if (!st.isDirectory()) throw errnoError(osConstants.errno.ENOTDIR, 'open', path);
        const next = this.step(fd, parts, name);
        const nst = fstatSync(next);
        if (nst.isSymbolicLink() && (queue.length > 0 || followLast)) {
          const target = readlinkFd(next);
          closeSync(next);
          if (++links > 40) throw errnoError(osConstants.errno.ELOOP, 'open', path);
          queue.unshift(...split(target));
          if (target.startsWith('/')) {
            parts = [];
            const top = this.reopen([]);
            closeSync(fd);
            fd = top;
            st = fstatSync(fd);
          }
          continue;
        }
        closeSync(fd);
        fd = next;
        st = nst;
        parts = [...parts, name];
      }
      return { fd, parts, st, crossed: this.crossed };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }
}

/** Runs `fn` with a walker of the view (`mounts` over `root`); the root's descriptor is closed when it is done (or its promise settles). */
export function withView<T>(root: string, mounts: ViewMount[], fn: (w: Walker) => T): T {
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  let r: T;
  try {
    r = fn(new Walker(rootFd, mounts));
  } catch (e) {
    closeSync(rootFd);
    throw e;
  }
  if (r instanceof Promise) return r.finally(() => closeSync(rootFd)) as T;
  closeSync(rootFd);
  return r;
}
export type { Walker };

/** A walk's error that means "not there" (a missing name, a file on the way, too many links). */
export function missing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/**
 * docker cp's path in the view: the last component is not followed (a symlink is the symlink) unless the path
 * ends in "/" or "/." (then it must be a directory); null when absent. The caller closes `fd`.
 */
export function locateInView(w: Walker, path: string): Place | null {
  const follow = /\/\.?$/.test(path) || split(path).length === 0;
  let p: Place;
  try {
    p = w.resolve(path, follow);
  } catch (e) {
    if (missing(e)) return null;
    throw e;
  }
  if (follow && !p.st.isDirectory()) { closeSync(p.fd); return null; }
  return p;
}

/** docker's X-Docker-Container-Path-Stat of the place found for `path`. */
export function pathStatOf(path: string, p: Place): PathStat {
  const name = posix.basename(posix.normalize('/' + path)) || '/';
  const linkTarget = p.st.isSymbolicLink() ? readlinkFd(p.fd) : '';
  return { name, size: p.st.size, mode: goMode(p.st), mtime: p.st.mtime.toISOString(), linkTarget };
}

/** HEAD /archive: docker's path stat of `path` in the view (in process: a few openat2 calls, no worker). */
export function statInView(root: string, mounts: ViewMount[], path: string, label: string): PathStat {
  return withView(root, mounts, (w) => {
    const p = locateInView(w, path);
    if (!p) throw new NotFoundError(`Could not find the file ${path} in container ${label}`);
    try {
      return pathStatOf(path, p);
    } finally {
      closeSync(p.fd);
    }
  });
}

/**
 * In the chrooted worker, before its chroot: a private mount namespace with `mounts` bind-mounted over `root`
 * (destinations resolved in-root through the mounts made before them, created when missing as dockerd does; a
 * mount whose source is missing or whose destination is of the other kind is left out). Must run before the
 * libuv thread pool starts: unshare gives the calling thread alone the new namespace and root, and the pool's
 * threads, started afterwards, inherit them.
 */
/** Whether libuv's thread pool runs in this process (its threads are named libuv-worker); false once /proc is gone. */
export function poolStarted(): boolean {
  try {
    return readdirSync('/proc/self/task').some((t) => {
      try { return readFileSync(`/proc/self/task/${t}/comm`, 'latin1').startsWith('libuv-worker'); } catch { return false; }
    });
  } catch {
    return false;
  }
}

export function mountView(root: string, mounts: ViewMount[]): void {
  if (poolStarted()) throw new Error('the thread pool started before the mount namespace: its threads would stay outside');
  unshareMounts();
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  try {
    for (const m of sortMounts(mounts)) {
      let dir: boolean;
      try { dir = statSync(m.source).isDirectory(); } catch { continue; }
      const dest = split(posix.normalize(m.destination));
      if (dest.length === 0) continue;
      if (dir) {
        if (!mkdirAllInRoot(root, '/' + dest.join('/'))) continue;
      } else {
        if (!mkdirAllInRoot(root, '/' + dest.slice(0, -1).join('/'))) continue;
        let parent: number;
        try { parent = openat2(rootFd, dest.slice(0, -1).join('/') || '.', O_PATH | O_DIRECTORY, IN_ROOT); } catch { continue; }
        try {
          // an empty file to mount on, never through a symlink's target outside: O_EXCL|O_NOFOLLOW next to the parent
          closeSync(openSync(`/proc/self/fd/${parent}/${dest[dest.length - 1]}`, 'wx', 0o644));
        } catch { /* there already */ } finally {
          closeSync(parent);
        }
      }
      let fd: number;
      try { fd = openat2(rootFd, dest.join('/'), O_PATH, IN_ROOT); } catch { continue; }
      try {
        if (fstatSync(fd).isDirectory() !== dir) continue;
        bindMount(m.source, `/proc/self/fd/${fd}`);
      } finally {
        closeSync(fd);
      }
      if (m.readonly) {
        const top = openat2(rootFd, dest.join('/'), O_PATH, IN_ROOT);
        try { remountReadonly(`/proc/self/fd/${top}`); } finally { closeSync(top); }
      }
    }
  } finally {
    closeSync(rootFd);
  }
}
