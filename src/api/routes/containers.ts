/**
 * Container routes: records (create, inspect, list, rename, rm, prune), the lifecycle (start, stop, wait, logs,
 * attach…), exec, commit and the archive (cp, export). Each calls one backend method (api/backend.ts); bodies are
 * read with the Go-like decoder (api/decode.ts) against the wire schemas.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidParameterError } from '../../lib/errors.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../../lib/detachkeys.js';
import type { ContainerConfig, ContainerCreateRequest, ExecCreateRequest, ExecStartRequest } from '../../wire/index.js';
import { CONTAINER_CONFIG, CONTAINER_CREATE, EXEC_CREATE, EXEC_START } from '../../wire/schema.js';
import type { Backends, ContainerArchiveBackend, ContainerBackend, ContainerRuntimeBackend, ExecBackend } from '../backend.js';
import { readBody } from '../decode.js';
import { upgradeConnection } from '../hijack.js';
import { boolValue, intValue, requestBody, sendEmpty, sendJson, type Router } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

export function containerRoutes(r: Router, b: Pick<Backends, 'containers' | 'runtime' | 'exec' | 'commit' | 'containerArchive'>): void {
  const c = b.containers;
  if (!c) return;
  if (b.containerArchive) archiveRoutes(r, b.containerArchive);
  const commit = b.commit;
  if (commit) {
    r.post('/commit', async ({ req, res, query }) => {
      const config = await readBody<ContainerConfig>(req, CONTAINER_CONFIG);
      const id = await commit.commit(query.get('container') ?? '', {
        repo: query.get('repo') ?? '', tag: query.get('tag') ?? '', comment: query.get('comment') ?? '',
        author: query.get('author') ?? '', changes: query.getAll('changes'),
        pause: !['0', 'false'].includes((query.get('pause') ?? '1').toLowerCase()),
        ...(config ? { config } : {}),
      });
      sendJson(res, 201, { Id: id });
    });
  }
  if (b.runtime) containerRuntimeRoutes(r, c, b.runtime, b.exec);
  r.post('/containers/create', async ({ req, res, query }) => {
    const body = await readBody<ContainerCreateRequest>(req, CONTAINER_CREATE);
    if (body === undefined) throw new InvalidParameterError('Config cannot be empty in order to create a container');
    sendJson(res, 201, await c.create(query.get('name'), body));
  });
  r.get('/containers/json', async ({ res, query }) => {
    sendJson(res, 200, await c.list({
      all: boolValue(query, 'all'), limit: intValue(query, 'limit', -1), size: boolValue(query, 'size'),
      filters: parseFilters(query.get('filters')),
    }));
  });
  r.post('/containers/prune', async ({ res, query }) => {
    sendJson(res, 200, await c.prune(parseFilters(query.get('filters'))));
  });
  r.post('/containers/{id}/rename', async ({ res, params, query }) => {
    await c.rename(params.id!, query.get('name') ?? '');
    sendEmpty(res, 204);
  });
  r.get('/containers/{id}/json', async ({ res, params, query }) => {
    sendJson(res, 200, await c.inspect(params.id!, { size: boolValue(query, 'size') }));
  });
  const remove = async ({ res, params, query }: { res: ServerResponse; params: Record<string, string>; query: URLSearchParams }) => {
    if (boolValue(query, 'link')) await c.removeLink(params.id!);
    else await c.remove(params.id!, { force: boolValue(query, 'force'), volumes: boolValue(query, 'v') });
    sendEmpty(res, 204);
  };
  r.delete('/containers/{id}', remove);
  // `docker rm --link /parent/alias` names a link: a path of several segments
  r.delete('/containers/{id*}', remove);
}

function archiveRoutes(r: Router, archive: ContainerArchiveBackend): void {
  const get = async ({ res, params, query }: { res: ServerResponse; params: Record<string, string>; query: URLSearchParams }, head: boolean) => {
    const path = query.get('path') ?? '';
    if (path === '') throw new InvalidParameterError('Bad parameter: path cannot be empty');
    const { stat, tar } = await archive.get(params.id!, path, head);
    const hdr = Buffer.from(JSON.stringify(stat)).toString('base64');
    res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': hdr });
    if (!tar) { res.end(); return; }
    try { await pipeline(tar, res); } catch { res.destroy(); }
  };
  r.get('/containers/{id}/export', async ({ res, params }) => {
    const tar = await archive.export(params.id!);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try { await pipeline(tar, res); } catch { res.destroy(); }
  });
  r.put('/containers/{id}/archive', async ({ req, res, params, query }) => {
    const path = query.get('path') ?? '';
    if (path === '') throw new InvalidParameterError('Bad parameter: path cannot be empty');
    const body = requestBody(req);
    try {
      await archive.put(params.id!, path, body, {
        noOverwriteDirNonDir: boolValue(query, 'noOverwriteDirNonDir'), copyUIDGID: boolValue(query, 'copyUIDGID'),
      });
    } finally {
      body.destroy();
    }
    sendEmpty(res, 200);
  });
  r.get('/containers/{id}/archive', (ctx) => get(ctx, false));
  r.head('/containers/{id}/archive', (ctx) => get(ctx, true));
}

/** Docker's stdcopy header: stream type (1 stdout, 2 stderr), three zero bytes, big-endian length. */
export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

