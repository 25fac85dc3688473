/**
 * The wharf CLI (loaded by main.ts): a client of the Engine API only (src/client), laid out and behaving like the docker CLI.
 * Global flags are parsed up to the command name; the command's own flags by a commander Command built
 * from its spec (src/cli/spec.ts). Command implementations are imported lazily to keep start-up fast.
 */
import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  COMMANDS, GLOBAL_FLAGS, GROUPS, PROG, commandHelp, commandPath, groupHelp, rootHelp, useLine,
  type CommandSpec, type FlagSpec,
} from './spec.js';
import { mark } from './trace.js';
import { CLI_DIR, gitCommit } from './build-info.js';
import { CancelledError, StatusError, type CliContext, type CommandFn, type GlobalOptions, type Opts } from './context.js';

export const CLI_VERSION = '0.1.0';

// Builtins through require(): an ESM import of node:fs/node:os materializes all their lazy exports (slow start-up).
const require = createRequire(import.meta.url);

function homedir(): string {
  return process.env.HOME || (require('node:os') as typeof import('node:os')).homedir();
}

function defaultConfigDir(): string {
  return process.env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** A flag error (exit 125) in docker's layout. */
function flagError(msg: string, usage: string, helpPath: string): StatusError {
  return new StatusError(`${msg}\n\nUsage:  ${usage}\n\nRun '${helpPath} --help' for more information`, 125);
}

function addFlags(cmd: Command, flags: FlagSpec[]): void {
  for (const f of flags) {
    const names = (f.short ? `-${f.short}, ` : '') + `--${f.long}` + (f.type ? ` <${f.type}>` : '');
    const o = new Option(names);
    if (f.repeatable) o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(o);
    if (f.defaultTrue) cmd.addOption(new Option(`--no-${f.long}`).hideHelp());
  }
  cmd.addOption(new Option('--help'));
  cmd.addOption(new Option('--deprecated-h').hideHelp());
}

function parseBoolValue(raw: string, flagName: string, usage: string, helpPath: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  throw flagError(`invalid argument "${raw}" for "${flagName}" flag: strconv.ParseBool: parsing ${JSON.stringify(raw)}: invalid syntax`, usage, helpPath);
}

/**
 * pflag syntax commander lacks, rewritten before parsing: --bool=true/false, -b=false, and shorthand
 * clusters ending in a valued flag ("-af=x"). Unknown shorthands get pflag's message.
 */
function rewriteBoolValues(argv: string[], flags: FlagSpec[], usage: string, helpPath: string, stopAtFirstArg = false): string[] {
  const out: string[] = [];
  let rest = false;
  const setBool = (f: FlagSpec, value: boolean) => {
    if (value) out.push(`--${f.long}`);
    else if (f.defaultTrue) out.push(`--no-${f.long}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (rest) { out.push(a); continue; }
    if (a === '--') { rest = true; out.push(a); continue; }
    const long = /^--([^=]+)=(.*)$/s.exec(a);
    if (long) {
      const f = flags.find((x) => x.long === long[1]);
      if (f && f.type === undefined) setBool(f, parseBoolValue(long[2]!, `--${f.long}`, usage, helpPath));
      else out.push(a);
      continue;
    }
    if (a.startsWith('--') || !a.startsWith('-') || a === '-') {
      out.push(a);
      if (stopAtFirstArg && !a.startsWith('-')) rest = true;
      else if (a.startsWith('--')) {
        const f = flags.find((x) => x.long === a.slice(2));
        if (f?.type !== undefined && i + 1 < argv.length) out.push(argv[++i]!);
      }
      continue;
    }
    // a shorthand cluster: -abc, -fvalue, -f value, -b=false
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      if (c === 'h' && !flags.some((x) => x.short === 'h')) { out.push('--help', '--deprecated-h'); continue; }
      const f = flags.find((x) => x.short === c);
      if (!f) throw flagError(`unknown shorthand flag: '${c}' in -${a.slice(j)}`, usage, helpPath);
      if (f.type === undefined) {
        if (a[j + 1] === '=') { setBool(f, parseBoolValue(a.slice(j + 2), `-${c}, --${f.long}`, usage, helpPath)); break; }
        setBool(f, true);
        continue;
      }
      let value = a.slice(j + 1);
      if (value.startsWith('=')) value = value.slice(1);
      else if (value === '') {
        if (i + 1 >= argv.length) throw flagError(`flag needs an argument: '${c}' in -${c}`, usage, helpPath);
        value = argv[++i]!;
      }
      out.push(`--${f.long}`, value);
      break;
    }
  }
  return out;
}

/** Turns commander's parse errors into docker's messages. */
function translateCommanderError(e: CommanderError, argv: string[], flags: FlagSpec[], usage: string, helpPath: string): StatusError {
  const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? '';
  if (e.code === 'commander.unknownOption') {
    const name = quoted.replace(/=.*$/, '');
    if (name.startsWith('--')) return flagError(`unknown flag: ${name}`, usage, helpPath);
    return flagError(`unknown shorthand flag: '${name.slice(1, 2)}' in ${name}`, usage, helpPath);
  }
  if (e.code === 'commander.optionMissingArgument') {
    const f = flags.find((x) => quoted.includes(`--${x.long}`));
    const used = f ? [...argv].reverse().find((a) => a === `--${f.long}` || (f.short !== undefined && /^-[^-]/.test(a) && a.endsWith(f.short))) : undefined;
    if (f && used && !used.startsWith('--')) return flagError(`flag needs an argument: '${f.short}' in -${f.short}`, usage, helpPath);
    return flagError(`flag needs an argument: --${f?.long ?? quoted}`, usage, helpPath);
  }
  return flagError(e.message.replace(/^error: /, ''), usage, helpPath);
}

function parseWith(cmd: Command, argv: string[], flags: FlagSpec[], usage: string, helpPath: string, stopAtFirstArg = false): { opts: Opts; args: string[] } {
  cmd.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .helpOption(false).allowExcessArguments(true).argument('[args...]');
  let args: string[] = [];
  cmd.action((a: string[]) => { args = a ?? []; });
  const rewritten = rewriteBoolValues(argv, flags, usage, helpPath, stopAtFirstArg);
  try {
    cmd.parse(rewritten, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw translateCommanderError(e, rewritten, flags, usage, helpPath);
    throw e;
  }
  return { opts: cmd.opts(), args };
}

function checkArgs(spec: CommandSpec, args: string[]): void {
  const name = commandPath(spec.path);
  const tail = (verb: 'See' | 'Run' | 'SRun') => `\n\nUsage:  ${useLine(spec)}\n\n${verb} '${name} --help' for more information`;
  const r = spec.args;
  if (r.kind === 'none' && args.length > 0) throw new StatusError(`${PROG}: '${name}' accepts no arguments${tail('Run')}`, 1);
  if (r.kind === 'exact' && args.length !== r.n) {
    throw new StatusError(`${PROG}: '${name}' requires ${r.n} argument${r.n === 1 ? '' : 's'}${tail('Run')}`, 1);
  }
  if (r.kind === 'min' && args.length < r.n) {
    throw new StatusError(`${PROG}: '${name}' requires at least ${r.n} argument${r.n === 1 ? '' : 's'}${tail('See')}`, 1);
  }
  // docker prints "SRun" here (a stray "S" in cli.RequiresMaxArgs); kept for byte-for-byte output.
  if (r.kind === 'max' && args.length > r.n) {
    throw new StatusError(`${PROG}: '${name}' requires at most ${r.n} argument${r.n === 1 ? '' : 's'}${tail('SRun')}`, 1);
  }
}

export async function main(argv: string[], io: { out: (s: string) => void; err: (s: string) => void } = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
}): Promise<number> {
  const configDefault = defaultConfigDir();
  const globalFlags = GLOBAL_FLAGS(configDefault);
  try {
    // ---- global options, up to the first argument that is not a flag
    const root = new Command(PROG).passThroughOptions();
    addFlags(root, globalFlags);
    const rootUsage = `${PROG} [OPTIONS] COMMAND [ARG...]`;
    const g = parseWith(root, argv, globalFlags, rootUsage, PROG, true);
    const go = g.opts;
    if (go.version) {
      io.out(`Wharf version ${CLI_VERSION}, build ${gitCommit()}\n`);
      return 0;
    }
    const rest = g.args;
    if (rest.length === 0 || go.help) {
      // cobra's deprecated -h: the notice goes to stderr for the root command, stdout for the others
      if (go.deprecatedH) io.err('Flag shorthand -h has been deprecated, use --help\n');
      io.out(rootHelp(configDefault));
      return 0;
    }
    const level = go.logLevel as string | undefined;
    if (level !== undefined && !['panic', 'fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace'].includes(level.toLowerCase())) {
      throw new StatusError(`Unable to parse logging level: ${level}`, 1);
    }
    const hosts = (go.host as string[] | undefined) ?? [];
    if (hosts.length > 1) throw new StatusError('Specify only one -H', 1);
    const globals: GlobalOptions = {
      debug: go.debug === true,
      logLevel: (go.logLevel as string | undefined) ?? 'info',
      config: (go.config as string | undefined) ?? configDefault,
      tls: go.tls === true || go.tlsverify === true || process.env.DOCKER_TLS_VERIFY !== undefined && process.env.DOCKER_TLS_VERIFY !== '',
      tlsverify: go.tlsverify === true || (process.env.DOCKER_TLS_VERIFY ?? '') !== '',
    };
    if (hosts[0] !== undefined) globals.host = hosts[0];
    for (const k of ['tlscacert', 'tlscert', 'tlskey'] as const) if (typeof go[k] === 'string') globals[k] = go[k] as string;

    // ---- `wharf registry …`: the registry server is its own program (src/registry, which the CLI does not
    // import); its flags are its own, so everything after `registry` goes to it as it is
    if (rest[0] === 'registry') {
      const { spawn } = await import('node:child_process');
      const entry = join(CLI_DIR, '..', 'registry', 'main.js');
      // fd 3: a pipe the server watches; it ends when this process dies, even by SIGKILL, and the server (with
      // its workers) stops then instead of keeping the port as an orphan
      const child = spawn(process.execPath, [entry, ...rest.slice(1)], {
        stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env: { ...process.env, WHARF_REGISTRY_PARENT_FD: '3' },
      });
      child.on('exit', () => { (child.stdio[3] as { destroy?: () => void } | null)?.destroy?.(); });
      // the server is this command: a signal to `wharf registry serve` goes to it
      const forward = (sig: NodeJS.Signals) => () => { child.kill(sig); };
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, forward(sig));
      return await new Promise<number>((resolve) => {
        child.on('error', (e) => { io.err(`wharf registry: ${e.message}\n`); resolve(1); });
        child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + ((require('node:os') as typeof import('node:os')).constants.signals[signal] ?? 15) : 1)));
      });
    }

    // ---- the command
    let spec: CommandSpec | undefined;
    let consumed = 1;
    const group = GROUPS.find((x) => x.path[0] === rest[0]);
    if (group) {
      const sub = rest[1];
      if (sub === undefined || sub === '--help' || sub === '-h') {
        if (sub === '-h') io.out('Flag shorthand -h has been deprecated, use --help\n');
        io.out(groupHelp(group));
        return 0;
      }
      if (sub.startsWith('-')) {
        // flags on a group: only --help is meaningful
        throw flagError(sub.startsWith('--') ? `unknown flag: ${sub.replace(/=.*$/, '')}` : `unknown shorthand flag: '${sub.slice(1, 2)}' in ${sub}`, commandPath(group.path), commandPath(group.path));
      }
      spec = COMMANDS.find((c) => c.path.length === 2 && c.path[0] === group.path[0] && c.path[1] === sub);
      if (!spec) {
        throw new StatusError(`${PROG}: unknown command: ${commandPath(group.path)} ${sub}\n\nUsage:  ${commandPath(group.path)}\n\nRun '${commandPath(group.path)} --help' for more information`, 1);
      }
      consumed = 2;
    } else {
      spec = COMMANDS.find((c) => c.path.length === 1 && c.path[0] === rest[0]);
      if (!spec) {
        throw new StatusError(`${PROG}: unknown command: ${PROG} ${rest[0]}\n\nRun '${PROG} --help' for more information`, 1);
      }
    }
    const name = commandPath(spec.path);
    const cmd = new Command(name);
    addFlags(cmd, spec.flags);
    if (spec.interspersed === false) cmd.passThroughOptions();
    const parsed = parseWith(cmd, rest.slice(consumed), spec.flags, useLine(spec), name, spec.interspersed === false);
    if (parsed.opts.help) {
      if (parsed.opts.deprecatedH) io.out('Flag shorthand -h has been deprecated, use --help\n');
      io.out(commandHelp(spec));
      return 0;
    }
    checkArgs(spec, parsed.args);
    // commander reads --no-trunc as the negation of "trunc": give it the pflag name (noTrunc) back.
    for (const f of spec.flags) {
      if (f.long.startsWith('no-') && f.type === undefined) {
        const pos = camel(f.long.slice(3));
        parsed.opts[camel(f.long)] = parsed.opts[pos] === false;
        delete parsed.opts[pos];
      }
    }
    for (const f of spec.flags) if (f.defaultTrue && parsed.opts[camel(f.long)] === undefined) parsed.opts[camel(f.long)] = true;

    mark('parsed');
    const { makeContext } = await import('./runtime.js');
    const ctx: CliContext = makeContext(globals, io);
    const mod = (await import(`./commands/${spec.impl[0]}.js`)) as Record<string, CommandFn>;
    const fn = mod[spec.impl[1]];
    if (!fn) throw new Error(`${spec.impl.join('.')} is missing`);
    mark('command-loaded');
    await fn(ctx, parsed.args, parsed.opts);
    mark('done');
    return 0;
  } catch (e) {
    return report(e, io.err);
  }
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** Prints an error the way docker's main does; returns the exit status. */
export function report(e: unknown, err: (s: string) => void): number {
  if (e instanceof CancelledError) return 0;
  if (e instanceof StatusError) {
    if (e.message !== '') err(`${e.message}\n`);
    return e.status === 0 ? 1 : e.status;
  }
  const msg = e instanceof Error ? e.message : String(e);
  const daemon = typeof e === 'object' && e !== null && (e as { fromDaemon?: boolean }).fromDaemon === true;
  err(`${daemon ? 'Error response from daemon: ' : ''}${msg}\n`);
  return 1;
}
