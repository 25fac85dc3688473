/**
 * Starting helper programs (no shell): the one way the daemon starts a process.
 *
 * Node's `child_process.spawn` (libuv) forks the whole daemon on Linux — a copy of the page tables of a 75–200 MB
 * process — and blocks the event loop until the child has exec'd: 15–90 ms per process on the Firecracker VM, during
 * which nothing else the daemon does moves. Here a process is started with glibc's `posix_spawn` through koffi, which
 * uses clone(CLONE_VM|CLONE_VFORK): no copy, and the caller waits only for the child's execve (~0.5–2 ms).
 *
 * - stdio: `pipe` is a unix socket pair (as libuv's), the daemon's end a `net.Socket`; `ignore` is /dev/null;
 *   `inherit` (fds 0–2 only) keeps the daemon's. Every other descriptor is closed in the child (closefrom), on top of
 *   the daemon's own close-on-exec flags: nothing leaks into a container's processes.
 * - The child gets default dispositions for every signal and an empty signal mask (the daemon ignores SIGPIPE), `setsid` when
 *   `detached`, `cwd` through the file actions.
 * - A program that cannot be started (ENOENT, EACCES…) throws from `spawnChild` at once, as an ErrnoException.
 * - Exit statuses: libuv reaps only its own children, by pid; these are reaped here on SIGCHLD with
 *   waitpid(pid, WNOHANG) for each pid we started (never waitpid(-1), which would steal libuv's), plus a slow poll
 *   that also keeps the event loop alive while a referenced child runs.
 */
import { EventEmitter } from 'node:events';
import { errnoError, koffi, libcHandle } from './libc.js';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';

export type StdioSpec = 'pipe' | 'ignore' | 'inherit';

export interface SpawnOptions {
  /** One entry per child descriptor from 0 (default: three pipes). */
  stdio?: readonly StdioSpec[];
  cwd?: string;
  /** The child's whole environment (default: the daemon's). */
  env?: NodeJS.ProcessEnv;
  /** A session of its own (setsid), like child_process's `detached`. */
  detached?: boolean;
}

