/**
 * `wharf registry serve`: an OCI distribution-spec (v1.1) registry server on filesystem storage.
 *
 *   const srv = await startRegistryServer({ root: '/var/lib/wharf-registry', addr: '127.0.0.1:5000' });
 *   srv.url    // "http://127.0.0.1:5000"
 *   await srv.close();
 *
 * Routes (every response carries `Docker-Distribution-Api-Version: registry/2.0`):
 *   GET  /v2/                                   version check (401 + WWW-Authenticate when auth is on)
 *   GET  /v2/_catalog?n=&last=                  repositories, paginated (Link: <…>; rel="next")
 *   GET  /v2/<name>/tags/list?n=&last=          tags, paginated
 *   HEAD|GET|PUT|DELETE /v2/<name>/manifests/<tag|digest>
 *   HEAD|GET|DELETE     /v2/<name>/blobs/<digest>          (GET honours Range)
 *   POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
 *   GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>[?digest=]
 *   GET  /v2/<name>/referrers/<digest>[?artifactType=]
 *   GET  /auth/token                            token endpoint when the server issues tokens itself
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { RegistryError } from './errors.js';
import { MAX_MANIFEST_SIZE, MEDIA_TYPES } from '../lib/oci/mediatypes.js';
import { digestParam, RegistryStorage, validateName, type Descriptor, type Upload } from './storage.js';
import { authorize, grants, Htpasswd, parseBasic, parseScope, TokenAuth, type Access, type AuthConfig, type TokenOptions } from './auth.js';
import type { Digest } from '../lib/digest.js';
import type { StorageDriver } from './driver.js';
import { BlobCache, type BlobCacheOptions } from './blob-cache.js';
import { bufferPool } from './bufpool.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export { collectGarbage } from './storage.js';

export interface RegistryServerOptions {
  /** Storage root directory (created when missing): the filesystem driver. */
  root?: string;
  /** Another storage driver (S3); replaces `root`. The server closes it on close(). */
  driver?: StorageDriver;
  /** Answer blob GETs with a 307 to a presigned URL of the store (drivers that make them: S3). */
  redirect?: boolean;
  /**
   * A local copy of blob bytes in front of a remote store (`driver` only; blob-cache.ts): blobs pushed through this
   * process and whole blobs it served are kept there, and GETs it proxies are answered from it after the store
   * confirmed the blob. Not used for GETs answered with a redirect.
   */
  blobCache?: BlobCacheOptions;
  /** "host:port" to listen on; default "127.0.0.1:5000". Port 0 picks a free port. */
  addr?: string;
  /** htpasswd file (bcrypt entries, `htpasswd -B`): enables basic auth (or the users of the token endpoint). */
  htpasswd?: string;
  /** Basic-auth realm; default "wharf-registry". */
  realm?: string;
  /** TLS certificate and key files (PEM): serve https. */
  tlsCert?: string;
  tlsKey?: string;
  /** Bearer token auth (see TokenOptions); when set it replaces basic auth on /v2/. */
  token?: TokenOptions;
  /** Idle uploads are dropped after this long (default 24 h; they survive restarts until then). */
  uploadTtlMs?: number;
  /** Access log sink (one line per request); none by default. */
  log?: (line: string) => void;
}

export interface RegistryServer {
  /** "http(s)://host:port", reachable from this host (a wildcard address becomes loopback). */
  url: string;
  /** "host:port", for image references. */
  host: string;
  /** "http(s)://host:port" as bound: the wildcard itself for 0.0.0.0 or [::] (what `serve` prints). */
  listenUrl: string;
  /** When set: a warning for the operator (credentials over plain HTTP on a non-loopback address). */
  warning?: string;
  storage: RegistryStorage;
  close(): Promise<void>;
}

const API_VERSION_HEADER = 'Docker-Distribution-Api-Version';

