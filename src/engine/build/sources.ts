/**
 * COPY/ADD source resolution: which files a step copies (context or `--from` image, globs, symlinks followed
 * inside the root, heredocs, ADD downloads and local archives), each with dockerd's source hash (srchash.ts:
 * file:<sum>, dir:<…>, multi:<…>), and the layer tar packed from them (archives unpacked in place). Every file
 * entry's content is a file: the context's, an image's, or one the step wrote into its scratch directory (a
 * download streamed to disk and summed on the way, a heredoc), so no source is ever held in memory.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { parse as parseContentDisposition } from 'content-disposition';
import { InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import { get as httpGet, goNetError, type HttpResponse } from '../../lib/httpclient.js';
import { hasWildcards, type PatternMatcher } from '../../lib/dockerignore.js';
import { goMatch } from '../../lib/go.js';
import { peek as peekStream } from '../../lib/streams.js';
import { resolveInRoot } from '../fsroot/index.js';
import { looksLikeTar } from './context.js';
import { decompressStream as decompress } from '../../lib/compression.js';
import { dirHash, lazySum, multiHash, startDownloadSum } from './srchash.js';
import { missingAs } from '../../lib/fsutil.js';

export interface Owner { uid: number; gid: number }
export const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

export interface FileEntry {
  /** Path inside the layer, no leading slash. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  /** The file holding the content (type 'file'): in the root, or written by the step in its scratch directory. */
  source?: string;
  linkname?: string;
  /** Archive to unpack at `path` (ADD). */
  archive?: string;
}

/** Where a step's sources are and how they are summed. */
export interface SourceRoot {
  dir: string;
  /** A `--from` image (its paths are not checked against the context's bounds; missing ones are 404s). */
  fromImage: boolean;
  /** The context tar's sums by absolute path (dockerd's tarsum), when the root is the context. */
  contextSums?: ReadonlyMap<string, string>;
}

export interface CopyRequest {
  kind: 'copy' | 'add';
  root: SourceRoot;
  /** Expanded source words (heredoc names removed). */
  sources: string[];
  /** Heredoc sources: file name → content. */
  heredocs: ReadonlyMap<string, string>;
  /** The destination inside the image, resolved, no leading slash. */
  destRel: string;
  destIsDir: boolean;
  owner: Owner;
  /** --chmod: the mode a copied file or directory gets from its own (octal: always the same; symbolic: relative). */
  chmod?: Chmod;
  /** --exclude: paths below a source (relative to it; a file source: its name) left out. */
  exclude?: PatternMatcher;
  /** COPY --parents: each source keeps its path (from the root, or from a `/./` pivot in the source). */
  parents?: boolean;
  /** ADD --checksum for URL sources: "sha256:<hex>" (sha384/sha512 too); a mismatch fails the step. */
  checksum?: string;
  /** What a checksum mismatch names first ("Dockerfile line 3"). */
  where?: string;
  /**
   * A private directory of the step (under the daemon's root; made 0700 at first use) for the content of
   * downloads and heredocs: the caller removes it when the step ends, whatever the outcome. Needed for those.
   */
  scratchDir?: string;
  signal: AbortSignal;
  /** lstat of a path of the image the step builds on (symlinks resolved in the image). */
  statInImage(p: string): Promise<Stats | null>;
}

export interface CollectedSources { entries: FileEntry[]; srcHash: string }

/** A --chmod: the new mode from the current one (permission and special bits only). */
export type Chmod = (mode: number, isDir: boolean) => number;

/**
 * --chmod as BuildKit takes it: octal ("755", "0644") or symbolic ("u=rwx,go=rx", "+x", "a-w,g+X"), the latter
 * applied to each file's own mode. Throws on anything else.
 */
