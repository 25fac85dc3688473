/** wharf rmi / image rm / image remove, tag, image prune. */
import { encodeFilters } from '../../lib/filters.js';
import { humanSize } from '../../lib/units.js';
import { parseNormalizedNamed, isIdLike, normalizedName, withDefaultTag } from '../../lib/reference.js';
import { isDaemonError } from '../../client/client.js';
import { confirmOrCancel, StatusError, type CliContext, type Opts } from '../context.js';
import { parseFilterFlag } from './images.js';

export async function runRmi(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const errs: string[] = [];
  let fatal = false;
  for (const name of args) {
    try {
      const dels = await client.imageRemove(name, { force: o.force === true, noPrune: o.prune === false || o.noPrune === true });
      let text = '';
      for (const d of dels ?? []) text += d.Deleted ? `Deleted: ${d.Deleted}\n` : `Untagged: ${d.Untagged ?? ''}\n`;
      ctx.out(text);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      errs.push(isDaemonError(e) ? `Error response from daemon: ${m}` : m);
      if ((e as { statusCode?: number }).statusCode !== 404) fatal = true;
    }
  }
  if (errs.length === 0) return;
  // docker: with --force, images that do not exist are reported but do not fail the command
  if (!o.force || fatal) throw new StatusError(errs.join('\n'), 1);
  ctx.err(`${errs.join('\n')}\n`);
}

export async function runTag(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const [source, target] = [args[0]!, args[1]!];
  const bad = (s: string, e: unknown) => new StatusError(`Error parsing reference: ${JSON.stringify(s)} is not a valid repository/tag: ${(e as Error).message}`, 1);
  if (!isIdLike(source)) {
    try { parseNormalizedNamed(source); } catch (e) { throw bad(source, e); }
  }
  let ref;
  try { ref = parseNormalizedNamed(target); } catch (e) { throw bad(target, e); }
  if (ref.digest !== undefined) throw new StatusError('refusing to create a tag with a digest reference', 1);
  ref = withDefaultTag(ref);
  const client = await ctx.client();
  await client.imageTag(source, normalizedName(ref), ref.tag ?? '');
}

const DANGLING_WARNING = 'WARNING! This will remove all dangling images.\nAre you sure you want to continue?';
const ALL_WARNING = 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?';

export async function runPrune(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const all = o.all === true;
  const filters = parseFilterFlag((o.filter as string[] | undefined) ?? [], '--filter', ['image', 'prune']);
  const d = (filters.dangling ??= []);
  const v = String(!all);
  if (!d.includes(v)) d.push(v);
  // docker 28: errdefs.Cancelled → exit 0 without further output
  if (o.force !== true) await confirmOrCancel(ctx, all ? ALL_WARNING : DANGLING_WARNING, 'image prune has been cancelled');
  const client = await ctx.client();
  const report = await client.imagePrune(encodeFilters(filters));
  let out = '';
  const deleted = report.ImagesDeleted ?? [];
  if (deleted.length > 0) {
    out += 'Deleted Images:\n';
    for (const s of deleted) {
      if (s.Untagged) out += `untagged: ${s.Untagged}\n`;
      if (s.Deleted) out += `deleted: ${s.Deleted}\n`;
    }
    out += '\n';
  }
  out += `Total reclaimed space: ${humanSize(report.SpaceReclaimed ?? 0)}\n`;
  ctx.out(out);
}
