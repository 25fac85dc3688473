/**
 * The one Dockerfile config evaluator: a config instruction (ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL,
 * SHELL, ONBUILD, HEALTHCHECK, CMD, ENTRYPOINT) applied to an image's container config, as dockerd 20.10's
 * dispatchers do. Pure: config + instruction + the variables words expand with → new config + the history text.
 * Used by the builder (each step) and by `commit -c` / `import -c` (`build/changes.ts`, dockerd's
 * BuildFromConfig). What touches files (WORKDIR's directory) stays with the builder.
 */
import { parseSignal } from '../../lib/signals.js';
import { posix } from 'node:path';
import { InvalidParameterError } from '../../lib/errors.js';
import type { ContainerConfig } from '../images/types.js';
import type {
  CommandInstruction, HealthcheckInstruction, Instruction, KeyValueInstruction, OnbuildInstruction, ShellInstruction,
  StringInstruction, WordsInstruction,
} from './dockerfile/instructions.js';
import { expandWord, expandWords } from './dockerfile/shell-lex.js';
import { goHealthcheck, goQuoteList } from './format.js';

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
/** dockerd's system.DefaultPathEnv("linux"): given at FROM to a stage whose base has no PATH. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type ConfigInstruction =
  | KeyValueInstruction
  | WordsInstruction
  | (StringInstruction & { kind: 'user' | 'workdir' | 'stopsignal' })
  | ShellInstruction
  | OnbuildInstruction
  | HealthcheckInstruction
  | (CommandInstruction & { kind: 'cmd' | 'entrypoint' });

const CONFIG_KINDS = new Set<Instruction['kind']>(['env', 'label', 'expose', 'volume', 'user', 'workdir', 'stopsignal', 'shell', 'onbuild', 'healthcheck', 'cmd', 'entrypoint']);

export function isConfigInstruction(ins: Instruction): ins is ConfigInstruction {
  return CONFIG_KINDS.has(ins.kind);
}

export interface EvalInput {
  /** Variables words expand with (the builder: declared ARGs, then ENV; commit/import: the config's Env). */
  vars: ReadonlyMap<string, string>;
  /** The Dockerfile's escape character. */
  escape?: string;
  /** CMD was set earlier in this stage (or these changes): a new ENTRYPOINT then keeps it. */
  cmdSet: boolean;
}

export interface EvalResult {
  config: ContainerConfig;
  /** The instruction as history and the cache key show it ("ENV a=b", "WORKDIR /x"). */
  history: string;
  cmdSet: boolean;
  /** A line the builder prints (HEALTHCHECK overriding an earlier one). */
  note?: string;
}

/** The environment a config's Env gives for substitution. */
export function envVars(env: readonly string[] | null | undefined, into = new Map<string, string>()): Map<string, string> {
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) into.set(e.slice(0, i), e.slice(i + 1));
  }
  return into;
}

/** The shell of shell-form commands. */
export function shellOf(config: ContainerConfig): string[] {
  return config.Shell?.length ? config.Shell : [...DEFAULT_SHELL];
}

/** Env with `PATH` added when the base gives none (dockerd's dispatchFrom). */
export function withDefaultPath(env: readonly string[] | null | undefined): string[] {
  const list = [...(env ?? [])];
  if (!list.some((e) => e.split('=')[0] === 'PATH')) list.push(`PATH=${DEFAULT_PATH}`);
  return list;
}

/** Applies one config instruction to a copy of `config`. */
export function applyConfigInstruction(config: ContainerConfig, ins: ConfigInstruction, input: EvalInput): EvalResult {
  const cfg: ContainerConfig = structuredClone(config);
  const ex = (w: string) => expandWord(w, input.vars, input.escape);
  const exWords = (w: string) => expandWords(w, input.vars, input.escape);
  const done = (history: string, extra: Partial<EvalResult> = {}): EvalResult => ({ config: cfg, history, cmdSet: input.cmdSet, ...extra });
  switch (ins.kind) {
    case 'env': case 'label': {
      const pairs = ins.pairs.map((p) => splitPair(p, ins.kind, ex));
      if (ins.kind === 'env') cfg.Env = setEnv(cfg.Env, pairs);
      else cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(pairs) };
      return done(`${ins.kind.toUpperCase()}${pairs.map(([k, v]) => ` ${k}=${v}`).join('')}`);
    }
    case 'expose': {
      const words = ins.words.flatMap(exWords);
      cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}), ...exposedPorts(words) };
      return done(`EXPOSE ${[...words].sort().join(' ')}`);
    }
    case 'volume': {
      const vols = ins.node.json ? ins.words.map(ex) : ins.words.flatMap(exWords);
      const v = { ...(cfg.Volumes ?? {}) };
      for (const x of vols) {
        if (x.trim() === '') throw new InvalidParameterError('VOLUME specified can not be an empty string');
        v[x] = {};
      }
      cfg.Volumes = v;
      return done(`VOLUME [${vols.join(' ')}]`);
    }
    case 'user':
      cfg.User = ex(ins.value);
      return done(`USER ${cfg.User}`);
    case 'workdir':
      cfg.WorkingDir = normalizeWorkdir(cfg.WorkingDir ?? '', ex(ins.value));
      return done(`WORKDIR ${cfg.WorkingDir}`);
    case 'stopsignal': {
      const s = ex(ins.value);
      checkSignal(s);
      cfg.StopSignal = s;
      return done(`STOPSIGNAL ${s}`);
    }
    case 'shell':
      cfg.Shell = [...ins.shell];
      // fmt %v of a slice (unquoted), unlike CMD/ENTRYPOINT's %q
      return done(`SHELL [${ins.shell.join(' ')}]`);
    case 'onbuild':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.expression];
      return done(`ONBUILD ${ins.expression}`);
    case 'healthcheck':
      return healthcheck(cfg, ins, input);
    case 'cmd': case 'entrypoint':
      return commandLine(cfg, ins, input);
  }
}

