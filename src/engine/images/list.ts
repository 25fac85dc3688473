/** `GET /images/json` (list, filters dangling/label/before/since/reference) and /system/df's image part. */
import { chainIds, type Digest } from '../../lib/digest.js';
import { getBoolOrDefault, hasFilter, matchKVList, validateFilters } from '../../lib/filters.js';
import type { ImageSummary } from '../../wire/index.js';
import type { Filters } from '../../lib/filters.js';
import type { ImageContext } from './context.js';
import { goUnix, timeKey } from './format.js';
import { goMatch } from '../../lib/go.js';
import { familiarName, familiarString } from './refs.js';
import { topChainOf } from './store.js';
import type { Image } from './types.js';

async function summary(ctx: ImageContext, img: Image): Promise<ImageSummary> {
  const top = topChainOf(img.config);
  const size = top ? await ctx.layers.chainSize(top) : 0;
  return {
    Containers: -1,
    Created: goUnix(img.config.created),
    Id: img.id,
    Labels: img.config.config?.Labels ?? null,
    ParentId: img.parent ?? '',
    RepoDigests: null as unknown as string[],
    RepoTags: null as unknown as string[],
    SharedSize: -1,
    Size: size,
    VirtualSize: size,
  };
}

/** The images `filters` select, newest first; `extra` fills in Containers and SharedSize. */
export async function listImages(ctx: ImageContext, all: boolean, filters: Filters, extra: boolean): Promise<ImageSummary[]> {
  validateFilters(filters, ['dangling', 'label', 'before', 'since', 'reference']);
  const danglingOnly = getBoolOrDefault(filters, 'dangling', false);
  let before: number | null = null;
  let since: number | null = null;
  for (const v of filters.before ?? []) before = timeKey((await ctx.resolve(v)).config.created);
  for (const v of filters.since ?? []) since = timeKey((await ctx.resolve(v)).config.created);
  const patterns = filters.reference;

  const allImages = await ctx.images.list();
  const childCount = new Map<Digest, number>();
  for (const img of allImages) if (img.parent) childCount.set(img.parent, (childCount.get(img.parent) ?? 0) + 1);
  const candidates = danglingOnly ? allImages.filter((i) => !childCount.get(i.id)) : allImages;

  const out: { s: ImageSummary; img: Image; t: number }[] = [];
  for (const img of candidates) {
    const t = timeKey(img.config.created);
    if (before !== null && t >= before) continue;
    if (since !== null && t <= since) continue;
    if (filters.label && filters.label.length) {
      if (!img.config.config) continue;
      if (!matchKVList(filters, 'label', img.config.config.Labels)) continue;
    }
    const s = await summary(ctx, img);
    let tags: string[] | null = null;
    let digests: string[] | null = null;
    for (const ref of ctx.refsOf(img.id)) {
      if (patterns && patterns.length) {
        let found = false;
        for (const pat of patterns) {
          found = goMatch(pat, familiarString(ref)) || goMatch(pat, familiarName(ref));
          if (found) break;
        }
        if (!found) continue;
      }
      if (ref.digest) (digests ??= []).push(familiarString(ref));
      if (ref.tag) (tags ??= []).push(familiarString(ref));
    }
    if (tags === null && digests === null) {
      if (all || !childCount.get(img.id)) {
        if (hasFilter(filters, 'dangling') && !danglingOnly) continue;
        if (patterns && patterns.length) continue;
        digests = ['<none>@<none>'];
        tags = ['<none>:<none>'];
      } else continue;
    } else if (danglingOnly && tags !== null) continue;
    s.RepoTags = tags as string[];
    s.RepoDigests = digests as string[];
    out.push({ s, img, t });
  }

  if (extra) {
    const layerRefs = new Map<Digest, number>();
    for (const { s, img } of out) {
      s.Containers = ctx.containers ? (await ctx.containers.usersOf(img.id)).length : 0;
      for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) layerRefs.set(c, (layerRefs.get(c) ?? 0) + 1);
    }
    for (const { s, img } of out) {
      let shared = 0;
      for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) {
        if ((layerRefs.get(c) ?? 0) > 1) shared += (await ctx.layers.get(c))?.size ?? 0;
      }
      s.SharedSize = shared;
    }
  }
  out.sort((a, b) => b.t - a.t || (a.img.id < b.img.id ? -1 : a.img.id > b.img.id ? 1 : 0));
  return out.map((x) => x.s);
}

/** /system/df's image part: {LayersSize, Images} (Images with SharedSize and Containers filled in). */
export async function imagesDiskUsage(ctx: ImageContext): Promise<{ LayersSize: number; Images: ImageSummary[] }> {
  const images = await listImages(ctx, false, {}, true);
  const used = new Set<Digest>();
  for (const img of await ctx.images.list()) for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) used.add(c);
  let layersSize = 0;
  for (const l of await ctx.layers.list()) if (used.has(l.chainId)) layersSize += l.size;
  return { LayersSize: layersSize, Images: images };
}
