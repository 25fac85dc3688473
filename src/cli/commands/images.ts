/** wharf images / image ls / image list */
import { encodeFilters, filtersFromArgs, type Filters } from '../../lib/filters.js';
import { renderImages } from '../formatters.js';
import { StatusError, type CliContext, type Opts } from '../context.js';
import { commandPath, useLine, COMMANDS } from '../spec.js';

/** -f values → Filters, with docker's flag error for a malformed one. */
export function parseFilterFlag(values: string[], flag: string, cmdPath: string[]): Filters {
  try {
    return filtersFromArgs(values);
  } catch (e) {
    const bad = values.find((v) => v !== '' && !v.includes('=')) ?? '';
    const spec = COMMANDS.find((c) => c.path.join(' ') === cmdPath.join(' '));
    const usage = spec ? useLine(spec) : commandPath(cmdPath);
    throw new StatusError(`invalid argument "${bad}" for "${flag}" flag: ${(e as Error).message}\n\nUsage:  ${usage}\n\nRun '${commandPath(cmdPath)} --help' for more information`, 125);
  }
}

export async function runImages(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag((o.filter as string[] | undefined) ?? [], '-f, --filter', ['images']);
  if (args[0] !== undefined && args[0] !== '') {
    const list = (filters.reference ??= []);
    if (!list.includes(args[0])) list.push(args[0]);
  }
  const client = await ctx.client();
  const images = await client.imageList({ all: o.all === true, filters: encodeFilters(filters) });
  let format = (o.format as string | undefined) ?? '';
  // docker: the config file's imagesFormat is the default unless -q
  if (format === '' && o.quiet !== true) {
    const { imagesFormatFromConfig } = await import('../../client/auth.js');
    format = imagesFormatFromConfig(ctx.globals.config);
  }
  ctx.out(renderImages(images, {
    format,
    quiet: o.quiet === true,
    digests: o.digests === true,
    noTrunc: o.noTrunc === true,
  }, Date.now()));
}
