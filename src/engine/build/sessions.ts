/**
 * Build sessions: what a client offers a build from its own side, reached through a connection it holds open
 * (`POST /build/session?id=…`, hijacked, carrying lib/mux.ts streams). The API hands each session's Mux here; a
 * build that names a session (its id and the ids it offers) gets sources that open a stream per use:
 * - `ssh:<id>`: a connection to one of the client's SSH agents (RUN --mount=type=ssh);
 * - `secret:<id>`: the value of one of its build secrets, sent once and ended (RUN --mount=type=secret).
 * Nothing of the client's machine is ever named by a path here, and a secret's value is fetched only for the step
 * that mounts it, then dropped with the step's scratch directory: it is never held for the whole build, never in a
 * request header, the query, a log, the context or the cache key.
 */
import { InvalidParameterError } from '../../lib/errors.js';
import type { Mux } from '../../lib/mux.js';
import type { BuildSecretSource, BuildSessionRef, SshAgentSource } from '../../wire/index.js';

/** BuildKit's limit on one secret's size (its secrets provider's 500 KiB). */
export const MAX_SECRET_SIZE = 500 * 1024;

export class BuildSessions {
  private readonly live = new Map<string, Mux>();

  /** Registers a session for as long as its connection lasts. */
  add(id: string, mux: Mux): void {
    this.live.set(id, mux);
    void mux.done().then(() => { if (this.live.get(id) === mux) this.live.delete(id); });
  }

  has(id: string): boolean { return this.live.has(id); }

  /** The ssh agents and secrets a build request names, as sources reached through its session. */
  sources(ref: BuildSessionRef): { ssh: Map<string, SshAgentSource>; secrets: Map<string, BuildSecretSource> } {
    return {
      ssh: new Map(ref.ssh.map((x) => [x, this.agent(ref.id, x)])),
      secrets: new Map(ref.secrets.map((x) => [x, this.secret(ref.id, x)])),
    };
  }

  /** The session `id`, looked up at each use (it may end during the build). */
  private session(id: string): Mux | undefined {
    const m = this.live.get(id);
    return m && !m.closed ? m : undefined;
  }

  private closedMessage(id: string): string {
    return `the client's build session ${id} is closed (the wharf build that offered it has gone)`;
  }

  /** The agent `sshId` of session `id`. */
  agent(id: string, sshId: string): SshAgentSource {
    return {
      unavailable: () => (this.session(id) ? null : this.closedMessage(id)),
      connect: () => {
        const m = this.session(id);
        if (!m) throw new InvalidParameterError(`build session ${id} is closed`);
        return m.open(`ssh:${sshId}`);
      },
    };
  }

  /** The secret `secretId` of session `id`: read from the client at each use, at most MAX_SECRET_SIZE bytes. */
  secret(id: string, secretId: string): BuildSecretSource {
    return {
      read: (signal) => new Promise<Buffer>((resolve, reject) => {
        if (signal?.aborted) { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')); return; }
        const m = this.session(id);
        if (!m) { reject(new InvalidParameterError(`secret ${secretId}: ${this.closedMessage(id)}`)); return; }
        const s = m.open(`secret:${secretId}`);
        const parts: Buffer[] = [];
        let size = 0;
        const fail = (e: Error) => { signal?.removeEventListener('abort', onAbort); s.destroy(); reject(e); };
        const onAbort = () => fail(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
        signal?.addEventListener('abort', onAbort, { once: true });
        s.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_SECRET_SIZE) { fail(new InvalidParameterError(`secret ${secretId}: too big (more than ${MAX_SECRET_SIZE} bytes)`)); return; }
          parts.push(c);
        });
        s.on('error', (e) => fail(new InvalidParameterError(`secret ${secretId}: the client did not send it: ${e.message}`)));
        s.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          s.end();
          resolve(Buffer.concat(parts, size));
        });
      }),
    };
  }
}
