/**
 * Registry client: Docker Registry HTTP API v2 / OCI distribution, on the shared transport (`transport.ts`:
 * endpoints, auth, retries, redirects, limits, error decoding).
 *
 * - `Repository` (pull): manifests with docker's Accept list (schema 1 refused, digest references verified,
 *   at most `LIMITS.manifest` bytes), blobs as streams that survive a broken connection, small blobs (configs)
 *   into memory with a cap, tags with `Link` pagination. Scope `repository:<path>:pull`; mirrors first for
 *   docker.io.
 * - `PushSession` (push): blob HEAD, cross-repository mount, monolithic and streamed uploads, manifest PUT.
 *   Scope `repository:<path>:pull,push` (plus `pull` on a mount source); uploads are never retried blindly.
 */
import type { Readable } from 'node:stream';
import type { AuthConfig } from '../../wire/index.js';
import type { DaemonConfig } from '../config.js';
import { sha256, isDigest, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import { MANIFEST_ACCEPT } from '../../lib/oci/mediatypes.js';
import {
  ManifestError, parseManifest as parseOciManifest, type ImageIndex, type ImageManifest, type ParsedManifest,
} from '../../lib/oci/manifest.js';
import {
  LIMITS, RegistryHttpError, RegistrySession, discard, resolveEndpoints, resumableBody, type BodyFactory,
  type Endpoint, type RegistryResponse,
} from './transport.js';

export { RegistryHttpError, errcodeString, type RegistryErrorEntry, type BodyFactory } from './transport.js';

export const SCHEMA1_MESSAGE =
  '[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support is disabled by default ' +
  'and will be removed in an upcoming release. Suggest the author of the image to upgrade the image to image manifest ' +
  'version 2, schema 2 (this engine does not support schema 1 manifests).';

const USER_AGENT = 'wharf/0.1 (linux)';

export interface FetchedManifest {
  mediaType: string;
  digest: Digest;
  bytes: Buffer;
  kind: 'index' | 'manifest';
  index?: ImageIndex;
  manifest?: ImageManifest;
}


export interface RepositoryOptions {
  config: Pick<DaemonConfig, 'registryMirrors' | 'insecureRegistries'>;
  auth?: AuthConfig | undefined;
  /** Aborts every request. */
  signal?: AbortSignal | undefined;
}

/** A repository on a registry, for pulling: `new Repository('docker.io', 'library/busybox', opts)`. */
export class Repository {
  private readonly session: RegistrySession;

  constructor(readonly domain: string, readonly path: string, opts: RepositoryOptions) {
    this.session = new RegistrySession(domain, resolveEndpoints(domain, opts.config), {
      auth: opts.auth, signal: opts.signal, scopes: [`repository:${path}:pull`], report: 'first',
    });
  }

  /** The endpoint in use (after `ping`). */
  get baseUrl(): string | null { return this.session.baseUrl; }

  ping(): Promise<Endpoint> { return this.session.ping(); }

  /** GET a manifest by tag or digest; verifies a digest reference; refuses schema 1. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const { res, bytes } = await this.session.getCapped(`/v2/${this.path}/manifests/${reference}`, LIMITS.manifest, 'manifest', { accept: MANIFEST_ACCEPT.join(', ') });
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new InvalidParameterError(`manifest verification failed for digest ${reference}`);
    }
    return parseManifest(bytes, digest, String(res.headers['content-type'] ?? ''));
  }

  /** HEAD a manifest: its digest (Docker-Content-Digest), media type and size, or null when unknown. */
  async headManifest(reference: string): Promise<{ digest: Digest | null; mediaType: string; size: number } | null> {
    try {
      const res = await this.session.request('HEAD', `/v2/${this.path}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT.join(', ') } });
      await discard(res);
      const d = String(res.headers['docker-content-digest'] ?? '');
      return { digest: isDigest(d) ? d : null, mediaType: String(res.headers['content-type'] ?? ''), size: Number(res.headers['content-length'] ?? -1) };
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return null;
      throw e;
    }
  }

  /**
   * GET a blob (following redirects; the registry's credentials stay with the registry). The body resumes or
   * restarts after a broken connection. The caller must consume or destroy it.
   */
  async fetchBlob(digest: Digest): Promise<{ body: Readable; size: number | null }> {
    const path = `/v2/${this.path}/blobs/${digest}`;
    const res = await this.session.request('GET', path);
    const len = res.headers['content-length'];
    const body = resumableBody(res.body, async () => (await this.session.request('GET', path)).body);
    return { body, size: len !== undefined ? Number(len) : null };
  }

  /** A whole small blob (configs), at most `LIMITS.config` bytes. */
  async fetchBlobBytes(digest: Digest): Promise<Buffer> {
    return (await this.session.getCapped(`/v2/${this.path}/blobs/${digest}`, LIMITS.config, 'image config')).bytes;
  }

  /** All tags, following `Link: <…?last=…&n=…>; rel="next"` pagination. */
  async tags(): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = `/v2/${this.path}/tags/list?n=1000`;
    const seen = new Set<string>();
    while (next && !seen.has(next)) {
      seen.add(next);
      const { res, bytes } = await this.session.getCapped(next, LIMITS.listing, 'tag list');
      let j: { tags?: string[] | null };
      try { j = JSON.parse(bytes.toString('utf8')) as typeof j; } catch { throw new SystemError(`invalid tag list from ${this.domain}/${this.path}`); }
      out.push(...(j.tags ?? []));
      next = null;
      const link = res.headers.link;
      const l = Array.isArray(link) ? link.join(', ') : link;
      const m = l ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(l) : null;
      if (m) {
        const u = new URL(m[1]!, this.session.baseUrl!);
        next = u.pathname + u.search;
      }
    }
    return out;
  }
}

/**
 * Classifies a manifest's bytes by its mediaType field, Content-Type or shape (`lib/oci`'s consumer policy),
 * with the engine's messages.
 */
export function parseManifest(bytes: Buffer, digest: Digest, contentType: string): FetchedManifest {
  let p: ParsedManifest;
  try {
    p = parseOciManifest(bytes, contentType, 'consumer');
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    switch (e.failure) {
      case 'schema1': throw new InvalidParameterError(SCHEMA1_MESSAGE);
      case 'json': throw new InvalidParameterError(`invalid manifest ${digest}: ${e.reason}`, { cause: e });
      case 'index': throw new InvalidParameterError(`invalid manifest list ${digest}`);
      case 'descriptor':
        throw new InvalidParameterError(e.reason.includes('manifests[') ? `invalid manifest list ${digest}` : `invalid layer descriptor in manifest ${digest}`, { cause: e });
      default: throw new InvalidParameterError(`${e.reason} (${digest})`, { cause: e });
    }
  }
  return p.kind === 'index'
    ? { mediaType: p.mediaType, digest, bytes, kind: 'index', index: p.index! }
    : { mediaType: p.mediaType, digest, bytes, kind: 'manifest', manifest: p.manifest! };
}

// =========================================================================================================
// Push

/** A push session against one repository: blob HEAD / cross-repo mount / monolithic upload, manifest PUT. */
export class PushSession {
  private readonly session: RegistrySession;

  constructor(readonly domain: string, readonly path: string, opts: RepositoryOptions) {
    // mirrors are never pushed to; like dockerd's push, the error of the last endpoint tried is the one reported
    this.session = new RegistrySession(domain, resolveEndpoints(domain, opts.config).filter((e) => !e.mirror), {
      auth: opts.auth, signal: opts.signal, scopes: [`repository:${path}:pull,push`], report: 'last',
    });
  }

  /** First endpoint that answers GET /v2/. */
  ping(): Promise<Endpoint> { return this.session.ping(); }

  private get base(): string { return this.session.baseUrl!; }

  /** HEAD a blob: its size (Content-Length) in this repository, or null when the registry lacks it. */
  async blobSize(digest: Digest): Promise<number | null> {
    try {
      const res = await this.session.request('HEAD', `/v2/${this.path}/blobs/${digest}`);
      await discard(res);
      const n = Number(res.headers['content-length'] ?? NaN);
      return Number.isFinite(n) ? n : null;
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return null;
      throw e;
    }
  }

  /** HEAD /v2/<repo>/blobs/<digest>: whether the registry already has the blob in this repository. */
  async blobExists(digest: Digest): Promise<boolean> {
    try {
      await discard(await this.session.request('HEAD', `/v2/${this.path}/blobs/${digest}`));
      return true;
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return false;
      throw e;
    }
  }

  private location(res: RegistryResponse): string {
    const loc = String(res.headers.location ?? '');
    if (!loc) throw new SystemError('registry gave no upload location');
    return new URL(loc, this.base).toString();
  }

  /** Cancels an upload session, best effort. */
  private async cancel(loc: string): Promise<void> {
    await this.session.request('DELETE', loc).then(discard, () => {});
  }

  /** Cross-repository mount from `fromPath` (same registry). True when mounted; false when the registry declined. */
  async mountBlob(digest: Digest, fromPath: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from: fromPath });
    const res = await this.session.request('POST', `/v2/${this.path}/blobs/uploads/?${q}`, { headers: { 'content-length': '0' }, scopes: [`repository:${fromPath}:pull`] });
    await discard(res);
    if (res.statusCode === 201) return true;
    // 202: an upload session was opened instead; cancel it
    try { await this.cancel(this.location(res)); } catch { /* best effort */ }
    return false;
  }

  /** Monolithic upload: POST /blobs/uploads/, then PUT <location>?digest= with the whole body. */
  async uploadBlob(digest: Digest, size: number, body: BodyFactory): Promise<void> {
    const start = await this.session.request('POST', `/v2/${this.path}/blobs/uploads/`, { headers: { 'content-length': '0' } });
    await discard(start);
    const u = new URL(this.location(start));
    u.searchParams.set('digest', digest);
    await discard(await this.session.request('PUT', u.toString(), { headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body }));
  }

  /**
   * Streamed (chunked) upload, as dockerd pushes: POST /blobs/uploads/, one PATCH whose body is `body` as it is
   * produced (chunked transfer encoding, no length known in advance), then `finish()` says whether to commit —
   * it returns the digest (PUT <location>?digest=) or null to cancel the session (DELETE).
   */
  async uploadBlobStreamed(body: Readable, finish: () => Digest | null): Promise<void> {
    const start = await this.session.request('POST', `/v2/${this.path}/blobs/uploads/`, { headers: { 'content-length': '0' } });
    await discard(start);
    const loc = this.location(start);
    let patchLoc: string;
    try {
      const patch = await this.session.request('PATCH', loc, { headers: { 'content-type': 'application/octet-stream' }, body: () => body });
      await discard(patch);
      patchLoc = this.location(patch);
    } catch (e) {
      await this.cancel(loc);
      throw e;
    }
    const digest = finish();
    if (digest === null) { await this.cancel(patchLoc); return; }
    const u = new URL(patchLoc);
    u.searchParams.set('digest', digest);
    await discard(await this.session.request('PUT', u.toString(), { headers: { 'content-length': '0' } }));
  }

  /** PUT /v2/<repo>/manifests/<tag>. Returns the digest the registry reports (or the bytes' digest). */
  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const res = await this.session.request('PUT', `/v2/${this.path}/manifests/${reference}`, { headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: () => bytes });
    await discard(res);
    const d = String(res.headers['docker-content-digest'] ?? '');
    return isDigest(d) ? d : sha256(bytes);
  }
}
