/**
 * A replica's local copy of blob bytes in front of a remote store (`wharf registry serve --storage s3
 * --blob-cache DIR`): the store stays the truth, this directory only saves moving the bytes again.
 *
 *   DIR/sha256/<hex>      a complete blob whose sha256 was checked on the way in (push or read-through)
 *   DIR/tmp/<hex>.<rand>  a copy being written (never served; renamed into sha256/ once the digest matched)
 *   DIR/boot-id           the machine boot the files were written in
 *
 * Rules:
 * - The cache never answers whether a blob exists or belongs to a repository: the server asks the store first
 *   (storage.statBlob: the link, the blob, its size), then serves the bytes from here when the file has that size.
 *   A blob that garbage collection deleted from the store is never served from a replica's cache.
 * - Bytes enter only with their digest verified: a monolithic push (the digest is checked before the store's
 *   object is published) or a whole-blob GET streamed from the store (hashed on the way; a short or wrong body is
 *   dropped). A hostile or broken store cannot put other bytes under a digest's name.
 * - Files are renamed in without fsync; a crash of the process leaves them whole (the page cache survives it) and a
 *   temp file is never served. A crash of the machine could leave a renamed file torn, so a cache written in
 *   another boot (`boot-id` differs) is emptied at open. It is derived data: losing it costs only speed.
 * - Bounded: past `maxBytes` the least recently used files go (mtime, refreshed on a hit at most once a minute).
 *   Several processes (cluster workers) share one directory; each evicts from a scan of the directory.
 * - Best effort: a fill that cannot keep up (more than FILL_QUEUE_MAX bytes waiting for the disk), a write error
 *   or a full disk drops that copy; the request it rode on is unaffected.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, unlink, utimes, writeFile, chmod, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hexOf, isDigest, type Digest } from '../lib/digest.js';
import { bufferPool } from './bufpool.js';

export interface BlobCacheOptions {
  /** The cache directory (created 0700 when missing). */
  dir: string;
  /** Upper bound of the cached bytes (least recently used files go beyond it). */
  maxBytes: number;
}

const HEX_RE = /^[a-f0-9]{64}$/;
/** What a cache directory holds (see the top of this file). */
const CACHE_ENTRIES = new Set(['sha256', 'tmp', 'boot-id']);
/** A fill whose writes fall this far behind the network is dropped instead of holding the bytes in memory. */
const FILL_QUEUE_MAX = 64 * 1024 * 1024;
/** Temp files older than this at open are leftovers of a process that died (a live fill writes continuously). */
const STALE_TMP_MS = 10 * 60_000;
/** A hit refreshes the file's mtime (its place in the LRU order) at most this often. */
const TOUCH_EVERY_MS = 60_000;

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
}

export class BlobCache {
  /** What this process knows is cached: hex → size (other workers' files are found by `open`). */
  private readonly known = new Map<string, number>();
  private knownBytes = 0;
  private readonly filling = new Set<string>();
  private evicting: Promise<void> | null = null;
  private readonly blobs: string;
  private readonly tmp: string;

  private constructor(readonly dir: string, readonly maxBytes: number) {
    this.blobs = join(dir, 'sha256');
    this.tmp = join(dir, 'tmp');
  }

