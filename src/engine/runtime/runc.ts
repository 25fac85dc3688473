/**
 * The OCI runtime seam: containers created and monitored by conmon, driving runc (or crun, or any
 * runc-compatible binary chosen by path).
 *
 * Design (decided here, for the containers layer above):
 * - EVERY container, attached or detached, is created through conmon (`conmon … -r RUNTIME -b BUNDLE`).
 *   conmon double-forks, so the container and its monitor outlive wharfd; conmon writes the container's
 *   stdout/stderr to a k8s-file log (each line tagged with its stream, so stdout and stderr stay separate
 *   without a tty), and its exit status to `<execRoot>/exits/<id>`. A restarted wharfd rebuilds everything
 *   from `<execRoot>/containers/<id>/state.json` + the runtime's own state (`RUNTIME --root <execRoot>/runc`)
 *   + the exit file. One code path instead of two (runc-direct for foreground, conmon for detached) means
 *   `docker run` (attached) containers also survive a daemon restart, as with dockerd's live-restore.
 * - Creation reports back over conmon's sync pipe (`_OCI_SYNCPIPE`, fd 3): `{"pid": N}` or
 *   `{"pid": -1, "message": …}` with the runtime's error (e.g. exec: "x": executable file not found in $PATH).
 * - Attaching (stdin, and live output) goes through conmon's attach socket `<sockDir>/<id>/attach`, a
 *   SOCK_SEQPACKET socket: inbound packets are raw stdin bytes, outbound packets carry a one-byte stream tag
 *   (2 stdout, 3 stderr) before the payload. Node's `net` cannot open SEQPACKET sockets, so wharfd runs a tiny
 *   relay in perl (perl-base is Essential on Debian, ~5 ms to start; one is kept started ahead of need, waiting to
 *   be told its socket, so an attach does not wait for it) that maps the socket onto plain pipes: our
 *   stdin pipe → packets, tag 2 → its stdout, tag 3 → its stderr. Attach before `start` to miss nothing; output
 *   before an attach is still in the log. Swapping the relay for a native SEQPACKET binding later changes
 *   only `attach()`. Window size changes: "1 H W\n" written to the bundle's `ctl` FIFO (conmon's resize message).
 * - `exec` without a tty runs `RUNTIME exec --process spec.json` as a child of wharfd with pipes (stdout and
 *   stderr separate; docker's exec sessions are tied to their client anyway). With a tty, `RUNTIME exec -t`
 *   needs a controlling terminal we cannot give from Node, so conmon's exec mode allocates the pty and serves
 *   it on an attach socket like a container's (see execTty), with resize through its `ctl` FIFO.
 * - Runtime selection: "runc" (default, /usr/sbin/runc), "crun" (looked up in PATH), or any path.
 * - Logs: `readLogs()` parses "TIMESTAMP STREAM F|P CONTENT" lines (P = partial line, no newline) with
 *   since/until/tail/follow.
 */
