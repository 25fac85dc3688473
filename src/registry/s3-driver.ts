/**
 * The S3 storage driver (`wharf registry serve --storage s3`), on the AWS SDK (`@aws-sdk/client-s3`; signing,
 * retries and credentials are the SDK's). Works with AWS S3 and S3-compatible stores (Ceph RGW in the tests).
 *
 * Key `a/b/c` is the object `<rootdirectory>/a/b/c` of the bucket. An upload session is
 *   uploads/<id>/repo                 the repository's name (the session exists once this object does)
 *   uploads/<id>/chunks/<offset>-<tag> one object per PATCH, named by its start offset (16 digits) and a tag
 * and nothing else: any replica continues any upload. A chunk is streamed by an `ObjectWriter` (a single PUT,
 * or a multipart upload for big chunks): it becomes visible only when complete, so a replica killed mid-chunk
 * leaves the session as it was before the chunk, and an aborted multipart upload is invisible. The upload's size
 * is the sum of the chunks contiguous from offset 0.
 *
 * Commit (PUT with the digest): one chunk → a server-side CopyObject; chunks of ≥ 5 MiB but the last → a
 * multipart upload of UploadPartCopy (server-side too, parts in parallel); otherwise the bytes are streamed
 * through once. Two replicas committing the same blob write the same bytes to the same key: both succeed, one
 * object. A monolithic blob upload skips the session: `writeObject` streams it into a multipart upload of the
 * blob's own key, completed only once the caller verified the digest (no chunk object, no copy).
 *
 * Throughput: parts of 16 MiB, two in flight per stream; part and object bodies are sent with
 * `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the SDK would otherwise hash every byte a second time just to sign
 * it over plain HTTP; the registry verifies the blob's sha256 itself, and TCP/TLS protect the transfer).
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  UploadPartCommand, UploadPartCopyCommand, type CompletedPart, type S3ClientConfig, type _Object,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { bufferPool, type BufferPool } from './bufpool.js';
import { checkKey, type ObjectInfo, type PendingObject, type StorageDriver, type UploadState } from './driver.js';

/** The s3 driver's parameters, named as distribution's s3 storage driver names them. */
export interface S3Options {
  bucket: string;
  /** Default: AWS_REGION / the SDK's configuration, else us-east-1. */
  region?: string;
  /** An S3-compatible endpoint ("http://127.0.0.1:7480"): distribution's `regionendpoint`. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), usual for S3-compatible stores. */
  forcePathStyle?: boolean;
  /** Prefix of every key in the bucket. */
  rootDirectory?: string;
  /** Static credentials; without them the SDK's chain applies (environment, shared config/credentials files…). */
  accessKey?: string;
  secretKey?: string;
  /** Objects bigger than this go up as multipart uploads of this part size (default 16 MiB, at least 5 MiB). */
  chunkSize?: number;
}

const MIN_PART = 5 * 1024 * 1024;

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
}

function chunkKey(offset: number, tag: string): string {
  return `${String(offset).padStart(16, '0')}-${tag}`;
}

export class S3Driver implements StorageDriver {
  readonly kind = 's3';
  readonly location: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;

