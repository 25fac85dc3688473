/** `GET /images/{name}/json`: dockerd's ImageInspect, with overlay2's GraphDriver data. */
import type { ImageContext } from './context.js';
import { ZERO_TIME, goContainerConfig, goTimeString } from './format.js';
import { familiarString } from './refs.js';
import { topChainOf } from './store.js';
import type { ImageConfig } from './types.js';
import { notFoundAs } from '../../lib/errors.js';

export async function inspectImage(ctx: ImageContext, name: string): Promise<Record<string, unknown>> {
  const img = await ctx.resolve(name);
  const repoTags: string[] = [];
  const repoDigests: string[] = [];
  for (const r of ctx.refsOf(img.id)) {
    if (r.digest) repoDigests.push(familiarString(r));
    else if (r.tag) repoTags.push(familiarString(r));
  }
  const c = img.config;
  const top = topChainOf(c);
  const size = top ? await ctx.layers.chainSize(top) : 0;
  let comment = c.comment ?? '';
  if (!comment && c.history && c.history.length) comment = c.history[c.history.length - 1]!.comment ?? '';
  const out: Record<string, unknown> = {
    Id: img.id,
    RepoTags: repoTags,
    RepoDigests: repoDigests,
    Parent: img.parent ?? '',
    Comment: comment,
    Created: goTimeString(c.created),
    Container: c.container ?? '',
    ContainerConfig: goContainerConfig(c.container_config),
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: c.config ? goContainerConfig(c.config) : null,
    Architecture: c.architecture ?? '',
  };
  if (c.variant) out.Variant = c.variant;
  out.Os = c.os || 'linux';
  const osVersion = c['os.version'];
  if (typeof osVersion === 'string' && osVersion) out.OsVersion = osVersion;
  out.Size = size;
  out.VirtualSize = size;
  out.GraphDriver = { Data: top ? await ctx.layers.graphDriverData(top).catch(notFoundAs(null)) : null, Name: ctx.layers.graphDriverName };
  out.RootFS = { Type: 'layers', Layers: [...(c.rootfs.diff_ids ?? [])] };
  out.Metadata = { LastTagTime: img.lastTagTime ? goTimeString(img.lastTagTime) : ZERO_TIME };
  return out;
}

