/**
 * The daemon's logger: levels, fields, child loggers, one line per event in dockerd's shape (logrus's text
 * format): time="2026-12-07T02:40:43.123000000Z" level=info msg="API listen on /run/wharf/wharf.sock" key=value
 *
 * One logger is built by the composition root (daemon/daemon.ts, from --log-level / -D / daemon.json) and handed
 * to engine services through their constructor deps; a service gives its helpers `log.child({ module: … })`.
 * There is no global logger: code that was not given one logs nothing (`discardLogger` is what tests and
 * tools without a daemon pass).
 */
import { NotFoundError } from './errors.js';
import { isENOENT } from './fsutil.js';
import { goQuote, rfc3339NanoFixed } from './go.js';

/** dockerd's --log-level values. `fatal` logs only what stops the daemon (wharfd has no fatal events yet). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** The levels an event can be logged at. */
export type EventLevel = Exclude<LogLevel, 'fatal'>;
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Whether an event at `level` would be written (to skip building costly messages). */
  enabled(level: EventLevel): boolean;
  /** A logger whose every line also carries `fields` (e.g. `{ module: 'containers' }`). */
  child(fields: LogFields): Logger;
  /**
   * For `.catch(…)` of work whose failure must not fail the caller but must not vanish either: logs `msg` at
   * `level` (default warn) with the error as the `error` field.
   */
  onError(msg: string, fields?: LogFields, level?: EventLevel): (err: unknown) => void;
  /**
   * For best-effort cleanup: something already gone — a missing file (ENOENT) or a NotFoundError (no such
   * container, layer, …) — is what was wanted and is not logged; any other error is logged at warn.
   */
  unlessGone(msg: string, fields?: LogFields): (err: unknown) => void;
}

/** A missing file or a typed not-found error: what a cleanup that finds nothing to do gets. */
export function isGone(e: unknown): boolean {
  return isENOENT(e) || e instanceof NotFoundError;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };
/** logrus's level names. */
const NAME: Record<EventLevel, string> = { debug: 'debug', info: 'info', warn: 'warning', error: 'error' };

/** Parses a --log-level value (dockerd's names; `warning` too, as logrus). */
export function parseLogLevel(s: string): LogLevel {
  const v = s.toLowerCase();
  if (v === 'warning') return 'warn';
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new Error(`unable to parse logging level: ${s}`);
}

/** An error's text for a log line: its message, then its causes' messages when they add to it. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  let text = e.message || e.name;
  const seen = new Set<unknown>([e]);
  let c: unknown = e.cause;
  while (c !== undefined && c !== null && !seen.has(c)) {
    seen.add(c);
    const m = c instanceof Error ? c.message : String(c);
    if (m && !text.includes(m)) text += `: ${m}`;
    c = c instanceof Error ? c.cause : undefined;
  }
  return text;
}

/** logrus's rule: bare when made only of letters, digits and `-._/@^+`, else Go-quoted. */
function formatValue(v: unknown): string {
  const s = v instanceof Error ? errorText(v) : typeof v === 'string' ? v : v === undefined ? '<nil>' : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return s !== '' && /^[A-Za-z0-9\-._/@^+]+$/.test(s) ? s : goQuote(s);
}

/** One log line (with its newline): time, level, msg, then the fields sorted by key, as logrus writes them. */
export function formatLine(time: Date, level: EventLevel, msg: string, fields: LogFields): string {
  let line = `time="${rfc3339NanoFixed(time)}" level=${NAME[level]} msg=${goQuote(msg)}`;
  for (const k of Object.keys(fields).sort()) line += ` ${k}=${formatValue(fields[k])}`;
  return `${line}\n`;
}

export interface LoggerOptions {
  /** Events below this level are dropped (default info). */
  level?: LogLevel;
  /** Where lines go (default: stderr, which is wharfd.log when the CLI started the daemon). */
  write?: (line: string) => void;
  /** The clock (tests). */
  now?: () => Date;
  fields?: LogFields;
}

class LineLogger implements Logger {
  constructor(
    private readonly min: number,
    private readonly write: (line: string) => void,
    private readonly now: () => Date,
    private readonly fields: LogFields,
  ) {}

  private emit(level: EventLevel, msg: string, fields?: LogFields): void {
    if (ORDER[level] < this.min) return;
    const all = fields ? { ...this.fields, ...fields } : this.fields;
    try {
      this.write(formatLine(this.now(), level, msg, all));
    } catch {
      // a log line that cannot be written (stderr closed) has nowhere else to go
    }
  }

  debug(msg: string, fields?: LogFields): void { this.emit('debug', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.emit('info', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.emit('warn', msg, fields); }
  error(msg: string, fields?: LogFields): void { this.emit('error', msg, fields); }
  enabled(level: EventLevel): boolean { return ORDER[level] >= this.min; }
  child(fields: LogFields): Logger { return new LineLogger(this.min, this.write, this.now, { ...this.fields, ...fields }); }
  onError(msg: string, fields?: LogFields, level: EventLevel = 'warn'): (err: unknown) => void {
    return (err) => this.emit(level, msg, { ...fields, error: err });
  }
  unlessGone(msg: string, fields?: LogFields): (err: unknown) => void {
    return (err) => { if (!isGone(err)) this.emit('warn', msg, { ...fields, error: err }); };
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return new LineLogger(
    ORDER[opts.level ?? 'info'],
    opts.write ?? ((line) => { process.stderr.write(line); }),
    opts.now ?? (() => new Date()),
    opts.fields ?? {},
  );
}

/** A logger that writes nothing: for tests and tools that run engine code without a daemon. */
export const discardLogger: Logger = createLogger({ level: 'fatal', write: () => {} });
