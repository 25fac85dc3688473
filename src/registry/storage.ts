/**
 * Filesystem storage of the registry server.
 *
 * Layout under the root:
 *   blobs/sha256/<hex>                                  committed blobs (verified, fsynced, renamed into place;
 *                                                       the content store's layout)
 *   uploads/<uuid>/{repo,data}                          uploads in flight (never visible as blobs)
 *   repositories/<name>/_layers/<hex>                   the repository may serve blob <hex> (empty file)
 *   repositories/<name>/_manifests/revisions/<hex>      manifest <hex> is in the repository (JSON: media type…)
 *   repositories/<name>/_manifests/tags/<tag>           the tag's manifest digest
 *   repositories/<name>/_referrers/<subject hex>/<hex>  descriptor of a manifest whose `subject` is <subject>
 *
 * Every file is published by one atomic rename (upload data → blob, writeFileAtomic), so a kill -9 at any
 * moment leaves committed data intact and at most temporaries (`.tmp-*`, upload files) behind. Upload sessions
 * are on disk, so several server processes (workers) can share one root and a restarted server resumes them. Order of
 * publication for a manifest: its bytes as a blob → revision link → referrer link → tag.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { randomUUID, type Hash } from 'node:crypto';
import { hexOf, isDigest, newHasher, sha256, type Digest } from '../lib/digest.js';
import { fsyncDir, writeFileAtomic } from '../lib/atomic.js';
import { RegistryError } from './errors.js';
import {
  ManifestError, parseManifest as parseOciManifest, referencedDigests, type Descriptor, type ParsedManifest,
} from '../lib/oci/manifest.js';
import { isENOENT } from '../lib/fsutil.js';

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

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    if (isENOENT(e)) return false;
    throw e;
  }
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (e) {
    if (isENOENT(e)) return [];
    throw e;
  }
}

/** Writes an empty link file atomically (exists = linked). */
async function touchAtomic(path: string): Promise<void> {
  if (await exists(path)) return;
  await writeFileAtomic(path, '');
}

/** An upload session: `uploads/<id>/repo` names the repository, `uploads/<id>/data` holds the bytes so far. */
export interface Upload {
  readonly id: string;
  readonly repo: string;
  /** Bytes received so far. */
  size: number;
}

