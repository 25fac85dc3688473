/**
 * The registry transport: the one HTTP client under pull (`Repository`), push (`PushSession`), login and search.
 *
 * - Endpoints: docker.io → configured mirrors first, then https://registry-1.docker.io. Insecure registries
 *   (config list of host[:port] or CIDRs, plus localhost, 127.0.0.0/8 and ::1 as dockerd allows) are tried over
 *   https without certificate verification, then plain http; everything else https only.
 * - Requests: the daemon's one HTTP client, `lib/httpclient.ts` (node:http / node:https keep-alive pools per TLS
 *   verification and proxy; HTTP(S)_PROXY / NO_PROXY, loopback never proxied). Idempotent requests only (GET/HEAD
 *   and token fetches) are retried: connection resets, 5xx, 429 with Retry-After; exponential backoff, bounded tries
 *   and a cap on each wait, so on the total; a body that breaks mid-way resumes with a Range request. Redirects are
 *   followed, each hop retried on its own; one to another origin (S3-style blob storage) drops Authorization.
 * - Auth: `GET /v2/` pings an endpoint; its `WWW-Authenticate` challenge decides: Basic with the credentials,
 *   or Bearer tokens from the realm per scope set (basic credentials on a GET, or the refresh-token grant with an
 *   identity token), cached until they expire and fetched again then or after a 401.
 * - Errors: registry `{"errors":[…]}` bodies become `RegistryHttpError` worded like distribution's errcode;
 *   socket errors are worded like Go's net errors.
 * - Limits on everything read into memory (`LIMITS`): a hostile registry's manifest, token answer, error body or
 *   listing cannot exhaust the daemon; past the limit the connection is dropped and the error names the limit.
 */
import { http } from '../../lib/nodehttp.js';
import { isIP } from 'node:net';
import {
  DEFAULT_HTTP_POLICY, IDEMPOTENT, RETRY_STATUSES, ResponseBody, closeAgents, dump, goNetError, goVerb, request, type HttpPolicy, type HttpResponse, type RetryRule,
} from '../../lib/httpclient.js';
import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE } from '../../lib/oci/mediatypes.js';
import { Readable } from 'node:stream';
import type { AuthConfig } from '../../wire/index.js';
import type { DaemonConfig } from '../config.js';
import { SystemError, UnauthorizedError, UnavailableError, WharfError } from '../../lib/errors.js';
import { DEFAULT_REGISTRY_HOST, isDockerHub } from '../../lib/reference.js';

export const USER_AGENT = 'wharf/0.1 (linux)';
const DOCKER_HUB_ENDPOINT = `https://${DEFAULT_REGISTRY_HOST}`;

/**
 * Caps on bodies read into memory. Manifests: 4 MiB, the figure distribution's server accepts
 * (registry/handlers/manifests.go `maxManifestBodySize = 4 << 20`) and containers/image's client enforces
 * (internal/iolimits `MaxManifestBodySize = 4 * megaByte`); token answers and error bodies 1 MiB
 * (iolimits `MaxAuthTokenBodySize`, `MaxErrorBodySize`); image configs 8 MiB (iolimits has 4 MiB: twice that for
 * images with long histories); listings (tags, catalog and search pages) 8 MiB.
 */
export const LIMITS = {
  manifest: MAX_MANIFEST_SIZE,
  token: 1 << 20,
  errorBody: 1 << 20,
  config: MAX_CONFIG_SIZE,
  listing: 8 << 20,
} as const;

/** Retry policy of idempotent requests. */
export interface RetryPolicy {
  /** Retries after the first try. */
  maxRetries: number;
  /** First backoff (ms), doubled each time. */
  minTimeout: number;
  /** Longest single wait (ms), Retry-After included: maxRetries × maxTimeout bounds the total. */
  maxTimeout: number;
  /** A body that sends nothing for this long (ms) fails (and is retried or resumed). */
  bodyTimeout: number;
}

let policy: HttpPolicy = { ...DEFAULT_HTTP_POLICY };

/** Changes the retry policy (tests shorten the waits); the pools' idle connections are dropped. */
export function setRetryPolicy(p: Partial<RetryPolicy> | null): void {
  policy = { ...DEFAULT_HTTP_POLICY, ...(p ?? {}) };
  closeAgents();
}

// ---------------------------------------------------------------------------------------------------------
// Endpoints

