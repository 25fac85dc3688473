/**
 * run, create, start, attach, exec, logs, wait — the container commands that stream, as docker's CLI does them:
 * create (pulling a missing image first), attach through a hijacked connection before start, wait for the
 * exit (or removal with --rm), and exit with the container's status. Non-tty streams are demultiplexed into
 * stdout and stderr; with -t the terminal goes raw, its size follows SIGWINCH, and the detach keys let go of
 * the container without stopping it.
 */
import type { Socket } from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import type { EngineClient } from '../../client/client.js';
import { credentialsFor } from '../../client/auth.js';
import {
  StdDemux, containerAttach, containerCreate, containerInspect, containerLogs, containerResize, containerStart,
  containerWait, execCreate, execInspect, execResize, execStartAttached, execStartDetached, parseDetachKeys,
  type WaitResponse,
} from '../../client/containers.js';
import { parseBytes } from '../../lib/units.js';
import { parseTimestamp } from '../../lib/filters.js';
import { normalizedName, parseNormalizedNamed, withDefaultTag, familiarString } from '../../lib/reference.js';
import { DEFAULT_DETACH_KEYS } from '../../lib/detachkeys.js';
import { displayJSONMessages } from '../jsonmessage.js';
import { StatusError, type CliContext, type Opts } from '../context.js';

