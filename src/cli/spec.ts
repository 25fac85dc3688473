/**
 * The commands and flags of the wharf CLI, described once: commander is configured from these, and the
 * help output is rendered from them in docker's (cobra/pflag) layout.
 */
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
}

export interface GroupSpec {
  path: string[];
  short: string;
  group: 'management';
}

const FORMAT_TABLE = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";
const FORMAT_PLAIN = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

const imagesFlags: FlagSpec[] = [
  { long: 'all', short: 'a', usage: 'Show all images (default hides intermediate images)' },
  { long: 'digests', usage: 'Show digests' },
  { long: 'filter', short: 'f', type: 'filter', usage: 'Filter output based on conditions provided', repeatable: true },
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'no-trunc', usage: "Don't truncate output" },
  { long: 'quiet', short: 'q', usage: 'Only show image IDs' },
];
const pullFlags: FlagSpec[] = [
  { long: 'all-tags', short: 'a', usage: 'Download all tagged images in the repository' },
  { long: 'disable-content-trust', usage: 'Skip image verification', def: true, defaultTrue: true },
  { long: 'platform', type: 'string', usage: 'Set platform if server is multi-platform capable' },
  { long: 'quiet', short: 'q', usage: 'Suppress verbose output' },
];
const historyFlags: FlagSpec[] = [
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'human', short: 'H', usage: 'Print sizes and dates in human readable format', def: true, defaultTrue: true },
  { long: 'no-trunc', usage: "Don't truncate output" },
  { long: 'quiet', short: 'q', usage: 'Only show image IDs' },
];
const rmiFlags: FlagSpec[] = [
  { long: 'force', short: 'f', usage: 'Force removal of the image' },
  { long: 'no-prune', usage: 'Do not delete untagged parents' },
];
const imageInspectFlags: FlagSpec[] = [{ long: 'format', short: 'f', type: 'string', usage: FORMAT_PLAIN }];
const pruneFlags: FlagSpec[] = [
  { long: 'all', short: 'a', usage: 'Remove all unused images, not just dangling ones' },
  { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "until=<timestamp>")', repeatable: true },
  { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
];

export const COMMANDS: CommandSpec[] = [
  { path: ['pull'], use: '[OPTIONS] NAME[:TAG|@DIGEST]', short: 'Download an image from a registry', aliases: ['image pull', 'pull'], flags: pullFlags, args: { kind: 'exact', n: 1 }, impl: ['pull', 'runPull'], group: 'common' },
  { path: ['image', 'pull'], use: '[OPTIONS] NAME[:TAG|@DIGEST]', short: 'Download an image from a registry', aliases: ['image pull', 'pull'], flags: pullFlags, args: { kind: 'exact', n: 1 }, impl: ['pull', 'runPull'] },
  { path: ['images'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'], group: 'common' },
  { path: ['image', 'ls'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'] },
  { path: ['image', 'list'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'] },
  { path: ['version'], use: '[OPTIONS]', short: 'Show the Wharf version information', flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runVersion'], group: 'common' },
  { path: ['info'], use: '[OPTIONS]', short: 'Display system-wide information', aliases: ['system info', 'info'], flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runInfo'], group: 'common' },
  { path: ['system', 'info'], use: '[OPTIONS]', short: 'Display system-wide information', aliases: ['system info', 'info'], flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runInfo'] },
  { path: ['history'], use: '[OPTIONS] IMAGE', short: 'Show the history of an image', aliases: ['image history', 'history'], flags: historyFlags, args: { kind: 'exact', n: 1 }, impl: ['history', 'runHistory'], group: 'commands' },
  { path: ['image', 'history'], use: '[OPTIONS] IMAGE', short: 'Show the history of an image', aliases: ['image history', 'history'], flags: historyFlags, args: { kind: 'exact', n: 1 }, impl: ['history', 'runHistory'] },
  {
    path: ['inspect'], use: '[OPTIONS] NAME|ID [NAME|ID...]', short: 'Return low-level information on Wharf objects',
    flags: [
      imageInspectFlags[0]!,
      { long: 'size', short: 's', usage: 'Display total file sizes if the type is container' },
      { long: 'type', type: 'string', usage: 'Only inspect objects of the given type' },
    ],
    args: { kind: 'min', n: 1 }, impl: ['inspect', 'runInspect'], group: 'commands',
  },
  { path: ['image', 'inspect'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Display detailed information on one or more images', flags: imageInspectFlags, args: { kind: 'min', n: 1 }, impl: ['inspect', 'runImageInspect'] },
  { path: ['rmi'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'], group: 'commands' },
  { path: ['image', 'rm'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'] },
  { path: ['image', 'remove'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'] },
  { path: ['tag'], use: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', aliases: ['image tag', 'tag'], flags: [], args: { kind: 'exact', n: 2 }, impl: ['rmi', 'runTag'], group: 'commands' },
  { path: ['image', 'tag'], use: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', aliases: ['image tag', 'tag'], flags: [], args: { kind: 'exact', n: 2 }, impl: ['rmi', 'runTag'] },
  { path: ['image', 'prune'], use: '[OPTIONS]', short: 'Remove unused images', flags: pruneFlags, args: { kind: 'none' }, impl: ['rmi', 'runPrune'] },
  { path: ['image', 'bootstrap'], use: 'NAME', short: 'Create busybox or debian:<suite> from the host, without a registry', flags: [], args: { kind: 'exact', n: 1 }, impl: ['pull', 'runBootstrap'] },
  {
    path: ['system', 'df'], use: '[OPTIONS]', short: 'Show wharf disk usage',
    flags: [{ long: 'format', type: 'string', usage: FORMAT_TABLE }, { long: 'verbose', short: 'v', usage: 'Show detailed information on space usage' }],
    args: { kind: 'none' }, impl: ['system', 'runDf'],
  },
];

export const GROUPS: GroupSpec[] = [
  { path: ['image'], short: 'Manage images', group: 'management' },
  { path: ['system'], short: 'Manage Wharf', group: 'management' },
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
    .filter((c) => !(c.path.join(' ') === 'image list' || c.path.join(' ') === 'image remove'))
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