  constructor(opts: S3Options) {
    if (!opts.bucket) throw new Error('s3 storage needs a bucket');
    const root = (opts.rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.bucket = opts.bucket;
    this.prefix = root ? `${root}/` : '';
    this.partSize = Math.max(MIN_PART, opts.chunkSize ?? 16 * 1024 * 1024);
    this.location = `s3://${opts.bucket}/${root}`;
    const cfg: S3ClientConfig = {
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: Boolean(opts.forcePathStyle),
      // Checksums only where S3 requires them: S3-compatible stores do not all take the SDK's default trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.endpoint) cfg.endpoint = opts.endpoint;
    if (opts.accessKey && opts.secretKey) cfg.credentials = { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey };
    this.client = new S3Client(cfg);
    // Bodies of PutObject and UploadPart are not hashed for the signature (see the top of this file).
    this.client.middlewareStack.add((next, context) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if ((context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand') && req.headers) {
        req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    }, { step: 'build', name: 'wharfUnsignedPayload' });
  }

  /** A writer of object `key` (the full key, prefix included). */
  private writer(fullKey: string): ObjectWriter {
    return new ObjectWriter(this.client, this.bucket, fullKey, this.partSize);
  }

  private k(key: string): string {
    return this.prefix + checkKey(key);
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async put(key: string, data: Buffer | string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: typeof data === 'string' ? Buffer.from(data) : data }));
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return { size: r.ContentLength ?? 0, modifiedMs: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
  }

  /** Every object under `prefix/` (recursive), key relative to the prefix. */
  private async listAll(prefix: string): Promise<_Object[]> {
    const p = `${this.k(prefix)}/`;
    const out: _Object[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: p, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) out.push({ ...o, Key: o.Key.slice(p.length) });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async list(prefix: string): Promise<string[]> {
    const p = `${this.k(prefix)}/`;
    const out = new Set<string>();
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: p, Delimiter: '/', ContinuationToken: token }));
      for (const cp of r.CommonPrefixes ?? []) if (cp.Prefix) out.add(cp.Prefix.slice(p.length).replace(/\/$/, ''));
      for (const o of r.Contents ?? []) if (o.Key) out.add(o.Key.slice(p.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    out.delete('');
    return [...out];
  }

  async read(key: string, start: number, end: number): Promise<AsyncIterable<Buffer>> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key), Range: `bytes=${start}-${end}` }));
    return r.Body as unknown as AsyncIterable<Buffer>;
  }

  presignGet(key: string, expiresSec: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }), { expiresIn: expiresSec });
  }

  // ---- uploads ----

  async createUpload(id: string, repo: string): Promise<void> {
    await this.put(`uploads/${id}/repo`, repo);
  }

  /** The chunks contiguous from offset 0, in order, and the upload's size. */
  private async chunks(id: string): Promise<{ repo: boolean; chunks: { key: string; offset: number; size: number; tag: string }[]; size: number; modifiedMs: number }> {
    const objs = await this.listAll(`uploads/${id}`);
    let repo = false;
    let modifiedMs = 0;
    const found: { key: string; offset: number; size: number; tag: string }[] = [];
    for (const o of objs) {
      modifiedMs = Math.max(modifiedMs, o.LastModified?.getTime() ?? 0);
      if (o.Key === 'repo') repo = true;
      const m = /^chunks\/(\d{16})-([a-z0-9]+)$/.exec(o.Key!);
      if (m) found.push({ key: `uploads/${id}/${o.Key}`, offset: Number(m[1]), size: o.Size ?? 0, tag: m[2]! });
    }
    // Two chunks at one offset (two replicas took the same PATCH): every replica picks the same one.
    found.sort((a, b) => a.offset - b.offset || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const chunks: typeof found = [];
    let size = 0;
    for (const c of found) {
      if (c.offset !== size) continue; // a gap or an overlap: not part of the upload
      if (c.size === 0) continue;
      chunks.push(c);
      size += c.size;
    }
    return { repo, chunks, size, modifiedMs };
  }

  async uploadState(id: string): Promise<UploadState | null> {
    const repo = await this.get(`uploads/${id}/repo`);
    if (repo === null) return null;
    const c = await this.chunks(id);
    return { repo: repo.toString('utf8'), size: c.size, modifiedMs: c.modifiedMs, parts: c.chunks.map((x) => x.tag) };
  }

  async appendUpload(id: string, offset: number, body: AsyncIterable<unknown>, tap: (b: Buffer) => void, tag?: string): Promise<number> {
    if (tag !== undefined && !/^[a-z0-9]+$/.test(tag)) throw new Error(`invalid chunk tag ${JSON.stringify(tag)}`);
    const w = this.writer(this.k(`uploads/${id}/chunks/${chunkKey(offset, tag ?? randomBytes(6).toString('hex'))}`));
    try {
      // A body the client cuts ends the chunk with what arrived (the client resumes from the Range it is told).
      try {
        for await (const c of body) {
          const b = c as Buffer;
          tap(b);
          await w.write(b);
        }
      } catch (e) {
        if (w.failed) throw e;
      }
      await w.end();
      if (w.size > 0) await w.publish();
      else await w.discard();
      return w.size;
    } catch (e) {
      await w.discard();
      throw e;
    }
  }

  async writeObject(key: string, body: AsyncIterable<unknown>, tap: (b: Buffer) => void): Promise<PendingObject> {
    const w = this.writer(this.k(key));
    try {
      for await (const c of body) {
        const b = c as Buffer;
        tap(b);
        await w.write(b);
      }
      await w.end();
    } catch (e) {
      await w.discard();
      throw e;
    }
    return w;
  }

  async *readUpload(id: string): AsyncIterable<Buffer> {
    for (const c of (await this.chunks(id)).chunks) {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(c.key) }));
      for await (const b of r.Body as unknown as AsyncIterable<Buffer>) yield b;
    }
  }

  private copySource(key: string): string {
    return `${this.bucket}/${this.k(key).split('/').map(encodeURIComponent).join('/')}`;
  }

  async commitUpload(id: string, key: string): Promise<void> {
    const { chunks } = await this.chunks(id);
    const target = this.k(key);
    const FIVE_GB = 5 * 1024 ** 3;
    if (chunks.length === 0) {
      await this.put(key, Buffer.alloc(0));
    } else if (chunks.length === 1 && chunks[0]!.size <= FIVE_GB) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: this.copySource(chunks[0]!.key) }));
    } else if (chunks.slice(0, -1).every((c) => c.size >= MIN_PART && c.size <= FIVE_GB) && chunks.at(-1)!.size <= FIVE_GB && chunks.length <= 10_000) {
      const mp = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: target }));
      try {
        // Server-side copies, four at a time (each is a round trip and the store's own work).
        const parts: CompletedPart[] = new Array(chunks.length);
        let next = 0;
        await Promise.all(Array.from({ length: Math.min(4, chunks.length) }, async () => {
          for (let i = next++; i < chunks.length; i = next++) {
            const r = await this.client.send(new UploadPartCopyCommand({
              Bucket: this.bucket, Key: target, UploadId: mp.UploadId, PartNumber: i + 1, CopySource: this.copySource(chunks[i]!.key),
            }));
            parts[i] = { PartNumber: i + 1, ETag: r.CopyPartResult?.ETag };
          }
        }));
        await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: mp.UploadId, MultipartUpload: { Parts: parts } }));
      } catch (e) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: mp.UploadId })).catch(() => {});
        throw e;
      }
    } else {
      const w = this.writer(target);
      try {
        for await (const b of this.readUpload(id)) await w.write(b);
        await w.end();
        await w.publish();
      } catch (e) {
        await w.discard();
        throw e;
      }
    }
    await this.deleteUpload(id);
  }

  async deleteUpload(id: string): Promise<void> {
    const objs = await this.listAll(`uploads/${id}`);
    // The repo object first: the session is gone for every replica before its parts are.
    const keys = objs.map((o) => o.Key!).sort((a, b) => (a === 'repo' ? -1 : b === 'repo' ? 1 : 0));
    if (keys[0] === 'repo') await this.delete(`uploads/${id}/repo`);
    await Promise.all(keys.filter((x) => x !== 'repo').map((x) => this.delete(`uploads/${id}/${x}`)));
  }

  listUploads(): Promise<string[]> {
    return this.list('uploads');
  }

  async uploadModified(id: string): Promise<number | null> {
    const objs = await this.listAll(`uploads/${id}`);
    if (objs.length === 0) return null;
    return Math.max(...objs.map((o) => o.LastModified?.getTime() ?? 0));
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = err.$metadata?.httpStatusCode;
      const why = status === 404 ? 'no such bucket'
        : status === 403 ? 'access denied (check the credentials: --s3-access-key/--s3-secret-key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared credentials file)'
        : status === 301 ? 'the bucket is in another region (--s3-region)'
        : status ? `HTTP ${status} ${err.name ?? ''}`.trim() : (err.message ?? String(e));
      throw new Error(`s3 storage ${this.location}: ${why}`);
    }
  }

  async sweepIncomplete(olderThanMs: number): Promise<number> {
    const now = Date.now();
    let n = 0;
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }));
      for (const u of r.Uploads ?? []) {
        if (!u.Key || !u.UploadId || now - (u.Initiated?.getTime() ?? now) < olderThanMs) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
        n++;
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      idMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return n;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * Writes one object as it streams: bytes gather into parts of `partSize`, each sent as soon as it is full (two in
 * flight, the writer waits beyond that: backpressure on the request body) in a multipart upload of the key. The
 * object appears only at `publish` (CompleteMultipartUpload; an object smaller than one part is held in memory and
 * PUT there); `discard` aborts the multipart upload. A writer killed before either leaves an incomplete multipart
 * upload, invisible and swept by `sweepIncomplete`.
 */
class ObjectWriter implements PendingObject {
  size = 0;
  /** The error of a part that failed (the next write or end throws it). */
  failed: unknown = undefined;
  /** The part being filled (a pooled buffer of `partSize`) and how much of it is. */
  private cur: Buffer | null = null;
  private curLen = 0;
  private uploadId: string | undefined;
  private parts: CompletedPart[] = [];
  private inflight = new Set<Promise<void>>();
  private done = false;

  /** Part buffers (bufpool.ts: reused, so a part is a copy into mapped pages, not a page fault per 4 KiB). */
  private readonly pool: BufferPool;

  constructor(private readonly client: S3Client, private readonly bucket: string, private readonly key: string, private readonly partSize: number) {
    this.pool = bufferPool(partSize, 6);
  }

  async write(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    this.size += b.length;
    let off = 0;
    while (off < b.length) {
      this.cur ??= this.pool.take();
      const n = b.copy(this.cur, this.curLen, off);
      this.curLen += n;
      off += n;
      if (this.curLen === this.partSize) await this.sendPart();
    }
  }

  /** Sends the part being filled, then waits while two parts are in flight. */
  private async sendPart(): Promise<void> {
    const buf = this.cur!;
    const body = buf.subarray(0, this.curLen);
    this.cur = null;
    this.curLen = 0;
    try {
      if (this.uploadId === undefined) {
        const mp = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key }));
        this.uploadId = mp.UploadId!;
      }
    } catch (e) {
      this.pool.give(buf);
      throw e;
    }
    const n = this.parts.length + 1;
    this.parts.push({ PartNumber: n });
    const p: Promise<void> = this.client.send(new UploadPartCommand({
      Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: n, Body: body, ContentLength: body.length,
    })).then((r) => { this.parts[n - 1] = { PartNumber: n, ETag: r.ETag }; }, (e: unknown) => { this.failed ??= e; })
      .finally(() => { this.inflight.delete(p); this.pool.give(buf); });
    this.inflight.add(p);
    while (this.inflight.size >= 2) await Promise.race(this.inflight);
    if (this.failed) throw this.failed;
  }

  /** The body is over: the last part goes (multipart uploads), every part is acknowledged. */
  async end(): Promise<void> {
    if (this.uploadId !== undefined && this.curLen > 0) await this.sendPart();
    await Promise.all(this.inflight);
    if (this.failed) throw this.failed;
  }

  async publish(): Promise<void> {
    if (this.done) throw new Error('object already published or discarded');
    this.done = true;
    if (this.uploadId === undefined) {
      const buf = this.cur;
      const body = buf ? buf.subarray(0, this.curLen) : Buffer.alloc(0);
      this.cur = null;
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentLength: body.length }));
      } finally {
        if (buf) this.pool.give(buf);
      }
      return;
    }
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: this.parts } }));
    } catch (e) {
      this.done = false;
      await this.discard();
      throw e;
    }
  }

  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (this.cur) this.pool.give(this.cur);
    this.cur = null;
    await Promise.allSettled(this.inflight);
    if (this.uploadId !== undefined) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId })).catch(() => {});
    }
  }
}
