/**
 * A small router: method + path pattern → handler, plus the request helpers the routes share (query bools,
 * filters, JSON bodies, JSON streams). Paths are matched after the `/v1.NN` prefix is stripped.
 *
 * Patterns: literal segments and `{param}` (one segment). `{param*}` matches one or more segments, so that
 * image names with slashes route by their suffix the way moby's `{name:.*}` does:
 * `/images/{name*}/json` matches `/images/localhost:5002/library/busybox/json`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { InvalidParameterError } from '../lib/errors.js';
import type { JSONMessage, ProgressSink } from '../lib/jsonmessage.js';
import type { AuthConfig } from './backend.js';
import { sendError, streamErrorMessage } from './errors.js';
import type { Logger } from '../lib/log.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path parameters, URL-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client asked for (the default when the path had no prefix). */
  version: string;
  /** Aborted when the client goes away before the response is finished. */
  signal: AbortSignal;
  /** The API's logger with this request's ID (for work that outlives the response, e.g. a detached exec). */
  log: Logger;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  re: RegExp;
  names: string[];
  handler: Handler;
  /** The pattern's first segment when it is literal ("containers" of /containers/{id}/json), else null. */
  first: string | null;
}

export class Router {
  private readonly routes: Route[] = [];
  /** method → first path segment → the routes that can match such a path, in registration order (built on demand). */
  private readonly index = new Map<string, Map<string, Route[]>>();