// ------------------------------------------------------------------------------------------ options

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A size flag (docker's RAMInBytes: "512m", "1g", plain bytes) with the docker CLI's flag error. */
export function bytesFlag(v: string, flag: string): number {
  try { return parseBytes(v); } catch {
    throw new StatusError(`invalid argument "${v}" for "${flag}" flag: invalid size: '${v}'`, 125);
  }
}

function intFlag(v: string, flag: string): number {
  if (!/^[+-]?\d+$/.test(v.trim())) throw new StatusError(`invalid argument "${v}" for "${flag}" flag: strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`, 125);
  return Number(v);
}

const DEVICE_MODE = /^(?!.*(.).*\1)[rwm]{1,3}$/;

/** `--device /dev/x[:/dev/y][:rwm]` as docker's DeviceMapping. */
export function parseDevice(spec: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const a = spec.split(':');
  let src = a[0]!, dst = '', perms = 'rwm';
  if (a.length === 3) { dst = a[1]!; perms = a[2]!; if (!DEVICE_MODE.test(perms)) throw new StatusError(`invalid argument "${spec}" for "--device" flag: bad mode specified: ${perms}`, 125); }
  else if (a.length === 2) { if (DEVICE_MODE.test(a[1]!)) perms = a[1]!; else dst = a[1]!; }
  else if (a.length !== 1) throw new StatusError(`invalid argument "${spec}" for "--device" flag: invalid device specification: ${spec}`, 125);
  if (src === '') throw new StatusError(`invalid argument "${spec}" for "--device" flag: invalid device specification: ${spec}`, 125);
  return { PathOnHost: src, PathInContainer: dst || src, CgroupPermissions: perms };
}

const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** `--ulimit name=soft[:hard]` (go-units ParseUlimit; "unlimited" or -1 for no limit). */
export function parseUlimit(spec: string): { Name: string; Soft: number; Hard: number } {
  const fail = (m: string) => new StatusError(`invalid argument "${spec}" for "--ulimit" flag: ${m}`, 125);
  const eq = spec.indexOf('=');
  if (eq < 0) throw fail(`invalid ulimit argument: ${spec}`);
  const name = spec.slice(0, eq);
  if (!ULIMITS.includes(name)) throw fail(`invalid ulimit type: ${name}`);
  const parts = spec.slice(eq + 1).split(':');
  if (parts.length > 2) throw fail(`too many limit value arguments - ${spec.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const num = (x: string) => {
    if (x === 'unlimited' || x === '-1') return -1;
    if (!/^\d+$/.test(x)) throw fail(`strconv.ParseInt: parsing ${JSON.stringify(x)}: invalid syntax`);
    return Number(x);
  };
  const soft = num(parts[0]!);
  const hard = parts.length > 1 ? num(parts[1]!) : soft;
  if (soft !== -1 && hard !== -1 && soft > hard) throw fail(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Soft: soft, Hard: hard };
}

const SYSCTL_IPC = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** `--sysctl k=v` as docker's CLI checks them (namespaced sysctls only). */
export function parseSysctls(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i < 1) throw new StatusError(`invalid argument "${kv}" for "--sysctl" flag: sysctl '${kv}' is not allowed`, 125);
    const k = kv.slice(0, i);
    if (!(SYSCTL_IPC.includes(k) || k.startsWith('net.') || k.startsWith('fs.mqueue.') || k === 'kernel.domainname')) {
      throw new StatusError(`invalid argument "${kv}" for "--sysctl" flag: sysctl '${kv}' is not allowed`, 125);
    }
    out[k] = kv.slice(i + 1);
  }
  return out;
}

/**
 * `--security-opt`, as docker's CLI sends them: `seccomp=FILE` becomes `seccomp=<the file's JSON>`,
 * `systempaths=unconfined` empties the masked and read-only paths; the rest goes to the daemon as given.
 */
export function parseSecurityOpts(list: string[]): { opts: string[]; unmaskPaths: boolean } {
  const opts: string[] = [];
  let unmaskPaths = false;
  for (const o of list) {
    let k: string, v: string;
    const eq = o.indexOf('=');
    if (eq >= 0) { k = o.slice(0, eq); v = o.slice(eq + 1); } else if (o.includes(':')) { k = o.slice(0, o.indexOf(':')); v = o.slice(o.indexOf(':') + 1); } else {
      if (o === 'no-new-privileges') { opts.push(o); continue; }
      throw new StatusError(`wharf: Invalid --security-opt: ${JSON.stringify(o)}`, 125);
    }
    if (k === 'seccomp' && v !== 'unconfined' && v !== 'builtin') {
      let text: string;
      try { text = readFileSync(v, 'utf8'); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new StatusError(`wharf: opening seccomp profile (${v}) failed: open ${v}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, 125);
      }
      let json: unknown;
      try { json = JSON.parse(text); } catch (e) {
        throw new StatusError(`wharf: compacting json for seccomp profile (${v}) failed: ${(e as Error).message}`, 125);
      }
      opts.push(`seccomp=${JSON.stringify(json)}`);
      continue;
    }
    if (k === 'systempaths' && v === 'unconfined') { unmaskPaths = true; continue; }
    opts.push(o);
  }
  return { opts, unmaskPaths };
}

/** `-e`/`--env-file`: KEY=VALUE as is; a bare KEY takes the value from this environment (dropped when unset). */
export function parseEnv(env: string[], files: string[]): string[] {
  const out: string[] = [];
  const add = (line: string) => {
    if (line.includes('=')) { out.push(line); return; }
    const v = process.env[line];
    if (v !== undefined) out.push(`${line}=${v}`);
  };
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) {
      throw new StatusError(`open ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, 125);
    }
    for (const raw of text.split('\n')) {
      const line = raw.replace(/^\s+/, '').replace(/\r$/, '');
      if (line === '' || line.startsWith('#')) continue;
      if (/^=/.test(line)) throw new StatusError(`invalid environment variable: ${line}`, 125);
      add(line);
    }
  }
  for (const e of env) add(e);
  return out;
}

interface PortBinding { HostIp: string; HostPort: string }

/** `-p [ip:][hostPort:]containerPort[/proto]` (ranges of equal length too). */
export function parsePublish(specs: string[]): { exposed: Record<string, object>; bindings: Record<string, PortBinding[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const spec of specs) {
    let rest = spec;
    let proto = 'tcp';
    const slash = rest.lastIndexOf('/');
    if (slash >= 0) { proto = rest.slice(slash + 1).toLowerCase(); rest = rest.slice(0, slash); }
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new StatusError(`invalid proto: ${proto}`, 125);
    let ip = '';
    let host = '';
    let ctr = rest;
    const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
    if (v6) { ip = v6[1]!; rest = v6[2]!; }
    const parts = rest.split(':');
    if (v6) { if (parts.length === 2) { host = parts[0]!; ctr = parts[1]!; } else ctr = parts[0]!; } else if (parts.length === 3) { [ip, host, ctr] = parts as [string, string, string]; } else if (parts.length === 2) { [host, ctr] = parts as [string, string]; } else if (parts.length === 1) { ctr = parts[0]!; } else throw new StatusError(`invalid port format for --publish: ${spec}`, 125);
    const range = (s: string): [number, number] => {
      const m = /^(\d+)(?:-(\d+))?$/.exec(s);
      if (!m) throw new StatusError(`invalid containerPort: ${s}`, 125);
      const a = Number(m[1]), b = Number(m[2] ?? m[1]);
      if (a < 1 || b > 65535 || b < a) throw new StatusError(`invalid containerPort: ${s}`, 125);
      return [a, b];
    };
    const [c0, c1] = range(ctr);
    let h: [number, number] | null = null;
    if (host !== '') {
      const m = /^(\d+)(?:-(\d+))?$/.exec(host);
      if (!m) throw new StatusError(`invalid hostPort: ${host}`, 125);
      h = [Number(m[1]), Number(m[2] ?? m[1])];
    }
    for (let port = c0; port <= c1; port++) {
      const key = `${port}/${proto}`;
      exposed[key] = {};
      const hp = h ? (h[1] - h[0] === c1 - c0 ? String(h[0] + (port - c0)) : `${h[0]}-${h[1]}`) : '';
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hp });
    }
  }
  return { exposed, bindings };
}

/** `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]` as docker's Mount. */
export function parseMount(spec: string): Record<string, unknown> {
  const fail = (why: string) => new StatusError(`invalid argument "${spec}" for "--mount" flag: ${why}`, 125);
  const m: Record<string, unknown> = { Type: 'volume' };
  const tmpfs: Record<string, number> = {};
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    const key = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? '' : field.slice(i + 1);
    switch (key) {
      case 'type': m.Type = val; break;
      case 'source': case 'src': m.Source = val; break;
      case 'target': case 'destination': case 'dst': m.Target = val; break;
      case 'readonly': case 'ro':
        if (i >= 0 && !['true', 'false', '1', '0'].includes(val)) throw fail(`invalid value for ${key}: ${val}`);
        m.ReadOnly = i < 0 || val === 'true' || val === '1';
        break;
      case 'tmpfs-size': try { tmpfs.SizeBytes = parseBytes(val); } catch { throw fail(`invalid value for ${key}: ${val}`); } break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val)) throw fail(`invalid value for ${key}: ${val}`);
        tmpfs.Mode = parseInt(val, 8);
        break;
      case 'bind-propagation': m.BindOptions = { Propagation: val }; break;
      default: throw fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!['bind', 'volume', 'tmpfs'].includes(String(m.Type))) throw fail(`invalid value for type: ${String(m.Type)}`);
  if (!m.Target) throw fail('target is required');
  if (Object.keys(tmpfs).length) m.TmpfsOptions = tmpfs;
  return m;
}

