/** `POST /images/prune` (filters dangling/label/label!/until): one prune at a time, space reclaimed by layer. */
import { hexOf, type Digest } from '../../lib/digest.js';
import { ConflictError, InvalidParameterError } from '../../lib/errors.js';
import { getBoolOrDefault, hasFilter, matchKVList, validateFilters } from '../../lib/filters.js';
import type { DeleteItem } from '../../wire/index.js';
import type { Filters } from '../../lib/filters.js';
import type { ImageContext } from './context.js';
import { imageDelete } from './delete.js';
import { timeKey } from './format.js';
import { parseTimestamp } from '../../lib/filters.js';
import { refString } from './refs.js';
import type { Image } from './types.js';

export async function pruneImages(ctx: ImageContext, filters: Filters): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> {
  if (ctx.pruneRunning) throw new ConflictError('a prune operation is already running');
  ctx.pruneRunning = true;
  try {
    validateFilters(filters, ['dangling', 'label', 'label!', 'until']);
    const danglingOnly = getBoolOrDefault(filters, 'dangling', true);
    let until: number | null = null;
    if (filters.until && filters.until.length) {
      if (filters.until.length > 1) throw new InvalidParameterError('more than one until filter specified');
      until = parseTimestamp(filters.until[0]!);
    }
    const layerSizes = new Map<Digest, number>();
    for (const l of await ctx.layers.list()) layerSizes.set(l.chainId, l.size);

    const all = await ctx.images.list();
    const hasChildren = new Set<Digest>();
    for (const i of all) if (i.parent) hasChildren.add(i.parent);
    const candidates = danglingOnly ? all.filter((i) => !hasChildren.has(i.id)) : all;
    const top: Image[] = [];
    for (const img of candidates) {
      if (ctx.refs.refsOf(img.id).length === 0 && hasChildren.has(img.id)) continue;
      if (until !== null && (!img.config.created || timeKey(img.config.created) > until)) continue;
      const labels = img.config.config?.Labels ?? null;
      if (img.config.config) {
        if (!matchKVList(filters, 'label', labels)) continue;
        if (hasFilter(filters, 'label!') && matchKVList(filters, 'label!', labels)) continue;
      }
      top.push(img);
    }
    top.sort((a, b) => timeKey(b.config.created) - timeKey(a.config.created));

    let deleted: DeleteItem[] | null = null;
    for (const img of top) {
      if (!(await ctx.images.has(img.id))) continue;
      const items: DeleteItem[] = [];
      const refs = ctx.refsOf(img.id);
      if (refs.length > 0) {
        const shouldDelete = !danglingOnly || !refs.some((r) => r.tag && !r.digest);
        if (shouldDelete) {
          for (const r of refs) {
            try {
              items.push(...(await imageDelete(ctx, refString(r), false, true)));
            } catch {
              /* conflicts (and other failures) skip this reference, as dockerd does */
            }
          }
        }
      } else {
        try {
          items.push(...(await imageDelete(ctx, hexOf(img.id), false, true)));
        } catch {
          /* skipped */
        }
      }
      if (items.length) (deleted ??= []).push(...items);
    }
    let reclaimed = 0;
    for (const d of deleted ?? []) {
      if (d.Deleted && layerSizes.has(d.Deleted as Digest)) reclaimed += layerSizes.get(d.Deleted as Digest)!;
    }
    return { ImagesDeleted: deleted, SpaceReclaimed: reclaimed };
  } finally {
    ctx.pruneRunning = false;
  }
}
