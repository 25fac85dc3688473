/**
 * The image store (configs by ID) and the reference store (tags and repo digests → image ID).
 *
 * Image store layout, under <dataRoot>/image/imagedb:
 *   content/sha256/<hex>                 the config bytes, exactly as received; <hex> = sha256 of them
 *   metadata/sha256/<hex>/parent         "sha256:…" of the parent image (builds, commits)
 *   metadata/sha256/<hex>/lastUpdated    RFC3339Nano time of the last tag
 *
 * Crash safety: an image becomes visible when its config file appears (one rename, written last, after
 * the layer reference is taken and the metadata is written). At open, configs whose bytes do not match their
 * name, that do not parse, or whose layers are not registered are ignored and removed, as are temporaries.
 *
 * Reference store: <dataRoot>/image/repositories.json, rewritten atomically after every change,
 * {"Repositories": {"<normalized name>": {"<normalized ref>": "sha256:…"}}} like dockerd's.
 */
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, hexOf, isDigest, sha256, type Digest } from '../../lib/digest.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { ConflictError, InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import type { LayerStore } from '../layers/types.js';
import type { Image, ImageConfig, ImageStore, ReferenceStore } from './types.js';
import { parseRef, refString, type ParsedRef } from './refs.js';
import { Mutex } from '../../lib/sync.js';
import { isENOENT } from '../../lib/fsutil.js';
import { rfc3339Nano } from '../../lib/go.js';
import { discardLogger, type Logger } from '../../lib/log.js';

/** Parses and validates an image config; throws InvalidParameterError. */
export function parseImageConfig(raw: Buffer): ImageConfig {
  let cfg: unknown;
  try {
    cfg = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new InvalidParameterError(`invalid image config: ${(e as Error).message}`, { cause: e });
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new InvalidParameterError('invalid image config: not an object');
  const c = cfg as ImageConfig;
  const rootfs = c.rootfs as unknown as { type?: unknown; diff_ids?: unknown } | undefined;
  if (!rootfs || typeof rootfs !== 'object') throw new InvalidParameterError('invalid image config: missing rootfs');
  if (rootfs.type !== 'layers') throw new InvalidParameterError(`invalid image config: rootfs type ${JSON.stringify(rootfs.type)} is not "layers"`);
  const ids = rootfs.diff_ids ?? [];
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new InvalidParameterError('invalid image config: bad rootfs.diff_ids');
  }
  if (rootfs.diff_ids === undefined || rootfs.diff_ids === null) (c.rootfs as { diff_ids: Digest[] }).diff_ids = [];
  return c;
}

/** The chain ID of an image's top layer, or null for an image without layers. */
export function topChainOf(cfg: ImageConfig): Digest | null {
  const ids = chainIds(cfg.rootfs.diff_ids ?? []);
  return ids.length ? ids[ids.length - 1] : null;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isENOENT(e)) return null;
    throw e;
  }
}

class FsImageStore implements ImageStore {
  private readonly images = new Map<Digest, Image>();
  private readonly mu = new Mutex();
  readonly contentDir: string;
  readonly metaDir: string;

  constructor(readonly root: string, private readonly layers: LayerStore, private readonly log: Logger = discardLogger) {
    this.contentDir = join(root, 'content', 'sha256');
    this.metaDir = join(root, 'metadata', 'sha256');
  }

  async load(): Promise<void> {
    await mkdir(this.contentDir, { recursive: true });
    await mkdir(this.metaDir, { recursive: true });
    for (const name of await readdir(this.contentDir)) {
      const path = join(this.contentDir, name);
      if (!/^[a-f0-9]{64}$/.test(name)) {
        // temporaries from an interrupted write
        if (name.startsWith('.tmp-')) await rm(path, { force: true });
        continue;
      }
      const id = `sha256:${name}` as Digest;
      let img: Image;
      try {
        const raw = await readFile(path);
        if (sha256(raw) !== id) throw new Error('digest mismatch');
        const config = parseImageConfig(raw);
        const top = topChainOf(config);
        if (top && !(await this.layers.has(top))) throw new Error(`layer ${top} not registered`);
        img = { id, config, raw, parent: null };
      } catch (e) {
        // a config that cannot be read (EIO, EACCES) may be fine: kept for a person to look at
        if ((e as NodeJS.ErrnoException).syscall !== undefined) { this.log.error('image config unreadable: not loaded, left in place', { image: id, error: e }); continue; }
        // Unusable (corrupt, or a config whose layers never made it): not an image.
        this.log.warn('removing an unusable image config', { image: id, error: e });
        await rm(path, { force: true });
        continue;
      }
      const parent = (await readOptional(join(this.metaDir, name, 'parent')))?.trim();
      if (parent && isDigest(parent)) img.parent = parent;
      const lu = (await readOptional(join(this.metaDir, name, 'lastUpdated')))?.trim();
      if (lu) img.lastTagTime = lu;
      this.images.set(id, img);
    }
    // metadata of images that no longer exist (a crash during create or delete)
    for (const name of await readdir(this.metaDir)) {
      if (!this.images.has(`sha256:${name}` as Digest)) await rm(join(this.metaDir, name), { recursive: true, force: true });
    }
  }