function splitPair(p: string, kind: string, ex: (w: string) => string): [string, string] {
  const i = p.indexOf('=');
  if (i < 0) throw new InvalidParameterError(`${kind.toUpperCase()} requires key=value pairs`);
  return [ex(p.slice(0, i)), ex(p.slice(i + 1))];
}

function setEnv(env: readonly string[] | null | undefined, pairs: [string, string][]): string[] {
  const list = [...(env ?? [])];
  for (const [k, v] of pairs) {
    const j = list.findIndex((x) => x.split('=')[0] === k);
    if (j >= 0) list[j] = `${k}=${v}`;
    else list.push(`${k}=${v}`);
  }
  return list;
}

/** nat.ParsePortSpecs of EXPOSE's words: ranges expand to one port each, the protocol lower-cased (tcp default). */
function exposedPorts(words: string[]): Record<string, object> {
  const ports: Record<string, object> = {};
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) throw new InvalidParameterError(`invalid containerPort: ${w}`);
    const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
    for (let p = lo; p <= hi; p++) ports[`${p}/${(m[3] ?? 'tcp').toLowerCase()}`] = {};
  }
  return ports;
}

/**
 * dockerd's normalizeWorkdir (unix): an absolute WORKDIR is kept as written (`/root/` keeps its slash); a relative
 * one is joined to the current one and cleaned (Go's filepath.Join).
 */
export function normalizeWorkdir(current: string, requested: string): string {
  if (requested === '') throw new InvalidParameterError('cannot normalize nothing');
  if (requested.startsWith('/')) return requested;
  const joined = posix.normalize(posix.join('/', current || '/', requested));
  return joined.length > 1 && joined.endsWith('/') ? joined.slice(0, -1) : joined;
}

/** dockerd's signal.ParseSignal as a check: a non-zero number, or a Linux signal name with or without SIG, any case. */
export function checkSignal(s: string): void {
  parseSignal(s);
}

function healthcheck(cfg: ContainerConfig, ins: HealthcheckInstruction, input: EvalInput): EvalResult {
  const old = cfg.Healthcheck?.Test;
  const note = old && old.length && old[0] !== 'NONE' ? `Note: overriding previous HEALTHCHECK: [${old.join(' ')}]\n` : undefined;
  if (ins.test[0] === 'NONE') cfg.Healthcheck = { Test: ['NONE'] };
  else {
    const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: [...ins.test] };
    if (ins.interval) h.Interval = ins.interval;
    if (ins.timeout) h.Timeout = ins.timeout;
    if (ins.startPeriod) h.StartPeriod = ins.startPeriod;
    if (ins.retries) h.Retries = ins.retries;
    cfg.Healthcheck = h;
  }
  return { config: cfg, history: `HEALTHCHECK ${goHealthcheck(cfg.Healthcheck)}`, cmdSet: input.cmdSet, ...(note ? { note } : {}) };
}

/**
 * CMD / ENTRYPOINT (dockerd's resolveCmdLine on Linux): shell form runs through the config's shell, ArgsEscaped is
 * cleared; a new ENTRYPOINT drops an inherited CMD unless CMD was set before it in this stage.
 */
function commandLine(cfg: ContainerConfig, ins: CommandInstruction & { kind: 'cmd' | 'entrypoint' }, input: EvalInput): EvalResult {
  const line = ins.shellForm ? ins.args.join(' ') : '';
  const cmd = ins.shellForm ? [...shellOf(cfg), line] : [...ins.args];
  if (cmd.length) delete cfg.ArgsEscaped;
  let cmdSet = input.cmdSet;
  if (ins.kind === 'cmd') {
    cfg.Cmd = cmd;
    cmdSet = true;
  } else {
    cfg.Entrypoint = ins.shellForm && line === '' ? null : cmd;
    if (!cmdSet) cfg.Cmd = null;
  }
  return { config: cfg, history: `${ins.kind.toUpperCase()} ${goQuoteList(cmd)}`, cmdSet };
}
