/**
 * Giving memory back when the daemon goes idle.
 *
 * A pull, a load or a build churns through hundreds of MB of buffers on extraction and writer threads (zlib state,
 * 256 KiB–2 MiB pieces, tar-split records). V8 frees them, but glibc's malloc keeps the freed space in the
 * threads' arenas for reuse: measured here, wharfd stayed at 175–250 MB ten seconds after one Debian pull with
 * a 34 MB JS heap and no worker alive. `malloc_trim(0)` hands every arena's free pages back to the kernel (glibc
 * walks all arenas; inside a heap it uses MADV_DONTNEED), in a few milliseconds.
 *
 * Policy (`IdleTrimmer`): every TICK_MS the daemon looks at its own CPU time, resident memory and thread count
 * (process.cpuUsage and /proc/self/status: microseconds). It trims when the last tick was quiet (under 5 % of one
 * core) and something happened since the last trim: CPU spent, memory grown, or threads come or gone (extraction
 * and writer threads end 5 s after their last layer, the fsroot worker 5 s after its last request). So it never
 * competes with work, follows work that no API request shows (restarts, healthchecks, a long `docker events`), and
 * an idle daemon does nothing but read one small file per tick.
 */
import { readFileSync } from 'node:fs';
import { libcHandle } from '../lib/libc.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../lib/log.js';

/** How often the daemon looks at itself. */
export const TICK_MS = 2000;
/** A tick is quiet below this share of one core. */
const QUIET_SHARE = 0.05;
/** Work since the last trim that makes another worth doing: CPU time (µs), RSS growth (bytes). */
const DIRTY_CPU_US = 50_000;
const DIRTY_RSS = 8 << 20;
/** A trim that gave back at least this much (bytes) is followed by another at the next quiet tick (see `tick`)… */
const FOLLOW_UP_RSS = 1 << 20;
/** …at most this many times in a row (each is a full GC: 20–50 ms of CPU here), each this long after the one before:
 *  time for what the collection let go of (native handles' weak callbacks, finalizers) to run and let go of more.
 *  Measured after a pull, a build and 5 runs: each follow-up gave back ~2 MB (a full GC compacts a bounded number
 *  of the pages the work left fragmented), 11–12 of them 77 → 73 MB where 5 had stopped at ~84. */
const MAX_FOLLOW_UPS = 12;
const FOLLOW_UP_MS = 300;

type Trim = (pad: number) => number;
let trimFn: Trim | null | undefined;

/** malloc_trim from glibc through koffi, or null where there is none (another libc): then trimming is a no-op. */
function mallocTrim(): Trim | null {
  if (trimFn !== undefined) return trimFn;
  try {
    trimFn = libcHandle().func('int malloc_trim(size_t pad)') as Trim;
  } catch {
    // not glibc (musl has no malloc_trim and returns memory itself): nothing to do
    trimFn = null;
  }
  return trimFn;
}

let fullGc: ((o?: object) => void) | undefined;

/**
 * A full, compacting collection of this thread's JS heap: what V8's memory reducer would do after some idle minutes,
 * done now, so that the pages it frees and the ArrayBuffers' backing stores it releases are gone before the trim.
 */
export function collectGarbage(): void {
  if (!fullGc) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as (o?: object) => void;
  }
  // V8's "last resort" collection: repeated full GCs that also release the isolate's pooled pages (measured: ~8 MB
  // less than a plain full GC ten seconds after a pull and a build)
  fullGc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** Returns freed malloc memory to the kernel; true when glibc released something. */
export function trimMalloc(): boolean {
  const f = mallocTrim();
  return f ? f(0) === 1 : false;
}

export interface SelfSample {
  /** User + system CPU time of the whole process, µs. */
  cpuUs: number;
  /** Resident set, bytes. */
  rss: number;
  threads: number;
}

/** This process's CPU time, RSS and thread count. */
export function sampleSelf(): SelfSample {
  const c = process.cpuUsage();
  let threads = 0;
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    threads = m ? Number(m[1]) : 0;
  } catch { /* no procfs: thread changes are then not seen, CPU and RSS still are */ }
  return { cpuUs: c.user + c.system, rss: process.memoryUsage.rss(), threads };
}

/** Trims malloc's free memory when the daemon goes quiet after doing something (the policy above). */
export class IdleTrimmer {
  private timer: NodeJS.Timeout | null = null;
  private last: SelfSample;
  /** What the process looked like right after the last trim. */
  private atTrim: SelfSample;
  /** Trims done. */
  trims = 0;
  /** The last trim gave back FOLLOW_UP_RSS or more: the process is still settling. */
  private followUp = false;
  /** Follow-up trims since the last one that work called for. */
  private followUps = 0;

  constructor(
    private readonly log: Logger,
    private readonly sample: () => SelfSample = sampleSelf,
    private readonly trim: () => boolean = trimMalloc,
    private readonly tickMs = TICK_MS,
    private readonly collect: () => void = collectGarbage,
    /** A follow-up trim comes this long after the one before (ms), instead of at the next tick; 0: at the next tick. */
    private readonly followUpMs = FOLLOW_UP_MS,
  ) {
    this.last = this.sample();
    this.atTrim = this.last;
  }

  start(): this {
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
    return this;
  }

  /**
   * Once the daemon has started (the API listens): a full collection of what start-up left, and that state as the
   * baseline, so start-up alone never makes the ticks trim. No malloc_trim here: start-up leaves ~0.7 MB in malloc's
   * free lists, and the trim would load koffi (~1.6 MB of its and libstdc++'s pages) into a daemon that has not
   * needed it yet (bench/README.md, memory).
   */
  afterStart(): void {
    this.collect();
    this.atTrim = this.last = this.sample();
  }

  /** One look (the timer's callback; tests call it directly). */
  tick(): void {
    const now = this.sample();
    const quiet = now.cpuUs - this.last.cpuUs < this.tickMs * 1000 * QUIET_SHARE;
    this.last = now;
    if (!quiet) return;
    const worked = now.cpuUs - this.atTrim.cpuUs > DIRTY_CPU_US || now.rss > this.atTrim.rss + DIRTY_RSS || now.threads !== this.atTrim.threads;
    if (!worked && !this.followUp) return;
    this.followUps = worked ? 0 : this.followUps + 1;
    this.collect();
    const released = this.trim();
    this.trims++;
    this.atTrim = this.last = this.sample();
    // After work the process keeps letting go of memory for several seconds without CPU time of its own (measured
    // after a pull, a build and 5 runs: ~20 MB over the 4–10 s after the work, with no trim: each collection lets
    // go of native handles whose weak callbacks then let go of more), so nothing else would call for another trim.
    // A trim that gave back something is followed by another FOLLOW_UP_MS later, while the daemon stays quiet,
    // until one gives back little (bounded: MAX_FOLLOW_UPS).
    this.followUp = now.rss - this.atTrim.rss >= FOLLOW_UP_RSS && this.followUps < MAX_FOLLOW_UPS;
    if (this.followUp && this.followUpMs > 0 && this.timer) setTimeout(() => { if (this.timer) this.tick(); }, this.followUpMs).unref();
    this.log.debug('idle: returned free memory to the kernel', { released, rssBefore: now.rss, rssAfter: this.atTrim.rss });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
