import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { newHasher, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, SystemError, WharfError } from '../../lib/errors.js';
import { execCollect } from '../../lib/exec.js';
import { fileWriterPool, WRITERS, type FileJob } from './filewriter.js';
import { Semaphore } from '../../lib/sync.js';

/**
 * Streaming extraction of one OCI layer tar into an empty directory, in the overlay "diff" format:
 * whiteouts (`.wh.<name>`) become 0/0 character devices, opaque markers (`.wh..wh..opq`) become
 * `trusted.overlay.opaque=y` on the directory. The vfs driver applies such a directory onto a copy of its parent.
 *
 * One pass: the raw bytes are hashed (diffID) while tar-stream parses them. File writes are pipelined: small
 * files are gathered in batches that worker threads write (filewriter.ts) while parsing continues, larger ones
 * are streamed; operations Node cannot do (mknod, setxattr) are collected and applied at the end with one `sh`
 * and one `setfattr --restore`. WHARF_EXTRACT_MODE=sync (small files on the main thread) or =async (thread-pool
 * calls) select the older strategies, for comparison.
 *
 * Security: paths are normalized component by component and an entry climbing above the root is refused; a path
 * whose parent traverses a symlink is resolved inside the layer and refused if the link is absolute or climbs out;
 * a hardlink must name an entry of this layer by a path without symlinks. On refusal the whole directory is removed.
 * Every operation (create, link, mknod, xattr, chmod/chown/utimes, also the deferred ones at the end and the
 * writer threads' files) runs on a path whose parent chain was checked with lstat to be real directories of the
 * layer: the check is remembered per directory until this extractor removes something (nothing else writes into
 * the directory meanwhile), and done afresh before the deferred work. Work deferred to the end (device nodes,
 * fifos, whiteouts, hard links to them) is carried out before any entry replaces a path, so that it always
 * applies to the tree as it stood when its entry came.
 */

const oOpen = promisify(fs.open);
function oWrite(fd: number, buf: Uint8Array, off: number, len: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, off, len, null, (err, n) => (err ? reject(err) : resolve(n))));
}
const oClose = promisify(fs.close);
const oFutimes = promisify(fs.futimes);
const oFchown = promisify(fs.fchown);
const oFchmod = promisify(fs.fchmod);
const { mkdir, symlink, lchown, lutimes, chmod, chown, utimes, link, unlink, rm, lstat } = fs.promises;

const WRITE_CONCURRENCY = 32;
const MODE = process.env.WHARF_EXTRACT_MODE === 'async' ? 'async' : process.env.WHARF_EXTRACT_MODE === 'sync' ? 'sync' : 'threads';
/** A batch of small files goes to a writer thread when it holds this many bytes or files. */
const BATCH_BYTES = 1 << 20;
const BATCH_FILES = 256;
/** Batches queued on the writer threads (all extractions together) before parsing waits. */
const BATCH_INFLIGHT = 2 * WRITERS;
const BUFFER_FILE_MAX = 1 << 20;
/** Files up to this size go to the writer threads (a larger one is a batch of its own); bigger ones stream. */
const THREAD_FILE_MAX = 16 << 20;
const BUFFER_TOTAL_MAX = 64 << 20;
const WX = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

export interface ExtractResult {
  diffId: Digest;
  /** Sum of the sizes of the regular files in the layer (docker's layer size). */
  size: number;
  /** Bytes of the tar stream. */
  tarSize: number;
  entries: number;
}

type Kind = 'dir' | 'file' | 'symlink' | 'node' | 'whiteout';

interface NodeSpec {
  /** The tar entry's name, for errors. */
  name: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | null;
}