import { execCollect, spawnChild, type Child } from '../../lib/exec.js';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, watch, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { pidfdOpen, pidfdSignal } from '../fsroot/index.js';
import { mkdir, readFile, rm, rmdir, stat, writeFile, open, unlink, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { writeFileAtomic } from '../../lib/atomic.js';
import { ConflictError, NotFoundError, SystemError } from '../../lib/errors.js';
import { isENOENT } from '../../lib/fsutil.js';
import { discardLogger, type Logger } from '../../lib/log.js';
import { LogRotator, type LogSettings } from './logs.js';

export type Stdio = 'pipes' | 'tty' | 'null';

export interface CreateOptions {
  /** pipes: stdin kept open (attach can write it); tty: a pseudo-terminal; null: no stdin. */
  stdio: Stdio;
  /** k8s-file log path. */
  logPath: string;
  /** Terminal size for tty containers. */
  consoleSize?: { height: number; width: number };
  /** The container's log driver and rotation (default: json-file, never rotated). */
  log?: LogSettings;
  /** The OCI runtime for this container (HostConfig.Runtime: a name or a path); the daemon's default when absent. */
  runtime?: string;
}

export type Status = 'created' | 'running' | 'paused' | 'stopped';

export interface ContainerState {
  id: string;
  status: Status;
  /** Host PID of the container's init (0 once stopped). */
  pid: number;
  /** Set once stopped: the exit status (128+signal when killed by a signal). */
  exitCode?: number;
  /** When the exit file was written. */
  finishedAt?: Date;
  bundle: string;
}

export interface ExecStdio {
  stdin?: boolean;
  tty?: boolean;
}

export interface ExecHandle {
  pid: number;
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  /** Resolves to the exit code of the exec'd process. */
  exit: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
  /** tty execs only. */
  resize?(height: number, width: number): Promise<void>;
}

export interface AttachHandle {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the container's output ends (socket closed by conmon) or the relay dies. */
  done: Promise<void>;
  /** Drops the attachment without touching the container. */
  detach(): void;
}

export interface Runtime {
  readonly name: string;
  create(id: string, bundleDir: string, opts: CreateOptions): Promise<{ pid: number }>;
  start(id: string): Promise<void>;
  kill(id: string, signal?: string | number, all?: boolean): Promise<void>;
  state(id: string): Promise<ContainerState>;
  /** Resolves with the exit code when the container has stopped. */
  wait(id: string, signal?: AbortSignal): Promise<number>;
  delete(id: string, force?: boolean): Promise<void>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  exec(id: string, processSpec: object, stdio: ExecStdio): Promise<ExecHandle>;
  attach(id: string): Promise<AttachHandle>;
  resize(id: string, height: number, width: number): Promise<void>;
  /** Changes a live container's cgroup limits (`RUNTIME update --resources -`, an OCI LinuxResources object). */
  update(id: string, resources: Record<string, unknown>): Promise<void>;
  /** IDs with state under the exec root (for a restarted daemon). */
  list(): Promise<string[]>;
}

/** The runtime reported an error (create failures carry the runtime's message). */
export class RuntimeError extends SystemError {
  /**
   * `message` is dockerd 20.10 + containerd 1.6 + runc 1.1's wording, e.g. "failed to create shim task: OCI runtime
   * create failed: runc create failed: unable to start container process: exec: \"x\": executable file not found in
   * $PATH: unknown"; `runtimeMessage` is the runtime's own part ("unable to start …"), for docker's exit codes
   * (127 not found, 126 permission denied).
   */
  constructor(readonly op: string, readonly runtimeMessage: string, runtimeName = 'runc') {
    super(op === 'create'
      ? `failed to create shim task: OCI runtime create failed: ${runtimeName} create failed: ${runtimeMessage}: unknown`
      : `OCI runtime ${op} failed: ${runtimeMessage}: unknown`);
  }
}

export interface RuntimeConfig {
  /** Exec root for runtime state (e.g. /run/wharf/runtime). */
  root: string;
  /** "runc" (default), "crun", or a path to a runc-compatible binary. */
  runtime?: string;
  conmonPath?: string;
  perlPath?: string;
  log?: Logger;
}

interface Persisted {
  id: string;
  bundle: string;
  logPath: string;
  stdio: Stdio;
  conmonPid: number;
  pid: number;
  runtime: string;
  created: string;
  /** Log rotation by LogRotator (max-file > 1), taken up again by a daemon that re-adopts the container. */
  rotate?: { maxFile: number; compress?: boolean };
}

/** The part of runc's own `state.json` (its libcontainer state) that a delete of an exited container needs. */
interface RuncState {
  cgroup_paths?: Record<string, string>;
  intel_rdt_path?: string;
  config?: { Hooks?: Record<string, unknown[] | null>; cgroups?: { systemd?: boolean } };
}

/** A runtime name resolved in the usual sbin/bin directories; a path is used as given. */
function resolveRuntime(name: string): string {
  if (name.includes('/')) return name;
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (existsSync(join(d, name))) return join(d, name);
  }
  return name === 'runc' ? '/usr/sbin/runc' : `/usr/bin/${name}`;
}

/** Extracts msg="…" from a logrus line, else the text. */
export function runtimeMessage(raw: string): string {
  const lines = raw.trim().split('\n').filter(Boolean);
  let last = lines[lines.length - 1] ?? raw;
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  if (m) last = m[1]!.replace(/\\(.)/g, '$1');
  return last.replace(/^runc (create|exec|start) failed: /, '').trim();
}

/** How long after an attach took the spare relay the next one is started. */
const SPARE_DELAY_MS = 300;
/**
 * How long a spare relay waits for an attach before it is let go: an idle daemon keeps no perl process (~7 MB
 * resident) for an attach that may never come; the first attach after a quiet spell starts its relay itself.
 */
const SPARE_IDLE_MS = 5000;

const RELAY = `use strict; use Socket;
my $path = $ARGV[0];
if (!defined $path) { open(my $in, '<&=', 4) or die "fd 4: $!\\n"; $path = <$in>; close($in); defined $path or exit 0; chomp $path; my ($d, $n) = split(/\\0/, $path, 2); chdir($d) or die "chdir $d: $!\\n"; $path = $n; }
socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!\\n";
connect($s, pack_sockaddr_un($path)) or die "connect: $!\\n";
binmode STDOUT; binmode STDERR; $SIG{PIPE} = 'IGNORE';
if (open(my $ready, '>&=', 3)) { syswrite($ready, "1"); close($ready); }
my $pid = fork();
if ($pid == 0) { my $b; while (sysread(STDIN, $b, 8192)) { defined(send($s, $b, 0)) or last; } shutdown($s, 1); exit 0; }
my $b;
while (defined(recv($s, $b, 8193, 0)) && length($b)) { my $t = ord(substr($b, 0, 1)); my $d = substr($b, 1); if ($t == 3) { syswrite(STDERR, $d) } else { syswrite(STDOUT, $d) } }
kill 'KILL', $pid; exit 0;
`;


