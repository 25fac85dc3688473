/**
 * Registry client: Docker Registry HTTP API v2 / OCI distribution over undici.
 *
 * - Endpoints: docker.io → configured mirrors first, then https://registry-1.docker.io. Insecure registries
 *   (config list of host[:port] or CIDRs, plus localhost, 127.0.0.0/8 and ::1 as dockerd allows) are tried
 *   over https without certificate verification, then plain http; everything else https only.
 * - `GET /v2/` pings an endpoint; its `WWW-Authenticate` challenge decides the auth: Bearer (token from the
 *   realm with `repository:<path>:pull` scope, basic credentials when given, cached until expiry) or Basic.
 * - Manifests with docker's Accept list; schema 1 is refused. Blobs follow redirects (credentials are not
 *   forwarded cross-origin). Tags are listed with `Link` pagination.
 * - Registry errors become typed errors worded like dockerd's.
 */
import { Agent, EnvHttpProxyAgent, interceptors, request, type Dispatcher } from 'undici';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { AuthConfig } from '../../api/backend.js';
import type { DaemonConfig } from '../config.js';
import { sha256, isDigest, type Digest } from '../../lib/digest.js';
import {
  InvalidParameterError, NotFoundError, SystemError, UnauthorizedError, UnavailableError, WharfError,
} from '../../lib/errors.js';

export const MEDIA_TYPES = {
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
} as const;

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest,
];

export const SCHEMA1_MESSAGE =
  '[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support is disabled by default ' +
  'and will be removed in an upcoming release. Suggest the author of the image to upgrade the image to image manifest ' +
  'version 2, schema 2 (this engine does not support schema 1 manifests).';

const USER_AGENT = 'wharf/0.1 (linux)';
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ENDPOINT = 'https://registry-1.docker.io';