  static async open(o: BlobCacheOptions): Promise<BlobCache> {
    if (!Number.isSafeInteger(o.maxBytes) || o.maxBytes <= 0) throw new Error(`invalid blob cache size ${o.maxBytes}`);
    const c = new BlobCache(o.dir, o.maxBytes);
    // The directory is the cache's alone: made here (0700), or an empty one, or a cache made before. Anything else
    // is refused rather than emptied or made private (a mistyped --blob-cache of /tmp or a home directory).
    const st = await lstat(o.dir).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return null; throw e; });
    if (!st) {
      await mkdir(o.dir, { recursive: true, mode: 0o700 });
    } else {
      if (!st.isDirectory()) throw new Error(`blob cache ${o.dir}: not a directory`);
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`blob cache ${o.dir}: owned by another user`);
      const foreign = (await readdir(o.dir)).filter((n) => !CACHE_ENTRIES.has(n));
      if (foreign.length > 0) throw new Error(`blob cache ${o.dir}: not empty and not a blob cache (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''})`);
      // Others who could write here could plant bytes under a digest's name.
      if ((st.mode & 0o022) !== 0) throw new Error(`blob cache ${o.dir}: writable by other users`);
    }
    await chmod(o.dir, 0o700);
    const boot = await bootId();
    const marker = join(o.dir, 'boot-id');
    const written = (await readFile(marker, 'utf8').catch(() => '')).trim();
    if (!boot || written !== boot) {
      // Files of another boot (or of no known boot) may be torn: start empty.
      await rm(c.blobs, { recursive: true, force: true });
      await rm(c.tmp, { recursive: true, force: true });
    }
    for (const sub of [c.blobs, c.tmp]) {
      const ss = await lstat(sub).catch(() => null);
      if (ss && !ss.isDirectory()) await rm(sub, { force: true }); // a symlink or a file: not ours to follow
      await mkdir(sub, { recursive: true, mode: 0o700 });
    }
    if (boot && written !== boot) {
      const t = join(c.tmp, `boot-id.${randomBytes(6).toString('hex')}`);
      await writeFile(t, `${boot}\n`, { mode: 0o600, flag: 'wx' });
      await rename(t, marker);
    }
    const now = Date.now();
    for (const name of await readdir(c.tmp)) {
      const p = join(c.tmp, name);
      const s = await lstat(p).catch(() => null);
      if (s && now - s.mtimeMs > STALE_TMP_MS) await rm(p, { force: true, recursive: true });
    }
    for (const [hex, s] of await c.scan()) c.remember(hex, s.size);
    return c;
  }

  /** The cached files (regular files named by a hex digest) and their stats. */
  private async scan(): Promise<[string, Stats][]> {
    const out: [string, Stats][] = [];
    for (const name of await readdir(this.blobs)) {
      const p = join(this.blobs, name);
      const s = await lstat(p).catch(() => null);
      if (!s) continue;
      if (!HEX_RE.test(name) || !s.isFile()) {
        await rm(p, { force: true, recursive: true }); // nothing else belongs here
        continue;
      }
      out.push([name, s]);
    }
    return out;
  }

  private remember(hex: string, size: number): void {
    const old = this.known.get(hex);
    if (old !== undefined) this.knownBytes -= old;
    this.known.set(hex, size);
    this.knownBytes += size;
  }

  private forget(hex: string): void {
    const old = this.known.get(hex);
    if (old === undefined) return;
    this.knownBytes -= old;
    this.known.delete(hex);
  }

  /** Bytes this process knows are cached. */
  get size(): number {
    return this.knownBytes;
  }

  /**
   * The cached file of blob `d` opened for reading, when there is one of exactly `size` bytes (the size the store
   * answered for the blob); null otherwise (a file of another size is removed).
   */
  async openBlob(d: Digest, size: number): Promise<FileHandle | null> {
    if (!isDigest(d)) return null;
    const hex = hexOf(d);
    const p = join(this.blobs, hex);
    let fh: FileHandle;
    try {
      fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      this.forget(hex);
      return null;
    }
    const s = await fh.stat().catch(() => null);
    if (!s || !s.isFile() || s.size !== size) {
      await fh.close();
      if (s) await unlink(p).catch(() => {});
      this.forget(hex);
      return null;
    }
    this.remember(hex, size);
    const now = Date.now();
    if (now - s.mtimeMs > TOUCH_EVERY_MS) {
      const t = new Date(now);
      void utimes(p, t, t).catch(() => {});
    }
    return fh;
  }

  /**
   * A new copy of blob `d` to write, or null when this process holds it already or is writing it. The caller
   * writes every byte of the blob in order, then commits once it verified the digest (or aborts).
   */
  fill(d: Digest): CacheFill | null {
    if (!isDigest(d)) return null;
    const hex = hexOf(d);
    if (this.known.has(hex) || this.filling.has(hex)) return null;
    this.filling.add(hex);
    return new CacheFill(this, hex, join(this.tmp, `${hex}.${randomBytes(6).toString('hex')}`));
  }

  /** @internal CacheFill's end: published (size) or dropped (null). */
  async finished(hex: string, tmpPath: string, size: number | null): Promise<void> {
    try {
      if (size === null || size > this.maxBytes) {
        await unlink(tmpPath).catch(() => {});
        return;
      }
      try {
        await rename(tmpPath, join(this.blobs, hex));
      } catch {
        await unlink(tmpPath).catch(() => {});
        return;
      }
      this.remember(hex, size);
    } finally {
      this.filling.delete(hex);
    }
    if (this.knownBytes > this.maxBytes) await this.evict();
  }

  /** Removes the least recently used files until the cache is at 90% of its bound (one eviction at a time). */
  evict(): Promise<void> {
    this.evicting ??= (async () => {
      try {
        const files = await this.scan();
        let total = files.reduce((n, [, s]) => n + s.size, 0);
        this.known.clear();
        this.knownBytes = 0;
        files.sort(([, a], [, b]) => a.mtimeMs - b.mtimeMs);
        const target = Math.floor(this.maxBytes * 0.9);
        for (const [hex, s] of files) {
          if (total > target) {
            await unlink(join(this.blobs, hex)).catch(() => {});
            total -= s.size;
          } else {
            this.remember(hex, s.size);
          }
        }
      } finally {
        this.evicting = null;
      }
    })();
    return this.evicting;
  }
}

