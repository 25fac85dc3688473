/**
 * Storage of the registry server: every registry semantic, on a StorageDriver (driver.ts: the filesystem
 * driver by default, S3 with `--storage s3`). Keys, the same in both back ends:
 *   blobs/sha256/<hex>                                  committed blobs (verified, published atomically)
 *   uploads/<uuid>/…                                    uploads in flight (the driver's; never visible as blobs)
 *   repositories/<name>/_layers/<hex>                   the repository may serve blob <hex> (empty object)
 *   repositories/<name>/_manifests/revisions/<hex>      manifest <hex> is in the repository (JSON: media type…)
 *   repositories/<name>/_manifests/tags/<tag>           the tag's manifest digest
 *   repositories/<name>/_referrers/<subject hex>/<hex>  descriptor of a manifest whose `subject` is <subject>
 *
 * Every object is published atomically (upload → blob, put), so a kill -9 at any moment leaves committed data
 * intact. Nothing a request needs lives in process memory (upload sessions are in the store), so several
 * processes — workers on one root, replicas on one bucket — serve one store and any of them continues what
 * another started. Order of publication for a manifest: its bytes as a blob → revision → referrer → tag.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes, randomUUID, type Hash } from 'node:crypto';
import { hexOf, isDigest, newHasher, sha256, type Digest } from '../lib/digest.js';
import { RegistryError } from './errors.js';
import {
  ManifestError, parseManifest as parseOciManifest, referencedDigests, type Descriptor, type ParsedManifest,
} from '../lib/oci/manifest.js';
import type { StorageDriver } from './driver.js';
import { FsDriver } from './fs-driver.js';
import type { BlobCache, CacheFill } from './blob-cache.js';
import { open, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';

export type { Descriptor } from '../lib/oci/manifest.js';


const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function validateName(name: string): void {
  if (name.length > 255 || !NAME_RE.test(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { name });
  }
}

export function isTag(s: string): boolean {
  return TAG_RE.test(s);
}

/** Parses a digest from a URL or query; only sha256 is supported. */
export function digestParam(s: string | null | undefined): Digest {
  if (s && isDigest(s)) return s;
  if (s && /^sha(384|512):[a-f0-9]+$/.test(s)) {
    throw new RegistryError('DIGEST_INVALID', 'unsupported digest algorithm', { digest: s });
  }
  throw new RegistryError('DIGEST_INVALID', 'invalid digest', { digest: s ?? null });
}

/** What the revision link records about a manifest. */
export interface RevisionInfo {
  mediaType: string;
  size: number;
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Parses and checks a manifest's structure (`lib/oci`'s registry policy). `contentType` is the request's Content-Type. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  try {
    return parseOciManifest(bytes, contentType, 'registry');
  } catch (e) {
    if (e instanceof ManifestError) throw new RegistryError('MANIFEST_INVALID', `manifest invalid: ${e.reason}`);
    throw e;
  }
}

/** An upload session (its bytes and state are the driver's: any process on the same store continues it). */
export interface Upload {
  readonly id: string;
  readonly repo: string;
  /** Bytes received so far. */
  size: number;
  /** The tags of its chunks (drivers that keep chunks apart). */
  parts?: string[];
}

/**
 * The running sha256 of the chunks this process wrote to an upload, valid while `offset` equals the upload's size
 * and, where the driver keeps chunks apart, the upload's chunks are the ones tagged `parts`.
 */
interface HashState {
  hash: Hash;
  offset: number;
  parts: string[];
}