export function parseChmod(v: string): Chmod {
  if (/^[0-7]{3,4}$/.test(v)) { const m = parseInt(v, 8); return () => m; }
  const clauses = v.split(',');
  const steps: { who: number; op: string; perm: string }[] = [];
  for (const c of clauses) {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(c);
    if (!m) throw new InvalidParameterError(`invalid chmod parameter: ${v}`);
    let who = 0;
    for (const w of m[1]!) who |= w === 'u' ? 0o4700 : w === 'g' ? 0o2070 : w === 'o' ? 0o1007 : 0o7777;
    steps.push({ who: who === 0 ? 0o7777 : who, op: m[2]!, perm: m[3]! });
  }
  return (mode, isDir) => {
    let cur = mode & 0o7777;
    for (const { who, op, perm } of steps) {
      let bits = 0;
      for (const p of perm) {
        if (p === 'r') bits |= 0o444;
        else if (p === 'w') bits |= 0o222;
        else if (p === 'x') bits |= 0o111;
        else if (p === 'X') { if (isDir || (cur & 0o111)) bits |= 0o111; }
        else if (p === 's') bits |= 0o6000;
        else if (p === 't') bits |= 0o1000;
      }
      bits &= who;
      if (op === '+') cur |= bits;
      else if (op === '-') cur &= ~bits;
      else cur = (cur & ~(who & 0o7777)) | bits;
    }
    return cur;
  };
}

function modeOf(chmod: Chmod | undefined, mode: number, isDir: boolean): number {
  return chmod ? chmod(mode & 0o7777, isDir) : mode & 0o7777;
}

/**
 * dockerd's source sum of a path under the root: the context's tarsum when the tar had the entry (else, for the
 * context, the path itself), else one computed from lstat. Like dockerd's Hash(), a symlink (`link`: the walk
 * met one; sources are resolved already) is followed within the root first. null when the path does not resolve
 * (dockerd leaves such entries out of a directory's hash).
 */
export async function sourceSum(root: SourceRoot, abs: string, opts: { link?: boolean } = {}): Promise<string | null> {
  const rel = abs.slice(root.dir.length).replace(/^\/+/, '');
  const real = opts.link ? join(root.dir, await resolveInRoot(root.dir, rel)) : abs;
  if (root.contextSums && root.contextSums.size > 0) return root.contextSums.get(real) ?? root.contextSums.get(abs) ?? rel;
  return lazySum(real, real.slice(root.dir.length).replace(/^\/+/, '')).catch(missingAs(null));
}

/**
 * Source hashes of COPY/ADD steps by source root and sources, kept for the daemon's life (the most recent
 * SourceSums.MAX). The root is named by what fixes its content: an image ID (COPY --from: the hash of its config,
 * which names its layers' content, and registered layer directories are read-only) or a context's body hash
 * (`context:sha256:…`: the same bytes unpack to the same tree); so the same sources in the same root always sum
 * the same. Downloads and git sources are never remembered.
 */
export class SourceSums {
  static readonly MAX = 2048;
  private readonly sums = new Map<string, string>();

  static key(root: string, s: { kind?: 'copy' | 'add'; sources: string[]; heredocs: ReadonlyMap<string, string>; exclude: string[]; parents: boolean; destIsDir: boolean }): string {
    return JSON.stringify([root, s.kind ?? 'copy', s.sources, [...s.heredocs], s.exclude, s.parents, s.destIsDir]);
  }

  get(key: string): string | undefined {
    const v = this.sums.get(key);
    if (v !== undefined) { this.sums.delete(key); this.sums.set(key, v); }
    return v;
  }

  set(key: string, srcHash: string): void {
    this.sums.delete(key);
    this.sums.set(key, srcHash);
    if (this.sums.size > SourceSums.MAX) this.sums.delete(this.sums.keys().next().value!);
  }
}

