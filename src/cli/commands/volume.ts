/** volume create | ls | inspect | rm | prune — docker's output. */
import { encodeFilters } from '../../lib/filters.js';
import { formatList } from '../../lib/gotemplate.js';
import { humanSize } from '../../lib/units.js';
import { normalizeFormat, TABLE_FORMAT_KEY } from '../formatters.js';
import { parseFilterFlag } from './images.js';
import { confirmOrCancel, StatusError, type CliContext, type Opts } from '../context.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

interface Volume { Name: string; Driver: string; Labels: Record<string, string> | null; Mountpoint: string; Scope: string; CreatedAt: string; Options: Record<string, string> | null }

function kv(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of items) {
    const k = i.indexOf('=');
    if (flag === 'opt' && k < 0) throw new StatusError(`invalid argument "${i}" for "-o, --opt" flag: invalid key value pair format in driver options`, 125);
    out[k < 0 ? i : i.slice(0, k)] = k < 0 ? '' : i.slice(k + 1);
  }
  return out;
}

export async function runVolumeCreate(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const name = args[0] ?? str(o.name) ?? '';
  const client = await ctx.client();
  const v = await client.json<Volume>('POST', '/volumes/create', {
    body: { Name: name, Driver: str(o.driver) ?? 'local', DriverOpts: kv(list(o.opt), 'opt'), Labels: kv(list(o.label), 'label') },
  });
  ctx.out(`${v.Name}\n`);
}

export async function runVolumeLs(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '-f, --filter', ['volume', 'ls']);
  const client = await ctx.client();
  const r = await client.json<{ Volumes: Volume[] | null }>('GET', '/volumes', { query: { filters: encodeFilters(filters) } });
  const vols = [...(r.Volumes ?? [])].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  const fmt = str(o.format) ?? '';
  let format: string;
  if (o.quiet === true) format = '{{.Name}}';
  else if (fmt === '' || fmt === TABLE_FORMAT_KEY) format = 'table {{.Driver}}\t{{.Name}}';
  else format = normalizeFormat(fmt);
  const rows = vols.map((v) => ({
    Availability: 'N/A', Driver: v.Driver, Group: 'N/A',
    Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','),
    Links: 'N/A', Mountpoint: v.Mountpoint, Name: v.Name, Scope: v.Scope, Size: 'N/A', Status: 'N/A',
  }));
  ctx.out(formatList(format, rows, { Driver: 'DRIVER', Name: 'VOLUME NAME', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Labels: 'LABELS', Size: 'SIZE', Links: 'LINKS' }));
}

export async function runVolumeInspect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const { runInspect } = await import('./inspect.js');
  await runInspect(ctx, args, { ...o, type: 'volume' });
}

export async function runVolumeRm(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const errs: string[] = [];
  for (const name of args) {
    try {
      await client.empty('DELETE', `/volumes/${encodeURIComponent(name)}`, { query: { force: o.force === true } });
      ctx.out(`${name}\n`);
    } catch (e) {
      errs.push(`Error response from daemon: ${(e as Error).message}`);
    }
  }
  if (errs.length) throw new StatusError(errs.join('\n'), 1);
}

export async function runVolumePrune(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '--filter', ['volume', 'prune']);
  if (o.force !== true) await confirmOrCancel(ctx, 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?');
  const client = await ctx.client();
  const r = await client.json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/volumes/prune', { query: { filters: encodeFilters(filters) } });
  let out = '';
  if (r.VolumesDeleted?.length) out += `Deleted Volumes:\n${r.VolumesDeleted.map((n) => `${n}\n`).join('')}\n`;
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`;
  ctx.out(out);
}
