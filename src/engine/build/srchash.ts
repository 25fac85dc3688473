/**
 * The source hashes dockerd's legacy builder writes into COPY/ADD history ("COPY file:<hex> in /dst "), which
 * are also its cache keys (moby v20.10: builder/remotecontext/archive.go, pkg/tarsum, builder/dockerfile/copy.go):
 *
 * - every entry of the context tar gets a tarsum v1 sum: sha256 of the header fields name, mode, uid, gid, size,
 *   typeflag, linkname, uname, gname, devmajor, devminor (each as key + value, no separators, decimal numbers),
 *   then the SCHILY.xattr PAX records (sorted, key + value), then the content — mtime is left out;
 * - a file is `file:<sum>`; a directory `dir:` + sha256 of the sorted sums of itself and everything below it
 *   joined by "," (a path the tar had no entry for counts as the path itself); several sources `multi:` + sha256
 *   of their hashes joined by ",".
 *
 * Files that did not come in the context tar (COPY --from) are hashed from a header made from lstat, as
 * dockerd's lazy source does (builder/remotecontext/lazycontext.go). security.capability xattrs, which dockerd adds
 * to that header, are not read (Node has no xattr call).
 */
import { createHash, type Hash } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { missingAs } from '../../lib/fsutil.js';

/** The tar header fields tarsum v1 reads. */
export interface SumHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** One typeflag character: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo. */
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.<name> values by name. */
  xattrs?: Record<string, string>;
}

const TYPEFLAGS: Record<string, string> = {
  file: '0', link: '1', symlink: '2', 'character-device': '3', 'block-device': '4', directory: '5', fifo: '6', 'contiguous-file': '7',
};

/** tar-stream's type name as the typeflag byte Go's reader reports. */
export function typeflagOf(type: string | null | undefined): string {
  return TYPEFLAGS[type ?? 'file'] ?? '0';
}

/** A hasher that has taken the header: write the content into it, then `digest('hex')`. */
export function startSum(h: SumHeader): Hash {
  const hasher = createHash('sha256');
  const fields: [string, string][] = [
    ['name', h.name], ['mode', String(h.mode)], ['uid', String(h.uid)], ['gid', String(h.gid)], ['size', String(h.size)],
    ['typeflag', h.typeflag], ['linkname', h.linkname], ['uname', h.uname], ['gname', h.gname],
    ['devmajor', String(h.devmajor)], ['devminor', String(h.devminor)],
  ];
  for (const k of Object.keys(h.xattrs ?? {}).sort()) fields.push([k, h.xattrs![k]!]);
  for (const [k, v] of fields) hasher.update(k + v, 'utf8');
  return hasher;
}

/** Names of the daemon host's users and groups by id, as Go's tar.FileInfoHeader looks them up (read once). */
let hostNames: Promise<{ users: Map<number, string>; groups: Map<number, string> }> | null = null;
function lookupNames(): Promise<{ users: Map<number, string>; groups: Map<number, string> }> {
  const parse = async (file: string): Promise<Map<number, string>> => {
    const m = new Map<number, string>();
    const text = await readFile(file, 'utf8').catch(missingAs(''));
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const id = Number(f[2]);
      if (f.length >= 3 && f[0] && Number.isInteger(id) && !m.has(id)) m.set(id, f[0]);
    }
    return m;
  };
  hostNames ??= Promise.all([parse('/etc/passwd'), parse('/etc/group')]).then(([users, groups]) => ({ users, groups }));
  return hostNames;
}

/** Linux's major and minor of a device number (glibc's gnu_dev_major/minor). */
function devNumbers(rdev: number): [number, number] {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

/**
 * The sum of a file outside the context tar (`rel` without leading slash), from a header made as moby's
 * archive.FileInfoHeader makes it: the full mode with its type bits, the host's user and group names.
 */
export async function lazySum(abs: string, rel: string): Promise<string> {
  const s = await lstat(abs);
  let typeflag = '0';
  let linkname = '';
  if (s.isDirectory()) typeflag = '5';
  else if (s.isSymbolicLink()) { typeflag = '2'; linkname = await readlink(abs); }
  else if (s.isCharacterDevice()) typeflag = '3';
  else if (s.isBlockDevice()) typeflag = '4';
  else if (s.isFIFO()) typeflag = '6';
  const [devmajor, devminor] = typeflag === '3' || typeflag === '4' ? devNumbers(s.rdev) : [0, 0];
  const names = await lookupNames();
  const h = startSum({
    name: s.isDirectory() ? `${rel}/` : rel, mode: s.mode, uid: s.uid, gid: s.gid, size: s.isFile() ? s.size : 0,
    typeflag, linkname, uname: names.users.get(s.uid) ?? '', gname: names.groups.get(s.gid) ?? '', devmajor, devminor,
  });
  if (s.isFile() && s.size > 0) for await (const c of createReadStream(abs)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * The sum of an ADD URL's download as dockerd computes it: a lazy source over a temporary directory holding the
 * file as `name`, mode 0600, owned by the daemon's user. The header names the size, so the hasher is started
 * with it: write the `size` bytes of content into it (as they arrive), then `digest('hex')`.
 */
export async function startDownloadSum(name: string, size: number): Promise<Hash> {
  const names = await lookupNames();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return startSum({
    name, mode: 0o100600, uid, gid, size, typeflag: '0', linkname: '',
    uname: names.users.get(uid) ?? '', gname: names.groups.get(gid) ?? '', devmajor: 0, devminor: 0,
  });
}

/** `dir:` + sha256 of the sorted sums joined by ",". */
export function dirHash(sums: string[]): string {
  return `dir:${createHash('sha256').update([...sums].sort().join(',')).digest('hex')}`;
}

/** `multi:` + sha256 of the source hashes joined by ",". */
export function multiHash(hashes: string[]): string {
  return `multi:${createHash('sha256').update(hashes.join(',')).digest('hex')}`;
}
