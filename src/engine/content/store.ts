import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { hexOf, isDigest, newHasher, parseDigest, type Digest } from '../../lib/digest.js';
import { fsyncDir } from '../../lib/atomic.js';
import { InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import type { BlobInfo, BlobWriter, ContentStore } from './types.js';
import { isENOENT } from '../../lib/fsutil.js';

/**
 * Content store on the local filesystem.
 *
 * Layout: <root>/blobs/sha256/<hex> (committed, immutable), <root>/ingest/<random> (writes in flight).
 * A blob becomes visible by one rename of a fully written, fsynced and verified ingest file; opening the store
 * removes every ingest left by a previous process (they are never resumable here).
 */
export async function openContentStore(root: string): Promise<ContentStore> {
  const blobDir = join(root, 'blobs', 'sha256');
  const ingestDir = join(root, 'ingest');
  await mkdir(blobDir, { recursive: true });
  // Stale ingests belong to a previous process: nothing can finish them.
  await rm(ingestDir, { recursive: true, force: true });
  await mkdir(ingestDir, { recursive: true });
  return new FsContentStore(blobDir, ingestDir);
}

function notFound(d: string): NotFoundError {
  return new NotFoundError(`content ${d}: not found`);
}

class FsContentStore implements ContentStore {
  constructor(private readonly blobDir: string, private readonly ingestDir: string) {}

  pathOf(digest: Digest): string {
    return join(this.blobDir, hexOf(parseDigest(digest)));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.pathOf(digest))).isFile();
    } catch (e) {
      if (isENOENT(e)) return false;
      throw e;
    }
  }

  async info(digest: Digest): Promise<BlobInfo> {
    try {
      const st = await stat(this.pathOf(digest));
      return { digest, size: st.size };
    } catch (e) {
      if (isENOENT(e)) throw notFound(digest);
      throw e;
    }
  }

  async readBytes(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(digest));
    } catch (e) {
      if (isENOENT(e)) throw notFound(digest);
      throw e;
    }
  }

  async reader(digest: Digest): Promise<Readable> {
    const p = this.pathOf(digest);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (e) {
      if (isENOENT(e)) throw notFound(digest);
      throw e;
    }
    // The stream owns the handle: the blob may be deleted meanwhile and the reader still completes.
    return fh.createReadStream({ autoClose: true });
  }

  async writer(): Promise<BlobWriter> {
    const path = join(this.ingestDir, randomBytes(16).toString('hex'));
    const fh = await open(path, 'wx', 0o644);
    return new IngestWriter(fh, path, this.blobDir);
  }

  async put(data: Uint8Array, expected?: Digest): Promise<BlobInfo> {
    const w = await this.writer();
    try {
      await w.write(data);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w.commit(expected, expected ? data.byteLength : undefined);
  }

  /** Removes a blob; deleting an absent blob is not an error (idempotent, for GC). */
  async delete(digest: Digest): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }

  async *walk(): AsyncIterable<BlobInfo> {
    let names: string[];
    try {
      names = await readdir(this.blobDir);
    } catch (e) {
      if (isENOENT(e)) return;
      throw e;
    }
    names.sort();
    for (const hex of names) {
      const d = `sha256:${hex}`;
      if (!isDigest(d)) continue;
      try {
        const st = await stat(join(this.blobDir, hex));
        if (st.isFile()) yield { digest: d, size: st.size };
      } catch (e) {
        if (!isENOENT(e)) throw e; // deleted while walking
      }
    }
  }
}

class IngestWriter implements BlobWriter {
  private hash = newHasher();
  private _written = 0;
  private done = false;

  constructor(private fh: FileHandle, private readonly path: string, private readonly blobDir: string) {}

  get written(): number {
    return this._written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new InvalidParameterError('write to a closed ingest');
    this.hash.update(chunk);
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.byteLength - off);
      off += bytesWritten;
    }
    this._written += chunk.byteLength;
  }

  async commit(expected?: Digest, expectedSize?: number): Promise<BlobInfo> {
    if (this.done) throw new InvalidParameterError('commit of a closed ingest');
    this.done = true;
    const actual: Digest = `sha256:${this.hash.digest('hex')}`;
    try {
      if (expectedSize !== undefined && expectedSize !== this._written) {
        throw new InvalidParameterError(
          `failed to verify digest: digest mismatch: expected size ${expectedSize}, got ${this._written} (${expected ?? actual})`,
        );
      }
      if (expected !== undefined && expected !== actual) {
        throw new InvalidParameterError(`failed to verify digest: digest mismatch: expected ${expected}, got ${actual}`);
      }
      await this.fh.sync();
      await this.fh.close();
    } catch (e) {
      await this.fh.close().catch(() => {});
      await rm(this.path, { force: true });
      throw e;
    }
    const target = join(this.blobDir, hexOf(actual));
    try {
      await rename(this.path, target);
    } catch (e) {
      await rm(this.path, { force: true });
      throw e;
    }
    await fsyncDir(this.blobDir);
    return { digest: actual, size: this._written };
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}

