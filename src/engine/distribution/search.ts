/**
 * GET /images/search (dockerd 20.10's SearchRegistryForImages + registry.Service.Search).
 *
 * - `term` may start with a registry (`localhost:5000/busy`: a first component with `.` or `:` or
 *   `localhost`); otherwise the Docker Hub index `https://index.docker.io/v1/search?q=<term>&n=<limit>` is asked.
 * - A private registry is pinged at `/v1/_ping` (https, then http when insecure, with dockerd's
 *   "invalid registry endpoint" message when neither answers) and asked `/v1/search`. Registries that only
 *   speak v2 (docker-registry, wharf's own) answer 404 there, so Wharf falls back to `/v2/_catalog` (Link
 *   pagination, Basic or Bearer `registry:catalog:*` auth) and keeps the repositories whose name contains the
 *   search term, named `<registry>/<repository>` so that the result can be pulled as is.
 * - Requests, auth and size limits are the registry transport's (`distribution/transport.ts`).
 * - Auth failures answer 500, as dockerd's `Unexpected status code 401` does: a 401 would make the docker CLI
 *   prompt for a login and retry.
 * - `limit` 1…100 (default 25); filters `is-official`, `is-automated` (true|false) and `stars` (integer; the
 *   largest wins) with dockerd's "Invalid filter" errors.
 */
import type { Filters } from '../../lib/filters.js';
import type { AuthConfig } from '../../wire/index.js';
import type { DaemonConfig } from '../config.js';
import { InvalidParameterError, SystemError, UnauthorizedError, UnavailableError } from '../../lib/errors.js';
import {
  LIMITS, RegistryHttpError, RegistrySession, basicHeader, credentialsOf, fetchAll, isInsecureRegistry, readCapped,
  type Answer,
} from './transport.js';
import { DEFAULT_DOMAIN, INDEX_SERVER, LEGACY_DEFAULT_DOMAIN } from '../../lib/reference.js';

export const DEFAULT_SEARCH_LIMIT = 25;
const INDEX_HOST = DEFAULT_DOMAIN;

/** One search result, fields in the Engine API's order. */
export interface SearchResult {
  star_count: number;
  is_official: boolean;
  name: string;
  is_automated: boolean;
  description: string;
}

export interface SearchOptions {
  term: string;
  /** 0 → the default of 25. */
  limit?: number;
  filters?: Filters;
  auth?: AuthConfig;
  signal?: AbortSignal;
}

/** registry.splitReposSearchTerm: (index, remote name). */
export function splitSearchTerm(term: string): { index: string; remote: string } {
  const i = term.indexOf('/');
  if (i < 0) return { index: INDEX_HOST, remote: term };
  const first = term.slice(0, i);
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return { index: INDEX_HOST, remote: term };
  return { index: first, remote: term.slice(i + 1) };
}

interface ParsedFilters { automated?: boolean; official?: boolean; stars?: number }

/** Validates the filters the way dockerd does (unknown key, non-boolean, non-integer). */
export function parseSearchFilters(f: Filters | undefined): ParsedFilters {
  const out: ParsedFilters = {};
  if (!f) return out;
  for (const k of Object.keys(f)) {
    if (k !== 'is-automated' && k !== 'is-official' && k !== 'stars') throw new InvalidParameterError(`Invalid filter '${k}'`);
  }
  const bool = (key: 'is-automated' | 'is-official'): boolean | undefined => {
    const v = f[key];
    if (!v) return undefined;
    if (v.length === 1 && v[0] === 'true') return true;
    if (v.length === 1 && v[0] === 'false') return false;
    throw new InvalidParameterError(`Invalid filter '${key}=[${v.join(' ')}]'`);
  };
  const a = bool('is-automated');
  if (a !== undefined) out.automated = a;
  const o = bool('is-official');
  if (o !== undefined) out.official = o;
  if (f.stars) {
    let max = 0;
    for (const s of f.stars) {
      if (!/^[+-]?\d+$/.test(s)) throw new InvalidParameterError(`Invalid filter 'stars=${s}'`);
      max = Math.max(max, Number(s));
    }
    out.stars = max;
  }
  return out;
}

function toResult(x: Record<string, unknown>): SearchResult {
  return {
    star_count: Number(x.star_count ?? 0) || 0,
    is_official: x.is_official === true,
    name: String(x.name ?? ''),
    is_automated: x.is_automated === true || x.is_trusted === true,
    description: String(x.description ?? ''),
  };
}

export class SearchService {
  constructor(private readonly config: Pick<DaemonConfig, 'insecureRegistries'>) {}

  async search(opts: SearchOptions): Promise<SearchResult[]> {
    const filters = parseSearchFilters(opts.filters);
    if (opts.term.includes('://')) throw new InvalidParameterError('Invalid repository name (ex: "registry.domain.tld/myrepos")');
    const limit = opts.limit === undefined || opts.limit === 0 ? DEFAULT_SEARCH_LIMIT : opts.limit;
    const { index, remote } = splitSearchTerm(opts.term);
    if (limit < 1 || limit > 100) throw new InvalidParameterError(`Limit ${limit} is outside the range of [1, 100]`);
    const raw = index === INDEX_HOST || index === LEGACY_DEFAULT_DOMAIN
      ? await this.searchIndex(INDEX_SERVER, false, remote.startsWith('library/') ? remote.slice(8) : remote, limit, opts)
      : await this.searchPrivate(index, remote, limit, opts);
    return raw.filter((r) =>
      (filters.automated === undefined || r.is_automated === filters.automated)
      && (filters.official === undefined || r.is_official === filters.official)
      && (filters.stars === undefined || r.star_count >= filters.stars));
  }

