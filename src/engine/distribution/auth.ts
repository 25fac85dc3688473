/**
 * Registry login (POST /auth; dockerd 20.10's registry.Service.Auth / loginV2) and the small HTTP helpers that
 * search shares with it.
 *
 * - The server address names the registry (`https://index.docker.io/v1/` or empty → Docker Hub); mirrors are
 *   never used. Endpoints: https, then plain http for insecure registries (localhost, 127.0.0.0/8 and the
 *   configured list), falling back only while no endpoint has answered `/v2/`.
 * - `GET /v2/`: 200 without credentials is a success; a Basic challenge is answered with the credentials; a
 *   Bearer challenge fetches a token from the realm (GET with basic credentials, `offline_token=true`,
 *   `client_id=docker`, or POST `grant_type=refresh_token` when an identity token is given) and retries.
 * - Success: `{IdentityToken, Status: "Login Succeeded"}` (the token server's refresh token, if any). Failure:
 *   `login attempt to <url>/v2/ failed with status: 401 Unauthorized` as dockerd says, or the token server's
 *   `unauthorized: incorrect username or password`.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { STATUS_CODES } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AuthConfig } from '../../api/backend.js';
import type { DaemonConfig } from '../config.js';
import { InvalidParameterError, SystemError, UnauthorizedError, UnavailableError } from '../../lib/errors.js';
import { errcodeString, goNetError, isInsecureRegistry, parseWWWAuthenticate, type Challenge } from './registry.js';

export const USER_AGENT = 'wharf/0.1 (linux)';
export const DOCKER_HUB_INDEX = 'https://index.docker.io/v1/';

const agents = new Map<boolean, Dispatcher>();
/** A pooled dispatcher; `insecure` skips TLS certificate verification. */
export function agentFor(insecure: boolean): Dispatcher {
  let a = agents.get(insecure);
  if (!a) {
    a = new Agent({ connect: { rejectUnauthorized: !insecure, timeout: 15_000 }, keepAliveTimeout: 10_000 });
    agents.set(insecure, a);
  }
  return a;
}