interface DirAttr {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

let umaskCache: number | null = null;
/** The process's umask (read once; an extraction thread is told it with setThreadUmask). */
export function currentUmask(): number {
  if (umaskCache === null) {
    // process.umask() without argument reads the mask; set it back to be sure it is unchanged.
    const m = process.umask(0o022);
    process.umask(m);
    umaskCache = m;
  }
  return umaskCache;
}

/** Sets the umask extraction assumes (an extraction thread cannot read it: process.umask is main-thread only). */
export function setThreadUmask(m: number): void {
  umaskCache = m;
}

export function escapeError(name: string): InvalidParameterError {
  return new InvalidParameterError(`invalid tar entry ${JSON.stringify(name)}: path escapes the layer root`);
}

function notDirError(name: string, key: string): InvalidParameterError {
  return new InvalidParameterError(
    `invalid tar entry ${JSON.stringify(name)}: ${JSON.stringify('/' + key)} is not a directory of the layer (symlink or other file in its path)`,
  );
}

/** Normalizes a tar path to components; throws when `..` climbs above the root (stops there with `clamp`). */
export function cleanComponents(name: string, clamp = false): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) {
        if (clamp) continue;
        throw escapeError(name);
      }
      out.pop();
    } else out.push(c);
  }
  return out;
}

/**
 * On an extraction thread (extractworker.ts) directories, symlinks and hard links are made, and directory
 * attributes set at the end, with blocking calls:
 * the thread has nothing else to do meanwhile, and a thread-pool round trip awaited per call cost more than the
 * call (the Debian layer has ~800 directories and ~650 symlinks, made one after the other in tar order). On the
 * daemon's main thread they stay asynchronous.
 */
let syncMeta: boolean | undefined;
/** Read at first use: node:worker_threads is not loaded at the daemon's start-up (bench/README.md, memory). */
const SYNC_META = (): boolean => (syncMeta ??= !isMainThread);

async function mkdirMeta(p: string): Promise<void> {
  if (SYNC_META()) fs.mkdirSync(p, { mode: 0o755 });
  else await mkdir(p, { mode: 0o755 });
}

async function symlinkMeta(target: string, p: string, uid: number, gid: number, mtime: Date): Promise<void> {
  if (SYNC_META()) {
    fs.symlinkSync(target, p);
    if (uid !== 0 || gid !== 0) fs.lchownSync(p, uid, gid);
    fs.lutimesSync(p, mtime, mtime);
    return;
  }
  await symlink(target, p);
  if (uid !== 0 || gid !== 0) await lchown(p, uid, gid);
  await lutimes(p, mtime, mtime);
}

async function linkMeta(existing: string, p: string): Promise<void> {
  if (SYNC_META()) fs.linkSync(existing, p);
  else await link(existing, p);
}

/** What an entry's watcher (ExtractOptions.onEntry) is given: the entry's content, then its end. */
export interface EntryWatcher {
  update(chunk: Buffer): void;
  end(): void;
}

export interface ExtractOptions {
  /**
   * 'layer' (default): an image layer — OCI whiteouts and opaque markers converted, owners, device nodes and
   * extended attributes kept, a name climbing above the root refused.
   * 'context': a build context (data, as dockerd unpacks it) — names cleaned as in a chroot (`..` stops at the
   * root), `.wh.` names are ordinary files, owners, device nodes and extended attributes dropped, and a symlink
   * in an entry's parent path refused. Both are confined the same way.
   */
  kind?: 'layer' | 'context';
  /** Called for every entry but the root with its header and lexical path under `dir`; sees its content. */
  onEntry?: (h: tarStream.Header, path: string) => EntryWatcher | null;
}