const run = (bin: string, args: string[], input?: string) => execCollect(bin, args, input === undefined ? {} : { input });

/** A signal as its number (`KILL`, `SIGTERM`, `15`, 15), null for a name this system does not know. */
function signalNumber(sig: string | number | undefined): number | null {
  const name = signalName(sig);
  if (/^\d+$/.test(name)) return Number(name);
  return (osConstants.signals as Record<string, number>)[`SIG${name}`] ?? null;
}

function signalName(sig: string | number | undefined): string {
  if (sig === undefined) return 'KILL';
  if (typeof sig === 'number') return String(sig);
  const s = sig.toUpperCase();
  return /^\d+$/.test(s) ? s : s.replace(/^SIG/, '');
}

export class ConmonRuntime implements Runtime {
  readonly name: string;
  readonly runtimePath: string;
  private readonly conmon: string;
  private readonly perl: string;
  private readonly stateRoot: string;
  private readonly runtimeRoot: string;
  readonly exitDir: string;
  private readonly sockDir: string;
  private readonly log: Logger;
  private readonly rotators = new Map<string, LogRotator>();

  constructor(cfg: RuntimeConfig) {
    this.log = cfg.log ?? discardLogger;
    const r = cfg.runtime ?? 'runc';
    this.runtimePath = resolveRuntime(r);
    this.name = r.includes('/') ? r.split('/').pop()! : r;
    this.conmon = cfg.conmonPath ?? '/usr/bin/conmon';
    this.perl = cfg.perlPath ?? '/usr/bin/perl';
    this.stateRoot = join(cfg.root, 'containers');
    this.runtimeRoot = join(cfg.root, this.name);
    this.exitDir = join(cfg.root, 'exits');
    this.sockDir = join(cfg.root, 's');
  }

  /** The runtime binary and its state root for a container (its own, recorded at create), else the default. */
  private runtimeOf(p?: { runtime: string }): { path: string; root: string } {
    if (!p || p.runtime === this.runtimePath) return { path: this.runtimePath, root: this.runtimeRoot };
    return { path: p.runtime, root: join(dirname(this.stateRoot), basename(p.runtime)) };
  }

  private rt(args: string[], p?: { runtime: string }) {
    const { path, root } = this.runtimeOf(p);
    return run(path, ['--root', root, ...args]);
  }

  private async rtOk(op: string, args: string[], p?: { runtime: string }): Promise<string> {
    const r = await this.rt(args, p);
    if (r.code !== 0) {
      const msg = runtimeMessage(r.stderr || r.stdout);
      if (/does not exist|not found|container .* does not exist/.test(msg)) throw new NotFoundError(`No such container: ${args[args.length - 1]}`);
      throw new RuntimeError(op, msg);
    }
    return r.stdout;
  }

  private async load(id: string): Promise<Persisted> {
    try {
      return JSON.parse(await readFile(join(this.stateRoot, id, 'state.json'), 'utf8')) as Persisted;
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(`No such container: ${id}`, { cause: e });
      throw new SystemError(`runtime state of ${id}: ${(e as Error).message}`, { cause: e });
    }
  }

