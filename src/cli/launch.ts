/**
 * The launcher of the bundled CLI. scripts/build-cli.mjs bundles the whole CLI (entry.ts and everything it
 * loads, commander included) into one CommonJS script, `dist/src/cli/wharf-app.cjs`, and this file into
 * `dist/src/cli/wharf.cjs`, which bin/wharf runs. The launcher compiles the bundle with node:vm and V8's code
 * cache: one cache file per command word (`images`, `ps`, …), written after the command ran, so it holds the
 * bytecode of every function that command used, not only the top-level code.
 *
 * The cache lives in a directory of the user's own (`$WHARF_CLI_CACHE`, else `$XDG_CACHE_HOME/wharf/cli`, else
 * `~/.cache/wharf/cli`), used only when it is a real directory owned by the user and writable by nobody else;
 * a cache file is used only when it is owned by the user, names this bundle (its size and mtime) and this Node,
 * and its checksum matches; V8 itself refuses cached data made for another source length, V8 version or set of
 * flags. A stale or corrupt cache is ignored and rewritten. Any failure of the cache only costs the compile.
 *
 * Only `node:fs`, `node:path` and `node:vm` are loaded here (all cheap at start-up).
 */
import type * as FsNs from 'node:fs';
import type * as PathNs from 'node:path';
import type * as VmNs from 'node:vm';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Words of the CLI worth a cache file of their own (a command, or a group's first word). */
const WORD = /^[a-z][a-z0-9-]{0,31}$/;

/** Global flags that take a value (their value is not the command word). */
const VALUED_GLOBALS = new Set(['-H', '--host', '-c', '--context', '--config', '-l', '--log-level', '--tlscacert', '--tlscert', '--tlskey']);

/** The command word of an argument list (the cache's key), or `_` when there is none. */
export function commandWord(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUED_GLOBALS.has(a)) i++;
      continue;
    }
    return WORD.test(a) ? a : '_';
  }
  return '_';
}

/** The cache directory's path (not checked). */
export function cacheDirPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = require('node:path') as typeof PathNs;
  if (env.WHARF_CLI_CACHE !== undefined) return env.WHARF_CLI_CACHE === '' ? undefined : env.WHARF_CLI_CACHE;
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'wharf', 'cli');
  if (env.HOME) return path.join(env.HOME, '.cache', 'wharf', 'cli');
  return undefined;
}

/** Whether a stat says: owned by this user, not writable by group or others. */
function ownedSafe(st: FsNs.Stats, uid: number): boolean {
  return st.uid === uid && (st.mode & 0o022) === 0;
}

/**
 * The cache directory, made (0700) when missing; undefined when it is not safe to use: a symlink, not a
 * directory, owned by another user, or writable by group or others.
 */
export function safeCacheDir(dir: string | undefined, uid = process.getuid?.() ?? -1): string | undefined {
  if (dir === undefined || uid < 0) return undefined;
  const fs = require('node:fs') as typeof FsNs;
  let st: FsNs.Stats | undefined;
  try { st = fs.lstatSync(dir); } catch { /* missing */ }
  if (!st) {
    try { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); st = fs.lstatSync(dir); } catch { return undefined; }
  }
  return st.isDirectory() && ownedSafe(st, uid) ? dir : undefined;
}

/** What a cache file must start with for this bundle and this Node. */
export function cacheHeader(bundle: FsNs.Stats): string {
  return `wharf-cli-cache 2 ${process.version} ${process.arch} ${bundle.size} ${Math.round(bundle.mtimeMs)}\n`;
}

/**
 * FNV-1a over 32-bit words, then the trailing bytes. V8 checks its cached data's version, flags and source
 * length, but verifies its checksum only in debug builds: corrupt data can crash the process, so the file
 * carries a checksum of its own (~1 ms for the ~300 KB of a command's cache).
 */
export function checksum(b: Buffer): number {
  const words = b.length >>> 2;
  let h = 0x811c9dc5 | 0;
  if ((b.byteOffset & 3) === 0) {
    const v = new Int32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) h = Math.imul(h ^ v[i]!, 16777619);
  } else {
    for (let i = 0; i < words; i++) h = Math.imul(h ^ b.readInt32LE(i * 4), 16777619);
  }
  for (let i = words * 4; i < b.length; i++) h = Math.imul(h ^ b[i]!, 16777619);
  return h >>> 0;
}

