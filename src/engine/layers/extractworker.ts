/**
 * A layer's extraction on a thread of its own.
 *
 * Extracting a layer is mostly JavaScript on one thread: hashing the tar (diffID), recording its tar-split
 * sidecar, parsing headers, gathering small files for the writer threads. Done on the daemon's main thread, that
 * work ran one piece after the other with everything else the main thread does for the same pull (reading the
 * HTTP body, hashing the compressed blob, taking the decompressor's output). Here the tar's bytes are handed to
 * an extraction thread as they come, so both halves run at once; the writer threads (filewriter.ts) are below it.
 *
 * `extractOffThread` keeps the shape of the in-process path: a Readable in, the same result out, the same typed
 * errors (re-created from their HTTP status), and on failure the directory is gone. The bytes in flight to the
 * thread are bounded (the thread acknowledges what its parser has taken), so a slow disk slows the download
 * rather than filling memory. Threads are kept for the next layer and do not keep the process alive when idle.
 *
 * The same module is the thread's entry point (it checks the thread's `workerData.role`). WHARF_EXTRACT_THREAD=0 extracts on the
 * calling thread instead.
 */
import { pipeline, Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { errorFromStatus, SystemError, WharfError } from '../../lib/errors.js';
import { currentUmask, extractLayerTar, setThreadUmask, type ExtractResult } from './extract.js';
import { TarSplitRecorder } from './tarsplit.js';
import { decompressor, type Compression } from '../../lib/compression.js';

export interface ExtractOutcome {
  result: ExtractResult;
  /** The length of the tar the tar-split sidecar reproduces; null when it is not usable or none was asked for. */
  sidecarLength: number | null;
}

type ToThread =
  | { t: 'start'; dir: string; side: string | null; compression: Compression; umask: number }
  | { t: 'data'; chunk: Uint8Array }
  | { t: 'end' }
  | { t: 'abort'; message: string };

type FromThread =
  | { t: 'ack'; n: number }
  | { t: 'done'; result: ExtractResult; sidecarLength: number | null }
  | { t: 'error'; status: number; message: string };

/** Bytes sent to the thread and not yet taken by its parser before the sender waits. */
const INFLIGHT_MAX = 8 << 20;
/** The source's chunks are gathered into pieces of this size (one message, one transfer each). */
const PIECE = 256 << 10;
const FLUSH_MS = 2;
const IDLE_MAX = 4;
/**
 * An idle thread is kept this long for the next layer (a pull's next layer, a build's next step), then ended: a
 * thread that extracted a large layer holds tens of MiB of heap, which an idle daemon should not keep.
 */
const IDLE_LINGER_MS = 5000;

export const EXTRACT_OFF_THREAD = process.env.WHARF_EXTRACT_THREAD !== '0';

/** Extracts on the calling thread: decompressor (when compressed) → tar-split recorder (when `side` is given) → extractLayerTar. */
export async function extractHere(source: Readable, dir: string, side: string | null, compression: Compression = null): Promise<ExtractOutcome> {
  let tar = source;
  if (compression) {
    const d = decompressor(compression);
    pipeline(source, d, () => { /* errors reach the extractor through the decompressor */ });
    tar = d;
  }
  if (!side) return { result: await extractLayerTar(tar, dir), sidecarLength: null };
  const recorder = new TarSplitRecorder(side);
  pipeline(tar, recorder, () => { /* errors reach the extractor through the recorder */ });
  try {
    const result = await extractLayerTar(recorder, dir);
    return { result, sidecarLength: await recorder.finish() };
  } catch (e) {
    recorder.abort();
    throw e;
  }
}

/* ------------------------------------------------------------------ the thread */

/** In the thread's process.argv: the main thread tells it is not an extraction thread without loading
 *  node:worker_threads (deferred in the daemon's bundle: not loaded at start-up, bench/README.md, memory). */
const THREAD_ARG = '--wharf-thread=extract';

if (process.argv.includes(THREAD_ARG) && !isMainThread && parentPort && (workerData as { role?: string } | null)?.role === 'extract') {
  const port = parentPort;
  let src: Readable | null = null;
  let deferred = 0;
  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'start': {
        setThreadUmask(m.umask);
        deferred = 0;
        const s = new Readable({
          highWaterMark: 4 << 20,
          read() {
            if (deferred) { port.postMessage({ t: 'ack', n: deferred } satisfies FromThread); deferred = 0; }
          },
        });
        src = s;
        extractHere(s, m.dir, m.side, m.compression).then(
          ({ result, sidecarLength }) => port.postMessage({ t: 'done', result, sidecarLength } satisfies FromThread),
          (e: unknown) => port.postMessage({
            t: 'error', status: e instanceof WharfError ? e.statusCode : 500, message: (e as Error)?.message ?? String(e),
          } satisfies FromThread),
        ).finally(() => { if (src === s) src = null; });
        return;
      }
      case 'data': {
        if (!src) return;
        const b = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
        if (src.push(b)) port.postMessage({ t: 'ack', n: b.length } satisfies FromThread);
        else deferred += b.length;
        return;
      }
      case 'end':
        src?.push(null);
        return;
      case 'abort':
        src?.destroy(new SystemError(m.message));
        return;
    }
  });
}

/* ------------------------------------------------------------------ the caller's side */

interface Slot {
  worker: Worker;
  onMessage: ((m: FromThread) => void) | null;
  onFail: ((e: Error) => void) | null;
  /** Ends the thread once it has been idle for IDLE_LINGER_MS. */
  linger: NodeJS.Timeout | null;
}

const idle: Slot[] = [];

let heapFlagSet = false;

