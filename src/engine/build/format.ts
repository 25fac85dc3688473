/** Go's fmt renderings that docker's classic builder writes into history (created_by) strings. */
import { goDuration, goQuote } from '../../lib/go.js';

/** fmt %q of a []string: ["a" "b"]. */
export function goQuoteList(xs: string[]): string {
  return '[' + xs.map(goQuote).join(' ') + ']';
}

/** fmt %q of an int: a quoted rune. */
export function goQuoteRune(n: number): string {
  if (n === 39) return "'\\''";
  if (n === 92) return "'\\\\'";
  if (n >= 0x20 && n < 0x7f) return `'${String.fromCharCode(n)}'`;
  if (n === 7) return "'\\a'";
  if (n === 8) return "'\\b'";
  if (n === 12) return "'\\f'";
  if (n === 10) return "'\\n'";
  if (n === 13) return "'\\r'";
  if (n === 9) return "'\\t'";
  if (n === 11) return "'\\v'";
  if (n < 0x80) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n <= 0xffff) return `'\\u${n.toString(16).padStart(4, '0')}'`;
  return `'\\U${n.toString(16).padStart(8, '0')}'`;
}

/** `HEALTHCHECK %q` of a *container.HealthConfig: &{["CMD-SHELL" "…"] "5s" "3s" "0s" '\x00'}. */
export function goHealthcheck(h: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number }): string {
  return `&{${goQuoteList(h.Test ?? [])} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`;
}
