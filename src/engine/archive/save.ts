/**
 * `docker save`: resolves every name first (a missing image fails before anything is streamed), regenerates
 * and checks every layer against its diff ID, then streams one tar that the docker-archive writer and the
 * OCI layout writer fill together.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Image, ImageConfig } from '../images/types.js';
import { chainIdOf, hexOf, newHasher, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, NotFoundError, SystemError } from '../../lib/errors.js';
import { normalizedName, parseNormalizedNamed, referenceString, withDefaultTag, type Reference } from '../../lib/reference.js';
import { DockerArchiveWriter, type SpooledLayer } from './docker-writer.js';
import { OciLayoutWriter } from './oci-writer.js';
import type { ArchiveDeps, EntryWriter } from './types.js';

interface Selected { img: Image; tags: Reference[] }

/** The images `names` select, in order, with the tags each is saved under. */
async function select(deps: ArchiveDeps, names: string[]): Promise<Selected[]> {
  const byId = new Map<Digest, Selected>();
  const order: Digest[] = [];
  const add = (img: Image, tag?: Reference) => {
    let e = byId.get(img.id);
    if (!e) { e = { img, tags: [] }; byId.set(img.id, e); order.push(img.id); }
    if (tag && !e.tags.some((t) => referenceString(t) === referenceString(tag))) e.tags.push(tag);
  };
  for (const name of names) {
    let ref: Reference | null = null;
    try { ref = parseNormalizedNamed(name); } catch { ref = null; }
    const idLike = /^sha256:[a-f0-9]{64}$/.test(name) || /^[a-f0-9]{1,64}$/.test(name);
    if (ref && ref.tag === undefined && ref.digest === undefined && !name.includes(':')) {
      // a bare repository name: every tag of it (as docker save does)
      const repo = normalizedName(ref);
      let any = false;
      for (const [r, id] of deps.refs.all()) {
        const at = r.lastIndexOf(':');
        if (r.includes('@') || at < 0 || r.slice(0, at) !== repo) continue;
        add(await deps.images.get(id), { domain: ref.domain, path: ref.path, tag: r.slice(at + 1) });
        any = true;
      }
      if (any) continue;
    }
    let img: Image;
    try {
      img = await deps.resolve(name);
    } catch (e) {
      // dockerd's tarexport looks references up in the reference store: its not-found wording differs
      if (e instanceof NotFoundError && ref && !idLike) throw new NotFoundError('reference does not exist');
      throw e;
    }
    const isId = /^sha256:[a-f0-9]{64}$/.test(name) ||
      (idLike && (!ref || deps.refs.get(referenceString(withDefaultTag(ref))) !== img.id));
    if (!ref || isId || ref.digest !== undefined) { add(img); continue; }
    add(img, withDefaultTag(ref));
  }
  return order.map((id) => byId.get(id)!);
}

/**
 * Every layer regenerated and checked against its diff ID before the first byte goes out, so a layer the
 * store cannot reproduce is an error status, not a corrupt archive. A layer kept byte for byte is not spooled:
 * it streams straight into the archive (its DiffID checked on the way).
 */
async function spool(deps: ArchiveDeps, selected: Selected[], tmp: string): Promise<Map<Digest, SpooledLayer>> {
  const spooled = new Map<Digest, SpooledLayer>();
  for (const { img } of selected) {
    const cfg = img.config as ImageConfig;
    let chain: Digest | null = null;
    for (const diffId of cfg.rootfs?.diff_ids ?? []) {
      chain = chainIdOf(chain, diffId);
      if (spooled.has(chain)) continue;
      const exact = await deps.layers.exactTarSize?.(chain);
      if (exact !== null && exact !== undefined) { spooled.set(chain, { file: null, size: exact, diffId }); continue; }
      const file = join(tmp, `${hexOf(chain)}.tar`);
      const h = newHasher();
      await pipeline(await deps.layers.tarStream(chain), new Transform({
        transform(c: Buffer, _e, cb) { h.update(c); cb(null, c); },
      }), createWriteStream(file));
      const got = `sha256:${h.digest('hex')}`;
      if (got !== diffId) {
        throw new SystemError(`layer ${diffId} of image ${img.id} cannot be reproduced by the layer store (regenerated tar has diff ID ${got})`);
      }
      spooled.set(chain, { file, size: (await stat(file)).size, diffId });
    }
  }
  return spooled;
}

export async function saveImages(deps: ArchiveDeps, names: string[]): Promise<Readable> {
  if (names.length === 0) throw new InvalidParameterError('no images specified');
  const selected = await select(deps, names);
  const tmpRoot = join(deps.dataRoot, 'tmp');
  await mkdir(tmpRoot, { recursive: true });
  const tmp = await mkdtemp(join(tmpRoot, 'save-'));
  let spooled: Map<Digest, SpooledLayer>;
  try {
    spooled = await spool(deps, selected, tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch((e2) => { deps.log?.warn('removing a save spool', { path: tmp, error: e2 }); });
    throw e;
  }
  const pack = tar.pack();
  const entry: EntryWriter = (header, body) => new Promise<void>((resolve, reject) => {
    const h = { mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root', ...header } as tar.Header;
    if (body === undefined) {
      pack.entry(h, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    } else if (Buffer.isBuffer(body)) {
      pack.entry(h, body, (err) => (err ? reject(err) : resolve()));
    } else {
      const w = pack.entry(h, (err) => (err ? reject(err) : resolve()));
      w.on('error', reject);
      body.on('error', reject);
      body.pipe(w);
    }
  });

  const produce = async () => {
    const docker = new DockerArchiveWriter(entry, deps.layers, spooled);
    const oci = new OciLayoutWriter(entry);
    for (const { img, tags } of selected) {
      const layers = await docker.addImage(img, tags);
      await oci.addImage(img, docker.configPath(img.id), layers, tags);
    }
    await oci.finish();
    await docker.finish();
    pack.finalize();
  };
  produce().catch((e) => pack.destroy(e)).finally(() => { void rm(tmp, { recursive: true, force: true }).catch((e) => { deps.log?.warn('removing a save spool', { path: tmp, error: e }); }); });
  return pack as unknown as Readable;
}