/** `--log-opt k=v` as the docker CLI's driver options. */
function logOpts(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i < 1) throw new StatusError(`invalid argument "${kv}" for "--log-opt" flag: invalid key value pair format in driver options`, 125);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function parseRestart(v: string | undefined): { Name: string; MaximumRetryCount: number } {
  if (v === undefined || v === '' || v === 'no') return { Name: 'no', MaximumRetryCount: 0 };
  const [name, count] = v.split(':');
  if (!['always', 'unless-stopped', 'on-failure', 'no'].includes(name!)) throw new StatusError(`invalid restart policy format: ${v}`, 125);
  if (count !== undefined && name !== 'on-failure') throw new StatusError(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`, 125);
  return { Name: name!, MaximumRetryCount: count ? Number(count) : 0 };
}

/** The create body the docker CLI sends for these flags. */
export function containerConfig(o: Opts, image: string, cmd: string[], attachDefault: boolean): Record<string, unknown> {
  const pub = parsePublish(list(o.publish));
  const exposed: Record<string, object> = { ...pub.exposed };
  for (const e of list(o.expose)) {
    const [p, proto = 'tcp'] = e.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(p!);
    if (!m) throw new StatusError(`invalid range format for --expose: ${e}`, 125);
    for (let x = Number(m[1]); x <= Number(m[2] ?? m[1]); x++) exposed[`${x}/${proto}`] = {};
  }
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of list(o.volume)) {
    if (v.includes(':')) binds.push(v); else volumes[v] = {};
  }
  const interactive = o.interactive === true;
  const attach = list(o.attach).map((a) => a.toLowerCase());
  for (const a of attach) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw new StatusError(`invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`, 125);
  const detached = o.detach === true;
  const attachStdin = attach.length > 0 ? attach.includes('stdin') : interactive && !detached && attachDefault;
  const attachStdout = attach.length > 0 ? attach.includes('stdout') : !detached && attachDefault;
  const attachStderr = attach.length > 0 ? attach.includes('stderr') : !detached && attachDefault;
  let entrypoint: string[] | null = null;
  const ep = str(o.entrypoint);
  if (ep !== undefined) entrypoint = ep === '' ? [''] : [ep];
  const labels: Record<string, string> = {};
  for (const l of list(o.label)) { const i = l.indexOf('='); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1); }
  const cpus = str(o.cpus);
  let nano = 0;
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!Number.isFinite(n) || n < 0) throw new StatusError(`invalid argument "${cpus}" for "--cpus" flag: failed to parse ${cpus} as a rational number`, 125);
    nano = Math.round(n * 1e9);
  }
  const mem = str(o.memory);
  const swap = str(o.memorySwap);
  const userns = str(o.userns);
  if (userns !== undefined && userns !== '' && userns !== 'host') throw new StatusError('wharf: --userns: invalid USER mode', 125);
  const sec = parseSecurityOpts(list(o.securityOpt));
  if (o.rm === true && parseRestart(str(o.restart)).Name !== 'no') throw new StatusError('wharf: conflicting options: cannot specify both --restart and --rm', 125);
  const tmpfs: Record<string, string> = {};
  for (const t of list(o.tmpfs)) { const i = t.indexOf(':'); tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1); }
  const num = (k: string, flag: string) => (str(o[k]) !== undefined ? intFlag(str(o[k])!, flag) : undefined);
  const pids = num('pidsLimit', '--pids-limit');
  const oomScore = num('oomScoreAdj', '--oom-score-adj');
  const stopTimeout = str(o.stopTimeout);
  const config: Record<string, unknown> = {
    Hostname: str(o.hostname) ?? '', Domainname: str(o.domainname) ?? '', User: str(o.user) ?? '',
    ...(str(o.macAddress) ? { MacAddress: str(o.macAddress) } : {}),
    AttachStdin: attachStdin, AttachStdout: attachStdout, AttachStderr: attachStderr,
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    Tty: o.tty === true, OpenStdin: interactive, StdinOnce: interactive && attachStdin,
    Env: (() => { const e = parseEnv(list(o.env), list(o.envFile)); return e.length ? e : null; })(),
    Cmd: cmd.length ? cmd : null, Image: image, Volumes: volumes, WorkingDir: str(o.workdir) ?? '',
    Entrypoint: entrypoint, OnBuild: null, Labels: labels,
    ...(str(o.stopSignal) ? { StopSignal: str(o.stopSignal) } : {}),
    ...(stopTimeout !== undefined ? { StopTimeout: Number(stopTimeout) } : {}),
    HostConfig: {
      Binds: binds.length ? binds : null, ContainerIDFile: str(o.cidfile) ?? '', LogConfig: { Type: str(o.logDriver) ?? '', Config: logOpts(list(o.logOpt)) },
      NetworkMode: str(o.network) ?? 'default', PortBindings: pub.bindings, RestartPolicy: parseRestart(str(o.restart)),
      AutoRemove: o.rm === true, VolumeDriver: '', VolumesFrom: null, ConsoleSize: [0, 0],
      CapAdd: list(o.capAdd).length ? list(o.capAdd) : null, CapDrop: list(o.capDrop).length ? list(o.capDrop) : null,
      Dns: list(o.dns), DnsOptions: list(o.dnsOption), DnsSearch: list(o.dnsSearch), ExtraHosts: list(o.addHost).length ? list(o.addHost) : null,
      ...(list(o.link).length ? { Links: list(o.link) } : {}),
      Privileged: o.privileged === true, PublishAllPorts: o.publishAll === true, ReadonlyRootfs: o.readOnly === true,
      Memory: mem !== undefined ? bytesFlag(mem, '-m, --memory') : 0, NanoCpus: nano,
      ...(swap !== undefined ? { MemorySwap: swap === '-1' ? -1 : bytesFlag(swap, '--memory-swap') } : {}),
      ...(str(o.memoryReservation) !== undefined ? { MemoryReservation: bytesFlag(str(o.memoryReservation)!, '--memory-reservation') } : {}),
      ...(str(o.shmSize) !== undefined ? { ShmSize: bytesFlag(str(o.shmSize)!, '--shm-size') } : {}),
      ...(str(o.cpuShares) !== undefined ? { CpuShares: intFlag(str(o.cpuShares)!, '-c, --cpu-shares') } : {}),
      ...(str(o.cpusetCpus) !== undefined ? { CpusetCpus: str(o.cpusetCpus) } : {}),
      ...(str(o.cpusetMems) !== undefined ? { CpusetMems: str(o.cpusetMems) } : {}),
      ...(pids !== undefined ? { PidsLimit: pids } : {}),
      ...(oomScore !== undefined ? { OomScoreAdj: oomScore } : {}),
      ...(o.oomKillDisable === true ? { OomKillDisable: true } : {}),
      ...(list(o.groupAdd).length ? { GroupAdd: list(o.groupAdd) } : {}),
      ...(list(o.device).length ? { Devices: list(o.device).map(parseDevice) } : {}),
      ...(list(o.deviceCgroupRule).length ? { DeviceCgroupRules: list(o.deviceCgroupRule) } : {}),
      ...(list(o.ulimit).length ? { Ulimits: list(o.ulimit).map(parseUlimit) } : {}),
      ...(list(o.sysctl).length ? { Sysctls: parseSysctls(list(o.sysctl)) } : {}),
      ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
      ...(sec.opts.length ? { SecurityOpt: sec.opts } : {}),
      ...(sec.unmaskPaths ? { MaskedPaths: [], ReadonlyPaths: [] } : {}),
      ...(userns ? { UsernsMode: userns } : {}),
      ...(str(o.pid) ? { PidMode: str(o.pid) } : {}),
      ...(str(o.uts) ? { UTSMode: str(o.uts) } : {}),
      ...(str(o.ipc) ? { IpcMode: str(o.ipc) } : {}),
      ...(str(o.runtime) ? { Runtime: str(o.runtime) } : {}),
      ...(list(o.volumesFrom).length ? { VolumesFrom: list(o.volumesFrom) } : {}),
      ...(list(o.mount).length ? { Mounts: list(o.mount).map(parseMount) } : {}),
      ...(list(o.storageOpt).length ? { StorageOpt: Object.fromEntries(list(o.storageOpt).map((kv) => { const i = kv.indexOf('='); return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)]; })) } : {}),
      // the terminal's size from the start (the resize after start comes too late for a quick command)
      ...(o.tty === true && process.stdout.isTTY && process.stdout.rows ? { ConsoleSize: [process.stdout.rows, process.stdout.columns ?? 80] } : {}),
      ...(o.init === true ? { Init: true } : {}),
    },
    NetworkingConfig: { EndpointsConfig: endpointsConfig(o) },
  };
  return config;
}

/** docker's NetworkingConfig: --network-alias and --ip for the network --network names. */
function endpointsConfig(o: Opts): Record<string, unknown> {
  const net = str(o.network) ?? 'default';
  const aliases = list(o.networkAlias);
  const ip = str(o.ip);
  if (!aliases.length && !ip) return {};
  return { [net]: { ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}), ...(aliases.length ? { Aliases: aliases } : {}) } };
}

// ------------------------------------------------------------------------------------------ create

function daemonError(e: unknown, cmd: string): StatusError {
  if (e instanceof StatusError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const fromDaemon = typeof e === 'object' && e !== null && (e as { fromDaemon?: boolean }).fromDaemon === true;
  return new StatusError(`wharf: ${fromDaemon ? 'Error response from daemon: ' : ''}${msg}\n\nRun 'wharf ${cmd} --help' for more information`, 125);
}

async function pullImage(ctx: CliContext, client: EngineClient, image: string, platform: string | undefined, quiet: boolean): Promise<void> {
  const ref = withDefaultTag(parseNormalizedNamed(image));
  const auth = credentialsFor(ref.domain, ctx.globals.config);
  const stream = await client.imagePull(normalizedName(ref), ref.digest ?? ref.tag ?? 'latest', { auth, ...(platform ? { platform } : {}) });
  const isTerm = ctx.stdio.stderr.isTTY === true;
  await displayJSONMessages(stream, quiet ? () => {} : ctx.err, { isTerminal: isTerm && !quiet, width: ctx.stdio.stderr.columns ?? 200 });
}

/** Creates the container (pulling the image when missing, as docker does); returns its ID. */
async function createContainer(ctx: CliContext, client: EngineClient, o: Opts, args: string[], attachDefault: boolean, cmdName: string): Promise<string> {
  const image = args[0]!;
  let ref;
  try { ref = parseNormalizedNamed(image); } catch (e) { throw daemonError(e, cmdName); }
  const body = containerConfig(o, image, args.slice(1), attachDefault);
  const name = str(o.name);
  const platform = str(o.platform);
  const pull = str(o.pull) ?? 'missing';
  if (!['always', 'missing', 'never'].includes(pull)) throw new StatusError(`wharf: invalid pull option: '${pull}': must be one of "always", "missing" or "never"\n\nRun 'wharf ${cmdName} --help' for more information`, 125);
  const cidfile = str(o.cidfile);
  if (cidfile && existsSync(cidfile)) throw new StatusError(`wharf: container ID file found, make sure the other container isn't running or delete ${cidfile}\n\nRun 'wharf ${cmdName} --help' for more information`, 125);
  const quiet = o.quiet === true;
  const opts = { ...(name ? { name } : {}), ...(platform ? { platform } : {}) };
  try {
    if (pull === 'always') await pullImage(ctx, client, image, platform, quiet);
    let res;
    try {
      res = await containerCreate(client, body, opts);
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      const notFound = status === 404 && /No such image/i.test((e as Error).message);
      if (!notFound || pull !== 'missing') throw e;
      ctx.err(`Unable to find image '${familiarString(withDefaultTag(ref))}' locally\n`);
      await pullImage(ctx, client, image, platform, quiet);
      res = await containerCreate(client, body, opts);
    }
    for (const w of res.Warnings ?? []) ctx.err(`WARNING: ${w}\n`);
    if (cidfile) writeFileSync(cidfile, res.Id);
    return res.Id;
  } catch (e) {
    throw daemonError(e, cmdName);
  }
}

export async function runCreate(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  ctx.out(`${await createContainer(ctx, client, o, args, false, 'create')}\n`);
}

// ------------------------------------------------------------------------------------------ streams

/** docker's exit status for a start error (127: command not found, 126: not executable). */
function startErrorStatus(msg: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(msg)) return 127;
  if (/permission denied|is a directory/i.test(msg)) return 126;
  return 125;
}

