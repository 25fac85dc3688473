/** wharf version, info / system info, system df. */
import { compileTemplate } from '../../lib/gotemplate.js';
import { TabWriter } from '../../lib/tabwriter.js';
import { bytesSize } from '../../lib/units.js';
import { CLIENT_API_VERSION } from '../../client/client.js';
import type { ServerVersion } from '../../client/types.js';
import { renderDf } from '../formatters.js';
import { StatusError, type CliContext, type Opts } from '../context.js';
import { goArch } from '../../lib/go.js';
import { builtAt, gitCommit } from '../build-info.js';

export const CLIENT_VERSION = '0.1.0';

/** Go's time.ANSIC ("Mon Jan _2 15:04:05 2006") of an RFC 3339 time, in its own offset. */
export function ansic(rfc3339: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339);
  if (!m) return rfc3339;
  const [, y, mo, d, h, mi, s] = m;
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const wd = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDay();
  return `${days[wd]} ${months[Number(mo) - 1]} ${String(Number(d)).padStart(2, ' ')} ${h}:${mi}:${s} ${y}`;
}

function buildInfo(): { commit: string; built: string } {
  const at = builtAt();
  return { commit: gitCommit(), built: at === undefined ? '' : ansic(at) };
}

const VERSION_TEMPLATE = `{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:\t{{$value}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`;

export async function runVersion(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const bi = buildInfo();
  const client: Record<string, unknown> = {
    Platform: { Name: '' },
    Version: CLIENT_VERSION,
    APIVersion: CLIENT_API_VERSION,
    DefaultAPIVersion: CLIENT_API_VERSION,
    GoVersion: `node${process.versions.node}`,
    GitCommit: bi.commit,
    BuildTime: bi.built,
    Os: process.platform,
    Arch: goArch(),
    Context: 'default',
  };
  let server: ServerVersion | undefined;
  let serverErr: unknown;
  try {
    const c = await ctx.client();
    client.APIVersion = await c.apiVersion();
    server = await c.version();
    for (const comp of server.Components ?? []) {
      if (comp.Name === 'Engine' && comp.Details?.BuildTime) comp.Details.BuildTime = ansic(comp.Details.BuildTime);
    }
    if (server.BuildTime) server.BuildTime = ansic(server.BuildTime);
  } catch (e) {
    serverErr = e;
  }
  const data: Record<string, unknown> = {
    Client: client,
    ServerOK: server !== undefined,
    Server: server === undefined ? null : { ...server, APIVersion: server.ApiVersion, Platform: server.Platform ?? { Name: '' }, Components: server.Components ?? [] },
  };
  const format = (o.format as string | undefined) ?? '';
  if (format !== '') {
    let t;
    try { t = compileTemplate(format === 'json' ? '{{json .}}' : format, undefined, { raw: true }); } catch (e) {
      throw new StatusError(`template parsing error: ${(e as Error).message}`, 64);
    }
    ctx.out(t(data) + '\n');
  } else {
    const t = compileTemplate(VERSION_TEMPLATE, undefined, { raw: true });
    const tw = new TabWriter({ minWidth: 20, tabWidth: 1, padding: 1 });
    tw.write(t(data));
    tw.write('\n');
    ctx.out(tw.flush());
  }
  if (serverErr !== undefined) throw serverErr;
}

// ---------------------------------------------------------------------------------------------
// info
// ---------------------------------------------------------------------------------------------

type Any = Record<string, any>;

function decodeSecurityOptions(opts: string[]): { name: string; options: [string, string][] }[] {
  return opts.map((opt) => {
    if (!opt.includes('=')) return { name: opt, options: [] };
    const so = { name: '', options: [] as [string, string][] };
    for (const kv of opt.split(',')) {
      const i = kv.indexOf('=');
      const k = kv.slice(0, i);
      const v = kv.slice(i + 1);
      if (k === 'name') so.name = v; else so.options.push([k, v]);
    }
    return so;
  });
}

