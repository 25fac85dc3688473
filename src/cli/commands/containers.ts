/**
 * Container management commands: ps, stop, kill, restart, pause, unpause, rm, container prune, top, port,
 * rename, diff, commit, container inspect — docker's output, one name per line for the bulk verbs, errors per
 * container on stderr and exit status 1 when any failed.
 */
import {
  containerChanges, containerCommit, containerInspect, containerKill, containerList, containerPause, containerPrune,
  containerRemove, containerRename, containerRestart, containerStop, containerTop, containerUnpause,
  type ContainerSummary,
} from '../../client/containers.js';
import { encodeFilters } from '../../lib/filters.js';
import { formatList, isTableFormat } from '../../lib/gotemplate.js';
import { goQuote } from '../../lib/go.js';
import { humanSize, humanSizeWithPrecision, ellipsis, formatDockerTime } from '../../lib/units.js';
import { TabWriter } from '../../lib/tabwriter.js';
import { createdSince, normalizeFormat, truncateId, TABLE_FORMAT_KEY } from '../formatters.js';
import { parseFilterFlag } from './images.js';
import { confirmOrCancel, StatusError, type CliContext, type Opts } from '../context.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function fromDaemon(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (e as { fromDaemon?: boolean }).fromDaemon ? `Error response from daemon: ${msg}` : msg;
}

/** Runs `fn` for each argument in turn: docker prints successes on stdout, failures on stderr, exit 1 if any. */
async function each(ctx: CliContext, args: string[], fn: (name: string) => Promise<string | null>): Promise<void> {
  const errs: string[] = [];
  for (const a of args) {
    try {
      const out = await fn(a);
      if (out !== null) ctx.out(`${out}\n`);
    } catch (e) {
      errs.push(fromDaemon(e));
    }
  }
  if (errs.length) throw new StatusError(errs.join('\n'), 1);
}

// ------------------------------------------------------------------------------------------ ps

/** docker's port column: "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp". */
export function displayPorts(ports: ContainerSummary['Ports']): string {
  const sorted = [...ports].sort((a, b) => (a.PrivatePort - b.PrivatePort) || a.Type.localeCompare(b.Type)
    || ((a.PublicPort ?? 0) - (b.PublicPort ?? 0)) || (a.IP ?? '').localeCompare(b.IP ?? ''));
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of sorted) {
    let s: string;
    if (p.PublicPort === undefined || p.PublicPort === 0) s = `${p.PrivatePort}/${p.Type}`;
    else {
      const ip = p.IP ?? '';
      const host = ip.includes(':') ? `[${ip}]` : ip;
      s = `${host}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`;
    }
    if (!seen.has(s)) { seen.add(s); out.push(s); }
  }
  return out.join(', ');
}

export const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
  State: 'STATE', Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS',
  LocalVolumes: 'LOCAL VOLUMES',
};

export function psRow(c: ContainerSummary, trunc: boolean, now: number): Record<string, unknown> {
  const names = (c.Names ?? []).filter((n) => n.split('/').length === 2).map((n) => n.slice(1));
  let image = c.Image || '<no image>';
  if (trunc && /^sha256:[a-f0-9]{64}$/.test(image)) image = truncateId(image);
  else if (trunc && image.includes('@')) image = image.slice(0, image.indexOf('@'));
  const command = trunc ? ellipsis(c.Command, 20) : c.Command;
  const labels = c.Labels ?? {};
  const size = c.SizeRw === undefined && c.SizeRootFs === undefined ? '0B'
    : `${humanSizeWithPrecision(c.SizeRw ?? 0, 3)} (virtual ${humanSizeWithPrecision(c.SizeRootFs ?? 0, 3)})`;
  const mounts = (c.Mounts ?? []).map((m) => {
    const n = m.Name ?? m.Source ?? '';
    return trunc ? ellipsis(n, 15) : n;
  });
  return {
    Command: goQuote(command),
    CreatedAt: formatDockerTime(c.Created * 1000),
    ID: trunc ? c.Id.slice(0, 12) : c.Id,
    Image: image,
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(','),
    Label: (k: string) => labels[k] ?? '',
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Name).length),
    Mounts: mounts.join(','),
    Names: trunc ? names[0] ?? '' : names.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).sort().join(','),
    Platform: null,
    Ports: displayPorts(c.Ports ?? []),
    RunningFor: createdSince(c.Created, now),
    Size: size,
    State: c.State,
    Status: c.Status,
  };
}

export function psFormat(source: string, quiet: boolean, size: boolean): string {
  if (source === TABLE_FORMAT_KEY || source === '') {
    if (quiet) return '{{.ID}}';
    return `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${size ? '\t{{.Size}}' : ''}`;
  }
  if (source === 'raw') return quiet ? 'container_id: {{.ID}}' : 'container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n';
  const f = normalizeFormat(source);
  if (quiet && !isTableFormat(f)) return '{{.ID}}';
  return f;
}

export async function runPs(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '-f, --filter', ['ps']);
  const client = await ctx.client();
  const format = str(o.format) ?? '';
  const quiet = o.quiet === true;
  const wantSize = o.size === true || (format !== '' && format.includes('.Size'));
  const last = str(o.last);
  let limit = last !== undefined ? Number(last) : -1;
  if (o.latest === true) limit = 1;
  if (!Number.isInteger(limit)) throw new StatusError(`invalid argument "${last}" for "-n, --last" flag: strconv.ParseInt: parsing ${JSON.stringify(last)}: invalid syntax`, 125);
  const all = o.all === true || limit > 0;
  const cs = await containerList(client, {
    all, ...(limit > 0 ? { limit } : {}), size: wantSize, filters: encodeFilters(filters),
  });
  const f = psFormat(format || TABLE_FORMAT_KEY, quiet && format === '', o.size === true);
  const rows = cs.map((c) => psRow(c, o.noTrunc !== true, Date.now()));
  ctx.out(formatList(f, rows, PS_HEADERS, { pad: (s: unknown, l: unknown, r: unknown) => `${' '.repeat(Number(l))}${String(s)}${' '.repeat(Number(r))}` }));
}