interface StreamOpts { tty: boolean; stdin: boolean; detachKeys: string; resize?: (h: number, w: number) => Promise<void> }

/**
 * Pumps a hijacked connection: its output to our stdout/stderr (demultiplexed unless tty), our stdin to it.
 * Resolves when the output ends; `detached` says whether the user typed the detach keys.
 */
async function pump(ctx: CliContext, conn: { socket: Socket; head: Buffer }, o: StreamOpts): Promise<{ detached: boolean }> {
  const { socket, head } = conn;
  const { stdin, stdout, stderr } = ctx.stdio;
  let detached = false;
  const rawTerm = o.tty && o.stdin && stdin.isTTY === true;
  if (rawTerm) {
    stdin.setRawMode(true);
    // libuv's raw mode keeps output post-processing (ONLCR); the container's terminal already turns \n into
    // \r\n, so ours must not do it again (docker's term.MakeRaw clears OPOST too). setRawMode(false) restores it.
    try { spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] }); } catch { /* no stty */ }
  }
  const restore = () => { if (rawTerm) { try { stdin.setRawMode(false); } catch { /* closed */ } } };
  let onWinch: (() => void) | undefined;
  if (o.tty && o.resize && stdout.isTTY) {
    const resize = o.resize;
    onWinch = () => { void resize(stdout.rows ?? 24, stdout.columns ?? 80).catch(() => {}); };
    process.on('SIGWINCH', onWinch);
  }
  const done = new Promise<void>((resolve) => {
    const out = o.tty ? null : new StdDemux(stdout, stderr);
    const write = (d: Buffer) => { if (out) out.write(d); else stdout.write(d); };
    if (head.length) write(head);
    socket.on('data', write);
    socket.on('end', () => { if (out) out.end(); resolve(); });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    // a short-lived process: its output and the end may have arrived with the 101 itself, before these listeners
    if (socket.readableEnded || socket.destroyed) { if (out) out.end(); resolve(); }
    socket.resume();
  });
  let onData: ((d: Buffer) => void) | undefined;
  let onEnd: (() => void) | undefined;
  if (o.stdin) {
    const keys = o.tty ? parseDetachKeys(o.detachKeys) : Buffer.alloc(0);
    let matched = 0;
    onData = (d: Buffer) => {
      for (const b of d) {
        if (keys.length === 0) break;
        if (b === keys[matched]) { matched++; if (matched === keys.length) { detached = true; break; } } else matched = b === keys[0] ? 1 : 0;
      }
      if (!socket.destroyed) socket.write(d);
    };
    onEnd = () => { if (!socket.destroyed) socket.end(); };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  }
  await done;
  if (onData) stdin.off('data', onData);
  if (onEnd) stdin.off('end', onEnd);
  if (o.stdin) stdin.pause();
  if (onWinch) process.off('SIGWINCH', onWinch);
  restore();
  socket.destroy();
  return { detached };
}

