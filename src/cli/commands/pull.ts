/** wharf pull / image pull, and Wharf's image bootstrap. */
import { parseNormalizedNamed, withDefaultTag, referenceString, normalizedName } from '../../lib/reference.js';
import { credentialsFor } from '../../client/auth.js';
import { displayJSONMessages } from '../jsonmessage.js';
import { StatusError, type CliContext, type Opts } from '../context.js';

export async function runPull(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  let ref = parseNormalizedNamed(args[0]!);
  const all = o.allTags === true;
  const nameOnly = ref.tag === undefined && ref.digest === undefined;
  if (all && !nameOnly) throw new StatusError("tag can't be used with --all-tags/-a", 1);
  if (!all && nameOnly) {
    ref = withDefaultTag(ref);
    if (o.quiet !== true) ctx.out(`Using default tag: ${ref.tag}\n`);
  }
  const client = await ctx.client();
  const auth = credentialsFor(ref.domain, ctx.globals.config);
  const tag = all ? '' : (ref.digest ?? ref.tag ?? '');
  const platform = typeof o.platform === 'string' && o.platform !== '' ? o.platform.toLowerCase() : undefined;
  const stream = await client.imagePull(normalizedName(ref), tag, { auth, ...(platform ? { platform } : {}) });
  const quiet = o.quiet === true;
  await displayJSONMessages(stream, quiet ? () => {} : ctx.out, { isTerminal: ctx.isTerminal && !quiet, width: ctx.columns });
  ctx.out(`${referenceString(ref)}\n`);
}

export async function runBootstrap(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  const stream = await client.imageBootstrap(args[0]!);
  await displayJSONMessages(stream, ctx.out, { isTerminal: ctx.isTerminal, width: ctx.columns });
}
