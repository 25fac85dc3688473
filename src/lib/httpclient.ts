/**
 * The daemon's one HTTP client, on node:http / node:https (loaded through `lib/nodehttp.ts`; node:https only at
 * the first https request). The registry transport (`engine/distribution/transport.ts`) adds registries' auth,
 * endpoints and limits on top; builds (ADD of a URL, a remote context) and `POST /images/create?fromSrc=` use it
 * plainly through `get()`.
 *
 * Why not undici (the library Node's `fetch` is built on): its HTTP/1 parser is llhttp compiled to WebAssembly,
 * instantiated at the first request, whose memory grows to ~8 MB during a pull and never shrinks; node:http's
 * parser is the same llhttp, native, already in the Node binary (bench/README.md, memory).
 *
 * - Pools: one keep-alive Agent per (scheme, TLS verification, proxy); idle sockets close after 10 s, or earlier
 *   when the server's `Keep-Alive: timeout=` says so. HTTP(S)_PROXY / NO_PROXY through Node's own proxy support
 *   (an https request goes through a CONNECT tunnel, an http one as an absolute-URI request); loopback never proxied.
 * - Retries (`RetryRule`): the allowed methods are retried after connection resets, EPIPE, header and body
 *   timeouts, and after the listed statuses (429, 5xx): Retry-After honoured, else exponential backoff from
 *   `minTimeout`, each wait capped at `maxTimeout`, `maxRetries` retries in all (body resumes included). A request on
 *   a reused keep-alive socket that the server had closed is sent again once whatever its method, when its body
 *   can be sent again.
 * - A GET body that breaks mid-way resumes with `Range: bytes=<received>-<end>` when the answer is a 206 of the same
 *   object (same strong ETag and Docker-Content-Digest); otherwise the body fails with `ERR_HTTP_RESUME`, or, after
 *   `ResponseBody.restartWith(reopen)` (registry blobs), starts over with a whole new GET, skipping what was read.
 *   All of it in one stream (`ResponseBody`) between the socket and the reader.
 * - Redirects (301, 302, 303, 307, 308) are followed up to 10 times, each hop retried on its own; a hop to another
 *   origin drops Authorization, Cookie and Proxy-Authorization, and is verified: `insecure` covers the origin the
 *   caller asked for (scheme, host, port), never where it redirects (an insecure registry's redirect to blob storage
 *   on another https host checks that host's certificate).
 * - Timeouts: connect 15 s (`ERR_HTTP_CONNECT_TIMEOUT`), headers `headersTimeout` after the request was written
 *   (`ERR_HTTP_HEADERS_TIMEOUT`), a body that sends nothing for `bodyTimeout` while it is read
 *   (`ERR_HTTP_BODY_TIMEOUT`).
 * - Socket errors are Node's own (`goNetError` words them as Go's net/http does).
 */