/** Extracts `tar` (uncompressed) into `dir` (must exist and be empty); on failure `dir` is removed. */
export async function extractLayerTar(tar: Readable, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const ex = new Extractor(dir, opts);
  try {
    return await ex.run(tar);
  } catch (e) {
    tar.destroy();
    await ex.settle();
    // the extraction's error is the answer; a directory left by a failing rm goes with the store's repair at open
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    if (e instanceof WharfError) throw e;
    const err = e as NodeJS.ErrnoException;
    const prefix = opts.kind === 'context' ? '' : 'failed to register layer: ';
    if (err && typeof err.code === 'string') throw new SystemError(`${prefix}${err.message}`, { cause: e });
    throw new InvalidParameterError(`${prefix}${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

class Extractor {
  private known = new Map<string, Kind>();
  private symlinks = new Map<string, string>();
  private parentCache = new Map<string, string>();
  private pending = new Map<string, Promise<void>>();
  private pendingAll = new Set<Promise<void>>();
  private firstError: unknown = null;
  private nodes = new Map<string, NodeSpec>();
  /** Hard links to nodes not made yet: target key, link key, entry name. */
  private deferredLinks: [string, string, string][] = [];
  /** Directory keys whose whole chain from the root was checked with lstat to be directories (not symlinks). */
  private verified = new Set<string>();
  private dirs = new Map<string, DirAttr>();
  private opaque = new Set<string>();
  private xattrs = new Map<string, Map<string, Buffer>>();
  private sem = new Semaphore(WRITE_CONCURRENCY);
  private bufferedBytes = 0;
  private bufferWaiters: (() => void)[] = [];
  private umask = currentUmask();
  /** Small files gathered for a writer thread; each file's key is tracked with `done`. */
  private batch: { jobs: FileJob[]; chunks: Buffer[]; bytes: number; keys: Set<string>; done: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private batchesOut = new Set<Promise<void>>();
  size = 0;
  entries = 0;

  private readonly context: boolean;

  constructor(private readonly root: string, private readonly opts: ExtractOptions = {}) {
    this.context = opts.kind === 'context';
  }

  private abs(key: string): string {
    return key === '' ? this.root : join(this.root, key);
  }

  async run(tar: Readable): Promise<ExtractResult> {
    const extract = tarStream.extract();
    const hasher = newHasher();
    let tarSize = 0;
    let stopped = false;
    // The parser may be closed at any moment (a failed entry ends the loop below, which destroys it): 'close' is
    // watched from the start, so that a feeder waiting for 'drain' of a parser that has already closed does not wait
    // forever (it did: ENOSPC on a large file hung every import and pull that filled the disk).
    let closed = false;
    let onClosed!: () => void;
    const closedP = new Promise<void>((resolve) => { onClosed = resolve; });
    extract.once('close', () => { closed = true; onClosed(); });
    const feeder = (async () => {
      try {
        for await (const chunk of tar) {
          if (stopped || closed) break;
          hasher.update(chunk as Buffer);
          tarSize += (chunk as Buffer).length;
          if (!extract.write(chunk) && !closed) {
            let onDrain!: () => void;
            await Promise.race([new Promise<void>((resolve) => { onDrain = resolve; extract.once('drain', onDrain); }), closedP]);
            extract.off('drain', onDrain);
          }
        }
        if (!stopped && !closed) extract.end(undefined as never);
      } catch (e) {
        extract.destroy(e as Error);
      }
    })();
    try {
      for await (const entry of extract) {
        await this.entry(entry.header, entry as unknown as Readable);
        if (this.firstError) throw this.firstError;
      }
    } catch (e) {
      stopped = true;
      extract.destroy(new Error('extraction aborted'));
      tar.destroy(); // do not wait for a stalled source
      await feeder;
      throw e;
    }
    await feeder;
    await this.settle();
    if (this.firstError) throw this.firstError;
    await this.finish();
    return { diffId: `sha256:${hasher.digest('hex')}`, size: this.size, tarSize, entries: this.entries };
  }

  /** Waits for every pending write (errors recorded in firstError). */
  async settle(): Promise<void> {
    await this.sendBatch();
    while (this.pendingAll.size) await Promise.allSettled([...this.pendingAll]);
  }

  /** Adds a small file to the current batch (sent when full). */
  private async addToBatch(key: string, p: string, chunks: Buffer[], len: number, mode: number, uid: number, gid: number, mtime: Date): Promise<void> {
    if (!this.batch) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      this.batch = { jobs: [], chunks: [], bytes: 0, keys: new Set(), done, resolve, reject };
    }
    const b = this.batch;
    b.jobs.push({ path: p, mode, uid, gid, mtime: mtime.getTime() / 1000, len });
    for (const c of chunks) b.chunks.push(c);
    b.bytes += len;
    b.keys.add(key);
    this.track(key, b.done);
    if (b.bytes >= BATCH_BYTES || b.jobs.length >= BATCH_FILES) await this.sendBatch();
  }

  /** Hands the current batch to a writer thread, waiting first while too many batches are queued. */
  private async sendBatch(): Promise<void> {
    const b = this.batch;
    if (!b) return;
    this.batch = null;
    const pool = fileWriterPool();
    while (pool.inflight >= BATCH_INFLIGHT && this.batchesOut.size) await Promise.race(this.batchesOut);
    const data = pool.takeBuffer(b.bytes);
    const view = new Uint8Array(data, 0, b.bytes);
    let at = 0;
    for (const c of b.chunks) { view.set(c, at); at += c.length; }
    const out = pool.write(b.jobs, data, this.umask).then(b.resolve, (e: unknown) => { b.reject(e); });
    this.batchesOut.add(out);
    void out.then(() => this.batchesOut.delete(out));
  }

  private track(key: string, p: Promise<void>): void {
    const wrapped = p.catch((e) => {
      if (!this.firstError) this.firstError = e;
    });
    this.pending.set(key, wrapped);
    this.pendingAll.add(wrapped);
    void wrapped.then(() => {
      this.pendingAll.delete(wrapped);
      if (this.pending.get(key) === wrapped) this.pending.delete(key);
    });
  }

  private async waitFor(key: string): Promise<void> {
    if (this.batch?.keys.has(key)) await this.sendBatch();
    const p = this.pending.get(key);
    if (p) await p;
  }

  /**
   * Resolves parent components to a real directory key inside the layer, creating missing directories.
   * Symlinks created in this layer are followed if they stay inside; absolute or escaping links are refused.
   */
  private async resolveDir(parts: string[], name: string, depth = 0): Promise<string> {
    if (parts.length === 0) return '';
    const whole = parts.join('/');
    const cached = this.parentCache.get(whole);
    if (cached !== undefined) return cached;
    if (depth > 40) throw new InvalidParameterError(`invalid tar entry ${JSON.stringify(name)}: too many levels of symbolic links`);
    let cur: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      cur.push(parts[i]!);
      const key = cur.join('/');
      const k = this.known.get(key);
      if (k === undefined || k === 'whiteout') {
        await this.checkDir(cur.slice(0, -1).join('/'), name);
        if (k === 'whiteout' && !this.nodes.delete(key)) await unlink(this.abs(key)); // a whiteout already made
        await mkdirMeta(this.abs(key));
        this.verified.add(key); // mkdir made a real directory under a checked parent (it never follows a final symlink)
        this.known.set(key, 'dir');
      } else if (k === 'dir') {
        continue;
      } else if (k === 'symlink') {
        if (this.context) {
          throw new InvalidParameterError(`invalid tar entry ${JSON.stringify(name)}: parent path ${JSON.stringify(key)} is a symlink`);
        }
        const target = this.symlinks.get(key)!;
        if (target.startsWith('/')) {
          throw new InvalidParameterError(
            `invalid tar entry ${JSON.stringify(name)}: parent path traverses symlink ${JSON.stringify('/' + key)} -> ${JSON.stringify(target)} pointing outside the layer`,
          );
        }
        let resolved: string[];
        try {
          resolved = cleanComponents([...cur.slice(0, -1), target].join('/'));
        } catch {
          throw new InvalidParameterError(
            `invalid tar entry ${JSON.stringify(name)}: parent path traverses symlink ${JSON.stringify('/' + key)} -> ${JSON.stringify(target)} pointing outside the layer`,
          );
        }
        const real = await this.resolveDir(resolved, name, depth + 1);
        cur = real === '' ? [] : real.split('/');
      } else {
        throw new InvalidParameterError(`invalid tar entry ${JSON.stringify(name)}: parent ${JSON.stringify('/' + key)} is not a directory`);
      }
    }
    const real = cur.join('/');
    this.parentCache.set(whole, real);
    return real;
  }

  /**
   * Checks with lstat that `key` and every directory above it up to the root are directories (a symlink is not),
   * unless already checked since this extractor last removed something. Throws naming the entry.
   */
  private async checkDir(key: string, name: string): Promise<void> {
    if (this.verified.has(key)) return;
    if (key !== '') await this.checkDir(key.slice(0, Math.max(0, key.lastIndexOf('/'))), name);
    let st: fs.Stats;
    try {
      st = SYNC_META() ? fs.lstatSync(this.abs(key)) : await lstat(this.abs(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') throw notDirError(name, key);
      throw e;
    }
    if (!st.isDirectory()) throw notDirError(name, key);
    this.verified.add(key);
  }

  /** The parent key of `key` ('' for the root's entries). */
  private static parentOf(key: string): string {
    const i = key.lastIndexOf('/');
    return i < 0 ? '' : key.slice(0, i);
  }

  /**
   * Makes the device nodes, fifos and whiteouts gathered so far, and the hard links to them, now (they are
   * otherwise made at the end): before an entry replaces a path, so that they apply to the tree they were meant for.
   */
  private async flushNodes(): Promise<void> {
    if (!this.nodes.size) return;
    const nodes = [...this.nodes];
    const links = this.deferredLinks;
    this.nodes = new Map();
    this.deferredLinks = [];
    for (const [k, n] of nodes) await this.checkDir(Extractor.parentOf(k), n.name);
    await mknodBatch(nodes.map(([k, n]) => [this.abs(k), n] as [string, NodeSpec]));
    for (const [k, n] of nodes) {
      if (n.mtime === null) continue;
      const p = this.abs(k);
      if (n.uid !== 0 || n.gid !== 0) await lchown(p, n.uid, n.gid);
      await lutimes(p, n.mtime, n.mtime);
    }
    for (const [t, l, name] of links) {
      await this.checkDir(Extractor.parentOf(t), name);
      await this.checkDir(Extractor.parentOf(l), name);
      await linkMeta(this.abs(t), this.abs(l));
    }
  }

  /** Removes whatever this layer put at `key` so that a new entry can take its place. */
  private async removeExisting(key: string, kind: Kind): Promise<void> {
    if ((kind === 'node' || kind === 'whiteout') && this.nodes.has(key) && !this.deferredLinks.some(([t]) => t === key)) {
      // not made yet and nothing links to it: there is nothing on disk
      this.nodes.delete(key);
      this.known.delete(key);
      return;
    }
    await this.flushNodes();
    this.parentCache.clear();
    // only removing a directory can turn a checked directory into something else
    if (kind === 'dir') this.verified.clear();
    await this.checkDir(Extractor.parentOf(key), key);
    if (kind === 'dir') {
      await this.settle();
      await this.checkDir(key, key);
      await rm(this.abs(key), { recursive: true, force: true });
      const prefix = key + '/';
      for (const k of [...this.known.keys()]) if (k.startsWith(prefix)) this.known.delete(k);
      for (const k of [...this.nodes.keys()]) if (k.startsWith(prefix)) this.nodes.delete(k);
      for (const k of [...this.dirs.keys()]) if (k.startsWith(prefix)) this.dirs.delete(k);
      for (const k of [...this.xattrs.keys()]) if (k.startsWith(prefix)) this.xattrs.delete(k);
      for (const k of [...this.opaque]) if (k.startsWith(prefix)) this.opaque.delete(k);
      this.dirs.delete(key);
      this.opaque.delete(key);
    } else {
      await this.waitFor(key);
      await unlink(this.abs(key));
    }
    this.known.delete(key);
    this.symlinks.delete(key);
    this.xattrs.delete(key);
  }

  private async drain(stream: AsyncIterable<unknown>): Promise<void> {
    for await (const _ of stream) void _;
  }

  private async entry(h: tarStream.Header, source: Readable): Promise<void> {
    this.entries++;
    const type = h.type ?? 'file';
    if (type !== 'file' && type !== 'contiguous-file' && type !== 'directory' && type !== 'symlink' && type !== 'link' &&
        type !== 'character-device' && type !== 'block-device' && type !== 'fifo') {
      await this.drain(source);
      return;
    }
    const parts = cleanComponents(h.name, this.context);
    if (parts.length === 0) {
      // the layer root itself (a context's directory keeps its own attributes)
      if (type === 'directory' && !this.context) this.dirs.set('', dirAttr(h));
      await this.drain(source);
      return;
    }
    const watcher = this.opts.onEntry?.(h, join(this.root, parts.join('/'))) ?? null;
    let stream: AsyncIterable<unknown> = source;
    if (watcher) {
      stream = (async function* () {
        for await (const c of source) { watcher.update(c as Buffer); yield c; }
      })();
    }
    await this.place(h, type, parts, stream);
    if (watcher) watcher.end();
  }

  private async place(h: tarStream.Header, type: string, parts: string[], stream: AsyncIterable<unknown>): Promise<void> {
    const base = parts[parts.length - 1]!;
    const parentKey = await this.resolveDir(parts.slice(0, -1), h.name);
    await this.checkDir(parentKey, h.name);
    if (this.context && (type === 'character-device' || type === 'block-device' || type === 'fifo')) {
      await this.drain(stream); // a context is data
      return;
    }
    if (base.startsWith('.wh.') && !this.context) {
      await this.drain(stream);
      if (base === '.wh..wh..opq') {
        this.opaque.add(parentKey);
      } else if (!base.startsWith('.wh..wh.')) {
        const target = base.slice(4);
        if (target === '' || target === '.' || target === '..') throw escapeError(h.name);
        const key = parentKey === '' ? target : `${parentKey}/${target}`;
        if (!this.known.has(key)) {
          this.known.set(key, 'whiteout');
          this.nodes.set(key, { name: h.name, type: 'c', major: 0, minor: 0, mode: 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ?? new Date(0) });
        }
      }
      return;
    }
    const key = parentKey === '' ? base : `${parentKey}/${base}`;
    const existing = this.known.get(key);
    if (existing !== undefined && !(existing === 'dir' && type === 'directory')) await this.removeExisting(key, existing);
    if (!this.context) this.collectXattrs(key, h);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const uid = this.context ? 0 : h.uid ?? 0;
    const gid = this.context ? 0 : h.gid ?? 0;
    const mtime = h.mtime ?? new Date(0);
    const p = this.abs(key);
    switch (type) {
      case 'directory':
        if (existing !== 'dir') {
          await mkdirMeta(p);
          this.known.set(key, 'dir');
        }
        this.dirs.set(key, this.context ? { ...dirAttr(h), uid: 0, gid: 0 } : dirAttr(h));
        await this.drain(stream);
        return;
      case 'symlink':
        await this.drain(stream);
        await symlinkMeta(h.linkname ?? '', p, uid, gid, mtime);
        this.known.set(key, 'symlink');
        this.symlinks.set(key, h.linkname ?? '');
        return;
      case 'link': {
        await this.drain(stream);
        let tparts: string[];
        try {
          tparts = cleanComponents(h.linkname ?? '', this.context);
        } catch {
          throw new InvalidParameterError(`invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}: target escapes the layer root`);
        }
        if (tparts.length === 0) throw new InvalidParameterError(`invalid hardlink ${JSON.stringify(h.name)}: empty target`);
        // the target is named by its own path in this layer: every directory above it a directory of this layer
        // (never a symlink, which could lead anywhere), the target a non-directory entry of this layer
        const tkey = tparts.join('/');
        for (let i = 1; i < tparts.length; i++) {
          if (this.known.get(tparts.slice(0, i).join('/')) !== 'dir') {
            throw new InvalidParameterError(
              `invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}: ${JSON.stringify('/' + tparts.slice(0, i).join('/'))} is not a directory of this layer`,
            );
          }
        }
        const tk = this.known.get(tkey);
        if (tk === undefined || tk === 'dir' || tk === 'whiteout') {
          throw new InvalidParameterError(
            `invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}: target is not a file of this layer`,
          );
        }
        if (tk === 'node' && (this.nodes.has(tkey) || this.deferredLinks.some(([, l]) => l === tkey))) {
          // a node not made yet, or a hard link to one: linked when the nodes are made, in tar order
          this.deferredLinks.push([tkey, key, h.name]);
        } else {
          await this.waitFor(tkey);
          await this.checkDir(Extractor.parentOf(tkey), h.name);
          await linkMeta(this.abs(tkey), p);
        }
        this.known.set(key, tk);
        if (tk === 'symlink') this.symlinks.set(key, this.symlinks.get(tkey)!);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await this.drain(stream);
        this.nodes.set(key, {
          name: h.name,
          type: type === 'fifo' ? 'p' : type === 'block-device' ? 'b' : 'c',
          major: h.devmajor ?? 0, minor: h.devminor ?? 0, mode, uid, gid, mtime,
        });
        this.known.set(key, 'node');
        return;
      default: {
        const size = h.size ?? 0;
        this.size += size;
        this.known.set(key, 'file');
        if (size <= THREAD_FILE_MAX && MODE === 'threads') {
          const chunks: Buffer[] = [];
          let len = 0;
          for await (const c of stream) { chunks.push(c as Buffer); len += (c as Buffer).length; }
          await this.addToBatch(key, p, chunks, len, mode, uid, gid, mtime);
        } else if (size <= BUFFER_FILE_MAX && MODE === 'sync') {
          const chunks: Buffer[] = [];
          for await (const c of stream) chunks.push(c as Buffer);
          this.writeFileSync(p, chunks, mode, uid, gid, mtime);
        } else if (size <= BUFFER_FILE_MAX) {
          const chunks: Buffer[] = [];
          for await (const c of stream) chunks.push(c as Buffer);
          while (this.bufferedBytes > BUFFER_TOTAL_MAX) await new Promise<void>((r) => this.bufferWaiters.push(r));
          await this.sem.acquire();
          if (this.firstError) {
            this.sem.release();
            throw this.firstError;
          }
          let n = 0;
          for (const c of chunks) n += c.length;
          this.bufferedBytes += n;
          const task = this.writeFile(p, chunks, mode, uid, gid, mtime).finally(() => {
            this.bufferedBytes -= n;
            this.sem.release();
            const ws = this.bufferWaiters.splice(0);
            for (const w of ws) w();
          });
          this.track(key, task);
        } else {
          await this.writeFile(p, stream, mode, uid, gid, mtime);
        }
      }
    }
  }

  private collectXattrs(key: string, h: tarStream.Header): void {
    const pax = (h as { pax?: Record<string, string> }).pax;
    if (!pax) return;
    for (const k of Object.keys(pax)) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const name = k.slice('SCHILY.xattr.'.length);
      if (name.startsWith('trusted.overlay.')) continue; // never let a layer forge overlay metadata
      const v = pax[k]!;
      // tar-stream decodes PAX values as UTF-8: a binary value that was not valid UTF-8 is lost; skip it rather
      // than set garbage (capability sets with bytes >= 0x80 are affected).
      if (v.includes('\uFFFD')) continue;
      let m = this.xattrs.get(key);
      if (!m) this.xattrs.set(key, (m = new Map()));
      m.set(name, Buffer.from(v, 'utf8'));
    }
  }

  private async finishFd(fd: number, mode: number, uid: number, gid: number, mtime: Date): Promise<void> {
    if (uid !== 0 || gid !== 0) await oFchown(fd, uid, gid);
    // open() applied the umask, and chown clears setuid/setgid: fix the mode when either matters.
    if ((mode & (this.umask | 0o7000)) !== 0) await oFchmod(fd, mode);
    await oFutimes(fd, mtime, mtime);
  }

  /** Small files: a handful of syscalls on the main thread beat four thread-pool round trips. */
  private writeFileSync(p: string, chunks: Buffer[], mode: number, uid: number, gid: number, mtime: Date): void {
    const fd = fs.openSync(p, WX, mode);
    try {
      for (const c of chunks) {
        let off = 0;
        while (off < c.length) off += fs.writeSync(fd, c, off, c.length - off);
      }
      if (uid !== 0 || gid !== 0) fs.fchownSync(fd, uid, gid);
      if ((mode & (this.umask | 0o7000)) !== 0) fs.fchmodSync(fd, mode);
      fs.futimesSync(fd, mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A file's content, buffered chunks or the tar entry's stream, written through one descriptor. */
  private async writeFile(p: string, content: Iterable<Buffer> | AsyncIterable<unknown>, mode: number, uid: number, gid: number, mtime: Date): Promise<void> {
    const fd = await oOpen(p, WX, mode);
    try {
      for await (const chunk of content) {
        const c = chunk as Buffer;
        let off = 0;
        while (off < c.length) off += await oWrite(fd, c, off, c.length - off);
      }
      await this.finishFd(fd, mode, uid, gid, mtime);
    } finally {
      await oClose(fd);
    }
  }

  /**
   * Applies what Node cannot do itself, then directory metadata (deepest first, after their content). Every path
   * is checked afresh (lstat from the root, each directory once) before the deferred work touches it.
   */
  private async finish(): Promise<void> {
    this.verified.clear();
    await this.flushNodes();
    // Opaque markers must be set; attributes from PAX records are best effort (as docker: a filesystem without
    // e.g. security.* support only loses the attribute), so they go in a second call whose failure is tolerated.
    // setfattr -h does not follow a final symlink; chmod/chown/utimes below are only on checked directories.
    const opq: [string, Map<string, Buffer>][] = [];
    for (const k of this.opaque) {
      if (k !== '' && this.known.get(k) !== 'dir') continue;
      await this.checkDir(k, '/' + k + '/.wh..wh..opq');
      opq.push([this.abs(k), new Map([['trusted.overlay.opaque', Buffer.from('y')]])]);
    }
    if (opq.length) await setxattrBatch(opq);
    const xs: [string, Map<string, Buffer>][] = [];
    for (const [k, m] of this.xattrs) {
      if (!this.known.has(k)) continue;
      await this.checkDir(Extractor.parentOf(k), k);
      xs.push([this.abs(k), m]);
    }
    if (xs.length) await setxattrBatch(xs).catch(() => {}); // best effort (a filesystem without user xattrs), as docker
    const dirKeys = [...this.dirs.keys()].sort((a, b) => depthOf(b) - depthOf(a));
    for (const k of dirKeys) {
      const a = this.dirs.get(k)!;
      await this.checkDir(k, k === '' ? '/' : k);
      const p = this.abs(k);
      if (SYNC_META()) {
        if (a.uid !== 0 || a.gid !== 0) fs.chownSync(p, a.uid, a.gid);
        fs.chmodSync(p, a.mode);
        fs.utimesSync(p, a.mtime, a.mtime);
        continue;
      }
      if (a.uid !== 0 || a.gid !== 0) await chown(p, a.uid, a.gid);
      await chmod(p, a.mode);
      await utimes(p, a.mtime, a.mtime);
    }
  }
}

function depthOf(k: string): number {
  if (k === '') return 0;
  let n = 1;
  for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) === 47) n++;
  return n;
}

function dirAttr(h: tarStream.Header): DirAttr {
  return { mode: (h.mode ?? 0o755) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ?? new Date(0) };
}

/** Runs a command, rejecting with its stderr on failure. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execCollect(cmd, args, { input: opts.input ?? '', ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}), maxBuffer: 1 << 30 }).then((r) => {
      if (r.code === 0) resolve(r.stdout);
      else reject(new SystemError(`${cmd} ${args.slice(0, 3).join(' ')}…: exit ${r.code}: ${r.stderr.trim()}`));
    }, (e: Error) => reject(new SystemError(`${cmd}: ${e.message}`, { cause: e })));
  });
}

const MKNOD_SCRIPT =
  'while [ $# -gt 0 ]; do if [ "$3" = p ]; then mknod -m "$1" "$2" p || exit 1; ' +
  'else mknod -m "$1" "$2" "$3" "$4" "$5" || exit 1; fi; shift 5; done';

/** Creates device nodes / fifos with as few processes as the argument size limit allows. */
export async function mknodBatch(nodes: [string, NodeSpec][]): Promise<void> {
  let args: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!args.length) return;
    await run('sh', ['-c', MKNOD_SCRIPT, 'sh', ...args]);
    args = [];
    bytes = 0;
  };
  for (const [p, n] of nodes) {
    args.push((n.mode & 0o7777).toString(8), p, n.type, String(n.major), String(n.minor));
    bytes += p.length + 32;
    if (bytes > 100_000) await flush();
  }
  await flush();
}

/** Escapes a path the way getfattr dumps it (octal escapes), so that `setfattr --restore` reads it back. */
function quoteAttrPath(p: string): string {
  const b = Buffer.from(p, 'utf8');
  let s = '';
  for (const c of b) {
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2f || c === 0x2e || c === 0x5f || c === 0x2d) {
      s += String.fromCharCode(c);
    } else s += '\\' + c.toString(8).padStart(3, '0');
  }
  return s;
}

/** Sets extended attributes on many paths with one `setfattr --restore`. */
export async function setxattrBatch(items: [string, Map<string, Buffer>][]): Promise<void> {
  let dump = '';
  for (const [p, m] of items) {
    dump += `# file: ${quoteAttrPath(p)}\n`;
    for (const [name, value] of m) dump += `${name}=0s${value.toString('base64')}\n`;
    dump += '\n';
  }
  await run('setfattr', ['-h', '--restore=-'], { input: dump });
}
