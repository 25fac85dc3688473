/**
 * wharfd's configuration: command-line flags (dockerd's names) over daemon.json over defaults.
 *
 * Like dockerd: unknown keys in the file are an error, and so is a directive given both as a flag and in
 * the file. Unlike dockerd: a tcp:// host is refused unless TLS with client verification is configured
 * (--tlsverify with --tlscacert, --tlscert, --tlskey); plain or server-only TLS TCP would hand root to
 * anyone who can reach the port.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_CONFIG, type DaemonConfig } from '../engine/config.js';
import { isENOENT } from '../lib/fsutil.js';
import { parseLogLevel } from '../lib/log.js';
import { checkLogConfig } from '../engine/runtime/logs.js';

export const DEFAULT_CONFIG_FILE = '/etc/wharf/daemon.json';

export interface TlsConfig {
  /** --tls: serve TCP over TLS. */
  tls: boolean;
  /** --tlsverify: TLS and require client certificates signed by the CA (implies tls). */
  verify: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
}

export interface WharfdOptions {
  config: DaemonConfig;
  tls: TlsConfig;
  /** The file read, or null when none. */
  configFile: string | null;
  /** Group owning the unix socket when it exists (default "wharf"). */
  group: string;
  /** --validate: check the configuration and exit. */
  validate: boolean;
  /** -v/--version */
  showVersion: boolean;
}

/** A configuration problem: wharfd prints it and exits 1. */
export class ConfigError extends Error {}

type Kind = 'string' | 'strings' | 'bool' | 'int' | 'map';

/** daemon.json keys, their type, and the commander option (attribute) they correspond to. */
const KEYS: Record<string, { kind: Kind; opt: string }> = {
  'data-root': { kind: 'string', opt: 'dataRoot' },
  'exec-root': { kind: 'string', opt: 'execRoot' },
  hosts: { kind: 'strings', opt: 'host' },
  pidfile: { kind: 'string', opt: 'pidfile' },
  'storage-driver': { kind: 'string', opt: 'storageDriver' },
  'registry-mirrors': { kind: 'strings', opt: 'registryMirror' },
  'insecure-registries': { kind: 'strings', opt: 'insecureRegistry' },
  'max-concurrent-downloads': { kind: 'int', opt: 'maxConcurrentDownloads' },
  'max-concurrent-uploads': { kind: 'int', opt: 'maxConcurrentUploads' },
  debug: { kind: 'bool', opt: 'debug' },
  'log-level': { kind: 'string', opt: 'logLevel' },
  'default-runtime': { kind: 'string', opt: 'defaultRuntime' },
  'log-driver': { kind: 'string', opt: 'logDriver' },
  'log-opts': { kind: 'map', opt: 'logOpt' },
  tls: { kind: 'bool', opt: 'tls' },
  tlsverify: { kind: 'bool', opt: 'tlsverify' },
  tlscacert: { kind: 'string', opt: 'tlscacert' },
  tlscert: { kind: 'string', opt: 'tlscert' },
  tlskey: { kind: 'string', opt: 'tlskey' },
  group: { kind: 'string', opt: 'group' },
  'userns-remap': { kind: 'string', opt: 'usernsRemap' },
};

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function nonNegativeInt(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(v);
}

/** The wharfd command line (commander). Parsing errors throw CommanderError. */
export function buildCommand(): Command {
  return new Command('wharfd')
    .description('A self-sufficient runtime for containers: the Wharf daemon (Docker Engine API 1.41).')
    .helpOption('--help', 'Print usage')
    .option('-H, --host <host>', 'Daemon socket(s) to listen on (unix:///path, tcp://host:port; tcp requires --tlsverify with --tlscacert/--tlscert/--tlskey)', collect)
    .option('--data-root <dir>', `Root directory of persistent state (default "${DEFAULT_CONFIG.dataRoot}")`)
    .option('--exec-root <dir>', `Root directory for execution state files (default "${DEFAULT_CONFIG.execRoot}")`)
    .option('-p, --pidfile <file>', `Path to use for daemon PID file (default "${DEFAULT_CONFIG.pidfile}")`)
    .option('--config-file <file>', 'Daemon configuration file', DEFAULT_CONFIG_FILE)
    .option('-s, --storage-driver <driver>', 'Storage driver to use (overlay, vfs; overlay2 means overlay)')
    .option('-D, --debug', 'Enable debug mode')
    .option('-l, --log-level <level>', 'Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") (default "info")')
    .option('--default-runtime <runtime>', 'Default OCI runtime for containers (runc, crun, or a path)')
    .option('--log-driver <driver>', 'Default driver for container logs (json-file, local, none)')
    .option('--log-opt <key=value>', 'Default log driver options for containers', collect)
    .option('-G, --group <group>', 'Group for the unix socket', 'wharf')
    .option('--insecure-registry <registry>', 'Enable insecure registry communication', collect)
    .option('--registry-mirror <url>', 'Preferred registry mirror', collect)
    .option('--max-concurrent-downloads <n>', 'Set the max concurrent downloads for each pull', nonNegativeInt)
    .option('--max-concurrent-uploads <n>', 'Set the max concurrent uploads for each push', nonNegativeInt)
    .option('--userns-remap <user/group>', 'User/Group setting for user namespaces (not supported by wharfd: refused when set)')
    .option('--tls', 'Use TLS; implied by --tlsverify')
    .option('--tlsverify', 'Use TLS and verify the remote')
    .option('--tlscacert <file>', 'Trust certs signed only by this CA')
    .option('--tlscert <file>', 'Path to TLS certificate file')
    .option('--tlskey <file>', 'Path to TLS key file')
    .option('--validate', 'Validate daemon configuration and exit')
    .option('-v, --version', 'Print version information and quit')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: () => {} });
}

