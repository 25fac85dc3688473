/** POST /build: the classic builder's endpoint (what `DOCKER_BUILDKIT=0 docker build` calls). */
import { ConflictError, InvalidParameterError, SystemError } from '../../lib/errors.js';
import { Mux } from '../../lib/mux.js';
import type { BuildSessionRef } from '../../wire/index.js';
import type { AuthConfig, BuildBackend, BuildRequest } from '../backend.js';
import { messageOf } from '../errors.js';
import { upgradeConnection } from '../hijack.js';
import { JsonStream, type Router, boolValue, boolValueOrDefault, requestBody, sendJson } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

function jsonParam<T>(q: URLSearchParams, key: string, def: T): T {
  const v = q.get(key);
  if (v === null || v === '') return def;
  try {
    return JSON.parse(v) as T;
  } catch (e) {
    throw new InvalidParameterError(`invalid ${key} parameter: ${(e as Error).message}`, { cause: e });
  }
}

/** Decodes the query of POST /build (moby's newImageBuildOptions). */
export function buildRequestOf(q: URLSearchParams, signal?: AbortSignal): BuildRequest {
  const version = q.get('version') ?? '1';
  if (version === '2') throw new InvalidParameterError('BuildKit is not supported by this daemon: use DOCKER_BUILDKIT=0');
  const tags = q.getAll('t').filter((t) => t !== '');
  const buildArgs = jsonParam<Record<string, string | null>>(q, 'buildargs', {}) ?? {};
  const labels = jsonParam<Record<string, string>>(q, 'labels', {}) ?? {};
  const cacheFrom = jsonParam<string[]>(q, 'cachefrom', []) ?? [];
  const req: BuildRequest = {
    tags,
    dockerfile: q.get('dockerfile') ?? 'Dockerfile',
    buildArgs,
    noCache: boolValue(q, 'nocache'),
    pull: boolValue(q, 'pull'),
    rm: boolValueOrDefault(q, 'rm', true),
    forceRm: boolValue(q, 'forcerm'),
    quiet: boolValue(q, 'q'),
    labels,
    cacheFrom,
  };
  const target = q.get('target');
  if (target) req.target = target;
  const remote = q.get('remote');
  if (remote) req.remote = remote;
  const net = q.get('networkmode');
  if (net) req.networkMode = net;
  const hosts = q.getAll('extrahosts').flatMap((h) => h.split(',')).filter(Boolean);
  if (hosts.length) req.extraHosts = hosts;
  const platform = q.get('platform');
  if (platform) req.platform = platform;
  if (signal) req.signal = signal;
  if (req.forceRm) req.rm = true;
  return req;
}

/** X-Registry-Config: base64(url) JSON of {registry: AuthConfig}; undefined when absent or empty. */
export function decodeRegistryConfig(header: string | string[] | undefined): Record<string, AuthConfig> | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  try {
    const json = Buffer.from(h.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const v = JSON.parse(json) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0) return undefined;
    return v as Record<string, AuthConfig>;
  } catch {
    return undefined;
  }
}

/** A build session's id: chosen by the client (128 random bits, hex), so that a build can name it. */
const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;
const OFFERED_ID = /^[A-Za-z0-9_.-]+$/;

function header(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function idList(h: string | string[] | undefined, name: string, what: string): string[] {
  const list = (Array.isArray(h) ? h.join(',') : h ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const bad = list.find((x) => !OFFERED_ID.test(x));
  if (bad !== undefined) throw new InvalidParameterError(`invalid ${what} id in ${name}: ${JSON.stringify(bad)}`);
  return list;
}

/**
 * X-Wharf-Build-Session (the client's session id), X-Wharf-Build-Secret-Ids and X-Wharf-Build-Ssh-Ids
 * (comma-separated ids of the secrets and SSH agents it offers: `wharf build --secret/--ssh`). The values stay on
 * the client, reached through the session when a step mounts them; never a path on this host.
 */
export function decodeBuildSession(headers: Record<string, string | string[] | undefined>): BuildSessionRef | undefined {
  if (headers['x-wharf-build-secrets'] !== undefined) {
    throw new InvalidParameterError('X-Wharf-Build-Secrets is not supported: build secrets travel through the build session (X-Wharf-Build-Session, X-Wharf-Build-Secret-Ids)');
  }
  const secrets = idList(headers['x-wharf-build-secret-ids'], 'X-Wharf-Build-Secret-Ids', 'secret');
  const ssh = idList(headers['x-wharf-build-ssh-ids'], 'X-Wharf-Build-Ssh-Ids', 'SSH agent');
  const id = header(headers['x-wharf-build-session']);
  if (!secrets.length && !ssh.length) return undefined;
  if (!id) throw new InvalidParameterError('X-Wharf-Build-Secret-Ids and X-Wharf-Build-Ssh-Ids need the X-Wharf-Build-Session that carries them');
  if (!SESSION_ID.test(id)) throw new InvalidParameterError(`invalid X-Wharf-Build-Session: ${JSON.stringify(id)}`);
  return { id, secrets, ssh };
}

export function buildRoutes(r: Router, build: BuildBackend): void {
  // the client's side of a build (wharf build --ssh): held open while its build runs; the daemon opens a stream
  // per connection to a step's agent socket, the client accepts none from here
  r.post('/build/session', async ({ req, res, query }) => {
    const id = query.get('id') ?? '';
    if (!SESSION_ID.test(id)) throw new InvalidParameterError(`invalid build session id ${JSON.stringify(id)}: want 16 to 64 letters, digits, - or _`);
    if (build.hasSession(id)) throw new ConflictError(`build session ${id} is already open`);
    await new Promise<void>((resolve) => {
      upgradeConnection(req, res, (sock) => {
        if (sock.destroyed) { resolve(); return; } // (the client left at once)
        // looked at again here: another client may have opened the same id while this one was being upgraded
        if (build.hasSession(id)) { sock.destroy(); resolve(); return; }
        const mux = new Mux(sock, { client: false });
        build.addSession(id, mux);
        sock.resume();
        void mux.done().then(() => resolve());
      });
    });
  });
  r.post('/build/prune', async ({ res, query }) => {
    const filters = parseFilters(query.get('filters'));
    const ks = query.get('keep-storage') || '0';
    // Go's strconv.Atoi; dockerd 20.10 answers 500 (untyped)
    if (!/^[+-]?\d+$/.test(ks)) throw new SystemError(`keep-storage is in bytes and expects an integer, got ${ks}: strconv.Atoi: parsing ${JSON.stringify(ks)}: invalid syntax`);
    sendJson(res, 200, await build.prune({ all: boolValue(query, 'all'), filters, keepStorage: Number(ks) }));
  });
  r.post('/build', async ({ req, res, query, signal }) => {
    const opts = buildRequestOf(query, signal);
    const auth = decodeRegistryConfig(req.headers['x-registry-config']);
    if (auth) opts.registryAuth = auth;
    const session = decodeBuildSession(req.headers);
    if (session) opts.session = session;
    const stream = new JsonStream(res);
    const context = requestBody(req);
    try {
      await build.build(context, opts, stream.sink);
      stream.end();
    } catch (e) {
      const code = (e as { exitCode?: unknown }).exitCode;
      if (stream.headersSent && typeof code === 'number') {
        const message = messageOf(e);
        stream.write({ errorDetail: { code, message }, error: message });
        stream.end();
        return;
      }
      stream.end(e);
    } finally {
      context.destroy();
    }
  });
}
