import type { Readable } from 'node:stream';
import type { Digest } from '../../lib/digest.js';

/**
 * The content store: blobs (compressed layers, manifests, configs) addressed by digest.
 *
 * Terms: an *ingest* is a write in flight, invisible to readers; `commit` verifies the digest (and size when
 * given) and makes the blob visible by one atomic rename. Until then nothing can read it, so a crash mid-write
 * leaves no half blob, only an ingest file that `gc`/startup removes.
 *
 * Layout: <root>/blobs/sha256/<hex>, <root>/ingest/<random>.
 */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface BlobWriter {
  /** Bytes written so far. */
  readonly written: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Verifies and publishes. Throws InvalidParameterError ("digest mismatch") when the content's digest is not
   * `expected`, or its size not `expectedSize`; the ingest is then discarded.
   */
  commit(expected?: Digest, expectedSize?: number): Promise<BlobInfo>;
  /** Discards the ingest. */
  abort(): Promise<void>;
}

export interface ContentStore {
  has(digest: Digest): Promise<boolean>;
  /** NotFoundError when absent. */
  info(digest: Digest): Promise<BlobInfo>;
  /** NotFoundError when absent. */
  readBytes(digest: Digest): Promise<Buffer>;
  reader(digest: Digest): Promise<Readable>;
  /** Starts an ingest. */
  writer(): Promise<BlobWriter>;
  /** Writes bytes, verifying `expected` when given. */
  put(data: Uint8Array, expected?: Digest): Promise<BlobInfo>;
  delete(digest: Digest): Promise<void>;
  walk(): AsyncIterable<BlobInfo>;
  /** Path of a committed blob (for sendfile-style serving). */
  pathOf(digest: Digest): string;
}
