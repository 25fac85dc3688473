import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { BigIntStats } from 'node:fs';
import tarStream from 'tar-stream';
import { run } from './extract.js';

/**
 * Tar generation and directory comparison for the layer drivers.
 *
 * - overlay-format directories (diff dirs, RW uppers): whiteouts are 0/0 character devices and opaque directories
 *   carry trusted.overlay.opaque=y; `packOverlayDir` turns them back into `.wh.<name>` / `.wh..wh..opq` entries.
 * - vfs directories are full copies: `naiveChanges(upper, lower)` compares two trees (mode, owner, rdev, and for
 *   non-directories size and mtime, as docker's naive diff), and `packChanges` writes the changes as an OCI tar.
 */

export interface Change {
  /** Path with a leading slash. */
  path: string;
  kind: 0 | 1 | 2;
}

export type XattrMap = Map<string, Map<string, Buffer>>;

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

/** All extended attributes under `root` (absolute paths), with one `getfattr -R`. */
export async function readXattrs(root: string, pattern = '-'): Promise<XattrMap> {
  let out: string;
  try {
    out = await run('getfattr', ['-R', '-h', '-d', '-m', pattern, '-e', 'base64', '--absolute-names', root]);
  } catch {
    return new Map(); // getfattr exits non-zero on e.g. dangling entries; treat as no attributes
  }
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

/** Paths of a tree in walk order (directory before its sorted children), relative, no leading slash. */
export async function walkTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const rec = async (rel: string) => {
    const names = (await readdir(rel === '' ? root : join(root, rel))).sort();
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      out.push(r);
      const st = await lstat(join(root, r));
      if (st.isDirectory()) await rec(r);
    }
  };
  await rec('');
  return out;
}

interface PackItem {
  rel: string;
  whiteout?: boolean;
}

function baseHeader(st: BigIntStats) {
  return {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: new Date(Number(st.mtimeMs)),
  };
}

function whiteoutName(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? `.wh.${rel}` : `${rel.slice(0, i)}/.wh.${rel.slice(i + 1)}`;
}

function paxOf(x: Map<string, Buffer> | undefined): Record<string, string> | undefined {
  if (!x) return undefined;
  let pax: Record<string, string> | undefined;
  for (const [k, v] of x) {
    if (k.startsWith('trusted.overlay.')) continue;
    // tar-stream encodes PAX records as UTF-8 text with character counts: only ASCII values survive exactly.
    if (v.some((b) => b >= 0x80)) continue;
    (pax ??= {})[`SCHILY.xattr.${k}`] = v.toString('latin1');
  }
  return pax;
}

type HeaderArg = Partial<tarStream.Header> & { name: string };

/** One entry without streamed content (empty files are given an empty buffer so that the entry ends). */
function entry(pack: tarStream.Pack, header: HeaderArg): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (header.type === 'file') pack.entry(header, Buffer.alloc(0), cb);
    else pack.entry(header, cb);
  });
}

/** Writes items (in the given order) from `root` as an OCI layer tar. Overlay whiteout devices become `.wh.` files. */
function packItems(root: string, items: () => Promise<PackItem[]>, xattrs: () => Promise<XattrMap>): Readable {
  const pack = tarStream.pack();
  (async () => {
    const list = await items();
    const xs = await xattrs();
    const seen = new Map<string, string>(); // dev:ino -> first name, for hardlinks
    for (const it of list) {
      const abs = join(root, it.rel);
      if (it.whiteout) {
        await entry(pack, { name: whiteoutName(it.rel), type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtime: new Date(0) });
        continue;
      }
      const st = await lstat(abs, { bigint: true });
      const h = baseHeader(st);
      if (isWhiteout(st)) {
        // as dockerd's overlay converter writes it: an empty regular file of mode 0600
        await entry(pack, { ...h, name: whiteoutName(it.rel), type: 'file', size: 0, mode: 0o600 });
        continue;
      }
      const pax = paxOf(xs.get(abs));
      if (st.isDirectory()) {
        await entry(pack, { ...h, name: it.rel + '/', type: 'directory', pax });
        if (isOpaque(xs, abs)) {
          // the opaque marker inherits the directory's permission bits and owner (dockerd's converter)
          await entry(pack, { ...h, name: `${it.rel}/.wh..wh..opq`, type: 'file', size: 0, mode: Number(st.mode & 0o777n) });
        }
      } else if (st.isSymbolicLink()) {
        await entry(pack, { ...h, name: it.rel, type: 'symlink', linkname: await readlink(abs), pax });
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1n ? seen.get(id) : undefined;
        if (first !== undefined) {
          await entry(pack, { ...h, name: it.rel, type: 'link', linkname: first, size: 0, pax });
          continue;
        }
        if (st.nlink > 1n) seen.set(id, it.rel);
        const size = Number(st.size);
        await new Promise<void>((resolve, reject) => {
          const w = pack.entry({ ...h, name: it.rel, type: 'file', size, pax }, (err) => (err ? reject(err) : resolve()));
          pipeline(createReadStream(abs), w).catch(reject);
        });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = Number(st.rdev);
        const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
        const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
        await entry(pack, {
          ...h, name: it.rel, type: st.isCharacterDevice() ? 'character-device' : 'block-device',
          devmajor: major, devminor: minor, pax,
        });
      } else if (st.isFIFO()) {
        await entry(pack, { ...h, name: it.rel, type: 'fifo', pax });
      }
      // sockets are not archived (as docker)
    }
    pack.finalize();
  })().catch((e) => pack.destroy(e as Error));
  return pack as unknown as Readable;
}