function detachKeysOf(o: Opts): string {
  const k = str(o.detachKeys) ?? DEFAULT_DETACH_KEYS;
  try { parseDetachKeys(k); } catch { throw new StatusError(`Invalid detach keys (${k}) provided`, 1); }
  return k;
}

// ------------------------------------------------------------------------------------------ run

export async function runRun(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const detach = o.detach === true;
  const tty = o.tty === true;
  const interactive = o.interactive === true;
  if (tty && interactive && !detach && ctx.stdio.stdin.isTTY !== true) throw new StatusError('the input device is not a TTY', 1);
  const detachKeys = detachKeysOf(o);
  const id = await createContainer(ctx, client, o, args, true, 'run');
  if (detach) {
    try { await containerStart(client, id); } catch (e) {
      const msg = (e as Error).message;
      throw new StatusError(`wharf: Error response from daemon: ${msg}\n\nRun 'wharf run --help' for more information`, startErrorStatus(msg));
    }
    ctx.out(`${id}\n`);
    return;
  }
  const attach = list(o.attach).map((a) => a.toLowerCase());
  const wantStdin = attach.length ? attach.includes('stdin') : interactive;
  const conn = await containerAttach(client, id, {
    stream: true, stdin: wantStdin, stdout: attach.length ? attach.includes('stdout') : true,
    stderr: attach.length ? attach.includes('stderr') : true, ...(tty && wantStdin ? { detachKeys } : {}),
  });
  const waitP: Promise<WaitResponse> = containerWait(client, id, o.rm === true ? 'removed' : 'next-exit');
  waitP.catch(() => {});
  const resize = (h: number, w: number) => containerResize(client, id, h, w);
  const pumped = pump(ctx, conn, { tty, stdin: wantStdin, detachKeys, resize });
  try {
    await containerStart(client, id);
  } catch (e) {
    conn.socket.destroy();
    await pumped;
    const msg = (e as Error).message;
    const status = startErrorStatus(msg);
    if (o.rm === true) await client.empty('DELETE', `/containers/${encodeURIComponent(id)}`, { query: { force: true, v: true } }).catch(() => {});
    throw new StatusError(`wharf: Error response from daemon: ${msg}\n\nRun 'wharf run --help' for more information`, status);
  }
  if (tty && ctx.stdio.stdout.isTTY) void resize(ctx.stdio.stdout.rows ?? 24, ctx.stdio.stdout.columns ?? 80).catch(() => {});
  const { detached } = await pumped;
  if (detached) return;
  const res = await waitP.catch((e: unknown) => { throw daemonError(e, 'run'); });
  if (res.Error?.Message) ctx.err(`${res.Error.Message}\n`);
  if (res.StatusCode !== 0) throw new StatusError('', res.StatusCode);
}

