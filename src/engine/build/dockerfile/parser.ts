/**
 * The Dockerfile parser, stage one: text → logical lines ("nodes"). Handles parser directives (`# syntax=`,
 * `# escape=`), comments, line continuation with the escape character, heredocs (`<<EOF`, `<<-EOF`,
 * quoted delimiters) for RUN/COPY/ADD, leading `--flags`, and the argument shapes of each instruction
 * (exec/JSON form vs shell form, name=value pairs). Substitution of variables happens later, at build time,
 * with the environment of the stage (see shell-lex.ts); this stage only keeps quoting intact.
 *
 * Errors name the line as docker does: `dockerfile parse error line 2: unknown instruction: RUNN`.
 */
import { InvalidParameterError } from '../../../lib/errors.js';

export interface Heredoc {
  name: string;
  content: string;
  /** Quoted delimiter: no substitution in the content. */
  quoted: boolean;
  stripTabs: boolean;
}

export interface Node {
  /** Lower-case instruction keyword. */
  cmd: string;
  /** The logical line as written, continuations joined — what "Step N/M : …" prints. */
  original: string;
  startLine: number;
  endLine: number;
  /** Leading `--name[=value]` flags, as written. */
  flags: string[];
  /** Arguments after the flags, per the instruction's shape (see argument kinds below). */
  args: string[];
  /** The arguments came in JSON (exec) form. */
  json: boolean;
  heredocs: Heredoc[];
  /** For ONBUILD: the wrapped instruction. */
  sub?: Node;
}

export interface Directives {
  escape: string;
  syntax?: string;
  check?: string;
}

export interface ParseResult {
  directives: Directives;
  nodes: Node[];
  warnings: string[];
}

export class DockerfileParseError extends InvalidParameterError {
  constructor(readonly line: number, message: string) {
    super(`dockerfile parse error line ${line}: ${message}`);
  }
}

const KNOWN = new Set(['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label',
  'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir']);
const HEREDOC_CMDS = new Set(['run', 'copy', 'add']);
const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/;
const HEREDOC_RE = /<<(-?)\s*(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;

function parseDirectives(lines: string[]): { directives: Directives; next: number } {
  const directives: Directives = { escape: '\\' };
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (seen.has(key)) throw new DockerfileParseError(i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    const val = m[2]!;
    if (key === 'escape') {
      if (val !== '\\' && val !== '`') throw new DockerfileParseError(i + 1, `invalid escape token '${val}' does not match ` + '` or \\');
      directives.escape = val;
    } else if (key === 'syntax') directives.syntax = val;
    else directives.check = val;
  }
  return { directives, next: i };
}

/** Splits on whitespace outside quotes, keeping quotes and escapes in the words (docker's parseWords). */
export function splitWordsKeepQuotes(s: string, escape: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === escape && i + 1 < s.length) {
      cur += ch + s[i + 1]!;
      i++;
      continue;
    }
    if (quote) {
      if (ch === quote) quote = null;
      cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") { quote = ch; cur += ch; continue; }
    if (/\s/.test(ch)) {
      if (cur) { words.push(cur); cur = ''; }
      continue;
    }
    cur += ch;
  }
  if (cur) words.push(cur);
  return words;
}

/** A JSON array of strings, or null when the text is not one (then it is shell form). */
function tryJsonArray(s: string): string[] | null {
  const t = s.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return null;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch { /* shell form */ }
  return null;
}

