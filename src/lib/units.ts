/**
 * Human units and times as docker prints them (github.com/docker/go-units semantics), plus the
 * pieces of Go's float formatting (strconv 'e', 'f', 'g') that those outputs and printf need.
 */
import { InvalidParameterError } from './errors.js';
import { goQuote } from './go.js';

// ---------------------------------------------------------------------------------------------
// Go float formatting (strconv.FormatFloat with 'e', 'f', 'g'; exact decimal, round half to even)
// ---------------------------------------------------------------------------------------------

/** Decimal digits of a non-negative finite double: value = 0.d1d2d3... × 10^dp. No trailing zeros. */
interface Decimal { d: string; dp: number }

/** The exact decimal expansion of |x| (x finite). */
function exactDecimal(x: number): Decimal {
  x = Math.abs(x);
  if (x === 0) return { d: '', dp: 0 };
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const hi = buf.getUint32(0);
  const lo = buf.getUint32(4);
  const bexp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2: number;
  if (bexp === 0) e2 = -1074;
  else { mant |= 1n << 52n; e2 = bexp - 1075; }
  let digits: string;
  let dp: number;
  if (e2 >= 0) {
    digits = (mant << BigInt(e2)).toString();
    dp = digits.length;
  } else {
    digits = (mant * 5n ** BigInt(-e2)).toString();
    dp = digits.length - -e2;
  }
  return trimDecimal({ d: digits, dp });
}

function trimDecimal(a: Decimal): Decimal {
  let d = a.d;
  let dp = a.dp;
  let i = 0;
  while (i < d.length && d[i] === '0') i++;
  d = d.slice(i);
  dp -= i;
  d = d.replace(/0+$/, '');
  if (d === '') dp = 0;
  return { d, dp };
}

/** Rounds to nd significant digits, half to even on exact ties (Go's decimal.Round). */
function roundDecimal(a: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= a.d.length) return a;
  const next = a.d.charCodeAt(nd) - 48;
  let up: boolean;
  if (next === 5 && nd + 1 === a.d.length) up = nd > 0 && (a.d.charCodeAt(nd - 1) - 48) % 2 === 1;
  else up = next >= 5;
  if (!up) return trimDecimal({ d: a.d.slice(0, nd), dp: a.dp });
  // round up
  const arr = a.d.slice(0, nd).split('');
  let i = nd - 1;
  while (i >= 0 && arr[i] === '9') { arr[i] = '0'; i--; }
  if (i < 0) return trimDecimal({ d: '1', dp: a.dp + 1 });
  arr[i] = String.fromCharCode(arr[i]!.charCodeAt(0) + 1);
  return trimDecimal({ d: arr.join(''), dp: a.dp });
}

/** Shortest digits that round-trip (what Go's FormatFloat(x, fmt, -1, 64) uses). */
function shortestDecimal(x: number): Decimal {
  x = Math.abs(x);
  if (x === 0) return { d: '', dp: 0 };
  const s = x.toExponential(); // shortest round-trip significand
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) throw new Error(`unexpected exponential form ${s}`);
  return trimDecimal({ d: m[1]! + (m[2] ?? ''), dp: Number(m[3]) + 1 });
}

function digitAt(a: Decimal, i: number): string {
  return i < a.d.length ? a.d[i]! : '0';
}

function fmtE(neg: boolean, a: Decimal, prec: number, upper: boolean): string {
  let s = neg ? '-' : '';
  s += a.d.length > 0 ? a.d[0] : '0';
  if (prec > 0) {
    s += '.';
    for (let i = 1; i <= prec; i++) s += digitAt(a, i);
  }
  let exp = a.d.length === 0 ? 0 : a.dp - 1;
  s += upper ? 'E' : 'e';
  if (exp < 0) { s += '-'; exp = -exp; } else s += '+';
  s += exp < 10 ? `0${exp}` : String(exp);
  return s;
}

function fmtF(neg: boolean, a: Decimal, prec: number): string {
  let s = neg ? '-' : '';
  if (a.dp > 0) {
    for (let i = 0; i < a.dp; i++) s += digitAt(a, i);
  } else s += '0';
  if (prec > 0) {
    s += '.';
    for (let i = 0; i < prec; i++) {
      const j = a.dp + i;
      s += j < 0 ? '0' : digitAt(a, j);
    }
  }
  return s;
}

