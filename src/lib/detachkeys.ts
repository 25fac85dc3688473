/** docker's detach keys (`--detach-keys`, the attach query `detachKeys`); default ctrl-p,ctrl-q. */
import { InvalidParameterError } from './errors.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** Parses docker's detach-keys syntax ("ctrl-p,ctrl-q", "a,ctrl-@") into the byte sequence. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const k = raw.trim().toLowerCase();
    if (k.length === 1) { out.push(k.charCodeAt(0)); continue; }
    const m = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (!m) throw new InvalidParameterError(`Invalid detach keys (${spec}) provided`);
    const ch = m[1]!;
    out.push(ch >= 'a' && ch <= 'z' ? ch.charCodeAt(0) - 96 : ch.toUpperCase().charCodeAt(0) & 0x1f);
  }
  return Buffer.from(out);
}
