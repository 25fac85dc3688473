import { open, rename, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsyncs a directory so that a rename inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/** fsyncs a file's data (e.g. a sidecar that must be durable before the record naming it is published). */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try { await fh.datasync(); } finally { await fh.close(); }
}

/** A fresh temporary name beside `path` (same filesystem, so rename is atomic). */
export function tempNameFor(path: string): string {
  return join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}-${path.split('/').pop()}`);
}

/**
 * Writes a file atomically: write to a temp file in the same directory, fsync, rename over the target,
 * fsync the directory. Readers see the old content or the new, never a mix; a crash leaves at most a temp file.
 * `durable: false` skips both fsyncs, for records whose loss in a crash is harmless (a tag time): the rename still
 * makes the change all-or-nothing.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameFor(path);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  if (durable) await fsyncDir(dirname(path));
}

/** JSON convenience over writeFileAtomic (`mode` 0600 for state files: container records, runtime state). */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value), mode);
}
