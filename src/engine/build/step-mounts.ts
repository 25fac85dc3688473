/**
 * A RUN step's `--mount`s made real for its container: cache directories (cache-mounts.ts), binds of the context
 * or of a stage/image root (read-only, or `rw` on a throwaway copy), tmpfs, secret files (from the request's
 * secrets, fetched from the client's build session for the step only, written 0400 by default), secret variables and SSH agent sockets (served here, each
 * connection forwarded to the client's agent through its build session: serveAgent). Nothing a mount shows the step
 * becomes part of its layer: every one is a mount over the container's root. Also the words the mounts add to
 * the step's cache key: the mount as written (never a secret's value) and, for a bind of the context, the
 * bound files' source hash (a changed file re-runs the step, as BuildKit's content-based key does).
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, lstat, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join, posix } from 'node:path';
import { InvalidParameterError } from '../../lib/errors.js';
import { missingAs } from '../../lib/fsutil.js';
import { resolveInRoot } from '../fsroot/index.js';
import type { CacheMounts } from './cache-mounts.js';
import type { RunMount } from './dockerfile/run-mounts.js';
import { collectSources, ROOT_OWNER } from './sources.js';
import type { BuildSecretSource, SshAgentSource } from '../../wire/index.js';

export interface StepMountDeps {
  ctxDir: string;
  ctxSums?: ReadonlyMap<string, string>;
  /** The root of `from=` (a stage name or index, or an image): its image ID and a mounted root. */
  mountFrom(ref: string): Promise<{ imageId: string; dir: string; release(): Promise<void> }>;
  caches: CacheMounts;
  /** Build secrets by id, on the client's side (fetched through its build session for the step that mounts one). */
  secrets: ReadonlyMap<string, BuildSecretSource>;
  /** SSH agents by id, on the client's side (reached through its build session). */
  ssh: ReadonlyMap<string, SshAgentSource>;
  /** Where secret files and rw copies live while the step runs (removed by release). */
  scratchDir: string;
  signal: AbortSignal;
  /** A `RUN <<EOF` body starting with `#!`: written for the step and bound (executable, read-only) at target. */
  script?: { target: string; content: string };
}

export interface PreparedMounts {
  binds: { source: string; target: string; readonly: boolean }[];
  tmpfs: Record<string, string>;
  /** Secret variables (`env=`): reach the step's process only. */
  env: string[];
  release(): Promise<void>;
}

/** Where a mount's target is: absolute, or under the stage's working directory (BuildKit's rule). */
export function mountTarget(m: RunMount, workdir: string): string {
  return posix.normalize(m.target.startsWith('/') ? m.target : posix.join(workdir || '/', m.target));
}

/** The words the mounts add to the step's cache key (and history): what was written, plus bound content. */
export async function mountKeyWords(mounts: readonly { raw: string; m: RunMount }[], d: Pick<StepMountDeps, 'ctxDir' | 'ctxSums' | 'signal'>, fromIds: (ref: string) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (const { raw, m } of mounts) {
    out.push(`--mount=${raw}`);
    if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) out.push(`(from ${await fromIds(m.from)})`);
    else if (m.type === 'bind') out.push(`(context ${await contextHash(m.source ?? '', d)})`);
  }
  return out;
}

async function contextHash(source: string, d: Pick<StepMountDeps, 'ctxDir' | 'ctxSums' | 'signal'>): Promise<string> {
  const src = source.replace(/^\/+/, '') || '.';
  try {
    const { srcHash } = await collectSources({
      kind: 'copy', root: { dir: d.ctxDir, fromImage: false, ...(d.ctxSums?.size ? { contextSums: d.ctxSums } : {}) },
      sources: [src], heredocs: new Map(), destRel: 'mnt', destIsDir: true, owner: ROOT_OWNER, signal: d.signal,
      statInImage: async () => null,
    });
    return srcHash;
  } catch {
    throw new InvalidParameterError(`RUN --mount=type=bind: source "${source || '.'}" not found in the build context`);
  }
}