function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) {
    if (/^\d+$/.test(addr)) return { host: '0.0.0.0', port: Number(addr) };
    throw new Error(`invalid listen address ${JSON.stringify(addr)} (want host:port)`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

export async function startRegistryServer(opts: RegistryServerOptions): Promise<RegistryServer> {
  const store = opts.driver ?? opts.root;
  if (!store) throw new Error('registry storage: give a root directory or a driver');
  if (opts.redirect && !opts.driver?.presignGet) throw new Error('--redirect needs a storage driver that presigns URLs (s3)');
  if (opts.blobCache && !opts.driver) throw new Error('--blob-cache is for a remote store (--storage s3): the filesystem back end serves its own files');
  let cache: BlobCache | undefined;
  try {
    if (opts.blobCache) cache = await BlobCache.open(opts.blobCache);
  } catch (e) {
    await opts.driver?.close();
    throw e;
  }
  const storage = await RegistryStorage.open(store, { uploadTtlMs: opts.uploadTtlMs, ...(cache ? { cache } : {}) });
  const auth: AuthConfig = { realm: opts.realm ?? 'wharf-registry' };
  if (opts.htpasswd) auth.htpasswd = await Htpasswd.load(opts.htpasswd);
  if (opts.token) auth.token = new TokenAuth(opts.token);
  const tls = Boolean(opts.tlsCert && opts.tlsKey);
  const handler = new Handler(storage, auth, opts.log, Boolean(opts.redirect));
  let server: Server;
  if (tls) {
    const [cert, key] = await Promise.all([readFile(opts.tlsCert!), readFile(opts.tlsKey!)]);
    server = createHttpsServer({ cert, key }, (req, res) => handler.handle(req, res));
  } else {
    server = createHttpServer((req, res) => handler.handle(req, res));
  }
  // Big uploads and slow pulls must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  const { host, port } = parseAddr(opts.addr ?? '127.0.0.1:5000');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const shownHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const hostPort = `${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost === '[::]' ? '[::1]' : shownHost}:${a.port}`;
  const url = `${tls ? 'https' : 'http'}://${hostPort}`;
  const listenUrl = `${tls ? 'https' : 'http'}://${shownHost}:${a.port}`;
  const loopback = /^127\./.test(a.address) || a.address === '::1' || a.address === '::ffff:127.0.0.1';
  const warning = !tls && !loopback && (opts.htpasswd || opts.token)
    ? `warning: ${opts.token ? 'token auth' : '--htpasswd'} without TLS on ${shownHost}:${a.port}: Basic credentials travel in clear text over plain HTTP to anyone on the network path; give --tls-cert and --tls-key, or listen on 127.0.0.1`
    : undefined;
  return {
    url,
    host: hostPort,
    listenUrl,
    ...(warning ? { warning } : {}),
    storage,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await storage.close();
    },
  };
}

/** Reads a request body up to `limit` bytes (manifests); SIZE_INVALID beyond. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    const b = c as Buffer;
    n += b.length;
    if (n > limit) throw new RegistryError('SIZE_INVALID', `manifest larger than ${limit} bytes`, undefined, 413);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Drains and discards a request body (so that the connection stays usable). */
function drain(req: IncomingMessage): void {
  if (!req.complete) req.resume();
}

function paginate(all: string[], q: URLSearchParams, base: string): { items: string[]; link?: string } {
  let items = all;
  const last = q.get('last');
  if (last !== null && last !== '') items = items.filter((t) => t > last);
  const nRaw = q.get('n');
  if (nRaw === null || nRaw === '') return { items };
  const n = Number(nRaw);
  if (!Number.isInteger(n) || n < 0) throw new RegistryError('UNSUPPORTED', `invalid n: ${nRaw}`, undefined, 400);
  if (items.length <= n) return { items };
  const page = items.slice(0, n);
  const lastItem = page[page.length - 1];
  if (lastItem === undefined) return { items: page };
  return { items: page, link: `<${base}?n=${n}&last=${encodeURIComponent(lastItem)}>; rel="next"` };
}

type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'token' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; ref: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

function route(path: string): Route | null {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  if (path === '/auth/token') return { kind: 'token' };
  let m: RegExpExecArray | null;
  if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) return { kind: 'tags', name: m[1]! };
  if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) return { kind: 'manifest', name: m[1]!, ref: m[2]! };
  if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) return { kind: 'uploads', name: m[1]! };
  if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) return { kind: 'upload', name: m[1]!, id: m[2]! };
  if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) return { kind: 'blob', name: m[1]!, digest: m[2]! };
  if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) return { kind: 'referrers', name: m[1]! , digest: m[2]! };
  return null;
}

