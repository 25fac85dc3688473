/** Small file-system helpers. */

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
 * null for a missing path and lets any other error (EACCES, EIO, ELOOP…) through.
 */
export function missingAs<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (isMissing(e)) return value;
    throw e;
  };
}