/** The checksum line after the header, padded so that the data starts at a multiple of 8 bytes. */
function sumLine(header: string, data: Buffer): string {
  const line = `sum ${checksum(data).toString(16).padStart(8, '0')}`;
  const pad = (8 - ((header.length + line.length + 1) % 8)) % 8;
  return `${line}${' '.repeat(pad)}\n`;
}

/**
 * Reads a cache file: its V8 data when the file is the user's own, its header names this bundle and this Node,
 * and its checksum matches; else undefined.
 */
export function readCache(file: string, header: string, uid = process.getuid?.() ?? -1): Buffer | undefined {
  const fs = require('node:fs') as typeof FsNs;
  let fd: number;
  try { fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); } catch { return undefined; }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || !ownedSafe(st, uid) || st.size <= header.length + 16 || st.size > 64 << 20) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = fs.readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) return undefined;
      n += r;
    }
    if (buf.toString('latin1', 0, header.length) !== header) return undefined;
    const eol = buf.indexOf(10, header.length);
    if (eol < 0) return undefined;
    const data = buf.subarray(eol + 1);
    if (buf.toString('latin1', header.length, eol + 1) !== sumLine(header, data)) return undefined;
    return data;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a cache file atomically (a temporary file of this process, then a rename), 0600. */
export function writeCache(file: string, header: string, data: Buffer): void {
  const fs = require('node:fs') as typeof FsNs;
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, header + sumLine(header, data), null, 'latin1');
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch {
    try { fs.unlinkSync(tmp); } catch { /* never made */ }
  }
}

/**
 * Runs the bundle at `bundlePath` (a CommonJS script) with the code cache of `argv`'s command word.
 * The bundle's own code runs the CLI and exits the process.
 */
export function launch(bundlePath: string, argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): void {
  // start-up trace (src/cli/trace.ts picks these up)
  const marks: [string, number][] | undefined = env.WHARF_CLI_TRACE ? [['launcher', performance.now()]] : undefined;
  if (marks) (globalThis as { WHARF_LAUNCH_MARKS?: [string, number][] }).WHARF_LAUNCH_MARKS = marks;
  const fs = require('node:fs') as typeof FsNs;
  const path = require('node:path') as typeof PathNs;
  if (env.WHARF_CLI_CODE_CACHE === 'node') {
    // for bench/cli.ts: Node's own compile cache (module.enableCompileCache) instead of the one below
    const dir = safeCacheDir(cacheDirPath(env));
    if (dir !== undefined) (require('node:module') as typeof import('node:module')).enableCompileCache?.(path.join(dir, 'node'));
    marks?.push(['compiled', performance.now()]);
    require(bundlePath);
    return;
  }
  const vm = require('node:vm') as typeof VmNs;
  // the bundle is ASCII (esbuild's default charset escapes the rest): latin1 is an exact, cheap decoding
  const fd = fs.openSync(bundlePath, 'r');
  let source: string;
  let st: FsNs.Stats;
  try {
    st = fs.fstatSync(fd);
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) { const r = fs.readSync(fd, buf, n, buf.length - n, n); if (r === 0) break; n += r; }
    source = buf.toString("latin1", 0, n);
  } finally {
    fs.closeSync(fd);
  }
  const dir = safeCacheDir(cacheDirPath(env));
  const file = dir === undefined ? undefined : path.join(dir, `${commandWord(argv)}.v8`);
  const header = cacheHeader(st);
  const cachedData = file === undefined ? undefined : readCache(file, header);
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapped, cachedData ? { filename: bundlePath, cachedData } : { filename: bundlePath });
  if (file !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    // after the command ran: the cache then holds every function it compiled
    process.once('exit', () => writeCache(file, header, script.createCachedData()));
  }
  marks?.push(['compiled', performance.now()]);
  const fn = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  const mod = { exports: {} };
  fn(mod.exports, createRequire(bundlePath), mod, bundlePath, path.dirname(bundlePath));
}