export interface Endpoint {
  /** "https://host[:port]" (no trailing slash). */
  url: string;
  mirror: boolean;
  /** TLS without certificate verification (insecure registries). */
  insecure: boolean;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ManifestIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface FetchedManifest {
  mediaType: string;
  digest: Digest;
  bytes: Buffer;
  kind: 'index' | 'manifest';
  index?: ManifestIndex;
  manifest?: ImageManifest;
}

// ---------------------------------------------------------------------------------------------------------
// Challenges

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

// ---------------------------------------------------------------------------------------------------------
// Endpoints

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const idx = hostPort.lastIndexOf(':');
  if (idx > 0 && hostPort.indexOf(':') === idx) return hostPort.slice(0, idx);
  return hostPort;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
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

function expand6(ip: string): string {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => parseInt(g || '0', 16).toString(2).padStart(16, '0')).join('');
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

/** Endpoints for a registry domain, in the order dockerd tries them. */
export function resolveEndpoints(domain: string, config: Pick<DaemonConfig, 'registryMirrors' | 'insecureRegistries'>): Endpoint[] {
  const out: Endpoint[] = [];
  if (domain === DOCKER_HUB || domain === 'index.docker.io' || domain === 'registry-1.docker.io') {
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

/** Node's socket errors in Go's words (`dial tcp 127.0.0.1:5000: connect: connection refused`). */
export function goNetError(method: string, url: string, err: unknown): UnavailableError {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string; cause?: unknown };
  const c = (e?.cause ?? e) as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const addr = c.address ? (c.address.includes(':') ? `[${c.address}]:${c.port ?? port}` : `${c.address}:${c.port ?? port}`) : `${u.hostname}:${port}`;
  let detail: string;
  switch (c.code) {
    case 'ECONNREFUSED': detail = `dial tcp ${addr}: connect: connection refused`; break;
    case 'ENOTFOUND': case 'EAI_AGAIN': detail = `dial tcp: lookup ${u.hostname}: no such host`; break;
    case 'ETIMEDOUT': case 'UND_ERR_CONNECT_TIMEOUT': detail = `dial tcp ${addr}: i/o timeout`; break;
    case 'ECONNRESET': case 'UND_ERR_SOCKET': detail = `read tcp ${addr}: read: connection reset by peer`; break;
    case 'EHOSTUNREACH': detail = `dial tcp ${addr}: connect: no route to host`; break;
    case 'ENETUNREACH': detail = `dial tcp ${addr}: connect: network is unreachable`; break;
    default:
      if (c.code === 'EPROTO' || /wrong version number|ssl|tls|certificate/i.test(String(c.message))) {
        detail = `http: server gave HTTP response to HTTPS client`;
        if (!/wrong version number|packet length too long/i.test(String(c.message))) detail = `x509: ${c.message}`;
      } else detail = String(c.message ?? e?.message ?? err);
  }
  return new UnavailableError(`${method} "${url}": ${detail}`, { cause: err });
}

function isNetworkError(err: unknown): boolean {
  return err instanceof UnavailableError;
}

// ---------------------------------------------------------------------------------------------------------
// Client

const agents = new Map<string, Dispatcher>();

function proxyConfigured(): boolean {
  const e = process.env;
  return !!(e.HTTPS_PROXY || e.https_proxy || e.HTTP_PROXY || e.http_proxy);
}

function isLoopbackHost(url: string): boolean {
  const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/**
 * One pooled dispatcher per (TLS verification, proxy) pair. HTTP(S)_PROXY / NO_PROXY are honoured as dockerd
 * does (Go's ProxyFromEnvironment), and like Go, loopback registries never go through a proxy.
 */
function dispatcherFor(insecure: boolean, url?: string): Dispatcher {
  const proxied = proxyConfigured() && !(url && isLoopbackHost(url));
  const key = `${insecure ? 'insecure' : 'secure'}${proxied ? '+proxy' : ''}`;
  let d = agents.get(key);
  if (!d) {
    const connect = { rejectUnauthorized: !insecure, timeout: 15_000 };
    const base: Dispatcher = proxied
      ? new EnvHttpProxyAgent({ connect, requestTls: { rejectUnauthorized: !insecure }, keepAliveTimeout: 10_000 })
      : new Agent({ connect, keepAliveTimeout: 10_000 });
    d = base.compose(interceptors.redirect({ maxRedirections: 10 }));
    agents.set(key, d);
  }
  return d;
}

interface CachedToken { token: string; expires: number }
const tokenCache = new Map<string, CachedToken>();

export interface RepositoryOptions {
  config: Pick<DaemonConfig, 'registryMirrors' | 'insecureRegistries'>;
  auth?: AuthConfig;
  /** Aborts every request. */
  signal?: AbortSignal;
}

interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; dump?(): Promise<void> };
}

/** A repository on a registry: `new Repository('docker.io', 'library/busybox', opts)`. */
export class Repository {
  private endpoint: Endpoint | null = null;
  private challenge: Challenge | null = null;
  /** Endpoints before this index failed (mirrors fall through to the next one). */
  private skip = 0;
  private firstErr: unknown = null;
  private readonly endpoints: Endpoint[];

  constructor(readonly domain: string, readonly path: string, private readonly opts: RepositoryOptions) {
    this.endpoints = resolveEndpoints(domain, opts.config);
  }

  /** The endpoint in use (after `ping`). */
  get baseUrl(): string | null { return this.endpoint?.url ?? null; }

  private credentials(): { username: string; password: string } | null {
    const a = this.opts.auth;
    if (!a) return null;
    if (a.username && a.password) return { username: a.username, password: a.password };
    if (a.auth) {
      const dec = Buffer.from(a.auth, 'base64').toString();
      const i = dec.indexOf(':');
      if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
    }
    return null;
  }