function validFor(st: HashState | undefined, u: Upload): st is HashState {
  if (!st || st.offset !== u.size) return false;
  return u.parts === undefined || (u.parts.length === st.parts.length && u.parts.every((p, i) => p === st.parts[i]));
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX_RE = /^[a-f0-9]{64}$/;

/**
 * A whole blob streamed from the store, copied into the blob cache on the way: kept when exactly `size` bytes came
 * and their sha256 is `d`; dropped when the body was short, long or other, or the reader stopped early.
 */
async function* teeIntoCache(src: AsyncIterable<Buffer>, d: Digest, size: number, fill: CacheFill): AsyncGenerator<Buffer> {
  const h = newHasher();
  let n = 0;
  let ok = false;
  try {
    for await (const b of src) {
      h.update(b);
      n += b.length;
      fill.write(b);
      yield b;
    }
    ok = n === size && `sha256:${h.digest('hex')}` === d;
  } finally {
    if (ok) await fill.commit();
    else await fill.abort();
  }
}

export function blobKey(d: Digest): string {
  return `blobs/sha256/${hexOf(d)}`;
}

function repoKey(name: string): string {
  return `repositories/${name}`;
}

export class RegistryStorage {
  /**
   * Upload sessions live in the store, so that any process serving it (workers, replicas) can continue them and
   * a restarted server can too; this process only caches the running hash of the uploads it appended to.
   */
  private hashes = new Map<string, HashState>();
  private locks = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout;

  private constructor(readonly driver: StorageDriver, private readonly uploadTtlMs: number, private readonly cache: BlobCache | null) {
    this.sweeper = setInterval(() => void this.expireUploads().catch(() => {}), Math.min(60_000, uploadTtlMs)).unref();
  }

  /**
   * Opens storage on a driver, or on the filesystem driver at `root`. `cache`: a local copy of blob bytes in front
   * of a remote store (blob-cache.ts); the store still answers every existence and link question.
   */
  static async open(store: string | StorageDriver, opts: { uploadTtlMs?: number; cache?: BlobCache } = {}): Promise<RegistryStorage> {
    const driver: StorageDriver = typeof store === 'string' ? await FsDriver.open(store) : store;
    try {
      await (driver as StorageDriver).check?.();
    } catch (e) {
      await driver.close();
      throw e;
    }
    const s = new RegistryStorage(driver, opts.uploadTtlMs ?? 24 * 3_600_000, opts.cache ?? null);
    await s.expireUploads();
    return s;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.hashes.clear();
    await this.driver.close();
  }

  /** Whether monolithic blob uploads stream straight to the blob's key (`putBlob` without an upload session). */
  get streamsBlobs(): boolean {
    return this.driver.writeObject !== undefined;
  }

  /**
   * A local file of blob `d` (whose `size` the store answered), opened for the server's file streaming: the
   * filesystem driver's own file, else the blob cache's copy of that size; null when there is none.
   */
  async openBlobFile(d: Digest, size: number): Promise<FileHandle | null> {
    if (this.driver.localPath) return open(this.driver.localPath(blobKey(d)), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    return this.cache ? this.cache.openBlob(d, size) : null;
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return (await this.driver.stat(blobKey(d))) !== null;
  }

  async repoExists(name: string): Promise<boolean> {
    const entries = await this.driver.list(repoKey(name));
    return entries.includes('_manifests') || entries.includes('_layers');
  }

  // ---- blobs ----

  /** Size of a blob the repository may serve (a linked layer or one of its manifests), or null. */
  async statBlob(name: string, d: Digest): Promise<number | null> {
    const hex = hexOf(d);
    const [layer, rev, blob] = await Promise.all([
      this.driver.stat(`${repoKey(name)}/_layers/${hex}`),
      this.driver.stat(`${repoKey(name)}/_manifests/revisions/${hex}`),
      this.driver.stat(blobKey(d)),
    ]);
    if (!layer && !rev) return null;
    return blob?.size ?? null;
  }

  /** Links a blob into the repository; `refresh` rewrites an existing link (its time tells GC a push uses it). */
  async linkBlob(name: string, d: Digest, refresh = false): Promise<void> {
    const key = `${repoKey(name)}/_layers/${hexOf(d)}`;
    if (!refresh && (await this.driver.stat(key))) return;
    await this.driver.put(key, '');
  }

  /** Removes the repository's link to a blob (the blob itself goes at garbage collection). */
  async unlinkBlob(name: string, d: Digest): Promise<boolean> {
    const key = `${repoKey(name)}/_layers/${hexOf(d)}`;
    if (!(await this.driver.stat(key))) return false;
    await this.driver.delete(key);
    return true;
  }

  /** Publishes small bytes (manifests) as a blob: verified by construction, written atomically. */
  async putBlobBytes(bytes: Buffer): Promise<Digest> {
    const d = sha256(bytes);
    if (!(await this.hasBlob(d))) await this.driver.put(blobKey(d), bytes);
    return d;
  }

  /**
   * Bytes start..end (inclusive) of a blob of `size` bytes from the store. A whole blob read with a blob cache is
   * copied into it on the way, kept only when every byte arrived and the digest matched.
   */
  async readBlob(d: Digest, start: number, end: number, size?: number): Promise<AsyncIterable<Buffer>> {
    const src = await this.driver.read(blobKey(d), start, end);
    const fill = start === 0 && size !== undefined && end === size - 1 ? this.cache?.fill(d) : null;
    return fill ? teeIntoCache(src, d, size!, fill) : src;
  }

  /** A presigned URL of the blob when the driver makes them (S3), else null. */
  async blobUrl(d: Digest, expiresSec = 1200): Promise<string | null> {
    return this.driver.presignGet ? this.driver.presignGet(blobKey(d), expiresSec) : null;
  }

  // ---- uploads ----

  async startUpload(name: string): Promise<Upload> {
    const id = randomUUID();
    await this.driver.createUpload(id, name);
    this.hashes.set(id, { hash: newHasher(), offset: 0, parts: [] });
    return { id, repo: name, size: 0 };
  }

  /** The upload `id` of repository `name`, with its current size; BLOB_UPLOAD_UNKNOWN when there is none. */
  async getUpload(name: string, id: string): Promise<Upload> {
    const unknown = () => new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    if (!UUID_RE.test(id)) throw unknown();
    const st = await this.driver.uploadState(id);
    if (!st || st.repo !== name) throw unknown();
    return { id, repo: st.repo, size: st.size, ...(st.parts ? { parts: st.parts } : {}) };
  }

  /** Runs `fn` with the upload locked against concurrent requests (of this process) on the same upload. */
  async withUpload<T>(name: string, id: string, fn: (u: Upload) => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    this.locks.set(id, mine);
    await prev;
    try {
      return await fn(await this.getUpload(name, id));
    } finally {
      if (this.locks.get(id) === mine) this.locks.delete(id);
      release();
    }
  }

  /** Appends a body to the upload (hashing on the way when the running hash is valid); returns bytes appended. */
  async appendUpload(u: Upload, body: AsyncIterable<unknown>): Promise<number> {
    let st: HashState | undefined = this.hashes.get(u.id);
    if (!validFor(st, u)) {
      this.hashes.delete(u.id);
      st = undefined;
    }
    if (!st && u.size === 0) {
      st = { hash: newHasher(), offset: 0, parts: [] };
      this.hashes.set(u.id, st);
    }
    const start = u.size;
    const tag = randomBytes(6).toString('hex');
    try {
      const n = await this.driver.appendUpload(u.id, start, body, (b) => {
        if (st) {
          st.hash.update(b);
          st.offset += b.length;
        }
      }, tag);
      u.size = start + n;
      if (u.parts && n > 0) {
        u.parts = [...u.parts, tag];
        st?.parts.push(tag);
      }
      return n;
    } catch (e) {
      // What the store kept is unknown: the next append or the finish hashes what is there.
      this.hashes.delete(u.id);
      throw e;
    }
  }

  async cancelUpload(u: Upload): Promise<void> {
    this.hashes.delete(u.id);
    await this.driver.deleteUpload(u.id);
  }

  /**
   * Verifies the upload against `expected`, then publishes it as the blob (atomically) and links it into the
   * repository. DIGEST_INVALID (and the upload discarded) on a mismatch.
   */
  async finishUpload(u: Upload, expected: Digest): Promise<{ digest: Digest; size: number }> {
    const st = this.hashes.get(u.id);
    this.hashes.delete(u.id);
    let actual: Digest;
    if (validFor(st, u)) {
      actual = `sha256:${st.hash.digest('hex')}`;
    } else {
      // Another process (replica, worker, a previous run) appended: hash what the store holds.
      const h = newHasher();
      let n = 0;
      for await (const c of this.driver.readUpload(u.id)) {
        h.update(c);
        n += c.length;
      }
      if (n !== u.size) throw new RegistryError('BLOB_UPLOAD_INVALID', 'the upload changed while it was being finished', { uuid: u.id });
      actual = `sha256:${h.digest('hex')}`;
    }
    if (actual !== expected) {
      await this.cancelUpload(u);
      throw new RegistryError('DIGEST_INVALID', `digest mismatch: expected ${expected}, got ${actual}`, { digest: expected });
    }
    if (await this.hasBlob(actual)) await this.driver.deleteUpload(u.id); // stored already (another push of it)
    else await this.driver.commitUpload(u.id, blobKey(actual));
    await this.linkBlob(u.repo, actual, true);
    return { digest: actual, size: u.size };
  }

  /**
   * A monolithic blob upload (the whole blob in one request body, its digest known up front): verified, then
   * published and linked into the repository. Drivers that write objects unseen (`writeObject`: S3) stream the body
   * straight to the blob's key and publish it only once the digest matched; the others go through an upload
   * session. A blob already stored is hashed but not stored again. DIGEST_INVALID on a mismatch, nothing kept.
   */
  async putBlob(name: string, expected: Digest, body: AsyncIterable<unknown>): Promise<{ digest: Digest; size: number }> {
    const write = this.driver.writeObject?.bind(this.driver);
    if (!write) {
      const u = await this.startUpload(name);
      try {
        await this.appendUpload(u, body);
        return await this.finishUpload(u, expected);
      } catch (e) {
        await this.cancelUpload(u).catch(() => {});
        throw e;
      }
    }
    const h = newHasher();
    let size = 0;
    // A replica's blob cache takes a copy on the way (kept once the digest matched and the store published it).
    const fill = this.cache?.fill(expected) ?? null;
    const tap = (b: Buffer) => { h.update(b); size += b.length; fill?.write(b); };
    const mismatch = (actual: string) => new RegistryError('DIGEST_INVALID', `digest mismatch: expected ${expected}, got ${actual}`, { digest: expected });
    try {
      if (await this.hasBlob(expected)) {
        for await (const c of body) tap(c as Buffer);
        const actual = `sha256:${h.digest('hex')}`;
        if (actual !== expected) throw mismatch(actual);
      } else {
        const pending = await write(blobKey(expected), body, tap);
        const actual = `sha256:${h.digest('hex')}`;
        if (actual !== expected) {
          await pending.discard();
          throw mismatch(actual);
        }
        await pending.publish();
      }
      await this.linkBlob(name, expected, true);
    } catch (e) {
      await fill?.abort();
      throw e;
    }
    await fill?.commit();
    return { digest: expected, size };
  }

  /** Removes uploads idle for longer than the TTL, and broken ones (no repo record) older than a minute. */
  private async expireUploads(): Promise<void> {
    const now = Date.now();
    for (const id of [...this.hashes.keys()]) {
      if ((await this.driver.uploadModified(id)) === null) this.hashes.delete(id);
    }
    for (const id of await this.driver.listUploads()) {
      const st = await this.driver.uploadState(id);
      const modified = st ? st.modifiedMs : await this.driver.uploadModified(id);
      if (modified === null) continue;
      if (now - modified > this.uploadTtlMs || (!st && now - modified > 60_000)) {
        this.hashes.delete(id);
        await this.driver.deleteUpload(id);
      }
    }
  }

  // ---- manifests ----

  async resolveTag(name: string, tag: string): Promise<Digest | null> {
    const b = await this.driver.get(`${repoKey(name)}/_manifests/tags/${tag}`);
    const s = b?.toString('utf8').trim() ?? '';
    return isDigest(s) ? s : null;
  }

  async revision(name: string, d: Digest): Promise<RevisionInfo | null> {
    const b = await this.driver.get(`${repoKey(name)}/_manifests/revisions/${hexOf(d)}`);
    return b ? (JSON.parse(b.toString('utf8')) as RevisionInfo) : null;
  }

  /**
   * Resolves a tag or digest to the manifest's digest and revision info, and with `bytes` its bytes too;
   * MANIFEST_UNKNOWN when absent. The revision and the manifest's blob are read in one round trip (the blob's GET,
   * or HEAD without `bytes`, is the proof that it exists): on a store ~1 ms away that is nothing, on S3 it is one
   * request's latency less per manifest GET/HEAD (a tag costs one more: its link).
   */
  async resolveManifest(name: string, reference: string, opts: { bytes?: boolean } = {}): Promise<{ digest: Digest; info: RevisionInfo; bytes?: Buffer }> {
    let d: Digest | null;
    if (reference.includes(':')) d = digestParam(reference);
    else if (isTag(reference)) d = await this.resolveTag(name, reference);
    else throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: reference }, 400);
    const unknown = () => new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
    if (!d) throw unknown();
    const [info, blob] = await Promise.all([
      this.revision(name, d),
      opts.bytes ? this.driver.get(blobKey(d)) : this.hasBlob(d),
    ]);
    if (!info || !blob) throw unknown();
    return blob instanceof Buffer ? { digest: d, info, bytes: blob } : { digest: d, info };
  }

  /** MANIFEST_BLOB_UNKNOWN unless every blob and child manifest the manifest references is in the repository. */
  private async checkReferences(name: string, parsed: ParsedManifest): Promise<void> {
    for (const b of parsed.blobs) {
      if ((await this.statBlob(name, b.digest)) === null) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', { digest: b.digest });
      }
    }
    for (const m of parsed.manifests) {
      if (!(await this.revision(name, m.digest)) || !(await this.hasBlob(m.digest))) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest unknown to registry', { digest: m.digest });
      }
    }
  }

  /**
   * Stores a manifest: checks structure, referenced blobs and manifests, then publishes bytes, revision,
   * referrer link and tag (in that order). The links of the blobs it references are refreshed first and the
   * references checked again once the revision is published, so that a concurrent garbage collection either
   * sees the push (fresh links, the revision) or the push fails cleanly (see ARCHITECTURE.md, registry GC).
   */
  async putManifest(name: string, reference: string, bytes: Buffer, contentType: string | undefined): Promise<{ digest: Digest; parsed: ParsedManifest }> {
    let tag: string | undefined;
    const digest = sha256(bytes);
    if (reference.includes(':')) {
      const want = digestParam(reference);
      if (want !== digest) throw new RegistryError('DIGEST_INVALID', 'manifest digest did not match', { expected: want, actual: digest });
    } else if (isTag(reference)) {
      tag = reference;
    } else {
      throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: reference }, 400);
    }
    const parsed = parseManifest(bytes, contentType);
    // Refresh the links first: a garbage collection running now keeps what they name (grace period).
    for (const b of parsed.blobs) {
      if (await this.driver.stat(`${repoKey(name)}/_layers/${hexOf(b.digest)}`)) await this.linkBlob(name, b.digest, true);
    }
    await this.checkReferences(name, parsed);
    await this.putBlobBytes(bytes);
    const info: RevisionInfo = { mediaType: parsed.mediaType, size: bytes.length };
    if (parsed.subject) info.subject = parsed.subject.digest;
    if (parsed.artifactType) info.artifactType = parsed.artifactType;
    if (parsed.annotations) info.annotations = parsed.annotations;
    const dir = repoKey(name);
    const revKey = `${dir}/_manifests/revisions/${hexOf(digest)}`;
    const existed = (await this.driver.stat(revKey)) !== null;
    await this.driver.put(revKey, JSON.stringify(info));
    try {
      await this.checkReferences(name, parsed);
    } catch (e) {
      if (!existed) await this.driver.delete(revKey).catch(() => {});
      throw e;
    }
    if (parsed.subject) {
      const desc: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
      if (parsed.artifactType) desc.artifactType = parsed.artifactType;
      if (parsed.annotations) desc.annotations = parsed.annotations;
      await this.driver.put(`${dir}/_referrers/${hexOf(parsed.subject.digest)}/${hexOf(digest)}`, JSON.stringify(desc));
    }
    if (tag) await this.driver.put(`${dir}/_manifests/tags/${tag}`, digest);
    return { digest, parsed };
  }

  /** Deletes a tag (reference is a tag) or a manifest with every tag pointing to it (reference is a digest). */
  async deleteManifest(name: string, reference: string): Promise<void> {
    const dir = repoKey(name);
    if (!reference.includes(':')) {
      if (!isTag(reference) || (await this.resolveTag(name, reference)) === null) {
        throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
      }
      await this.driver.delete(`${dir}/_manifests/tags/${reference}`);
      return;
    }
    const d = digestParam(reference);
    const info = await this.revision(name, d);
    if (!info) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
    for (const t of await this.tags(name)) {
      if ((await this.resolveTag(name, t)) === d) await this.driver.delete(`${dir}/_manifests/tags/${t}`);
    }
    if (info.subject) await this.driver.delete(`${dir}/_referrers/${hexOf(info.subject)}/${hexOf(d)}`);
    await this.driver.delete(`${dir}/_manifests/revisions/${hexOf(d)}`);
  }

  async tags(name: string): Promise<string[]> {
    return (await this.driver.list(`${repoKey(name)}/_manifests/tags`)).filter(isTag).sort();
  }

  async referrers(name: string, subject: Digest): Promise<Descriptor[]> {
    const dir = `${repoKey(name)}/_referrers/${hexOf(subject)}`;
    const out: Descriptor[] = [];
    for (const n of (await this.driver.list(dir)).sort()) {
      if (!HEX_RE.test(n)) continue;
      const b = await this.driver.get(`${dir}/${n}`);
      if (!b) continue;
      const desc = JSON.parse(b.toString('utf8')) as Descriptor;
      // A referrer deleted since must not show up.
      if (await this.revision(name, desc.digest)) out.push(desc);
    }
    return out;
  }

  repositories(): Promise<string[]> {
    return listRepositories(this.driver);
  }

  revisions(name: string): Promise<Digest[]> {
    return listHexes(this.driver, `${repoKey(name)}/_manifests/revisions`);
  }
}

