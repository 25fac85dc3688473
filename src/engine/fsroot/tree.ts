import { execCollect } from '../../lib/exec.js';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { closeSync, constants as fsc, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { isMissing as gone, missingAs } from '../../lib/fsutil.js';
import type { Readable } from 'node:stream';
import type tarStream from 'tar-stream';

/**
 * Tar generation and directory comparison for container roots and layer directories.
 *
 * The walks and tar writers here (`packTree`, `packLayerItems`, `treeEntryOf`) run on container roots and RW
 * layers (a container may change those while they are read): inside the chrooted tree worker of `engine/fsroot`,
 * or in the daemon on paths `beneath.ts` gives next to a walked directory's descriptor. So they import nothing lazily, follow no symlink, read files through a descriptor opened with O_NOFOLLOW, and
 * treat an entry that vanishes or changes type mid-walk as gone.
 *
 * - overlay-format directories (diff dirs, RW uppers): whiteouts are 0/0 character devices and opaque directories
 *   carry trusted.overlay.opaque=y; they become `.wh.<name>` / `.wh..wh..opq` entries.
 * - vfs directories are full copies: `naiveChanges(upper listing, lower)` compares two trees (mode, owner, rdev,
 *   and for non-directories size and mtime, as docker's naive diff).
 */

export interface Change {
  /** Path with a leading slash. */
  path: string;
  kind: 0 | 1 | 2;
}

export type XattrMap = Map<string, Map<string, Buffer>>;

/** One entry of a walked tree (JSON-safe: it crosses the worker's pipe). */
export interface TreeEntry {
  /** Relative path, no leading slash. */
  rel: string;
  type: 'dir' | 'file' | 'symlink' | 'whiteout' | 'other';
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** mtime in nanoseconds, as a decimal string. */
  mtimeNs: string;
  ino: number;
  nlink: number;
  link?: string;
  /** trusted.overlay.opaque=y (overlay upper dirs; filled in by the daemon). */
  opaque?: boolean;
}

function unquote(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** All extended attributes under `root` (absolute paths), with one `getfattr -R` (trees no container writes). */
export async function readXattrs(root: string, pattern = '-'): Promise<XattrMap> {
  // getfattr exits non-zero on e.g. dangling entries; treat as no attributes
  const out = await execCollect('getfattr', ['-R', '-h', '-d', '-m', pattern, '-e', 'base64', '--absolute-names', root], { maxBuffer: 1 << 30 })
    .then((r) => (r.code === 0 ? r.stdout : null), () => null);
  if (out === null) return new Map();
  const map: XattrMap = new Map();
  let cur: Map<string, Buffer> | null = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      map.set(unquote(line.slice(8)), cur);
    } else if (cur && line.includes('=')) {
      const i = line.indexOf('=');
      const name = line.slice(0, i);
      let v = line.slice(i + 1);
      let buf: Buffer;
      if (v.startsWith('0s')) buf = Buffer.from(v.slice(2), 'base64');
      else if (v.startsWith('0x')) buf = Buffer.from(v.slice(2), 'hex');
      else {
        if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
        buf = Buffer.from(v, 'utf8');
      }
      cur.set(name, buf);
    }
  }
  return map;
}

export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

export function isOpaque(x: XattrMap, abs: string): boolean {
  return x.get(abs)?.get('trusted.overlay.opaque')?.toString() === 'y';
}


async function lstatOrNull(p: string): Promise<BigIntStats | null> {
  try {
    return await lstat(p, { bigint: true });
  } catch (e) {
    if (gone(e)) return null;
    throw e;
  }
}

/** Synchronous forms for the chrooted worker (one purpose, no event loop to share: no thread-pool round trips). */
function lstatSyncOrNull(p: string): BigIntStats | null {
  try {
    return lstatSync(p, { bigint: true });
  } catch (e) {
    if (gone(e)) return null;
    throw e;
  }
}

function readdirSyncOrEmpty(p: string): string[] {
  try {
    return readdirSync(p).sort();
  } catch (e) {
    if (gone(e)) return [];
    throw e;
  }
}

