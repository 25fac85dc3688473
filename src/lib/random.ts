/**
 * Random bytes without node:crypto, for identifiers made while the daemon starts (the predefined networks' IDs on a
 * fresh data root). Loading node:crypto costs ~4 MB resident (its JS modules and OpenSSL's set-up); a daemon that
 * has pulled, built or hashed nothing yet has no other use for it (bench/README.md, memory). The kernel's
 * /dev/urandom is the same source OpenSSL seeds from; where it cannot be read, node:crypto does the work.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

/** `n` random bytes as lowercase hex (2n characters). */
export function randomHex(n: number): string {
  const buf = Buffer.alloc(n);
  try {
    const fd = openSync('/dev/urandom', 'r');
    try {
      let got = 0;
      while (got < n) {
        const r = readSync(fd, buf, got, n - got, null);
        if (r <= 0) throw new Error('short read from /dev/urandom');
        got += r;
      }
    } finally {
      closeSync(fd);
    }
    return buf.toString('hex');
  } catch {
    const { randomBytes } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
    return randomBytes(n).toString('hex');
  }
}