/** Every repository name in the store, sorted. */
export async function listRepositories(driver: StorageDriver): Promise<string[]> {
  const out: string[] = [];
  const walk = async (prefix: string[]): Promise<void> => {
    const entries = await driver.list(['repositories', ...prefix].join('/'));
    if (prefix.length > 0 && (entries.includes('_manifests') || entries.includes('_layers'))) out.push(prefix.join('/'));
    for (const n of entries) {
      if (n.startsWith('_') || n.startsWith('.')) continue;
      // Only "directories" hold repositories; an object name is not a name component to descend into.
      if (/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(n)) await walk([...prefix, n]);
    }
  };
  await walk([]);
  return out.sort();
}

async function listHexes(driver: StorageDriver, prefix: string): Promise<Digest[]> {
  return (await driver.list(prefix)).filter((n) => HEX_RE.test(n)).map((n) => `sha256:${n}` as Digest);
}

export interface GcResult {
  /** Blobs kept because a manifest references them (manifests included). */
  marked: number;
  deleted: Digest[];
  freedBytes: number;
  /** Manifests removed from repositories by `deleteUntagged` ("repo@digest"). */
  untagged: string[];
  /** Unreferenced blobs kept because they are younger than the grace period or a push refreshed their link. */
  kept: number;
  /** Incomplete writes of killed writers removed (S3: multipart uploads older than the grace period, at least an hour). */
  swept: number;
}

