/**
 * The Engine API HTTP server: common headers, the `/v1.NN` prefix, routing, error translation, debug logging.
 * Transport (unix socket, TCP+TLS) is the daemon's business: this module hands out a request listener and a
 * plain node:http server built on it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Backends } from './backend.js';
import { clientTooNew, clientTooOld, httpStatusOf, messageOf, pageNotFound, sendError } from './errors.js';
import { Router } from './router.js';
import { imageRoutes } from './routes/images.js';
import { systemRoutes } from './routes/system.js';
import { networkRoutes } from './routes/networks.js';

/** The API version we serve (the reference dockerd 20.10's), and the oldest we accept. */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/**
 * node:http options for API servers: no request timeout (imports, loads and build contexts may upload for
 * longer than Node's default 300 s, and dockerd has no such limit).
 */
export const HTTP_SERVER_OPTIONS = { keepAlive: true, requestTimeout: 0 } as const;

export interface ApiServerOptions {
  /** Product version for the Server header ("Wharf/<v> (linux)"). */
  serverVersion?: string;
  /** Log every request (never its headers). */
  debug?: boolean;
  /** Where log lines go (default: stderr). */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
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

function defaultLog(level: string, msg: string): void {
  process.stderr.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`);
}

/** Builds the router with every resource's routes. */
export function buildRouter(backends: Backends): Router {
  const r = new Router();
  systemRoutes(r, backends.system);
  imageRoutes(r, backends.images);
  if (backends.networks) networkRoutes(r, backends.networks);
  return r;
}

/** The request listener: usable with http.createServer and https.createServer alike. */
export function createRequestListener(
  backends: Backends,
  opts: ApiServerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const router = buildRouter(backends);
  for (const add of opts.extraRoutes ?? []) add(router);
  const serverHeader = `Wharf/${opts.serverVersion ?? '0.1.0'} (linux)`;
  const log = opts.log ?? defaultLog;

  return (req, res) => {
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('Docker-Experimental', 'false');
    res.setHeader('Ostype', 'linux');
    res.setHeader('Server', serverHeader);

    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    if (opts.debug) {
      // Path and query only: X-Registry-Auth and other headers are never logged.
      log('debug', `Calling ${method} ${rawUrl.split('?')[0]}`);
    }

    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });

    const fail = (err: unknown) => {
      const status = httpStatusOf(err);
      if (status >= 500) log('error', `Handler for ${method} ${rawUrl.split('?')[0]} returned error: ${messageOf(err)}`);
      else if (opts.debug) log('debug', `Handler for ${method} ${rawUrl.split('?')[0]} returned error: ${messageOf(err)}`);
      sendError(res, err);
    };

    let url: URL;
    try {
      // Prefixed rather than resolved, so that "//x/y" stays a path and is not read as a host.
      url = new URL(`http://localhost${rawUrl.startsWith('/') ? '' : '/'}${rawUrl}`);
    } catch {
      fail(pageNotFound());
      return;
    }
    const { version, path } = splitVersion(url.pathname);
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
      result = match.handler({
        req, res, params: match.params, query: url.searchParams, version: version ?? API_VERSION, signal: ac.signal,
      });
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
  const server = createServer(HTTP_SERVER_OPTIONS, createRequestListener(backends, opts));
  return server;
}