/** Go's %v of a value, for dockerd-like messages. */
function goValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  return String(v);
}

function checkType(key: string, kind: Kind, v: unknown): unknown {
  const bad = (want: string) => new ConfigError(`invalid value for "${key}": expected ${want}, got ${JSON.stringify(v)}`);
  switch (kind) {
    case 'string': if (typeof v !== 'string') throw bad('a string'); return v;
    case 'bool': if (typeof v !== 'boolean') throw bad('a boolean'); return v;
    case 'int': if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad('a non-negative integer'); return v;
    case 'strings':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad('a list of strings');
      return v;
    case 'map':
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw bad('an object of strings');
      return v;
  }
}

/** Reads and validates a daemon.json. Unknown keys → error (dockerd's message). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`unable to configure the Wharf daemon with file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`unable to configure the Wharf daemon with file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`unable to configure the Wharf daemon with file ${path}: not a JSON object`);
  }
  const obj = parsed as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !(k in KEYS));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unable to configure the Wharf daemon with file ${path}: the following directives don't match any configuration option: ${unknown.join(', ')}`,
    );
  }
  try {
    for (const [k, v] of Object.entries(obj)) checkType(k, KEYS[k]!.kind, v);
  } catch (e) {
    throw new ConfigError(`unable to configure the Wharf daemon with file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return obj;
}

function fileExists(path: string): boolean {
  try { readFileSync(path); return true; } catch (e) { return !isENOENT(e); }
}

/**
 * Parses wharfd's arguments (without node and script) and merges daemon.json. Throws ConfigError or
 * CommanderError (help/version/parse errors).
 */
