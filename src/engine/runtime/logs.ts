/**
 * Reader for conmon's k8s-file logs: one record per line, "TIMESTAMP STREAM TAG CONTENT", where TIMESTAMP is
 * RFC3339 with nanoseconds, STREAM is stdout|stderr, TAG is F (full line: a newline followed CONTENT) or P
 * (partial: CONTENT had no newline yet). Yields chunks the way docker's logs API returns them.
 */
import { open, stat } from 'node:fs/promises';
import { watch } from 'node:fs';
import { isENOENT } from '../../lib/fsutil.js';

export interface LogRecord {
  stream: 'stdout' | 'stderr';
  /** RFC3339Nano, "Z" form (docker's `logs -t` prints this). */
  time: string;
  /** Nanoseconds since the epoch, for since/until comparisons. */
  timeNs: bigint;
  /** The bytes as written by the process (a full line ends with "\n"). */
  data: Buffer;
  partial: boolean;
}

export interface LogOptions {
  /** Seconds since the epoch (docker's since/until, may be fractional). */
  since?: number;
  until?: number;
  /** Last N lines (full lines, as docker counts them); undefined/negative = all. */
  tail?: number;
  follow?: boolean;
  /** For follow: resolves when the container has stopped (then the remaining lines are read and it ends). */
  stopped?: Promise<unknown>;
  signal?: AbortSignal;
}

function parseTime(ts: string): { iso: string; ns: bigint } {
  // 2026-11-24T18:37:41.089480513+00:00
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return { iso: ts, ns: 0n };
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  const base = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  const ns = BigInt(base) * 1000000n + BigInt(frac);
  const utc = new Date(base).toISOString().slice(0, 19);
  return { iso: `${utc}.${frac.replace(/0+$/, '') || '0'}Z`.replace('.0Z', 'Z'), ns };
}

export function parseLogLine(line: Buffer): LogRecord | null {
  const s1 = line.indexOf(0x20);
  if (s1 < 0) return null;
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return null;
  const s3 = line.indexOf(0x20, s2 + 1);
  const stream = line.subarray(s1 + 1, s2).toString();
  if (stream !== 'stdout' && stream !== 'stderr') return null;
  const tag = line.subarray(s2 + 1, s3 < 0 ? line.length : s3).toString();
  const content = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  const partial = tag.split(':')[0] === 'P';
  const t = parseTime(line.subarray(0, s1).toString());
  return {
    stream, time: t.iso, timeNs: t.ns, partial,
    data: partial ? Buffer.from(content) : Buffer.concat([content, Buffer.from('\n')]),
  };
}

const secToNs = (s: number) => BigInt(Math.round(s * 1e6)) * 1000n;

/** Records of a k8s-file log with since/until/tail; with follow, keeps reading until `stopped` or abort. */
export async function* readLogs(path: string, opts: LogOptions = {}): AsyncGenerator<LogRecord> {
  const since = opts.since !== undefined && opts.since > 0 ? secToNs(opts.since) : null;
  const until = opts.until !== undefined && opts.until > 0 ? secToNs(opts.until) : null;
  const keep = (r: LogRecord) => (since === null || r.timeNs >= since) && (until === null || r.timeNs <= until);

  let fh;
  try { fh = await open(path, 'r'); } catch (e) {
    if (!isENOENT(e) || !opts.follow) return;
    // not created yet: wait for it (follow on a just-created container)
    while (!fh) {
      if (opts.signal?.aborted) return;
      await new Promise((r) => setTimeout(r, 50));
      try { fh = await open(path, 'r'); } catch (e) { if (!isENOENT(e)) throw e; /* keep waiting */ }
    }
  }
  try {
    let pos = 0;
    let rest = Buffer.alloc(0);
    const buf = Buffer.alloc(64 * 1024);
    const readAvailable = async (): Promise<LogRecord[]> => {
      const out: LogRecord[] = [];
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        rest = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : Buffer.from(buf.subarray(0, bytesRead));
        let start = 0;
        for (;;) {
          const nl = rest.indexOf(0x0a, start);
          if (nl < 0) break;
          const r = parseLogLine(rest.subarray(start, nl));
          if (r && keep(r)) out.push(r);
          start = nl + 1;
        }
        rest = rest.subarray(start);
      }
      return out;
    };

    let first = await readAvailable();
    if (opts.tail !== undefined && opts.tail >= 0) {
      // keep the last N messages: a message ends with a full (F) record, or is the trailing partial at EOF
      let msgs = 0, i = first.length;
      while (i > 0) {
        const r = first[i - 1]!;
        if (!r.partial || i === first.length) { if (msgs === opts.tail) break; msgs++; }
        i--;
      }
      first = first.slice(i);
    }
    for (const r of first) yield r;
    if (!opts.follow) return;

    let stopped = false;
    opts.stopped?.then(() => { stopped = true; wake(); }, () => { stopped = true; wake(); });
    let wake: () => void = () => {};
    const w = watch(path, () => wake());
    const onAbort = () => wake();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        const wasStopped = stopped;
        const recs = await readAvailable();
        for (const r of recs) yield r;
        if (wasStopped) return;
        if (until !== null && BigInt(Date.now()) * 1000000n > until) return;
        await new Promise<void>((r) => { wake = r; setTimeout(r, 1000); });
      }
    } finally {
      w.close();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    await fh.close();
  }
}

/** Size of a log file (for docker's SizeRw-like accounting); 0 when absent. */
export async function logSize(path: string): Promise<number> {
  try { return (await stat(path)).size; } catch { return 0; }
}
