/**
 * The registry's storage driver: the one interface the filesystem (`fs-driver.ts`) and S3 (`s3-driver.ts`) back
 * ends implement, and under which `storage.ts` keeps every registry semantic (links, tags, revisions, referrers,
 * upload sessions, GC). Keys are slash paths (`blobs/sha256/<hex>`, `repositories/<name>/_manifests/tags/<tag>`,
 * …), the same layout in both back ends. The conformance suite (test/unit/registry-server-driver.test.ts) runs
 * on both.
 *
 * Rules every driver keeps:
 * - `put` and `commitUpload` publish all-or-nothing: a reader sees the old object or the new one, a writer
 *   killed mid-way leaves nothing visible.
 * - Upload sessions live in the store (no process memory), so any process serving the same store can continue
 *   an upload another one started: `appendUpload` at the offset `uploadState` reports, a chunk becomes part of
 *   the upload only once it is complete.
 */
export interface ObjectInfo {
  size: number;
  /** Last modification time (ms since the epoch). */
  modifiedMs: number;
}

export interface UploadState {
  /** The repository the upload was started for. */
  repo: string;
  /** Bytes received so far (complete chunks only). */
  size: number;
  /** Last time the upload grew (ms since the epoch). */
  modifiedMs: number;
  /**
   * Drivers that keep chunks apart (S3): the tags of the chunks that make up the upload, in order. A process that
   * hashed the chunks it wrote knows its running hash is the upload's only when these are its own tags.
   */
  parts?: string[];
}

/** An object being written by `writeObject`: invisible to every reader until `publish`. */
export interface PendingObject {
  /** Bytes received. */
  readonly size: number;
  /** Makes the object visible at its key, all-or-nothing. */
  publish(): Promise<void>;
  /** Drops what was written (nothing was ever visible). */
  discard(): Promise<void>;
}

export interface StorageDriver {
  /** "filesystem" or "s3". */
  readonly kind: string;
  /** Where the data lives, for messages ("/var/lib/wharf-registry", "s3://bucket/prefix"). */
  readonly location: string;

  get(key: string): Promise<Buffer | null>;
  /** Publishes small bytes atomically (overwrites). */
  put(key: string, data: Buffer | string): Promise<void>;
  stat(key: string): Promise<ObjectInfo | null>;
  /** Removes an object; no error when absent. */
  delete(key: string): Promise<void>;
  /** Names directly under `prefix` (objects and "directories"), without the prefix, unsorted. */
  list(prefix: string): Promise<string[]>;
  /** Bytes start..end (inclusive) of an object. */
  read(key: string, start: number, end: number): Promise<AsyncIterable<Buffer>>;
  /** A local file holding the object, for servers that stream files themselves (filesystem only). */
  localPath?(key: string): string;
  /** A time-limited URL a client can GET the object from without credentials (S3 only). */
  presignGet?(key: string, expiresSec: number): Promise<string>;

  createUpload(id: string, repo: string): Promise<void>;
  /** The upload's state, or null when there is no such (complete) session. */
  uploadState(id: string): Promise<UploadState | null>;
  /**
   * Appends a chunk at `offset` (the upload's size) and returns the bytes written; `tap` sees every byte on the
   * way (the caller's running hash); `tag` ([a-z0-9]+) names the chunk in `parts`. A body cut by the client keeps the bytes that arrived (as distribution
   * does; the client resumes from the Range it is told); a writer killed mid-chunk leaves the upload as it was
   * before the chunk (S3) or with the bytes written (filesystem), never a torn object.
   */
  appendUpload(id: string, offset: number, body: AsyncIterable<unknown>, tap: (b: Buffer) => void, tag?: string): Promise<number>;
  /** The upload's bytes so far, in order. */
  readUpload(id: string): AsyncIterable<Buffer>;
  /** Publishes the upload's bytes as object `key` (atomically, durably), then removes the session. */
  commitUpload(id: string, key: string): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Ids of the upload sessions present (complete or not). */
  listUploads(): Promise<string[]>;
  /** Start (ms since the epoch) of an upload directory or its parts, for sweeping broken sessions; null when gone. */
  uploadModified(id: string): Promise<number | null>;
  /**
   * Streams a whole object to `key` without making it visible (S3: a multipart upload of the key itself, completed
   * by `publish`), `tap` seeing every byte, so that a monolithic blob upload is verified and published without a
   * second copy. A writer killed mid-way leaves only an incomplete write (`sweepIncomplete`). A body that breaks
   * discards what was written and rejects. Drivers without it take the upload-session path.
   */
  writeObject?(key: string, body: AsyncIterable<unknown>, tap: (b: Buffer) => void): Promise<PendingObject>;
  /** Verifies that the store answers (bucket exists, credentials accepted): a clear error at startup, not at the first push. */
  check?(): Promise<void>;
  /**
   * Removes what writers killed mid-write left invisible in the store and older than `olderThanMs` (S3: incomplete
   * multipart uploads); returns how many. Called by garbage collection.
   */
  sweepIncomplete?(olderThanMs: number): Promise<number>;
  close(): Promise<void>;
}

/** Keys are built by storage.ts from validated names, tags and hex digests; this refuses anything else (`..`, `/x`, `a//b`). */
export function checkKey(key: string): string {
  if (key.startsWith('/') || key.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    throw new Error(`invalid storage key ${JSON.stringify(key)}`);
  }
  return key;
}
