/**
 * The commands and flags of the wharf CLI, described once: commander is configured from these, and the
 * help output is rendered from them in docker's (cobra/pflag) layout.
 */
import { IMAGE_COMMANDS, IMAGE_GROUPS } from './specs/images.js';
import { CONTAINER_COMMANDS, CONTAINER_GROUPS } from './specs/containers.js';
import { CONTAINER_ADMIN_COMMANDS, CONTAINER_ADMIN_GROUPS } from './specs/container-admin.js';
import { VOLUME_COMMANDS, VOLUME_GROUPS } from './specs/volumes.js';
import { NETWORK_COMMANDS, NETWORK_GROUPS } from './specs/networks.js';
import { BUILD_COMMANDS, BUILD_GROUPS } from './specs/build.js';
import { DISTRIBUTION_COMMANDS, DISTRIBUTION_GROUPS } from './specs/distribution.js';

export const PROG = 'wharf';

export interface FlagSpec {
  long: string;
  short?: string;
  /** Value name shown in help ("string", "filter", "list"); absent for booleans. */
  type?: string;
  usage: string;
  /** Shown as (default …) when set; strings are quoted. */
  def?: string | boolean;
  repeatable?: boolean;
  /** Boolean that defaults to true (--name=false turns it off). */
  defaultTrue?: boolean;
  hidden?: boolean;
}

export interface CommandSpec {
  /** Path from the root: ["image", "ls"]. */
  path: string[];
  /** Usage after the command path: "[OPTIONS] [REPOSITORY[:TAG]]". */
  use: string;
  short: string;
  /** docker's "Aliases:" line, full command paths. */
  aliases?: string[];
  flags: FlagSpec[];
  /** Argument count rule. */
  args: { kind: 'none' } | { kind: 'exact'; n: number } | { kind: 'min'; n: number } | { kind: 'max'; n: number };
  /** Module (under ./commands/) and export implementing it. */
  impl: [module: string, fn: string];
  group?: 'common' | 'management' | 'commands';
  /** false: flags end at the first argument (run IMAGE CMD --flag passes --flag to CMD), as docker's run/exec. */
  interspersed?: boolean;
  /** Another name of a command the group already lists (`container list` for `container ls`): not in group help. */
  alias?: boolean;
}

export interface GroupSpec {
  path: string[];
  short: string;
  group: 'management';
}


/**
 * Every command, gathered from the per-concept lists in ./specs/ (one file per area, so that the
 * container, volume, build and distribution commands can grow independently).
 */
export const COMMANDS: CommandSpec[] = [
  ...IMAGE_COMMANDS, ...CONTAINER_COMMANDS, ...CONTAINER_ADMIN_COMMANDS, ...VOLUME_COMMANDS, ...NETWORK_COMMANDS, ...BUILD_COMMANDS, ...DISTRIBUTION_COMMANDS,
];

export const GROUPS: GroupSpec[] = [
  ...IMAGE_GROUPS, ...CONTAINER_GROUPS, ...CONTAINER_ADMIN_GROUPS, ...VOLUME_GROUPS, ...NETWORK_GROUPS, ...BUILD_GROUPS, ...DISTRIBUTION_GROUPS,
];

export const GLOBAL_FLAGS = (configDir: string): FlagSpec[] => [
  { long: 'config', type: 'string', usage: 'Location of client config files', def: configDir },
  { long: 'debug', short: 'D', usage: 'Enable debug mode' },
  { long: 'host', short: 'H', type: 'list', usage: 'Daemon socket to connect to', repeatable: true },
  { long: 'log-level', short: 'l', type: 'string', usage: 'Set the logging level ("debug", "info", "warn", "error", "fatal")', def: 'info' },
  { long: 'tls', usage: 'Use TLS; implied by --tlsverify' },
  { long: 'tlscacert', type: 'string', usage: 'Trust certs signed only by this CA', def: `${configDir}/ca.pem` },
  { long: 'tlscert', type: 'string', usage: 'Path to TLS certificate file', def: `${configDir}/cert.pem` },
  { long: 'tlskey', type: 'string', usage: 'Path to TLS key file', def: `${configDir}/key.pem` },
  { long: 'tlsverify', usage: 'Use TLS and verify the remote' },
  { long: 'version', short: 'v', usage: 'Print version information and quit' },
];

// ---------------------------------------------------------------------------------------------
// Help rendering (cobra's usage template as docker customizes it; pflag's FlagUsagesWrapped)
// ---------------------------------------------------------------------------------------------

function wrapN(i: number, slop: number, s: string): [string, string] {
  if (i + slop > s.length) return [s, ''];
  const head = s.slice(0, i);
  const w = Math.max(head.lastIndexOf(' '), head.lastIndexOf('\t'), head.lastIndexOf('\n'));
  if (w <= 0) return [s, ''];
  const nl = head.lastIndexOf('\n');
  if (nl > 0 && nl < w) return [s.slice(0, nl), s.slice(nl + 1)];
  return [s.slice(0, w), s.slice(w + 1)];
}

