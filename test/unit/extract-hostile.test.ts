/**
 * The hostile-layer corpus (test/support/hostile.ts) through the layer store's extraction, on the extraction
 * thread (as pull, load, import and build use it) and on the calling thread: refused cases fail naming their
 * entry and leave nothing (no directory, no sidecar, no layer), confined cases may be accepted, and the canaries
 * outside keep their content, modes, owners and link counts, with no new names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { extractLayerTar } from '../../src/engine/layers/extract.js';
import { WharfError } from '../../src/lib/errors.js';
import { hostileCorpus, makeCanaries, snapshot } from '../support/hostile.js';
import { buildTar } from '../support/tar.js';

async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [] as string[])).sort();
}

test('hostile corpus through the layer store (extraction thread): refused or confined, canaries untouched, nothing left of a refused layer', async () => {
  const root = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-'));
  try {
    const outside = await makeCanaries(join(root, 'outside'));
    const before = await snapshot(outside);
    const data = join(root, 'data');
    const s = await openLayerStore({ dataRoot: data, driver: 'overlay' });
    const leftovers = async () => [...await tree(join(data, 'overlay')), ...await tree(join(data, 'layers', 'tarsplit'))];
    const corpus = hostileCorpus(outside);
    assert.ok(corpus.length >= 30);
    let refused = 0;
    for (const c of corpus) {
      const tar = await buildTar(c.entries);
      const was = await leftovers();
      const layersBefore = (await s.list()).length;
      let err: unknown = null;
      let ex = null;
      try {
        ex = await s.extract(Readable.from([tar]));
      } catch (e) {
        err = e;
      }
      if (c.expect === 'refused') {
        assert.ok(err, `${c.id}: refused`);
        assert.ok(err instanceof WharfError, `${c.id}: a typed error (${String(err)})`);
        if (c.mention) assert.ok((err as Error).message.includes(JSON.stringify(c.mention)), `${c.id}: the error names ${c.mention}: ${(err as Error).message}`);
        assert.deepEqual(await leftovers(), was, `${c.id}: no directory or sidecar left`);
        assert.equal((await s.list()).length, layersBefore, `${c.id}: no layer record`);
        refused++;
      } else {
        assert.equal(err, null, `${c.id}: accepted (${String(err)})`);
        const l = await s.register(null, ex!);
        if (c.check) await c.check(await s.diffPath(l.chainId));
        await s.release(l.chainId);
      }
      assert.deepEqual(await snapshot(outside), before, `${c.id}: canaries untouched`);
      assert.equal(await readFile('/etc/passwd', 'utf8').then((t) => t.includes('root:')), true);
    }
    assert.ok(refused >= 20, `refused ${refused}`);
    assert.deepEqual(await tree(join(data, 'overlay')).then((t) => t.filter((n) => n !== 'l' && !n.startsWith('l/'))), [], 'every layer released');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('hostile corpus on the calling thread (asynchronous calls): same outcomes', async () => {
  const root = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-here-'));
  try {
    const outside = await makeCanaries(join(root, 'outside'));
    const before = await snapshot(outside);
    for (const c of hostileCorpus(outside)) {
      const dir = join(root, `layer-${c.id}`);
      await mkdir(dir);
      const r = await extractLayerTar(Readable.from([await buildTar(c.entries)]), dir).then(() => null, (e: unknown) => e);
      if (c.expect === 'refused') {
        assert.ok(r instanceof WharfError, `${c.id}: refused with a typed error (${String(r)})`);
        assert.equal(await readdir(dir).then(() => true, () => false), false, `${c.id}: directory removed`);
      } else {
        assert.equal(r, null, `${c.id}: accepted`);
        if (c.check) await c.check(dir);
        await rm(dir, { recursive: true, force: true });
      }
      assert.deepEqual(await snapshot(outside), before, `${c.id}: canaries untouched`);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the deferred-link attack from the report, checked on disk: the fifo is the layer\'s own, the host file keeps one link', async () => {
  const root = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-one-'));
  try {
    const outside = await makeCanaries(join(root, 'outside'));
    const dir = join(root, 'layer');
    await mkdir(dir);
    await extractLayerTar(Readable.from([await buildTar([
      { name: 'd/', type: 'directory', mode: 0o755 }, { name: 'd/canary', type: 'fifo', mode: 0o644 },
      { name: 'x', type: 'link', linkname: 'd/canary' }, { name: 'p', type: 'fifo', mode: 0o644 }, { name: 'd', type: 'symlink', linkname: outside },
    ])]), dir);
    const x = execFileSync('stat', ['-c', '%F %h %i', join(dir, 'x')], { encoding: 'utf8' }).trim();
    const host = execFileSync('stat', ['-c', '%F %h %i', join(outside, 'canary')], { encoding: 'utf8' }).trim();
    assert.match(x, /^fifo 1 /);
    assert.match(host, /^regular file 1 /);
    assert.notEqual(x.split(' ')[2], host.split(' ')[2]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('hostile corpus as a build context (untarTo: the same extractor, kind context): canaries untouched, write-through refused', async () => {
  const { untarTo } = await import('../../src/engine/build/context.js');
  const root = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-ctx-'));
  try {
    const outside = await makeCanaries(join(root, 'outside'));
    const before = await snapshot(outside);
    let refused = 0;
    for (const c of hostileCorpus(outside)) {
      const dir = join(root, `ctx-${c.id}`);
      await mkdir(dir);
      const sums = new Map<string, string>();
      const r = await untarTo(Readable.from([await buildTar(c.entries)]), dir, sums).then(() => null, (e: unknown) => e);
      if (r) refused++;
      if (c.id.endsWith('write-through') || c.id === 'symlink-dir-then-mkdir-through') assert.ok(r instanceof WharfError, `${c.id}: refused (${String(r)})`);
      if (c.id === 'dotdot-name') {
        assert.equal(r, null, 'a context name climbing above the root stops at the root, as in dockerd');
        assert.equal(await readFile(join(dir, 'evil'), 'utf8'), 'x');
        assert.ok(sums.has(join(dir, 'evil')), 'summed under its cleaned path');
      }
      assert.deepEqual(await snapshot(outside), before, `${c.id}: canaries untouched`);
      await rm(dir, { recursive: true, force: true });
    }
    assert.ok(refused >= 10, `refused ${refused}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('hard links to a fifo not made yet, and to such a link, are made in tar order; a replaced file keeps its checked parents', async () => {
  const root = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-links-'));
  try {
    const dir = join(root, 'layer');
    await mkdir(dir);
    await extractLayerTar(Readable.from([await buildTar([
      { name: 'd/', type: 'directory', mode: 0o755 }, { name: 'd/p', type: 'fifo', mode: 0o600 },
      { name: 'x', type: 'link', linkname: 'd/p' }, { name: 'y', type: 'link', linkname: 'x' },
      { name: 'd/f', content: 'one' }, { name: 'd/f', content: 'two' }, { name: 'd/g', content: 'three' },
    ])]), dir);
    const ino = (p: string) => execFileSync('stat', ['-c', '%F %h %i', join(dir, p)], { encoding: 'utf8' }).trim();
    assert.match(ino('d/p'), /^fifo 3 /);
    assert.equal(ino('x'), ino('d/p'));
    assert.equal(ino('y'), ino('d/p'));
    assert.equal(await readFile(join(dir, 'd/f'), 'utf8'), 'two');
    assert.equal(await readFile(join(dir, 'd/g'), 'utf8'), 'three');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