export interface Endpoint {
  /** "https://host[:port]" (no trailing slash). */
  url: string;
  mirror: boolean;
  /** TLS without certificate verification (insecure registries). */
  insecure: boolean;
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const idx = hostPort.lastIndexOf(':');
  if (idx > 0 && hostPort.indexOf(':') === idx) return hostPort.slice(0, idx);
  return hostPort;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
}

function expand6(ip: string): string {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => parseInt(g || '0', 16).toString(2).padStart(16, '0')).join('');
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsS] = cidr.split('/');
  const bits = Number(bitsS);
  if (!net || !Number.isInteger(bits)) return false;
  if (isIP(ip) === 4 && isIP(net) === 4) {
    if (bits === 0) return true;
    const mask = (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(ip) & mask) === (ipv4ToInt(net) & mask);
  }
  if (isIP(ip) === 6 && isIP(net) === 6) return expand6(ip).slice(0, bits) === expand6(net).slice(0, bits);
  return false;
}

/** Whether dockerd would talk to this registry host[:port] insecurely. */
export function isInsecureRegistry(hostPort: string, insecure: readonly string[]): boolean {
  const host = hostOnly(hostPort).toLowerCase();
  if (host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))) return true;
  for (const entry of insecure) {
    const e = entry.replace(/^https?:\/\//, '').replace(/\/$/, '').toLowerCase();
    if (e.includes('/')) { if (isIP(host) && inCidr(host, e)) return true; continue; }
    if (e === hostPort.toLowerCase() || e === host) return true;
  }
  return false;
}

/** Endpoints for a registry domain, in the order dockerd tries them (no mirrors: push, login). */
export function resolveEndpoints(domain: string, config: Pick<DaemonConfig, 'registryMirrors' | 'insecureRegistries'>): Endpoint[] {
  const out: Endpoint[] = [];
  if (isDockerHub(domain)) {
    for (const m of config.registryMirrors) {
      const url = m.replace(/\/+$/, '');
      const mh = url.replace(/^https?:\/\//, '');
      out.push({ url: /^https?:\/\//.test(url) ? url : `https://${url}`, mirror: true, insecure: isInsecureRegistry(mh, config.insecureRegistries) });
    }
    out.push({ url: DOCKER_HUB_ENDPOINT, mirror: false, insecure: false });
    return out;
  }
  const insecure = isInsecureRegistry(domain, config.insecureRegistries);
  out.push({ url: `https://${domain}`, mirror: false, insecure });
  if (insecure) out.push({ url: `http://${domain}`, mirror: false, insecure: true });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Challenges and credentials

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header: one or more challenges `Scheme k=v, k2="quoted, v"`; scheme names are
 * lowercased; parameter names lowercased; quoted values unescaped.
 */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++; };
  const token = () => {
    const start = i;
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipWs();
    while (s[i] === ',') { i++; skipWs(); }
    if (i >= s.length) break;
    const scheme = token();
    if (!scheme) { i++; continue; }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // parameters until the next scheme (a token not followed by '=')
    for (;;) {
      skipWs();
      const save = i;
      const name = token();
      skipWs();
      if (!name || s[i] !== '=') { i = save; break; }
      i++; // '='
      skipWs();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
        value = s.slice(start, i);
      }
      ch.params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] === ',') { i++; continue; }
      break;
    }
  }
  return out;
}

/** The challenge a response asks for: Bearer preferred over Basic; null when none. */
export function pickChallenge(h: string | string[] | undefined): Challenge | null {
  const chs = parseWWWAuthenticate(Array.isArray(h) ? h.join(', ') : h ?? '');
  return chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic') ?? null;
}

/** user/password from an AuthConfig (explicit fields, else the base64 `auth` field). */
export function credentialsOf(a: AuthConfig | undefined): { username: string; password: string } | null {
  if (!a) return null;
  if (a.username && a.password) return { username: a.username, password: a.password };
  if (a.auth) {
    const dec = Buffer.from(a.auth, 'base64').toString();
    const i = dec.indexOf(':');
    if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
  }
  return null;
}