/** pflag's wrap: text starting at column i, lines of at most w columns. */
export function wrapText(i: number, w: number, s: string): string {
  if (w === 0) return s.replace(/\n/g, '\n' + ' '.repeat(i));
  let wrap = w - i;
  let r = '';
  if (wrap < 24) {
    i = 16;
    wrap = w - i;
    r += '\n' + ' '.repeat(i);
  }
  if (wrap < 24) return s.replace(/\n/g, r);
  const slop = 5;
  wrap -= slop;
  let l: string;
  [l, s] = wrapN(wrap, slop, s);
  r += l.replace(/\n/g, '\n' + ' '.repeat(i));
  while (s !== '') {
    let t: string;
    [t, s] = wrapN(wrap, slop, s);
    r += '\n' + ' '.repeat(i) + t.replace(/\n/g, '\n' + ' '.repeat(i));
  }
  return r;
}

/**
 * The width docker wraps flag usages at: the terminal's (stdin's) width minus one, 80 - 1 otherwise.
 */
export function helpColumns(): number {
  const w = process.stdin.isTTY && process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 80;
  return w - 1;
}

/** pflag FlagUsagesWrapped(cols) for a flag list (sorted by long name, as pflag does). */
export function flagUsages(flags: FlagSpec[], cols = helpColumns()): string {
  const lines: string[] = [];
  let maxlen = 0;
  const sorted = [...flags].filter((f) => !f.hidden).sort((a, b) => (a.long < b.long ? -1 : a.long > b.long ? 1 : 0));
  for (const f of sorted) {
    let line = f.short ? `  -${f.short}, --${f.long}` : `      --${f.long}`;
    if (f.type) line += ` ${f.type}`;
    line += '\x00';
    if (line.length > maxlen) maxlen = line.length;
    line += f.usage;
    if (f.def !== undefined && f.def !== false && f.def !== '') {
      line += typeof f.def === 'string' ? ` (default ${JSON.stringify(f.def)})` : ` (default ${f.def})`;
    }
    lines.push(line);
  }
  let out = '';
  for (const line of lines) {
    const sidx = line.indexOf('\x00');
    out += `${line.slice(0, sidx)} ${' '.repeat(maxlen - sidx)} ${wrapText(maxlen + 2, cols, line.slice(sidx + 1))}\n`;
  }
  return out;
}

function rpadList(items: [string, string][]): string {
  const pad = Math.max(11, ...items.map(([n]) => n.length));
  return items.map(([n, s]) => `  ${n.padEnd(pad)} ${s}\n`).join('');
}

export function commandPath(path: string[]): string {
  return [PROG, ...path].join(' ');
}

/** The "Usage:" line of a command. */
export function useLine(c: CommandSpec): string {
  return `${commandPath(c.path)} ${c.use}`;
}

/** `wharf COMMAND --help` */
export function commandHelp(c: CommandSpec): string {
  let out = `Usage:  ${useLine(c)}\n\n${c.short}\n`;
  if (c.aliases) out += `\nAliases:\n  ${c.aliases.map((a) => `${PROG} ${a}`).join(', ')}\n`;
  if (c.flags.length > 0) out += `\nOptions:\n${flagUsages(c.flags).replace(/\s+$/, '')}\n`;
  return out;
}

/** `wharf GROUP` / `wharf GROUP --help` */
export function groupHelp(g: GroupSpec): string {
  const subs = COMMANDS.filter((c) => c.path.length === g.path.length + 1 && c.path.slice(0, -1).join(' ') === g.path.join(' '))
    .filter((c) => !c.alias && !(c.path.join(' ') === 'image list' || c.path.join(' ') === 'image remove'))
    .map((c): [string, string] => [c.path[c.path.length - 1]!, c.short])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return `Usage:  ${commandPath(g.path)} COMMAND\n\n${g.short}\n\nCommands:\n${rpadList(subs)}\nRun '${commandPath(g.path)} COMMAND --help' for more information on a command.\n`;
}

/** `wharf --help` */
export function rootHelp(configDir: string): string {
  const top = COMMANDS.filter((c) => c.path.length === 1);
  const common = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'search', 'version', 'info']
    .map((n) => top.find((c) => c.path[0] === n && c.group === 'common')).filter((c): c is CommandSpec => c !== undefined);
  const mgmt = GROUPS.map((g): [string, string] => [g.path[0]!, g.short]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const cmds = top.filter((c) => c.group === 'commands').map((c): [string, string] => [c.path[0]!, c.short]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return `Usage:  ${PROG} [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\n`
    + `Common Commands:\n${rpadList(common.map((c) => [c.path[0]!, c.short]))}\n`
    + `Management Commands:\n${rpadList(mgmt)}\n`
    + `Commands:\n${rpadList(cmds)}\n`
    + `Global Options:\n${flagUsages(GLOBAL_FLAGS(configDir))}\n`
    + `Run '${PROG} COMMAND --help' for more information on a command.\n\n`
    + 'For more help on how to use Wharf, see docs/ in the Wharf source tree.\n';
}
