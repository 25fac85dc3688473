/**
 * The daemon's side of the chrooted tree worker (`child.ts`): one process per request. After a request, one is
 * started ahead and waits (Node's startup and koffi cost ~70–100 ms; the next `docker cp` does not pay it): it is
 * started at nice 19 (so that it does not compete with the one at work; it gets normal priority back when taken)
 * and ends after 5 s without requests (an idle daemon keeps none).
 */
import { spawnChild, type Child } from '../../lib/exec.js';
import { fileURLToPath } from 'node:url';
import { setPriority } from 'node:os';
import { readdirSync } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { ForbiddenError, InvalidParameterError, NotFoundError, SystemError } from '../../lib/errors.js';
import type { Owner, PathStat, Request } from './ops.js';
import type { ViewMount } from './view.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

interface Worker {
  proc: Child;
  ctl: Readable;
  stdin: Writable;
  stdout: Readable;
  exited: Promise<number | null>;
  stderr: Buffer[];
}

function start(): Worker {
  const proc = spawnChild(process.execPath, ['--max-old-space-size=256', CHILD], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  const stderr: Buffer[] = [];
  proc.stderr!.on('data', (b: Buffer) => { if (stderr.length < 64) stderr.push(b); });
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code: number | null) => resolve(code));
  });
  proc.stdin!.on('error', () => {});
  return { proc, ctl: proc.stdio[3] as Readable, stdin: proc.stdin!, stdout: proc.stdout!, exited, stderr };
}

let warm: Worker | null = null;

function idle(w: Worker, on: boolean): void {
  const f = on ? 'unref' : 'ref';
  w.proc[f]();
  for (const s of [w.proc.stdin, w.proc.stdout, w.proc.stderr, w.proc.stdio[3]]) (s as unknown as { [k: string]: () => void } | null)?.[f]?.();
}

/** Sets the nice value of every thread of `pid` (Linux keeps one per thread; threads inherit it when made). */
function renice(pid: number | undefined, nice: number): void {
  if (!pid) return;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { setPriority(Number(tid), nice); } catch { /* gone */ }
    }
  } catch { /* gone */ }
}

/** How long a waiting worker is kept without requests (an idle daemon keeps no worker: ~55 MB). */
const IDLE_MS = 5000;
let idleTimer: NodeJS.Timeout | null = null;

/** The next worker, started at the lowest CPU priority (it must not slow down the one at work). */
function startWaiting(): void {
  if (warm) return;
  warm = start();
  idle(warm, true);
  renice(warm.proc.pid, 19);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = null;
    const w = warm;
    warm = null;
    w?.proc.kill('SIGKILL');
  }, IDLE_MS);
  idleTimer.unref();
}

function take(): Worker {
  let w = warm;
  warm = null;
  if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
  if (!w || w.proc.exitCode !== null || w.proc.killed) w = start();
  else {
    idle(w, false);
    renice(w.proc.pid, 0);
  }
  setImmediate(startWaiting);
  return w;
}

/** Starts a waiting worker now (kept 5 s). */
export function prestartWorker(): void {
  startWaiting();
}

function errorOf(e: { kind: string; message: string }): Error {
  if (e.kind === 'notfound') return new NotFoundError(e.message);
  if (e.kind === 'invalid') return new InvalidParameterError(e.message);
  if (e.kind === 'forbidden') return new ForbiddenError(e.message);
  return new SystemError(`confined filesystem worker: ${e.message}`);
}

/** Control messages, in order; the iterator ends when the worker exits. */
async function* messages(w: Worker): AsyncGenerator<Record<string, unknown>> {
  let buf = '';
  for await (const chunk of w.ctl) {
    buf += (chunk as Buffer).toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as Record<string, unknown>;
    }
  }
}

interface Running {
  /** The next control message (an error message is thrown). */
  next(): Promise<Record<string, unknown>>;
  out: Readable;
  w: Worker;
}

function run(req: Request, body?: Readable): Running {
  const w = take();
  const it = messages(w);
  w.stdin.write(JSON.stringify(req) + '\n');
  if (body) {
    body.on('error', () => w.proc.kill('SIGKILL'));
    body.pipe(w.stdin);
  } else w.stdin.end();
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await it.next();
    if (r.done) {
      const code = await w.exited;
      throw new SystemError(`confined filesystem worker exited (${code}) without an answer: ${Buffer.concat(w.stderr).toString().trim().slice(0, 500)}`);
    }
    const m = r.value;
    if (m.error) throw errorOf(m.error as { kind: string; message: string });
    return m;
  };
  return { next, out: w.stdout, w };
}

/**
 * A streamed result: `out` piped into a PassThrough that ends only when the worker said done, and is destroyed
 * with its error otherwise.
 */
function streamed(r: Running): Readable {
  const pt = new PassThrough({ highWaterMark: 1 << 20 });
  let outEnded = false;
  const ended = new Promise<void>((resolve) => r.out.on('end', () => { outEnded = true; resolve(); }));
  r.out.pipe(pt, { end: false });
  pt.on('close', () => { if (!outEnded) r.w.proc.kill('SIGKILL'); });
  void (async () => {
    try {
      await r.next();
      await ended;
      pt.end();
    } catch (e) {
      pt.destroy(e as Error);
    }
  })();
  return pt;
}

/** GET /archive: the stat and the tar of `path` inside `root` (with `mounts` over it: the container's view). */
export async function packFromRoot(root: string, path: string, label: string, mounts: ViewMount[] = []): Promise<{ stat: PathStat; owner: Owner; tar: Readable }> {
  const r = run({ op: 'pack', root, path, label, ...(mounts.length ? { mounts } : {}) });
  const first = await r.next();
  return { stat: first.stat as PathStat, owner: first.owner as Owner, tar: streamed(r) };
}

/** export: the whole of `root` as a tar. */
export async function exportFromRoot(root: string): Promise<Readable> {
  const r = run({ op: 'export', root });
  await r.next();
  return streamed(r);
}

/** PUT /archive: `tar` extracted into the directory `path` inside `root` (with `mounts` over it). */
export async function extractIntoRoot(root: string, path: string, tar: Readable, o: { label: string; noOverwriteDirNonDir: boolean; copyUIDGID: boolean; mounts?: ViewMount[] }): Promise<void> {
  const { mounts, ...rest } = o;
  const r = run({ op: 'extract', root, path, ...rest, ...(mounts?.length ? { mounts } : {}) }, tar);
  r.out.resume();
  await r.next();
}

/** For the tests: what a worker confined in `root` sees at "/", whether it may chroot again, and its pid (it waits 0.5 s). */
export async function selftest(root: string, mounts: ViewMount[] = []): Promise<{ entries: string[]; chrootAgain: string; pid: number }> {
  const r = run({ op: 'selftest', root, ...(mounts.length ? { mounts } : {}) });
  const m = (await r.next()) as unknown as { entries: string[]; chrootAgain: string };
  return { ...m, pid: r.w.proc.pid! };
}