/** The files a COPY/ADD step copies and its source hash. */
export async function collectSources(req: CopyRequest): Promise<CollectedSources> {
  const c = new SourceCollector(req);
  const multi = req.sources.length + req.heredocs.size > 1;
  if (multi && !req.destIsDir) throw c.multiError();
  for (const [name, content] of req.heredocs) await c.addHeredoc(name, content);
  for (const src of req.sources) {
    if (req.kind === 'add' && /^https?:\/\//.test(src)) await c.addDownload(src);
    else await c.addPattern(src);
  }
  return { entries: c.entries, srcHash: c.count > 1 ? multiHash(c.hashes) : c.hashes[0] ?? '' };
}

class SourceCollector {
  readonly entries: FileEntry[] = [];
  readonly hashes: string[] = [];
  count = 0;
  private readonly name: string;

  constructor(private readonly req: CopyRequest) {
    this.name = req.kind.toUpperCase();
  }

  multiError(): InvalidParameterError {
    return new InvalidParameterError(`When using ${this.name} with more than one source file, the destination must be a directory and end with a /`);
  }

  private into(base: string): string {
    return this.req.destIsDir ? posix.join(this.req.destRel, base) : this.req.destRel;
  }

  /** A new file of the step's own (O_EXCL, 0600) in its scratch directory: its path. */
  private async scratchFile(kind: string): Promise<string> {
    const dir = this.req.scratchDir;
    if (!dir) throw new Error(`${this.name}: no scratch directory for a ${kind}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${kind}-${randomBytes(8).toString('hex')}`);
  }

  async addHeredoc(name: string, content: string): Promise<void> {
    const data = Buffer.from(content);
    const file = await this.scratchFile('heredoc');
    await writeFile(file, data, { flag: 'wx', mode: 0o600 });
    const { owner, chmod } = this.req;
    this.entries.push({ path: this.into(name), type: 'file', mode: modeOf(chmod, 0o644, false), ...owner, mtime: new Date(0), size: data.length, source: file });
    this.hashes.push(`file:${createHash('sha256').update(data).digest('hex')}`);
    this.count++;
  }

  /**
   * An ADD URL: the body streamed into a file of the step's scratch directory, summed on the way (dockerd's sum
   * and --checksum's), never held in memory; the file is removed here when anything fails, else with the step.
   */
  async addDownload(src: string): Promise<void> {
    let resp: HttpResponse;
    try {
      resp = await httpGet(src, { signal: this.req.signal });
    } catch (e) {
      throw goNetError('GET', src, e);
    }
    if (resp.statusCode < 200 || resp.statusCode > 299) {
      resp.body.destroy();
      throw new InvalidParameterError(`${this.name} failed: failed to GET ${src} with status ${resp.statusCode} ${resp.statusMessage}: `);
    }
    // dockerd names the file before it reads the body
    const base = downloadName(new URL(src).pathname, resp.headers['content-disposition'] ?? null);
    if (!base) { resp.body.destroy(); throw new InvalidParameterError('cannot determine filename from url: ' + src); }
    let file: string;
    try {
      file = await this.scratchFile('download');
    } catch (e) {
      resp.body.destroy();
      throw e;
    }
    try {
      const { size, sum } = await this.download(src, resp, base, file);
      const lm = resp.headers['last-modified'];
      // Last-Modified, else the Unix epoch (dockerd's zero time)
      const parsed = lm ? new Date(lm) : null;
      const mtime = parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date(0);
      const { owner, chmod } = this.req;
      this.entries.push({ path: this.into(base), type: 'file', mode: modeOf(chmod, 0o600, false), ...owner, mtime, size, source: file });
      // dockerd names a download by its bare sum, without "file:"
      this.hashes.push(sum);
      this.count++;
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
  }

  /** The body into `file` (created O_EXCL, 0600): its size and dockerd's sum; --checksum checked. */
  private async download(src: string, resp: HttpResponse, base: string, file: string): Promise<{ size: number; sum: string }> {
    const cl = resp.headers['content-length'];
    const declared = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null;
    // the sum's header names the size: with a Content-Length it is known before the body (the client fails a
    // shorter body), so the sum is taken on the way; without one, from the file afterwards
    let sum: Hash | null = declared !== null ? await startDownloadSum(base, declared) : null;
    const [algo, want] = this.req.checksum ? this.req.checksum.split(':') as [string, string] : [];
    const check = algo ? createHash(algo) : null;
    let size = 0;
    const tap = new Transform({
      transform(c: Buffer, _enc, cb) { size += c.length; sum?.update(c); check?.update(c); cb(null, c); },
    });
    const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    // which side failed first: the body (a network error, in Go's words) or the file (the system's own)
    let failed: 'body' | 'file' | undefined;
    resp.body.once('error', () => { failed ??= 'body'; });
    out.once('error', () => { failed ??= 'file'; });
    try {
      await pipeline(resp.body, tap, out);
    } catch (e) {
      if (failed === 'file') throw e;
      throw goNetError('GET', src, e);
    }
    if (check) {
      const got = check.digest('hex');
      if (got !== want) throw new InvalidParameterError(`${this.req.where ? `${this.req.where}: ` : ''}${this.name} failed: checksum mismatch for ${src}: expected ${this.req.checksum}, got ${algo}:${got}`);
    }
    if (sum === null || size !== declared) {
      sum = await startDownloadSum(base, size);
      for await (const c of createReadStream(file)) sum.update(c as Buffer);
    }
    return { size, sum: sum.digest('hex') };
  }

  /** A context or image path, maybe a glob: every match, symlinks followed inside the root. */
  async addPattern(src: string): Promise<void> {
    const { root } = this.req;
    const found = await this.matches(src);
    const manyFromOne = found.length > 1;
    if (manyFromOne && !this.req.destIsDir) throw this.multiError();
    for (const f of found) {
      const abs = join(root.dir, f.real);
      if (this.req.exclude && !f.st.isDirectory() && this.req.exclude.matches(posix.basename(f.rel))) continue;
      if (this.req.parents) {
        // the source's own path under the destination: from the root, or from the last "/./" pivot
        const pivot = src.lastIndexOf('/./');
        const skip = pivot >= 0 ? posix.normalize(src.slice(0, pivot)).replace(/^\/+/, '').split('/').filter((x) => x && x !== '.').length : 0;
        const keep = f.rel.split('/').filter(Boolean).slice(skip).join('/');
        await this.addTree(abs, posix.join(this.req.destRel, keep), f.st, true);
        continue;
      }
      if (f.st.isDirectory()) await this.addTree(abs, this.req.destRel, f.st);
      else if (this.req.kind === 'add' && await isArchive(abs)) {
        this.entries.push({ path: this.req.destRel, type: 'directory', mode: 0o755, ...this.req.owner, mtime: new Date(), size: 0, archive: abs });
        this.hashes.push(`file:${await sourceSum(root, abs) ?? ''}`);
        this.count++;
      } else await this.addTree(abs, await this.fileTarget(f.rel, manyFromOne), f.st);
    }
    if (manyFromOne || this.req.parents) this.count = Math.max(this.count, 2);
  }

  private async matches(src: string): Promise<{ rel: string; real: string; st: Stats }[]> {
    const { root } = this.req;
    const clean = posix.normalize('/' + src);
    if (!root.fromImage) {
      const rel = posix.normalize(src);
      if (rel === '..' || rel.startsWith('../')) throw new InvalidParameterError(`${this.name} failed: forbidden path outside the build context: ${src} ()`);
    }
    const candidates = hasWildcards(src) ? await globIn(root.dir, clean.slice(1)) : [clean.slice(1)];
    const found: { rel: string; real: string; st: Stats }[] = [];
    for (const m of candidates) {
      // symlinks followed inside the context (or the source image), never into the host
      const real = await resolveInRoot(root.dir, m);
      const s = await lstat(join(root.dir, real)).catch(missingAs(null));
      if (s && !s.isSymbolicLink()) found.push({ rel: m, real, st: s });
    }
    if (found.length === 0) {
      if (hasWildcards(src)) throw new InvalidParameterError(`${this.name} failed: no source files were specified`);
      if (root.fromImage) throw new NotFoundError(`${this.name} failed: stat ${clean.slice(1)}: file does not exist`);
      throw new InvalidParameterError(`${this.name} failed: file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`);
    }
    return found;
  }

  /** A file's path in the layer: inside the destination when it is (or names) a directory. */
  private async fileTarget(rel: string, manyFromOne: boolean): Promise<string> {
    const { destRel } = this.req;
    if (this.req.destIsDir || manyFromOne) return posix.join(destRel, posix.basename(rel));
    const ds = await this.req.statInImage('/' + destRel);
    return ds?.isDirectory() ? posix.join(destRel, posix.basename(rel)) : destRel;
  }

  /** A file, or a directory with everything under it (dir: hash of the sorted sums, as dockerd's walkSource). */
  private async addTree(abs: string, target: string, st0: Stats, withParents = false): Promise<void> {
    const { root, owner, chmod } = this.req;
    this.count++;
    if (withParents) {
      // --parents: the directories on the way, as new directories (0755, the owner)
      const parts = target.split('/').filter(Boolean).slice(0, -1);
      for (let i = this.req.destRel.split('/').filter(Boolean).length + 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join('/');
        if (!this.entries.some((e) => e.path === p)) this.entries.push({ path: p, type: 'directory', mode: 0o755, ...owner, mtime: new Date(0), size: 0 });
      }
    }
    if (!st0.isDirectory()) {
      this.entries.push(await fileEntry(abs, target, st0, owner, chmod));
      this.hashes.push(`file:${await sourceSum(root, abs) ?? ''}`);
      return;
    }
    // the walk covers the directory itself, except when it is the source's root
    const sums: string[] = [];
    const own = abs === root.dir ? null : await sourceSum(root, abs);
    if (own !== null) sums.push(own);
    if (target) this.entries.push(await fileEntry(abs, target, st0, owner, chmod));
    await this.walk(abs, target, sums, '');
    this.hashes.push(dirHash(sums));
  }

  private async walk(dir: string, target: string, sums: string[], rel: string): Promise<void> {
    const { root, owner, chmod, exclude } = this.req;
    for (const n of (await readdir(dir)).sort()) {
      const ca = join(dir, n);
      const s = await lstat(ca);
      const r = rel ? `${rel}/${n}` : n;
      // --exclude: matched below the source; an excluded directory goes whole unless an exception may bring back part of it
      if (exclude?.matches(r) && !(s.isDirectory() && exclude.hasExclusions)) continue;
      const ct = target ? `${target}/${n}` : n;
      this.entries.push(await fileEntry(ca, ct, s, owner, chmod));
      const sum = await sourceSum(root, ca, { link: s.isSymbolicLink() });
      if (sum !== null) sums.push(sum);
      if (s.isDirectory()) await this.walk(ca, ct, sums, r);
    }
  }
}

async function fileEntry(abs: string, path: string, s: import('node:fs').Stats, owner: { uid: number; gid: number }, chmod?: Chmod): Promise<FileEntry> {
  const base = { path, uid: owner.uid, gid: owner.gid, mtime: s.mtime };
  if (s.isSymbolicLink()) return { ...base, type: 'symlink', mode: 0o777, size: 0, linkname: await readlink(abs) };
  if (s.isDirectory()) return { ...base, type: 'directory', mode: modeOf(chmod, s.mode, true), size: 0 };
  return { ...base, type: 'file', mode: modeOf(chmod, s.mode, false), size: s.size, source: abs };
}

/** The name of a downloaded ADD source: the URL path's last part, else Content-Disposition's filename (dockerd's). */
function downloadName(pathname: string, disposition: string | null): string {
  if (pathname && !pathname.endsWith('/')) {
    const b = posix.basename(pathname);
    if (b) return b;
  }
  if (disposition) {
    try {
      const f = parseContentDisposition(disposition).parameters.filename;
      if (f && !f.endsWith('/')) return posix.basename(f);
    } catch { /* unparsable: no name */ }
  }
  return '';
}

async function isArchive(p: string): Promise<boolean> {
  const { head, stream } = await peekStream(createReadStream(p), 6);
  stream.destroy();
  const { stream: d } = await decompress(Readable.from([head]));
  void d;
  const full = await decompress(createReadStream(p));
  try {
    const { head: h2, stream: s2 } = await peekStream(full.stream, 512);
    s2.destroy();
    return looksLikeTar(h2);
  } catch {
    return false;
  }
}

/** Go filepath.Glob of a slash pattern under root. */
async function globIn(root: string, pattern: string): Promise<string[]> {
  const parts = pattern.split('/').filter(Boolean);
  let cur = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of cur) {
      if (!hasWildcards(part)) {
        const p = base ? `${base}/${part}` : part;
        if (await lstat(join(root, await resolveInRoot(root, p, { followLast: false }))).catch(missingAs(null))) next.push(p);
        continue;
      }
      const names = await readdir(join(root, await resolveInRoot(root, base))).catch(missingAs([] as string[]));
      for (const n of names.sort()) if (goMatch(part, n)) next.push(base ? `${base}/${n}` : n);
    }
    cur = next;
  }
  return cur;
}

