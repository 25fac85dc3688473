/** Tars the tests build entry by entry (tar-stream): layers, contexts, hostile corpora. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { LayerStore } from '../../src/engine/layers/types.js';
import { chainIdOf, sha256, type Digest } from '../../src/lib/digest.js';

/** One entry: a tar-stream header (type defaults to file) and, for files, its content. */
export type TarEntry = Partial<tarStream.Header> & { name: string; content?: string | Buffer };

/** A tar of `entries` (tar-stream; PAX records for long names and `pax` fields). */
export async function buildTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const out: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) out.push(c);
  })();
  for (const e of entries) {
    const { content, ...h } = e;
    const header = { mtime: new Date(1_600_000_000_000), ...h } as tarStream.Header;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if ((h.type ?? 'file') === 'file') pack.entry(header, typeof content === 'string' || content === undefined ? Buffer.from(content ?? '') : content, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(out);
}

/** Extracts and registers a layer made of `entries` on `parent`, checking its diffID and chain ID; its chain ID. */
export async function addLayer(s: LayerStore, parent: Digest | null, entries: TarEntry[]): Promise<Digest> {
  const tar = await buildTar(entries);
  const ex = await s.extract(Readable.from([tar]));
  assert.equal(ex.diffId, sha256(tar));
  const l = await s.register(parent, ex);
  assert.equal(l.chainId, chainIdOf(parent, ex.diffId));
  return l.chainId;
}