  async create(id: string, bundleDir: string, opts: CreateOptions): Promise<{ pid: number }> {
    const dir = join(this.stateRoot, id);
    if (existsSync(join(dir, 'state.json'))) throw new ConflictError(`container ${id} already exists in the runtime`);
    await Promise.all([
      mkdir(dir, { recursive: true }), mkdir(this.exitDir, { recursive: true }),
      mkdir(this.sockDir, { recursive: true }), mkdir(this.runtimeRoot, { recursive: true }),
    ]);
    await rm(join(this.exitDir, id), { force: true });
    await rm(join(this.sockDir, id), { force: true });
    const rtm = this.runtimeOf({ runtime: opts.runtime ? resolveRuntime(opts.runtime) : this.runtimePath });
    await mkdir(rtm.root, { recursive: true });
    const args = [
      '--api-version', '1', '-c', id, '-u', id, '-n', id,
      '-r', rtm.path, '--runtime-arg', `--root=${rtm.root}`,
      '-b', bundleDir, '-p', join(dir, 'pid'), '-P', join(dir, 'conmon.pid'),
      '-l', opts.log?.driver === 'none' ? 'none:' : `k8s-file:${opts.logPath}`, '--exit-dir', this.exitDir, '--socket-dir-path', this.sockDir,
      '--log-level', 'error',
    ];
    // at max-size conmon starts its file over; with max-file > 1 the LogRotator below keeps the old ones
    const rotate = opts.log && opts.log.driver !== 'none' && opts.log.maxSize !== null ? opts.log : null;
    if (rotate) args.push('--log-size-max', String(rotate.maxSize));
    if (opts.stdio === 'tty') args.push('-t', '-i');
    else if (opts.stdio === 'pipes') args.push('-i');
    const child = spawnChild(this.conmon, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3' },
      detached: true,
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    let sync = '';
    const raw = await new Promise<{ data?: number; pid?: number; message?: string }>((resolve, reject) => {
      const pipe = child.stdio[3] as Readable;
      const tryParse = () => {
        const end = sync.indexOf('}');
        if (end < 0) return false;
        try { resolve(JSON.parse(sync.slice(0, end + 1))); } catch (e) { reject(e); }
        return true;
      };
      pipe.on('data', (d: Buffer) => { sync += d.toString(); tryParse(); });
      pipe.on('end', () => { if (!tryParse()) reject(new RuntimeError('create', stderr.trim() || 'conmon exited without reporting')); });
      pipe.on('error', reject);
    });
    (child.stdio[3] as Readable).destroy();
    child.stderr!.destroy();
    child.unref();
    // conmon's API v1 reports {"data": pid}; older ones {"pid": pid}
    const msg = { pid: raw.data ?? raw.pid ?? -1, message: raw.message };
    if (msg.pid <= 0) {
      await rm(dir, { recursive: true, force: true });
      await this.rt(['delete', '--force', id], { runtime: rtm.path }).catch(this.log.onError('removing a container conmon failed to create', { container: id }));
      await rm(join(this.exitDir, id), { force: true });
      await rm(join(this.sockDir, id), { force: true });
      throw new RuntimeError('create', runtimeMessage(msg.message ?? stderr), this.name);
    }
    // signals to the init go through a descriptor of it taken now, while it is known to be the container's
    this.dropPidfd(id);
    try { this.pidfds.set(id, pidfdOpen(msg.pid)); } catch (e) { this.log.debug('no pidfd for the container\'s init: signals through the runtime', { container: id, error: e }); }
    let conmonPid = 0;
    try { conmonPid = Number((await readFile(join(dir, 'conmon.pid'), 'utf8')).trim()); } catch (e) { this.log.warn('conmon pid unknown: its death will not be noticed', { container: id, error: e }); }
    const st: Persisted = {
      id, bundle: bundleDir, logPath: opts.logPath, stdio: opts.stdio, conmonPid, pid: msg.pid,
      runtime: rtm.path, created: new Date().toISOString(),
      ...(rotate && rotate.maxFile > 1 ? { rotate: { maxFile: rotate.maxFile, compress: rotate.compress } } : {}),
    };
    // not synced: the exec root does not outlive a reboot (tmpfs), and neither does the container it describes
    await writeFileAtomic(join(dir, 'state.json'), JSON.stringify(st), 0o600, { durable: false });
    if (opts.stdio === 'tty' && opts.consoleSize) await this.resize(id, opts.consoleSize.height, opts.consoleSize.width).catch(this.log.onError('setting the initial terminal size', { container: id }));
    if (st.rotate) await this.rotateLog(st);
    return { pid: msg.pid };
  }

  /**
   * Starts a created container. With runc, what `runc start` does, without its process: a created container's init
   * waits in an open(2) for writing of the state directory's `exec.fifo`; opening it for reading lets it go on, it
   * writes one byte and execs the user's process (its end closes: end of file), and the fifo's removal marks the
   * container as running for runc (`runc state` says "created" while it exists). An init that dies before opening
   * its end would leave our open waiting: it is unblocked with a writer of our own, and reading nothing means the
   * process is gone (runc's "container process is already dead"). Other runtimes, or a missing fifo: `RUNTIME start`.
   */
  async start(id: string): Promise<void> {
    const p = await this.load(id);
    const rtm = this.runtimeOf(p);
    const fifo = join(rtm.root, id, 'exec.fifo');
    if (basename(rtm.path) !== 'runc' || !existsSync(fifo)) {
      await this.rtOk('start', ['start', id], p);
      return;
    }
    const watchdog = setInterval(() => {
      if (alive(p.pid)) return;
      clearInterval(watchdog);
      // our reader is counted (it waits for a writer), so a non-blocking writer's open succeeds and releases it
      void open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK).then((w) => w.close(), () => {});
    }, 50);
    try {
      const fh = await open(fifo, 'r');
      let data: Buffer;
      try { data = await fh.readFile(); } finally { await fh.close(); }
      if (data.length === 0) throw new RuntimeError('start', 'container process is already dead');
      await unlink(fifo);
    } catch (e) {
      if (isENOENT(e)) throw new ConflictError(`container ${id} is not in the created state`);
      throw e;
    } finally {
      clearInterval(watchdog);
    }
  }