// ------------------------------------------------------------------------------------------ lifecycle verbs

function timeoutOpt(o: Opts): number | undefined {
  const t = str(o.time) ?? str(o.timeout);
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!Number.isInteger(n)) throw new StatusError(`invalid argument "${t}" for "-t, --time" flag: strconv.ParseInt: parsing ${JSON.stringify(t)}: invalid syntax`, 125);
  return n;
}

export async function runStop(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const t = timeoutOpt(o);
  await each(ctx, args, async (n) => { await containerStop(client, n, t); return n; });
}

export async function runRestart(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const t = timeoutOpt(o);
  await each(ctx, args, async (n) => { await containerRestart(client, n, t); return n; });
}

export async function runKill(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const sig = str(o.signal);
  await each(ctx, args, async (n) => { await containerKill(client, n, sig); return n; });
}

export async function runPause(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  await each(ctx, args, async (n) => { await containerPause(client, n); return n; });
}

export async function runUnpause(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  await each(ctx, args, async (n) => { await containerUnpause(client, n); return n; });
}

export async function runRm(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  await each(ctx, args, async (n) => {
    const name = n.replace(/^\/+/, '');
    if (name === '') throw new Error('Container name cannot be empty');
    await containerRemove(client, name, { force: o.force === true, v: o.volumes === true, link: o.link === true });
    return n;
  });
}

export async function runRename(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  const [oldName, newName] = [args[0]!.trim(), args[1]!.trim()];
  if (oldName === '' || newName === '') throw new StatusError('Error: Neither old nor new names may be empty', 1);
  await containerRename(client, oldName, newName);
}

// ------------------------------------------------------------------------------------------ prune

export async function runContainerPrune(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '--filter', ['container', 'prune']);
  if (o.force !== true) await confirmOrCancel(ctx, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?');
  const client = await ctx.client();
  const r = await containerPrune(client, encodeFilters(filters));
  let out = '';
  if (r.ContainersDeleted && r.ContainersDeleted.length) out += `Deleted Containers:\n${r.ContainersDeleted.map((x) => `${x}\n`).join('')}\n`;
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`;
  ctx.out(out);
}

// ------------------------------------------------------------------------------------------ top / port / diff

export async function runTop(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  const r = await containerTop(client, args[0]!, args.slice(1).join(' ') || undefined);
  const w = new TabWriter({ minWidth: 20, tabWidth: 1, padding: 3, padChar: ' ' });
  w.write(`${r.Titles.join('\t')}\n`);
  for (const p of r.Processes) w.write(`${p.join('\t')}\n`);
  ctx.out(w.flush());
}

export async function runPort(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  const c = await containerInspect(client, args[0]!);
  const ports = c.NetworkSettings?.Ports ?? {};
  const fmt = (b: { HostIp: string; HostPort: string }) => `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp || '0.0.0.0'}:${b.HostPort}`;
  if (args[1] !== undefined) {
    const [port, proto = 'tcp'] = args[1].split('/');
    const key = `${port}/${proto}`;
    const bs = ports[key];
    if (!bs || bs.length === 0) throw new StatusError(`Error: No public port '${args[1]}' published for ${args[0]}`, 1);
    ctx.out(bs.map((b) => `${fmt(b)}\n`).join(''));
    return;
  }
  const keys = Object.keys(ports).sort((a, b) => (parseInt(a, 10) - parseInt(b, 10)) || a.localeCompare(b));
  let out = '';
  for (const k of keys) for (const b of ports[k] ?? []) out += `${k} -> ${fmt(b)}\n`;
  ctx.out(out);
}

export async function runDiff(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  const changes = (await containerChanges(client, args[0]!)) ?? [];
  ctx.out(changes.map((c) => `${['C', 'A', 'D'][c.Kind] ?? '?'} ${c.Path}\n`).join(''));
}

// ------------------------------------------------------------------------------------------ commit

export async function runCommit(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const [container, ref] = args as [string, string | undefined];
  let repo = '';
  let tag = '';
  if (ref !== undefined && ref !== '') {
    const { parseNormalizedNamed, familiarName } = await import('../../lib/reference.js');
    let r;
    try { r = parseNormalizedNamed(ref); } catch (e) { throw new StatusError((e as Error).message, 1); }
    if (r.digest !== undefined) throw new StatusError('refusing to create a tag with a digest reference', 1);
    repo = familiarName(r);
    tag = r.tag ?? '';
  }
  const res = await containerCommit(client, {
    container, repo, tag, comment: str(o.message), author: str(o.author), changes: list(o.change),
    // as the docker CLI: pause=0 only when --pause=false (the daemon pauses by default)
    ...(o.pause === false ? { pause: '0' } : {}),
  });
  ctx.out(`${res.Id}\n`);
}

// ------------------------------------------------------------------------------------------ container inspect

export async function runContainerInspect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const { runInspect } = await import('./inspect.js');
  await runInspect(ctx, args, { ...o, type: 'container' });
}

