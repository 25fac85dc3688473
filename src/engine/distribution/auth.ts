/**
 * Registry login (POST /auth; dockerd 20.10's registry.Service.Auth / loginV2), on the shared transport
 * (`transport.ts`).
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
import { http } from '../../lib/nodehttp.js';
import type { AuthConfig } from '../../wire/index.js';
import type { DaemonConfig } from '../config.js';
import { InvalidParameterError, SystemError, UnauthorizedError, UnavailableError } from '../../lib/errors.js';
import {
  LIMITS, basicHeader, credentialsOf, fetchAll, getToken, pickChallenge, resolveEndpoints, type Answer, type Endpoint,
  type TokenAnswer,
} from './transport.js';
import { LEGACY_DEFAULT_DOMAIN } from '../../lib/reference.js';

/** The registry host named by a login server address (dockerd: Docker Hub when empty). */
export function registryHostOf(serverAddress: string | undefined): string {
  if (!serverAddress) return LEGACY_DEFAULT_DOMAIN;
  let s = serverAddress;
  if (!/^https?:\/\//.test(s)) s = `https://${s}`;
  let u: URL;
  try { u = new URL(s); } catch (e) { throw new InvalidParameterError(`unable to parse server address: ${(e as Error).message}`, { cause: e }); }
  return u.host;
}

/** Push-style endpoints of a host (no mirrors): https, then http when the registry is insecure. */
export function loginEndpoints(host: string, config: Pick<DaemonConfig, 'insecureRegistries'>): Endpoint[] {
  return resolveEndpoints(host, { registryMirrors: [], insecureRegistries: config.insecureRegistries });
}

export interface LoginResult { IdentityToken: string; Status: string }

/** POST /auth: checks the credentials against the registry's `/v2/`. */
export async function login(auth: AuthConfig, config: Pick<DaemonConfig, 'insecureRegistries'>, signal?: AbortSignal): Promise<LoginResult> {
  const host = registryHostOf(auth.serveraddress);
  let lastErr: unknown = null;
  for (const ep of loginEndpoints(host, config)) {
    const v2 = `${ep.url}/v2/`;
    const get = (headers: Record<string, string>) => fetchAll('GET', v2, { insecure: ep.insecure, headers, signal, limit: LIMITS.errorBody, what: 'answer to /v2/' });
    let first: Answer;
    try {
      first = await get({});
    } catch (err) {
      // not a registry yet (no /v2/ answer): try the next endpoint, as dockerd's fallbackError
      if (err instanceof UnavailableError) { lastErr = err; continue; }
      throw err;
    }
    if (first.status === 200) return { IdentityToken: '', Status: 'Login Succeeded' };
    const ch = first.status === 401 ? pickChallenge(first.headers['www-authenticate']) : null;
    let answer: Answer = first;
    let identity = '';
    if (ch?.scheme === 'basic') {
      const creds = credentialsOf(auth);
      answer = await get(creds ? { authorization: basicHeader(creds) } : {});
    } else if (ch?.scheme === 'bearer') {
      let tok: TokenAnswer;
      try {
        tok = await getToken(ch, [], auth, ep.insecure, { offline: true, signal });
      } catch (err) {
        if (err instanceof UnauthorizedError) throw new UnauthorizedError(`Get "${v2}": ${err.message.replace(/^Get "[^"]*": /, '')}`, { cause: err });
        throw err;
      }
      identity = tok.refreshToken ?? '';
      answer = await get({ authorization: `Bearer ${tok.token}` });
    }
    if (answer.status === 200) return { IdentityToken: identity, Status: 'Login Succeeded' };
    throw new SystemError(`login attempt to ${v2} failed with status: ${answer.status} ${http.STATUS_CODES[answer.status] ?? ''}`.trim());
  }
  throw lastErr ?? new UnavailableError(`no endpoints found for ${host}`);
}
