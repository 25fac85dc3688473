/**
 * Small files of a layer written on worker threads, in batches.
 *
 * Creating a file is a handful of syscalls (open O_EXCL, write, fchown, fchmod, futimes, close) and on this kind
 * of machine most of a layer's extraction time is kernel time spent in them. The main thread has the tar to
 * parse, hash and record; batches of small files (their bytes gathered in one transferred ArrayBuffer) go to
 * `WRITERS` threads that make the calls synchronously, so creation runs on the other cores while parsing goes on
 * — one message per batch instead of a thread-pool round trip per syscall.
 *
 * The same module is the worker's entry point (it checks the thread's `workerData.role`). Workers are shared by every
 * extraction of the process and only keep the process alive while they have work.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface FileJob {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  /** mtime in seconds (fractional). */
  mtime: number;
  /** Bytes of this file in the batch's buffer (files follow each other in job order). */
  len: number;
}

interface Request { id: number; jobs: FileJob[]; data: ArrayBuffer; umask: number }
interface Reply { id: number; data: ArrayBuffer; error?: { message: string; code?: string; path?: string } }

const WX = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** Writes one batch; throws the first failure (the batch's later files are then not written). */
export function writeBatchSync(jobs: FileJob[], buf: Uint8Array, umask: number): void {
  let at = 0;
  for (const j of jobs) {
    const fd = fs.openSync(j.path, WX, j.mode);
    try {
      let off = 0;
      while (off < j.len) off += fs.writeSync(fd, buf, at + off, j.len - off);
      if (j.uid !== 0 || j.gid !== 0) fs.fchownSync(fd, j.uid, j.gid);
      // open() applied the umask, and chown clears setuid/setgid: fix the mode when either matters
      if ((j.mode & (umask | 0o7000)) !== 0) fs.fchmodSync(fd, j.mode);
      fs.futimesSync(fd, j.mtime, j.mtime);
    } finally {
      fs.closeSync(fd);
    }
    at += j.len;
  }
}

/** In the thread's process.argv: the main thread tells it is not a writer without loading node:worker_threads
 *  (deferred in the daemon's bundle: not loaded at start-up, bench/README.md, memory). */
const THREAD_ARG = '--wharf-thread=file-writer';

// only in a writer thread (an extraction thread imports this module too)
if (process.argv.includes(THREAD_ARG) && !isMainThread && parentPort && (workerData as { role?: string } | null)?.role === 'file-writer') {
  const port = parentPort;
  port.on('message', (m: Request) => {
    const reply: Reply = { id: m.id, data: m.data };
    try {
      writeBatchSync(m.jobs, new Uint8Array(m.data), m.umask);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      reply.error = { message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.path ? { path: err.path } : {}) };
    }
    // the buffer goes back to the pool, to be filled again (no fresh zeroed memory per batch)
    port.postMessage(reply, [m.data]);
  });
}

interface Slot { worker: Worker; inflight: number; linger: NodeJS.Timeout | null }

/** How long a writer thread with nothing to do is kept (a pull's next layer, a build's next step), then ended. */
const IDLE_LINGER_MS = 5000;

/** A few worker threads taking batches; `write` resolves when the batch is on disk (or rejects with its error). */
export class FileWriterPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void; slot: Slot }>();
  private nextId = 1;
  /** Batch buffers the workers gave back, ready to be filled again. */
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly size: number, private readonly lingerMs = IDLE_LINGER_MS) {}

  /** A buffer of at least `bytes` (a returned one when it fits; new ones are BUFFER_SIZE unless larger). */
  takeBuffer(bytes: number): ArrayBuffer {
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return new ArrayBuffer(Math.max(bytes, BUFFER_SIZE));
  }

  private spawn(): Slot {
    // no execArgv: the parent's flags (e.g. --input-type for an -e script) do not apply to this module
    const worker = new Worker(new URL(import.meta.url), { execArgv: [], argv: [THREAD_ARG], workerData: { role: 'file-writer' } });
    const slot: Slot = { worker, inflight: 0, linger: null };
    worker.unref();
    worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (--slot.inflight === 0) this.idle(slot);
      if (r.data && r.data.byteLength <= BUFFER_SIZE && this.free.length < FREE_MAX) this.free.push(r.data);
      if (r.error) {
        const e = new Error(r.error.message) as NodeJS.ErrnoException;
        if (r.error.code) e.code = r.error.code;
        if (r.error.path) e.path = r.error.path;
        w.reject(e);
      } else w.resolve();
    });
    worker.on('error', (e) => this.fail(slot, e));
    worker.on('exit', (code) => this.fail(slot, new Error(`file writer thread exited (${code})`)));
    return slot;
  }

  /** An idle thread is unref'd and ends after `lingerMs` unless it gets work (its isolate holds MBs). */
  private idle(slot: Slot): void {
    slot.worker.unref();
    slot.linger = setTimeout(() => {
      slot.linger = null;
      if (slot.inflight > 0) return;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      // the last thread gone: the batch buffers kept for reuse go too (up to FREE_MAX x 2 MiB)
      if (this.slots.length === 0) this.free.length = 0;
      void slot.worker.terminate();
    }, this.lingerMs);
    slot.linger.unref();
  }

  /** Batch buffers kept for reuse. */
  get freeBuffers(): number {
    return this.free.length;
  }

  /** Threads alive (busy or lingering). */
  get threads(): number {
    return this.slots.length;
  }

  /** A dead worker fails its batches and leaves the pool (a new one is made on demand). */
  private fail(slot: Slot, e: Error): void {
    if (slot.linger) { clearTimeout(slot.linger); slot.linger = null; }
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    for (const [id, w] of [...this.waiting]) {
      if (w.slot !== slot) continue;
      this.waiting.delete(id);
      w.reject(e);
    }
  }

  /** Batches queued on the pool, all workers together. */
  get inflight(): number {
    return this.slots.reduce((a, s) => a + s.inflight, 0);
  }

  /** Writes the files of `jobs`, whose bytes follow each other from the start of `data` (transferred). */
  write(jobs: FileJob[], data: ArrayBuffer, umask: number): Promise<void> {
    let slot = this.slots.reduce<Slot | undefined>((best, s) => (!best || s.inflight < best.inflight ? s : best), undefined);
    if ((!slot || slot.inflight > 0) && this.slots.length < this.size) {
      slot = this.spawn();
      this.slots.push(slot);
    }
    const s = slot!;
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot: s });
      if (s.linger) { clearTimeout(s.linger); s.linger = null; }
      if (s.inflight++ === 0) s.worker.ref();
      s.worker.postMessage({ id, jobs, data, umask } satisfies Request, [data]);
    });
  }
}

/** Size of the batch buffers: a batch is sent at 1 MiB, and its last file may bring up to 1 MiB more. */
export const BUFFER_SIZE = 2 << 20;
const FREE_MAX = 16;

/** Threads writing small files: one per core, at least one, at most four (WHARF_EXTRACT_WRITERS overrides). */
export const WRITERS = Number(process.env.WHARF_EXTRACT_WRITERS) > 0 ? Number(process.env.WHARF_EXTRACT_WRITERS) : Math.max(1, Math.min(4, availableParallelism()));

let shared: FileWriterPool | null = null;

/** The process's pool (made on first use). */
export function fileWriterPool(): FileWriterPool {
  shared ??= new FileWriterPool(WRITERS);
  return shared;
}
