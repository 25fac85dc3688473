/**
 * The Engine API HTTP server: common headers, the `/v1.NN` prefix, routing, error translation, debug logging.
 * Transport (unix socket, TCP+TLS) is the daemon's business: this module hands out a request listener and a
 * plain node:http server built on it.
 */
import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { http } from '../lib/nodehttp.js';
import type { Backends } from './backend.js';
import { clientTooNew, clientTooOld, httpStatusOf, messageOf, pageNotFound, sendError } from './errors.js';
import { Router, type RequestContext } from './router.js';
import { discardLogger, type Logger } from '../lib/log.js';
import { archiveRoutes } from './routes/archive.js';
import { authRoutes } from './routes/auth.js';
import { buildRoutes } from './routes/build.js';
import { containerRoutes } from './routes/containers.js';
import { distributionRoutes } from './routes/distribution.js';
import { imageRoutes } from './routes/images.js';
import { systemRoutes } from './routes/system.js';
import { volumeRoutes } from './routes/volumes.js';
import { eventRoutes } from './routes/events.js';
import { containerResourceRoutes } from './routes/container-resources.js';
import { pluginRoutes, swarmRoutes } from './routes/swarm.js';
import { networkRoutes } from './routes/networks.js';

/** The API version we serve (the reference dockerd 20.10's), and the oldest we accept. */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/** The headers dockerd puts on every answer, in its order (Server is set per listener). */
const COMMON_HEADERS = { 'Api-Version': API_VERSION, 'Docker-Experimental': 'false', Ostype: 'linux' } as const;

/**
 * A response that adds the API's common headers as its head is written, instead of four `setHeader` calls per
 * request: a head given whole to `writeHead` (sendJson, sendError…) then goes out without Node's per-header store
 * (measured under 1,000 exec creations: the four setHeader calls and the store they force on writeHead's own
 * headers were ~2.5 KB of garbage and the largest single allocation of the request path). A route that used
 * `setHeader` first still gets its headers merged as before; an implicit head (`res.write` without writeHead)
 * comes through here as well.
 */
export class ApiResponse<Request extends IncomingMessage = IncomingMessage> extends http.ServerResponse<Request> {
  /** "Wharf/<v> (linux)", set by the request listener before the handler runs. */
  serverHeader = '';

  override writeHead(statusCode: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    if (typeof reason !== 'string') { headers = reason; reason = undefined; }
    let all: OutgoingHttpHeaders | OutgoingHttpHeader[];
    if (Array.isArray(headers)) {
      // raw header lists (no route sends them today): the common headers through Node's store
      for (const [k, v] of Object.entries(COMMON_HEADERS)) if (!this.hasHeader(k)) this.setHeader(k, v);
      if (!this.hasHeader('Server')) this.setHeader('Server', this.serverHeader);
      all = headers;
    } else {
      all = { ...COMMON_HEADERS, Server: this.serverHeader };
      if (headers) for (const k in headers) all[k] = headers[k];
    }
    return reason === undefined ? super.writeHead(statusCode, all) : super.writeHead(statusCode, reason, all);
  }
}

/**
 * node:http options for API servers: no request timeout (imports, loads and build contexts may upload for
 * longer than Node's default 300 s, and dockerd has no such limit); responses that carry the common headers.
 */
export const HTTP_SERVER_OPTIONS = { keepAlive: true, requestTimeout: 0, ServerResponse: ApiResponse } as const;

export interface ApiServerOptions {
  /** Product version for the Server header ("Wharf/<v> (linux)"). */
  serverVersion?: string;
  /**
   * The API's logger: every request at debug level (`Calling GET /v1.41/containers/json`, never its headers), with
   * a request ID that its error lines repeat; errors of 500 and above at error level. Default: nothing logged.
   */
  log?: Logger;
  /** More routes (resources whose route files are not wired in buildRouter yet). Tried after the built-in ones. */
  extraRoutes?: ((r: Router) => void)[];
}

/** Compares dotted versions numerically: -1, 0, 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Splits "/v1.41/images/json" into version "1.41" and path "/images/json"; no prefix → version null. */
export function splitVersion(path: string): { version: string | null; path: string } {
  const m = /^\/v([0-9.]+)(\/.*)?$/.exec(path);
  if (!m) return { version: null, path };
  return { version: m[1]!, path: m[2] ?? '/' };
}

/** A short request ID for log lines (dockerd has none: its lines cannot be told apart under concurrency). */
// Math.random, not crypto's randomBytes: a log line's ID needs no secrecy, and node:crypto (OpenSSL's set-up,
// ~4 MB resident) is then not loaded by a daemon that has not needed it yet (bench/README.md, memory)
let requestSeq = Math.floor(Math.random() * 2 ** 48);
/** 12 hex digits: a random start counted up per request (a call into OpenSSL per request costs more than the rest of a small request's bookkeeping). */
export function newRequestId(): string {
  requestSeq = (requestSeq + 1) % 2 ** 48;
  return requestSeq.toString(16).padStart(12, '0');
}

/** Characters a request path may hold for which WHATWG URL parsing changes nothing (no dot segments checked here). */
const PLAIN_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/**
 * A request target's path (as WHATWG URL normalizes it: dot segments resolved, unsafe characters escaped) and its
 * query; null when it cannot be parsed. Plain paths — every API call the docker CLI and SDKs make — are split
 * without building a URL (measured: a URL per request was ~2 % of the daemon's time under 1,000 exec creations).
 */