export function basicHeader(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/** One entry of a registry's `{"errors":[…]}` body. */
export interface RegistryErrorEntry { code: string; message?: string; detail?: unknown }

/** errcode.Error.Error(): "manifest unknown: manifest unknown". */
export function errcodeString(e: RegistryErrorEntry): string {
  const codeText = e.code.toLowerCase().replace(/_/g, ' ');
  return `${codeText}: ${e.message ?? codeText}`;
}

/** A registry answered with an error status; carries the parsed errcode entries. */
export class RegistryHttpError extends WharfError {
  constructor(readonly status: number, readonly url: string, readonly errors: RegistryErrorEntry[], message: string) {
    super(message);
  }
}

/** A body bigger than its limit: the connection was dropped, nothing more was read. */
export class ResponseTooLargeError extends SystemError {
  constructor(readonly url: string, readonly limit: number, what: string, method = 'GET') {
    super(`${goVerb(method)} "${url}": ${what} exceeds the limit of ${limit} bytes (${humanBytes(limit)}); the registry's answer was refused`);
  }
}

function humanBytes(n: number): string {
  return n % (1 << 20) === 0 ? `${n >> 20} MiB` : n % 1024 === 0 ? `${n >> 10} KiB` : `${n} B`;
}

export { goNetError, goVerb };

// ---------------------------------------------------------------------------------------------------------
// Requests

export type RegistryResponse = HttpResponse;

export interface SendOptions {
  insecure: boolean;
  headers?: Record<string, string>;
  body?: Readable | Buffer | string;
  signal?: AbortSignal | undefined;
  /**
   * Retries: 'idempotent' (default) for GET/HEAD, 'token' also retries this POST (a token grant),
   * 'connection' retries only resets (pings: a 5xx endpoint hands over to the next one), 'none'.
   */
  retry?: 'idempotent' | 'token' | 'connection' | 'none';
}

const RETRY: Record<NonNullable<SendOptions['retry']>, RetryRule | null> = {
  idempotent: IDEMPOTENT,
  token: { methods: ['GET', 'HEAD', 'POST'], statuses: RETRY_STATUSES },
  connection: { methods: ['GET', 'HEAD'], statuses: [] },
  none: null,
};

/** One request through the shared pools. Socket errors become Go-worded UnavailableErrors. */
export async function send(method: string, url: string, o: SendOptions): Promise<RegistryResponse> {
  try {
    return await request(method, url, {
      headers: { 'user-agent': USER_AGENT, ...o.headers }, body: o.body, signal: o.signal, insecure: o.insecure,
      retry: RETRY[o.retry ?? 'idempotent'], policy,
    });
  } catch (err) {
    if ((err as Error)?.name === 'AbortError') throw err;
    throw goNetError(method, url, err);
  }
}

/**
 * Reads a whole body, at most `limit` bytes: a Content-Length above it, or more bytes than it, drops the
 * connection and throws `ResponseTooLargeError` naming the limit.
 */
export async function readCapped(res: RegistryResponse, limit: number, what: string, method: string, url: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new ResponseTooLargeError(url, limit, what, method);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > limit) {
        res.body.destroy();
        throw new ResponseTooLargeError(url, limit, what, method);
      }
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof WharfError || (err as Error)?.name === 'AbortError') throw err;
    throw goNetError(method, url, err);
  }
  return Buffer.concat(chunks);
}

/** Throws away a body without reading it into memory. */
export async function discard(res: RegistryResponse): Promise<void> {
  await dump(res.body);
}

export interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** One request with its whole (capped) body: login, search, token grants. */
export async function fetchAll(method: string, url: string, o: SendOptions & { limit: number; what: string }): Promise<Answer> {
  const res = await send(method, url, o);
  const body = method === 'HEAD' ? (await discard(res), Buffer.alloc(0)) : await readCapped(res, o.limit, o.what, method, url);
  return { status: res.statusCode, headers: res.headers as Answer['headers'], body };
}

/**
 * A registry error answer as a `RegistryHttpError`: its errcode entries (the body read up to
 * `LIMITS.errorBody`), or docker's defaults for bare 401/403/404/429 answers.
 */