/** The tar of an overlay-format directory (a layer's diff dir or a container's upper dir). */
export function packOverlayDir(root: string): Readable {
  return packItems(root, async () => (await walkTree(root)).map((rel) => ({ rel })), () => readXattrs(root));
}

/** The tar of naive changes: added/modified entries from `upper`, deletions as whiteouts. */
export function packChanges(upper: string, changes: () => Promise<Change[]>): Readable {
  return packItems(
    upper,
    async () => (await changes()).map((c) => ({ rel: c.path.slice(1), whiteout: c.kind === 2 })),
    () => readXattrs(upper),
  );
}

async function lstatOrNull(p: string): Promise<BigIntStats | null> {
  try {
    return await lstat(p, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

function differs(a: BigIntStats, b: BigIntStats): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true;
  if (a.isDirectory()) return false;
  return a.size !== b.size || a.mtimeNs !== b.mtimeNs;
}

/**
 * Docker's naive diff between two full trees: added (1), deleted (2), modified (0); a directory containing
 * changes counts as modified. Sorted by path.
 */
export async function naiveChanges(upper: string, lower: string | null): Promise<Change[]> {
  const out: Change[] = [];
  const rec = async (rel: string): Promise<boolean> => {
    const u = rel === '' ? upper : join(upper, rel);
    const l = lower === null ? null : rel === '' ? lower : join(lower, rel);
    const un = await readdir(u).catch(() => [] as string[]);
    const ln = l === null ? [] : await readdir(l).catch(() => [] as string[]);
    const names = [...new Set([...un, ...ln])].sort();
    const uset = new Set(un);
    const lset = new Set(ln);
    let any = false;
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      if (!uset.has(n)) {
        out.push({ path: '/' + r, kind: 2 });
        any = true;
        continue;
      }
      const us = await lstat(join(upper, r), { bigint: true });
      const ls = lset.has(n) && lower !== null ? await lstatOrNull(join(lower, r)) : null;
      if (ls === null) {
        out.push({ path: '/' + r, kind: 1 });
        any = true;
        if (us.isDirectory()) await addAll(r);
        continue;
      }
      const typeChanged = us.isDirectory() !== ls.isDirectory();
      if (typeChanged) {
        out.push({ path: '/' + r, kind: 0 });
        any = true;
        if (us.isDirectory()) await addAll(r);
        continue;
      }
      if (us.isDirectory()) {
        const idx = out.length;
        const inner = await rec(r);
        if (inner || differs(us, ls)) {
          out.splice(idx, 0, { path: '/' + r, kind: 0 });
          any = true;
        }
      } else if (differs(us, ls) || (us.isSymbolicLink() && (await readlink(join(upper, r))) !== (await readlink(join(lower!, r))))) {
        out.push({ path: '/' + r, kind: 0 });
        any = true;
      }
    }
    return any;
  };
  const addAll = async (rel: string) => {
    for (const n of (await readdir(join(upper, rel))).sort()) {
      const r = `${rel}/${n}`;
      out.push({ path: '/' + r, kind: 1 });
      if ((await lstat(join(upper, r))).isDirectory()) await addAll(r);
    }
  };
  await rec('');
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}