/** Makes the mounts of one step; release() undoes everything (also after a failure half-way). */
export async function prepareMounts(mounts: readonly RunMount[], workdir: string, d: StepMountDeps): Promise<PreparedMounts> {
  const undo: (() => Promise<void> | void)[] = [];
  const out: PreparedMounts = {
    binds: [], tmpfs: {}, env: [],
    release: async () => { for (const u of undo.reverse()) await Promise.resolve(u()).catch(() => {}); undo.length = 0; },
  };
  let scratchMade = false;
  const scratch = async (): Promise<string> => {
    if (!scratchMade) {
      await mkdir(d.scratchDir, { recursive: true, mode: 0o700 });
      undo.push(() => rm(d.scratchDir, { recursive: true, force: true }));
      scratchMade = true;
    }
    const p = join(d.scratchDir, randomBytes(8).toString('hex'));
    return p;
  };
  try {
    if (d.script) {
      const file = await scratch();
      await writeFile(file, d.script.content, { mode: 0o755 });
      out.binds.push({ source: file, target: d.script.target, readonly: true });
    }
    const targets = new Set<string>();
    for (const m of mounts) {
      // (a secret only as a variable has no target)
      const target = m.target ? mountTarget(m, workdir) : '';
      if (target === '/') throw new InvalidParameterError(`RUN --mount=type=${m.type}: the target cannot be /`);
      if (target && targets.has(target)) throw new InvalidParameterError(`RUN --mount: duplicate mount target ${target}`);
      if (target) targets.add(target);
      switch (m.type) {
        case 'tmpfs':
          out.tmpfs[target] = ['exec', ...(m.size !== undefined ? [`size=${m.size}`] : [])].join(',');
          break;
        case 'bind': {
          let root = d.ctxDir;
          if (m.from !== undefined) {
            const f = await d.mountFrom(m.from);
            undo.push(() => f.release());
            root = f.dir;
          }
          const rel = await resolveInRoot(root, (m.source ?? '').replace(/^\/+/, ''));
          let src = join(root, rel);
          if (!(await lstat(src).catch(missingAs(null)))) throw new InvalidParameterError(`RUN --mount=type=bind: source "${m.source ?? '/'}" not found${m.from !== undefined ? ` in ${m.from}` : ' in the build context'}`);
          if (!m.readonly && m.from === undefined) {
            // writes are discarded: the step gets a copy of the context's files
            const copy = await scratch();
            await cp(src, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
            src = copy;
          }
          out.binds.push({ source: src, target, readonly: m.readonly });
          break;
        }
        case 'cache': {
          const from = m.from;
          const seed = from === undefined ? undefined : async (dir: string) => {
            const f = await d.mountFrom(from);
            try {
              const rel = await resolveInRoot(f.dir, (m.source ?? '').replace(/^\/+/, ''));
              const s = join(f.dir, rel);
              if (!(await lstat(s).catch(missingAs(null)))) throw new InvalidParameterError(`RUN --mount=type=cache: source "${m.source ?? '/'}" not found in ${from}`);
              await cp(s, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
            } finally {
              await f.release();
            }
          };
          const held = await d.caches.acquire({
            id: m.id ?? target, sharing: m.sharing, mode: m.mode ?? 0o755, uid: m.uid ?? 0, gid: m.gid ?? 0, ...(seed ? { seed } : {}),
            description: `cached mount ${target}${m.id !== undefined ? ` with id ${JSON.stringify(m.id)}` : ''}`,
            signal: d.signal,
          });
          undo.push(() => held.release());
          out.binds.push({ source: held.path, target, readonly: m.readonly });
          break;
        }
        case 'secret': {
          const id = m.id!;
          const source = d.secrets.get(id);
          if (source === undefined) {
            if (m.required) throw new InvalidParameterError(`secret ${id}: not found (pass it with wharf build --secret id=${id},src=<file>)`);
            break;
          }
          const value = await source.read(d.signal);
          if (m.env) out.env.push(`${m.env}=${value.toString('utf8')}`);
          if (m.target) {
            const file = await scratch();
            await writeFile(file, value, { mode: 0o600 });
            await chown(file, m.uid ?? 0, m.gid ?? 0);
            await chmod(file, m.mode ?? 0o400);
            out.binds.push({ source: file, target, readonly: true });
          }
          break;
        }
        case 'ssh': {
          const agent = d.ssh.get(m.id!);
          if (agent === undefined) {
            if (m.required) throw new InvalidParameterError(`no SSH agent "${m.id}" forwarded for RUN --mount=type=ssh (pass one with wharf build --ssh ${m.id === 'default' ? 'default' : `${m.id}=<socket or key files>`})`);
            break;
          }
          const why = agent.unavailable();
          if (why) throw new InvalidParameterError(`SSH agent "${m.id}" for RUN --mount=type=ssh: ${why}`);
          const sock = await scratch();
          const server = await serveAgent(agent, sock);
          undo.push(() => server.close());
          await chown(sock, m.uid ?? 0, m.gid ?? 0);
          await chmod(sock, m.mode ?? 0o600);
          out.binds.push({ source: sock, target, readonly: false });
          out.env.push(`SSH_AUTH_SOCK=${target}`);
          break;
        }
      }
    }
    return out;
  } catch (e) {
    await out.release();
    throw e;
  }
}

/** sun_path holds 108 bytes: a longer socket path is bound through /proc/self/fd/<its directory>. */
const MAX_SOCKET_PATH = 100;

/**
 * RUN --mount=type=ssh: a unix socket at `path` (bound into the step) whose every connection becomes a new
 * connection to the client's agent through its build session. close() stops it and drops the connections.
 */
export async function serveAgent(agent: SshAgentSource, path: string): Promise<{ close(): Promise<void> }> {
  const live = new Set<Socket>();
  // (half-open: a client that shuts down its writing side still gets the agent's answer)
  const server: Server = createServer({ allowHalfOpen: true }, (conn) => {
    live.add(conn);
    conn.on('close', () => live.delete(conn));
    let remote;
    // (the session has just ended: the step's connection is dropped, as the agent would drop it)
    try { remote = agent.connect(); } catch { conn.destroy(); return; }
    // an error either side (the session ended, a reset) drops both; each side's end half-closes the other
    const done = () => { conn.destroy(); remote.destroy(); };
    conn.on('error', done);
    remote.on('error', done);
    conn.on('close', () => remote.destroy());
    conn.pipe(remote);
    remote.pipe(conn);
  });
  const listen = (p: string) => new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(p, () => { server.off('error', rej); res(); });
  });
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) await listen(path);
  else {
    const dir = await open(dirname(path), 'r');
    try { await listen(`/proc/self/fd/${dir.fd}/${basename(path)}`); } finally { await dir.close(); }
  }
  return {
    close: () => new Promise<void>((res) => {
      for (const c of live) c.destroy();
      server.close(() => res());
    }),
  };
}