/**
 * A layer tar from file entries (ADD archives unpacked in place). When the consumer stops early (the layer store
 * failed, e.g. ENOSPC), the packer and its sources stop too: every stream's error is handled (an unhandled one
 * on a pack entry used to end the daemon).
 */
export function packEntries(entries: FileEntry[]): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  // sources still open: closed at once when the consumer stops (an open read stream of a context file kept a
  // removed file's space until the daemon ended)
  const open = new Set<Readable>();
  const source = (p: string): Readable => {
    const rs = createReadStream(p);
    open.add(rs);
    rs.on('close', () => open.delete(rs));
    return rs;
  };
  let onStop!: () => void;
  const stopped = new Promise<never>((_, reject) => { onStop = () => reject(new Error('layer consumer stopped')); });
  stopped.catch(() => { /* observed through until() */ });
  const until = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped]);
  out.on('close', () => {
    onStop();
    for (const s of open) s.destroy();
    open.clear();
    if (!pack.destroyed) pack.destroy();
  });
  pack.on('error', (err: Error) => { if (!out.destroyed) out.destroy(err); });
  (async () => {
    for (const e of entries) {
      if (e.archive) {
        const { stream } = await until(decompress(source(e.archive)));
        const ex = tar.extract();
        const done = new Promise<void>((resolve, reject) => {
          ex.on('entry', (h, body, next) => {
            const name = posix.normalize('/' + h.name).slice(1).replace(/\/+$/, '');
            if (!name) { body.resume(); body.on('end', next); return; }
            const hdr = { ...h, name: posix.join(e.path, name) + (h.type === 'directory' ? '/' : '') };
            if (h.type === 'link' && h.linkname) hdr.linkname = posix.join(e.path, posix.normalize('/' + h.linkname).slice(1));
            const w = pack.entry(hdr, (err) => { if (err) reject(err); else next(); });
            pipeline(body, w).catch(reject);
          });
          ex.on('finish', resolve);
          ex.on('error', reject);
        });
        await until(Promise.all([pipeline(stream, ex), done]));
        continue;
      }
      const header = {
        name: e.type === 'directory' ? `${e.path}/` : e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime,
        type: e.type, size: e.type === 'file' ? e.size : 0, linkname: e.linkname,
      } as tar.Header;
      if (e.type !== 'file') { await until(new Promise<void>((res, rej) => pack.entry(header, (err) => (err ? rej(err) : res())))); continue; }
      await until(new Promise<void>((res, rej) => {
        const w = pack.entry(header, (err) => (err ? rej(err) : res()));
        pipeline(source(e.source!), w).catch(rej);
      }));
    }
    pack.finalize();
  })().catch((err) => {
    if (!out.destroyed) out.destroy(err as Error);
    if (!pack.destroyed) pack.destroy();
    for (const s of open) s.destroy();
  });
  return out;
}