  create(rawConfig: Buffer, parent?: Digest | null): Promise<Image> {
    return this.mu.run(async () => {
      const raw = Buffer.from(rawConfig);
      const id = sha256(raw);
      const existing = this.images.get(id);
      if (existing) {
        if (parent && existing.parent !== parent) await this.writeParent(id, parent);
        return existing;
      }
      const config = parseImageConfig(raw);
      if (parent && !this.images.has(parent)) throw new NotFoundError(`No such image: ${parent}`);
      const top = topChainOf(config);
      if (top) {
        if (!(await this.layers.has(top))) {
          throw new InvalidParameterError(`failed to create image: layer ${top} (top of ${id}) is not registered`);
        }
        await this.layers.retain(top);
      }
      const hex = hexOf(id);
      try {
        await rm(join(this.metaDir, hex), { recursive: true, force: true });
        if (parent) await writeFileAtomic(join(this.metaDir, hex, 'parent'), parent);
        // the config is published last: until this rename, the image does not exist
        await writeFileAtomic(join(this.contentDir, hex), raw);
      } catch (e) {
        if (top) await this.layers.release(top).catch(this.log.onError('releasing a layer after a failed image create: its refcount stays one too high', { image: id, layer: top }, 'error'));
        await rm(join(this.metaDir, hex), { recursive: true, force: true }).catch(this.log.onError('removing image metadata after a failed create', { image: id }));
        throw e;
      }
      const img: Image = { id, config, raw, parent: parent ?? null };
      this.images.set(id, img);
      return img;
    });
  }

  async get(id: Digest): Promise<Image> {
    const img = this.images.get(id);
    if (!img) throw new NotFoundError(`No such image: ${id}`);
    return img;
  }

  async has(id: Digest): Promise<boolean> {
    return this.images.has(id);
  }

  async list(): Promise<Image[]> {
    return [...this.images.values()];
  }

  async children(id: Digest): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const img of this.images.values()) if (img.parent === id) out.push(img.id);
    return out;
  }

  remove(id: Digest): Promise<Digest[]> {
    return this.mu.run(async () => {
      const img = this.images.get(id);
      if (!img) throw new NotFoundError(`No such image: ${id}`);
      const hex = hexOf(id);
      // unpublish first, then metadata, then drop the layer reference
      await rm(join(this.contentDir, hex), { force: true });
      this.images.delete(id);
      await rm(join(this.metaDir, hex), { recursive: true, force: true });
      const top = topChainOf(img.config);
      return top ? await this.layers.release(top) : [];
    });
  }

  setParent(id: Digest, parent: Digest | null): Promise<void> {
    return this.mu.run(async () => {
      const img = this.images.get(id);
      if (!img) throw new NotFoundError(`No such image: ${id}`);
      if (parent) await this.writeParent(id, parent);
      else await rm(join(this.metaDir, hexOf(id), 'parent'), { force: true });
      img.parent = parent;
    });
  }

  private async writeParent(id: Digest, parent: Digest): Promise<void> {
    await writeFileAtomic(join(this.metaDir, hexOf(id), 'parent'), parent);
    const img = this.images.get(id);
    if (img) img.parent = parent;
  }

  setLastUpdated(id: Digest, when: Date = new Date()): Promise<void> {
    return this.mu.run(async () => {
      const img = this.images.get(id);
      if (!img) throw new NotFoundError(`No such image: ${id}`);
      const t = rfc3339Nano(when);
      // a tag time lost in a crash is harmless: no fsyncs (a build that ends in a cache hit re-tags every time)
      await writeFileAtomic(join(this.metaDir, hexOf(id), 'lastUpdated'), t, 0o644, { durable: false });
      img.lastTagTime = t;
    });
  }
}

