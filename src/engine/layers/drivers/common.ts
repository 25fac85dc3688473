import { chmod, chown, lstat, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isWhiteout } from '../../fsroot/index.js';
import { missingAs } from '../../../lib/fsutil.js';

/** What every driver shares: docker's init layer, mount checks, mode repair. */

/**
 * Docker's init layer: mount targets created below the container's RW layer when the image lacks them, so that
 * the runtime's bind mounts never show up in `docker diff` / commit.
 */
const INIT_ITEMS: [string, 'dir' | 'file' | 'symlink', string?][] = [
  ['dev/pts', 'dir'],
  ['dev/shm', 'dir'],
  ['proc', 'dir'],
  ['sys', 'dir'],
  ['.dockerenv', 'file'],
  ['etc/resolv.conf', 'file'],
  ['etc/hosts', 'file'],
  ['etc/hostname', 'file'],
  ['dev/console', 'file'],
  ['etc/mtab', 'symlink', '/proc/mounts'],
];

/** Sets a mode; a path that does not exist is left alone. */
export function setMode(p: string, mode: number): Promise<void> {
  return chmod(p, mode).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
}

export async function isMountpoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const esc = path.replace(/[\\ \t\n]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f[4] === esc) return true;
  }
  return false;
}

/** The topmost entry at `rel` among `dirs` (null when absent or whited out). */
async function topmost(dirs: string[], rel: string): Promise<import('node:fs').BigIntStats | null> {
  for (const l of dirs) {
    try {
      const st = await lstat(join(l, rel), { bigint: true });
      return isWhiteout(st) ? null : st;
    } catch {
      // not in this layer
    }
  }
  return null;
}

/**
 * Creates docker's init-layer entries in `target` for those the image (`target` itself, then `lowers`) lacks.
 * Parent directories that exist below get their owner, mode and times copied (as an overlay copy-up would).
 */
export async function populateInit(target: string, lowers: string[]): Promise<void> {
  const all = [target, ...lowers];
  for (const [rel, kind, linkTarget] of INIT_ITEMS) {
    if (await topmost(all, rel)) continue;
    const parts = rel.split('/');
    let ok = true;
    for (let i = 1; i < parts.length && ok; i++) {
      const anc = parts.slice(0, i).join('/');
      const mine = await lstat(join(target, anc)).catch(missingAs(null));
      if (mine) {
        ok = mine.isDirectory();
        continue;
      }
      const below = await topmost(lowers, anc);
      if (below && !below.isDirectory()) {
        ok = false;
        continue;
      }
      await mkdir(join(target, anc), { mode: 0o755 });
      if (below) {
        await chown(join(target, anc), Number(below.uid), Number(below.gid));
        await chmod(join(target, anc), Number(below.mode & 0o7777n));
      }
    }
    if (!ok) continue;
    const p = join(target, rel);
    if (kind === 'dir') await mkdir(p, { mode: 0o755 });
    else if (kind === 'file') await writeFile(p, '', { mode: 0o755 });
    else await symlink(linkTarget!, p);
  }
  // directory times last, after their content
  for (const [rel] of INIT_ITEMS) {
    const parts = rel.split('/');
    for (let i = parts.length - 1; i >= 1; i--) {
      const anc = parts.slice(0, i).join('/');
      const below = await topmost(lowers, anc);
      if (below && below.isDirectory() && (await lstat(join(target, anc)).catch(missingAs(null)))) {
        await utimes(join(target, anc), new Date(Number(below.atimeMs)), new Date(Number(below.mtimeMs)));
      }
    }
  }
}

