/**
 * The one way into glibc for the calls Node lacks: koffi and its handle of libc.so.6, loaded once (lazily: a
 * daemon that needs none of them maps neither), and the Node-style errors of failed calls. Used by lib/exec.ts
 * (posix_spawn), network/netlink.ts (rtnetlink), fsroot/native.ts (openat2, mounts, xattrs…) and daemon/memory.ts.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';

export interface KoffiLib { func(decl: string): unknown }
export interface Koffi { load(name: string): KoffiLib; errno(): number }

let koffiMod: Koffi | null = null;
let libcLoaded: KoffiLib | null = null;

/** koffi itself (for `errno()` and other libraries). */
export function koffi(): Koffi {
  return (koffiMod ??= createRequire(import.meta.url)('koffi') as Koffi);
}

/** koffi's handle of libc.so.6: bind functions with `.func(declaration)`. */
export function libcHandle(): KoffiLib {
  return (libcLoaded ??= koffi().load('libc.so.6'));
}

let errnoNames: Map<number, string> | undefined;

/** errno's name (ENOENT…), or `E<n>` for one Node does not name. */
export function errnoName(errno: number): string {
  errnoNames ??= new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A Node-style error (`code` ENOENT, ELOOP, …) for a failed libc call. */
export function errnoError(errno: number, syscall: string, path?: string): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const e = new Error(`${code}: ${syscall}${path !== undefined ? ` '${path}'` : ''} failed (errno ${errno})`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}
