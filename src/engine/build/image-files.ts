/**
 * Files of the image a build step starts from, read from its registered layer directories (read-only once
 * registered, so resolved lexically: fsroot/lexical.ts; symlinks resolved inside the image, never into the host):
 * WORKDIR's and COPY's existing directories, --chown names from /etc/passwd and /etc/group.
 */
import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, type Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import type { ImageConfig } from '../images/types.js';
import type { LayerStore } from '../layers/types.js';
import { mergedLstat, resolveInLayers } from '../fsroot/index.js';
import type { FileEntry, Owner } from './sources.js';

export class ImageFiles {
  constructor(private readonly layers: LayerStore) {}

  /** The image's layer directories, top first. */
  async layerDirs(config: ImageConfig): Promise<string[]> {
    const chains = chainList(config.rootfs?.diff_ids ?? []);
    return this.layers.lookupDirs(chains[chains.length - 1] ?? null);
  }

  /** A path of the image with its symlinks resolved inside the image (never into the host). */
  async resolve(config: ImageConfig, p: string): Promise<string> {
    return resolveInLayers(await this.layerDirs(config), p);
  }

  /** lstat of a path in the current image, symlinks resolved in the image. */
  async stat(config: ImageConfig, p: string): Promise<Stats | null> {
    const dirs = await this.layerDirs(config);
    if (!dirs.length) return null;
    return mergedLstat(dirs, await resolveInLayers(dirs, p));
  }

  async read(config: ImageConfig, p: string): Promise<string | null> {
    const dirs = await this.layerDirs(config);
    const rel = await resolveInLayers(dirs, p);
    for (const dir of dirs) {
      const s = await mergedLstat([dir], rel);
      if (s?.isFile()) return readFile(join(dir, rel), 'utf8');
    }
    return null;
  }

  async resolveChown(config: ImageConfig, spec: string): Promise<Owner> {
    const [u = '', g] = spec.split(':', 2) as [string, string?];
    const lookup = async (file: string, name: string, what: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      const text = (await this.read(config, file)) ?? '';
      for (const l of text.split('\n')) {
        const f = l.split(':');
        if (f[0] === name && f.length >= 3) return Number(f[2]);
      }
      throw new InvalidParameterError(`unable to convert uid/gid chown string to host mapping: can't find ${what} for ${what === 'uid' ? 'user' : 'group'} ${name}: no such ${what === 'uid' ? 'user' : 'group'}`);
    };
    const uid = await lookup('/etc/passwd', u, 'uid');
    const gid = g === undefined ? uid : await lookup('/etc/group', g, 'gid');
    return { uid, gid };
  }

  /**
   * The directories of a path for a layer: those the image lacks are new (0755, `ownerOf(depth)`); those it has
   * come with their own metadata, as in the overlay diff of dockerd's step (a parent of a new entry is copied up).
   */
  async dirEntries(config: ImageConfig, parts: string[], ownerOf: (depth: number) => Owner): Promise<FileEntry[]> {
    const dirs: FileEntry[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const have = await this.stat(config, '/' + p);
      if (!have) {
        dirs.push({ path: p, type: 'directory', mode: 0o755, ...ownerOf(i), mtime: new Date(), size: 0 });
      } else if (have.isDirectory() && (await this.resolve(config, '/' + p)).replace(/^\/+/, '') === p) {
        dirs.push({ path: p, type: 'directory', mode: have.mode & 0o7777, uid: have.uid, gid: have.gid, mtime: have.mtime, size: 0 });
      }
    }
    return dirs;
  }
}

function chainList(ids: readonly string[]): Digest[] { return chainIds(ids as Digest[]); }