function extractFlags(rest: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let r = rest;
  for (;;) {
    const m = /^--([A-Za-z0-9-]+)(=("[^"]*"|'[^']*'|\S*))?(\s+|$)/.exec(r);
    if (!m) break;
    flags.push(m[0].trim());
    r = r.slice(m[0].length);
  }
  return { flags, rest: r };
}

function nameValArgs(cmd: string, rest: string, line: number, escape: string): string[] {
  const words = splitWordsKeepQuotes(rest, escape);
  if (words.length === 0) {
    if (cmd === 'env') throw new DockerfileParseError(line, 'ENV must have two arguments');
    if (cmd === 'label') throw new DockerfileParseError(line, 'LABEL must have two arguments');
    throw new DockerfileParseError(line, `${cmd.toUpperCase()} requires at least one argument`);
  }
  if (!words[0]!.includes('=')) {
    // Legacy "ENV key value with spaces" form: one pair, value is the rest of the line.
    const key = words[0]!;
    const value = rest.trim().slice(key.length).trim();
    if (cmd === 'arg') return [key];
    if (!value) throw new DockerfileParseError(line, `${cmd.toUpperCase()} must have two arguments`);
    return [`${key}=${value}`];
  }
  if (cmd !== 'arg') {
    for (const w of words) {
      if (!w.includes('=')) throw new DockerfileParseError(line, `Syntax error - can't find = in "${w}". Must be of the form: name=value`);
      if (w.startsWith('=')) throw new DockerfileParseError(line, `${cmd.toUpperCase()} names can not be blank`);
    }
  }
  return words;
}

function shapeArgs(node: Node, rest: string, escape: string): void {
  const { cmd, startLine: line } = node;
  switch (cmd) {
    case 'run': case 'cmd': case 'entrypoint': case 'shell': {
      const j = tryJsonArray(rest);
      if (j) { node.args = j; node.json = true; return; }
      if (cmd === 'shell') throw new DockerfileParseError(line, 'SHELL requires the arguments to be in JSON form');
      node.args = rest.trim() ? [rest.trim()] : [];
      if (cmd === 'run' && node.args.length === 0 && node.heredocs.length === 0) {
        throw new DockerfileParseError(line, 'RUN requires at least one argument');
      }
      return;
    }
    case 'copy': case 'add': case 'volume': {
      const j = tryJsonArray(rest);
      if (j) { node.args = j; node.json = true; }
      else node.args = splitWordsKeepQuotes(rest, escape);
      if (cmd === 'volume' && node.args.length === 0) throw new DockerfileParseError(line, 'VOLUME requires at least one argument');
      if (cmd !== 'volume' && node.args.length + node.heredocs.length < 2) {
        throw new DockerfileParseError(line, `${cmd.toUpperCase()} requires at least two arguments, but only one was provided. Destination could not be determined.`);
      }
      return;
    }
    case 'env': case 'label': case 'arg':
      node.args = nameValArgs(cmd, rest, line, escape);
      return;
    case 'expose': case 'from':
      node.args = splitWordsKeepQuotes(rest, escape);
      if (cmd === 'from' && node.args.length !== 1 && node.args.length !== 3) {
        throw new DockerfileParseError(line, 'FROM requires either one or three arguments');
      }
      if (cmd === 'from' && node.args.length === 3 && node.args[1]!.toLowerCase() !== 'as') {
        throw new DockerfileParseError(line, 'FROM requires either one or three arguments');
      }
      if (cmd === 'expose' && node.args.length === 0) throw new DockerfileParseError(line, 'EXPOSE requires at least one argument');
      return;
    case 'healthcheck': {
      const t = rest.trim();
      if (/^none$/i.test(t)) { node.args = ['NONE']; return; }
      const m = /^(\S+)\s*(.*)$/s.exec(t);
      if (!m || m[1]!.toUpperCase() !== 'CMD') {
        throw new DockerfileParseError(line, `Unknown type "${m?.[1]?.toUpperCase() ?? ''}" in HEALTHCHECK (try CMD)`);
      }
      const j = tryJsonArray(m[2]!);
      if (j) { node.args = ['CMD', ...j]; node.json = true; }
      else {
        if (!m[2]!.trim()) throw new DockerfileParseError(line, 'Missing command after HEALTHCHECK CMD');
        node.args = ['CMD-SHELL', m[2]!.trim()];
      }
      return;
    }
    case 'maintainer': case 'stopsignal': case 'user': case 'workdir': {
      const t = rest.trim();
      if (!t) throw new DockerfileParseError(line, `${cmd.toUpperCase()} requires exactly one argument`);
      node.args = [t];
      return;
    }
    default:
      node.args = rest.trim() ? [rest.trim()] : [];
  }
}

function makeNode(text: string, startLine: number, endLine: number, heredocs: Heredoc[], escape: string, inOnbuild = false): Node {
  const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(text);
  if (!m) throw new DockerfileParseError(startLine, 'empty instruction');
  const word = m[1]!;
  const cmd = word.toLowerCase();
  if (!KNOWN.has(cmd)) throw new DockerfileParseError(startLine, `unknown instruction: ${word.toUpperCase()}`);
  const node: Node = { cmd, original: text.trim(), startLine, endLine, flags: [], args: [], json: false, heredocs };
  if (cmd === 'onbuild') {
    if (inOnbuild) throw new DockerfileParseError(startLine, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    const inner = m[2]!.trim();
    if (!inner) throw new DockerfileParseError(startLine, 'ONBUILD requires at least one argument');
    const sub = makeNode(inner, startLine, endLine, heredocs, escape, true);
    if (sub.cmd === 'from' || sub.cmd === 'maintainer') {
      throw new DockerfileParseError(startLine, `${sub.cmd.toUpperCase()} isn't allowed as an ONBUILD trigger`);
    }
    node.sub = sub;
    node.args = [inner];
    return node;
  }
  const { flags, rest } = extractFlags(m[2]!);
  node.flags = flags;
  shapeArgs(node, rest, escape);
  return node;
}

export function parseDockerfile(text: string): ParseResult {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const { directives, next } = parseDirectives(lines);
  const escape = directives.escape;
  const contRe = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const nodes: Node[] = [];
  const warnings: string[] = [];
  let i = next;
  while (i < lines.length) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) { i++; continue; }
    const start = i + 1;
    let text = '';
    let line = raw.replace(/^\s+/, '');
    let end = start;
    for (;;) {
      if (contRe.test(line)) {
        text += line.replace(contRe, '');
        i++;
        // Continuation: skip comment lines and empty lines (docker warns about the latter).
        while (i < lines.length) {
          const t = lines[i]!.trim();
          if (t.startsWith('#')) { i++; continue; }
          if (t === '') { warnings.push(`[WARNING]: Empty continuation line found in: ${text.trim()}`); i++; continue; }
          break;
        }
        if (i >= lines.length) { end = lines.length; break; }
        line = lines[i]!;
        end = i + 1;
        continue;
      }
      text += line;
      end = i + 1;
      i++;
      break;
    }
    // Heredocs: the bodies follow the instruction line, each up to its delimiter line.
    const heredocs: Heredoc[] = [];
    const cmdWord = /^\s*(\S+)/.exec(text)?.[1]?.toLowerCase() ?? '';
    const target = cmdWord === 'onbuild' ? (/^\s*\S+\s+(\S+)/.exec(text)?.[1]?.toLowerCase() ?? '') : cmdWord;
    if (HEREDOC_CMDS.has(target) && text.includes('<<')) {
      for (const hm of text.matchAll(HEREDOC_RE)) {
        const stripTabs = hm[1] === '-';
        const name = hm[3]!;
        const body: string[] = [];
        let closed = false;
        while (i < lines.length) {
          const l = lines[i]!;
          i++;
          const cmp = stripTabs ? l.replace(/^\t+/, '') : l;
          if (cmp === name) { closed = true; break; }
          body.push(stripTabs ? cmp : l);
        }
        if (!closed) throw new DockerfileParseError(start, `unterminated heredoc ${name}`);
        end = i;
        heredocs.push({ name, content: body.length ? body.join('\n') + '\n' : '', quoted: hm[2] !== '', stripTabs });
      }
    }
    nodes.push(makeNode(text, start, end, heredocs, escape));
  }
  if (nodes.length === 0) throw new DockerfileParseError(0, 'file with no instructions');
  return { directives, nodes, warnings };
}