interface Native {
  spawn: (pid: Buffer, path: string, fa: Buffer, attr: Buffer, argv: (string | null)[], envp: (string | null)[]) => number;
  spawnp: (pid: Buffer, file: string, fa: Buffer, attr: Buffer, argv: (string | null)[], envp: (string | null)[]) => number;
  faInit: (fa: Buffer) => number;
  faDestroy: (fa: Buffer) => number;
  faDup2: (fa: Buffer, fd: number, newfd: number) => number;
  faOpen: (fa: Buffer, fd: number, path: string, flags: number, mode: number) => number;
  faClosefrom: (fa: Buffer, from: number) => number;
  faChdir: (fa: Buffer, path: string) => number;
  attrInit: (attr: Buffer) => number;
  attrDestroy: (attr: Buffer) => number;
  attrSetflags: (attr: Buffer, flags: number) => number;
  attrSetsigmask: (attr: Buffer, set: Buffer) => number;
  attrSetsigdefault: (attr: Buffer, set: Buffer) => number;
  sigemptyset: (set: Buffer) => number;
  sigfillset: (set: Buffer) => number;
  socketpair: (domain: number, type: number, proto: number, sv: Buffer) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  close: (fd: number) => number;
  waitpid: (pid: number, status: Buffer, options: number) => number;
  errno: () => number;
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
// glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128 (x86_64, aarch64): room to spare
const FA_SIZE = 256;
const ATTR_SIZE = 512;
const SIGSET_SIZE = 128;

let native: Native | null = null;
let sigdefault: Buffer;
let sigmask: Buffer;

function lib(): Native {
  if (native) return native;
  const c = libcHandle();
  const f = <T>(decl: string) => c.func(decl) as T;
  const n: Native = {
    spawn: f('int posix_spawn(void *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)'),
    spawnp: f('int posix_spawnp(void *pid, const char *file, void *fa, void *attr, const char **argv, const char **envp)'),
    faInit: f('int posix_spawn_file_actions_init(void *fa)'),
    faDestroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
    faDup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
    faOpen: f('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, unsigned int mode)'),
    faClosefrom: f('int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)'),
    faChdir: f('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
    attrInit: f('int posix_spawnattr_init(void *attr)'),
    attrDestroy: f('int posix_spawnattr_destroy(void *attr)'),
    attrSetflags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
    attrSetsigmask: f('int posix_spawnattr_setsigmask(void *attr, void *set)'),
    attrSetsigdefault: f('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
    sigemptyset: f('int sigemptyset(void *set)'),
    sigfillset: f('int sigfillset(void *set)'),
    socketpair: f('int socketpair(int domain, int type, int protocol, void *sv)'),
    fcntl: f('int fcntl(int fd, int cmd, int arg)'),
    close: f('int close(int fd)'),
    waitpid: f('int waitpid(int pid, void *status, int options)'),
    errno: () => koffi().errno(),
  };
  sigdefault = Buffer.alloc(SIGSET_SIZE);
  n.sigfillset(sigdefault);
  // glibc's own two signals (32, 33) are not in a filled set, and its posix_spawn makes those SIG_IGN in the child
  // unless listed here (the child would keep them ignored through exec): set their bits by hand
  sigdefault[3]! |= 0x80;
  sigdefault[4]! |= 0x01;
  sigmask = Buffer.alloc(SIGSET_SIZE);
  n.sigemptyset(sigmask);
  native = n;
  return n;
}


let signalNames: Map<number, NodeJS.Signals> | undefined;
/** A signal's name by number (made at first use: node:os is not loaded at the daemon's start-up). */
function signalName(sig: number): NodeJS.Signals | undefined {
  signalNames ??= new Map(Object.entries(osConstants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));
  return signalNames.get(sig);
}

/** A process started by `spawnChild`: the shape of child_process's ChildProcess that the daemon uses. */
export class Child extends EventEmitter {
  readonly pid: number;
  /** The daemon's end of each `pipe`, by child descriptor; null for `ignore`/`inherit`. */
  readonly stdio: (Socket | null)[];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  /** A kill() was delivered. */
  killed = false;
  /** Resolves once the process has exited and been reaped. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private referenced = true;
  private resolveExit!: (v: { code: number | null; signal: NodeJS.Signals | null }) => void;

  constructor(pid: number, stdio: (Socket | null)[]) {
    super();
    this.pid = pid;
    this.stdio = stdio;
    this.exited = new Promise((r) => { this.resolveExit = r; });
    // 'close' once the process exited and every pipe it writes to is closed (child_process's order)
    const open = stdio.filter((s, i): s is Socket => s !== null && i !== 0);
    let left = open.length + 1;
    const closeOne = () => { if (--left === 0) this.emit('close', this.exitCode, this.signalCode); };
    for (const s of open) s.once('close', closeOne);
    this.once('exit', closeOne);
  }

  get stdin(): Socket | null { return this.stdio[0] ?? null; }
  get stdout(): Socket | null { return this.stdio[1] ?? null; }
  get stderr(): Socket | null { return this.stdio[2] ?? null; }
  get running(): boolean { return this.exitCode === null && this.signalCode === null; }

  /** Sends `sig` (default SIGTERM) while the process is ours (not yet reaped: its pid cannot be reused). */
  kill(sig: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (!this.running) return false;
    try { process.kill(this.pid, sig); this.killed = true; return true; } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw e;
    }
  }

  /** Lets the daemon exit while this process runs (its pipes are ref'd/unref'd on their own). */
  unref(): void { if (this.referenced) { this.referenced = false; refs--; keepAlive(); } }
  ref(): void { if (!this.referenced && this.running) { this.referenced = true; refs++; keepAlive(); } }

  /** @internal called by the reaper with waitpid's status. */
  reaped(status: number): void {
    const sig = status & 0x7f;
    if (sig === 0) this.exitCode = (status >> 8) & 0xff;
    else this.signalCode = signalName(sig) ?? ('SIGKILL' as NodeJS.Signals);
    if (this.referenced) { this.referenced = false; refs--; keepAlive(); }
    this.stdin?.destroy();
    this.resolveExit({ code: this.exitCode, signal: this.signalCode });
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

const children = new Map<number, Child>();
let refs = 0;
let poll: NodeJS.Timeout | null = null;
let listening = false;
const statusBuf = Buffer.alloc(4);

function reap(): void {
  if (!native) return;
  for (const [pid, c] of children) {
    const r = native.waitpid(pid, statusBuf, WNOHANG);
    if (r === pid) {
      children.delete(pid);
      c.reaped(statusBuf.readInt32LE(0));
    } else if (r < 0 && native.errno() === osConstants.errno.ECHILD) {
      // not ours any more (cannot happen unless something called waitpid(-1)): report it as killed
      children.delete(pid);
      c.reaped(osConstants.signals.SIGKILL);
    }
  }
  keepAlive();
}

/** The backup poll runs while any child is unreaped; it holds the event loop open only for referenced ones. */
function keepAlive(): void {
  if (children.size === 0) {
    if (poll) { clearInterval(poll); poll = null; }
    return;
  }
  if (!poll) poll = setInterval(reap, 1000);
  if (refs > 0) poll.ref(); else poll.unref();
}

/** The daemon's end of a new socket pair and the child's (both close-on-exec; the child's is dup2'd into place). */
function pair(n: Native, minFd: number): [number, number] {
  const sv = Buffer.alloc(8);
  if (n.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) !== 0) throw errnoError(n.errno(), 'socketpair');
  const ours = sv.readInt32LE(0);
  let theirs = sv.readInt32LE(4);
  // a child end that sits on a target descriptor would be dup2'd onto itself (its close-on-exec flag kept): move it
  if (theirs < minFd) {
    const moved = n.fcntl(theirs, F_DUPFD_CLOEXEC, minFd);
    const err = n.errno();
    n.close(theirs);
    if (moved < 0) { n.close(ours); throw errnoError(err, 'fcntl'); }
    theirs = moved;
  }
  return [ours, theirs];
}

/**
 * Starts `bin` (an absolute path, or a name looked up in the daemon's PATH) with `args`. Throws an ErrnoException
 * when it cannot be started; never forks the daemon.
 */
export function spawnChild(bin: string, args: readonly string[], opts: SpawnOptions = {}): Child {
  const n = lib();
  const stdio = opts.stdio ?? ['pipe', 'pipe', 'pipe'];
  const fa = Buffer.alloc(FA_SIZE);
  const attr = Buffer.alloc(ATTR_SIZE);
  n.faInit(fa);
  n.attrInit(attr);
  const ours: (number | null)[] = [];
  const theirs: number[] = [];
  let pid = -1;
  try {
    for (let i = 0; i < stdio.length; i++) {
      const kind = stdio[i];
      if (kind === 'pipe') {
        const [a, b] = pair(n, stdio.length);
        ours.push(a);
        theirs.push(b);
        n.faDup2(fa, b, i);
      } else {
        ours.push(null);
        if (kind === 'ignore' || i > 2) n.faOpen(fa, i, '/dev/null', O_RDWR, 0);
      }
    }
    n.faClosefrom(fa, Math.max(stdio.length, 3));
    if (opts.cwd !== undefined) n.faChdir(fa, opts.cwd);
    n.attrSetflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (opts.detached ? POSIX_SPAWN_SETSID : 0));
    n.attrSetsigdefault(attr, sigdefault);
    n.attrSetsigmask(attr, sigmask);
    const envp: (string | null)[] = [];
    for (const [k, v] of Object.entries(opts.env ?? process.env)) if (v !== undefined) envp.push(`${k}=${v}`);
    envp.push(null);
    const argv: (string | null)[] = [bin, ...args, null];
    const pidBuf = Buffer.alloc(4);
    // posix_spawnp searches the daemon's PATH; a caller's env.PATH is for the child only
    const rc = bin.includes('/') ? n.spawn(pidBuf, bin, fa, attr, argv, envp) : n.spawnp(pidBuf, bin, fa, attr, argv, envp);
    if (rc !== 0) throw errnoError(rc, `spawn ${bin}`, bin);
    pid = pidBuf.readInt32LE(0);
  } catch (e) {
    for (const fd of ours) if (fd !== null) n.close(fd);
    throw e;
  } finally {
    for (const fd of theirs) n.close(fd);
    n.faDestroy(fa);
    n.attrDestroy(attr);
  }
  const sockets = ours.map((fd, i) => (fd === null ? null : new Socket({ fd, readable: i !== 0, writable: i === 0 || i > 2 })));
  const child = new Child(pid, sockets);
  children.set(pid, child);
  refs++;
  if (!listening) { listening = true; process.on('SIGCHLD', reap); }
  keepAlive();
  return child;
}

export interface ExecResult {
  /** The exit status (1 when the program was ended by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin` with `args`, writes `input` to its stdin (when given), and resolves with its exit status and output
 * whatever the status; rejects only when the program cannot be started (ENOENT, EACCES…) or its output passes
 * `maxBuffer` (16 MiB; the program is killed).
 */
export function execCollect(
  bin: string, args: readonly string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; maxBuffer?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const c = spawnChild(bin, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const max = opts.maxBuffer ?? 16 << 20;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let overflow = false;
    const take = (into: Buffer[]) => (d: Buffer) => {
      size += d.length;
      if (size > max) {
        if (!overflow) { overflow = true; c.kill('SIGKILL'); }
        return;
      }
      into.push(d);
    };
    c.stdout!.on('data', take(out));
    c.stderr!.on('data', take(err));
    c.on('close', (code: number | null) => {
      if (overflow) return reject(new RangeError(`${bin}: output over ${max} bytes`));
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    if (opts.input !== undefined) {
      c.stdin!.on('error', () => { /* the program stopped reading: its status tells */ });
      c.stdin!.end(opts.input);
    }
  });
}

/** An exec that ended with a non-zero status: what the program said, as promisified execFile's error had it. */
export interface ExecFailure extends Error { code: number; stdout: string; stderr: string }

/** `execCollect` that rejects (an ExecFailure) when the status is not 0; resolves with the output otherwise. */
export async function execChecked(
  bin: string, args: readonly string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; maxBuffer?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  const r = await execCollect(bin, args, opts);
  if (r.code === 0) return { stdout: r.stdout, stderr: r.stderr };
  const e = new Error(`${bin} ${args.join(' ')}: exit status ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`) as ExecFailure;
  e.code = r.code;
  e.stdout = r.stdout;
  e.stderr = r.stderr;
  throw e;
}