/** A symlink's target; null when it vanished or is no longer a symlink (EINVAL: a racing process put a directory or a file in its place). */
function readlinkSyncOrNull(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch (e) {
    if (gone(e) || (e as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw e;
  }
}

async function readdirOrEmpty(p: string): Promise<string[]> {
  try {
    return (await readdir(p)).sort();
  } catch (e) {
    if (gone(e)) return [];
    throw e;
  }
}

/** The listing entry of `abs` (named `rel`) from its lstat `st`; null when a symlink vanished before its target was read. */
export function treeEntryOf(rel: string, abs: string, st: BigIntStats): TreeEntry | null {
  const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : isWhiteout(st) ? 'whiteout' : 'other';
  const e: TreeEntry = {
    rel, type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), rdev: Number(st.rdev),
    size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino), nlink: Number(st.nlink),
  };
  if (type === 'symlink') {
    const link = readlinkSyncOrNull(abs);
    if (link === null) return null;
    e.link = link;
  }
  return e;
}

type HeaderArg = Partial<tarStream.Header> & { name: string };

/** One entry without content (empty files are given an empty buffer so that the entry ends). */
function entry(pack: tarStream.Pack, header: HeaderArg): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (header.type === 'file') pack.entry({ ...header, size: 0 }, Buffer.alloc(0), cb);
    else pack.entry(header, cb);
  });
}

/**
 * A regular file's entry with exactly `header.size` bytes: the file is opened without following a symlink
 * (O_NOFOLLOW, O_NONBLOCK so that a FIFO swapped in cannot block); if it is no longer the inode that was
 * stat'ed, or shrank, the rest is zeros (the header is already written).
 */
async function fileEntry(pack: tarStream.Pack, header: HeaderArg & { size: number }, abs: string, ino: bigint): Promise<void> {
  let fd: number | null = null;
  try {
    fd = openSync(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.ino !== ino) { closeSync(fd); fd = null; }
  } catch (e) {
    if (!gone(e)) throw e;
    fd = null;
  }
  await fileEntryFromFd(pack, header, fd);
}

/**
 * A regular file's entry with exactly `header.size` bytes read from `fd` (closed here; null: zeros); if the file
 * shrank meanwhile, the rest is zeros (the header is already written). The descriptor belongs to the pump that
 * reads it and is closed only when that pump has stopped: closing it while a read may still come would let the
 * pump read whatever file the next open got the same number for.
 */
export async function fileEntryFromFd(pack: tarStream.Pack, header: HeaderArg & { size: number }, fd: number | null): Promise<void> {
  let pumpDone: Promise<void> = Promise.resolve();
  try {
    await new Promise<void>((resolve, reject) => {
      const w = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      w.on('error', reject);
      const size = header.size;
      pumpDone = (async () => {
        let off = 0;
        while (off < size) {
          const want = Math.min(1 << 20, size - off);
          // a fresh buffer per chunk: tar-stream keeps it until written, nothing is copied
          let buf = Buffer.allocUnsafe(want);
          let n = 0;
          if (fd !== null) n = readSync(fd, buf, 0, want, off);
          if (n === 0) { buf.fill(0); n = want; if (fd !== null) closeSync(fd); fd = null; } else if (n < want) buf = buf.subarray(0, n);
          off += n;
          if (!w.write(buf)) {
            // a reader that goes away destroys the pack: stop there (in the daemon the descriptor must not leak)
            const p = pack as unknown as Readable;
            await new Promise<void>((r) => {
              const done = () => { w.off('drain', done); p.off('close', done); w.off('close', done); r(); };
              w.once('drain', done);
              w.once('close', done);
              p.once('close', done);
            });
            if (p.destroyed || (w as unknown as Readable).destroyed) throw new Error('the tar stream was closed');
          }
        }
        (w as unknown as { end(): void }).end();
      })();
      pumpDone.catch(reject);
    });
  } finally {
    await pumpDone.catch(() => undefined);
    if (fd !== null) closeSync(fd);
  }
}