  /** `GET <v1 endpoint>search?q=&n=`; null when the endpoint has no v1 search (404). */
  private async v1Search(base: string, insecure: boolean, term: string, limit: number, opts: SearchOptions): Promise<SearchResult[] | null> {
    const url = `${base}search?q=${encodeURIComponent(term).replace(/%20/g, '+')}&n=${limit}`;
    const creds = credentialsOf(opts.auth);
    const headers: Record<string, string> = creds && base !== INDEX_SERVER ? { authorization: basicHeader(creds) } : {};
    const ans = await fetchAll('GET', url, { insecure, headers, signal: opts.signal, limit: LIMITS.listing, what: 'search results' });
    if (ans.status === 404) return null;
    if (ans.status !== 200) throw new SystemError(`Unexpected status code ${ans.status}`);
    let j: { results?: Record<string, unknown>[] };
    try { j = JSON.parse(ans.body.toString()) as typeof j; } catch (e) { throw new SystemError(`error decoding search results: ${(e as Error).message}`, { cause: e }); }
    return (j.results ?? []).map(toResult);
  }

  private async searchIndex(base: string, insecure: boolean, term: string, limit: number, opts: SearchOptions): Promise<SearchResult[]> {
    const r = await this.v1Search(base, insecure, term, limit, opts);
    if (r === null) throw new SystemError('Unexpected status code 404');
    return r;
  }

  private async searchPrivate(host: string, term: string, limit: number, opts: SearchOptions): Promise<SearchResult[]> {
    const insecure = isInsecureRegistry(host, this.config.insecureRegistries);
    const base = await this.pingV1(host, insecure, opts.signal);
    const v1 = await this.v1Search(base.url, base.insecure, term, limit, opts);
    if (v1 !== null) return v1;
    const origin = base.url.replace(/\/v1\/$/, '');
    const repos = await this.catalog(origin, base.insecure, opts);
    const needle = term.toLowerCase();
    return repos
      .filter((r) => r.toLowerCase().includes(needle))
      .slice(0, limit)
      .map((r) => ({ star_count: 0, is_official: false, name: `${host}/${r}`, is_automated: false, description: '' }));
  }

  /** registry.validateEndpoint: https `/v1/_ping`, then http for insecure registries. */
  private async pingV1(host: string, insecure: boolean, signal?: AbortSignal): Promise<{ url: string; insecure: boolean }> {
    const https = `https://${host}/v1/`;
    try {
      await ping(`${https}_ping`, insecure, signal);
      return { url: https, insecure };
    } catch (err) {
      if (!(err instanceof UnavailableError)) throw err;
      if (!insecure) {
        throw new UnavailableError(
          `invalid registry endpoint ${https}: ${err.message}. If this private registry supports only HTTP or HTTPS with an unknown CA certificate, ` +
          `please add \`--insecure-registry ${host}\` to the daemon's arguments. In the case of HTTPS, if you have access to the registry's CA ` +
          `certificate, no need for the flag; simply place the CA certificate at /etc/docker/certs.d/${host}/ca.crt`);
      }
      const http = `http://${host}/v1/`;
      try {
        await ping(`${http}_ping`, true, signal);
        return { url: http, insecure: true };
      } catch (err2) {
        if (!(err2 instanceof UnavailableError)) throw err2;
        throw new UnavailableError(`invalid registry endpoint "${https}". HTTPS attempt: ${err.message}. HTTP attempt: ${err2.message}`, { cause: err });
      }
    }
  }

  /** Every repository of `/v2/_catalog`, following `Link: <…>; rel="next"` (Basic or Bearer `registry:catalog:*`). */
  private async catalog(origin: string, insecure: boolean, opts: SearchOptions): Promise<string[]> {
    const session = new RegistrySession(new URL(origin).host, [{ url: origin, mirror: false, insecure }], {
      auth: opts.auth, signal: opts.signal, scopes: ['registry:catalog:*'], ping: false,
    });
    const out: string[] = [];
    let next: string | null = `${origin}/v2/_catalog?n=1000`;
    for (let pages = 0; next && pages < 1000; pages++) {
      let ans: Answer;
      try {
        const res = await session.request('GET', next);
        ans = { status: res.statusCode, headers: res.headers as Answer['headers'], body: await readCapped(res, LIMITS.listing, 'catalog page', 'GET', next) };
      } catch (e) {
        // auth failures answer 500 (a 401 would make the docker CLI prompt for a login)
        if (e instanceof UnauthorizedError) throw new SystemError(e.message, { cause: e });
        if (!(e instanceof RegistryHttpError)) throw e;
        if (e.status === 401) throw new SystemError(`Get "${next}": unauthorized: authentication required`);
        throw new SystemError(`Unexpected status code ${e.status}`, { cause: e });
      }
      if (ans.status !== 200) throw new SystemError(`Unexpected status code ${ans.status}`);
      let j: { repositories?: string[] };
      try { j = JSON.parse(ans.body.toString()) as typeof j; } catch (e) { throw new SystemError(`error decoding the catalog: ${(e as Error).message}`, { cause: e }); }
      out.push(...(j.repositories ?? []));
      const link = ans.headers.link;
      const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(Array.isArray(link) ? link.join(', ') : link ?? '');
      next = m ? new URL(m[1]!, origin).toString() : null;
    }
    return out;
  }
}

/** `GET …/v1/_ping`: any answer will do (only unreachable endpoints fail). */
async function ping(url: string, insecure: boolean, signal?: AbortSignal): Promise<void> {
  await fetchAll('GET', url, { insecure, signal, limit: LIMITS.errorBody, what: 'ping answer', retry: 'connection' }).catch((e: unknown) => {
    if (e instanceof SystemError && !(e instanceof UnavailableError)) return; // an oversized answer still answered
    throw e;
  });
}
