/** POST /build: the classic builder's endpoint (what `DOCKER_BUILDKIT=0 docker build` calls). */
import { ConflictError, InvalidParameterError, SystemError } from '../../lib/errors.js';
import { Mux } from '../../lib/mux.js';
import type { SshAgentSource } from '../../wire/index.js';
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

/**
 * X-Wharf-Build-Secrets (wharf build --secret): base64 of a JSON object, secret id → base64 of its value. Headers
 * are never logged, and the value never enters the query, the context tar or the build's cache key.
 */
export function decodeBuildSecrets(header: string | string[] | undefined): Map<string, Buffer> | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  let v: unknown;
  try { v = JSON.parse(Buffer.from(h, 'base64').toString('utf8')); } catch { v = null; }
  if (!v || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new InvalidParameterError('invalid X-Wharf-Build-Secrets header: want base64 of a JSON object of id → base64 value');
  }
  return new Map(Object.entries(v as Record<string, string>).map(([k, x]) => [k, Buffer.from(x, 'base64')]));
}

/** A build session's id: chosen by the client (128 random bits, hex), so that a build can name it. */
const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;
const SSH_ID = /^[A-Za-z0-9_.-]+$/;

/**
 * The build sessions clients hold open (`POST /build/session?id=…`, a hijacked connection carrying lib/mux.ts
 * streams): a build that names one (X-Wharf-Build-Session) reaches the client's SSH agents through it.
 */
export class BuildSessions {
  private readonly live = new Map<string, Mux>();

  /** Registers a session for as long as its connection lasts. */
  add(id: string, mux: Mux): void {
    this.live.set(id, mux);
    void mux.done().then(() => { if (this.live.get(id) === mux) this.live.delete(id); });
  }

  has(id: string): boolean { return this.live.has(id); }

  /** The agent `sshId` of session `id`, looked up at each use (the session may end during the build). */
  agent(id: string, sshId: string): SshAgentSource {
    const session = () => {
      const m = this.live.get(id);
      return m && !m.closed ? m : undefined;
    };
    return {
      unavailable: () => (session() ? null : `the client's build session ${id} is closed (the wharf build that offered it has gone)`),
      connect: () => {
        const m = session();
        if (!m) throw new InvalidParameterError(`build session ${id} is closed`);
        return m.open(`ssh:${sshId}`);
      },
    };
  }
}

/**
 * X-Wharf-Build-Session (the client's session id) and X-Wharf-Build-Ssh-Ids (comma-separated ids of the agents
 * it offers, `wharf build --ssh`): the agents, reached through that session. Never a path on this host.
 */
export function decodeBuildSsh(sessions: BuildSessions, session: string | string[] | undefined, ids: string | string[] | undefined): Map<string, SshAgentSource> | undefined {
  const sid = Array.isArray(session) ? session[0] : session;
  const list = (Array.isArray(ids) ? ids.join(',') : ids ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (!list.length) return undefined;
  if (!sid) throw new InvalidParameterError('X-Wharf-Build-Ssh-Ids needs the X-Wharf-Build-Session that carries the agents');
  if (!SESSION_ID.test(sid)) throw new InvalidParameterError(`invalid X-Wharf-Build-Session: ${JSON.stringify(sid)}`);
  const bad = list.find((x) => !SSH_ID.test(x));
  if (bad !== undefined) throw new InvalidParameterError(`invalid SSH agent id in X-Wharf-Build-Ssh-Ids: ${JSON.stringify(bad)}`);
  return new Map(list.map((x) => [x, sessions.agent(sid, x)]));
}

export function buildRoutes(r: Router, build: BuildBackend, sessions = new BuildSessions()): void {
  // the client's side of a build (wharf build --ssh): held open while its build runs; the daemon opens a stream
  // per connection to a step's agent socket, the client accepts none from here
  r.post('/build/session', async ({ req, res, query }) => {
    const id = query.get('id') ?? '';
    if (!SESSION_ID.test(id)) throw new InvalidParameterError(`invalid build session id ${JSON.stringify(id)}: want 16 to 64 letters, digits, - or _`);
    if (sessions.has(id)) throw new ConflictError(`build session ${id} is already open`);
    await new Promise<void>((resolve) => {
      upgradeConnection(req, res, (sock) => {
        if (sock.destroyed) { resolve(); return; } // (the client left at once)
        // looked at again here: another client may have opened the same id while this one was being upgraded
        if (sessions.has(id)) { sock.destroy(); resolve(); return; }
        const mux = new Mux(sock, { client: false });
        sessions.add(id, mux);
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
    const secrets = decodeBuildSecrets(req.headers['x-wharf-build-secrets']);
    if (secrets) opts.secrets = secrets;
    const ssh = decodeBuildSsh(sessions, req.headers['x-wharf-build-session'], req.headers['x-wharf-build-ssh-ids']);
    if (ssh) opts.ssh = ssh;
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