  /** Descriptors of running inits (taken at create; a daemon that adopted a container has none: `RUNTIME kill`). */
  private readonly pidfds = new Map<string, number>();

  private dropPidfd(id: string): void {
    const fd = this.pidfds.get(id);
    if (fd === undefined) return;
    this.pidfds.delete(id);
    try { closeSync(fd); } catch (e) { this.log.warn('closing a pidfd', { container: id, error: e }); }
  }

  /**
   * Signals the container's init (`all`: every process of its cgroup, through the runtime). What `runc kill` does
   * for the init, through the pidfd taken at create when there is one: no runtime process, and never another
   * process that got the number later.
   */
  async kill(id: string, signal?: string | number, all = false): Promise<void> {
    const fd = this.pidfds.get(id);
    const num = signalNumber(signal);
    if (!all && fd !== undefined && num !== null) {
      if (!pidfdSignal(fd, num)) throw new ConflictError(`Container ${id} is not running`);
      return;
    }
    const p = await this.load(id);
    const r = await this.rt(['kill', ...(all ? ['--all'] : []), id, signalName(signal)], p);
    if (r.code !== 0) {
      const m = runtimeMessage(r.stderr);
      if (/not running|process already finished|container not running/.test(m)) {
        throw new ConflictError(`Container ${id} is not running`);
      }
      throw new RuntimeError('kill', m);
    }
  }

  private async exitCode(id: string): Promise<{ code: number; at: Date } | null> {
    const p = join(this.exitDir, id);
    try {
      const [txt, s] = await Promise.all([readFile(p, 'utf8'), stat(p)]);
      if (txt.trim() === '') return null;
      return { code: Number(txt.trim()), at: s.mtime };
    } catch (e) {
      // no exit file yet: still running
      if (!isENOENT(e)) this.log.warn('reading an exit file', { container: id, error: e });
      return null;
    }
  }

  async state(id: string): Promise<ContainerState> {
    const p = await this.load(id);
    const ex = await this.exitCode(id);
    if (ex) return { id, status: 'stopped', pid: 0, exitCode: ex.code, finishedAt: ex.at, bundle: p.bundle };
    const r = await this.rt(['state', id], p);
    if (r.code !== 0) {
      // the runtime forgot it (reboot, /run wiped): stopped, exit unknown
      return { id, status: 'stopped', pid: 0, exitCode: 255, bundle: p.bundle };
    }
    const s = JSON.parse(r.stdout) as { status: string; pid: number };
    if (s.status === 'stopped') {
      // conmon writes the exit file just after the runtime reports stopped; give it a moment.
      for (let i = 0; i < 20; i++) {
        const e = await this.exitCode(id);
        if (e) return { id, status: 'stopped', pid: 0, exitCode: e.code, finishedAt: e.at, bundle: p.bundle };
        if (!alive(p.conmonPid)) break;
        await new Promise((r2) => setTimeout(r2, 10));
      }
      return { id, status: 'stopped', pid: 0, exitCode: 255, bundle: p.bundle };
    }
    return { id, status: s.status as Status, pid: s.pid, bundle: p.bundle };
  }

  /** Starts the container's log rotator (once per daemon; it ends with conmon). */
  private async rotateLog(p: Persisted): Promise<void> {
    if (!p.rotate || p.conmonPid <= 0 || this.rotators.has(p.id) || !alive(p.conmonPid)) return;
    const rot = new LogRotator(p.logPath, p.rotate.maxFile, () => {
      const up = alive(p.conmonPid);
      if (!up) this.rotators.delete(p.id);
      return up;
    }, p.rotate.compress === true);
    this.rotators.set(p.id, rot);
    await rot.start();
  }