/** docker's prettyPrintServerInfo; Wharf wording for the root directory. */
export function renderServerInfo(info: Any, clientDebug: boolean): { out: string; warnings: string[] } {
  let o = '';
  const ln = (...a: unknown[]) => { o += a.map((x) => String(x)).join(' ') + '\n'; };
  const lnNonEmpty = (label: string, v: unknown) => { if (v !== undefined && v !== null && v !== '') ln(label, v); };
  ln(' Containers:', info.Containers ?? 0);
  ln('  Running:', info.ContainersRunning ?? 0);
  ln('  Paused:', info.ContainersPaused ?? 0);
  ln('  Stopped:', info.ContainersStopped ?? 0);
  ln(' Images:', info.Images ?? 0);
  lnNonEmpty(' Server Version:', info.ServerVersion);
  if (info.Driver) {
    ln(' Storage Driver:', info.Driver);
    for (const pair of (info.DriverStatus ?? []) as string[][]) o += `  ${pair[0]}: ${pair[1]}\n`;
  }
  lnNonEmpty(' Logging Driver:', info.LoggingDriver);
  lnNonEmpty(' Cgroup Driver:', info.CgroupDriver);
  lnNonEmpty(' Cgroup Version:', info.CgroupVersion);
  const pl = (info.Plugins ?? {}) as Any;
  ln(' Plugins:');
  ln('  Volume:', ((pl.Volume ?? []) as string[]).join(' '));
  ln('  Network:', ((pl.Network ?? []) as string[]).join(' '));
  if ((pl.Authorization ?? []).length) ln('  Authorization:', (pl.Authorization as string[]).join(' '));
  ln('  Log:', ((pl.Log ?? []) as string[]).join(' '));
  if ((info.CDISpecDirs ?? []).length) { ln(' CDI spec directories:'); for (const d of info.CDISpecDirs) ln(`  ${d}`); }
  ln(' Swarm:', info.Swarm?.LocalNodeState ?? 'inactive');
  const runtimes = Object.keys(info.Runtimes ?? {});
  if (runtimes.length > 0) {
    ln(' Runtimes:', runtimes.join(' '));
    ln(' Default Runtime:', info.DefaultRuntime ?? '');
  }
  if (info.OSType === 'linux') {
    ln(' Init Binary:', info.InitBinary ?? '');
    for (const [name, c] of [['containerd', info.ContainerdCommit], ['runc', info.RuncCommit], ['init', info.InitCommit]] as [string, Any | undefined][]) {
      o += ` ${name} version: ${c?.ID ?? ''}`;
      if (c && c.Expected !== undefined && c.Expected !== '' && c.ID !== c.Expected) o += ` (expected: ${c.Expected})`;
      o += '\n';
    }
    const so = (info.SecurityOptions ?? []) as string[];
    if (so.length > 0) {
      ln(' Security Options:');
      for (const s of decodeSecurityOptions(so)) {
        ln(`  ${s.name}`);
        for (const [k, v] of s.options) if (k === 'profile') ln('   Profile:', v);
      }
    }
  }
  lnNonEmpty(' Kernel Version:', info.KernelVersion);
  lnNonEmpty(' Operating System:', info.OperatingSystem);
  lnNonEmpty(' OSType:', info.OSType);
  lnNonEmpty(' Architecture:', info.Architecture);
  ln(' CPUs:', info.NCPU ?? 0);
  ln(' Total Memory:', bytesSize(info.MemTotal ?? 0));
  lnNonEmpty(' Name:', info.Name);
  lnNonEmpty(' ID:', info.ID);
  ln(' Wharf Root Dir:', info.DockerRootDir ?? '');
  ln(' Debug Mode:', info.Debug === true);
  if (info.Debug === true || clientDebug) {
    ln('  File Descriptors:', info.NFd);
    ln('  Goroutines:', info.NGoroutines);
    ln('  System Time:', info.SystemTime);
    ln('  EventsListeners:', info.NEventsListener);
  }
  lnNonEmpty(' HTTP Proxy:', info.HttpProxy);
  lnNonEmpty(' HTTPS Proxy:', info.HttpsProxy);
  lnNonEmpty(' No Proxy:', info.NoProxy);
  if ((info.Labels ?? []).length) { ln(' Labels:'); for (const l of info.Labels) ln(`  ${l}`); }
  ln(' Experimental:', info.ExperimentalBuild === true);
  const rc = info.RegistryConfig as Any | undefined;
  if (rc && (((rc.InsecureRegistryCIDRs ?? []) as unknown[]).length > 0 || Object.keys(rc.IndexConfigs ?? {}).length > 0)) {
    ln(' Insecure Registries:');
    for (const reg of Object.values(rc.IndexConfigs ?? {}) as Any[]) if (!reg.Secure) ln(`  ${reg.Name}`);
    for (const cidr of (rc.InsecureRegistryCIDRs ?? []) as unknown[]) {
      o += `  ${typeof cidr === 'string' ? cidr : `${(cidr as Any).IP}/${(cidr as Any).Mask}`}\n`;
    }
  }
  if (rc && (rc.Mirrors ?? []).length > 0) { ln(' Registry Mirrors:'); for (const m of rc.Mirrors) ln(`  ${m}`); }
  ln(' Live Restore Enabled:', info.LiveRestoreEnabled === true);
  if (info.ProductLicense) ln(' Product License:', info.ProductLicense);
  if ((info.DefaultAddressPools ?? []).length) {
    ln(' Default Address Pools:');
    for (const p of info.DefaultAddressPools) o += `   Base: ${p.Base}, Size: ${p.Size}\n`;
  }
  o += '\n';
  return { out: o, warnings: (info.Warnings ?? []) as string[] };
}

export async function runInfo(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const format = (o.format as string | undefined) ?? '';
  let info: Any | undefined;
  let serverErr: unknown;
  try {
    info = await (await ctx.client()).info();
  } catch (e) {
    serverErr = e;
  }
  if (format !== '') {
    if (serverErr !== undefined) throw serverErr;
    let t;
    try { t = compileTemplate(format === 'json' ? '{{json .}}' : format, undefined, { raw: true }); } catch (e) {
      throw new StatusError(`template parsing error: ${(e as Error).message}`, 64);
    }
    ctx.out(t({ ...info, ClientInfo: { Debug: ctx.globals.debug, Context: 'default', Version: CLIENT_VERSION } }) + '\n');
    return;
  }
  let out = `Client:\n Version:    ${CLIENT_VERSION}\n Context:    default\n Debug Mode: ${ctx.globals.debug}\n\nServer:\n`;
  if (info === undefined) {
    // docker prints the client section and "Server:", then fails with the connection/daemon error
    ctx.out(out);
    throw serverErr;
  }
  const r = renderServerInfo(info, ctx.globals.debug);
  out += r.out;
  ctx.out(out);
  for (const w of r.warnings) ctx.err(`${w}\n`);
}

export async function runDf(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const du = await (await ctx.client()).diskUsage();
  ctx.out(renderDf(du, { format: (o.format as string | undefined) ?? '', verbose: o.verbose === true }, Date.now()));
}