// ------------------------------------------------------------------------------------------ start / attach

export async function runStart(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const attach = o.attach === true || o.interactive === true;
  if (attach) {
    if (args.length > 1) throw new StatusError('you cannot start and attach multiple containers at once', 1);
    const c = await containerInspect(client, args[0]!).catch((e: unknown) => { throw e; });
    const tty = c.Config.Tty === true;
    const wantStdin = o.interactive === true && c.Config.OpenStdin === true;
    const detachKeys = detachKeysOf(o);
    const conn = await containerAttach(client, c.Id, { stream: true, stdin: wantStdin, stdout: true, stderr: true, ...(tty && wantStdin ? { detachKeys } : {}) });
    const waitP = containerWait(client, c.Id, c.HostConfig.AutoRemove ? 'removed' : 'next-exit');
    waitP.catch(() => {});
    const resize = (h: number, w: number) => containerResize(client, c.Id, h, w);
    const pumped = pump(ctx, conn, { tty, stdin: wantStdin, detachKeys, resize });
    try {
      await containerStart(client, c.Id);
    } catch (e) {
      conn.socket.destroy();
      await pumped;
      throw e;
    }
    if (tty && ctx.stdio.stdout.isTTY) void resize(ctx.stdio.stdout.rows ?? 24, ctx.stdio.stdout.columns ?? 80).catch(() => {});
    const { detached } = await pumped;
    if (detached) return;
    const res = await waitP;
    if (res.StatusCode !== 0) throw new StatusError('', res.StatusCode);
    return;
  }
  let failed = false;
  for (const name of args) {
    try {
      await containerStart(client, name);
      ctx.out(`${name}\n`);
    } catch (e) {
      failed = true;
      ctx.err(`Error response from daemon: ${(e as Error).message}\n`);
    }
  }
  if (failed) throw new StatusError('Error: failed to start containers: ' + args.join(', '), 1);
}