  async wait(id: string, signal?: AbortSignal): Promise<number> {
    const p = await this.load(id);
    // a daemon that re-adopts a running container takes up its log rotation again
    await this.rotateLog(p).catch(() => {});
    await mkdir(this.exitDir, { recursive: true });
    return new Promise<number>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, code?: number) => {
        if (done) return;
        done = true;
        w.close();
        clearInterval(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err); else resolve(code!);
      };
      const check = async () => {
        const e = await this.exitCode(id);
        if (e) return finish(null, e.code);
        // monitor gone without an exit file (killed with -9): the container cannot be reaped by it
        if (p.conmonPid && !alive(p.conmonPid)) {
          const e2 = await this.exitCode(id);
          if (e2) return finish(null, e2.code);
          const s = await this.rt(['state', id], p).catch((e) => { this.log.warn('asking the runtime for a container\'s state', { container: id, error: e }); return null; });
          if (!s || s.code !== 0 || (JSON.parse(s.stdout) as { status: string }).status === 'stopped') finish(null, 255);
        }
      };
      const w = watch(this.exitDir, (_ev, name) => { if (name === id) void check(); });
      // the exit file's watch is what ends a wait; the timer only notices a monitor that died (kill -9: no exit file
      // to come, or a watch event missed) with one read of /proc per tick — reading the exit file of every running
      // container twice a second was most of an idle daemon's CPU with 20 containers
      const timer = setInterval(() => { if (!p.conmonPid || !alive(p.conmonPid)) void check(); }, 500);
      const onAbort = () => finish(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort);
      void check();
    });
  }

  async delete(id: string, force = false): Promise<void> {
    this.dropPidfd(id);
    const p = await this.load(id);
    const r = await this.deleteExited(id, p) ? { code: 0, stderr: '' } : await this.rt(['delete', ...(force ? ['--force'] : []), id], p);
    if (r.code !== 0 && !/does not exist/.test(r.stderr)) {
      const m = runtimeMessage(r.stderr);
      if (/cannot delete container .* that is not stopped|is not stopped|running/.test(m)) {
        throw new ConflictError(`You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
      }
      throw new RuntimeError('delete', m);
    }
    // conmon exits once it has reaped the container and written the exit file
    for (let i = 0; i < 200 && p.conmonPid && alive(p.conmonPid); i++) await new Promise((r2) => setTimeout(r2, 5));
    await Promise.all([
      rm(join(this.stateRoot, id), { recursive: true, force: true }),
      rm(join(this.exitDir, id), { force: true }),
      rm(join(this.sockDir, id), { force: true }),
      rm(join(p.bundle, 'attach'), { force: true }),
      rm(join(p.bundle, 'ctl'), { force: true }),
      rm(join(p.bundle, 'winsz'), { force: true }),
    ]);
  }

  /**
   * What `runc delete` does for a container whose init has exited (conmon reaped it and wrote its exit file), without
   * a runc process (one fewer per exit): its cgroups removed (rmdir: empty once the init is gone, its PID namespace
   * with it) and runc's state directory removed. Anything else goes through the runtime: another runtime, hooks in
   * its config (poststop), a systemd cgroup, Intel RDT, or a cgroup that will not go (processes left outside a PID
   * namespace of its own, or child cgroups: `runc delete --force` kills and removes them). false: not done here.
   */
  private async deleteExited(id: string, p: Persisted): Promise<boolean> {
    const rtm = this.runtimeOf(p);
    if (basename(rtm.path) !== 'runc' || !(await this.exitCode(id))) return false;
    const dir = join(rtm.root, id);
    let st: RuncState;
    try {
      st = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as RuncState;
    } catch (e) {
      if (isENOENT(e)) return false; // runc says whether it knows the container
      throw e;
    }
    const hooks = Object.values(st.config?.Hooks ?? {}).some((h) => Array.isArray(h) && h.length > 0);
    if (hooks || st.config?.cgroups?.systemd || st.intel_rdt_path) return false;
    const paths = [...new Set(Object.values(st.cgroup_paths ?? {}))];
    if (paths.some((c) => typeof c !== 'string' || !c.startsWith('/sys/fs/cgroup/') || c.includes('/../'))) return false;
    const removed = await Promise.all(paths.map((c) => rmdir(c).then(() => true, (e: NodeJS.ErrnoException) => e.code === 'ENOENT')));
    if (removed.includes(false)) return false; // the runtime retries, kills what is left and removes the rest
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  async pause(id: string): Promise<void> { const p = await this.load(id); await this.rtOk('pause', ['pause', id], p); }
  async unpause(id: string): Promise<void> { const p = await this.load(id); await this.rtOk('resume', ['resume', id], p); }

  async update(id: string, resources: Record<string, unknown>): Promise<void> {
    const { path, root } = this.runtimeOf(await this.load(id));
    const r = await run(path, ['--root', root, 'update', '--resources', '-', id], JSON.stringify(resources));
    if (r.code !== 0) throw new RuntimeError('update', runtimeMessage(r.stderr || r.stdout));
  }

  async exec(id: string, processSpec: object, stdio: ExecStdio): Promise<ExecHandle> {
    const p = await this.load(id);
    if (stdio.tty) return this.execTty(id, p, processSpec);
    const dir = join(this.stateRoot, id);
    const specPath = join(dir, `exec-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
    await writeFile(specPath, JSON.stringify({ ...processSpec, terminal: false }));
    const rtm = this.runtimeOf(p);
    const args = ['--root', rtm.root, 'exec', '--process', specPath, id];
    const child = spawnChild(rtm.path, args, { stdio: [stdio.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const exit = new Promise<number>((resolve) => {
      child.on('exit', (code, sig) => {
        void unlink(specPath).catch(this.log.unlessGone('removing an exec process spec', { container: id }));
        resolve(code ?? (sig ? 128 + (osSignals[sig] ?? 0) : 255));
      });
    });
    return {
      pid: child.pid!, stdin: child.stdin, stdout: child.stdout!, stderr: child.stderr!, exit,
      kill: (s) => { child.kill(s ?? 'SIGKILL'); },
    };
  }

  /**
   * exec with a terminal: conmon in exec mode allocates the pty and serves it on an attach socket.
   * Handshake (conmon's pipes): start pipe byte → attach pipe says the socket is ready → we connect → second
   * start byte → sync pipe {"data": pid} → … → sync pipe {"data": exit code}. Resize via `<dir>/ctl`.
   */
  private async execTty(id: string, p: Persisted, processSpec: object): Promise<ExecHandle> {
    const eid = `e${randomBytes(8).toString('hex')}`;
    const dir = join(this.stateRoot, id, 'exec', eid);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'process.json'), JSON.stringify({ ...processSpec, terminal: true }));
    const rtm = this.runtimeOf(p);
    const child = spawnChild(this.conmon, [
      '--api-version', '1', '-c', id, '-u', eid, '-r', rtm.path, '--runtime-arg', `--root=${rtm.root}`,
      '-b', dir, '-p', join(dir, 'pid'), '-l', `k8s-file:${join(dir, 'log')}`, '--exit-dir', dir,
      '--socket-dir-path', this.sockDir, '-e', '--exec-process-spec', join(dir, 'process.json'), '-t', '-i', '--exec-attach',
      '--log-level', 'error',
    ], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3', _OCI_ATTACHPIPE: '4', _OCI_STARTPIPE: '5' },
    });
    const pipes = child.stdio as unknown as (Readable & Writable)[];
    const [syncPipe, attachPipe, startPipe] = [pipes[3]! as Readable, pipes[4]! as Readable, pipes[5]! as Writable];
    startPipe.on('error', () => {});
    let conmonErr = '';
    child.stderr!.on('data', (d: Buffer) => { conmonErr += d.toString(); });
    const messages = jsonMessages(syncPipe);
    const conmonExited = once(child, 'exit').catch(this.log.onError('conmon of an exec', { container: id }));
    const cleanup = async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(join(this.sockDir, eid), { force: true });
    };
    try {
      startPipe.write('0');
      await jsonMessages(attachPipe).next();
      const a = await this.relay(join(this.sockDir, eid, 'attach'), id);
      startPipe.write('0');
      const first = (await messages.next()).value as { data?: number; message?: string } | undefined;
      if (!first || (first.data ?? -1) <= 0) {
        a.detach();
        throw new RuntimeError('exec', runtimeMessage(first?.message ?? conmonErr ?? 'exec failed'));
      }
      const exit = (async () => {
        const m = (await messages.next()).value as { data?: number } | undefined;
        await a.done;
        await conmonExited;
        await cleanup();
        return m?.data ?? 255;
      })();
      return {
        pid: first.data!, stdin: a.stdin, stdout: a.stdout, stderr: a.stderr, exit,
        kill: (s) => { try { process.kill(first.data!, s ?? 'SIGKILL'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; } },
        resize: (h: number, w: number) => writeResize(join(dir, 'ctl'), h, w),
      };
    } catch (e) {
      child.kill('SIGKILL');
      await cleanup();
      throw e;
    }
  }

  /**
   * A relay started ahead of need, waiting on its fd 4 for the socket to connect to: an attach (`docker run`
   * attaches before the start) then costs no perl start-up. One is kept, for SPARE_IDLE_MS at most; it exits when
   * the daemon does or lets it go (end of file on fd 4).
   */
  private spare: Child | null = null;

  private spawnSpare(): void {
    if (this.spare) return;
    let child: Child;
    try { child = spawnChild(this.perl, ['-e', RELAY], { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] }); } catch (e) {
      this.log.warn('starting an attach relay', { error: e });
      return;
    }
    const idle = setTimeout(() => {
      if (this.spare !== child) return;
      this.spare = null;
      // end of file on fd 4: the relay exits 0 without connecting anywhere
      (child.stdio[4] as Writable | null)?.end();
    }, SPARE_IDLE_MS);
    idle.unref();
    child.once('exit', () => { clearTimeout(idle); if (this.spare === child) this.spare = null; });
    child.unref();
    for (const s of child.stdio) (s as { unref?: () => void } | null)?.unref?.();
    this.spare = child;
  }

  /**
   * The next spare, started SPARE_DELAY_MS after an attach took one: perl's start-up (~50 ms of CPU on this 2-core
   * VM) is kept off the path of the start that attached (between the attach and the init's release). Starting it
   * no longer stops the daemon (lib/exec.ts does not fork it).
   */
  private spareTimer: NodeJS.Timeout | null = null;

  private spareLater(): void {
    if (this.spare) return;
    if (this.spareTimer) return;
    this.spareTimer = setTimeout(() => { this.spareTimer = null; this.spawnSpare(); }, SPARE_DELAY_MS);
    this.spareTimer.unref();
  }

  /** A relay process for `sock`: the spare (told the socket's directory and name), else a new one. */
  private relayProcess(sock: string): Child {
    const spare = this.spare;
    this.spare = null;
    if (spare && spare.exitCode === null && spare.signalCode === null) {
      spare.ref();
      for (const s of spare.stdio) (s as { ref?: () => void } | null)?.ref?.();
      const path = spare.stdio[4] as Writable;
      path.on('error', () => {});
      path.end(`${dirname(sock)}\0${basename(sock)}\n`);
      return spare;
    }
    // The relay connects by a relative name from the socket's directory: a unix socket path is limited to 108
    // bytes, and <exec-root>/runtime/s/<64-hex id>/attach passes that under a deep exec root (e.g. a test TMPDIR).
    return spawnChild(this.perl, ['-e', RELAY, basename(sock)], { cwd: dirname(sock), stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  }

  /** Connects the perl relay to a conmon attach socket; resolves once it is connected. */
  private async relay(sock: string, id: string): Promise<AttachHandle> {
    const relay = this.relayProcess(sock);
    relay.stdin!.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const onErr = (d: Buffer) => { err += d.toString(); };
      relay.stderr!.on('data', onErr);
      const ready = relay.stdio[3] as Readable;
      ready.once('data', () => { relay.stderr!.off('data', onErr); ready.destroy(); resolve(); });
      relay.once('exit', (code) => {
        if (code !== 0) reject(new ConflictError(`cannot attach to container ${id}: ${err.trim() || 'relay failed'}`));
        else resolve();
      });
    });
    const done = once(relay, 'exit').then(() => undefined);
    this.spareLater(); // for the next attach, once this start is through
    return { stdin: relay.stdin!, stdout: relay.stdout!, stderr: relay.stderr!, done, detach: () => { relay.kill('SIGKILL'); } };
  }

  async attach(id: string): Promise<AttachHandle> {
    const p = await this.load(id);
    const sock = join(this.sockDir, id, 'attach');
    if (!existsSync(sock)) {
      // conmon makes `<sockDir>/<id>` a symlink to the bundle; recreate it if missing
      await symlink(p.bundle, join(this.sockDir, id)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') this.log.warn('linking the attach socket directory', { container: id, error: e }); });
    }
    return this.relay(sock, id);
  }

  async resize(id: string, height: number, width: number): Promise<void> {
    const p = await this.load(id);
    await writeResize(join(p.bundle, 'ctl'), height, width);
  }

  async list(): Promise<string[]> {
    const { readdir } = await import('node:fs/promises');
    try { return (await readdir(this.stateRoot)).filter((n) => existsSync(join(this.stateRoot, n, 'state.json'))); } catch (e) { if (isENOENT(e)) return []; throw e; }
  }

  /** The persisted record (log path, bundle, conmon pid). */
  async info(id: string): Promise<Persisted> { return this.load(id); }
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIGABRT: 6, SIGSEGV: 11 };

/** True while `pid` runs (a zombie counts as dead: here PID 1 may be slow to reap conmon). */
function alive(pid: number): boolean {
  if (!pid) return false;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch { return false; }
}

/** runc by default; `runtime` may name crun or a path to a runc-compatible binary. */
export function createRuntime(cfg: RuntimeConfig): Runtime & { info(id: string): Promise<Persisted>; readonly runtimePath: string } {
  return new ConmonRuntime(cfg);
}


/** Successive JSON objects written on one of conmon's pipes. */
async function* jsonMessages(pipe: Readable): AsyncGenerator<unknown> {
  let buf = '';
  for await (const chunk of pipe) {
    buf += String(chunk);
    for (;;) {
      const end = buf.indexOf('}');
      if (end < 0) break;
      const text = buf.slice(buf.indexOf('{'), end + 1);
      buf = buf.slice(end + 1);
      try { yield JSON.parse(text); } catch { /* skip noise */ }
    }
  }
}

/** conmon's resize message on its ctl FIFO: "1 HEIGHT WIDTH". */
async function writeResize(ctl: string, height: number, width: number): Promise<void> {
  const fh = await open(ctl, 'r+');
  try { await fh.write(`1 ${height} ${width}\n`); } finally { await fh.close(); }
}