function major(rdev: number): number { return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff); }
function minor(rdev: number): number { return (rdev & 0xff) | ((rdev >> 12) & 0xfff00); }

/**
 * docker cp / export: writes the tree at `abs` into `pack` under the name `base` ('.': its contents without a
 * prefix, as export; './': itself as '.' and its contents as './name', as dockerd answers a cp of "dir/."):
 * directories before their sorted contents, files, symlinks, hard links (a second name of an inode already
 * written becomes a link entry, as docker's archiver does), character/block devices and FIFOs; sockets are
 * skipped. Returns false when `abs` itself is gone.
 */
export async function packTree(pack: tarStream.Pack, abs: string, base: string): Promise<boolean> {
  const seen = new Map<string, string>();
  const walk = async (p: string, n: string, top: boolean): Promise<boolean> => {
    const s = lstatSyncOrNull(p);
    if (!s) return false;
    const common = { name: n, mode: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid), mtime: new Date(Number(s.mtimeMs)) };
    if (s.isDirectory()) {
      if (n !== '.') await entry(pack, { ...common, name: n === './' ? '.' : n, type: 'directory' });
      for (const e of readdirSyncOrEmpty(p)) await walk(join(p, e), n === '.' ? e : n === './' ? `./${e}` : `${n}/${e}`, false);
      return true;
    }
    if (s.nlink > 1n && !s.isSymbolicLink()) {
      const key = `${s.dev}:${s.ino}`;
      const first = seen.get(key);
      if (first !== undefined) { await entry(pack, { ...common, type: 'link', linkname: first }); return true; }
      seen.set(key, n);
    }
    if (s.isSymbolicLink()) {
      const target = readlinkSyncOrNull(p);
      if (target === null) return !top;
      await entry(pack, { ...common, type: 'symlink', linkname: target });
    } else if (s.isFile()) await fileEntry(pack, { ...common, type: 'file', size: Number(s.size) }, p, s.ino);
    else if (s.isCharacterDevice() || s.isBlockDevice()) {
      const rdev = Number(s.rdev);
      await entry(pack, { ...common, type: s.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(rdev), devminor: minor(rdev) });
    } else if (s.isFIFO()) await entry(pack, { ...common, type: 'fifo' });
    return true;
  };
  return walk(abs, base, true);
}

export interface PackItem {
  rel: string;
  whiteout?: boolean;
}

function whiteoutName(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? `.wh.${rel}` : `${rel.slice(0, i)}/.wh.${rel.slice(i + 1)}`;
}

function paxOf(x: Map<string, Buffer> | undefined): Record<string, string> | undefined {
  if (!x) return undefined;
  let pax: Record<string, string> | undefined;
  for (const [k, v] of x) {
    if (k.startsWith('trusted.')) continue; // overlayfs' own, and nothing the worker (no CAP_SYS_ADMIN) ever saw
    // tar-stream encodes PAX records as UTF-8 text with character counts: only ASCII values survive exactly.
    if (v.some((b) => b >= 0x80)) continue;
    (pax ??= {})[`SCHILY.xattr.${k}`] = v.toString('latin1');
  }
  return pax;
}

/** One item of a layer tar: `abs` (when given) is where to read it, else `root`/`rel`. */
export interface LayerItem extends PackItem {
  abs?: string;
}

/**
 * Writes items (in the given order, from any iterable: the daemon's descriptor walk yields them while it holds
 * their parent directory open) from `root` as an OCI layer tar into `pack` (not finalized). Overlay whiteout
 * devices become `.wh.` files, directories for which `isOpaque` holds get `.wh..wh..opq`; `xattrsOf` gives an
 * entry's extended attributes.
 */