export async function runAttach(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const c = await containerInspect(client, args[0]!);
  if (!c.State.Running) throw new StatusError('You cannot attach to a stopped container, start it first', 1);
  if (c.State.Paused) throw new StatusError('You cannot attach to a paused container, unpause it first', 1);
  const tty = c.Config.Tty === true;
  const wantStdin = o.noStdin !== true && c.Config.OpenStdin === true;
  const detachKeys = detachKeysOf(o);
  const waitP = containerWait(client, c.Id, 'not-running');
  waitP.catch(() => {});
  const conn = await containerAttach(client, c.Id, { stream: true, stdin: wantStdin, stdout: true, stderr: true, ...(tty && wantStdin ? { detachKeys } : {}) });
  const resize = (h: number, w: number) => containerResize(client, c.Id, h, w);
  if (tty && ctx.stdio.stdout.isTTY) void resize(ctx.stdio.stdout.rows ?? 24, ctx.stdio.stdout.columns ?? 80).catch(() => {});
  const { detached } = await pump(ctx, conn, { tty, stdin: wantStdin, detachKeys, resize });
  if (detached) return;
  const res = await waitP;
  if (res.StatusCode !== 0) throw new StatusError('', res.StatusCode);
}

// ------------------------------------------------------------------------------------------ exec

