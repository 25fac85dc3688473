/**
 * The client's side of a build session (`wharf build --secret/--ssh`). Secrets and agents stay on this side: the
 * CLI holds a hijacked connection open (`POST /build/session?id=…`, lib/mux.ts streams over it) for the length of
 * the build, and the build request names the session and the ids it offers (X-Wharf-Build-Session,
 * X-Wharf-Build-Secret-Ids, X-Wharf-Build-Ssh-Ids) — never a value or a path. The daemon opens a stream per use:
 * `secret:<id>` gets the secret's value and its end; `ssh:<id>` (a connection a step makes to its agent socket) is
 * joined to the local agent's socket, or served by the CLI's own agent over the key files given (sshagent.ts). So
 * it works with a daemon on another machine (TCP+TLS) as well as on this one.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { EngineClient } from '../client/index.js';
import { Mux, type MuxStream } from '../lib/mux.js';
import { StatusError } from './context.js';
import { loadKeys, serveAgent, type AgentKey } from './sshagent.js';

/** What one --ssh id offers: a local agent's socket, or keys this CLI serves itself. */
export type SshSource = { kind: 'socket'; path: string } | { kind: 'keys'; keys: AgentKey[] };

/**
 * --ssh default|<id>[=<socket>|<key file>[,<key file>…]] (buildx's syntax). `default` (or an id without paths)
 * is $SSH_AUTH_SOCK; one path naming a socket is an agent; otherwise every path is a private key file, loaded
 * now: a bad or encrypted file fails before the build starts.
 */
export async function readSsh(specs: string[], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, SshSource>> {
  const out = new Map<string, SshSource>();
  for (const spec of specs) {
    const i = spec.indexOf('=');
    const id = i < 0 ? spec : spec.slice(0, i);
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new StatusError(`invalid argument "${spec}" for "--ssh" flag: invalid id "${id}"`, 125);
    if (out.has(id)) throw new StatusError(`invalid argument "${spec}" for "--ssh" flag: id "${id}" given twice`, 125);
    const paths = i < 0 ? [] : spec.slice(i + 1).split(',').filter(Boolean);
    if (!paths.length) {
      if (!env.SSH_AUTH_SOCK) throw new StatusError(`--ssh ${spec}: no agent socket or key file given and SSH_AUTH_SOCK is not set`, 1);
      paths.push(env.SSH_AUTH_SOCK);
    }
    const kinds = paths.map((p) => {
      try { return lstatSync(p).isSocket(); } catch (e) { throw new StatusError(`--ssh ${spec}: ${(e as Error).message}`, 1); }
    });
    if (kinds.some(Boolean)) {
      if (paths.length > 1) throw new StatusError(`--ssh ${spec}: give one agent socket, or key files only`, 1);
      out.set(id, { kind: 'socket', path: resolve(paths[0]!) });
      continue;
    }
    try {
      out.set(id, { kind: 'keys', keys: await loadKeys(paths) });
    } catch (e) {
      throw new StatusError(`--ssh ${spec}: ${(e as Error).message}`, 1);
    }
  }
  return out;
}

export interface BuildSession {
  /** The headers that name the session and the ids it offers. */
  headers: Record<string, string>;
  close(): void;
}

/** What a session offers: SSH agents and build secrets, by id. */
export interface SessionOffer {
  ssh: ReadonlyMap<string, SshSource>;
  secrets: ReadonlyMap<string, Buffer>;
}

/** Opens the session on the daemon and serves the secrets and agents through it until close(). */
export async function openBuildSession(client: EngineClient, offer: SessionOffer, warn: (msg: string) => void): Promise<BuildSession> {
  const sources = offer.ssh;
  const id = randomBytes(16).toString('hex');
  let up: { socket: import('node:net').Socket; head: Buffer };
  try {
    up = await client.hijack('/build/session', { query: { id } });
  } catch (e) {
    if ((e as { fromDaemon?: boolean }).fromDaemon && /page not found/i.test((e as Error).message)) {
      throw new StatusError('--secret/--ssh: this daemon has no build sessions (POST /build/session), so it cannot reach secrets or SSH agents here', 1);
    }
    throw e;
  }
  const serve = (stream: MuxStream, label: string) => {
    // (a reset stream: the step's connection ended abruptly, nothing of this side is lost)
    stream.on('error', () => {});
    if (label.startsWith('secret:')) {
      const value = offer.secrets.get(label.slice(7));
      if (!value) { stream.destroy(new Error(`no such secret here: ${label}`)); return; }
      stream.resume(); // (nothing comes the other way)
      stream.end(value);
      return;
    }
    const sshId = label.startsWith('ssh:') ? label.slice(4) : undefined;
    const src = sshId === undefined ? undefined : sources.get(sshId);
    if (!src) { stream.destroy(new Error(`no such agent here: ${label}`)); return; }
    if (src.kind === 'keys') { serveAgent(stream, src.keys); return; }
    const agent = connect(src.path);
    agent.on('error', (e) => {
      warn(`--ssh ${sshId}: agent ${src.path}: ${e.message}`);
      stream.destroy(e);
    });
    // each side's end half-closes the other (pipe); a reset stream drops the agent connection
    stream.on('close', () => agent.destroy());
    stream.pipe(agent);
    agent.pipe(stream);
  };
  const mux = new Mux(up.socket, { client: true, head: up.head, onStream: serve });
  up.socket.on('error', () => { /* reported by the build's own request if the daemon went away */ });
  return {
    headers: {
      'X-Wharf-Build-Session': id,
      ...(offer.ssh.size ? { 'X-Wharf-Build-Ssh-Ids': [...offer.ssh.keys()].join(',') } : {}),
      ...(offer.secrets.size ? { 'X-Wharf-Build-Secret-Ids': [...offer.secrets.keys()].join(',') } : {}),
    },
    close: () => { mux.close(); up.socket.destroy(); },
  };
}
