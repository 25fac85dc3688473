/**
 * Container logs. Docker's log drivers as conmon writes them: `json-file` and `local` are a k8s-file log
 * (`ctr.log`) with docker's rotation (`max-size`, `max-file`: `ctr.log.1` … older files, rotated by
 * `LogRotator`), `none` writes nothing (conmon's `none` driver) and refuses reading as dockerd does.
 *
 * The reader: one record per line, "TIMESTAMP STREAM TAG CONTENT", where TIMESTAMP is RFC3339 with nanoseconds,
 * STREAM is stdout|stderr, TAG is F (full line: a newline followed CONTENT) or P (partial: CONTENT had no
 * newline yet). Yields chunks the way docker's logs API returns them, the rotated files first.
 */
import { link, open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createReadStream, createWriteStream, watch } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync } from 'node:zlib';
import { InvalidParameterError } from '../../lib/errors.js';
import { isENOENT } from '../../lib/fsutil.js';
import { parseBytes } from '../../lib/units.js';

// ------------------------------------------------------------------------------------------ drivers

/** The log drivers wharfd has and the options each accepts (dockerd's ValidateLogOpt lists). */
const DRIVER_OPTS: Record<string, readonly string[]> = {
  'json-file': ['max-file', 'max-size', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag'],
  local: ['max-file', 'max-size', 'compress'],
  none: [],
};

/** A container's log settings, from its LogConfig (checked at create). */
export interface LogSettings {
  driver: 'json-file' | 'local' | 'none';
  /** Rotate when the current file reaches this many bytes (json-file: unlimited by default; local: 20 MiB). */
  maxSize: number | null;
  /** Files kept, the current one included (json-file: 1; local: 5). */
  maxFile: number;
  /** Rotated files gzip-compressed (`path.1.gz` …), the `compress` option (local: on by default). */
  compress: boolean;
}

/**
 * Checks a LogConfig as dockerd's create does: the driver must exist (`error looking up logging plugin X: plugin
 * "X" not found`), its options be known to it (`unknown log opt 'k' for json-file log driver`) and sizes and
 * counts parse. Returns the settings.
 */
export function checkLogConfig(type: string, config: Record<string, string>): LogSettings {
  const allowed = DRIVER_OPTS[type];
  if (!allowed) throw new InvalidParameterError(`error looking up logging plugin ${type}: plugin ${JSON.stringify(type)} not found`);
  for (const k of Object.keys(config)) {
    if (allowed.includes(k)) continue;
    if (type === 'none') throw new InvalidParameterError('invalid logging opts for driver none');
    throw new InvalidParameterError(type === 'json-file' ? `unknown log opt '${k}' for json-file log driver` : `unknown log opt '${k}' for log driver ${type}`);
  }
  const local = type === 'local';
  let maxSize: number | null = local ? 20 << 20 : null;
  let maxFile = local ? 5 : 1;
  if (config['max-size'] !== undefined) {
    try { maxSize = parseBytes(config['max-size']); } catch {
      throw new InvalidParameterError(`invalid value for max-size: ${config['max-size']}`);
    }
    if (maxSize <= 0) maxSize = local ? 20 << 20 : null;
  }
  if (config['max-file'] !== undefined) {
    const n = Number(config['max-file']);
    if (!/^-?\d+$/.test(config['max-file'])) throw new InvalidParameterError(`strconv.Atoi: parsing ${JSON.stringify(config['max-file'])}: invalid syntax`);
    if (n < 1) throw new InvalidParameterError('max-file cannot be less than 1');
    maxFile = n;
  }
  if (config.compress !== undefined && !['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False', 'T', 'F'].includes(config.compress)) {
    throw new InvalidParameterError(`error reading compress log option: strconv.ParseBool: parsing ${JSON.stringify(config.compress)}: invalid syntax`);
  }
  const compress = config.compress !== undefined ? /^(true|1|t)$/i.test(config.compress) : local;
  return { driver: type as LogSettings['driver'], maxSize, maxFile, compress };
}

/**
 * The attributes `docker logs --details` prints before each line (the `labels`, `labels-regex`, `env` and
 * `env-regex` options of json-file pick them from the container's labels and environment): "k=v,k2=v2",
 * sorted by key, query-escaped, as dockerd's log stream writes them.
 */
export function logAttrs(config: Record<string, string>, labels: Record<string, string>, env: string[]): string {
  const attrs = new Map<string, string>();
  const envMap = new Map<string, string>();
  for (const e of env) { const i = e.indexOf('='); if (i > 0) envMap.set(e.slice(0, i), e.slice(i + 1)); }
  const pick = (names: string | undefined, regex: string | undefined, src: Map<string, string>) => {
    for (const n of (names ?? '').split(',').filter(Boolean)) if (src.has(n)) attrs.set(n, src.get(n)!);
    if (regex) {
      let re: RegExp | null = null;
      try { re = new RegExp(regex); } catch { /* a bad pattern picks nothing */ }
      if (re) for (const [k, v] of src) if (re.test(k)) attrs.set(k, v);
    }
  };
  pick(config.labels, config['labels-regex'], new Map(Object.entries(labels)));
  pick(config.env, config['env-regex'], envMap);
  const esc = (x: string) => encodeURIComponent(x).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [...attrs.keys()].sort().map((k) => `${esc(k)}=${esc(attrs.get(k)!)}`).join(',');
}

/** `path.N` … `path.1` (plain or `.gz`) that exist, oldest first. */
async function rotatedFiles(path: string): Promise<string[]> {
  const out: string[] = [];
  for (let k = 1; k < 1000; k++) {
    const plain = `${path}.${k}`;
    if (await stat(plain).then(() => true, () => false)) out.unshift(plain);
    else if (await stat(`${plain}.gz`).then(() => true, () => false)) out.unshift(`${plain}.gz`);
    else break;
  }
  return out;
}

/**
 * Docker's rotation (`max-file` > 1) for a log conmon writes with `--log-size-max`: at the limit conmon starts
 * the file over (a fresh file renamed over `path`), which would drop what it held. The rotator keeps a second
 * name (`path.live`, a hard link) on the file conmon is writing; when `path` turns out to be a new file, the old
 * one, still reachable through that link, becomes `path.1` (older ones move up, the oldest beyond `max-file`
 * goes) and the link moves to the new file. Checks on every change in the directory and each second; ends when
 * `alive()` turns false. Limit: conmon gives no notice, so a file it starts over and replaces again before the
 * rotator has seen it (more than max-size written within a few milliseconds) is lost; dockerd's json-file, which
 * rotates in its own writer, never loses one.
 */
export class LogRotator {
  private timer: NodeJS.Timeout | null = null;
  private watcher: ReturnType<typeof watch> | null = null;
  private ino = 0;
  private busy: Promise<void> | null = null;
  private readonly live: string;

  constructor(
    private readonly path: string, private readonly maxFile: number, private readonly alive: () => boolean,
    private readonly compress = false,
  ) {
    this.live = `${path}.live`;
  }

  async start(): Promise<this> {
    await unlink(this.live).catch(() => {});
    try {
      await link(this.path, this.live);
      this.ino = (await stat(this.live)).ino;
    } catch { /* no file yet: the first check links it */ }
    this.timer = setInterval(() => { void this.check(); }, 1000);
    this.timer.unref();
    try {
      this.watcher = watch(dirname(this.path), () => { void this.check(); });
      this.watcher.on('error', () => {});
      this.watcher.unref();
    } catch { /* the interval still checks */ }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.timer = null;
    this.watcher = null;
  }

  check(): Promise<void> {
    this.busy ??= this.rotateIfNew().finally(() => { this.busy = null; });
    return this.busy;
  }

  private async rotateIfNew(): Promise<void> {
    const done = !this.alive();
    let ino = 0;
    try { ino = (await stat(this.path)).ino; } catch { /* between conmon's steps */ }
    if (ino !== 0 && ino !== this.ino) {
      // hold the newest file first (conmon may start over again meanwhile), then move the old one up; the
      // recorded inode is the one held, so the current file is never taken for an old one
      const next = `${this.live}.next`;
      await unlink(next).catch(() => {});
      const held = await link(this.path, next).then(() => true, () => false);
      if (held) {
        if (this.ino !== 0) {
          await shiftFiles(this.path, this.maxFile);
          await rename(this.live, `${this.path}.1`).catch(() => {});
          if (this.compress) await gzipFile(`${this.path}.1`).catch(() => {});
        }
        await rename(next, this.live);
        this.ino = (await stat(this.live)).ino;
      }
    }
    if (done) {
      this.stop();
      await unlink(this.live).catch(() => {});
    }
  }
}

/**
 * Moves `path.(N-1)` … `path.1` (or their `.gz` forms) up one name, the one beyond `maxFile` files (the current
 * one counted) removed.
 */
async function shiftFiles(path: string, maxFile: number): Promise<void> {
  for (const ext of ['', '.gz']) await unlink(`${path}.${maxFile - 1}${ext}`).catch(() => {});
  for (let k = maxFile - 2; k >= 1; k--) {
    for (const ext of ['', '.gz']) await rename(`${path}.${k}${ext}`, `${path}.${k + 1}${ext}`).catch(() => {});
  }
}

/** `file` → `file.gz` (written under a temporary name, then the plain file removed). */
async function gzipFile(file: string): Promise<void> {
  await pipeline(createReadStream(file), createGzip(), createWriteStream(`${file}.gz.tmp`));
  await rename(`${file}.gz.tmp`, `${file}.gz`);
  await unlink(file);
}

// ------------------------------------------------------------------------------------------ reader

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

  let fh: FileHandle | undefined;
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
    /** The records of the complete lines of `text` that pass the options go to `out`; returns where the unfinished last line starts. */
    const completeRecords = (text: Buffer, out: LogRecord[]): number => {
      let start = 0;
      for (;;) {
        const nl = text.indexOf(0x0a, start);
        if (nl < 0) return start;
        const r = parseLogLine(text.subarray(start, nl));
        if (r && keep(r)) out.push(r);
        start = nl + 1;
      }
    };
    const readAvailable = async (): Promise<LogRecord[]> => {
      const out: LogRecord[] = [];
      for (;;) {
        const { bytesRead } = await fh!.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        rest = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : Buffer.from(buf.subarray(0, bytesRead));
        rest = rest.subarray(completeRecords(rest, out));
      }
      return out;
    };

    const older: LogRecord[] = [];
    for (const f of await rotatedFiles(path)) {
      let text: Buffer;
      try { text = await readFile(f); } catch { continue; }
      if (f.endsWith('.gz')) { try { text = gunzipSync(text); } catch { continue; } }
      completeRecords(text, older);
    }
    let first = older.length ? [...older, ...(await readAvailable())] : await readAvailable();
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
    let w = watch(path, () => wake());
    const onAbort = () => wake();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        const wasStopped = stopped;
        const recs = await readAvailable();
        for (const r of recs) yield r;
        // conmon started the file over (max-size): the old one is complete, go on with the new one
        const cur = await stat(path).catch(() => null);
        if (cur && cur.ino !== (await fh!.stat()).ino) {
          for (const r of await readAvailable()) yield r;
          await fh!.close();
          fh = await open(path, 'r');
          pos = 0;
          rest = Buffer.alloc(0);
          w.close();
          w = watch(path, () => wake());
          continue;
        }
        if (wasStopped) return;
        if (until !== null && BigInt(Date.now()) * 1000000n > until) return;
        await new Promise<void>((r) => { wake = r; setTimeout(r, 1000); });
      }
    } finally {
      w.close();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    await fh?.close();
  }
}

/** Size of a log file (for docker's SizeRw-like accounting); 0 when absent. */
export async function logSize(path: string): Promise<number> {
  try { return (await stat(path)).size; } catch { return 0; }
}
