import { open, rename, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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

/** Temporary names count up from a random start: unique within this process, unlikely to meet another's. */
let tempSeq = Math.floor(Math.random() * 2 ** 48);

/**
 * A fresh temporary name beside `path` (same filesystem, so rename is atomic). Not from node:crypto: the daemon
 * writes state files at start-up, before it needs crypto for anything else (~4 MB resident; bench/README.md, memory).
 */
export function tempNameFor(path: string): string {
  tempSeq = (tempSeq + 1) % 2 ** 48;
  return join(dirname(path), `.tmp-${tempSeq.toString(16).padStart(12, '0')}-${path.split('/').pop()}`);
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
  // 'wx' (O_CREAT|O_EXCL): the temp name is predictable (a counter), so it is never opened through a symlink or an
  // existing file that something else put there; a name taken is skipped
  let tmp = tempNameFor(path);
  let fh;
  for (let tries = 0; ; tries++) {
    try { fh = await open(tmp, 'wx', mode); break; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 8) throw e;
      tmp = tempNameFor(path);
    }
  }
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