export function parseTarget(rawUrl: string): { pathname: string; query: URLSearchParams } | null {
  const q = rawUrl.indexOf('?');
  const pathPart = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (PLAIN_PATH.test(pathPart) && !DOT_SEGMENT.test(pathPart) && !BAD_ESCAPE.test(pathPart) && (q < 0 || !rawUrl.includes('#', q))) {
    return { pathname: pathPart, query: new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1)) };
  }
  try {
    // Prefixed rather than resolved, so that "//x/y" stays a path and is not read as a host.
    const url = new URL(`http://localhost${rawUrl.startsWith('/') ? '' : '/'}${rawUrl}`);
    return { pathname: url.pathname, query: url.searchParams };
  } catch {
    return null;
  }
}

/** Builds the router with the routes of every resource whose backend is present. */
export function buildRouter(backends: Backends): Router {
  const r = new Router();
  systemRoutes(r, backends.system);
  imageRoutes(r, backends.images);
  if (backends.build) buildRoutes(r, backends.build);
  if (backends.push) distributionRoutes(r, backends.push);
  if (backends.imageArchive) archiveRoutes(r, backends.imageArchive);
  containerRoutes(r, backends);
  if (backends.volumes) volumeRoutes(r, backends.volumes);
  if (backends.auth && backends.search) authRoutes(r, backends.auth, backends.search);
  if (backends.events) eventRoutes(r, backends.events);
  if (backends.containerResources) containerResourceRoutes(r, backends.containerResources);
  swarmRoutes(r);
  pluginRoutes(r);
  if (backends.networks) networkRoutes(r, backends.networks);
  return r;
}

/**
 * What a handler gets. A class rather than an object literal: the getters live on the prototype (a literal's
 * accessors are made again for every request), and the abort signal and the request's logger are made only when a
 * handler asks for them: most requests finish without either, and an AbortController (an EventTarget) per request
 * cost more than routing it.
 */
class Ctx implements RequestContext {
  ac: AbortController | undefined;
  gone = false;
  private reqLog: Logger | undefined;
  constructor(
    readonly req: IncomingMessage, readonly res: ServerResponse, readonly params: Record<string, string>,
    readonly query: URLSearchParams, readonly version: string, private readonly apiLog: Logger, private readonly rid: () => string,
  ) {}

  get signal(): AbortSignal {
    if (!this.ac) { this.ac = new AbortController(); if (this.gone) this.ac.abort(); }
    return this.ac.signal;
  }

  get log(): Logger { return (this.reqLog ??= this.apiLog.child({ 'request-id': this.rid() })); }
}

/** The request listener: usable with http.createServer and https.createServer alike. */
export function createRequestListener(
  backends: Backends,
  opts: ApiServerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const router = buildRouter(backends);
  for (const add of opts.extraRoutes ?? []) add(router);
  const serverHeader = `Wharf/${opts.serverVersion ?? '0.1.0'} (linux)`;
  const log = opts.log ?? discardLogger;
  // the logger's level is fixed for its life: without debug, no request builds its log lines
  const debug = log.enabled('debug');

  return (req, res) => {
    if (res instanceof ApiResponse) res.serverHeader = serverHeader;
    else {
      // a server made without HTTP_SERVER_OPTIONS
      for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
      res.setHeader('Server', serverHeader);
    }

    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    // Path only: the query may hold secrets of no interest here, and X-Registry-Auth and other headers are never logged.
    const where = () => { const q = rawUrl.indexOf('?'); return `${method} ${q < 0 ? rawUrl : rawUrl.slice(0, q)}`; };
    // the request's ID, made when a line or the handler's logger first needs it (most requests log nothing)
    let ridValue: string | undefined;
    const rid = () => (ridValue ??= newRequestId());
    if (debug) log.debug(`Calling ${where()}`, { 'request-id': rid() });

    let ctx: Ctx | undefined;
    let gone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      if (ctx) { ctx.gone = true; ctx.ac?.abort(); }
      if (debug) log.debug(`Connection closed before the response to ${where()} ended`, { 'request-id': rid() });
    });

    const fail = (err: unknown) => {
      if (gone) {
        // The client is gone: nobody reads the answer, and what failed is the abort it caused.
        if (debug) log.debug(`Handler for ${where()} stopped: client disconnected`, { 'request-id': rid(), error: err });
        if (!res.writableEnded) res.destroy();
        return;
      }
      const status = httpStatusOf(err);
      if (status >= 500) log.error(`Handler for ${where()} returned error: ${messageOf(err)}`, { 'request-id': rid(), status, ...(err instanceof Error && err.cause !== undefined ? { cause: err.cause } : {}) });
      else if (debug) log.debug(`Handler for ${where()} returned error: ${messageOf(err)}`, { 'request-id': rid(), status });
      sendError(res, err);
    };

    const target = parseTarget(rawUrl);
    if (target === null) { fail(pageNotFound()); return; }
    const { version, path } = splitVersion(target.pathname);
    if (version !== null) {
      if (compareVersions(version, API_VERSION) > 0) { fail(clientTooNew(version, API_VERSION)); return; }
      if (compareVersions(version, MIN_API_VERSION) < 0) { fail(clientTooOld(version, MIN_API_VERSION)); return; }
    }

    let match;
    try {
      match = router.match(method, path);
    } catch (e) {
      fail(e);
      return;
    }
    if (match === null) { fail(pageNotFound()); return; }

    let result: Promise<void> | void;
    try {
      ctx = new Ctx(req, res, match.params, target.query, version ?? API_VERSION, log, rid);
      ctx.gone = gone;
      result = match.handler(ctx);
    } catch (e) {
      fail(e);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => { if (!res.headersSent && !res.writableEnded) fail(new Error('handler sent no response')); },
        fail,
      );
    }
  };
}

/** A plain HTTP server (for unix sockets) over the API. */
export function createApiServer(backends: Backends, opts: ApiServerOptions = {}): Server {
  const server = http.createServer(HTTP_SERVER_OPTIONS, createRequestListener(backends, opts));
  return server;
}
