/** Small file-system helpers. */

/** Whether an error is a missing file or directory (ENOENT). */
export function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