export async function runExec(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const [container, ...cmd] = args as [string, ...string[]];
  const tty = o.tty === true;
  const interactive = o.interactive === true;
  const detach = o.detach === true;
  if (tty && interactive && !detach && ctx.stdio.stdin.isTTY !== true) throw new StatusError('the input device is not a TTY', 1);
  const detachKeys = detachKeysOf(o);
  const env = parseEnv(list(o.env), list(o.envFile));
  const body: Record<string, unknown> = {
    User: str(o.user) ?? '', Privileged: o.privileged === true, Tty: tty,
    ConsoleSize: tty && ctx.stdio.stdout.isTTY && ctx.stdio.stdout.rows ? [ctx.stdio.stdout.rows, ctx.stdio.stdout.columns ?? 80] : null,
    AttachStdin: interactive && !detach, AttachStderr: !detach, AttachStdout: !detach, Detach: detach,
    DetachKeys: str(o.detachKeys) ?? '', Env: env.length ? env : null, WorkingDir: str(o.workdir) ?? '', Cmd: cmd,
  };
  const { Id } = await execCreate(client, container, body);
  if (detach) {
    await execStartDetached(client, Id, tty);
    return;
  }
  const conn = await execStartAttached(client, Id, tty);
  const resize = (h: number, w: number) => execResize(client, Id, h, w);
  if (tty && ctx.stdio.stdout.isTTY) void resize(ctx.stdio.stdout.rows ?? 24, ctx.stdio.stdout.columns ?? 80).catch(() => {});
  const { detached } = await pump(ctx, conn, { tty, stdin: interactive, detachKeys, resize });
  if (detached) return;
  // the exit code is recorded a moment after the stream ends
  let code: number | null = null;
  for (let i = 0; i < 100; i++) {
    const st = await execInspect(client, Id);
    if (!st.Running && st.ExitCode !== null) { code = st.ExitCode; break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (code !== null && code !== 0) throw new StatusError('', code);
}

// ------------------------------------------------------------------------------------------ logs / wait

/** `--since`/`--until` as the docker CLI sends them: unix seconds with nanoseconds ("42m" and dates resolved here). */
function logTime(v: string | undefined, flag: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  let ms: number;
  try { ms = parseTimestamp(v); } catch {
    throw new StatusError(`invalid value for "${flag}": failed to parse value as time or duration: ${JSON.stringify(v)}`, 1);
  }
  const sec = Math.floor(ms / 1000);
  return `${sec}.${String(Math.round((ms - sec * 1000) * 1e6)).padStart(9, '0')}`;
}

export async function runLogs(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  const c = await containerInspect(client, args[0]!);
  const tail = str(o.tail) ?? 'all';
  const res = await containerLogs(client, c.Id, {
    stdout: true, stderr: true, follow: o.follow === true, timestamps: o.timestamps === true, details: o.details === true,
    tail, since: logTime(str(o.since), 'since'), until: logTime(str(o.until), 'until'),
  });
  const { stdout, stderr } = ctx.stdio;
  await new Promise<void>((resolve, reject) => {
    const out = c.Config.Tty === true ? null : new StdDemux(stdout, stderr);
    res.on('data', (d: Buffer) => { if (out) out.write(d); else stdout.write(d); });
    res.on('end', () => { if (out) out.end(() => resolve()); else resolve(); });
    res.on('error', reject);
  });
}

export async function runWait(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const client = await ctx.client();
  let failed = false;
  await Promise.all(args.map(async (name) => {
    try {
      const r = await containerWait(client, name, 'not-running');
      return { name, out: `${r.StatusCode}\n` };
    } catch (e) {
      failed = true;
      return { name, err: `Error response from daemon: ${(e as Error).message}\n` };
    }
  })).then((rs) => { for (const r of rs) { if (r.out) ctx.out(r.out); if (r.err) ctx.err(r.err); } });
  if (failed) throw new StatusError('', 1);
}