export async function decodeError(method: string, url: string, res: RegistryResponse): Promise<RegistryHttpError> {
  let text = '';
  let tooLarge = false;
  if (method === 'HEAD') await discard(res);
  else {
    try { text = (await readCapped(res, LIMITS.errorBody, 'error body', method, url)).toString('utf8'); } catch (e) {
      if (!(e instanceof ResponseTooLargeError)) throw e;
      tooLarge = true;
    }
  }
  let errors: RegistryErrorEntry[] = [];
  try {
    const j = JSON.parse(text) as { errors?: RegistryErrorEntry[] };
    if (Array.isArray(j.errors)) errors = j.errors.filter((e) => e && typeof e.code === 'string');
  } catch { /* not JSON */ }
  const status = res.statusCode;
  if (errors.length === 0) {
    const path = new URL(url).pathname;
    const read = method === 'GET' || method === 'HEAD';
    if (status === 401) errors = [{ code: 'UNAUTHORIZED', message: 'authentication required' }];
    else if (status === 403) errors = [{ code: 'DENIED', message: 'requested access to the resource is denied' }];
    else if (status === 429) errors = [{ code: 'TOOMANYREQUESTS', message: 'too many requests' }];
    else if (status === 404 && read && path.includes('/manifests/')) errors = [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }];
    else if (status === 404 && read && path.includes('/blobs/')) errors = [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }];
  }
  const suffix = tooLarge ? ` (error body larger than the ${humanBytes(LIMITS.errorBody)} limit, not read)` : '';
  const msg = errors.length ? errcodeString(errors[0]!) : `${goVerb(method)} "${url}": received unexpected HTTP status: ${status} ${http.STATUS_CODES[status] ?? ''}`.trimEnd() + suffix;
  return new RegistryHttpError(status, url, errors, msg);
}

// ---------------------------------------------------------------------------------------------------------
// Tokens

export interface TokenAnswer { token: string; refreshToken?: string }

interface CachedToken { token: string; expires: number }
const tokenCache = new Map<string, CachedToken>();

function tokenKey(ch: Challenge, scopes: string[], auth: AuthConfig | undefined): string {
  const c = credentialsOf(auth);
  return JSON.stringify([ch.params.realm ?? '', ch.params.service ?? '', [...scopes].sort(), c?.username ?? '', c?.password ?? '', auth?.identitytoken ?? '']);
}

/** Forgets the cached token of these scopes (the registry refused it). */
export function forgetToken(ch: Challenge, scopes: string[], auth: AuthConfig | undefined): void {
  tokenCache.delete(tokenKey(ch, scopes, auth));
}

/**
 * A Bearer token from a challenge's realm for the given scopes, cached until it expires (`expires_in`, at least
 * 60 s as the token spec says, less 10 s of margin). With an identity token: the refresh-token grant (POST);
 * else GET with basic credentials; `offline` (login) asks for a refresh token to hand back as identity and
 * bypasses the cache.
 */
