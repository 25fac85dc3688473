/**
 * packLayerItems (fsroot/tree.ts) given a listing that a racing container made stale: a directory listed with a
 * child, swapped for a symlink before its entry is written, must not be followed in the tar by that child under
 * its old name (a consumer refuses such a layer: the commit of a racing container failed with "parent path
 * traverses symlink").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { packLayerItems } from '../../src/engine/fsroot/tree.js';

test('a directory that became a symlink or a file after the listing: its listed children are left out of the layer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-tree-race-'));
  try {
    const root = join(dir, 'root');
    const old = join(dir, 'old-d'); // where the listing's children still are (read by descriptor in the daemon)
    await mkdir(join(root, 'e'), { recursive: true });
    await mkdir(old);
    await writeFile(join(old, 'own'), 'x');
    await symlink('/etc', join(root, 'd')); // listed as a directory, a symlink now
    await writeFile(join(root, 'f'), 'now a file'); // listed as a directory, a file now
    await writeFile(join(root, 'e', 'kept'), 'y');
    const pack = tarStream.pack();
    const names: string[] = [];
    const extract = tarStream.extract();
    extract.on('entry', (h, s, next) => { names.push(`${h.type} ${h.name}`); s.resume(); s.on('end', next); });
    const done = new Promise<void>((res, rej) => { extract.on('finish', res); extract.on('error', rej); });
    pack.pipe(extract);
    await packLayerItems(pack, root, [
      { rel: 'd' }, { rel: 'd/own', abs: join(old, 'own') }, { rel: 'd/sub' }, { rel: 'd/sub/deeper', abs: join(old, 'own') },
      { rel: 'e' }, { rel: 'e/kept' }, { rel: 'f' }, { rel: 'f/inner', abs: join(old, 'own') }, { rel: 'dd', abs: join(old, 'own') },
    ], () => undefined, () => false);
    pack.finalize();
    await done;
    assert.deepEqual(names, ['symlink d', 'directory e/', 'file e/kept', 'file f', 'file dd']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
