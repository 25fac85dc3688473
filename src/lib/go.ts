/**
 * Go-compatibility helpers, one home each: what dockerd and the docker CLI print through Go's runtime and standard
 * library (runtime.GOARCH, time.Format layouts, time.ParseDuration and Duration.String, strconv.Quote, path.Match), so
 * that Wharf reads and prints the same.
 */
import { InvalidParameterError } from './errors.js';

/** Node's process.arch → Go's GOARCH. */
const GOARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64',
  mips64el: 'mips64le', loong64: 'loong64',
};

/** Go's runtime.GOARCH for a Node architecture (this host's by default); unknown names pass through. */
export function goArch(arch: string = process.arch): string {
  return GOARCH[arch] ?? arch;
}

/** Go's time.RFC3339 ("2006-01-02T15:04:05Z07:00") of a Date in UTC: whole seconds. */
export function rfc3339(d: Date): string {
  return d.toISOString().slice(0, 19) + 'Z';
}

/**
 * Go's time.RFC3339Nano ("2006-01-02T15:04:05.999999999Z07:00") of a Date in UTC: the fraction with trailing zeros
 * removed, none for a whole second (a Date has millisecond precision).
 */
export function rfc3339Nano(d: Date): string {
  const iso = d.toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return iso.slice(0, 19) + (frac ? `.${frac}` : '') + 'Z';
}

/**
 * Docker's RFC3339NanoFixed ("2006-01-02T15:04:05.000000000Z07:00"): always nine fractional digits, as container
 * times and log timestamps are written. `offset` writes the zone as "+00:00" instead of "Z" (a Go time in a
 * location other than UTC, such as a build time).
 */
export function rfc3339NanoFixed(d: Date, offset = false): string {
  return `${d.toISOString().slice(0, 23)}000000${offset ? '+00:00' : 'Z'}`;
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Go's time.ParseDuration ("1h30m", "1.5s", "-200ms", "0"), in nanoseconds; a string that is not a duration throws
 * an InvalidParameterError with Go's message (`time: invalid duration "x"`, `time: missing unit in duration "5"`,
 * `time: unknown unit "x" in duration "5x"`).
 */
export function parseGoDuration(s: string): number {
  const q = JSON.stringify(s);
  let rest = s;
  let neg = false;
  if (rest !== '' && (rest[0] === '-' || rest[0] === '+')) { neg = rest[0] === '-'; rest = rest.slice(1); }
  if (rest === '0') return 0;
  if (rest === '') throw new InvalidParameterError(`time: invalid duration ${q}`);
  let total = 0;
  while (rest !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    if (num[0] === '' || num[0] === '.') throw new InvalidParameterError(`time: invalid duration ${q}`);
    rest = rest.slice(num[0].length);
    const unit = /^[^\d.]*/.exec(rest)![0];
    if (unit === '') throw new InvalidParameterError(`time: missing unit in duration ${q}`);
    const scale = DURATION_UNITS[unit];
    if (scale === undefined) throw new InvalidParameterError(`time: unknown unit ${JSON.stringify(unit)} in duration ${q}`);
    total += parseFloat(num[0].startsWith('.') ? `0${num[0]}` : num[0]) * scale;
    rest = rest.slice(unit.length);
  }
  return Math.round(neg ? -total : total);
}

/** parseGoDuration, or null when `s` is not a duration. */
export function tryParseGoDuration(s: string): number | null {
  try {
    return parseGoDuration(s);
  } catch (e) {
    if (e instanceof InvalidParameterError) return null;
    throw e;
  }
}

function trimFraction(x: number): string {
  return x.toFixed(9).replace(/\.?0+$/, '');
}

/** Go's time.Duration.String() of nanoseconds ("0s", "1.5µs", "250ms", "1m30s", "2h0m0s"). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const a = Math.abs(ns);
  let s: string;
  if (a < 1e3) s = `${a}ns`;
  else if (a < 1e6) s = `${trimFraction(a / 1e3)}µs`;
  else if (a < 1e9) s = `${trimFraction(a / 1e6)}ms`;
  else {
    const h = Math.floor(a / 3600e9);
    const m = Math.floor((a % 3600e9) / 60e9);
    const sec = (a % 60e9) / 1e9;
    s = (h ? `${h}h` : '') + (h || m ? `${m}m` : '') + `${trimFraction(sec)}s`;
  }
  return ns < 0 ? '-' + s : s;
}

/** Go's strconv.Quote: printable runes kept, the rest escaped (\a \b \f \n \r \t \v, \xNN, \uNNNN, \UNNNNNNNN). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
      default: break;
    }
    if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp >= 0xd800 && cp < 0xe000) out += '\\ufffd';
    else if (/[\p{L}\p{M}\p{N}\p{P}\p{S}\u0020]/u.test(ch)) out += ch;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + '"';
}

const badPattern = (): InvalidParameterError => new InvalidParameterError('syntax error in pattern');

/** A character of a class (`\` escapes the next one), at `i`: its code point and where the next starts. */
function classChar(p: string, i: number): [number, number] {
  if (i >= p.length || p[i] === '-' || p[i] === ']') throw badPattern();
  if (p[i] === '\\') {
    i++;
    if (i >= p.length) throw badPattern();
  }
  const cp = p.codePointAt(i)!;
  return [cp, i + (cp > 0xffff ? 2 : 1)];
}

// outside a class (the regexp is in `u` mode, where only syntax characters and `/` may be escaped)
const reEscape = (ch: string): string => ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const classEscape = (cp: number): string => `\\u{${cp.toString(16)}}`;

/**
 * Go's path.Match (and path/filepath.Match on Linux, the same): `*` any run of non-`/` characters, `?` one non-`/`
 * character, `[…]` a class (`^` negates; ranges `a-z`; `\` escapes), `\c` the character c. A malformed pattern
 * throws `syntax error in pattern` (Go's ErrBadPattern), whether or not the name would match.
 */
export function goMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length;) {
    const ch = pattern[i]!;
    if (ch === '*') { re += '[^/]*'; i++; continue; }
    if (ch === '?') { re += '[^/]'; i++; continue; }
    if (ch === '\\') {
      if (i + 1 >= pattern.length) throw badPattern();
      const cp = pattern.codePointAt(i + 1)!;
      re += reEscape(String.fromCodePoint(cp));
      i += 1 + (cp > 0xffff ? 2 : 1);
      continue;
    }
    if (ch === '[') {
      i++;
      let cls = '';
      if (pattern[i] === '^') { cls = '^'; i++; }
      let ranges = 0;
      for (;;) {
        if (pattern[i] === ']' && ranges > 0) { i++; break; }
        let lo: number, hi: number;
        [lo, i] = classChar(pattern, i);
        hi = lo;
        if (pattern[i] === '-') {
          [hi, i] = classChar(pattern, i + 1);
          if (hi < lo) throw badPattern();
        }
        cls += hi === lo ? classEscape(lo) : `${classEscape(lo)}-${classEscape(hi)}`;
        ranges++;
      }
      re += `[${cls}]`;
      continue;
    }
    const cp = pattern.codePointAt(i)!;
    re += reEscape(String.fromCodePoint(cp));
    i += cp > 0xffff ? 2 : 1;
  }
  return new RegExp(re + '$', 'su').test(name);
}
