/**
 * `docker load`: the tar is read in one pass — every `layer.tar` is extracted into the layer store as it
 * arrives (extraction does not depend on the parent), OCI blobs are spooled (whether one is a layer is known
 * only from index.json), small files kept in memory. Then the docker-archive reader (manifest.json) or, without
 * one, the OCI layout reader (index.json) says which images to make; each image's layers are checked against
 * its config's diff_ids, registered in order, then the image is created and tagged. Any error (a truncated or
 * tampered archive) discards every extracted layer and releases every registration: nothing is half-loaded.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ExtractedLayer } from '../layers/types.js';
import { chainIdOf, newHasher, type Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { familiarString, referenceString, type Reference } from '../../lib/reference.js';
import { parseManifestJson, planImages } from './docker-reader.js';
import { ociLayoutItems, type ArchiveEntries } from './oci-reader.js';
import { normEntryName as norm, type ArchiveDeps } from './types.js';

export async function loadArchive(deps: ArchiveDeps, body: Readable, progress: ProgressSink): Promise<void> {
  const { layers, images, refs } = deps;
  // `docker save | gzip | docker load`: the archive itself may be compressed (gzip, bzip2, xz, zstd)
  const input = await deps.decompress(body);
  const entries: ArchiveEntries = { files: new Map(), blobs: new Map(), extracted: new Map() };
  const { files, blobs, extracted } = entries;
  const extractLayer = async (file: string) => layers.extract(await deps.decompress(createReadStream(file)));
  const links = new Map<string, string>();
  const badBlobs = new Set<string>();
  let tmp: string | undefined;
  const tmpRoot = async () => {
    const d = join(deps.dataRoot, 'tmp');
    await mkdir(d, { recursive: true });
    return d;
  };
  const ex = tar.extract();
  let entryError: unknown;
  /** The entry being consumed (a layer extracted, a blob spooled): its outcome settles after the tar's teardown. */
  let pending: Promise<void> | null = null;
  ex.on('entry', (header, stream, next) => {
    const name = norm(header.name);
    const done = (err?: unknown) => { if (err) { entryError ??= err; ex.destroy(err as Error); } else next(); };
    if (header.type === 'file' && /(^|\/)layer\.tar$|\.tar(\.gz)?$|^blobs\/sha256\/[a-f0-9]{64}$/.test(name) && name !== 'manifest.json') {
      if (!name.startsWith('blobs/')) {
        pending = deps.decompress(stream as unknown as Readable).then((s) => layers.extract(s)).then((x) => { extracted.set(name, x); done(); }, done);
        return;
      }
      // OCI layout blob: spooled (whether it is a layer is known only from index.json, at the end)
      const hex = name.slice('blobs/sha256/'.length);
      const h = newHasher();
      const spool = (async () => {
        tmp ??= await mkdtemp(join(await tmpRoot(), 'load-'));
        const file = join(tmp, hex);
        await pipeline(stream as unknown as Readable, new Transform({
          transform(c: Buffer, _e, cb) { h.update(c); cb(null, c); },
        }), createWriteStream(file));
        // a blob whose content does not match its name is an error only if the image uses it (an OCI
        // layout's, checked before its index is read; a docker-archive's layer is caught by its diffID)
        if (h.digest('hex') !== hex) badBlobs.add(name);
        blobs.set(name, file);
      })();
      pending = spool.then(() => done(), done);
      return;
    }
    if (header.type === 'file' && (header.size ?? 0) <= 64 << 20) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer); });
      stream.on('end', () => { files.set(name, Buffer.concat(chunks)); done(); });
      stream.on('error', done);
      return;
    }
    // a hard link names an earlier entry (GNU tar re-packing an extracted archive links equal files)
    if (header.type === 'link' && header.linkname) links.set(name, norm(header.linkname));
    stream.on('end', () => done());
    stream.resume();
  });
  const held: Digest[] = [];
  const registered = new Set<ExtractedLayer>();
  try {
    await pipeline(input, ex).catch(async (e: Error) => {
      // an entry's own failure (ENOSPC while a layer is written) wins over the teardown it causes, which may
      // be reported first (a destroyed entry stream ends the tar early)
      await pending;
      const err = entryError ?? e;
      if (/unexpected end|premature|EOF/i.test((err as Error).message ?? '')) throw new InvalidParameterError('unexpected EOF');
      throw err;
    });
    // hard links take their target's content (layers by their spooled blob or extraction, small files by bytes)
    for (const [name, target] of links) {
      if (files.has(target) && !files.has(name)) files.set(name, files.get(target)!);
      if (blobs.has(target) && !blobs.has(name)) blobs.set(name, blobs.get(target)!);
      if (badBlobs.has(target)) badBlobs.add(name);
      if (extracted.has(target) && !extracted.has(name)) extracted.set(name, extracted.get(target)!);
    }
    const mraw = files.get('manifest.json');
    let items;
    if (mraw) items = parseManifestJson(mraw);
    else if (files.has('index.json')) {
      const bad = [...badBlobs].find((b) => b.startsWith('blobs/'));
      if (bad) throw new InvalidParameterError(`digest mismatch for ${bad}`);
      items = await ociLayoutItems(entries, extractLayer);
    } else {
      throw new InvalidParameterError('open manifest.json: no such file or directory (not a docker-archive)');
    }

    // Check everything before creating anything.
    const plans = await planImages(items, entries, extractLayer);

    // Register layers and create images.
    const chainByName = new Map<string, Digest>();
    const created: { id: Digest; tags: Reference[] }[] = [];
    for (const p of plans) {
      let parent: Digest | null = null;
      for (const ln of p.layerNames) {
        const x = extracted.get(ln)!;
        const want = chainIdOf(parent, x.diffId);
        const prev = chainByName.get(ln);
        if (prev === want || registered.has(x)) {
          if (prev !== want && !(await layers.has(want))) throw new InvalidParameterError(`layer ${ln} is used under two different parents`);
          await layers.retain(want);
        } else {
          const layer = await layers.register(parent, x);
          registered.add(x);
          chainByName.set(ln, layer.chainId);
        }
        held.push(want);
        parent = want;
      }
      const img = await images.create(p.raw);
      created.push({ id: img.id, tags: p.tags });
    }
    for (const c of created) {
      if (c.tags.length === 0) {
        progress({ stream: `Loaded image ID: ${c.id}\n` });
        continue;
      }
      for (const t of c.tags) {
        const key = referenceString(t);
        const old = refs.get(key);
        if (old && old !== c.id) {
          progress({ stream: `The image ${familiarString(t)} already exists, renaming the old one with ID ${old} to empty string\n` });
          await refs.delete(key);
        }
        await refs.add(key, c.id);
        await images.setLastUpdated(c.id);
        progress({ stream: `Loaded image: ${familiarString(t)}\n` });
      }
    }
  } finally {
    for (const x of extracted.values()) if (!registered.has(x)) await layers.discard?.(x).catch((e) => { deps.log?.warn('discarding an unregistered layer of a load', { error: e }); });
    for (const c of held.reverse()) await layers.release(c).catch((e) => { deps.log?.error('releasing a layer held by a load: its refcount stays one too high', { layer: c, error: e }); });
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch((e) => { deps.log?.warn('removing a load spool', { path: tmp, error: e }); });
    input.resume();
    body.resume();
  }
}