/**
 * Go's strconv.FormatFloat(x, fmt, prec, 64) for fmt 'e', 'E', 'f', 'g', 'G'; prec -1 means the
 * shortest representation that round-trips.
 */
export function goFormatFloat(x: number, fmt: 'e' | 'E' | 'f' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  const neg = x < 0 || Object.is(x, -0);
  const shortest = prec < 0;
  let digs: Decimal;
  if (shortest) {
    digs = shortestDecimal(x);
    switch (fmt) {
      case 'e': case 'E': prec = Math.max(digs.d.length - 1, 0); break;
      case 'f': prec = Math.max(digs.d.length - digs.dp, 0); break;
      default: prec = digs.d.length; break;
    }
  } else {
    const exact = exactDecimal(x);
    switch (fmt) {
      case 'e': case 'E': digs = roundDecimal(exact, prec + 1); break;
      case 'f': digs = roundDecimal(exact, exact.dp + prec); break;
      default: if (prec === 0) prec = 1; digs = roundDecimal(exact, prec); break;
    }
  }
  switch (fmt) {
    case 'e': case 'E': return fmtE(neg, digs, prec, fmt === 'E');
    case 'f': return fmtF(neg, digs, prec);
    default: {
      let eprec = prec;
      const nd = digs.d.length;
      if (eprec > nd && nd >= digs.dp) eprec = nd;
      if (shortest) eprec = 6;
      const exp = digs.dp - 1;
      if (nd > 0 && (exp < -4 || exp >= eprec)) {
        let p = prec;
        if (p > nd) p = nd;
        return fmtE(neg, digs, p - 1, fmt === 'G');
      }
      let p = prec;
      if (p > digs.dp) p = nd;
      return fmtF(neg, digs, Math.max(p - digs.dp, 0));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

const DECIMAL_ABBRS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_ABBRS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function sizeAndUnit(size: number, base: number, abbrs: string[]): [number, string] {
  let i = 0;
  const limit = abbrs.length - 1;
  while (size >= base && i < limit) {
    size /= base;
    i++;
  }
  return [size, abbrs[i]!];
}

/** go-units HumanSizeWithPrecision: decimal units, `%.*g` (e.g. precision 3 → "1.98MB"). */
export function humanSizeWithPrecision(size: number, precision: number): string {
  const [v, unit] = sizeAndUnit(size, 1000, DECIMAL_ABBRS);
  return goFormatFloat(v, 'g', precision) + unit;
}

/** go-units HumanSize: HumanSizeWithPrecision(size, 4) ("1.984MB"). */
export function humanSize(size: number): string {
  return humanSizeWithPrecision(size, 4);
}

/** go-units BytesSize: binary units with `%.4g` ("1.5KiB", "23.54GiB"). */
export function bytesSize(size: number): string {
  const [v, unit] = sizeAndUnit(size, 1024, BINARY_ABBRS);
  return goFormatFloat(v, 'g', 4) + unit;
}

const BINARY_MULT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL_MULT: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

/** Go's strconv.ParseFloat for the plain forms a size accepts. */
function parseGoFloat(s: string): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) {
    throw new InvalidParameterError(`strconv.ParseFloat: parsing ${goQuote(s)}: invalid syntax`);
  }
  return Number(s);
}

function parseSize(sizeStr: string, mult: Record<string, number>): number {
  let sep = -1;
  for (let i = sizeStr.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(sizeStr[i]!)) { sep = i; break; }
  }
  if (sep === -1) throw new InvalidParameterError(`invalid size: '${sizeStr}'`);
  let num: string;
  let sfx: string;
  if (sizeStr[sep] !== ' ') {
    num = sizeStr.slice(0, sep + 1);
    sfx = sizeStr.slice(sep + 1);
  } else {
    num = sizeStr.slice(0, sep);
    sfx = sizeStr.slice(sep + 1);
  }
  let size = parseGoFloat(num);
  if (size < 0) throw new InvalidParameterError(`invalid size: '${sizeStr}'`);
  if (sfx.length === 0) return Math.trunc(size);
  const bad = () => new InvalidParameterError(`invalid suffix: '${sfx}'`);
  if (sfx.length > 3) throw bad();
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') {
    if (sfx.length > 1) throw bad();
    return Math.trunc(size);
  }
  const m = mult[sfx[0]!];
  if (m === undefined) throw bad();
  size *= m;
  if (sfx.length === 2 && sfx[1] !== 'b') throw bad();
  if (sfx.length === 3 && sfx.slice(1) !== 'ib') throw bad();
  return Math.trunc(size);
}

