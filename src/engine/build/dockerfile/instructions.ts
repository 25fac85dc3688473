/**
 * The Dockerfile parser, stage two: nodes → typed instructions grouped into build stages. Flags are checked
 * per instruction; values that need variable substitution stay raw (the builder expands them with the stage's
 * environment through shell-lex.ts).
 */
import { DockerfileParseError, parseDockerfile, type Directives, type Heredoc, type Node } from './parser.js';
import { parseRunMount } from './run-mounts.js';
import { parseGoDuration as goParseDuration } from '../../../lib/go.js';

interface Base { node: Node }

export interface FromInstruction extends Base { kind: 'from'; image: string; stageName?: string; platform?: string }
/** RUN/CMD/ENTRYPOINT: exec form (json) or one shell string that the SHELL prepends. */
export interface CommandInstruction extends Base {
  kind: 'run' | 'cmd' | 'entrypoint';
  args: string[];
  shellForm: boolean;
  /** RUN --mount values as written (checked by run-mounts.ts; substituted and parsed again at build time). */
  mounts: string[];
  /** RUN --network: default | none | host. */
  network?: string;
  /** RUN --security: sandbox (the only one without an entitlement). */
  security?: string;
}
export interface CopyInstruction extends Base {
  kind: 'copy' | 'add';
  sources: string[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** COPY --parents: the sources' parent directories are kept (up to a `/./` pivot). */
  parents: boolean;
  /** --exclude patterns (.dockerignore syntax), matched below each source. */
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  heredocs: Heredoc[];
}
export interface KeyValueInstruction extends Base { kind: 'env' | 'label'; pairs: string[] }
export interface ArgInstruction extends Base { kind: 'arg'; args: { key: string; value?: string }[] }
export interface WordsInstruction extends Base { kind: 'expose' | 'volume'; words: string[] }
export interface StringInstruction extends Base { kind: 'workdir' | 'user' | 'stopsignal' | 'maintainer'; value: string }
export interface ShellInstruction extends Base { kind: 'shell'; shell: string[] }
export interface OnbuildInstruction extends Base { kind: 'onbuild'; expression: string }
export interface HealthcheckInstruction extends Base {
  kind: 'healthcheck';
  /** ["NONE"] | ["CMD", …] | ["CMD-SHELL", "…"] */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export type Instruction = FromInstruction | CommandInstruction | CopyInstruction | KeyValueInstruction | ArgInstruction
  | WordsInstruction | StringInstruction | ShellInstruction | OnbuildInstruction | HealthcheckInstruction;

export interface Stage {
  index: number;
  name?: string;
  from: FromInstruction;
  commands: Instruction[];
}

export interface Dockerfile {
  directives: Directives;
  /** ARGs before the first FROM: usable in FROM lines. */
  metaArgs: ArgInstruction[];
  stages: Stage[];
  warnings: string[];
  /** Every instruction in file order (for "Step N/M"). */
  all: Instruction[];
}

const ALLOWED_FLAGS: Record<string, string[]> = {
  from: ['platform'],
  copy: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  add: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  run: ['mount', 'network', 'security'],
  healthcheck: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

function parseFlags(node: Node): Map<string, string[]> {
  const allowed = ALLOWED_FLAGS[node.cmd] ?? [];
  const out = new Map<string, string[]>();
  for (const f of node.flags) {
    const m = /^--([A-Za-z0-9-]+)(?:=(.*))?$/s.exec(f)!;
    const name = m[1]!;
    if (!allowed.includes(name)) throw new DockerfileParseError(node.startLine, `Unknown flag: ${name}`);
    let v = m[2] ?? 'true';
    if (/^(".*"|'.*')$/s.test(v)) v = v.slice(1, -1);
    out.set(name, [...(out.get(name) ?? []), v]);
  }
  return out;
}

/** Go's time.ParseDuration (lib/go.ts), in nanoseconds (docker stores health durations as ns); a bad one fails the line. */
export function parseGoDuration(s: string, line = 0): number {
  try {
    return goParseDuration(s);
  } catch (e) {
    throw new DockerfileParseError(line, (e as Error).message);
  }
}

function one(flags: Map<string, string[]>, name: string): string | undefined {
  const v = flags.get(name);
  return v ? v[v.length - 1] : undefined;
}

function toInstruction(node: Node): Instruction {
  const flags = parseFlags(node);
  switch (node.cmd) {
    case 'from':
      return { kind: 'from', node, image: node.args[0]!, stageName: node.args.length === 3 ? node.args[2]!.toLowerCase() : undefined, platform: one(flags, 'platform') };
    case 'run': case 'cmd': case 'entrypoint': {
      const mounts = flags.get('mount') ?? [];
      for (const m of mounts) {
        try { parseRunMount(m, { deferVars: true }); } catch (e) { throw new DockerfileParseError(node.startLine, `invalid --mount=${m}: ${(e as Error).message}`); }
      }
      const network = one(flags, 'network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
        throw new DockerfileParseError(node.startLine, `unsupported network mode "${network}" (RUN --network takes default, none or host)`);
      }
      const security = one(flags, 'security');
      if (security !== undefined && security !== 'sandbox') {
        throw new DockerfileParseError(node.startLine, security === 'insecure'
          ? 'RUN --security=insecure needs the security.insecure entitlement, which this builder does not grant'
          : `unsupported security mode "${security}" (RUN --security takes sandbox)`);
      }
      return {
        kind: node.cmd, node, args: node.args, shellForm: !node.json, mounts,
        ...(network !== undefined ? { network } : {}), ...(security !== undefined ? { security } : {}),
      };
    }
    case 'copy': case 'add': {
      const parts = [...node.args];
      const dest = parts.pop() ?? '';
      const flag = (n: string) => { const v = one(flags, n); return v !== undefined && v !== 'false'; };
      const checksum = one(flags, 'checksum');
      if (checksum !== undefined && !/^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/.test(checksum)) {
        throw new DockerfileParseError(node.startLine, `invalid checksum digest format "${checksum}" (want sha256:<64 hex digits>)`);
      }
      const exclude = flags.get('exclude') ?? [];
      if (exclude.some((e) => e === '')) throw new DockerfileParseError(node.startLine, '--exclude needs a pattern');
      return {
        kind: node.cmd, node, sources: parts, dest, from: one(flags, 'from'), chown: one(flags, 'chown'), chmod: one(flags, 'chmod'),
        link: flag('link'), parents: flag('parents'), exclude, checksum, keepGitDir: flag('keep-git-dir'), heredocs: node.heredocs,
      };
    }
    case 'env': case 'label':
      return { kind: node.cmd, node, pairs: node.args };
    case 'arg':
      return {
        kind: 'arg', node, args: node.args.map((a) => {
          const eq = a.indexOf('=');
          return eq < 0 ? { key: a } : { key: a.slice(0, eq), value: a.slice(eq + 1) };
        }),
      };
    case 'expose': case 'volume':
      return { kind: node.cmd, node, words: node.args };
    case 'workdir': case 'user': case 'stopsignal': case 'maintainer':
      return { kind: node.cmd, node, value: node.args[0]! };
    case 'shell':
      if (node.args.length === 0) throw new DockerfileParseError(node.startLine, 'SHELL requires at least one argument');
      return { kind: 'shell', node, shell: node.args };
    case 'onbuild':
      return { kind: 'onbuild', node, expression: node.args[0]! };
    case 'healthcheck': {
      const h: HealthcheckInstruction = { kind: 'healthcheck', node, test: node.args };
      if (node.args[0] === 'NONE') {
        if (flags.size) throw new DockerfileParseError(node.startLine, 'HEALTHCHECK NONE takes no arguments');
        return h;
      }
      const dur = (n: string) => { const v = one(flags, n); return v === undefined ? undefined : parseGoDuration(v, node.startLine); };
      h.interval = dur('interval');
      h.timeout = dur('timeout');
      h.startPeriod = dur('start-period');
      h.startInterval = dur('start-interval');
      const r = one(flags, 'retries');
      if (r !== undefined) {
        const n = Number(r);
        if (!Number.isInteger(n)) throw new DockerfileParseError(node.startLine, `strconv.ParseInt: parsing "${r}": invalid syntax`);
        if (n < 1) throw new DockerfileParseError(node.startLine, '--retries cannot be less than 1');
        h.retries = n;
      }
      return h;
    }
  }
  throw new DockerfileParseError(node.startLine, `unknown instruction: ${node.cmd.toUpperCase()}`);
}

/** Parses a whole Dockerfile into stages. Everything is checked before anything runs. */
export function parseInstructions(text: string): Dockerfile {
  const { directives, nodes, warnings } = parseDockerfile(text);
  const metaArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const all: Instruction[] = [];
  const names = new Set<string>();
  for (const node of nodes) {
    const ins = toInstruction(node);
    all.push(ins);
    if (ins.kind === 'from') {
      if (ins.stageName !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(ins.stageName)) {
          throw new DockerfileParseError(node.startLine, `invalid name for build stage: "${ins.stageName}", name can't start with a number or contain symbols`);
        }
        if (names.has(ins.stageName)) throw new DockerfileParseError(node.startLine, `duplicate name ${ins.stageName}`);
        names.add(ins.stageName);
      }
      stages.push({ index: stages.length, name: ins.stageName, from: ins, commands: [] });
      continue;
    }
    const cur = stages[stages.length - 1];
    if (!cur) {
      if (ins.kind === 'arg') { metaArgs.push(ins); continue; }
      throw new DockerfileParseError(node.startLine, 'no build stage in current context');
    }
    cur.commands.push(ins);
  }
  if (stages.length === 0) throw new DockerfileParseError(nodes[nodes.length - 1]!.endLine, 'no build stage in current context');
  return { directives, metaArgs, stages, warnings, all };
}
