/** `POST /images/create?fromSrc=`: a tar (any compression) becomes a one-layer image with the given changes. */
import type { Readable } from 'node:stream';
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError, WharfError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import type { ImportOptions } from '../../wire/index.js';
import type { ImageContext } from './context.js';
import { decompressStream } from '../../lib/compression.js';
import { DOCKER_VERSION, goContainerConfig } from './format.js';
import { parseNamed, refString, withDefaultTag, withTag, type ParsedRef } from './refs.js';
import { goArch, rfc3339Nano } from '../../lib/go.js';

export async function importImage(ctx: ImageContext, tar: Readable, opts: ImportOptions, progress: ProgressSink): Promise<string> {
  let newRef: ParsedRef | null = null;
  if (opts.repo) {
    try {
      newRef = parseNamed(opts.repo);
    } catch (e) {
      throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message, { cause: e });
    }
    if (newRef.digest) throw new InvalidParameterError('cannot import digest reference');
    if (opts.tag) newRef = withTag(newRef, opts.tag);
    newRef = withDefaultTag(newRef);
  }
  let os = 'linux';
  let arch = goArch();
  let variant: string | undefined;
  if (opts.platform) {
    const [o, a, v] = opts.platform.split('/');
    if (o && o !== 'linux') throw new InvalidParameterError(`operating system is not supported: ${o}`);
    if (o) os = o;
    if (a) arch = a;
    if (v) variant = v;
  }
  const config = ctx.applyChanges({}, opts.changes ?? []);
  const msg = opts.message || `Imported from ${opts.source}`;

  const { stream } = await decompressStream(tar);
  const extracted = await ctx.layers.extract(stream);
  const layer = await ctx.layers.register(null, extracted);
  let id: Digest;
  try {
    const created = rfc3339Nano(new Date());
    const cfg: Record<string, unknown> = {
      comment: msg,
      created,
      container_config: goContainerConfig({}),
      docker_version: DOCKER_VERSION,
      config: goContainerConfig(config),
      architecture: arch,
    };
    if (variant) cfg.variant = variant;
    cfg.os = os;
    cfg.rootfs = { type: 'layers', diff_ids: [layer.diffId] };
    cfg.history = [{ created, comment: msg }];
    const img = await ctx.images.create(Buffer.from(JSON.stringify(cfg)));
    id = img.id;
  } finally {
    // the image (if created) now holds its own reference; drop the registration's
    await ctx.layers.release(layer.chainId);
  }
  if (newRef) {
    await ctx.refs.add(refString(newRef), id);
    await ctx.images.setLastUpdated(id);
  }
  progress({ status: id });
  return id;
}
