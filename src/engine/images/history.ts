/** `GET /images/{name}/history`: one entry per history record, newest first, IDs and tags of the parent chain. */
import { chainIds, type Digest } from '../../lib/digest.js';
import { NotFoundError, WharfError } from '../../lib/errors.js';
import type { HistoryItem } from '../../wire/index.js';
import type { ImageContext } from './context.js';
import { goUnix } from './format.js';
import { familiarString } from './refs.js';
import type { Image } from './types.js';

export async function imageHistory(ctx: ImageContext, name: string): Promise<HistoryItem[]> {
  const img = await ctx.resolve(name);
  const diffIds = img.config.rootfs.diff_ids ?? [];
  const out: HistoryItem[] = [];
  let layer = 0;
  let parentChain: Digest | null = null;
  for (const h of img.config.history ?? []) {
    let size = 0;
    if (!h.empty_layer) {
      if (layer >= diffIds.length) throw new WharfError('too many non-empty layers in History section');
      parentChain = chainIds(diffIds.slice(0, layer + 1))[layer]!;
      const l = await ctx.layers.get(parentChain);
      if (!l) throw new NotFoundError(`layer does not exist: ${parentChain}`);
      size = l.size;
      layer++;
    }
    out.unshift({ Comment: h.comment ?? '', Created: goUnix(h.created), CreatedBy: h.created_by ?? '', Id: '<missing>', Size: size, Tags: null });
  }
  let cur: Image | null = img;
  for (const item of out) {
    if (!cur) break;
    item.Id = cur.id;
    const tags = ctx.refsOf(cur.id).filter((r) => r.tag && !r.digest).map((r) => familiarString(r));
    item.Tags = tags.length ? tags : null;
    cur = cur.parent && (await ctx.images.has(cur.parent)) ? await ctx.images.get(cur.parent) : null;
  }
  return out;
}