function sinceValue(v: string | null): number | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidParameterError(`invalid value for since: ${JSON.stringify(v)}`);
  return n;
}

function containerRuntimeRoutes(r: Router, c: ContainerBackend, run: ContainerRuntimeBackend, exec?: ExecBackend): void {
  r.post('/containers/{id}/start', async ({ res, params }) => {
    await run.start(params.id!);
    sendEmpty(res, 204);
  });
  r.post('/containers/{id}/wait', async ({ res, params, query }) => {
    const p = run.wait(params.id!, query.get('condition') ?? '');
    // headers go out at once (the CLI waits for them before starting the container), the body at exit
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const v = await p;
    res.end(JSON.stringify(v) + '\n');
  });
  r.post('/containers/{id}/pause', async ({ res, params }) => { await run.pause(params.id!); sendEmpty(res, 204); });
  r.post('/containers/{id}/unpause', async ({ res, params }) => { await run.unpause(params.id!); sendEmpty(res, 204); });
  r.post('/containers/{id}/restart', async ({ res, params, query }) => {
    const t = query.get('t');
    await run.restart(params.id!, t === null || t === '' ? undefined : intValue(query, 't', 10));
    sendEmpty(res, 204);
  });
  r.get('/containers/{id}/top', async ({ res, params, query }) => {
    sendJson(res, 200, await run.top(params.id!, query.get('ps_args') ?? ''));
  });
  r.post('/containers/{id}/resize', async ({ res, params, query }) => {
    await run.resize(params.id!, intValue(query, 'h', 0), intValue(query, 'w', 0));
    sendEmpty(res, 200);
  });
  r.get('/containers/{id}/changes', async ({ res, params }) => {
    const ch = await run.changes(params.id!);
    sendJson(res, 200, ch.length ? ch.map((x) => ({ Path: x.path, Kind: x.kind })) : null);
  });
  r.post('/containers/{id}/kill', async ({ res, params, query }) => {
    await run.kill(params.id!, query.get('signal') ?? '');
    sendEmpty(res, 204);
  });
  r.post('/containers/{id}/stop', async ({ res, params, query }) => {
    const t = query.get('t');
    await run.stop(params.id!, t === null || t === '' ? undefined : intValue(query, 't', 10));
    sendEmpty(res, 204);
  });
  r.get('/containers/{id}/logs', async ({ res, params, query, signal }) => {
    const stdout = boolValue(query, 'stdout');
    const stderr = boolValue(query, 'stderr');
    if (!stdout && !stderr) throw new InvalidParameterError('Bad parameters: you must choose at least one stream');
    const tty = run.isTty(params.id!);
    const { attrs } = c.logReading(params.id!);
    const details = boolValue(query, 'details');
    const tailQ = query.get('tail');
    const tail = tailQ === null || tailQ === '' || tailQ === 'all' ? undefined : Number.parseInt(tailQ, 10);
    const since = sinceValue(query.get('since'));
    const until = sinceValue(query.get('until'));
    const timestamps = boolValue(query, 'timestamps');
    const it = run.logs(params.id!, {
      follow: boolValue(query, 'follow'),
      ...(tail !== undefined && Number.isFinite(tail) ? { tail } : {}),
      ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
    });
    res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
    res.flushHeaders();
    for await (const rec of it) {
      if (signal.aborted) break;
      if (rec.stream === 'stdout' ? !stdout : !stderr) continue;
      const prefix = `${timestamps ? `${rec.time} ` : ''}${details ? `${attrs} ` : ''}`;
      const data = prefix ? Buffer.concat([Buffer.from(prefix), rec.data]) : rec.data;
      res.write(tty ? data : frame(rec.stream === 'stdout' ? 1 : 2, data));
    }
    res.end();
  });
  r.post('/containers/{id}/attach', async ({ req, res, params, query }) => {
    const info = c.attachInfo(params.id!);
    const tty = info.tty;
    const keys = tty && boolValue(query, 'stdin') ? parseDetachKeys(query.get('detachKeys') || DEFAULT_DETACH_KEYS) : null;
    const h = hijack(req, res, tty, keys);
    try {
      await run.attach(info.id, {
        ...(boolValue(query, 'stdout') ? { stdout: h.out(1) } : {}),
        ...(boolValue(query, 'stderr') ? { stderr: h.out(tty ? 1 : 2) } : {}),
        ...(boolValue(query, 'stdin') && info.openStdin ? { stdin: h.stdin() } : {}),
      }, { logs: boolValue(query, 'logs'), stream: boolValue(query, 'stream') });
    } finally {
      h.end();
    }
  });
  if (exec) {
    r.post('/containers/{id}/exec', async ({ req, res, params }) => {
      const body = await readBody<ExecCreateRequest>(req, EXEC_CREATE);
      sendJson(res, 201, exec.create(params.id!, body ?? {}));
    });
    r.get('/exec/{id}/json', ({ res, params }) => { sendJson(res, 200, exec.inspect(params.id!)); });
    r.post('/exec/{id}/resize', async ({ res, params, query }) => {
      const h = intValue(query, 'h', 0);
      const w = intValue(query, 'w', 0);
      await exec.resize(params.id!, h, w);
      sendEmpty(res, 200);
    });
    r.post('/exec/{id}/start', async ({ req, res, params, log }) => {
      const body = (await readBody<ExecStartRequest>(req, EXEC_START)) ?? {};
      const e = exec.get(params.id!);
      if (body.Detach) {
        void exec.start(e.ID, {}).catch(log.onError('detached exec failed', { exec: e.ID }, 'error'));
        sendEmpty(res, 200);
        return;
      }
      // as dockerd: the output is raw or multiplexed by the start request's Tty, whatever the exec was created with
      const tty = !!body.Tty;
      const h = hijack(req, res, tty, e.ProcessConfig.tty && e.OpenStdin ? parseDetachKeys(e.DetachKeys || DEFAULT_DETACH_KEYS) : null);
      try {
        await exec.start(e.ID, {
          ...(e.OpenStdout ? { stdout: h.out(1) } : {}),
          ...(e.OpenStderr ? { stderr: h.out(tty ? 1 : 2) } : {}),
          ...(e.OpenStdin ? { stdin: h.stdin() } : {}),
        });
      } catch (err) {
        h.out(1)(Buffer.from(`${(err as Error).message}\r\n`));
      } finally {
        h.end();
      }
    });
  }
}