function spawnSlot(): Slot {
  // An extraction thread goes through hundreds of MB of short-lived buffers per large layer. With V8's small
  // initial old space it ran a full mark-compact every ~70 ms (a dozen or more per Debian layer); letting the old
  // space start at 64 MiB takes that to a few, and a Debian pull's CPU down by ~150 ms. The flag is read when an
  // isolate is created, so it applies to the threads made from here on (the main thread's heap is configured).
  if (!heapFlagSet) { setFlagsFromString('--initial-old-space-size=64'); heapFlagSet = true; }
  // no execArgv: the parent's flags (e.g. --input-type for an -e script) do not apply to this module. The young
  // generation is V8's usual size here (3 x 16 MiB semi-spaces): bin/wharfd keeps the main thread's at 1 MiB,
  // which this thread's tar parsing would outgrow dozens of times per layer.
  const worker = new Worker(new URL(import.meta.url), { execArgv: [], argv: [THREAD_ARG], workerData: { role: 'extract' }, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
  const slot: Slot = { worker, onMessage: null, onFail: null, linger: null };
  worker.on('message', (m: FromThread) => slot.onMessage?.(m));
  const dead = (e: Error) => {
    const i = idle.indexOf(slot);
    if (i >= 0) idle.splice(i, 1);
    slot.onFail?.(e);
  };
  worker.on('error', dead);
  worker.on('exit', (code) => dead(new SystemError(`extraction thread exited (${code})`)));
  return slot;
}

/** Extraction threads waiting for work (kept at most IDLE_LINGER_MS each). */
export function idleExtractionThreads(): number {
  return idle.length;
}

function takeSlot(): Slot {
  const slot = idle.pop() ?? spawnSlot();
  if (slot.linger) { clearTimeout(slot.linger); slot.linger = null; }
  slot.worker.ref();
  return slot;
}

function giveBack(slot: Slot): void {
  slot.onMessage = null;
  slot.onFail = null;
  slot.worker.unref();
  if (idle.length >= IDLE_MAX) { void slot.worker.terminate(); return; }
  idle.push(slot);
  slot.linger = setTimeout(() => {
    slot.linger = null;
    const i = idle.indexOf(slot);
    if (i < 0) return;
    idle.splice(i, 1);
    void slot.worker.terminate();
  }, IDLE_LINGER_MS);
  slot.linger.unref();
}

/**
 * Extracts `tar` into `dir` (existing, empty) on an extraction thread, recording the tar-split sidecar at `side`
 * when given; with `compression`, `tar` is compressed and the thread decompresses it. Rejects with the source's
 * error when the source fails, else with the extraction's.
 */
export async function extractOffThread(tar: Readable, dir: string, side: string | null, compression: Compression = null): Promise<ExtractOutcome> {
  if (!EXTRACT_OFF_THREAD) return extractHere(tar, dir, side, compression);
  const slot = takeSlot();
  let inflight = 0;
  let wake: (() => void) | null = null;
  let finished = false;
  let broken = false;
  const outcome = new Promise<ExtractOutcome>((resolve, reject) => {
    slot.onMessage = (m) => {
      if (m.t === 'ack') {
        inflight -= m.n;
        if (inflight < INFLIGHT_MAX && wake) { const w = wake; wake = null; w(); }
      } else {
        finished = true;
        if (wake) { const w = wake; wake = null; w(); }
        if (m.t === 'done') return resolve({ result: m.result, sidecarLength: m.sidecarLength });
        reject(errorFromStatus(m.status, m.message));
        if (!tar.destroyed) tar.destroy(); // do not wait for a source that stalls after the bad entry
      }
    };
    slot.onFail = (e) => {
      broken = true;
      finished = true;
      if (wake) { const w = wake; wake = null; w(); }
      reject(e);
      if (!tar.destroyed) tar.destroy();
    };
  });
  outcome.catch(() => { /* observed below */ });
  slot.worker.postMessage({ t: 'start', dir, side, compression, umask: currentUmask() } satisfies ToThread);

  let sourceError: unknown = null;
  const send = (parts: Buffer[], len: number) => {
    const ab = new ArrayBuffer(len);
    const view = new Uint8Array(ab);
    let at = 0;
    for (const p of parts) { view.set(p, at); at += p.length; }
    inflight += len;
    slot.worker.postMessage({ t: 'data', chunk: view } satisfies ToThread, [ab]);
  };
  // a piece goes when it is full, or when the source has paused for FLUSH_MS with bytes gathered (a source that
  // stalls right after a bad entry must not keep that entry from the thread)
  let parts: Buffer[] = [];
  let len = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!len || finished) return;
    send(parts, len);
    parts = [];
    len = 0;
  };
  try {
    for await (const chunk of tar) {
      if (finished) break;
      const c = chunk as Buffer;
      parts.push(c);
      len += c.length;
      if (len >= PIECE) flush();
      else timer ??= setTimeout(flush, FLUSH_MS);
      while (inflight >= INFLIGHT_MAX && !finished) await new Promise<void>((r) => { wake = r; });
    }
    if (!finished) {
      flush();
      slot.worker.postMessage({ t: 'end' } satisfies ToThread);
    }
  } catch (e) {
    // (once the thread has failed, this is only the teardown of the source)
    if (!finished) sourceError = e;
    if (!finished) slot.worker.postMessage({ t: 'abort', message: (e as Error)?.message ?? String(e) } satisfies ToThread);
  }
  if (timer) clearTimeout(timer);
  try {
    const r = await outcome;
    if (sourceError) throw sourceError;
    return r;
  } catch (e) {
    if (!tar.destroyed) tar.destroy(); // do not wait for a stalled source
    throw sourceError ?? e;
  } finally {
    if (broken) void slot.worker.terminate();
    else giveBack(slot);
  }
}
