/**
 * docker exec: exec instances (POST /containers/{id}/exec → ID), started hijacked (POST /exec/{id}/start),
 * inspected for their exit code (GET /exec/{id}/json). The process spec comes from the running container's
 * bundle (same env, caps, cwd) through runtime/spec.ts's buildExecProcess.
 */
import { finished } from 'node:stream/promises';
import { randomFillSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import { buildExecProcess, type OciSpec } from '../runtime/index.js';
import type { Runtime } from '../runtime/index.js';
import type { ContainerService } from './service.js';
import { discardLogger, type Logger } from '../../lib/log.js';

interface ExecRecord {
  ID: string;
  ContainerID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  Env: string[];
  WorkingDir: string;
  DetachKeys: string;
  /** The process has run and ended (or failed to start): no longer one of the container's ExecIDs. */
  ended: boolean;
  /** Not running at one pass of the collector (inspect's CanRemove): gone at the next. */
  canRemove: boolean;
}

/** How often ended exec instances are collected (dockerd's execCommandGC: every 5 minutes, gone at the 2nd pass). */
export const EXEC_GC_MS = 5 * 60_000;

/** 32 random bytes as hex (dockerd's exec IDs), from a pool refilled 128 IDs at a time: one call into OpenSSL per exec cost more than the rest of its creation. */
const idPool = Buffer.alloc(32 * 128);
let idNext = idPool.length;
function newExecId(): string {
  if (idNext === idPool.length) { randomFillSync(idPool); idNext = 0; }
  const id = idPool.toString('hex', idNext, idNext + 32);
  idNext += 32;
  return id;
}

const RUNC_ERR = /level=error msg="((?:[^"\\]|\\.)*)"/;

export class ExecService {
  private readonly execs = new Map<string, ExecRecord>();
  private readonly resizers = new Map<string, (h: number, w: number) => Promise<void>>();
  private readonly pendingSize = new Map<string, [number, number]>();
  constructor(private readonly c: ContainerService, private readonly rt: Runtime, private readonly execRoot: string, private readonly log: Logger = discardLogger) {}

  create(ref: string, body: Record<string, unknown>): { Id: string } {
    const r = this.c.get(ref);
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    const cmd = Array.isArray(body.Cmd) ? (body.Cmd as string[]) : [];
    if (cmd.length === 0) throw new ConflictError('No exec command specified');
    const id = newExecId();
    this.execs.set(id, {
      ID: id, ContainerID: r.ID, Running: false, ExitCode: null, Pid: 0,
      OpenStdin: !!body.AttachStdin, OpenStdout: !!body.AttachStdout, OpenStderr: !!body.AttachStderr,
      ProcessConfig: { tty: !!body.Tty, entrypoint: cmd[0]!, arguments: cmd.slice(1), privileged: !!body.Privileged, user: String(body.User ?? '') },
      Env: Array.isArray(body.Env) ? (body.Env as string[]) : [],
      WorkingDir: String(body.WorkingDir ?? ''),
      DetachKeys: String(body.DetachKeys ?? ''),
      ended: false, canRemove: false,
    });
    // ConsoleSize [height, width] (API 1.42 clients send it; older ones resize right after the start)
    const cs = body.ConsoleSize;
    if (Array.isArray(cs) && Number(cs[0]) > 0 && Number(cs[1]) > 0) this.pendingSize.set(id, [Number(cs[0]), Number(cs[1])]);
    this.c.emit(r, `exec_create: ${this.commandLine(this.execs.get(id)!)}`, { execID: id });
    return { Id: id };
  }

  get(id: string): ExecRecord {
    const e = this.execs.get(id);
    if (!e) throw new NotFoundError(`No such exec instance: ${id}`);
    return e;
  }

  inspect(id: string): Record<string, unknown> {
    const e = this.get(id);
    return {
      ID: e.ID, Running: e.Running, ExitCode: e.ExitCode, ProcessConfig: e.ProcessConfig, OpenStdin: e.OpenStdin,
      OpenStderr: e.OpenStderr, OpenStdout: e.OpenStdout, CanRemove: e.canRemove, ContainerID: e.ContainerID,
      DetachKeys: e.DetachKeys, Pid: e.Pid,
    };
  }

  /**
   * The container's exec instances that have not ended (inspect's ExecIDs; null when none, as docker shows it):
   * dockerd drops an exec from its container when the process exits, and keeps it for `GET /exec/{id}/json`.
   */
  idsOf(containerId: string): string[] | null {
    const ids = [...this.execs.values()].filter((e) => e.ContainerID === containerId && !e.ended).map((e) => e.ID);
    return ids.length ? ids : null;
  }

  /**
   * One pass of dockerd's exec collector: an instance not running is marked (CanRemove) at one pass and deleted at
   * the next, so an exec's exit code can be inspected for 5–10 minutes and the daemon does not grow with every exec
   * (~0.5 KB each) over its life. Instances created and never started go the same way, as in dockerd.
   */
  collect(): void {
    for (const e of [...this.execs.values()]) {
      if (e.Running) continue;
      if (e.canRemove) this.forget(e.ID);
      else e.canRemove = true;
    }
  }