import type { Agent as HttpAgent, ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { http, https } from './nodehttp.js';
import { UnavailableError } from './errors.js';

export interface HttpPolicy {
  /** Retries after the first try (resumes of a body included). */
  maxRetries: number;
  /** First backoff (ms), doubled each time. */
  minTimeout: number;
  /** Longest single wait (ms), Retry-After included. */
  maxTimeout: number;
  /** A body that sends nothing for this long (ms) while it is read fails (and is resumed when it may be). */
  bodyTimeout: number;
  /** No response headers this long (ms) after the request was written: fails (and is retried). */
  headersTimeout: number;
}

export const DEFAULT_HTTP_POLICY: HttpPolicy = { maxRetries: 4, minTimeout: 500, maxTimeout: 10_000, bodyTimeout: 120_000, headersTimeout: 120_000 };

/** What is retried: these methods, after retryable socket errors and after these statuses. */
export interface RetryRule {
  methods: readonly string[];
  statuses: readonly number[];
}

export const RETRY_STATUSES = [429, 500, 502, 503, 504] as const;
export const IDEMPOTENT: RetryRule = { methods: ['GET', 'HEAD'], statuses: RETRY_STATUSES };

/** Socket errors worth another try (refused connections, DNS failures and connect timeouts are not). */
export const RETRY_ERROR_CODES: readonly string[] = ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_HTTP_BODY_TIMEOUT', 'ERR_HTTP_HEADERS_TIMEOUT'];

const CONNECT_TIMEOUT = 15_000;
const KEEPALIVE_TIMEOUT = 10_000;
const MAX_REDIRECTS = 10;

export interface HttpRequestOptions {
  headers?: Record<string, string> | undefined;
  body?: Readable | Buffer | string | undefined;
  signal?: AbortSignal | undefined;
  /** https without certificate verification, for the request's own origin only (not for a redirect elsewhere). */
  insecure?: boolean | undefined;
  /** Default: GET/HEAD after resets, timeouts, 429 and 5xx. `null`: never. */
  retry?: RetryRule | null | undefined;
  policy?: HttpPolicy | undefined;
}

export interface HttpResponse {
  statusCode: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  /** The body: consume it, `dump()` it or destroy it. */
  body: Readable;
  /** The URL that answered (after redirects). */
  url: string;
}

/** An error of this client (not of the socket), with a code. */
export class HttpClientError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pools

const agents = new Map<string, HttpAgent>();

function proxyConfigured(): boolean {
  const e = process.env;
  return !!(e.HTTPS_PROXY || e.https_proxy || e.HTTP_PROXY || e.http_proxy);
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function proxyEnv(): NodeJS.ProcessEnv {
  const e = process.env;
  const pick = (a: string, b: string) => e[a] || e[b];
  const env: NodeJS.ProcessEnv = {};
  const hp = pick('HTTP_PROXY', 'http_proxy');
  const sp = pick('HTTPS_PROXY', 'https_proxy');
  const np = pick('NO_PROXY', 'no_proxy');
  if (hp) env.HTTP_PROXY = hp;
  if (sp) env.HTTPS_PROXY = sp;
  if (np) env.NO_PROXY = np;
  return env;
}

function agentFor(u: URL, insecure: boolean): HttpAgent {
  const tls = u.protocol === 'https:';
  const proxied = proxyConfigured() && !isLoopback(u.hostname);
  const key = `${tls ? (insecure ? 'https-insecure' : 'https') : 'http'}${proxied ? '+proxy' : ''}`;
  let a = agents.get(key);
  if (!a) {
    const common = { keepAlive: true, timeout: KEEPALIVE_TIMEOUT, ...(proxied ? { proxyEnv: proxyEnv() } : {}) };
    a = tls ? new (https().Agent)({ ...common, rejectUnauthorized: !insecure }) : new http.Agent(common);
    agents.set(key, a);
  }
  return a;
}

/** Closes the pools' idle sockets and forgets the pools (tests; a changed proxy environment). */
export function closeAgents(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

// ---------------------------------------------------------------------------------------------------------
// One exchange

interface Exchange { req: ClientRequest; res: IncomingMessage }

function abortError(signal: AbortSignal): Error {
  const r = signal.reason as unknown;
  if (r instanceof Error) return r;
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** One request, one response's headers (no retry, no redirect). */
function exchange(method: string, u: URL, headers: Record<string, string>, body: Readable | Buffer | string | undefined,
  o: { insecure: boolean; signal: AbortSignal | undefined; policy: HttpPolicy }): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) { reject(abortError(o.signal)); return; }
    const mod = u.protocol === 'https:' ? https() : http;
    const req = mod.request(u, { method, headers, agent: agentFor(u, o.insecure) });
    let connectTimer: NodeJS.Timeout | undefined;
    let headersTimer: NodeJS.Timeout | undefined;
    let done = false;
    const clearConnect = () => { if (connectTimer) clearTimeout(connectTimer); connectTimer = undefined; };
    const onAbort = () => { req.destroy(abortError(o.signal!)); };
    const finish = () => {
      done = true;
      clearConnect();
      if (headersTimer) clearTimeout(headersTimer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('socket', (s) => {
      if (req.reusedSocket || !s.connecting) return;
      connectTimer = setTimeout(() => {
        req.destroy(new HttpClientError('ERR_HTTP_CONNECT_TIMEOUT', `connect timed out after ${CONNECT_TIMEOUT} ms`));
      }, CONNECT_TIMEOUT);
      s.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', clearConnect);
    });
    req.on('finish', () => {
      if (done) return;
      headersTimer = setTimeout(() => {
        req.destroy(new HttpClientError('ERR_HTTP_HEADERS_TIMEOUT', `no response headers after ${o.policy.headersTimeout} ms`));
      }, o.policy.headersTimeout);
    });
    req.on('response', (res) => { finish(); resolve({ req, res }); });
    req.on('error', (e) => {
      if (done) return;
      finish();
      // a keep-alive socket the server had closed: `hop` may send the request once more
      if (req.reusedSocket) (e as { reusedSocket?: boolean }).reusedSocket = true;
      reject(e);
    });
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    }
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(abortError(signal)); return; }
    const onAbort = () => { clearTimeout(t); reject(abortError(signal!)); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The wait before retry number `n` (1-based): Retry-After (seconds or a date), else exponential; capped. */
export function backoff(n: number, policy: HttpPolicy, retryAfter: string | string[] | undefined): number {
  const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  let ms = 0;
  if (ra) {
    const secs = Number(ra);
    ms = Number.isNaN(secs) ? Date.parse(ra) - Date.now() : secs * 1000;
    if (!Number.isFinite(ms)) ms = 0;
  }
  return ms > 0 ? Math.min(ms, policy.maxTimeout) : Math.min(policy.minTimeout * 2 ** (n - 1), policy.maxTimeout);
}

function retryableError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code !== undefined && RETRY_ERROR_CODES.includes(code);
}

/** Reads at most `limit` bytes of a body and drops the rest (the connection too when there is more). */
export async function dump(body: Readable, limit = 64 * 1024): Promise<void> {
  if (body.readableEnded || body.destroyed) return;
  let n = 0;
  try {
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > limit) { body.destroy(); return; }
    }
  } catch { body.destroy(); }
}

interface Attempt { method: string; url: URL; headers: Record<string, string>; body: Readable | Buffer | string | undefined }

/** State shared by the tries of one hop and the resumes of its body. */
interface Tries { count: number }

/**
 * One hop with its retries: the response (a retryable status after the last try is returned as it is), or the
 * error of the last try.
 */
async function hop(a: Attempt, o: Required<Pick<HttpRequestOptions, 'insecure' | 'policy'>> & { signal: AbortSignal | undefined; retry: RetryRule | null }, tries: Tries): Promise<Exchange> {
  const replayable = typeof a.body !== 'object' || Buffer.isBuffer(a.body);
  const allowed = o.retry !== null && o.retry.methods.includes(a.method) && replayable;
  let staleRetried = false;
  for (;;) {
    let ex: Exchange;
    try {
      ex = await exchange(a.method, a.url, a.headers, a.body, o);
    } catch (e) {
      if ((e as Error)?.name === 'AbortError' || o.signal?.aborted) throw e;
      // a keep-alive socket the server closed as we sent: once more, on a new socket, whatever the method
      const stale = (e as { code?: string }).code === 'ECONNRESET' && (e as { reusedSocket?: boolean }).reusedSocket === true;
      if (stale && replayable && !staleRetried) { staleRetried = true; continue; }
      if (!allowed || !retryableError(e) || tries.count >= o.policy.maxRetries) throw e;
      tries.count++;
      await sleep(backoff(tries.count, o.policy, undefined), o.signal);
      continue;
    }
    if (allowed && o.retry!.statuses.includes(ex.res.statusCode!) && tries.count < o.policy.maxRetries) {
      tries.count++;
      const wait = backoff(tries.count, o.policy, ex.res.headers['retry-after']);
      void dump(ex.res);
      await sleep(wait, o.signal);
      continue;
    }
    return ex;
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * A request with its retries and redirects. The body of the answer resumes by Range after a break when the request
 * was a retried GET.
 */
export async function request(method: string, url: string, o: HttpRequestOptions = {}): Promise<HttpResponse> {
  const policy = o.policy ?? DEFAULT_HTTP_POLICY;
  let a: Attempt = { method, url: new URL(url), headers: { ...o.headers }, body: o.body };
  // the caller's `insecure` is about the origin it named; any other origin a redirect leads to is verified
  const insecureOrigin = o.insecure ? a.url.origin : null;
  for (let redirects = 0; ; redirects++) {
    const tries: Tries = { count: 0 };
    const opts = { insecure: a.url.origin === insecureOrigin, policy, signal: o.signal, retry: o.retry === undefined ? IDEMPOTENT : o.retry };
    const { res } = await hop(a, opts, tries);
    const loc = res.headers.location;
    const consumedStream = a.body !== undefined && typeof a.body === 'object' && !Buffer.isBuffer(a.body);
    if (REDIRECTS.has(res.statusCode!) && loc && redirects < MAX_REDIRECTS && !(consumedStream && (res.statusCode === 307 || res.statusCode === 308))) {
      void dump(res);
      const next = new URL(loc, a.url);
      const headers = { ...a.headers };
      const drop = (names: string[]) => { for (const k of Object.keys(headers)) if (names.includes(k.toLowerCase())) delete headers[k]; };
      drop(['host']);
      if (next.origin !== a.url.origin) drop(['authorization', 'cookie', 'proxy-authorization']);
      let m = a.method;
      let body = a.body;
      if (res.statusCode === 303 ? m !== 'HEAD' : (res.statusCode === 301 || res.statusCode === 302) && m === 'POST') {
        m = 'GET';
        body = undefined;
        drop(['content-length', 'content-type', 'content-encoding', 'transfer-encoding']);
      }
      a = { method: m, url: next, headers, body };
      continue;
    }
    const resumable = a.method === 'GET' && opts.retry !== null && opts.retry.methods.includes('GET') && (res.statusCode === 200 || res.statusCode === 206);
    return {
      statusCode: res.statusCode!, statusMessage: res.statusMessage ?? '', headers: res.headers, url: a.url.toString(),
      body: new ResponseBody(res, resumable ? { attempt: a, opts, tries } : null, policy, o.signal),
    };
  }
}

/** A plain GET (no registry auth): ADD of a URL, remote build contexts, image import from a URL. */
export function get(url: string, o: { signal?: AbortSignal | undefined } = {}): Promise<HttpResponse> {
  return request('GET', url, { signal: o.signal });
}

// ---------------------------------------------------------------------------------------------------------
// Bodies

function strongEtag(h: IncomingHttpHeaders): string | null {
  const e = h.etag;
  return e && !e.startsWith('W/') ? e : null;
}

interface Resume { attempt: Attempt; opts: Parameters<typeof hop>[1]; tries: Tries }

/** Errors after which a body may be fetched again from its start (a Range resume failed, or was not possible). */
export function restartableError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'ERR_HTTP_RESUME' || retryableError(e);
}

/**
 * The body of an answer as one stream: a body timeout while it is read; a break resumed by a Range request (GETs
 * that may be retried); and, once `restartWith` is called, started over from the beginning when no resume was
 * possible (the bytes already delivered skipped). One stream between the socket and the reader, whatever happens.
 */
export class ResponseBody extends Readable {
  private cur: Readable;
  /** The entity's bytes: the next one expected (offset) and the last (null when unknown). */
  private offset = 0;
  private end: number | null = null;
  private readonly etag: string | null;
  private readonly digest: string | string[] | undefined;
  /** Bytes handed to the reader, and how many a restarted download must skip. */
  private delivered = 0;
  private skip = 0;
  private switching = false;
  private reopen: (() => Promise<Readable>) | null = null;
  private restarts = 0;
  private maxRestarts = 0;
  private timer: NodeJS.Timeout | undefined;
  private waiting = false;
  private progressed = false;
  private readonly onAbort = () => this.destroy(abortError(this.signal!));

  constructor(first: Readable & { headers?: IncomingHttpHeaders; statusCode?: number }, private resumeWith: Resume | null,
    private readonly policy: HttpPolicy, private readonly signal: AbortSignal | undefined) {
    super({ highWaterMark: 1 << 20 });
    this.cur = first;
    const h = first.headers ?? {};
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(h['content-range'] ?? ''));
    if (first.statusCode === 206 && cr) { this.offset = Number(cr[1]); this.end = Number(cr[2]); }
    else if (h['content-length'] !== undefined) this.end = Number(h['content-length']) - 1;
    this.etag = strongEtag(h);
    this.digest = h['docker-content-digest'];
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.attach(first);
    first.pause();
  }

  /** From now on, a break that cannot be resumed starts the download over with `reopen`, at most `max` times. */
  restartWith(reopen: () => Promise<Readable>, max: number): this {
    this.reopen = reopen;
    this.maxRestarts = max;
    return this;
  }

  override _read(): void {
    if (this.switching) return;
    this.waiting = true;
    this.cur.resume();
    this.arm();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.disarm();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.cur.destroy();
    cb(err);
  }

  /** One timer per body, checked every bodyTimeout: it fires only after a whole period of waiting with no byte. */
  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.tick(), this.policy.bodyTimeout);
    this.timer.unref();
  }

  private tick(): void {
    if (this.waiting && !this.progressed && !this.switching) {
      this.timer = undefined;
      this.cur.destroy(new HttpClientError('ERR_HTTP_BODY_TIMEOUT', `the body sent nothing for ${this.policy.bodyTimeout} ms`));
      return;
    }
    this.progressed = false;
    this.timer!.refresh();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private attach(src: Readable): void {
    src.on('data', (c: Buffer) => {
      if (src !== this.cur) return;
      this.progressed = true;
      this.offset += c.length;
      if (this.skip > 0) {
        if (c.length <= this.skip) { this.skip -= c.length; return; }
        c = c.subarray(this.skip);
        this.skip = 0;
      }
      this.delivered += c.length;
      if (!this.push(c)) { this.waiting = false; src.pause(); }
    });
    src.on('end', () => {
      if (src !== this.cur) return;
      this.disarm();
      this.signal?.removeEventListener('abort', this.onAbort);
      if (this.skip > 0) this.destroy(new HttpClientError('ERR_HTTP_RESUME', 'the server sent a shorter body when the download started over'));
      else this.push(null);
    });
    src.on('error', (e) => {
      if (src !== this.cur || this.destroyed) return;
      const r = this.resumeWith;
      if (r && retryableError(e) && r.tries.count < this.policy.maxRetries) this.switchTo(() => this.rangeRequest(r), e);
      else this.restart(e);
    });
  }

  /** Replaces the source by the one `next` opens; on failure, `restart`. */
  private switchTo(next: () => Promise<Readable>, _cause: unknown, onFail: (e: unknown) => void = (e) => this.restart(e)): void {
    this.switching = true;
    next().then((s) => {
      this.switching = false;
      if (this.destroyed) { s.destroy(); return; }
      this.cur = s;
      this.attach(s);
      if (this.waiting) { s.resume(); this.arm(); } else s.pause();
    }, (e: unknown) => { this.switching = false; if (!this.destroyed) onFail(e); });
  }

  /** The whole object again from its start, skipping what was delivered (after a resume was impossible). */
  private restart(e: unknown): void {
    if (!this.reopen || this.restarts >= this.maxRestarts || !restartableError(e)) { this.destroy(e as Error); return; }
    this.restarts++;
    this.resumeWith = null; // the new body resumes by itself
    const reopen = this.reopen;
    this.switchTo(async () => {
      const s = await reopen();
      this.skip = this.delivered;
      return s;
    }, e, (e2) => this.destroy(e2 as Error));
  }

  /** The rest of the object: a Range request (a whole new GET when nothing was received yet). */
  private async rangeRequest(r: Resume): Promise<Readable> {
    r.tries.count++;
    await sleep(backoff(r.tries.count, this.policy, undefined), this.signal);
    const offset = this.offset;
    const ranged = offset > 0;
    const headers = { ...r.attempt.headers, ...(ranged ? { range: `bytes=${offset}-${this.end ?? ''}` } : {}) };
    const { res } = await hop({ ...r.attempt, headers }, r.opts, r.tries);
    const fail = (why: string) => {
      res.destroy();
      return new HttpClientError('ERR_HTTP_RESUME', why);
    };
    if (this.etag !== null && strongEtag(res.headers) !== this.etag) throw fail('ETag mismatch');
    const dcd = res.headers['docker-content-digest'];
    if (this.digest !== undefined && dcd !== undefined && dcd !== this.digest) throw fail('Docker-Content-Digest mismatch');
    if (!ranged) {
      if (res.statusCode !== 200) throw fail(`the download broke off and the second try answered ${res.statusCode}`);
      return res;
    }
    if (res.statusCode !== 206) throw fail('server does not support the range header and the payload was partially consumed');
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== offset || (this.end !== null && Number(m[2]) !== this.end)) throw fail('Content-Range mismatch');
    return res;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Go's words

/** "GET" → "Get", as Go's url.Error prints methods. */
export function goVerb(method: string): string {
  return method[0]! + method.slice(1).toLowerCase();
}

let resolver: string | null | undefined;
/** Go's resolver names the DNS server in lookup errors ("lookup x on 10.0.0.2:53: no such host"). */
function nameserver(): string | null {
  if (resolver !== undefined) return resolver;
  resolver = null;
  try {
    const m = /^\s*nameserver\s+(\S+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'));
    if (m) resolver = m[1]!.includes(':') ? `[${m[1]}]:53` : `${m[1]}:53`;
  } catch { /* no resolv.conf: leave the message without a server */ }
  return resolver;
}

/** Node's socket errors and this client's in Go's words (`Get "…": dial tcp 127.0.0.1:5000: connect: connection refused`). */
export function goNetError(method: string, url: string, err: unknown): UnavailableError {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string; cause?: unknown };
  const c = (e?.cause ?? e) as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const addr = c.address ? (c.address.includes(':') ? `[${c.address}]:${c.port ?? port}` : `${c.address}:${c.port ?? port}`) : `${u.hostname}:${port}`;
  const ns = nameserver();
  let detail: string;
  switch (c.code ?? e?.code) {
    case 'ECONNREFUSED': detail = `dial tcp ${addr}: connect: connection refused`; break;
    case 'ENOTFOUND': case 'EAI_AGAIN': detail = `dial tcp: lookup ${u.hostname}${ns ? ` on ${ns}` : ''}: no such host`; break;
    case 'ETIMEDOUT': case 'ERR_HTTP_CONNECT_TIMEOUT': detail = `dial tcp ${addr}: i/o timeout`; break;
    case 'ECONNRESET': case 'EPIPE': detail = `read tcp ${addr}: read: connection reset by peer`; break;
    case 'EHOSTUNREACH': detail = `dial tcp ${addr}: connect: no route to host`; break;
    case 'ENETUNREACH': detail = `dial tcp ${addr}: connect: network is unreachable`; break;
    case 'ERR_HTTP_BODY_TIMEOUT': case 'ERR_HTTP_HEADERS_TIMEOUT':
      detail = 'net/http: request canceled (Client.Timeout exceeded while awaiting headers)'; break;
    case 'ERR_HTTP_RESUME': detail = `the download broke off and could not be resumed: ${c.message ?? e.message}`; break;
    default:
      if (c.code === 'EPROTO' || /wrong version number|ssl|tls|certificate/i.test(String(c.message))) {
        detail = `http: server gave HTTP response to HTTPS client`;
        if (!/wrong version number|packet length too long/i.test(String(c.message))) detail = `x509: ${c.message}`;
      } else detail = String(c.message ?? e?.message ?? err);
  }
  return new UnavailableError(`${goVerb(method)} "${url}": ${detail}`, { cause: err });
}