export async function packLayerItems(
  pack: tarStream.Pack, root: string, items: Iterable<LayerItem>,
  xattrsOf: (abs: string) => Map<string, Buffer> | undefined,
  isOpaque: (rel: string, xattrs: Map<string, Buffer> | undefined) => boolean,
): Promise<void> {
  const seen = new Map<string, string>(); // dev:ino -> first name, for hardlinks
  // entries written as something other than a directory: a racing container can swap a directory for a symlink or
  // a file between its listing and its entry, and its children (read through the directory's descriptor) must not
  // follow in the tar under a name that is no longer a directory (a consumer would refuse the layer, or follow)
  const notDirs = new Set<string>();
  const underNotDir = (rel: string): boolean => {
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) if (notDirs.has(rel.slice(0, i))) return true;
    return false;
  };
  for (const it of items) {
    const abs = it.abs ?? join(root, it.rel);
    if (notDirs.size && underNotDir(it.rel)) continue;
    if (it.whiteout) {
      await entry(pack, { name: whiteoutName(it.rel), type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtime: new Date(0) });
      continue;
    }
    const st = lstatSyncOrNull(abs);
    if (!st) continue; // removed while the tree was read
    const h = { mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: new Date(Number(st.mtimeMs)) };
    if (isWhiteout(st)) {
      // as dockerd's overlay converter writes it: an empty regular file of mode 0600
      await entry(pack, { ...h, name: whiteoutName(it.rel), type: 'file', size: 0, mode: 0o600 });
      continue;
    }
    if (!st.isDirectory()) notDirs.add(it.rel);
    const xs = xattrsOf(abs);
    const pax = paxOf(xs);
    if (st.isDirectory()) {
      await entry(pack, { ...h, name: it.rel + '/', type: 'directory', pax });
      if (isOpaque(it.rel, xs)) {
        // the opaque marker inherits the directory's permission bits and owner (dockerd's converter)
        await entry(pack, { ...h, name: `${it.rel}/.wh..wh..opq`, type: 'file', size: 0, mode: Number(st.mode & 0o777n) });
      }
    } else if (st.isSymbolicLink()) {
      const target = readlinkSyncOrNull(abs);
      if (target === null) continue;
      await entry(pack, { ...h, name: it.rel, type: 'symlink', linkname: target, pax });
    } else if (st.isFile()) {
      const id = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? seen.get(id) : undefined;
      if (first !== undefined) {
        await entry(pack, { ...h, name: it.rel, type: 'link', linkname: first, pax });
        continue;
      }
      if (st.nlink > 1n) seen.set(id, it.rel);
      await fileEntry(pack, { ...h, name: it.rel, type: 'file', size: Number(st.size), pax }, abs, st.ino);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = Number(st.rdev);
      await entry(pack, {
        ...h, name: it.rel, type: st.isCharacterDevice() ? 'character-device' : 'block-device',
        devmajor: major(rdev), devminor: minor(rdev), pax,
      });
    } else if (st.isFIFO()) {
      await entry(pack, { ...h, name: it.rel, type: 'fifo', pax });
    }
    // sockets are not archived (as docker)
  }
}

function differs(a: TreeEntry, b: BigIntStats): boolean {
  if (BigInt(a.mode) !== b.mode || BigInt(a.uid) !== b.uid || BigInt(a.gid) !== b.gid || BigInt(a.rdev) !== b.rdev) return true;
  if (a.type === 'dir') return false;
  return BigInt(a.size) !== b.size || BigInt(a.mtimeNs) !== b.mtimeNs;
}

/** Children of each directory of a listing ('' for the root), in walk order. */
function childrenOf(list: TreeEntry[]): Map<string, TreeEntry[]> {
  const m = new Map<string, TreeEntry[]>([['', []]]);
  for (const e of list) {
    const i = e.rel.lastIndexOf('/');
    const parent = i < 0 ? '' : e.rel.slice(0, i);
    let c = m.get(parent);
    if (!c) m.set(parent, (c = []));
    c.push(e);
    if (e.type === 'dir' && !m.has(e.rel)) m.set(e.rel, []);
  }
  return m;
}

const baseName = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);

