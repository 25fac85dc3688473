/**
 * The few libc calls Node has no binding for, through koffi (loaded on first use, ~25 ms): openat2(2) for
 * in-root resolution in the daemon, chroot(2), capset(2), prctl(2), llistxattr/lgetxattr, unshare(2) and
 * mount(2) for the chrooted tree worker (`child.ts`), which binds them all *before* it chroots, and mount(2) /
 * umount2(2) for the daemon's own mounts (an RW layer's overlay, a netns file) without a `mount` process each.
 */
import { errnoError, koffi, libcHandle } from '../../lib/libc.js';
import { constants as osConstants } from 'node:os';

const SYS_openat2 = 437; // x86_64 and aarch64 share it (generic syscall table)

export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

interface Libc {
  syscall4: (nr: number, dirfd: number, path: string, how: Buffer, size: number) => number | bigint;
  chroot: (path: string) => number;
  capset: (hdr: Buffer, data: Buffer) => number;
  prctl: (opt: number, a: number, b: number, c: number, d: number) => number;
  llistxattr: (path: string, list: Buffer | null, size: number) => number | bigint;
  lgetxattr: (path: string, name: string, value: Buffer | null, size: number) => number | bigint;
  readlinkat: (dirfd: number, path: string, buf: Buffer, size: number) => number | bigint;
  fgetxattr: (fd: number, name: string, value: Buffer | null, size: number) => number | bigint;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  unshare: (flags: number) => number;
  mount: (source: string | null, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  syscallInts: (nr: number, a: number, b: number, c: null, d: number) => number | bigint;
  errno: () => number;
}

let lib: Libc | null = null;

/** Binds every function at once (the chrooted worker calls this before chroot: no dlopen/dlsym after it). */
export function libc(): Libc {
  if (lib) return lib;
  const k = koffi();
  const c = libcHandle() as { func(decl: string): (...a: unknown[]) => unknown };
  // glibc loads libgcc_s lazily when a thread unwinds; have it mapped now (never from a chroot)
  try { k.load('libgcc_s.so.1'); } catch { /* not needed on every system */ }
  lib = {
    syscall4: c.func('long syscall(long nr, int dirfd, const char *path, void *how, size_t size)') as Libc['syscall4'],
    chroot: c.func('int chroot(const char *path)') as Libc['chroot'],
    capset: c.func('int capset(void *hdr, void *data)') as Libc['capset'],
    prctl: c.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)') as Libc['prctl'],
    llistxattr: c.func('long llistxattr(const char *path, void *list, size_t size)') as Libc['llistxattr'],
    lgetxattr: c.func('long lgetxattr(const char *path, const char *name, void *value, size_t size)') as Libc['lgetxattr'],
    readlinkat: c.func('long readlinkat(int dirfd, const char *path, void *buf, size_t size)') as Libc['readlinkat'],
    fgetxattr: c.func('long fgetxattr(int fd, const char *name, void *value, size_t size)') as Libc['fgetxattr'],
    fcntl: c.func('int fcntl(int fd, int cmd, int arg)') as Libc['fcntl'],
    unshare: c.func('int unshare(int flags)') as Libc['unshare'],
    mount: c.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as Libc['mount'],
    umount2: c.func('int umount2(const char *target, int flags)') as Libc['umount2'],
    syscallInts: c.func('long syscall(long nr, int a, int b, void *c, unsigned int d)') as Libc['syscallInts'],
    errno: () => k.errno(),
  };
  return lib;
}

export { errnoError };

/**
 * openat2(dirfd, path, {flags, mode, resolve}): a descriptor or a thrown ErrnoException. EAGAIN (a rename raced
 * a ".." lookup under RESOLVE_IN_ROOT) is retried.
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const l = libc();
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  for (let attempt = 0; ; attempt++) {
    const fd = Number(l.syscall4(SYS_openat2, dirfd, path, how, 24));
    if (fd >= 0) return fd;
    const errno = l.errno();
    if (errno === osConstants.errno.EAGAIN && attempt < 64) continue;
    throw errnoError(errno, 'openat2', path);
  }
}

// capability numbers (linux/capability.h)
export const CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2, CAP_FOWNER = 3, CAP_FSETID = 4;
const CAP_LAST = 63;
const PR_CAPBSET_DROP = 24;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_DUMPABLE = 4;

/**
 * Keeps only `keep` in the bounding, permitted, effective and inheritable sets (CAP_SYS_CHROOT, CAP_SYS_ADMIN,
 * CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SETUID… are gone for good), sets no_new_privs and makes the process
 * non-dumpable.
 */
export function dropCapabilities(keep: number[]): void {
  const l = libc();
  for (let cap = 0; cap <= CAP_LAST; cap++) {
    if (keep.includes(cap)) continue;
    // EINVAL: a capability this kernel does not know
    if (l.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) !== 0 && l.errno() !== osConstants.errno.EINVAL) throw errnoError(l.errno(), 'prctl(PR_CAPBSET_DROP)');
  }
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(0x20080522, 0); // _LINUX_CAPABILITY_VERSION_3
  const data = Buffer.alloc(24); // two {effective, permitted, inheritable}
  let lo = 0, hi = 0;
  for (const cap of keep) {
    if (cap < 32) lo |= 1 << cap; else hi |= 1 << (cap - 32);
  }
  data.writeUInt32LE(lo >>> 0, 0); data.writeUInt32LE(lo >>> 0, 4);
  data.writeUInt32LE(hi >>> 0, 12); data.writeUInt32LE(hi >>> 0, 16);
  if (l.capset(hdr, data) !== 0) throw errnoError(l.errno(), 'capset');
  if (l.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) throw errnoError(l.errno(), 'prctl(PR_SET_NO_NEW_PRIVS)');
  l.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/** chroot(2) (the caller chdirs to "/" right after). */