export interface GcOptions {
  /** Only report. */
  dryRun?: boolean;
  /**
   * The grace period (ms): keep unreferenced blobs younger than this, and those whose repository link was
   * refreshed within it (a push in flight: uploads finished, manifest not yet published).
   */
  minAgeMs?: number;
  /**
   * Also remove manifests no tag reaches (directly, as an index's child, or as a referrer of a reached
   * manifest), like distribution's --delete-untagged.
   */
  deleteUntagged?: boolean;
}

async function readJson(driver: StorageDriver, key: string): Promise<Record<string, unknown> | null> {
  try {
    const b = await driver.get(key);
    if (!b) return null;
    const v = JSON.parse(b.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Marks every blob the manifests of `repos` reference (manifests included); with `deleteUntagged`, unreached manifests go first. */
async function mark(driver: StorageDriver, repos: string[], opts: GcOptions, untagged: string[] | null): Promise<Set<string>> {
  const marked = new Set<string>();
  for (const repo of repos) {
    const dir = repoKey(repo);
    let revisions = await listHexes(driver, `${dir}/_manifests/revisions`);
    const parsed = new Map<Digest, Record<string, unknown> | null>();
    for (const d of revisions) parsed.set(d, await readJson(driver, blobKey(d)));
    if (opts.deleteUntagged && untagged) {
      const reached = new Set<Digest>();
      const queue: Digest[] = [];
      for (const t of await driver.list(`${dir}/_manifests/tags`)) {
        const d = ((await driver.get(`${dir}/_manifests/tags/${t}`))?.toString('utf8') ?? '').trim();
        if (isDigest(d)) queue.push(d);
      }
      const subjectOf = new Map<Digest, Digest>();
      for (const d of revisions) {
        const info = await readJson(driver, `${dir}/_manifests/revisions/${hexOf(d)}`);
        const subj = info?.subject;
        if (typeof subj === 'string' && isDigest(subj)) subjectOf.set(d, subj);
      }
      while (queue.length > 0) {
        const d = queue.pop()!;
        if (reached.has(d)) continue;
        reached.add(d);
        const m = parsed.get(d);
        if (m) queue.push(...referencedDigests(m).manifests);
        for (const [r, subj] of subjectOf) if (subj === d && !reached.has(r)) queue.push(r);
      }
      const keep: Digest[] = [];
      for (const d of revisions) {
        if (reached.has(d)) { keep.push(d); continue; }
        untagged.push(`${repo}@${d}`);
        if (!opts.dryRun) {
          const subj = subjectOf.get(d);
          if (subj) await driver.delete(`${dir}/_referrers/${hexOf(subj)}/${hexOf(d)}`);
          await driver.delete(`${dir}/_manifests/revisions/${hexOf(d)}`);
        }
      }
      revisions = keep;
    }
    for (const d of revisions) {
      marked.add(d);
      const m = parsed.get(d);
      if (!m) continue;
      const refs = referencedDigests(m);
      for (const x of [...refs.blobs, ...refs.manifests]) marked.add(x);
    }
  }
  return marked;
}

/**
 * Garbage collection, safe beside pushing replicas (mark, grace period, mark again, sweep): deletes every blob
 * that no manifest of any repository references (the manifests themselves, their configs, layers and index
 * children) and that is older than the grace period (`minAgeMs`) with no repository link refreshed within it,
 * after a second mark pass that catches manifests published while the first ran; then the repositories' links
 * to deleted blobs. It never touches uploads in flight (they are not blobs until committed, then young). On the
 * filesystem it also removes temporaries (`.tmp-*`) of interrupted atomic writes older than an hour.
 */
export async function collectGarbage(store: string | StorageDriver, opts: GcOptions = {}): Promise<GcResult> {
  const driver: StorageDriver = typeof store === 'string' ? await FsDriver.open(store) : store;
  const started = Date.now();
  const graceStart = started - (opts.minAgeMs ?? 0);
  const untagged: string[] = [];
  const repos = await listRepositories(driver);
  const marked = await mark(driver, repos, opts, untagged);
  const candidates: { d: Digest; size: number }[] = [];
  let kept = 0;
  for (const d of await listHexes(driver, 'blobs/sha256')) {
    if (marked.has(d)) continue;
    const st = await driver.stat(blobKey(d));
    if (!st) continue;
    if (opts.minAgeMs && st.modifiedMs > graceStart) { kept++; continue; }
    candidates.push({ d, size: st.size });
  }
  // Second pass: manifests published (and links refreshed) since the first.
  const again = candidates.length > 0 ? await mark(driver, await listRepositories(driver), { ...opts, deleteUntagged: false }, null) : new Set<string>();
  const reposNow = candidates.length > 0 ? await listRepositories(driver) : [];
  const deleted: Digest[] = [];
  let freedBytes = 0;
  for (const c of candidates) {
    if (again.has(c.d)) { kept++; continue; }
    let fresh = false;
    if (opts.minAgeMs) {
      for (const repo of reposNow) {
        const link = await driver.stat(`${repoKey(repo)}/_layers/${hexOf(c.d)}`);
        if (link && link.modifiedMs > graceStart) { fresh = true; break; }
      }
    }
    if (fresh) { kept++; continue; }
    deleted.push(c.d);
    freedBytes += c.size;
    if (!opts.dryRun) await driver.delete(blobKey(c.d));
  }
  if (!opts.dryRun && deleted.length > 0) {
    const gone = new Set<string>(deleted);
    for (const repo of reposNow) {
      for (const d of await listHexes(driver, `${repoKey(repo)}/_layers`)) {
        if (gone.has(d)) await driver.delete(`${repoKey(repo)}/_layers/${hexOf(d)}`);
      }
    }
  }
  if (!opts.dryRun && driver instanceof FsDriver) {
    // Temporaries of interrupted atomic writes in the blob directory.
    const blobDir = join(driver.root, 'blobs', 'sha256');
    for (const n of await readdir(blobDir).catch(() => [] as string[])) {
      if (!n.startsWith('.tmp-')) continue;
      const st = await stat(join(blobDir, n)).catch(() => null);
      if (st && started - st.mtimeMs > 3_600_000) await rm(join(blobDir, n), { force: true });
    }
  }
  // Multipart uploads a killed replica left: invisible, but they hold space. In-flight ones are younger.
  const sweep = (driver as StorageDriver).sweepIncomplete?.bind(driver);
  const swept = !opts.dryRun && sweep ? await sweep(Math.max(opts.minAgeMs ?? 0, 3_600_000)) : 0;
  if (typeof store === 'string') await driver.close();
  return { marked: marked.size, deleted, freedBytes, untagged, kept, swept };
}