/**
 * Takes over a request's connection the way dockerd hijacks it: 101 with `Upgrade: tcp`, then raw bytes (stdcopy
 * frames unless tty) out, and whatever the client sends is stdin.
 */
function hijack(req: IncomingMessage, res: ServerResponse, tty: boolean, keys: Buffer | null = null) {
  const input = new PassThrough();
  let wantStdin = false;
  const sock = upgradeConnection(req, res, (sock) => {
    if (!wantStdin) { sock.resume(); return; }
    if (!keys || keys.length === 0) { sock.pipe(input); return; }
    // docker's detach keys: the sequence is held back while it matches; complete, the client is let go and the
    // container's stdin stays open (detaching is not an end of input)
    let matched = 0;
    sock.on('data', (d: Buffer) => {
      let from = 0;
      for (let i = 0; i < d.length; i++) {
        if (d[i] === keys[matched]) {
          if (matched === 0 && i > from) input.write(d.subarray(from, i));
          matched++;
          if (matched === keys.length) { sock.unpipe(); sock.removeAllListeners('data'); sock.end(); return; }
          from = i + 1;
        } else {
          if (matched > 0) { input.write(keys.subarray(0, matched)); matched = 0; from = i; i--; continue; }
        }
      }
      if (matched === 0 && from < d.length) input.write(d.subarray(from));
    });
    sock.on('end', () => { if (matched > 0) input.write(keys.subarray(0, matched)); input.end(); });
  });
  return {
    out: (n: 1 | 2) => (b: Buffer) => { if (!sock.destroyed) sock.write(tty ? b : frame(n, b)); },
    stdin: () => { wantStdin = true; return input; },
    end: () => { sock.end(); },
  };
}
