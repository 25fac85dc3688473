/** network create | ls | inspect | rm | prune | connect | disconnect — docker's output. */
import { isDaemonError } from '../../client/client.js';
import { encodeFilters } from '../../lib/filters.js';
import { formatList } from '../../lib/gotemplate.js';
import { normalizeFormat, TABLE_FORMAT_KEY } from '../formatters.js';
import { parseFilterFlag } from './images.js';
import { CancelledError, StatusError, type CliContext, type Opts } from '../context.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

interface Network {
  Name: string; Id: string; Created: string; Scope: string; Driver: string; EnableIPv6: boolean; Internal: boolean;
  Labels: Record<string, string> | null;
}

/** KEY=VALUE flags (docker's MapOpts); `flag` names the flag in the error. */
function kv(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of items) {
    const k = i.indexOf('=');
    if (k < 0 && flag !== '--label') throw new StatusError(`invalid argument "${i}" for "${flag}" flag: bad format for key-value pair`, 125);
    out[k < 0 ? i : i.slice(0, k)] = k < 0 ? '' : i.slice(k + 1);
  }
  return out;
}

export async function runNetworkCreate(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const subnets = list(o.subnet).flatMap((s) => s.split(','));
  const ranges = list(o.ipRange).flatMap((s) => s.split(','));
  const gateways = list(o.gateway).flatMap((s) => s.split(','));
  if (ranges.length > subnets.length || gateways.length > subnets.length) {
    throw new StatusError(`${ranges.length > subnets.length ? 'no matching subnet for range' : 'every ip-range or gateway must have a corresponding subnet'}`, 1);
  }
  const config = subnets.map((s, i) => ({ Subnet: s, ...(ranges[i] ? { IPRange: ranges[i] } : {}), ...(gateways[i] ? { Gateway: gateways[i] } : {}) }));
  const client = await ctx.client();
  const r = await client.json<{ Id: string }>('POST', '/networks/create', {
    body: {
      Name: args[0], CheckDuplicate: true, Driver: str(o.driver) ?? 'bridge', Scope: '', EnableIPv6: o.ipv6 === true,
      IPAM: { Driver: str(o.ipamDriver) ?? 'default', Config: config, Options: kv(list(o.ipamOpt), '--ipam-opt') },
      Internal: o.internal === true, Attachable: o.attachable === true, Ingress: false, ConfigOnly: false,
      Options: kv(list(o.opt), '-o, --opt'), Labels: kv(list(o.label), '--label'),
    },
  });
  ctx.out(`${r.Id}\n`);
}

export async function runNetworkLs(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '-f, --filter', ['network', 'ls']);
  const client = await ctx.client();
  const nets = await client.json<Network[]>('GET', '/networks', { query: { filters: encodeFilters(filters) } });
  nets.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  const fmt = str(o.format) ?? '';
  let format: string;
  if (o.quiet === true) format = '{{.ID}}';
  else if (fmt === '' || fmt === TABLE_FORMAT_KEY) format = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
  else format = normalizeFormat(fmt);
  const trunc = o.noTrunc !== true;
  const rows = nets.map((n) => ({
    ID: trunc ? n.Id.slice(0, 12) : n.Id, Name: n.Name, Driver: n.Driver, Scope: n.Scope,
    IPv6: String(n.EnableIPv6), Internal: String(n.Internal), CreatedAt: n.Created,
    Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
  }));
  ctx.out(formatList(format, rows, { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED AT' }));
}

export async function runNetworkInspect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const { runInspect } = await import('./inspect.js');
  await runInspect(ctx, args, { ...o, type: 'network' });
}

export async function runNetworkRm(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const errs: string[] = [];
  for (const name of args) {
    try {
      await client.empty('DELETE', `/networks/${encodeURIComponent(name)}`);
      ctx.out(`${name}\n`);
    } catch (e) {
      if (o.force === true && isDaemonError(e) && e.statusCode === 404) continue;
      errs.push(`Error response from daemon: ${(e as Error).message}`);
    }
  }
  if (errs.length) throw new StatusError(errs.join('\n'), 1);
}

export async function runNetworkPrune(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '--filter', ['network', 'prune']);
  if (o.force !== true) {
    ctx.out('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
    const a = (await ctx.readLine()).trim().toLowerCase();
    if (a !== 'y' && a !== 'yes') throw new CancelledError();
  }
  const client = await ctx.client();
  const r = await client.json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', { query: { filters: encodeFilters(filters) } });
  if (r.NetworksDeleted?.length) ctx.out(`Deleted Networks:\n${r.NetworksDeleted.map((n) => `${n}\n`).join('')}\n`);
}

export async function runNetworkConnect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const aliases = list(o.alias).flatMap((s) => s.split(','));
  const ip = str(o.ip);
  await client.empty('POST', `/networks/${encodeURIComponent(args[0]!)}/connect`, {
    body: {
      Container: args[1],
      EndpointConfig: { ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}), Links: list(o.link).length ? list(o.link) : null, Aliases: aliases.length ? aliases : null },
    },
  });
}

export async function runNetworkDisconnect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  await client.empty('POST', `/networks/${encodeURIComponent(args[0]!)}/disconnect`, { body: { Container: args[1], Force: o.force === true } });
}
