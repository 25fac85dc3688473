/**
 * EngineClient: a typed client of the Engine API over node:http (unix socket, tcp, tcp+TLS).
 * Negotiates the API version with HEAD /_ping (min(ours, the server's Api-Version)), prefixes paths
 * with /v<version>, turns error responses into typed errors (errorFromStatus) and decodes streams.
 */
import type * as HttpNs from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { errorFromStatus, WharfError } from '../lib/errors.js';
import type { JSONMessage } from '../lib/jsonmessage.js';
import { parseHost, type Endpoint } from './host.js';
import { decodeJSONMessages } from './jsonstream.js';
import { encodeAuthHeader, type AuthConfig } from './auth.js';
import type {
  DeleteItem, DiskUsage, HistoryItem, ImageSummary, Info, PruneReport, ServerVersion,
} from './types.js';

export const CLIENT_API_VERSION = '1.41';

// require() rather than an ESM import: importing the builtin as ESM materializes every lazy export
// (it pulls in undici for WebSocket & co.) and costs ~30 ms of start-up.
const http = createRequire(import.meta.url)('node:http') as typeof HttpNs;

export interface TLSOptions { ca?: Buffer; cert?: Buffer; key?: Buffer; verify: boolean }

export interface ClientOptions {
  /** docker host string; the default socket when absent. */
  host?: string;
  tls?: TLSOptions;
  /** A fixed API version (DOCKER_API_VERSION): no negotiation. */
  version?: string;
  userAgent?: string;
}

/** Nothing answered at the endpoint (ECONNREFUSED, ENOENT…). */
export class ConnectionError extends Error {
  constructor(readonly endpoint: Endpoint, readonly errno: string | undefined, options?: { cause?: unknown }) {
    super(`Cannot connect to the Wharf daemon at ${endpoint.url}. Is the wharf daemon running?`, options);
    this.name = 'ConnectionError';
  }
}

/** Whether an error came from an API error response (docker prints "Error response from daemon: …"). */
export function isDaemonError(e: unknown): e is WharfError {
  return typeof e === 'object' && e !== null && (e as { fromDaemon?: boolean }).fromDaemon === true;
}

/** An error carried inside a JSON message stream ({"error": …, "errorDetail": {…}}). */
export class StreamError extends Error {
  constructor(message: string, readonly code?: number) {
    super(message);
    this.name = 'StreamError';
  }
}

export type Query = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** A streamed request body (an archive for load, import, build); sent chunked. */
  bodyStream?: import('node:stream').Readable;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