  add(method: string, pattern: string, handler: Handler): this {
    const names: string[] = [];
    const src = pattern
      .split('/')
      .map((seg) => {
        const m = /^\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}$/.exec(seg);
        if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(m[1]!);
        return m[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    const seg = pattern.split('/')[1] ?? '';
    this.routes.push({ method: method.toUpperCase(), pattern, re: new RegExp(`^${src}$`), names, handler, first: seg.startsWith('{') ? null : seg });
    this.index.clear();
    return this;
  }

  get(p: string, h: Handler): this { return this.add('GET', p, h); }
  head(p: string, h: Handler): this { return this.add('HEAD', p, h); }
  post(p: string, h: Handler): this { return this.add('POST', p, h); }
  delete(p: string, h: Handler): this { return this.add('DELETE', p, h); }
  put(p: string, h: Handler): this { return this.add('PUT', p, h); }

  /** The first route (in registration order) matching method and path, with its decoded parameters. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string>; pattern: string } | null {
    const slash = path.indexOf('/', 1);
    const first = slash < 0 ? path.slice(1) : path.slice(1, slash);
    let byFirst = this.index.get(method);
    if (!byFirst) {
      byFirst = new Map();
      if (this.index.size < 64) this.index.set(method, byFirst); // unknown methods are not remembered past that
    }
    let candidates = byFirst.get(first);
    if (!candidates) {
      candidates = this.routes.filter((r) => r.method === method && (r.first === null || r.first === first));
      if (byFirst.size < 1024) byFirst.set(first, candidates); // unknown first segments are not remembered past that
    }
    for (const r of candidates) {
      const m = r.re.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      try {
        r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]!); });
      } catch {
        throw new InvalidParameterError(`invalid path escape in ${JSON.stringify(path)}`);
      }
      return { handler: r.handler, params, pattern: r.pattern };
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Query helpers (moby's httputils)

/** Docker's BoolValue: false for absent, "", "0", "no", "false", "none" (any case); true otherwise. */
export function boolValue(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null) return false;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

/** Docker's BoolValueOrDefault: the default when the key is absent or empty. */
export function boolValueOrDefault(q: URLSearchParams, key: string, def: boolean): boolean {
  const v = q.get(key);
  if (v === null || v === '') return def;
  return boolValue(q, key);
}

/** An integer query value; the default when absent or empty; 400 when not an integer. */
export function intValue(q: URLSearchParams, key: string, def: number): number {
  const v = q.get(key);
  if (v === null || v === '') return def;
  if (!/^-?\d+$/.test(v.trim())) throw new InvalidParameterError(`invalid value for ${key}: ${JSON.stringify(v)}`);
  return Number(v.trim());
}

/**
 * Decodes X-Registry-Auth: base64url (padding optional; the standard alphabet is accepted too) of a JSON
 * AuthConfig. Absent → undefined. Undecodable → an empty AuthConfig (moby pulls anonymously then).
 */
export function decodeRegistryAuth(header: string | string[] | undefined): AuthConfig | undefined {
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined || raw === '') return undefined;
  try {
    const json = Buffer.from(raw.trim(), 'base64url').toString('utf8');
    const v: unknown = JSON.parse(json);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
    const src = v as Record<string, unknown>;
    const out: AuthConfig = {};
    for (const k of ['username', 'password', 'auth', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
      if (typeof src[k] === 'string' && src[k] !== '') out[k] = src[k] as string;
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * A streamed request body (a tar to import, load, build or copy in) for an engine that may fail half-way: the
 * engine gets its own stream, and if it destroys it (a pipeline does, on an error such as ENOSPC) the connection
 * survives: the rest of the body is read and dropped, so the client finishes sending and reads the error answer,
 * as with dockerd, instead of failing to write ("broken pipe").
 */
export function requestBody(req: IncomingMessage): Readable {
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  req.pipe(body);
  body.on('close', () => {
    if (req.complete) return;
    req.unpipe(body);
    req.resume();
  });
  return body;
}

/** Reads a JSON request body (empty → undefined). */
export async function readJsonBody(req: IncomingMessage, limit = 16 << 20): Promise<unknown> {
  // listeners rather than `for await`: the async iterator costs more than a small body's whole read (every
  // request of a busy client, e.g. 1,000 exec creations, comes through here). They are left on the request once it
  // settled (it is done with, and a settled promise ignores them): removing four listeners cost as much as adding them.
  const body = req.readableEnded ? Buffer.alloc(0) : await new Promise<Buffer>((resolve, reject) => {
    let chunks: Buffer[] | null = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      if (chunks === null) return;
      n += c.length;
      if (n > limit) { chunks = null; reject(new InvalidParameterError('request body too large')); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (chunks !== null) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)); });
    req.on('error', reject);
    req.on('close', () => { if (!req.complete) reject(new Error('request body: connection closed')); });
  });
  const text = body.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidParameterError(`invalid JSON body: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Response helpers

/** A JSON response as dockerd writes it: Content-Type application/json, body + "\n". */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A response without a body (201 of tag, 204 of start…). */
export function sendEmpty(res: ServerResponse, status: number): void {
  if (status === 204 || status === 304) res.writeHead(status);
  else res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

/**
 * A JSON message stream (pull, import, push, build): status 200 and headers go out with the first message,
 * so that an error before anything was streamed still gets its real status (dockerd: `output.Flushed()`).
 * Each message is one JSON object followed by "\r\n", flushed as its own chunk.
 */
export class JsonStream {
  private started = false;
  private ended = false;

  constructor(private readonly res: ServerResponse) {}

  get headersSent(): boolean { return this.started; }

  /** The sink to hand to a backend. */
  readonly sink: ProgressSink = (msg: JSONMessage) => this.write(msg);

  write(msg: JSONMessage | Record<string, unknown>): void {
    if (this.ended || this.res.destroyed) return;
    this.start();
    this.res.write(JSON.stringify(msg) + '\r\n');
  }

  /** Sends the 200 and headers now: errors after this are errorDetail lines (dockerd's load, pull's progress). */
  open(): void { this.start(); }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.flushHeaders();
  }

  /** Ends the stream; an error becomes an error status (nothing streamed yet) or an errorDetail line. */
  end(err?: unknown): void {
    if (this.ended) return;
    if (err !== undefined) {
      if (!this.started) {
        this.ended = true;
        sendError(this.res, err);
        return;
      }
      this.write(streamErrorMessage(err));
    }
    this.ended = true;
    if (!this.started) this.start();
    this.res.end();
  }
}
