/**
 * `DELETE /images/{name}` (dockerd's ImageDelete): untag a reference, or delete an image by ID with its
 * untagged parents, with dockerd's conflict rules (children, running/stopped containers, several repositories).
 */
import { hexOf, type Digest } from '../../lib/digest.js';
import { ConflictError } from '../../lib/errors.js';
import type { DeleteItem } from '../../wire/index.js';
import type { ImageContext } from './context.js';
import { familiarString, parseNamed, refString, withDefaultTag, type ParsedRef } from './refs.js';

function isImageIdPrefix(id: Digest, name: string): boolean {
  return id.startsWith(name) || hexOf(id).startsWith(name);
}

/** All references are from one repository and at most one of them is a tag. */
function isSingleReference(refs: ParsedRef[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  let single: ParsedRef | null = null;
  const canonical = new Set<string>();
  for (const r of refs) {
    if (r.digest) canonical.add(r.name);
    else if (!single) single = r;
    else return false;
  }
  single ??= refs[0]!;
  return canonical.size === 1 && canonical.has(single.name);
}

export async function imageDelete(ctx: ImageContext, name: string, force: boolean, prune: boolean): Promise<DeleteItem[]> {
  const records: DeleteItem[] = [];
  const img = await ctx.resolve(name);
  const id = img.id;
  let repoRefs = ctx.refsOf(id);
  let removedRepositoryRef = false;
  if (!isImageIdPrefix(id, name)) {
    if (!force && isSingleReference(repoRefs)) {
      const users = await ctx.usersOf(id);
      if (users.length) {
        throw new ConflictError(`conflict: unable to remove repository reference ${JSON.stringify(name)} (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image ${hexOf(id).slice(0, 12)}`);
      }
    }
    const parsed = withDefaultTag(parseNamed(name));
    await ctx.refs.delete(refString(parsed));
    records.push({ Untagged: familiarString(parsed) });
    repoRefs = ctx.refsOf(id);
    if (!parsed.digest) {
      const sameRepoTag = repoRefs.some((r) => !r.digest && r.name === parsed.name);
      if (!sameRepoTag) {
        const remaining: ParsedRef[] = [];
        for (const r of repoRefs) {
          if (r.digest && r.name === parsed.name) {
            await ctx.refs.delete(refString(r));
            records.push({ Untagged: familiarString(r) });
          } else remaining.push(r);
        }
        repoRefs = remaining;
      }
    }
    if (repoRefs.length > 0) return records;
    removedRepositoryRef = true;
  } else if (isSingleReference(repoRefs)) {
    const conflict = await checkConflict(ctx, id, { child: true, running: true, stopped: !force, reference: false });
    if (conflict) throw conflict.error;
    for (const r of repoRefs) {
      await ctx.refs.delete(refString(r));
      records.push({ Untagged: familiarString(r) });
    }
  }
  await deleteHelper(ctx, id, records, force, prune, removedRepositoryRef);
  return records;
}

async function checkConflict(
  ctx: ImageContext,
  id: Digest,
  mask: { child: boolean; running: boolean; reference: boolean; stopped: boolean },
): Promise<{ error: ConflictError; used: boolean } | null> {
  const short = hexOf(id).slice(0, 12);
  const err = (hard: boolean, msg: string) => new ConflictError(`conflict: unable to delete ${short} (${hard ? 'cannot be forced' : 'must be forced'}) - ${msg}`);
  if (mask.child && (await ctx.images.children(id)).length > 0) {
    return { error: err(true, 'image has dependent child images'), used: false };
  }
  const users = mask.running || mask.stopped ? await ctx.usersOf(id) : [];
  if (mask.running) {
    const r = users.find((u) => u.running);
    if (r) return { error: err(true, `image is being used by running container ${r.id.slice(0, 12)}`), used: true };
  }
  if (mask.reference && ctx.refs.refsOf(id).length > 0) {
    return { error: err(false, 'image is referenced in multiple repositories'), used: false };
  }
  if (mask.stopped) {
    const s = users.find((u) => !u.running);
    if (s) return { error: err(false, `image is being used by stopped container ${s.id.slice(0, 12)}`), used: true };
  }
  return null;
}

async function isDangling(ctx: ImageContext, id: Digest): Promise<boolean> {
  return !(ctx.refs.refsOf(id).length > 0 || (await ctx.images.children(id)).length > 0);
}

async function deleteHelper(ctx: ImageContext, id: Digest, records: DeleteItem[], force: boolean, prune: boolean, quiet: boolean): Promise<void> {
  const conflict = await checkConflict(ctx, id, { child: true, running: true, reference: !force, stopped: !force });
  if (conflict) {
    if (quiet && (!(await isDangling(ctx, id)) || conflict.used)) return;
    throw conflict.error;
  }
  const img = await ctx.images.get(id);
  const parent = img.parent;
  for (const r of ctx.refsOf(id)) {
    await ctx.refs.delete(refString(r));
    records.push({ Untagged: familiarString(r) });
  }
  const removedLayers = await ctx.images.remove(id);
  records.push({ Deleted: id });
  for (const l of removedLayers) records.push({ Deleted: l });
  if (!prune || !parent || !(await ctx.images.has(parent))) return;
  await deleteHelper(ctx, parent, records, false, true, true);
}