/**
 * Copies are written in 1 MiB pieces from reused buffers (bufpool.ts): the request's and the store's chunks are
 * ~64 KiB, and a write per chunk cost 0.15-0.5 s of CPU per 200 MB here (the thread pool's hand-offs and syscalls),
 * against ~0.07 s for a copy into these buffers and a write per MiB (measured in this VM).
 */
const fillBufs = bufferPool(1 << 20, 16);

/**
 * One copy being written: `write` copies the bytes into the fill's buffers and returns at once (the caller keeps its
 * buffer); the disk writes run behind. `commit` publishes the copy once the caller verified the blob's digest and
 * the bytes are on disk; `abort` drops it. Either must be called exactly once.
 */
export class CacheFill {
  private fh: Promise<FileHandle> | null = null;
  /** The buffer being filled and how much of it is. */
  private cur: Buffer | null = null;
  private curLen = 0;
  private queue: { buf: Buffer; len: number }[] = [];
  private queued = 0;
  private writing: Promise<void> | null = null;
  private failed = false;
  private done = false;
  /** Bytes handed to `write`. */
  size = 0;

  constructor(private readonly cache: BlobCache, private readonly hex: string, private readonly path: string) {}

  write(b: Buffer): void {
    if (this.failed || this.done || b.length === 0) return;
    this.size += b.length;
    if (this.size > this.cache.maxBytes) return this.fail();
    let off = 0;
    while (off < b.length) {
      this.cur ??= fillBufs.take();
      const n = b.copy(this.cur, this.curLen, off);
      this.curLen += n;
      off += n;
      if (this.curLen === fillBufs.size) this.flushCur();
      if (this.failed) return;
    }
  }

  /** Queues the buffer being filled for the disk. */
  private flushCur(): void {
    if (!this.cur || this.curLen === 0) return;
    this.queue.push({ buf: this.cur, len: this.curLen });
    this.queued += this.curLen;
    this.cur = null;
    this.curLen = 0;
    // The disk is slower than the network: this copy is dropped rather than held in memory.
    if (this.queued > FILL_QUEUE_MAX) return this.fail();
    this.writing ??= this.drain();
  }

  private fail(): void {
    this.failed = true;
    for (const q of this.queue.splice(0)) fillBufs.give(q.buf);
    this.queued = 0;
    if (this.cur) fillBufs.give(this.cur);
    this.cur = null;
    this.curLen = 0;
  }

  private async drain(): Promise<void> {
    try {
      this.fh ??= open(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      const fh = await this.fh;
      while (this.queue.length > 0 && !this.failed) {
        // Off the queue while it is written: `fail` gives back only the buffers no write holds.
        const { buf, len } = this.queue.shift()!;
        try {
          let off = 0;
          while (off < len) {
            const { bytesWritten } = await fh.write(buf, off, len - off);
            if (bytesWritten <= 0) throw new Error('short write');
            off += bytesWritten;
          }
        } finally {
          this.queued = Math.max(0, this.queued - len);
          fillBufs.give(buf);
        }
      }
    } catch {
      this.fail();
    } finally {
      this.writing = null;
    }
  }

  /** Everything written and closed; false when the copy failed. */
  private async settle(): Promise<boolean> {
    if (!this.failed) this.flushCur();
    while (this.writing) await this.writing;
    if (this.failed) this.fail(); // buffers back
    const fh = this.fh ? await this.fh.catch(() => null) : null;
    if (fh) await fh.close().catch(() => { this.failed = true; });
    return !this.failed && (this.size === 0 || fh !== null);
  }

  /** The caller checked the digest of exactly these bytes: the copy becomes the cached blob. */
  async commit(): Promise<void> {
    if (this.done) return;
    this.done = true;
    const ok = await this.settle();
    if (ok && this.size === 0) {
      // The empty blob: nothing was opened yet.
      try {
        await (await open(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)).close();
      } catch {
        await this.cache.finished(this.hex, this.path, null);
        return;
      }
    }
    await this.cache.finished(this.hex, this.path, ok ? this.size : null);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.fail();
    await this.settle();
    await this.cache.finished(this.hex, this.path, null);
  }
}