export function parseDaemonArgs(argv: string[]): WharfdOptions {
  const cmd = buildCommand();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') throw e;
      throw new ConfigError(e.message.replace(/^error: /, ''), { cause: e });
    }
    throw e;
  }
  const o = cmd.opts<Record<string, unknown>>();
  const fromCli = (attr: string) => cmd.getOptionValueSource(attr) === 'cli';

  // The config file: an explicit one must exist; the default one is read when present.
  const cfgPath = o['configFile'] as string;
  let file: Record<string, unknown> = {};
  let configFile: string | null = null;
  if (fromCli('configFile') || fileExists(cfgPath)) {
    file = readConfigFile(cfgPath);
    configFile = cfgPath;
  }

  const conflicts: string[] = [];
  for (const [key, { opt }] of Object.entries(KEYS)) {
    if (key in file && fromCli(opt)) {
      conflicts.push(`${key}: (from flag: ${goValue(o[opt])}, from file: ${goValue(file[key])})`);
    }
  }
  if (conflicts.length > 0) {
    throw new ConfigError(
      `unable to configure the Wharf daemon with file ${cfgPath}: the following directives are specified both as a flag and in the configuration file: ${conflicts.join(', ')}`,
    );
  }

  const pick = <T>(key: string, def: T): T => {
    const { opt } = KEYS[key]!;
    if (fromCli(opt)) return o[opt] as T;
    if (key in file) return file[key] as T;
    return def;
  };

  const config: DaemonConfig = {
    dataRoot: pick('data-root', DEFAULT_CONFIG.dataRoot),
    execRoot: pick('exec-root', DEFAULT_CONFIG.execRoot),
    hosts: [],
    pidfile: pick('pidfile', DEFAULT_CONFIG.pidfile),
    registryMirrors: pick('registry-mirrors', [...DEFAULT_CONFIG.registryMirrors]),
    insecureRegistries: pick('insecure-registries', [...DEFAULT_CONFIG.insecureRegistries]),
    maxConcurrentDownloads: pick('max-concurrent-downloads', DEFAULT_CONFIG.maxConcurrentDownloads),
    maxConcurrentUploads: pick('max-concurrent-uploads', DEFAULT_CONFIG.maxConcurrentUploads),
    debug: pick('debug', DEFAULT_CONFIG.debug),
    logLevel: DEFAULT_CONFIG.logLevel,
    defaultRuntime: pick('default-runtime', DEFAULT_CONFIG.defaultRuntime),
    logDriver: pick('log-driver', DEFAULT_CONFIG.logDriver),
    logOpts: (() => {
      const v = pick<Record<string, string> | string[]>('log-opts', {});
      if (!Array.isArray(v)) return { ...v };
      const out: Record<string, string> = {};
      for (const kv of v) {
        const i = kv.indexOf('=');
        if (i < 1) throw new ConfigError(`invalid key value pair format in driver options: ${kv}`);
        out[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return out;
    })(),
  };
  try { checkLogConfig(config.logDriver, config.logOpts); } catch (e) {
    throw new ConfigError(`failed to set log opts: ${(e as Error).message}`);
  }
  if (!/^(runc|crun)$/.test(config.defaultRuntime) && !config.defaultRuntime.startsWith('/')) {
    throw new ConfigError(`default-runtime must be runc, crun or an absolute path: ${config.defaultRuntime}`);
  }
  const level = pick<string | undefined>('log-level', undefined);
  if (level !== undefined) {
    try { config.logLevel = parseLogLevel(level); } catch (e) { throw new ConfigError((e as Error).message, { cause: e }); }
  }
  const driver = pick<string | undefined>('storage-driver', undefined);
  // dockerd's name for the overlay driver is accepted too.
  if (driver !== undefined && driver !== '') config.storageDriver = driver === 'overlay2' ? 'overlay' : driver;
  // hosts: the socket defaults under the exec root's default location, like dockerd's /var/run/docker.sock.
  const hosts = pick<string[]>('hosts', []);
  config.hosts = hosts.length > 0 ? hosts.map((h) => normalizeHost(h)) : [...DEFAULT_CONFIG.hosts];
  for (const [k, v] of [['data-root', config.dataRoot], ['exec-root', config.execRoot], ['pidfile', config.pidfile]] as const) {
    if (!v.startsWith('/')) throw new ConfigError(`${k} must be an absolute path: ${v}`);
  }

  // dockerd's user-namespace remapping (every container in a user namespace mapped to subordinate IDs) is not
  // implemented: a daemon asked for it must not start and run containers as real root instead.
  const remap = pick<string>('userns-remap', '');
  if (remap !== '') {
    throw new ConfigError(
      `userns-remap ${JSON.stringify(remap)}: user namespace remapping is not supported by wharfd; ` +
      'remove "userns-remap" from the configuration (containers would otherwise run as root on the host without the remapping you asked for)',
    );
  }

  const tlsverify = pick<boolean>('tlsverify', false);
  const tls: TlsConfig = { tls: pick<boolean>('tls', false) || tlsverify, verify: tlsverify };
  const ca = pick<string | undefined>('tlscacert', undefined);
  const cert = pick<string | undefined>('tlscert', undefined);
  const key = pick<string | undefined>('tlskey', undefined);
  if (ca) tls.cacert = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;

  for (const h of config.hosts) {
    if (!h.startsWith('tcp://')) continue;
    if (!tls.verify || !tls.cacert || !tls.cert || !tls.key) {
      throw new ConfigError(
        `refusing to listen on ${h}: TCP needs TLS with client certificate verification ` +
        '(--tlsverify --tlscacert=<ca.pem> --tlscert=<cert.pem> --tlskey=<key.pem>); ' +
        'without it anyone who can reach the port controls the host as root',
      );
    }
  }

  return {
    config,
    tls,
    configFile,
    group: pick<string>('group', 'wharf'),
    validate: o['validate'] === true,
    showVersion: o['version'] === true,
  };
}

/** A listen address, parsed. */
export type HostAddr = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Normalizes -H values like dockerd: "unix://" → default socket, "host:port" → tcp://host:port. */
export function normalizeHost(h: string): string {
  const a = parseHost(h);
  return a.kind === 'unix' ? `unix://${a.path}` : `tcp://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export function parseHost(h: string): HostAddr {
  const s = h.trim();
  const i = s.indexOf('://');
  const proto = i < 0 ? 'tcp' : s.slice(0, i);
  const rest = i < 0 ? s : s.slice(i + 3);
  if (proto === 'unix') {
    const path = rest === '' ? DEFAULT_CONFIG.hosts[0]!.slice('unix://'.length) : rest;
    if (!path.startsWith('/')) throw new ConfigError(`Invalid bind address format: ${h} (unix socket paths must be absolute)`);
    return { kind: 'unix', path };
  }
  if (proto === 'tcp') {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/\[\]]*))(?::(\d{1,5}))?\/?$/.exec(rest);
    if (!m) throw new ConfigError(`Invalid bind address format: ${h}`);
    const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '127.0.0.1' : m[2]);
    const port = m[3] !== undefined ? Number(m[3]) : 2376;
    if (port < 1 || port > 65535) throw new ConfigError(`Invalid bind address format: ${h}`);
    return { kind: 'tcp', host, port };
  }
  throw new ConfigError(`Invalid bind address format: ${h}`);
}
