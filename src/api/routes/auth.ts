/** POST /auth (docker login, daemon side) and GET /images/search (docker search). */
import type { AuthConfig, RegistryAuthBackend, SearchBackend } from '../backend.js';
import { InvalidParameterError } from '../../lib/errors.js';
import { AUTH_CONFIG } from '../../wire/schema.js';
import { readBody } from '../decode.js';
import { decodeRegistryAuth, sendJson, type Router } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

export function authRoutes(r: Router, auth: RegistryAuthBackend, search: SearchBackend): void {
  r.post('/auth', async ({ req, res, signal }) => {
    // decoded as Go decodes types.AuthConfig (docker-py and others may capitalize the keys); empty fields dropped
    const src = ((await readBody<Record<string, unknown>>(req, AUTH_CONFIG)) ?? {});
    const cfg: AuthConfig = {};
    for (const k of ['username', 'password', 'auth', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
      if (typeof src[k] === 'string' && src[k] !== '') cfg[k] = src[k] as string;
    }
    sendJson(res, 200, await auth.login(cfg, signal));
  });

  r.get('/images/search', async ({ req, res, query, signal }) => {
    const a = decodeRegistryAuth(req.headers['x-registry-auth']);
    let limit: number | undefined;
    const raw = query.get('limit');
    if (raw !== null && raw !== '') {
      if (!/^[+-]?\d+$/.test(raw)) throw new InvalidParameterError(`strconv.Atoi: parsing ${JSON.stringify(raw)}: invalid syntax`);
      limit = Number(raw);
    }
    const results = await search.search({
      term: query.get('term') ?? '', ...(limit !== undefined ? { limit } : {}), filters: parseFilters(query.get('filters')),
      ...(a ? { auth: a } : {}), signal,
    });
    sendJson(res, 200, results);
  });
}
