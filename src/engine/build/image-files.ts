/**
 * Files of the image a build step starts from, read from its registered layer directories (read-only once
 * registered, so resolved lexically: fsroot/lexical.ts; symlinks resolved inside the image, never into the host):
 * WORKDIR's and COPY's existing directories, --chown names from /etc/passwd and /etc/group.
 *
 * What a lookup finds is remembered by the image's top chain ID (`ImageFileMemo`, kept by the builder across
 * builds): a chain ID names the content of every layer below it, and registered layers never change, so the same
 * path in the same chain always resolves, stats and reads the same. A rebuild's WORKDIR, COPY destination and
 * --chown lookups then touch no file.
 */
import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, type Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import type { ImageConfig } from '../images/types.js';
import type { LayerStore } from '../layers/types.js';
import { mergedLstat, resolveInLayers } from '../fsroot/index.js';
import type { FileEntry, Owner } from './sources.js';

/** Lookups by chain ID and path, the most recent MAX (file texts: the most recent MAX_TEXTS, each ≤ 64 KiB). */
export class ImageFileMemo {
  static readonly MAX = 4096;
  static readonly MAX_TEXTS = 64;
  static readonly MAX_TEXT = 64 << 10;
  private readonly found = new Map<string, Promise<unknown>>();
  private readonly texts = new Map<string, Promise<string | null>>();

  /** The remembered answer of `what` (a lookup's name and path) in chain `chain`, else `fn`'s (remembered). */
  get<T>(chain: Digest, what: string, fn: () => Promise<T>): Promise<T> {
    return remember(this.found, `${chain}\0${what}`, fn, ImageFileMemo.MAX) as Promise<T>;
  }

  text(chain: Digest, path: string, fn: () => Promise<string | null>): Promise<string | null> {
    const key = `${chain}\0${path}`;
    return remember(this.texts, key, async () => {
      const t = await fn();
      // a large file is read again next time rather than kept
      if (t !== null && t.length > ImageFileMemo.MAX_TEXT) queueMicrotask(() => this.texts.delete(key));
      return t;
    }, ImageFileMemo.MAX_TEXTS);
  }

  /** How many lookups are remembered (for tests). */
  get size(): number { return this.found.size + this.texts.size; }
}

function remember<V>(m: Map<string, Promise<V>>, key: string, fn: () => Promise<V>, max: number): Promise<V> {
  const had = m.get(key);
  if (had) { m.delete(key); m.set(key, had); return had; }
  const p = fn();
  m.set(key, p);
  // a failed lookup is not remembered
  p.catch(() => { if (m.get(key) === p) m.delete(key); });
  if (m.size > max) m.delete(m.keys().next().value!);
  return p;
}

export class ImageFiles {
  constructor(private readonly layers: LayerStore, private readonly memo: ImageFileMemo = new ImageFileMemo(),
    private readonly timing?: { files: number }) {}

  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try { return await fn(); } finally { if (this.timing) this.timing.files += performance.now() - t; }
  }

  private top(config: ImageConfig): Digest | null {
    const chains = chainIds((config.rootfs?.diff_ids ?? []) as Digest[]);
    return chains[chains.length - 1] ?? null;
  }

  /** A path of the image with its symlinks resolved inside the image (never into the host). */
  resolve(config: ImageConfig, p: string): Promise<string> {
    return this.timed(() => this.resolveIn(this.top(config), p));
  }

  private resolveIn(top: Digest | null, p: string): Promise<string> {
    const fn = async () => resolveInLayers(await this.layers.lookupDirs(top), p);
    return top ? this.memo.get(top, `resolve\0${p}`, fn) : fn();
  }

  /** lstat of a path in the current image, symlinks resolved in the image. */
  stat(config: ImageConfig, p: string): Promise<Stats | null> {
    return this.timed(() => this.statIn(this.top(config), p));
  }

  private statIn(top: Digest | null, p: string): Promise<Stats | null> {
    if (!top) return Promise.resolve(null);
    return this.memo.get(top, `stat\0${p}`, async () => {
      const dirs = await this.layers.lookupDirs(top);
      if (!dirs.length) return null;
      return mergedLstat(dirs, await this.resolveIn(top, p));
    });
  }

  read(config: ImageConfig, p: string): Promise<string | null> {
    return this.timed(() => this.readIn(this.top(config), p));
  }

  private readIn(top: Digest | null, p: string): Promise<string | null> {
    const fn = async () => {
      const dirs = await this.layers.lookupDirs(top);
      const rel = await resolveInLayers(dirs, p);
      for (const dir of dirs) {
        const s = await mergedLstat([dir], rel);
        if (s?.isFile()) return readFile(join(dir, rel), 'utf8');
      }
      return null;
    };
    return top ? this.memo.text(top, p, fn) : fn();
  }

  async resolveChown(config: ImageConfig, spec: string): Promise<Owner> {
    const [u = '', g] = spec.split(':', 2) as [string, string?];
    const lookup = async (file: string, name: string, what: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      const text = (await this.read(config, file)) ?? '';
      for (const l of text.split('\n')) {
        const f = l.split(':');
        if (f[0] === name && f.length >= 3) return Number(f[2]);
      }
      throw new InvalidParameterError(`unable to convert uid/gid chown string to host mapping: can't find ${what} for ${what === 'uid' ? 'user' : 'group'} ${name}: no such ${what === 'uid' ? 'user' : 'group'}`);
    };
    const uid = await lookup('/etc/passwd', u, 'uid');
    const gid = g === undefined ? uid : await lookup('/etc/group', g, 'gid');
    return { uid, gid };
  }

  /**
   * The directories of a path for a layer: those the image lacks are new (0755, `ownerOf(depth)`); those it has
   * come with their own metadata, as in the overlay diff of dockerd's step (a parent of a new entry is copied up).
   */
  async dirEntries(config: ImageConfig, parts: string[], ownerOf: (depth: number) => Owner): Promise<FileEntry[]> {
    const top = this.top(config);
    const dirs: FileEntry[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const have = await this.timed(() => this.statIn(top, '/' + p));
      if (!have) {
        dirs.push({ path: p, type: 'directory', mode: 0o755, ...ownerOf(i), mtime: new Date(), size: 0 });
      } else if (have.isDirectory() && (await this.timed(() => this.resolveIn(top, '/' + p))).replace(/^\/+/, '') === p) {
        dirs.push({ path: p, type: 'directory', mode: have.mode & 0o7777, uid: have.uid, gid: have.gid, mtime: have.mtime, size: 0 });
      }
    }
    return dirs;
  }
}