/** go-units RAMInBytes: "512m" → 536870912 (binary multiples; suffixes b k m g t p, optional "b"/"ib"). */
export function parseBytes(s: string): number {
  return parseSize(s, BINARY_MULT);
}

/** go-units FromHumanSize: "1.5kB" → 1500 (decimal multiples). */
export function fromHumanSize(s: string): number {
  return parseSize(s, DECIMAL_MULT);
}

// ---------------------------------------------------------------------------------------------
// Durations and times
// ---------------------------------------------------------------------------------------------

/** Go's time.Duration.Round(time.Hour) then Hours(), in whole hours (halfway rounds away from zero). */
function roundedHours(ms: number): number {
  const h = ms / 3_600_000;
  return h < 0 ? -Math.round(-h) : Math.floor(h + 0.5);
}

/** go-units HumanDuration for a duration in milliseconds. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = roundedHours(ms);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

function toMillis(date: Date | number | string): number {
  if (date instanceof Date) return date.getTime();
  if (typeof date === 'number') return date;
  const t = Date.parse(date);
  if (Number.isNaN(t)) throw new InvalidParameterError(`invalid time: ${JSON.stringify(date)}`);
  return t;
}

/**
 * docker's "CreatedSince": HumanDuration(now - date) + " ago". A number is milliseconds since the
 * epoch (pass unixSeconds * 1000 for API "Created" values); a string is parsed as RFC 3339.
 */
export function timeAgo(date: Date | number | string, now: number = Date.now()): string {
  return `${humanDuration(now - toMillis(date))} ago`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Go's time.Time.String() in UTC, as docker prints CreatedAt: "2026-11-24 16:01:11 +0000 UTC"
 * (fractional seconds appear only when non-zero, trailing zeros dropped, like Go's .999999999).
 * A number is milliseconds since the epoch; a string is parsed as RFC 3339 (nanoseconds kept).
 */
export function formatDockerTime(date: Date | number | string): string {
  const ms = toMillis(date);
  const d = new Date(ms);
  let frac = '';
  let nanos = ((ms % 1000) + 1000) % 1000 * 1_000_000;
  if (typeof date === 'string') {
    const m = /T\d{2}:\d{2}:\d{2}\.(\d+)/.exec(date);
    if (m) nanos = Number(m[1]!.slice(0, 9).padEnd(9, '0'));
  }
  if (nanos > 0) frac = '.' + String(nanos).padStart(9, '0').replace(/0+$/, '');
  const year = d.getUTCFullYear();
  const ys = year < 0 ? `-${String(-year).padStart(4, '0')}` : String(year).padStart(4, '0');
  return `${ys}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}${frac} +0000 UTC`;
}

// ---------------------------------------------------------------------------------------------
// Display width truncation (docker's formatter.Ellipsis)
// ---------------------------------------------------------------------------------------------

/** Display width of one code point: 2 for East Asian wide/fullwidth characters, else 1. */
function charWidth(cp: number): number {
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/**
 * docker's formatter.Ellipsis: truncates `s` to `maxDisplayWidth` columns, the last being "…"
 * (history's CREATED BY uses 45, ps's COMMAND 20).
 */
export function ellipsis(s: string, maxDisplayWidth: number): string {
  if (maxDisplayWidth <= 0) return '';
  const rs = [...s];
  if (rs.length === 0) return s;
  if (maxDisplayWidth === 1) return rs[0]!;
  const display: number[] = [];
  let w = 0;
  for (const r of rs) {
    w += charWidth(r.codePointAt(0)!);
    display.push(w);
  }
  if (w <= maxDisplayWidth) return s;
  for (let i = 0; i < display.length - 1; i++) {
    if (display[i]! <= maxDisplayWidth - 1 && display[i + 1]! > maxDisplayWidth - 1) return rs.slice(0, i + 1).join('') + '…';
  }
  // the first character alone is already wider than the room left
  return '…';
}
