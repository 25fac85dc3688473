/** Small file-system helpers. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Whether an error is a missing file or directory (ENOENT). */
export function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** Bytes under a directory (files and symlinks by size, directories not counted), like docker's du. */
export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try { names = await readdir(dir); } catch { return 0; }
  for (const n of names) {
    const p = join(dir, n);
    const st = await lstat(p).catch(() => null);
    if (!st) continue;
    if (st.isDirectory()) total += await dirSize(p);
    else total += st.size;
  }
  return total;
}