export function chroot(path: string): void {
  const l = libc();
  if (l.chroot(path) !== 0) throw errnoError(l.errno(), 'chroot', path);
}

/** The extended attributes of `path` itself (never followed), names to values. */
export function lxattrs(path: string): Map<string, Buffer> | undefined {
  const l = libc();
  const size = Number(l.llistxattr(path, null, 0));
  if (size <= 0) return undefined;
  const list = Buffer.alloc(size);
  const n = Number(l.llistxattr(path, list, size));
  if (n <= 0) return undefined;
  let out: Map<string, Buffer> | undefined;
  for (const name of list.subarray(0, n).toString('latin1').split('\0')) {
    if (!name) continue;
    const vs = Number(l.lgetxattr(path, name, null, 0));
    if (vs < 0) continue;
    const v = Buffer.alloc(vs);
    const got = vs === 0 ? 0 : Number(l.lgetxattr(path, name, v, vs));
    if (got < 0) continue;
    (out ??= new Map()).set(name, v.subarray(0, got));
  }
  return out;
}

/** The target of the symlink an O_PATH|O_NOFOLLOW descriptor refers to (readlinkat with an empty path). */
export function readlinkFd(fd: number): string {
  const l = libc();
  const buf = Buffer.alloc(4096);
  const n = Number(l.readlinkat(fd, '', buf, buf.length));
  if (n < 0) throw errnoError(l.errno(), 'readlinkat');
  return buf.subarray(0, n).toString();
}

/** One extended attribute of an open file (null when absent). */
export function fxattr(fd: number, name: string): Buffer | null {
  const l = libc();
  const buf = Buffer.alloc(256);
  const n = Number(l.fgetxattr(fd, name, buf, buf.length));
  return n < 0 ? null : buf.subarray(0, n);
}

/** Grows a pipe's buffer (F_SETPIPE_SZ) so that tar data crosses it in fewer, larger steps; best effort. */
export function growPipe(fd: number, bytes = 1 << 20): void {
  libc().fcntl(fd, 1031, bytes);
}

const CLONE_NEWNS = 0x20000;
const MS_RDONLY = 1, MS_REMOUNT = 32, MS_BIND = 4096, MS_REC = 16384, MS_PRIVATE = 1 << 18;

/**
 * A mount namespace of the calling thread's own (unshare(CLONE_NEWNS), which also gives it its own root and cwd),
 * with every mount made private so that nothing mounted in it reaches the host's. Only the calling thread and
 * the threads it starts afterwards live in it.
 */
export function unshareMounts(): void {
  const l = libc();
  if (l.unshare(CLONE_NEWNS) !== 0) throw errnoError(l.errno(), 'unshare(CLONE_NEWNS)');
  if (l.mount(null, '/', null, MS_REC | MS_PRIVATE, null) !== 0) throw errnoError(l.errno(), 'mount(MS_PRIVATE)', '/');
}

/** mount --rbind `source` `target` (`target` typically /proc/self/fd/N of a descriptor opened in-root). */
export function bindMount(source: string, target: string): void {
  const l = libc();
  if (l.mount(source, target, null, MS_BIND | MS_REC, null) !== 0) throw errnoError(l.errno(), 'mount(MS_BIND)', source);
}

/** Makes the bind mount at `target` read-only. */
export function remountReadonly(target: string): void {
  const l = libc();
  if (l.mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY, null) !== 0) throw errnoError(l.errno(), 'mount(MS_REMOUNT|MS_RDONLY)', target);
}

/**
 * mount(2) of a filesystem with an options string (e.g. an overlay: `mountFs('overlay', merged, 'overlay',
 * 'lowerdir=…,upperdir=…,workdir=…')`), in the calling process's mount namespace. A blocking call of a few
 * milliseconds at most, where `mount(8)` costs a process.
 */
export function mountFs(source: string, target: string, fstype: string, data: string, flags = 0): void {
  const l = libc();
  if (l.mount(source, target, fstype, flags, data) !== 0) throw errnoError(l.errno(), `mount(${fstype})`, target);
}

/**
 * umount2(2) of `target` (`detach`: MNT_DETACH, lazily). False when nothing is mounted there (EINVAL) or the
 * path is gone (ENOENT); EBUSY and other failures throw.
 */
export function unmountFs(target: string, opts: { detach?: boolean } = {}): boolean {
  const l = libc();
  if (l.umount2(target, opts.detach ? 2 : 0) === 0) return true;
  const errno = l.errno();
  if (errno === osConstants.errno.EINVAL || errno === osConstants.errno.ENOENT) return false;
  throw errnoError(errno, 'umount2', target);
}

const SYS_pidfd_open = 434, SYS_pidfd_send_signal = 424; // x86_64 and aarch64 share them

/** pidfd_open(2): a descriptor that names process `pid` for as long as it is held (never a later one of that number). */
export function pidfdOpen(pid: number): number {
  const l = libc();
  const fd = Number(l.syscallInts(SYS_pidfd_open, pid, 0, null, 0));
  if (fd < 0) throw errnoError(l.errno(), 'pidfd_open');
  return fd;
}

/** pidfd_send_signal(2): false when the process has ended (ESRCH), else sent; other failures throw. */
export function pidfdSignal(pidfd: number, signal: number): boolean {
  const l = libc();
  if (Number(l.syscallInts(SYS_pidfd_send_signal, pidfd, signal, null, 0)) === 0) return true;
  const errno = l.errno();
  if (errno === osConstants.errno.ESRCH) return false;
  throw errnoError(errno, 'pidfd_send_signal');
}