export async function getToken(
  ch: Challenge, scopes: string[], auth: AuthConfig | undefined, insecure: boolean, opts: { offline?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<TokenAnswer> {
  const realm = ch.params.realm;
  if (!realm) throw new SystemError('bearer challenge without realm');
  const key = tokenKey(ch, scopes, auth);
  if (!opts.offline) {
    const hit = tokenCache.get(key);
    if (hit && hit.expires > Date.now()) return { token: hit.token };
  }
  const creds = credentialsOf(auth);
  let ans: Answer;
  let shown: string;
  const o = { insecure, signal: opts.signal, limit: LIMITS.token, what: 'token response', retry: 'token' as const };
  if (auth?.identitytoken) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', auth.identitytoken);
    if (ch.params.service) form.set('service', ch.params.service);
    form.set('client_id', 'docker');
    if (scopes.length) form.set('scope', scopes.join(' '));
    if (opts.offline) form.set('access_type', 'offline');
    shown = realm;
    ans = await fetchAll('POST', realm, { ...o, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  } else {
    const u = new URL(realm);
    if (creds && opts.offline) { u.searchParams.set('account', creds.username); u.searchParams.set('client_id', 'docker'); u.searchParams.set('offline_token', 'true'); }
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    shown = u.toString();
    ans = await fetchAll('GET', shown, { ...o, headers: creds ? { authorization: basicHeader(creds) } : {} });
  }
  if (ans.status === 401 || ans.status === 403) throw new UnauthorizedError(`Get "${shown}": ${tokenErrorText(ans)}`);
  if (ans.status !== 200) throw new SystemError(`token request to ${shown} failed with status: ${ans.status} ${http.STATUS_CODES[ans.status] ?? ''}`.trim());
  let j: Record<string, unknown>;
  try { j = JSON.parse(ans.body.toString()) as Record<string, unknown>; } catch { throw new SystemError(`unable to decode token response from ${shown}`); }
  const token = (j.token ?? j.access_token) as string | undefined;
  if (!token || typeof token !== 'string') throw new SystemError(`no token in the response from ${shown}`);
  const ttl = Math.max(60, Number(j.expires_in) || 60) * 1000;
  tokenCache.set(key, { token, expires: Date.now() + ttl - 10_000 });
  return { token, ...(typeof j.refresh_token === 'string' ? { refreshToken: j.refresh_token } : {}) };
}

/**
 * A token server's refusal in docker's words (distribution's HandleErrorResponse): Docker Hub's
 * `{"details": …}`, an errcode list (`unauthorized: invalid username or password`), else
 * `unauthorized: authentication required`.
 */
function tokenErrorText(ans: Answer): string {
  try {
    const j = JSON.parse(ans.body.toString()) as { details?: unknown; errors?: { code?: string; message?: string }[] };
    if (typeof j.details === 'string' && j.details !== '') return `unauthorized: ${j.details}`;
    const e = j.errors?.[0];
    if (e?.code) return errcodeString({ code: e.code, ...(e.message ? { message: e.message } : {}) });
  } catch { /* not JSON */ }
  return 'unauthorized: authentication required';
}

// ---------------------------------------------------------------------------------------------------------
// Sessions

export type BodyFactory = () => Readable | Buffer;

export interface SessionOptions {
  auth?: AuthConfig | undefined;
  signal?: AbortSignal | undefined;
  /** Token scopes of every request (`repository:<path>:pull`, `…:pull,push`, `registry:catalog:*`). */
  scopes: string[];
  /** When no endpoint answers: dockerd's pull reports the first failure, its push the last. */
  report?: 'first' | 'last';
  /** false: use the first endpoint without `GET /v2/`; the challenge is learnt from the first 401. */
  ping?: boolean;
}

export interface CallOptions {
  headers?: Record<string, string>;
  /** Made again when the call is repeated after a 401. */
  body?: BodyFactory;
  /** Scopes for this call only (a mount's source repository). */
  scopes?: string[];
}

/**
 * One registry host for one set of scopes: finds an endpoint (`ping`), authenticates every call (a 401 re-reads
 * the challenge, drops the refused token and repeats the call once), falls from a failing mirror to the next
 * endpoint, and turns error answers into `RegistryHttpError`.
 */
export class RegistrySession {
  private endpoint: Endpoint | null = null;
  private challenge: Challenge | null = null;
  /** Endpoints before this index failed (mirrors fall through to the next one). */
  private skip = 0;
  private firstErr: unknown = null;
  private pinging: Promise<Endpoint> | null = null;

  constructor(readonly domain: string, private readonly endpoints: Endpoint[], private readonly opts: SessionOptions) {}

  /** The endpoint in use (after `ping`). */
  get baseUrl(): string | null { return this.endpoint?.url ?? null; }

  /** Finds a working endpoint with GET /v2/ and records its auth challenge. */
  ping(): Promise<Endpoint> {
    if (this.endpoint) return Promise.resolve(this.endpoint);
    if (this.opts.ping === false && this.skip === 0 && this.endpoints[0]) {
      this.skip = 1;
      this.endpoint = this.endpoints[0];
      return Promise.resolve(this.endpoint);
    }
    this.pinging ??= this.doPing().finally(() => { this.pinging = null; });
    return this.pinging;
  }

  private async doPing(): Promise<Endpoint> {
    let lastErr: unknown = null;
    const fail = (e: unknown) => { this.firstErr ??= e; lastErr = e; };
    for (const ep of this.endpoints.slice(this.skip)) {
      this.skip++;
      this.challenge = null;
      const url = `${ep.url}/v2/`;
      try {
        const res = await send('GET', url, { insecure: ep.insecure, signal: this.opts.signal, retry: 'connection' });
        await discard(res);
        if (res.statusCode === 401) this.challenge = pickChallenge(res.headers['www-authenticate']);
        else if (res.statusCode >= 500 || (res.statusCode !== 200 && ep.mirror)) {
          fail(new UnavailableError(`Get "${url}": received unexpected HTTP status: ${res.statusCode} ${http.STATUS_CODES[res.statusCode] ?? ''}`.trimEnd()));
          continue;
        }
        this.endpoint = ep;
        return ep;
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        fail(err);
      }
    }
    throw (this.opts.report === 'last' ? lastErr : this.firstErr) ?? new UnavailableError(`no endpoints found for ${this.domain}`);
  }

  /** The Authorization value for the current challenge and these scopes (null: none needed or possible). */
  private async authorization(method: string, url: string, scopes: string[]): Promise<string | null> {
    const ch = this.challenge;
    if (!ch) return null;
    const creds = credentialsOf(this.opts.auth);
    if (ch.scheme === 'basic') {
      if (!creds) throw new UnauthorizedError(`${goVerb(method)} "${url}": no basic auth credentials`);
      return basicHeader(creds);
    }
    if (ch.scheme !== 'bearer') return null;
    if (this.opts.auth?.registrytoken) return `Bearer ${this.opts.auth.registrytoken}`;
    if (!ch.params.realm) return null;
    const t = await getToken(ch, scopes, this.opts.auth, this.endpoint?.insecure ?? false, { signal: this.opts.signal });
    return `Bearer ${t.token}`;
  }

  /** An authenticated request against the chosen endpoint; error statuses (≥ 400) become RegistryHttpError. */
  async request(method: string, pathOrUrl: string, o: CallOptions = {}): Promise<RegistryResponse> {
    for (;;) {
      const ep = await this.ping();
      try {
        return await this.once(ep, method, pathOrUrl, o, true);
      } catch (e) {
        // a mirror that fails (unreachable, 5xx, or lacks the content) hands over to the next endpoint
        const fallThrough = ep.mirror && this.skip < this.endpoints.length &&
          (e instanceof UnavailableError || (e instanceof RegistryHttpError && e.status !== 401 && e.status !== 403));
        if (!fallThrough) throw e;
        this.firstErr ??= e;
        this.endpoint = null;
      }
    }
  }

  private async once(ep: Endpoint, method: string, pathOrUrl: string, o: CallOptions, retryAuth: boolean): Promise<RegistryResponse> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${ep.url}${pathOrUrl}`;
    const scopes = [...this.opts.scopes, ...(o.scopes ?? [])];
    const authz = await this.authorization(method, url, scopes);
    const res = await send(method, url, {
      insecure: ep.insecure, signal: this.opts.signal,
      headers: { ...o.headers, ...(authz ? { authorization: authz } : {}) },
      ...(o.body ? { body: o.body() } : {}),
    });
    if (res.statusCode < 400) return res;
    if (res.statusCode === 401 && retryAuth) {
      // a token that expired early, or a registry that only challenges below /v2/: re-read the challenge once
      const ch = pickChallenge(res.headers['www-authenticate']);
      const bearerRetry = ch?.scheme === 'bearer' && (this.challenge?.scheme !== 'bearer' || authz !== null);
      const basicRetry = ch?.scheme === 'basic' && this.challenge?.scheme !== 'basic';
      if (ch && (bearerRetry || basicRetry)) {
        await discard(res);
        if (this.challenge?.scheme === 'bearer') forgetToken(this.challenge, scopes, this.opts.auth);
        if (ch.scheme === 'bearer') forgetToken(ch, scopes, this.opts.auth);
        this.challenge = ch;
        return this.once(ep, method, pathOrUrl, o, false);
      }
    }
    throw await decodeError(method, url, res);
  }

  /** GET a document into memory, at most `limit` bytes. */
  async getCapped(pathOrUrl: string, limit: number, what: string, headers: Record<string, string> = {}): Promise<{ res: RegistryResponse; bytes: Buffer }> {
    const res = await this.request('GET', pathOrUrl, { headers });
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.endpoint!.url}${pathOrUrl}`;
    return { res, bytes: await readCapped(res, limit, what, 'GET', url) };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Blob bodies

/**
 * A blob body that survives a break: the HTTP client (`lib/httpclient.ts`) resumes a body by a Range request; when
 * the registry ignores Range, or the object changed, the download starts over (`reopen`) and the bytes already
 * delivered are skipped, at most `maxRestarts` times. The consumer sees one continuous stream of the blob's bytes
 * (its digest check still decides): the client's own body stream, no second one on top.
 */
export function resumableBody(first: Readable, reopen: () => Promise<Readable>, maxRestarts = 3): Readable {
  const body = first instanceof ResponseBody ? first : new ResponseBody(first, null, policy, undefined);
  return body.restartWith(reopen, maxRestarts);
}