function needFor(r: Route, method: string): Access[] {
  switch (r.kind) {
    case 'base':
    case 'token':
      return [];
    case 'catalog':
      return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
    default: {
      const actions = method === 'GET' || method === 'HEAD' ? ['pull'] : method === 'DELETE' ? ['delete'] : ['pull', 'push'];
      return [{ type: 'repository', name: r.name, actions }];
    }
  }
}

class Handler {
  constructor(
    private readonly storage: RegistryStorage, private readonly auth: AuthConfig,
    private readonly log?: (line: string) => void, private readonly redirect = false,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const started = Date.now();
    res.setHeader(API_VERSION_HEADER, 'registry/2.0');
    if (this.log) {
      res.on('finish', () => this.log!(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`));
    }
    this.dispatch(req, res).catch((e: unknown) => this.fail(req, res, e));
  }

  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const err = e instanceof RegistryError ? e : new RegistryError('UNKNOWN', (e as Error)?.message ?? String(e));
    if (!(e instanceof RegistryError)) this.log?.(`error: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
    drain(req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = err.body();
    res.statusCode = err.status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private json(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, contentType = 'application/json; charset=utf-8'): void {
    const body = JSON.stringify(value);
    res.statusCode = status;
    res.setHeader('Content-Type', contentType);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private empty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Length', 0);
    res.end();
  }

  private selfUrl(req: IncomingMessage): string {
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    return `${proto}://${req.headers.host ?? 'localhost'}`;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const q = url.searchParams;
    const r = route(path);
    if (!r) throw new RegistryError('UNSUPPORTED', 'no such endpoint', { path }, 404);
    if (r.kind === 'token') return this.token(req, res, q);
    if ('name' in r) validateName(r.name);
    const need = needFor(r, method);
    const a = await authorize(this.auth, req.headers.authorization, need, `${this.selfUrl(req)}/auth/token`);
    if (!a.ok) {
      res.setHeader('WWW-Authenticate', a.wwwAuthenticate);
      throw a.error;
    }
    switch (r.kind) {
      case 'base':
        if (method !== 'GET' && method !== 'HEAD') throw unsupported(method);
        return this.json(req, res, 200, {});
      case 'catalog': {
        if (method !== 'GET') throw unsupported(method);
        const { items, link } = paginate(await this.storage.repositories(), q, '/v2/_catalog');
        if (link) res.setHeader('Link', link);
        return this.json(req, res, 200, { repositories: items });
      }
      case 'tags': {
        if (method !== 'GET') throw unsupported(method);
        if (!(await this.storage.repoExists(r.name))) throw new RegistryError('NAME_UNKNOWN', undefined, { name: r.name });
        const { items, link } = paginate(await this.storage.tags(r.name), q, `/v2/${r.name}/tags/list`);
        if (link) res.setHeader('Link', link);
        return this.json(req, res, 200, { name: r.name, tags: items });
      }
      case 'manifest':
        if (method === 'GET' || method === 'HEAD') return this.getManifest(req, res, r.name, r.ref);
        if (method === 'PUT') return this.putManifest(req, res, r.name, r.ref);
        if (method === 'DELETE') {
          await this.storage.deleteManifest(r.name, r.ref);
          return this.empty(res, 202);
        }
        throw unsupported(method);
      case 'blob':
        if (method === 'GET' || method === 'HEAD') return this.getBlob(req, res, r.name, digestParam(r.digest));
        if (method === 'DELETE') {
          const d = digestParam(r.digest);
          if (!(await this.storage.unlinkBlob(r.name, d))) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest: d });
          return this.empty(res, 202, { 'Docker-Content-Digest': d });
        }
        throw unsupported(method);
      case 'uploads':
        if (method !== 'POST') throw unsupported(method);
        return this.startUpload(req, res, r.name, q, a.ok && a.claims ? a.claims : undefined);
      case 'upload': {
        if (method === 'GET') return this.uploadStatus(res, await this.storage.getUpload(r.name, r.id), 204);
        if (method === 'PATCH') return this.storage.withUpload(r.name, r.id, (u) => this.patchUpload(req, res, u));
        if (method === 'PUT') return this.storage.withUpload(r.name, r.id, (u) => this.putUpload(req, res, u, q));
        if (method === 'DELETE') {
          await this.storage.cancelUpload(await this.storage.getUpload(r.name, r.id));
          return this.empty(res, 204);
        }
        throw unsupported(method);
      }
      case 'referrers':
        if (method !== 'GET') throw unsupported(method);
        return this.referrers(req, res, r.name, digestParam(r.digest), q);
    }
  }

  // ---- manifests ----

  private async getManifest(req: IncomingMessage, res: ServerResponse, name: string, ref: string): Promise<void> {
    const { digest, info, bytes } = await this.storage.resolveManifest(name, ref, { bytes: req.method !== 'HEAD' });
    const headers = {
      'Content-Type': info.mediaType,
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
    };
    if (req.method === 'HEAD') {
      res.statusCode = 200;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.setHeader('Content-Length', info.size);
      res.end();
      return;
    }
    if (!bytes) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference: ref });
    res.statusCode = 200;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Length', bytes.length);
    res.end(bytes);
  }

  private async putManifest(req: IncomingMessage, res: ServerResponse, name: string, ref: string): Promise<void> {
    const bytes = await readBody(req, MAX_MANIFEST_SIZE);
    const { digest, parsed } = await this.storage.putManifest(name, ref, bytes, req.headers['content-type']);
    const headers: Record<string, string> = {
      Location: `/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
    };
    if (parsed.subject) headers['OCI-Subject'] = parsed.subject.digest;
    this.empty(res, 201, headers);
  }

  private async referrers(req: IncomingMessage, res: ServerResponse, name: string, subject: Digest, q: URLSearchParams): Promise<void> {
    let list: Descriptor[] = await this.storage.referrers(name, subject);
    const at = q.get('artifactType');
    if (at) {
      list = list.filter((d) => d.artifactType === at);
      res.setHeader('OCI-Filters-Applied', 'artifactType');
    }
    this.json(req, res, 200, { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: list }, MEDIA_TYPES.ociIndex);
  }

  // ---- blobs ----

  private async getBlob(req: IncomingMessage, res: ServerResponse, name: string, d: Digest): Promise<void> {
    const size = await this.storage.statBlob(name, d);
    if (size === null) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest: d });
    res.setHeader('Docker-Content-Digest', d);
    if (this.redirect && req.method === 'GET') {
      // The store serves the bytes (Range included); the client follows without the registry's Authorization.
      const location = await this.storage.blobUrl(d);
      if (location) return this.empty(res, 307, { Location: location });
    }
    res.setHeader('ETag', `"${d}"`);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'max-age=31536000');
    res.setHeader('Content-Type', 'application/octet-stream');
    let start = 0;
    let end = size - 1;
    let status = 200;
    const ranges = req.headers.range ? parseRanges(req.headers.range, size) : null;
    if (ranges === 'unsatisfiable') {
      // Plain HTTP semantics (no spec error code fits a GET range): 416 and the size, no body.
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${size}`);
      res.setHeader('Content-Length', 0);
      res.end();
      return;
    }
    if (ranges && ranges.length > 1) {
      await this.sendByteRanges(req, res, d, size, ranges);
      return;
    }
    if (ranges) {
      [{ start, end }] = ranges as [ByteRange];
      status = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    res.statusCode = status;
    res.setHeader('Content-Length', size === 0 ? 0 : end - start + 1);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    try {
      await this.sendBlobRange(res, d, size, start, end);
    } catch (e) {
      // The client went away (or the file vanished mid-way): nothing more to answer.
      if (!res.destroyed) res.destroy(e as Error);
    }
  }

  /** Several satisfiable ranges: one 206 multipart/byteranges body, the parts in the order asked (RFC 9110 14.6). */
  private async sendByteRanges(req: IncomingMessage, res: ServerResponse, d: Digest, size: number, ranges: ByteRange[]): Promise<void> {
    const boundary = randomBytes(12).toString('hex');
    const heads = ranges.map((r, i) => Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
    ));
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    let length = tail.length;
    for (const [i, r] of ranges.entries()) length += heads[i]!.length + (r.end - r.start + 1);
    res.statusCode = 206;
    res.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`);
    res.setHeader('Content-Length', length);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    try {
      for (const [i, r] of ranges.entries()) {
        res.write(heads[i]!);
        await this.sendBlobRange(res, d, size, r.start, r.end, false);
      }
      res.end(tail);
    } catch (e) {
      if (!res.destroyed) res.destroy(e as Error);
    }
  }

  /**
   * Bytes start..end of a blob of `size` bytes to the response: a local file (the filesystem back end's, or the
   * blob cache's copy), else the driver's stream.
   */
  private async sendBlobRange(res: ServerResponse, d: Digest, size: number, start: number, end: number, endResponse = true): Promise<void> {
    const fh = await this.storage.openBlobFile(d, size);
    if (fh) return sendFileRange(res, fh, start, end, endResponse);
    const src = Readable.from(await this.storage.readBlob(d, start, end, size));
    try {
      await pipeline(src, res, { end: endResponse });
    } finally {
      src.destroy();
    }
  }

  // ---- uploads ----

  private uploadHeaders(u: Upload): Record<string, string> {
    return {
      Location: `/v2/${u.repo}/blobs/uploads/${u.id}`,
      Range: `0-${u.size > 0 ? u.size - 1 : 0}`,
      'Docker-Upload-UUID': u.id,
    };
  }

  private uploadStatus(res: ServerResponse, u: Upload, status: number): void {
    this.empty(res, status, this.uploadHeaders(u));
  }

  private async startUpload(req: IncomingMessage, res: ServerResponse, name: string, q: URLSearchParams, claims?: { access?: Access[] }): Promise<void> {
    const mount = q.get('mount');
    const from = q.get('from');
    if (mount !== null) {
      const d = digestParam(mount);
      let allowed = from !== null && from !== '';
      if (allowed) {
        try {
          validateName(from!);
        } catch {
          allowed = false;
        }
      }
      // With token auth the token must also grant pull on the source repository.
      if (allowed && this.auth.token && claims) {
        allowed = grants(claims, { type: 'repository', name: from!, actions: ['pull'] });
      }
      if (allowed && (await this.storage.statBlob(from!, d)) !== null) {
        await this.storage.linkBlob(name, d);
        drain(req);
        return this.empty(res, 201, { Location: `/v2/${name}/blobs/${d}`, 'Docker-Content-Digest': d });
      }
    }
    const digest = q.get('digest');
    if (digest !== null) {
      // Monolithic upload: the body is the whole blob.
      const info = await this.storage.putBlob(name, digestParam(digest), req);
      this.empty(res, 201, { Location: `/v2/${name}/blobs/${info.digest}`, 'Docker-Content-Digest': info.digest });
      return;
    }
    const u = await this.storage.startUpload(name);
    drain(req);
    this.empty(res, 202, this.uploadHeaders(u));
  }

  private async patchUpload(req: IncomingMessage, res: ServerResponse, u: Upload): Promise<void> {
    const cr = req.headers['content-range'];
    if (cr !== undefined) {
      const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(\d+|\*))?$/.exec(cr.trim());
      const start = m ? Number(m[1]) : -1;
      const end = m ? Number(m[2]) : -1;
      const len = req.headers['content-length'];
      if (!m || start !== u.size || end < start || (len !== undefined && Number(len) !== end - start + 1)) {
        for (const [k, v] of Object.entries(this.uploadHeaders(u))) res.setHeader(k, v);
        throw new RegistryError('BLOB_UPLOAD_INVALID', `chunk ${cr} does not continue the upload at offset ${u.size}`, { contentRange: cr }, 416);
      }
      const n = await this.storage.appendUpload(u, req);
      if (n !== end - start + 1) {
        await this.storage.cancelUpload(u);
        throw new RegistryError('SIZE_INVALID', `chunk ${start}-${end} carried ${n} bytes`, { contentRange: cr });
      }
    } else {
      await this.storage.appendUpload(u, req);
    }
    this.uploadStatus(res, u, 202);
  }

  private async putUpload(req: IncomingMessage, res: ServerResponse, u: Upload, q: URLSearchParams): Promise<void> {
    const d = digestParam(q.get('digest'));
    const cr = req.headers['content-range'];
    if (cr !== undefined) {
      const m = /^(?:bytes[ =])?(\d+)-(\d+)/.exec(cr.trim());
      if (!m || Number(m[1]) !== u.size) {
        for (const [k, v] of Object.entries(this.uploadHeaders(u))) res.setHeader(k, v);
        throw new RegistryError('BLOB_UPLOAD_INVALID', 'final chunk does not continue the upload', { contentRange: cr }, 416);
      }
    }
    let info: { digest: Digest };
    if (u.size === 0 && this.storage.streamsBlobs) {
      // The whole blob in the PUT (POST, then PUT with the body): written once, straight to its key.
      try {
        info = await this.storage.putBlob(u.repo, d, req);
      } finally {
        // Published or refused: the session is over either way (as finishUpload ends it).
        await this.storage.cancelUpload(u).catch(() => {});
      }
    } else {
      await this.storage.appendUpload(u, req);
      info = await this.storage.finishUpload(u, d);
    }
    this.empty(res, 201, { Location: `/v2/${u.repo}/blobs/${info.digest}`, 'Docker-Content-Digest': info.digest });
  }

  // ---- token endpoint ----

  /**
   * The token endpoint: GET with optional basic credentials (docker's default), or POST of an OAuth2 form
   * (grant_type=password, as containerd and docker login with identity tokens send it).
   */
  private async token(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
    const t = this.auth.token;
    if (!t || !t.issue) throw new RegistryError('UNSUPPORTED', 'this server issues no tokens', undefined, 404);
    let params = q;
    let creds = parseBasic(req.headers.authorization);
    const oauth = req.method === 'POST';
    if (oauth) {
      params = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
      const grant = params.get('grant_type');
      if (grant !== 'password') {
        return this.json(req, res, 400, { error: 'unsupported_grant_type', error_description: `grant_type ${grant ?? '(none)'} is not supported` });
      }
      creds = { user: params.get('username') ?? '', password: params.get('password') ?? '' };
    } else if (req.method !== 'GET') {
      throw unsupported(req.method ?? '');
    }
    let subject = 'anonymous';
    if (this.auth.htpasswd && creds) {
      if (!(await this.auth.htpasswd.check(creds.user, creds.password))) {
        res.setHeader('WWW-Authenticate', `Basic realm="${this.auth.realm}"`);
        throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
      }
      subject = creds.user;
    }
    const service = params.get('service');
    if (service && service !== t.service) throw new RegistryError('DENIED', `unknown service ${service}`, undefined, 400);
    const access: Access[] = [];
    for (const s of params.getAll('scope').flatMap((x) => x.split(' '))) {
      const a = parseScope(s);
      if (!a) continue;
      let allowed: string[];
      // Without users everyone may pull and nobody push; with users, anonymous gets nothing.
      if (subject === 'anonymous' && this.auth.htpasswd) allowed = [];
      else if (subject === 'anonymous') allowed = a.actions.filter((x) => x === 'pull');
      else allowed = a.actions.filter((x) => ['pull', 'push', 'delete', '*'].includes(x));
      if (a.type === 'registry' && a.name !== 'catalog') allowed = [];
      if (allowed.length > 0) access.push({ type: a.type, name: a.name, actions: allowed });
    }
    const tok = t.sign(subject, access);
    if (oauth) {
      return this.json(req, res, 200, {
        access_token: tok.token, expires_in: tok.expiresIn, issued_at: tok.issuedAt,
        scope: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
      });
    }
    this.json(req, res, 200, { token: tok.token, access_token: tok.token, expires_in: tok.expiresIn, issued_at: tok.issuedAt });
  }
}

/** Each response cycles two pooled buffers (bufpool.ts): one is read into while the other is written to the socket. */
const SEND_BUF_SIZE = Number(process.env.WHARF_REGISTRY_SEND_BUF ?? 1024 * 1024);
const sendBufs = bufferPool(SEND_BUF_SIZE, 32);

export interface ByteRange { start: number; end: number }

/** More ranges than this in one request are answered with the whole blob (a server may ignore Range). */
const MAX_RANGES = 64;

/**
 * A Range header against a blob of `size` bytes (RFC 9110 14.1.2): the satisfiable ranges, inclusive and clamped
 * to the blob, in the order asked; 'unsatisfiable' when no range is (416); null when the header is to be ignored
 * (another unit, bad syntax, too many ranges: the whole blob, 200).
 */
export function parseRanges(header: string, size: number): ByteRange[] | 'unsatisfiable' | null {
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return null;
  const specs = m[1]!.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (specs.length === 0 || specs.length > MAX_RANGES) return null;
  const out: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)-(\d*)$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return null;
    if (r[1] === '') {
      const suffix = Number(r[2]);
      if (suffix > 0 && size > 0) out.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = Number(r[1]);
    const last = r[2] === '' ? size - 1 : Number(r[2]);
    if (r[2] !== '' && last < start) return null; // an invalid range-spec: the header is ignored
    if (start < size) out.push({ start, end: Math.min(last, size - 1) });
  }
  return out.length ? out : 'unsatisfiable';
}

/** Streams bytes start..end (inclusive) of a file to the response, then ends it (unless `endResponse` is false). */
async function sendFileRange(res: ServerResponse, fh: FileHandle, start: number, end: number, endResponse = true): Promise<void> {
  const bufs = [sendBufs.take(), sendBufs.take()];
  let inFlight = false;
  try {
    let closed: ((e: Error) => void) | null = null;
    const gone = new Promise<never>((_, reject) => { closed = reject; });
    gone.catch(() => {});
    const onClose = () => closed?.(new Error('client closed the connection'));
    res.once('close', onClose);
    let pending: Promise<void> | null = null;
    let pos = start;
    let i = 0;
    try {
      while (pos <= end) {
        const buf = bufs[i]!;
        i ^= 1;
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end + 1 - pos), pos);
        if (bytesRead === 0) throw new Error('blob file shorter than expected');
        pos += bytesRead;
        if (pending) await Promise.race([pending, gone]);
        inFlight = true;
        pending = new Promise<void>((resolve, reject) => {
          res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve()));
        });
        // A write that fails after we stopped waiting (the client left) must not be an unhandled rejection.
        pending.catch(() => {});
      }
      if (pending) await Promise.race([pending, gone]);
      inFlight = false;
    } finally {
      res.off('close', onClose);
    }
    if (endResponse) res.end();
  } finally {
    await fh.close();
    // A buffer still referenced by an unfinished socket write must not be reused.
    if (!inFlight) bufs.forEach((b) => sendBufs.give(b));
  }
}

function unsupported(method: string): RegistryError {
  return new RegistryError('UNSUPPORTED', `method ${method} not allowed here`, undefined, 405);
}