/** The running sha256 of an upload's data, valid while `offset` equals the data file's size. */
interface HashState {
  hash: Hash;
  offset: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class RegistryStorage {
  /**
   * Upload sessions live on disk, so that any process serving the same root (workers) can continue them and
   * a restarted server can too; this process only caches the running hash of the uploads it appended to.
   */
  private hashes = new Map<string, HashState>();
  private locks = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout;
  readonly blobDir: string;
  readonly uploadDir: string;

  private constructor(readonly root: string, private readonly uploadTtlMs: number) {
    this.blobDir = join(root, 'blobs', 'sha256');
    this.uploadDir = join(root, 'uploads');
    this.sweeper = setInterval(() => void this.expireUploads().catch(() => {}), Math.min(60_000, uploadTtlMs)).unref();
  }

  static async open(root: string, opts: { uploadTtlMs?: number } = {}): Promise<RegistryStorage> {
    await mkdir(join(root, 'repositories'), { recursive: true });
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, 'uploads'), { recursive: true });
    const s = new RegistryStorage(root, opts.uploadTtlMs ?? 24 * 3_600_000);
    await s.expireUploads();
    return s;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.hashes.clear();
  }

  private repoDir(name: string): string {
    return join(this.root, 'repositories', ...name.split('/'));
  }

  blobPath(d: Digest): string {
    return join(this.blobDir, hexOf(d));
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return exists(this.blobPath(d));
  }

  async repoExists(name: string): Promise<boolean> {
    const dir = this.repoDir(name);
    return (await exists(join(dir, '_manifests'))) || (await exists(join(dir, '_layers')));
  }

  // ---- blobs ----

  /** Size of a blob the repository may serve (a linked layer or one of its manifests), or null. */
  async statBlob(name: string, d: Digest): Promise<number | null> {
    const dir = this.repoDir(name);
    const hex = hexOf(d);
    if (!(await exists(join(dir, '_layers', hex))) && !(await exists(join(dir, '_manifests', 'revisions', hex)))) return null;
    try {
      const st = await stat(this.blobPath(d));
      return st.size;
    } catch (e) {
      if (isENOENT(e)) return null;
      throw e;
    }
  }

  async linkBlob(name: string, d: Digest): Promise<void> {
    await touchAtomic(join(this.repoDir(name), '_layers', hexOf(d)));
  }

  /** Removes the repository's link to a blob (the blob itself goes at garbage collection). */
  async unlinkBlob(name: string, d: Digest): Promise<boolean> {
    const p = join(this.repoDir(name), '_layers', hexOf(d));
    if (!(await exists(p))) return false;
    await rm(p, { force: true });
    return true;
  }

  /** Publishes small bytes (manifests) as a blob: verified by construction, written atomically. */
  async putBlobBytes(bytes: Buffer): Promise<Digest> {
    const d = sha256(bytes);
    if (!(await this.hasBlob(d))) await writeFileAtomic(this.blobPath(d), bytes);
    return d;
  }

  // ---- uploads ----

  async startUpload(name: string): Promise<Upload> {
    const id = randomUUID();
    const dir = join(this.uploadDir, id);
    await mkdir(dir);
    await writeFile(join(dir, 'data'), '');
    // The repo file appears last: an upload without it is unusable and swept.
    await writeFileAtomic(join(dir, 'repo'), name);
    this.hashes.set(id, { hash: newHasher(), offset: 0 });
    return { id, repo: name, size: 0 };
  }

  /** The upload `id` of repository `name`, with its current size; BLOB_UPLOAD_UNKNOWN when there is none. */
  async getUpload(name: string, id: string): Promise<Upload> {
    const unknown = () => new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    if (!UUID_RE.test(id)) throw unknown();
    const dir = join(this.uploadDir, id);
    let repo: string;
    let size: number;
    try {
      repo = await readFile(join(dir, 'repo'), 'utf8');
      size = (await stat(join(dir, 'data'))).size;
    } catch (e) {
      if (isENOENT(e)) throw unknown();
      throw e;
    }
    if (repo !== name) throw unknown();
    return { id, repo, size };
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
    const fh = await open(join(this.uploadDir, u.id, 'data'), 'a');
    let st = this.hashes.get(u.id);
    if (st && st.offset !== u.size) {
      this.hashes.delete(u.id);
      st = undefined;
    }
    if (!st && u.size === 0) {
      st = { hash: newHasher(), offset: 0 };
      this.hashes.set(u.id, st);
    }
    let n = 0;
    try {
      for await (const c of body) {
        const b = c as Buffer;
        let off = 0;
        while (off < b.length) {
          const { bytesWritten } = await fh.write(b, off, b.length - off);
          if (st) st.hash.update(b.subarray(off, off + bytesWritten));
          off += bytesWritten;
          n += bytesWritten;
          u.size += bytesWritten;
          if (st) st.offset = u.size;
        }
      }
    } finally {
      await fh.close();
    }
    return n;
  }

  async cancelUpload(u: Upload): Promise<void> {
    this.hashes.delete(u.id);
    await rm(join(this.uploadDir, u.id), { recursive: true, force: true });
  }

  /**
   * Verifies the upload against `expected`, then publishes it: fsync, one rename into blobs/, link into the
   * repository. DIGEST_INVALID (and the upload discarded) on a mismatch.
   */
  async finishUpload(u: Upload, expected: Digest): Promise<{ digest: Digest; size: number }> {
    const data = join(this.uploadDir, u.id, 'data');
    const st = this.hashes.get(u.id);
    this.hashes.delete(u.id);
    let actual: Digest;
    if (st && st.offset === u.size) {
      actual = `sha256:${st.hash.digest('hex')}`;
    } else {
      // Another process (or a previous run) appended: hash the file.
      const h = newHasher();
      for await (const c of createReadStream(data, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
      actual = `sha256:${h.digest('hex')}`;
    }
    if (actual !== expected) {
      await this.cancelUpload(u);
      throw new RegistryError('DIGEST_INVALID', `digest mismatch: expected ${expected}, got ${actual}`, { digest: expected });
    }
    const fh = await open(data, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(data, this.blobPath(actual));
    await fsyncDir(this.blobDir);
    await this.linkBlob(u.repo, actual);
    await rm(join(this.uploadDir, u.id), { recursive: true, force: true });
    return { digest: actual, size: u.size };
  }

  /** Removes uploads idle for longer than the TTL, and broken ones (no repo file) older than a minute. */
  private async expireUploads(): Promise<void> {
    const now = Date.now();
    // Running hashes of uploads that another process finished or cancelled.
    for (const id of [...this.hashes.keys()]) {
      if (!(await exists(join(this.uploadDir, id)))) this.hashes.delete(id);
    }
    for (const id of await listNames(this.uploadDir)) {
      const dir = join(this.uploadDir, id);
      try {
        const st = await stat(join(dir, 'data')).catch(() => stat(dir));
        const hasRepo = await exists(join(dir, 'repo'));
        if (now - st.mtimeMs > this.uploadTtlMs || (!hasRepo && now - st.mtimeMs > 60_000)) {
          this.hashes.delete(id);
          await rm(dir, { recursive: true, force: true });
        }
      } catch (e) {
        if (!isENOENT(e)) throw e;
      }
    }
  }

  // ---- manifests ----

  async resolveTag(name: string, tag: string): Promise<Digest | null> {
    try {
      const s = (await readFile(join(this.repoDir(name), '_manifests', 'tags', tag), 'utf8')).trim();
      return isDigest(s) ? s : null;
    } catch (e) {
      if (isENOENT(e)) return null;
      throw e;
    }
  }

  async revision(name: string, d: Digest): Promise<RevisionInfo | null> {
    try {
      return JSON.parse(await readFile(join(this.repoDir(name), '_manifests', 'revisions', hexOf(d)), 'utf8')) as RevisionInfo;
    } catch (e) {
      if (isENOENT(e)) return null;
      throw e;
    }
  }

  /** Resolves a tag or digest to the manifest's digest and revision info; MANIFEST_UNKNOWN when absent. */
  async resolveManifest(name: string, reference: string): Promise<{ digest: Digest; info: RevisionInfo }> {
    let d: Digest | null;
    if (reference.includes(':')) d = digestParam(reference);
    else if (isTag(reference)) d = await this.resolveTag(name, reference);
    else throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: reference }, 400);
    const info = d ? await this.revision(name, d) : null;
    if (!d || !info || !(await this.hasBlob(d))) {
      throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
    }
    return { digest: d, info };
  }

  async readManifest(d: Digest): Promise<Buffer> {
    return readFile(this.blobPath(d));
  }

  /**
   * Stores a manifest: checks structure, referenced blobs and manifests, then publishes bytes, revision,
   * referrer link and tag (in that order). Returns the digest and the parsed manifest.
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
    await this.putBlobBytes(bytes);
    const info: RevisionInfo = { mediaType: parsed.mediaType, size: bytes.length };
    if (parsed.subject) info.subject = parsed.subject.digest;
    if (parsed.artifactType) info.artifactType = parsed.artifactType;
    if (parsed.annotations) info.annotations = parsed.annotations;
    const dir = this.repoDir(name);
    await writeFileAtomic(join(dir, '_manifests', 'revisions', hexOf(digest)), JSON.stringify(info));
    if (parsed.subject) {
      const desc: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
      if (parsed.artifactType) desc.artifactType = parsed.artifactType;
      if (parsed.annotations) desc.annotations = parsed.annotations;
      await writeFileAtomic(join(dir, '_referrers', hexOf(parsed.subject.digest), hexOf(digest)), JSON.stringify(desc));
    }
    if (tag) await writeFileAtomic(join(dir, '_manifests', 'tags', tag), digest);
    return { digest, parsed };
  }

  /** Deletes a tag (reference is a tag) or a manifest with every tag pointing to it (reference is a digest). */
  async deleteManifest(name: string, reference: string): Promise<void> {
    const dir = this.repoDir(name);
    if (!reference.includes(':')) {
      if (!isTag(reference) || (await this.resolveTag(name, reference)) === null) {
        throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
      }
      await rm(join(dir, '_manifests', 'tags', reference), { force: true });
      return;
    }
    const d = digestParam(reference);
    const info = await this.revision(name, d);
    if (!info) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
    for (const t of await this.tags(name)) {
      if ((await this.resolveTag(name, t)) === d) await rm(join(dir, '_manifests', 'tags', t), { force: true });
    }
    if (info.subject) await rm(join(dir, '_referrers', hexOf(info.subject), hexOf(d)), { force: true });
    await rm(join(dir, '_manifests', 'revisions', hexOf(d)), { force: true });
  }

  async tags(name: string): Promise<string[]> {
    return (await listNames(join(this.repoDir(name), '_manifests', 'tags'))).filter(isTag).sort();
  }

  async referrers(name: string, subject: Digest): Promise<Descriptor[]> {
    const dir = join(this.repoDir(name), '_referrers', hexOf(subject));
    const out: Descriptor[] = [];
    for (const n of (await listNames(dir)).sort()) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      try {
        const desc = JSON.parse(await readFile(join(dir, n), 'utf8')) as Descriptor;
        // A referrer deleted since must not show up.
        if (await this.revision(name, desc.digest)) out.push(desc);
      } catch (e) {
        if (!isENOENT(e)) throw e;
      }
    }
    return out;
  }

  repositories(): Promise<string[]> {
    return listRepositories(this.root);
  }

  revisions(name: string): Promise<Digest[]> {
    return listHexes(join(this.repoDir(name), '_manifests', 'revisions'));
  }

  repoPath(name: string): string {
    return this.repoDir(name);
  }
}