export async function openImageStore(dataRoot: string, layers: LayerStore, log?: Logger): Promise<ImageStore> {
  const store = new FsImageStore(join(dataRoot, 'image', 'imagedb'), layers, log);
  await store.load();
  return store;
}

class FsReferenceStore implements ReferenceStore {
  private readonly refs = new Map<string, Digest>();
  private readonly parsed = new Map<string, ParsedRef>();
  private readonly mu = new Mutex();

  constructor(private readonly path: string, private readonly log: Logger = discardLogger) {}

  async load(): Promise<void> {
    const text = await readOptional(this.path);
    if (text === null) return;
    let data: { Repositories?: Record<string, Record<string, string>> };
    try {
      data = JSON.parse(text);
    } catch (e) {
      // a corrupt file cannot happen with atomic writes; start empty rather than refuse to start, but keep a copy
      // (the next write replaces the file) and say so
      await copyFile(this.path, `${this.path}.corrupt`);
      this.log.error('tags and digests unreadable: starting without them; the file is kept as .corrupt', { path: this.path, error: e });
      return;
    }
    for (const repo of Object.values(data.Repositories ?? {})) {
      for (const [ref, id] of Object.entries(repo)) {
        if (!isDigest(id)) continue;
        try {
          const p = parseRef(ref);
          this.refs.set(refString(p), id);
          this.parsed.set(refString(p), p);
        } catch {
          /* skip unparsable entries */
        }
      }
    }
  }

  private normalize(ref: string): ParsedRef {
    return parseRef(ref);
  }

  private async save(): Promise<void> {
    const repos: Record<string, Record<string, string>> = {};
    for (const key of [...this.refs.keys()].sort()) {
      const p = this.parsed.get(key)!;
      (repos[p.name] ??= {})[key] = this.refs.get(key)!;
    }
    await writeJsonAtomic(this.path, { Repositories: repos });
  }

  add(ref: string, id: Digest): Promise<void> {
    return this.mu.run(async () => {
      const p = this.normalize(ref);
      if (p.name === 'sha256' || p.name.endsWith('/sha256')) {
        throw new InvalidParameterError('refusing to create an ambiguous tag using digest algorithm as name');
      }
      const key = refString(p);
      const old = this.refs.get(key);
      if (old === id) return;
      if (old !== undefined && p.digest) throw new ConflictError(`Cannot overwrite digest ${p.digest}`);
      this.refs.set(key, id);
      this.parsed.set(key, p);
      try {
        await this.save();
      } catch (e) {
        if (old === undefined) {
          this.refs.delete(key);
          this.parsed.delete(key);
        } else this.refs.set(key, old);
        throw e;
      }
    });
  }

  delete(ref: string): Promise<boolean> {
    return this.mu.run(async () => {
      const key = refString(this.normalize(ref));
      const old = this.refs.get(key);
      if (old === undefined) return false;
      this.refs.delete(key);
      const p = this.parsed.get(key)!;
      this.parsed.delete(key);
      try {
        await this.save();
      } catch (e) {
        this.refs.set(key, old);
        this.parsed.set(key, p);
        throw e;
      }
      return true;
    });
  }

  get(ref: string): Digest | null {
    let key: string;
    try {
      key = refString(this.normalize(ref));
    } catch {
      return null;
    }
    return this.refs.get(key) ?? null;
  }

  refsOf(id: Digest): string[] {
    const out: string[] = [];
    for (const [k, v] of this.refs) if (v === id) out.push(k);
    return out.sort();
  }

  all(): Map<string, Digest> {
    return new Map(this.refs);
  }
}

export async function openReferenceStore(dataRoot: string, log?: Logger): Promise<ReferenceStore> {
  const dir = join(dataRoot, 'image');
  await mkdir(dir, { recursive: true });
  const store = new FsReferenceStore(join(dir, 'repositories.json'), log);
  await store.load();
  // stale temporaries of an interrupted rewrite
  for (const name of await readdir(dir)) {
    if (name.startsWith('.tmp-') && name.endsWith('repositories.json')) await rm(join(dir, name), { force: true });
  }
  return store;
}