  /** Runs `collect` every EXEC_GC_MS (an unref'd timer); returns the stop. */
  startCollector(everyMs = EXEC_GC_MS): () => void {
    const t = setInterval(() => this.collect(), everyMs);
    t.unref();
    return () => clearInterval(t);
  }

  isTty(id: string): boolean { return this.get(id).ProcessConfig.tty; }

  /** dockerd's "entrypoint args…" of exec events (a trailing space when there are no arguments). */
  private commandLine(e: ExecRecord): string { return `${e.ProcessConfig.entrypoint} ${e.ProcessConfig.arguments.join(' ')}`; }

  /** Forgets an exec instance (healthchecks run one per probe and do not keep them, as dockerd). */
  forget(id: string): void {
    this.execs.delete(id);
    this.resizers.delete(id);
    this.pendingSize.delete(id);
  }

  /**
   * Runs the exec'd process; resolves with its exit code once its output has ended. `signal` kills the process
   * (SIGKILL) when it aborts (a healthcheck's timeout).
   */
  async start(id: string, s: { stdout?: (b: Buffer) => void; stderr?: (b: Buffer) => void; stdin?: Readable }, signal?: AbortSignal): Promise<number> {
    const e = this.get(id);
    if (e.Running || e.ExitCode !== null) throw new ConflictError(`Error: Exec command ${id} has already run`);
    const r = this.c.get(e.ContainerID);
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    e.Running = true;
    this.c.emit(r, `exec_start: ${this.commandLine(e)}`, { execID: id });
    let exitCode = 126;
    try {
      const base = JSON.parse(await readFile(join(this.execRoot, 'bundles', r.ID, 'config.json'), 'utf8')) as OciSpec;
      const proc = await buildExecProcess(base, base.root.path, {
        args: [e.ProcessConfig.entrypoint, ...e.ProcessConfig.arguments], env: e.Env, cwd: e.WorkingDir,
        user: e.ProcessConfig.user, terminal: e.ProcessConfig.tty, privileged: e.ProcessConfig.privileged,
      });
      // a known size is the terminal's from the start (runc sets it before the process runs)
      const size = this.pendingSize.get(id);
      if (e.ProcessConfig.tty && size) proc.consoleSize = { height: size[0], width: size[1] };
      const h = await this.rt.exec(r.ID, proc, { stdin: e.OpenStdin, tty: e.ProcessConfig.tty });
      e.Pid = h.pid;
      if (signal) {
        if (signal.aborted) h.kill('SIGKILL');
        else signal.addEventListener('abort', () => h.kill('SIGKILL'), { once: true });
      }
      // the output's listeners first, before any await: a short process may be done already
      let started = false;
      let startError: string | null = null;
      // a pipe cut when the process is killed ends the output as well as its end would
      const outDone = finished(h.stdout).catch(this.log.onError('exec stdout', { container: r.ID, exec: id }, 'debug'));
      const errDone = finished(h.stderr).catch(this.log.onError('exec stderr', { container: r.ID, exec: id }, 'debug'));
      h.stdout.on('data', (b: Buffer) => { started = true; s.stdout?.(b); });
      h.stderr.on('data', (b: Buffer) => {
        const m = started ? null : RUNC_ERR.exec(b.toString('utf8'));
        if (m) { startError = m[1]!.replace(/\\(.)/g, '$1').replace(/^exec failed: /, ''); return; }
        started = true;
        s.stderr?.(b);
      });
      if (h.resize) {
        this.resizers.set(id, h.resize);
        // a size asked for before the process existed (the CLI resizes right after start)
        const pending = this.pendingSize.get(id);
        if (pending) await h.resize(pending[0], pending[1]).catch(this.log.onError('resizing an exec\'s terminal', { container: r.ID, exec: id }));
      }
      if (h.stdin && s.stdin) s.stdin.pipe(h.stdin as Writable); else h.stdin?.end();
      let code = await h.exit;
      await Promise.all([outDone, errDone]);
      if (startError !== null) {
        s.stdout?.(Buffer.from(`OCI runtime exec failed: exec failed: ${startError}: unknown\r\n`));
        code = 126;
      }
      e.ExitCode = code;
      exitCode = code;
      return code;
    } catch (err) {
      e.ExitCode = 126;
      throw err;
    } finally {
      this.c.emit(r, 'exec_die', { execID: id, exitCode: String(exitCode) });
      e.Running = false;
      e.ended = true;
      this.resizers.delete(id);
      this.pendingSize.delete(id);
      s.stdin?.unpipe();
    }
  }

  /** POST /exec/{id}/resize: the exec's terminal gets the new size (remembered if it has not started yet). */
  async resize(id: string, height: number, width: number): Promise<void> {
    const e = this.get(id);
    if (!e.ProcessConfig.tty) return;
    const r = this.resizers.get(id);
    if (r) await r(height, width);
    else this.pendingSize.set(id, [height, width]);
  }
}
