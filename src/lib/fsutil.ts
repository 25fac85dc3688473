/** Small file-system helpers. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Whether an error is a missing file or directory (ENOENT). */
export function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/**
 * Whether an error says a path does not lead anywhere: ENOENT, ENOTDIR (a component of it is not a directory) or
 * ELOOP (its symlinks loop).
 */
export function isMissing(e: unknown): boolean {
  const c = (e as NodeJS.ErrnoException | null)?.code;
  return c === 'ENOENT' || c === 'ENOTDIR' || c === 'ELOOP';
}

/**
 * A `.catch` handler for a look-up whose "not there" answer is expected: `lstat(p).catch(missingAs(null))` gives
 * null for a missing path and lets any other error (EACCES, EIO…) through.
 */
export function missingAs<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (isMissing(e)) return value;
    throw e;
  };
}

/** Bytes under a directory (files and symlinks by size, directories not counted), like docker's du. */
export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try { names = await readdir(dir); } catch (e) { if (isMissing(e)) return 0; throw e; }
  for (const n of names) {
    const p = join(dir, n);
    const st = await lstat(p).catch(missingAs(null));
    if (!st) continue;
    if (st.isDirectory()) total += await dirSize(p);
    else total += st.size;
  }
  return total;
}