export interface HttpAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** One request, body read in full; socket errors become Go-worded UnavailableErrors. */
export async function httpDo(
  method: 'GET' | 'POST', url: string, insecure: boolean, headers: Record<string, string> = {}, body?: string,
  signal?: AbortSignal,
): Promise<HttpAnswer> {
  try {
    const res = await request(url, {
      method, headers: { 'user-agent': USER_AGENT, ...headers }, dispatcher: agentFor(insecure),
      ...(body !== undefined ? { body } : {}), ...(signal ? { signal } : {}),
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers as HttpAnswer['headers'], body: buf };
  } catch (err) {
    if ((err as Error)?.name === 'AbortError') throw err;
    const e = goNetError(method[0] + method.slice(1).toLowerCase(), url, err);
    const ns = nameserver();
    if (ns && / no such host$/.test(e.message)) {
      throw new UnavailableError(e.message.replace(/: lookup ([^ :]+): no such host$/, `: lookup $1 on ${ns}: no such host`), { cause: err });
    }
    throw e;
  }
}

let resolver: string | null | undefined;
/** Go's resolver names the DNS server in lookup errors ("lookup x on 10.0.0.2:53: no such host"). */
function nameserver(): string | null {
  if (resolver !== undefined) return resolver;
  resolver = null;
  try {
    const m = /^\s*nameserver\s+(\S+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'));
    if (m) resolver = m[1]!.includes(':') ? `[${m[1]}]:53` : `${m[1]}:53`;
  } catch { /* no resolv.conf: Go's default would be localhost; leave the message as is */ }
  return resolver;
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

/** The registry host named by a login server address (dockerd: Docker Hub when empty). */
export function registryHostOf(serverAddress: string | undefined): string {
  if (!serverAddress) return 'index.docker.io';
  let s = serverAddress;
  if (!/^https?:\/\//.test(s)) s = `https://${s}`;
  let u: URL;
  try { u = new URL(s); } catch (e) { throw new InvalidParameterError(`unable to parse server address: ${(e as Error).message}`); }
  return u.host;
}

/** Push-style endpoints of a host (no mirrors): https, then http when the registry is insecure. */
export function loginEndpoints(host: string, config: Pick<DaemonConfig, 'insecureRegistries'>): { url: string; insecure: boolean }[] {
  if (host === 'index.docker.io' || host === 'docker.io' || host === 'registry-1.docker.io') {
    return [{ url: 'https://registry-1.docker.io', insecure: false }];
  }
  const insecure = isInsecureRegistry(host, config.insecureRegistries);
  const out = [{ url: `https://${host}`, insecure }];
  if (insecure) out.push({ url: `http://${host}`, insecure: true });
  return out;
}

export interface TokenAnswer { token: string; refreshToken?: string }

/**
 * A Bearer token from a challenge's realm for the given scopes. With an identity token: POST the refresh
 * grant; else GET with basic credentials (offline_token asks for a refresh token to hand back as identity).
 */
export async function fetchToken(
  ch: Challenge, scopes: string[], auth: AuthConfig | undefined, insecure: boolean, opts: { offline?: boolean; signal?: AbortSignal } = {},
): Promise<TokenAnswer> {
  const realm = ch.params.realm;
  if (!realm) throw new SystemError('bearer challenge without realm');
  const creds = credentialsOf(auth);
  let ans: HttpAnswer;
  let shown: string;
  if (auth?.identitytoken) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', auth.identitytoken);
    if (ch.params.service) form.set('service', ch.params.service);
    form.set('client_id', 'docker');
    if (scopes.length) form.set('scope', scopes.join(' '));
    if (opts.offline) form.set('access_type', 'offline');
    shown = realm;
    ans = await httpDo('POST', realm, insecure, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), opts.signal);
  } else {
    const u = new URL(realm);
    if (creds && opts.offline) { u.searchParams.set('account', creds.username); u.searchParams.set('client_id', 'docker'); u.searchParams.set('offline_token', 'true'); }
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    shown = u.toString();
    ans = await httpDo('GET', shown, insecure, creds ? { authorization: basicHeader(creds) } : {}, undefined, opts.signal);
  }
  if (ans.status === 401 || ans.status === 403) throw new UnauthorizedError(`Get "${shown}": ${tokenErrorText(ans)}`);
  if (ans.status !== 200) throw new SystemError(`token request to ${shown} failed with status: ${ans.status} ${STATUS_CODES[ans.status] ?? ''}`.trim());
  let j: Record<string, unknown>;
  try { j = JSON.parse(ans.body.toString()) as Record<string, unknown>; } catch { throw new SystemError(`unable to decode token response from ${shown}`); }
  const token = (j.token ?? j.access_token) as string | undefined;
  if (!token) throw new SystemError(`no token in the response from ${shown}`);
  return { token, ...(typeof j.refresh_token === 'string' ? { refreshToken: j.refresh_token } : {}) };
}

/**
 * A token server's refusal in docker's words (distribution's HandleErrorResponse): Docker Hub's
 * `{"details": …}`, an errcode list (`unauthorized: invalid username or password`), else
 * `unauthorized: authentication required`.
 */
function tokenErrorText(ans: HttpAnswer): string {
  try {
    const j = JSON.parse(ans.body.toString()) as { details?: unknown; errors?: { code?: string; message?: string }[] };
    if (typeof j.details === 'string' && j.details !== '') return `unauthorized: ${j.details}`;
    const e = j.errors?.[0];
    if (e?.code) return errcodeString({ code: e.code, ...(e.message ? { message: e.message } : {}) });
  } catch { /* not JSON */ }
  return 'unauthorized: authentication required';
}

export function pickChallenge(h: string | string[] | undefined): Challenge | null {
  const chs = parseWWWAuthenticate(Array.isArray(h) ? h.join(', ') : h ?? '');
  return chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic') ?? null;
}

export interface LoginResult { IdentityToken: string; Status: string }

/** POST /auth: checks the credentials against the registry's `/v2/`. */
export async function login(auth: AuthConfig, config: Pick<DaemonConfig, 'insecureRegistries'>, signal?: AbortSignal): Promise<LoginResult> {
  const host = registryHostOf(auth.serveraddress);
  let lastErr: unknown = null;
  for (const ep of loginEndpoints(host, config)) {
    const v2 = `${ep.url}/v2/`;
    let first: HttpAnswer;
    try {
      first = await httpDo('GET', v2, ep.insecure, {}, undefined, signal);
    } catch (err) {
      // not a registry yet (no /v2/ answer): try the next endpoint, as dockerd's fallbackError
      if (err instanceof UnavailableError) { lastErr = err; continue; }
      throw err;
    }
    if (first.status === 200) return { IdentityToken: '', Status: 'Login Succeeded' };
    const ch = first.status === 401 ? pickChallenge(first.headers['www-authenticate']) : null;
    let answer: HttpAnswer = first;
    let identity = '';
    if (ch?.scheme === 'basic') {
      const creds = credentialsOf(auth);
      answer = await httpDo('GET', v2, ep.insecure, creds ? { authorization: basicHeader(creds) } : {}, undefined, signal);
    } else if (ch?.scheme === 'bearer') {
      let tok: TokenAnswer;
      try {
        tok = await fetchToken(ch, [], auth, ep.insecure, { offline: true, ...(signal ? { signal } : {}) });
      } catch (err) {
        if (err instanceof UnauthorizedError) throw new UnauthorizedError(`Get "${v2}": ${err.message.replace(/^Get "[^"]*": /, '')}`);
        throw err;
      }
      identity = tok.refreshToken ?? '';
      answer = await httpDo('GET', v2, ep.insecure, { authorization: `Bearer ${tok.token}` }, undefined, signal);
    }
    if (answer.status === 200) return { IdentityToken: identity, Status: 'Login Succeeded' };
    throw new SystemError(`login attempt to ${v2} failed with status: ${answer.status} ${STATUS_CODES[answer.status] ?? ''}`.trim());
  }
  throw lastErr ?? new UnavailableError(`no endpoints found for ${host}`);
}
