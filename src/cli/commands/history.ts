/** wharf history / image history */
import { renderHistory } from '../formatters.js';
import type { CliContext, Opts } from '../context.js';

export async function runHistory(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const items = await client.imageHistory(args[0]!);
  ctx.out(renderHistory(items, {
    format: (o.format as string | undefined) ?? '',
    quiet: o.quiet === true,
    human: o.human !== false,
    noTrunc: o.noTrunc === true,
  }, Date.now()));
}