  private async raw(method: string, url: string, headers: Record<string, string>, insecure: boolean): Promise<Response> {
    try {
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': USER_AGENT, ...headers },
        dispatcher: dispatcherFor(insecure, url),
        signal: this.opts.signal,
      });
      return res as unknown as Response;
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw goNetError(method === 'HEAD' ? 'Head' : 'Get', url, err);
    }
  }

  /** Finds a working endpoint with GET /v2/ and records its auth challenge. */
  async ping(): Promise<Endpoint> {
    if (this.endpoint) return this.endpoint;
    let firstErr: unknown = this.firstErr;
    for (const ep of this.endpoints.slice(this.skip)) {
      this.skip++;
      this.challenge = null;
      try {
        const res = await this.raw('GET', `${ep.url}/v2/`, {}, ep.insecure);
        await res.body.dump?.() ?? res.body.text().catch(() => '');
        if (res.statusCode === 401) {
          const h = res.headers['www-authenticate'];
          const chs = parseWWWAuthenticate(Array.isArray(h) ? h.join(', ') : h ?? '');
          this.challenge = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic') ?? null;
        } else if (res.statusCode >= 500 || (res.statusCode !== 200 && ep.mirror)) {
          firstErr ??= new UnavailableError(`Get "${ep.url}/v2/": received unexpected HTTP status: ${res.statusCode}`);
          continue;
        }
        this.endpoint = ep;
        return ep;
      } catch (err) {
        if (!isNetworkError(err)) throw err;
        firstErr ??= err;
      }
    }
    throw firstErr ?? new UnavailableError(`no endpoints found for ${this.domain}`);
  }

  private async authHeader(): Promise<Record<string, string>> {
    const ch = this.challenge;
    if (!ch) return {};
    const creds = this.credentials();
    if (ch.scheme === 'basic') {
      if (!creds) return {};
      return { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` };
    }
    if (ch.scheme !== 'bearer') return {};
    if (this.opts.auth?.registrytoken) return { authorization: `Bearer ${this.opts.auth.registrytoken}` };
    const realm = ch.params.realm;
    if (!realm) return {};
    const service = ch.params.service ?? '';
    const scope = `repository:${this.path}:pull`;
    const key = JSON.stringify([realm, service, scope, creds?.username ?? '', creds?.password ?? '', this.opts.auth?.identitytoken ?? '']);
    const cached = tokenCache.get(key);
    if (cached && cached.expires > Date.now()) return { authorization: `Bearer ${cached.token}` };
    const u = new URL(realm);
    if (service) u.searchParams.set('service', service);
    u.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    let res: Response;
    if (this.opts.auth?.identitytoken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.opts.auth.identitytoken, service, scope, client_id: 'wharf' });
      try {
        res = (await request(realm, {
          method: 'POST', body: form.toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
          dispatcher: dispatcherFor(false, realm), signal: this.opts.signal,
        })) as unknown as Response;
      } catch (err) { throw goNetError('Post', realm, err); }
    } else {
      if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      res = await this.raw('GET', u.toString(), headers, false);
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new UnauthorizedError(`Get "${u.toString()}": unauthorized: incorrect username or password`);
    }
    if (res.statusCode !== 200) throw new UnavailableError(`Get "${u.toString()}": token request failed with status ${res.statusCode}`);
    let body: { token?: string; access_token?: string; expires_in?: number };
    try { body = JSON.parse(text); } catch { throw new SystemError(`invalid token response from ${realm}`); }
    const token = body.token ?? body.access_token;
    if (!token) throw new SystemError(`no token in response from ${realm}`);
    const ttl = Math.max(60, body.expires_in ?? 60) * 1000;
    tokenCache.set(key, { token, expires: Date.now() + ttl - 10_000 });
    return { authorization: `Bearer ${token}` };
  }

  /** An authenticated request against the chosen endpoint. Error statuses become RegistryHttpError. */
  private async call(method: 'GET' | 'HEAD', pathAndQuery: string, headers: Record<string, string> = {}): Promise<Response> {
    for (;;) {
      const ep = await this.ping();
      try {
        return await this.callOnce(ep, method, pathAndQuery, headers, true);
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

  private async callOnce(ep: Endpoint, method: 'GET' | 'HEAD', pathAndQuery: string, headers: Record<string, string>, retryAuth: boolean): Promise<Response> {
    const url = `${ep.url}${pathAndQuery}`;
    if (this.challenge?.scheme === 'basic' && !this.credentials()) {
      throw new UnauthorizedError(`${method === 'HEAD' ? 'Head' : 'Get'} "${url}": no basic auth credentials`);
    }
    const auth = await this.authHeader();
    const res = await this.raw(method, url, { ...headers, ...auth }, ep.insecure);
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    if (res.statusCode === 401 && retryAuth) {
      // a token that expired early, or a registry that only challenges below /v2/: re-read the challenge once
      const h = res.headers['www-authenticate'];
      const chs = parseWWWAuthenticate(Array.isArray(h) ? h.join(', ') : h ?? '');
      const ch = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
      const bearerRetry = ch?.scheme === 'bearer' && (!this.challenge || this.challenge.scheme !== 'bearer' || auth.authorization);
      const basicRetry = ch?.scheme === 'basic' && !this.challenge;
      if (ch && (bearerRetry || basicRetry)) {
        if (method === 'HEAD') await res.body.dump?.(); else await res.body.text().catch(() => '');
        if (ch.scheme === 'bearer' && this.challenge?.scheme === 'bearer') {
          // drop cached tokens for this realm so a fresh one is requested
          for (const k of tokenCache.keys()) if (k.startsWith(JSON.stringify([ch.params.realm ?? '']).slice(0, -1))) tokenCache.delete(k);
        }
        this.challenge = ch;
        return this.callOnce(ep, method, pathAndQuery, headers, false);
      }
    }
    const text = method === 'HEAD' ? '' : await res.body.text().catch(() => '');
    if (method === 'HEAD') await res.body.dump?.();
    let errors: RegistryErrorEntry[] = [];
    try {
      const j = JSON.parse(text) as { errors?: RegistryErrorEntry[] };
      if (Array.isArray(j.errors)) errors = j.errors.filter((e) => e && typeof e.code === 'string');
    } catch { /* not JSON */ }
    if (errors.length === 0) {
      if (res.statusCode === 401) errors = [{ code: 'UNAUTHORIZED', message: 'authentication required' }];
      else if (res.statusCode === 403) errors = [{ code: 'DENIED', message: 'requested access to the resource is denied' }];
      else if (res.statusCode === 404 && pathAndQuery.includes('/manifests/')) errors = [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }];
      else if (res.statusCode === 404 && pathAndQuery.includes('/blobs/')) errors = [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }];
    }
    const msg = errors.length ? errcodeString(errors[0]!) : `${method === 'HEAD' ? 'Head' : 'Get'} "${url}": received unexpected HTTP status: ${res.statusCode}`;
    throw new RegistryHttpError(res.statusCode, url, errors, msg);
  }

  /** GET a manifest by tag or digest; verifies a digest reference; refuses schema 1. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const res = await this.call('GET', `/v2/${this.path}/manifests/${reference}`, { accept: MANIFEST_ACCEPT.join(', ') });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new InvalidParameterError(`manifest verification failed for digest ${reference}`);
    }
    return parseManifest(bytes, digest, String(res.headers['content-type'] ?? ''));
  }

  /** HEAD a manifest: its digest (Docker-Content-Digest), media type and size, or null when unknown. */
  async headManifest(reference: string): Promise<{ digest: Digest | null; mediaType: string; size: number } | null> {
    try {
      const res = await this.call('HEAD', `/v2/${this.path}/manifests/${reference}`, { accept: MANIFEST_ACCEPT.join(', ') });
      await res.body.dump?.();
      const d = String(res.headers['docker-content-digest'] ?? '');
      return { digest: isDigest(d) ? d : null, mediaType: String(res.headers['content-type'] ?? ''), size: Number(res.headers['content-length'] ?? -1) };
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return null;
      throw e;
    }
  }

  /** GET a blob (following redirects). The caller must consume or destroy the body. */
  async fetchBlob(digest: Digest): Promise<{ body: Readable; size: number | null }> {
    const res = await this.call('GET', `/v2/${this.path}/blobs/${digest}`);
    const len = res.headers['content-length'];
    return { body: res.body, size: len !== undefined ? Number(len) : null };
  }

  /** Whole small blob (configs). */
  async fetchBlobBytes(digest: Digest): Promise<Buffer> {
    const { body } = await this.fetchBlob(digest);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** All tags, following `Link: <…?last=…&n=…>; rel="next"` pagination. */
  async tags(): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = `/v2/${this.path}/tags/list?n=1000`;
    const seen = new Set<string>();
    while (next && !seen.has(next)) {
      seen.add(next);
      const res = await this.call('GET', next);
      const j = JSON.parse(await res.body.text()) as { tags?: string[] | null };
      out.push(...(j.tags ?? []));
      next = null;
      const link = res.headers.link;
      const l = Array.isArray(link) ? link.join(', ') : link;
      const m = l ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(l) : null;
      if (m) {
        const u = new URL(m[1]!, this.endpoint!.url);
        next = u.pathname + u.search;
      }
    }
    return out;
  }
}

/** Classifies a manifest's bytes by Content-Type, its mediaType field or its shape. */
export function parseManifest(bytes: Buffer, digest: Digest, contentType: string): FetchedManifest {
  let j: Record<string, unknown>;
  try { j = JSON.parse(bytes.toString('utf8')); } catch { throw new InvalidParameterError(`invalid manifest ${digest}: not JSON`); }
  const ct = contentType.split(';')[0]!.trim();
  const declared = typeof j.mediaType === 'string' ? j.mediaType : '';
  let mediaType = declared || ct;
  if (j.schemaVersion === 1 || mediaType === MEDIA_TYPES.schema1 || mediaType === MEDIA_TYPES.schema1Signed) {
    throw new InvalidParameterError(SCHEMA1_MESSAGE);
  }
  const isIndex = Array.isArray(j.manifests) || mediaType === MEDIA_TYPES.dockerList || mediaType === MEDIA_TYPES.ociIndex;
  if (isIndex) {
    if (!Array.isArray(j.manifests)) throw new InvalidParameterError(`invalid manifest list ${digest}`);
    if (mediaType !== MEDIA_TYPES.dockerList) mediaType = MEDIA_TYPES.ociIndex;
    return { mediaType, digest, bytes, kind: 'index', index: j as unknown as ManifestIndex };
  }
  const cfg = j.config as Descriptor | undefined;
  if (!cfg || !isDigest(String(cfg.digest)) || !Array.isArray(j.layers)) {
    throw new InvalidParameterError(`unsupported manifest format ${mediaType || 'unknown'} (${digest})`);
  }
  for (const l of j.layers as Descriptor[]) {
    if (!l || !isDigest(String(l.digest)) || typeof l.size !== 'number') throw new InvalidParameterError(`invalid layer descriptor in manifest ${digest}`);
  }
  if (mediaType !== MEDIA_TYPES.dockerManifest) mediaType = MEDIA_TYPES.ociManifest;
  return { mediaType, digest, bytes, kind: 'manifest', manifest: j as unknown as ImageManifest };
}

// =========================================================================================================
// Push (added for POST /images/{name}/push; nothing above is changed). A separate session type: push needs
// `pull,push` token scopes (plus `pull` on a mount source), and uploads whose bodies can be replayed after an
// auth challenge, so it does its own challenge handling with the helpers above.

export type BodyFactory = () => Readable | Buffer;

/** A push session against one repository: blob HEAD / cross-repo mount / monolithic upload, manifest PUT. */
export class PushSession {
  private endpoint: Endpoint | null = null;
  private authorization: string | null = null;
  private challenge: Challenge | null = null;
  private pinging: Promise<Endpoint> | null = null;
  /** The endpoint being tried while pinging (its TLS setting picks the dispatcher). */
  private trying: Endpoint | null = null;

  constructor(readonly domain: string, readonly path: string, private readonly opts: RepositoryOptions) {}

  private creds(): { username: string; password: string } | null {
    const a = this.opts.auth;
    if (a?.username && a.password) return { username: a.username, password: a.password };
    if (a?.auth) {
      const dec = Buffer.from(a.auth, 'base64').toString();
      const i = dec.indexOf(':');
      if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
    }
    return null;
  }

  private async send(method: string, url: string, headers: Record<string, string>, body?: Readable | Buffer): Promise<Response> {
    try {
      return (await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': USER_AGENT, ...headers },
        ...(body !== undefined ? { body } : {}),
        dispatcher: dispatcherFor((this.endpoint ?? this.trying)?.insecure ?? false, url),
        signal: this.opts.signal,
      })) as unknown as Response;
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      const m = method[0]! + method.slice(1).toLowerCase();
      throw goNetError(m, url, err);
    }
  }

  /** First endpoint that answers GET /v2/ (mirrors are never pushed to). */
  ping(): Promise<Endpoint> {
    if (this.endpoint) return Promise.resolve(this.endpoint);
    this.pinging ??= this.doPing().finally(() => { this.pinging = null; });
    return this.pinging;
  }

  private async doPing(): Promise<Endpoint> {
    // like dockerd's push, the error of the last endpoint tried is the one reported
    let lastErr: unknown = null;
    for (const ep of resolveEndpoints(this.domain, this.opts.config).filter((e) => !e.mirror)) {
      this.trying = ep;
      try {
        const res = await this.send('GET', `${ep.url}/v2/`, {});
        await res.body.text().catch(() => '');
        if (res.statusCode === 401) this.challenge = this.pickChallenge(res);
        else if (res.statusCode >= 500) { lastErr = new UnavailableError(`Get "${ep.url}/v2/": received unexpected HTTP status: ${res.statusCode}`); continue; }
        this.endpoint = ep;
        return ep;
      } catch (err) {
        if (!isNetworkError(err)) throw err;
        lastErr = err;
      }
    }
    throw lastErr ?? new UnavailableError(`no endpoints found for ${this.domain}`);
  }

  private pickChallenge(res: Response): Challenge | null {
    const h = res.headers['www-authenticate'];
    const chs = parseWWWAuthenticate(Array.isArray(h) ? h.join(', ') : h ?? '');
    return chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic') ?? null;
  }

  private async authorize(extraScopes: string[]): Promise<void> {
    const a = await this.authorizationFor(extraScopes);
    if (a !== null) this.authorization = a;
  }

  /** The Authorization value for the current challenge with `pull,push` on this repository plus extraScopes. */
  private async authorizationFor(extraScopes: string[]): Promise<string | null> {
    const ch = this.challenge;
    const creds = this.creds();
    if (!ch) return null;
    if (ch.scheme === 'basic') {
      if (!creds) throw new UnauthorizedError('no basic auth credentials');
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (this.opts.auth?.registrytoken) return `Bearer ${this.opts.auth.registrytoken}`;
    const realm = ch.params.realm;
    if (!realm) return null;
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    u.searchParams.append('scope', `repository:${this.path}:pull,push`);
    for (const s of extraScopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const res = await this.send('GET', u.toString(), headers);
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) throw new UnauthorizedError(`Get "${u.toString()}": unauthorized: incorrect username or password`);
    if (res.statusCode !== 200) throw new UnavailableError(`Get "${u.toString()}": token request failed with status ${res.statusCode}`);
    let body: { token?: string; access_token?: string };
    try { body = JSON.parse(text); } catch { throw new SystemError(`invalid token response from ${realm}`); }
    const token = body.token ?? body.access_token;
    if (!token) throw new SystemError(`no token in response from ${realm}`);
    return `Bearer ${token}`;
  }

  /** An authenticated call; a 401 re-reads the challenge and retries once (the body is made again). */
  private async call(method: string, pathOrUrl: string, headers: Record<string, string>, body?: BodyFactory, extraScopes: string[] = []): Promise<Response> {
    const ep = await this.ping();
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${ep.url}${pathOrUrl}`;
    if (this.challenge && !this.authorization) await this.authorize([]);
    // a bearer token for extra scopes (a mount's source repository) is asked for this call only
    let callAuth = extraScopes.length && this.challenge?.scheme === 'bearer' ? await this.authorizationFor(extraScopes) : null;
    for (let attempt = 0; ; attempt++) {
      const authz = callAuth ?? this.authorization;
      const h = { ...headers, ...(authz ? { authorization: authz } : {}) };
      const res = await this.send(method, url, h, body?.());
      if (res.statusCode === 401 && attempt === 0) {
        await res.body.text().catch(() => '');
        const ch = this.pickChallenge(res);
        if (ch) {
          this.challenge = ch;
          this.authorization = null;
          await this.authorize([]);
          callAuth = extraScopes.length && ch.scheme === 'bearer' ? await this.authorizationFor(extraScopes) : null;
          continue;
        }
      }
      if (res.statusCode >= 200 && res.statusCode < 400) return res;
      const text = await res.body.text().catch(() => '');
      let errors: RegistryErrorEntry[] = [];
      try {
        const j = JSON.parse(text) as { errors?: RegistryErrorEntry[] };
        if (Array.isArray(j.errors)) errors = j.errors.filter((e) => e && typeof e.code === 'string');
      } catch { /* not JSON */ }
      if (errors.length === 0 && res.statusCode === 401) errors = [{ code: 'UNAUTHORIZED', message: 'authentication required' }];
      if (errors.length === 0 && res.statusCode === 403) errors = [{ code: 'DENIED', message: 'requested access to the resource is denied' }];
      const m = method[0]! + method.slice(1).toLowerCase();
      const msg = errors.length ? errcodeString(errors[0]!) : `${m} "${url}": received unexpected HTTP status: ${res.statusCode}`;
      throw new RegistryHttpError(res.statusCode, url, errors, msg);
    }
  }

  /** HEAD /v2/<repo>/blobs/<digest>: whether the registry already has the blob in this repository. */
  async blobExists(digest: Digest): Promise<boolean> {
    try {
      const res = await this.call('HEAD', `/v2/${this.path}/blobs/${digest}`, {});
      await res.body.dump?.();
      return true;
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return false;
      throw e;
    }
  }

  /** HEAD a blob: its size (Content-Length) in this repository, or null when unknown. */
  async blobSize(digest: Digest): Promise<number | null> {
    try {
      const res = await this.call('HEAD', `/v2/${this.path}/blobs/${digest}`, {});
      await res.body.dump?.();
      const n = Number(res.headers['content-length'] ?? NaN);
      return Number.isFinite(n) ? n : null;
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return null;
      throw e;
    }
  }

  private location(res: Response, base: string): string {
    const loc = String(res.headers.location ?? '');
    if (!loc) throw new SystemError('registry gave no upload location');
    return new URL(loc, base).toString();
  }

  /** Cross-repository mount from `fromPath` (same registry). True when mounted; false when the registry declined. */
  async mountBlob(digest: Digest, fromPath: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from: fromPath });
    const res = await this.call('POST', `/v2/${this.path}/blobs/uploads/?${q}`, { 'content-length': '0' }, undefined, [`repository:${fromPath}:pull`]);
    await res.body.text().catch(() => '');
    if (res.statusCode === 201) return true;
    // 202: an upload session was opened instead; cancel it
    try {
      const loc = this.location(res, this.endpoint!.url);
      const del = await this.call('DELETE', loc, {});
      await del.body.text().catch(() => '');
    } catch { /* best effort */ }
    return false;
  }

  /** Monolithic upload: POST /blobs/uploads/, then PUT <location>?digest= with the whole body. */
  async uploadBlob(digest: Digest, size: number, body: BodyFactory): Promise<void> {
    const start = await this.call('POST', `/v2/${this.path}/blobs/uploads/`, { 'content-length': '0' });
    await start.body.text().catch(() => '');
    const u = new URL(this.location(start, this.endpoint!.url));
    u.searchParams.set('digest', digest);
    const res = await this.call('PUT', u.toString(), { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body);
    await res.body.text().catch(() => '');
  }

  /**
   * Streamed (chunked) upload, as dockerd pushes: POST /blobs/uploads/, one PATCH whose body is `body` as it is
   * produced (chunked transfer encoding, no length known in advance), then `finish()` says whether to commit —
   * it returns the digest (PUT <location>?digest=) or null to cancel the session (DELETE).
   */
  async uploadBlobStreamed(body: Readable, finish: () => Digest | null): Promise<void> {
    const start = await this.call('POST', `/v2/${this.path}/blobs/uploads/`, { 'content-length': '0' });
    await start.body.text().catch(() => '');
    const loc = this.location(start, this.endpoint!.url);
    let patchLoc: string;
    try {
      const patch = await this.call('PATCH', loc, { 'content-type': 'application/octet-stream' }, () => body);
      await patch.body.text().catch(() => '');
      patchLoc = this.location(patch, this.endpoint!.url);
    } catch (e) {
      await this.call('DELETE', loc, {}).then((r) => r.body.text(), () => '').catch(() => '');
      throw e;
    }
    const digest = finish();
    if (digest === null) {
      await this.call('DELETE', patchLoc, {}).then((r) => r.body.text(), () => '').catch(() => '');
      return;
    }
    const u = new URL(patchLoc);
    u.searchParams.set('digest', digest);
    const res = await this.call('PUT', u.toString(), { 'content-length': '0' });
    await res.body.text().catch(() => '');
  }

  /** PUT /v2/<repo>/manifests/<tag>. Returns the digest the registry reports (or the bytes' digest). */
  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const res = await this.call('PUT', `/v2/${this.path}/manifests/${reference}`, { 'content-type': mediaType, 'content-length': String(bytes.length) }, () => bytes);
    await res.body.text().catch(() => '');
    const d = String(res.headers['docker-content-digest'] ?? '');
    return isDigest(d) ? d : sha256(bytes);
  }
}