function encodeQuery(q: Query | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) { for (const x of v) p.append(k, x); continue; }
    p.append(k, v === true ? '1' : String(v));
  }
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Escapes a name for a path segment the way the docker client does (slashes and colons stay). */
function pathName(name: string): string {
  return encodeURI(name).replace(/\?/g, '%3F').replace(/#/g, '%23');
}

export class EngineClient {
  readonly endpoint: Endpoint;
  private readonly agent: HttpNs.Agent;
  private readonly tls: TLSOptions | undefined;
  private readonly userAgent: string;
  private ver: string | undefined;
  private negotiated: Promise<string> | undefined;
  /** The server's Api-Version header from the last ping. */
  serverApiVersion: string | undefined;

  constructor(opts: ClientOptions = {}) {
    this.tls = opts.tls;
    this.endpoint = parseHost(opts.host ?? '', opts.tls !== undefined);
    this.ver = opts.version;
    this.userAgent = opts.userAgent ?? 'Wharf-Client/0.1.0 (linux)';
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** The negotiated (or fixed) API version. */
  async apiVersion(): Promise<string> {
    if (this.ver !== undefined) return this.ver;
    this.negotiated ??= this.ping().then((p) => {
      const server = p.apiVersion;
      this.ver = server && compareVersions(server, CLIENT_API_VERSION) < 0 ? server : CLIENT_API_VERSION;
      return this.ver;
    }, (e: unknown) => {
      this.negotiated = undefined;
      throw e;
    });
    return this.negotiated;
  }

  /** HEAD /_ping (falls back to GET when HEAD is refused). */
  async ping(): Promise<{ apiVersion?: string; osType?: string; experimental: boolean; builderVersion?: string }> {
    let res = await this.raw('HEAD', '/_ping', {});
    if (res.statusCode !== undefined && res.statusCode >= 400) { res.resume(); res = await this.raw('GET', '/_ping', {}); }
    res.resume();
    const h = (k: string) => { const v = res.headers[k]; return Array.isArray(v) ? v[0] : v; };
    const apiVersion = h('api-version');
    this.serverApiVersion = apiVersion;
    const out: { apiVersion?: string; osType?: string; experimental: boolean; builderVersion?: string } = { experimental: h('docker-experimental') === 'true' };
    if (apiVersion !== undefined) out.apiVersion = apiVersion;
    const os = h('ostype');
    if (os !== undefined) out.osType = os;
    const bv = h('builder-version');
    if (bv !== undefined) out.builderVersion = bv;
    if (res.statusCode !== undefined && res.statusCode >= 400) throw errorFromStatus(res.statusCode, `ping: ${res.statusCode}`);
    return out;
  }

  /** One HTTP exchange; `path` without the version prefix. Resolves with the response (any status). */
  raw(method: string, path: string, opts: RequestOptions & { versioned?: boolean; version?: string }): Promise<IncomingMessage> {
    const ep = this.endpoint;
    const fullPath = (opts.version !== undefined ? `/v${opts.version}` : '') + path + encodeQuery(opts.query);
    let body: Buffer | undefined;
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...opts.headers };
    if (opts.body !== undefined) {
      body = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] = 'application/json';
    }
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    else if (opts.bodyStream) headers['Transfer-Encoding'] = 'chunked';
    else if (method === 'POST' || method === 'PUT') headers['Content-Length'] = '0';
    const send = (r: HttpNs.ClientRequest) => {
      if (opts.bodyStream) {
        opts.bodyStream.on('error', (e) => r.destroy(e));
        opts.bodyStream.pipe(r);
      } else r.end(body);
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const common: HttpNs.RequestOptions = { method, path: fullPath, headers, agent: this.agent };
      if (opts.signal) common.signal = opts.signal;
      let req: HttpNs.ClientRequest;
      const onRes = (res: IncomingMessage) => resolve(res);
      if (ep.kind === 'unix') {
        // servername '': no TLS here, and without it the agent checks whether the host is an IP address,
        // whose first use compiles node's large IPv6 regular expression (~4 ms of every CLI start)
        req = http.request({ ...common, socketPath: ep.socketPath, host: 'api.moby.localhost', servername: '' } as HttpNs.RequestOptions, onRes);
      } else if (ep.tls) {
        // node:https only when TLS is used: keeps start-up light for the common case.
        const tls = this.tls;
        req = undefined as unknown as HttpNs.ClientRequest;
        import('node:https').then((https) => {
          const r = https.request({
            ...common, agent: undefined, host: ep.host, port: ep.port,
            ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}),
            rejectUnauthorized: tls?.verify ?? true,
          }, onRes);
          r.on('error', (e) => reject(this.wrapConnError(e, method, fullPath)));
          send(r);
        }, reject);
        return;
      } else {
        req = http.request({ ...common, host: ep.host, port: ep.port }, onRes);
      }
      req.on('error', (e) => reject(this.wrapConnError(e, method, fullPath)));
      send(req);
    });
  }

  /**
   * A hijacked exchange (attach, exec start): the request goes out with `Connection: Upgrade, Upgrade: tcp`;
   * on `101` the raw socket is returned (with any bytes that followed the response head), as dockerd and wharfd
   * answer when asked to upgrade. Error statuses throw typed errors.
   */
  async hijack(path: string, opts: RequestOptions = {}): Promise<{ socket: import('node:net').Socket; head: Buffer }> {
    const version = await this.apiVersion();
    const ep = this.endpoint;
    const fullPath = `/v${version}${path}${encodeQuery(opts.query)}`;
    const body = opts.body !== undefined ? Buffer.from(JSON.stringify(opts.body)) : Buffer.alloc(0);
    const headers: Record<string, string> = {
      'User-Agent': this.userAgent, Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json',
      'Content-Length': String(body.length), ...opts.headers,
    };
    const common: HttpNs.RequestOptions = { method: 'POST', path: fullPath, headers, agent: false };
    let req: HttpNs.ClientRequest;
    if (ep.kind === 'unix') req = http.request({ ...common, socketPath: ep.socketPath, host: 'api.moby.localhost', servername: '' } as HttpNs.RequestOptions);
    else if (ep.tls) {
      const https = await import('node:https');
      const tls = this.tls;
      req = https.request({
        ...common, host: ep.host, port: ep.port,
        ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}),
        rejectUnauthorized: tls?.verify ?? true,
      });
    } else req = http.request({ ...common, host: ep.host, port: ep.port });
    return new Promise((resolve, reject) => {
      req.on('upgrade', (_res, socket, head) => resolve({ socket: socket as import('node:net').Socket, head }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 500;
        if (status >= 200 && status < 300) {
          res.resume();
          reject(new Error(`the daemon answered ${status} instead of upgrading the connection`));
          return;
        }
        readBody(res).then((text) => {
          let message = text.trim();
          try { const j = JSON.parse(text) as { message?: string }; if (typeof j.message === 'string') message = j.message; } catch { /* plain */ }
          const err = errorFromStatus(status, message || `${status} ${http.STATUS_CODES[status] ?? ''}`.trim());
          Object.defineProperty(err, 'fromDaemon', { value: true });
          reject(err);
        }, reject);
      });
      req.on('error', (e) => reject(this.wrapConnError(e, 'POST', fullPath)));
      req.end(body);
    });
  }

  private wrapConnError(e: unknown, method: string, path: string): unknown {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES' || code === 'EHOSTUNREACH' || code === 'ENOTSOCK') {
      return new ConnectionError(this.endpoint, code, { cause: e });
    }
    if (code === 'ECONNRESET') {
      // the peer hung up (e.g. plain HTTP to a TLS port): Go's client reports EOF
      const ep = this.endpoint;
      const base = ep.kind === 'unix' ? `http://${encodeURIComponent(ep.socketPath)}` : `${ep.tls ? 'https' : 'http'}://${ep.url.slice('tcp://'.length)}`;
      const m = method.charAt(0) + method.slice(1).toLowerCase();
      return new Error(`error during connect: ${m} "${base}${path}": EOF`, { cause: e });
    }
    return e;
  }

  /** A versioned request; non-2xx responses become typed errors. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const version = await this.apiVersion();
    const res = await this.raw(method, path, { ...opts, version });
    const status = res.statusCode ?? 500;
    // 304 (start of a running container, stop of a stopped one) is not an error for docker's client either
    if ((status >= 200 && status < 300) || status === 304) return res;
    const text = await readBody(res);
    let message = text.trim();
    try {
      const j = JSON.parse(text) as { message?: string };
      if (typeof j.message === 'string') message = j.message;
    } catch { /* plain text */ }
    if (message === '') message = `${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
    const err = errorFromStatus(status, message);
    Object.defineProperty(err, 'fromDaemon', { value: true });
    throw err;
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const text = await readBody(res);
    return (text === '' ? null : JSON.parse(text)) as T;
  }

  async empty(method: string, path: string, opts: RequestOptions = {}): Promise<void> {
    (await this.request(method, path, opts)).resume();
  }

  /** A request whose answer is a JSON message stream. */
  async stream(method: string, path: string, opts: RequestOptions = {}): Promise<AsyncGenerator<JSONMessage>> {
    const res = await this.request(method, path, opts);
    return decodeJSONMessages(res);
  }

  close(): void {
    this.agent.destroy();
  }

  // ---- images ----

  imageList(opts: { all?: boolean; filters?: string; sharedSize?: boolean } = {}): Promise<ImageSummary[]> {
    return this.json('GET', '/images/json', { query: { all: opts.all, filters: opts.filters, 'shared-size': opts.sharedSize } });
  }

  imageInspect(name: string): Promise<Record<string, unknown>> {
    return this.json('GET', `/images/${pathName(name)}/json`);
  }

  imageHistory(name: string): Promise<HistoryItem[]> {
    return this.json('GET', `/images/${pathName(name)}/history`);
  }

  /** repo is the normalized name ("docker.io/library/busybox"), tag may be empty. */
  imageTag(source: string, repo: string, tag: string): Promise<void> {
    return this.empty('POST', `/images/${pathName(source)}/tag`, { query: { repo, tag } });
  }

  imageRemove(name: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<DeleteItem[]> {
    return this.json('DELETE', `/images/${pathName(name)}`, { query: { force: opts.force, noprune: opts.noPrune } });
  }

  imagePrune(filters: string): Promise<PruneReport> {
    return this.json('POST', '/images/prune', { query: { filters } });
  }

  /** POST /images/create?fromImage=…&tag=… with X-Registry-Auth. */
  imagePull(fromImage: string, tag: string, opts: { platform?: string; auth?: AuthConfig; signal?: AbortSignal } = {}): Promise<AsyncGenerator<JSONMessage>> {
    const ro: RequestOptions = {
      query: { fromImage, tag, platform: opts.platform },
      headers: { 'X-Registry-Auth': encodeAuthHeader(opts.auth ?? {}) },
    };
    if (opts.signal) ro.signal = opts.signal;
    return this.stream('POST', '/images/create', ro);
  }

  /** Wharf extension: POST /images/bootstrap?name=busybox|debian:<suite>. */
  imageBootstrap(name: string): Promise<AsyncGenerator<JSONMessage>> {
    return this.stream('POST', '/images/bootstrap', { query: { name } });
  }

  // ---- containers (inspect fallback) ----

  containerInspect(name: string): Promise<Record<string, unknown>> {
    return this.json('GET', `/containers/${pathName(name)}/json`);
  }

  // ---- system ----

  version(): Promise<ServerVersion> { return this.json('GET', '/version'); }
  info(): Promise<Info> { return this.json('GET', '/info'); }
  diskUsage(): Promise<DiskUsage> { return this.json('GET', '/system/df'); }
}

export function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** Throws the error a message carries, as docker's jsonmessage Display does. */
export function throwIfStreamError(m: JSONMessage): void {
  if (m.error !== undefined || m.errorDetail !== undefined) {
    const code = m.errorDetail?.code;
    if (code === 401) throw new StreamError('authentication is required', 401);
    throw new StreamError(m.errorDetail?.message ?? m.error ?? '', code);
  }
}