/**
 * Docker's naive diff between a full tree (`upper`, listed by the chrooted worker) and the tree it started from
 * (`lower`, a layer directory no container writes, read here): added (1), deleted (2), modified (0); a directory
 * containing changes counts as modified. Sorted by path.
 */
export async function naiveChanges(upper: TreeEntry[], lower: string | null): Promise<Change[]> {
  const kids = childrenOf(upper);
  const out: Change[] = [];
  const addAll = (rel: string) => {
    for (const c of kids.get(rel) ?? []) {
      out.push({ path: '/' + c.rel, kind: 1 });
      if (c.type === 'dir') addAll(c.rel);
    }
  };
  const rec = async (rel: string): Promise<boolean> => {
    const un = kids.get(rel) ?? [];
    const ln = lower === null ? [] : await readdirOrEmpty(rel === '' ? lower : join(lower, rel));
    const byName = new Map(un.map((e) => [baseName(e.rel), e]));
    const lset = new Set(ln);
    const names = [...new Set([...byName.keys(), ...ln])].sort();
    let any = false;
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const us = byName.get(n);
      if (!us) {
        out.push({ path: '/' + r, kind: 2 });
        any = true;
        continue;
      }
      const ls = lset.has(n) && lower !== null ? await lstatOrNull(join(lower, r)) : null;
      if (ls === null) {
        out.push({ path: '/' + r, kind: 1 });
        any = true;
        if (us.type === 'dir') addAll(r);
        continue;
      }
      if ((us.type === 'dir') !== ls.isDirectory()) {
        out.push({ path: '/' + r, kind: 0 });
        any = true;
        if (us.type === 'dir') addAll(r);
        continue;
      }
      if (us.type === 'dir') {
        const idx = out.length;
        const inner = await rec(r);
        if (inner || differs(us, ls)) {
          out.splice(idx, 0, { path: '/' + r, kind: 0 });
          any = true;
        }
      } else if (differs(us, ls) || (us.type === 'symlink' && us.link !== (await readlink(join(lower!, r)).catch(missingAs(''))))) {
        out.push({ path: '/' + r, kind: 0 });
        any = true;
      }
    }
    return any;
  };
  await rec('');
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** Whether `rel` exists in the union of the lower dirs (top first); a whiteout hides it. */
async function inLower(lowers: string[], rel: string): Promise<boolean> {
  for (const l of lowers) {
    const st = await lstatOrNull(join(l, rel));
    if (st) return !isWhiteout(st);
  }
  return false;
}

/** docker diff of an overlay upper dir (listed by the chrooted worker) over its lower dirs (top first). */
export async function overlayChanges(upper: TreeEntry[], lowers: string[]): Promise<Change[]> {
  const kids = childrenOf(upper);
  const out: Change[] = [];
  for (const e of upper) {
    if (e.type === 'whiteout') {
      out.push({ path: '/' + e.rel, kind: 2 });
      continue;
    }
    const lower = await inLower(lowers, e.rel);
    out.push({ path: '/' + e.rel, kind: lower ? 0 : 1 });
    if (e.type === 'dir' && lower && e.opaque) {
      // everything the lower layers had below is gone, except what the upper re-creates
      const own = new Set((kids.get(e.rel) ?? []).map((c) => baseName(c.rel)));
      const goneNames = new Set<string>();
      for (const l of lowers) {
        for (const c of await readdirOrEmpty(join(l, e.rel))) if (!own.has(c)) goneNames.add(c);
      }
      for (const c of goneNames) {
        if (await inLower(lowers, `${e.rel}/${c}`)) out.push({ path: `/${e.rel}/${c}`, kind: 2 });
      }
    }
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** Sum of regular file sizes in a listing, hard links once. */
export function listedSize(list: TreeEntry[]): number {
  const seen = new Set<number>();
  let total = 0;
  for (const e of list) {
    if (e.type !== 'file') continue;
    if (e.nlink > 1) {
      if (seen.has(e.ino)) continue;
      seen.add(e.ino);
    }
    total += e.size;
  }
  return total;
}