/** Every repository name under a registry root, sorted. */
export async function listRepositories(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string[]): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isENOENT(e)) return;
      throw e;
    }
    let isRepo = false;
    for (const ent of entries) {
      if (!ent.isDirectory()) continue;
      if (ent.name === '_manifests' || ent.name === '_layers') isRepo = true;
      else if (!ent.name.startsWith('_') && !ent.name.startsWith('.')) await walk(join(dir, ent.name), [...prefix, ent.name]);
    }
    if (isRepo && prefix.length > 0) out.push(prefix.join('/'));
  };
  await walk(join(root, 'repositories'), []);
  return out.sort();
}

async function listHexes(dir: string): Promise<Digest[]> {
  return (await listNames(dir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
}

export interface GcResult {
  /** Blobs kept because a manifest references them (manifests included). */
  marked: number;
  deleted: Digest[];
  freedBytes: number;
  /** Manifests removed from repositories by `deleteUntagged` ("repo@digest"). */
  untagged: string[];
}

export interface GcOptions {
  /** Only report. */
  dryRun?: boolean;
  /** Keep blobs younger than this (ms): blobs uploaded for a manifest not pushed yet. */
  minAgeMs?: number;
  /**
   * Also remove manifests no tag reaches (directly, as an index's child, or as a referrer of a reached
   * manifest), like distribution's --delete-untagged.
   */
  deleteUntagged?: boolean;
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Garbage collection: deletes every blob that no manifest of any repository references (the manifests
 * themselves, their configs, layers and index children), and the repositories' links to deleted blobs.
 * Blobs younger than `minAgeMs` are kept (uploads whose manifest is not pushed yet). Run it while nothing
 * pushes, like distribution's garbage-collect, or with a grace period. It never touches uploads in flight;
 * it removes temporaries (`.tmp-*`) of interrupted atomic writes older than an hour.
 */
export async function collectGarbage(root: string, opts: GcOptions = {}): Promise<GcResult> {
  const blobDir = join(root, 'blobs', 'sha256');
  const marked = new Set<string>();
  const untagged: string[] = [];
  const repos = await listRepositories(root);
  for (const repo of repos) {
    const repoDir = join(root, 'repositories', ...repo.split('/'));
    let revisions = await listHexes(join(repoDir, '_manifests', 'revisions'));
    const parsed = new Map<Digest, Record<string, unknown> | null>();
    for (const d of revisions) parsed.set(d, await readJson(join(blobDir, hexOf(d))));
    if (opts.deleteUntagged) {
      const reached = new Set<Digest>();
      const queue: Digest[] = [];
      for (const t of (await listNames(join(repoDir, '_manifests', 'tags')))) {
        const d = (await readFile(join(repoDir, '_manifests', 'tags', t), 'utf8').catch(() => '')).trim();
        if (isDigest(d)) queue.push(d);
      }
      const subjectOf = new Map<Digest, Digest>();
      for (const d of revisions) {
        const info = await readJson(join(repoDir, '_manifests', 'revisions', hexOf(d)));
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
          if (subj) await rm(join(repoDir, '_referrers', hexOf(subj), hexOf(d)), { force: true });
          await rm(join(repoDir, '_manifests', 'revisions', hexOf(d)), { force: true });
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
  const deleted: Digest[] = [];
  let freedBytes = 0;
  const now = Date.now();
  for (const d of await listHexes(blobDir)) {
    if (marked.has(d)) continue;
    let st;
    try {
      st = await stat(join(blobDir, hexOf(d)));
    } catch {
      continue;
    }
    if (opts.minAgeMs && now - st.mtimeMs < opts.minAgeMs) continue;
    deleted.push(d);
    freedBytes += st.size;
    if (!opts.dryRun) await rm(join(blobDir, hexOf(d)), { force: true });
  }
  if (!opts.dryRun) {
    const gone = new Set<string>(deleted);
    for (const repo of repos) {
      const dir = join(root, 'repositories', ...repo.split('/'), '_layers');
      for (const d of await listHexes(dir)) {
        if (gone.has(d)) await rm(join(dir, hexOf(d)), { force: true });
      }
    }
    // Temporaries of interrupted atomic writes in the blob directory.
    for (const n of await readdir(blobDir).catch(() => [] as string[])) {
      if (!n.startsWith('.tmp-')) continue;
      const st = await stat(join(blobDir, n)).catch(() => null);
      if (st && now - st.mtimeMs > 3_600_000) await rm(join(blobDir, n), { force: true });
    }
  }
  return { marked: marked.size, deleted, freedBytes, untagged };
}
