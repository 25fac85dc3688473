/**
 * The subset of Go's text/template that docker's --format uses, with docker's template functions
 * (cli/templates) and its "table" directive. Data is plain JS: objects behave like Go maps (missing
 * key → "<no value>", printed as map[k:v] with sorted keys), arrays like slices ([a b]), functions
 * found as fields are called like methods.
 */
import { InvalidParameterError } from './errors.js';
import { goFormatFloat, formatDockerTime } from './units.js';
import { TabWriter } from './tabwriter.js';
import { goQuote } from './go.js';

export type TemplateFunc = (...a: unknown[]) => unknown;

export interface CompileOptions {
  /**
   * Plain Go template.Parse, as `docker inspect --format` does. By default the source first goes through
   * docker's formatter preFormat: a leading "table" is dropped, spaces are trimmed, and the two-character
   * sequences `\t` and `\n` become a tab and a newline.
   */
  raw?: boolean;
  /**
   * Whether the json function escapes <, > and & as \u003c… (default true: what docker prints for
   * `{{json .}}` on list rows, whose MarshalJSON uses json.Marshal). docker inspect's `{{json .Config}}`
   * goes through an encoder with SetEscapeHTML(false): pass false there.
   */
  jsonEscapeHTML?: boolean;
}

// ---------------------------------------------------------------------------------------------
// docker's "table" directive
// ---------------------------------------------------------------------------------------------

const TABLE_KEY = 'table';

/** docker's Format.IsTable: the format starts with "table". */
export function isTableFormat(s: string): boolean {
  return s.startsWith(TABLE_KEY);
}

/** Drops a leading "table" and the spaces around the rest. */
export function stripTablePrefix(s: string): string {
  return isTableFormat(s) ? s.slice(TABLE_KEY.length).replace(/^ +| +$/g, '') : s;
}

/** docker's formatter preFormat: strip "table", trim spaces, turn `\t` / `\n` escapes into tab / newline. */
export function preFormat(s: string): string {
  let f = isTableFormat(s) ? s.slice(TABLE_KEY.length) : s;
  f = f.replace(/^ +| +$/g, '');
  return f.replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'));
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

type ItemType =
  | 'text' | 'left' | 'right' | 'space' | 'ident' | 'field' | 'var' | 'dot' | 'string' | 'rawstring'
  | 'char' | 'charconst' | 'number' | 'bool' | 'nil' | 'pipe' | 'lparen' | 'rparen' | 'declare'
  | 'assign' | 'keyword' | 'eof' | 'error';

interface Item { t: ItemType; v: string; pos: number; line: number }

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}
function isAlnum(c: string | undefined): boolean {
  return c !== undefined && /^[\p{L}\p{Nd}_]$/u.test(c);
}

function lex(src: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  // line numbers, counted incrementally (items are emitted in increasing position order)
  let linePos = 0;
  let lineNo = 1;
  const lineAt = (p: number): number => {
    if (p < linePos) { linePos = 0; lineNo = 1; }
    for (; linePos < p && linePos < src.length; linePos++) if (src.charCodeAt(linePos) === 10) lineNo++;
    return lineNo;
  };
  const emit = (t: ItemType, v: string, p: number): void => { items.push({ t, v, pos: p, line: lineAt(p) }); };
  const fail = (msg: string, p: number): Item[] => { emit('error', msg, p); return items; };

  while (pos <= src.length) {
    // text up to the next "{{"
    let next = src.indexOf('{{', pos);
    if (next < 0) next = src.length;
    let text = src.slice(pos, next);
    let trimRight = false;
    if (next < src.length && src[next + 2] === '-' && isSpace(src[next + 3])) trimRight = true;
    if (trimRight) text = text.replace(/[ \t\r\n]+$/, '');
    if (text.length > 0) emit('text', text, pos);
    if (next >= src.length) break;
    // action
    const leftPos = next;
    pos = next + 2;
    if (trimRight) pos += 2;
    // comment?
    if (src.startsWith('/*', pos)) {
      const end = src.indexOf('*/', pos + 2);
      if (end < 0) return fail('unclosed comment', pos);
      let after = end + 2;
      let trimLeft = false;
      if (src.startsWith(' -}}', after) || src.startsWith('\t-}}', after) || src.startsWith('\n-}}', after) || src.startsWith('\r-}}', after)) {
        trimLeft = true;
        after += 4;
      } else if (src.startsWith('}}', after)) {
        after += 2;
      } else {
        return fail('comment ends before closing delimiter', pos);
      }
      pos = after;
      if (trimLeft) while (pos < src.length && isSpace(src[pos])) pos++;
      continue;
    }
    emit('left', '{{', leftPos);
    let parenDepth = 0;
    // inside action
    for (;;) {
      // right delimiter, possibly with a trim marker
      if (isSpace(src[pos]) && src.startsWith('-}}', pos + 1)) {
        if (parenDepth > 0) return fail('unclosed left paren', pos);
        emit('right', '}}', pos + 1);
        pos += 4;
        while (pos < src.length && isSpace(src[pos])) pos++;
        break;
      }
      if (src.startsWith('}}', pos)) {
        if (parenDepth > 0) return fail('unclosed left paren', pos);
        emit('right', '}}', pos);
        pos += 2;
        break;
      }
      const c = src[pos];
      if (c === undefined) return fail('unclosed action', pos);
      const start = pos;
      if (isSpace(c)) {
        // stop before a space that starts a " -}}" trim marker
        while (isSpace(src[pos]) && !src.startsWith('-}}', pos + 1)) pos++;
        if (pos > start) emit('space', src.slice(start, pos), start);
        continue;
      }
      if (c === '=') { emit('assign', '=', pos); pos++; continue; }
      if (c === ':') {
        if (src[pos + 1] !== '=') return fail('expected :=', pos);
        emit('declare', ':=', pos); pos += 2; continue;
      }
      if (c === '|') { emit('pipe', '|', pos); pos++; continue; }
      if (c === '"' || c === "'") {
        // a quoted string or a character constant: up to the same quote, backslash escapes skipped
        pos++;
        for (;;) {
          const ch = src[pos];
          if (ch === undefined || ch === '\n') return fail(c === '"' ? 'unterminated quoted string' : 'unterminated character constant', start);
          if (ch === '\\') { pos += 2; continue; }
          pos++;
          if (ch === c) break;
        }
        emit(c === '"' ? 'string' : 'charconst', src.slice(start, pos), start);
        continue;
      }
      if (c === '`') {
        const end = src.indexOf('`', pos + 1);
        if (end < 0) return fail('unterminated raw quoted string', start);
        pos = end + 1;
        emit('rawstring', src.slice(start, pos), start);
        continue;
      }
      if (c === '$') {
        pos++;
        while (isAlnum(src[pos])) pos++;
        emit('var', src.slice(start, pos), start);
        continue;
      }
      if (c === '.') {
        if (/[0-9]/.test(src[pos + 1] ?? '')) {
          pos = scanNumber(src, pos);
          emit('number', src.slice(start, pos), start);
          continue;
        }
        pos++;
        if (isAlnum(src[pos])) {
          while (isAlnum(src[pos])) pos++;
          emit('field', src.slice(start, pos), start);
        } else {
          emit('dot', '.', start);
        }
        continue;
      }
      if (c === '+' || c === '-' || /[0-9]/.test(c)) {
        pos = scanNumber(src, pos);
        const num = src.slice(start, pos);
        if (isAlnum(src[pos]) || src[pos] === '.') return fail(`bad number syntax: ${JSON.stringify(src.slice(start, pos + 1))}`, start);
        emit('number', num, start);
        continue;
      }
      if (isAlnum(c)) {
        while (isAlnum(src[pos])) pos++;
        const word = src.slice(start, pos);
        if (KEYWORDS.has(word)) emit('keyword', word, start);
        else if (word === 'true' || word === 'false') emit('bool', word, start);
        else if (word === 'nil') emit('nil', word, start);
        else emit('ident', word, start);
        continue;
      }
      if (c === '(') { parenDepth++; emit('lparen', '(', pos); pos++; continue; }
      if (c === ')') {
        parenDepth--;
        if (parenDepth < 0) return fail(`unexpected right paren`, pos);
        emit('rparen', ')', pos); pos++; continue;
      }
      const code = c.codePointAt(0)!;
      if (code < 0x80 && code >= 0x20) { emit('char', c, pos); pos++; continue; }
      return fail(`unrecognized character in action: U+${code.toString(16).toUpperCase().padStart(4, '0')}`, pos);
    }
  }
  emit('eof', '', src.length);
  return items;
}

function scanNumber(src: string, pos: number): number {
  if (src[pos] === '+' || src[pos] === '-') pos++;
  let digits = '0123456789_';
  if (src[pos] === '0' && /[xXoObB]/.test(src[pos + 1] ?? '')) {
    const k = src[pos + 1]!.toLowerCase();
    digits = k === 'x' ? '0123456789abcdefABCDEF_' : k === 'o' ? '01234567_' : '01_';
    pos += 2;
  }
  while (pos < src.length && digits.includes(src[pos]!)) pos++;
  if (src[pos] === '.') { pos++; while (pos < src.length && digits.includes(src[pos]!)) pos++; }
  if (digits.length === 11 && /[eE]/.test(src[pos] ?? '')) {
    pos++;
    if (src[pos] === '+' || src[pos] === '-') pos++;
    while (/[0-9_]/.test(src[pos] ?? '')) pos++;
  }
  if (digits.length > 11 && /[pP]/.test(src[pos] ?? '')) {
    pos++;
    if (src[pos] === '+' || src[pos] === '-') pos++;
    while (/[0-9_]/.test(src[pos] ?? '')) pos++;
  }
  return pos;
}

// ---------------------------------------------------------------------------------------------
// Parse tree
// ---------------------------------------------------------------------------------------------

type Arg =
  | { k: 'field'; idents: string[]; pos: number; src: string }
  | { k: 'var'; name: string; idents: string[]; pos: number; src: string }
  | { k: 'dot'; pos: number; src: string }
  | { k: 'nil'; pos: number; src: string }
  | { k: 'bool'; v: boolean; pos: number; src: string }
  | { k: 'num'; v: number; pos: number; src: string }
  | { k: 'str'; v: string; pos: number; src: string }
  | { k: 'ident'; name: string; pos: number; src: string }
  | { k: 'pipe'; pipe: Pipe; pos: number; src: string }
  | { k: 'chain'; node: Arg; idents: string[]; pos: number; src: string };

interface Cmd { args: Arg[]; pos: number; src: string }
interface Pipe { decl: string[]; isAssign: boolean; cmds: Cmd[]; pos: number; src: string }

type Node =
  | { k: 'text'; text: string }
  | { k: 'action'; pipe: Pipe; pos: number }
  | { k: 'if' | 'with'; pipe: Pipe; list: Node[]; elseList: Node[] | null; pos: number }
  | { k: 'range'; pipe: Pipe; list: Node[]; elseList: Node[] | null; pos: number }
  | { k: 'break' | 'continue'; pos: number };

class TemplateParseError extends InvalidParameterError {}

class Parser {
  private i = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;
  constructor(private readonly items: Item[], private readonly src: string, private readonly funcs: Set<string>) {}

  private next(): Item { return this.items[this.i++] ?? this.items[this.items.length - 1]!; }
  private backup(n = 1): void { this.i -= n; }
  private peek(): Item { return this.items[this.i] ?? this.items[this.items.length - 1]!; }
  private nextNonSpace(): Item {
    let t = this.next();
    while (t.t === 'space') t = this.next();
    return t;
  }
  private peekNonSpace(): Item {
    const save = this.i;
    const t = this.nextNonSpace();
    this.i = save;
    return t;
  }

  errorf(msg: string, item?: Item): never {
    const line = item ? item.line : this.peek().line;
    throw new TemplateParseError(`template: :${line}: ${msg}`);
  }

  private describe(it: Item): string {
    switch (it.t) {
      case 'eof': return 'EOF';
      case 'error': return it.v;
      case 'keyword': return `<${it.v}>`;
      default: {
        if (it.v.length > 10) return `${JSON.stringify(it.v.slice(0, 10))}...`;
        return JSON.stringify(it.v);
      }
    }
  }

  private unexpected(it: Item, context: string): never {
    if (it.t === 'error') this.errorf(it.v, it);
    this.errorf(`unexpected ${this.describe(it)} in ${context}`, it);
  }

  parse(): Node[] {
    const { list, end } = this.itemList(true);
    if (end) this.errorf(`unexpected ${end.k === 'else' ? '{{else}}' : '{{end}}'}`, end.item);
    return list;
  }

  /** Parses nodes until EOF (top level) or {{end}} / {{else}}. */
  private itemList(top: boolean): { list: Node[]; end: { k: 'end' | 'else'; item: Item } | null } {
    const list: Node[] = [];
    for (;;) {
      const t = this.next();
      if (t.t === 'eof') {
        if (!top) this.errorf('unexpected EOF', t);
        return { list, end: null };
      }
      if (t.t === 'error') this.errorf(t.v, t);
      if (t.t === 'text') { list.push({ k: 'text', text: t.v }); continue; }
      if (t.t === 'left') {
        const r = this.action(t);
        if (r.k === 'node') { list.push(r.node); continue; }
        return { list, end: { k: r.k, item: r.item } };
      }
      this.unexpected(t, 'input');
    }
  }

  private action(left: Item): { k: 'node'; node: Node } | { k: 'end' | 'else'; item: Item } {
    const t = this.nextNonSpace();
    if (t.t === 'keyword') {
      switch (t.v) {
        case 'end': this.expectRight('end'); return { k: 'end', item: t };
        case 'else': return { k: 'else', item: t };
        case 'if': return { k: 'node', node: this.control('if', t) };
        case 'with': return { k: 'node', node: this.control('with', t) };
        case 'range': return { k: 'node', node: this.control('range', t) };
        case 'break':
        case 'continue': {
          if (this.rangeDepth === 0) this.errorf(`{{${t.v}}} outside {{range}}`, t);
          this.expectRight(t.v);
          return { k: 'node', node: { k: t.v, pos: t.pos } };
        }
        default: this.errorf(`{{${t.v}}} is not supported`, t);
      }
    }
    this.backup();
    void left;
    const pipe = this.pipeline('command', 'right');
    return { k: 'node', node: { k: 'action', pipe, pos: pipe.pos } };
  }

  private expectRight(context: string): void {
    const t = this.nextNonSpace();
    if (t.t !== 'right') this.unexpected(t, context);
  }

  private control(kind: 'if' | 'with' | 'range', kw: Item): Node {
    const mark = this.vars.length;
    const pipe = this.pipeline(kind, 'right');
    if (kind === 'range') this.rangeDepth++;
    let { list, end } = this.itemList(false);
    if (kind === 'range') this.rangeDepth--;
    let elseList: Node[] | null = null;
    if (end && end.k === 'else') {
      const p = this.peekNonSpace();
      if (kind !== 'range' && p.t === 'keyword' && (p.v === 'if' || p.v === 'with')) {
        // {{else if x}} / {{else with x}}: a nested control sharing our {{end}}
        this.nextNonSpace();
        elseList = [this.control(p.v as 'if' | 'with', p)];
      } else {
        this.expectRight('else');
        const r = this.itemList(false);
        if (!r.end || r.end.k !== 'end') this.errorf('expected end; found {{else}}', r.end?.item);
        elseList = r.list;
      }
    }
    void list;
    this.vars.length = mark;
    return { k: kind, pipe, list, elseList, pos: kw.pos } as Node;
  }

  private pipeline(context: string, end: 'right' | 'rparen'): Pipe {
    const startItem = this.peekNonSpace();
    const pipe: Pipe = { decl: [], isAssign: false, cmds: [], pos: startItem.pos, src: '' };
    // declarations
    for (;;) {
      const v = this.peekNonSpace();
      if (v.t !== 'var') break;
      const save = this.i;
      this.nextNonSpace();
      const n = this.peekNonSpace();
      if (n.t === 'assign' || n.t === 'declare') {
        this.nextNonSpace();
        pipe.isAssign = n.t === 'assign';
        if (pipe.isAssign && !this.vars.includes(v.v)) this.errorf(`undefined variable "${v.v}"`, v);
        pipe.decl.push(v.v);
        this.vars.push(v.v);
        break;
      }
      if (n.t === 'char' && n.v === ',') {
        this.nextNonSpace();
        pipe.decl.push(v.v);
        this.vars.push(v.v);
        if (context === 'range' && pipe.decl.length < 2) {
          const p = this.peekNonSpace();
          if (p.t === 'var' || p.t === 'right' || p.t === 'rparen') continue;
          this.errorf('range can only initialize variables', p);
        }
        this.errorf(`too many declarations in ${context}`, n);
      }
      this.i = save;
      break;
    }
    for (;;) {
      const t = this.nextNonSpace();
      if (t.t === (end === 'right' ? 'right' : 'rparen')) {
        this.checkPipeline(pipe, context, t);
        pipe.src = this.src.slice(pipe.pos, t.pos).trim();
        if (end === 'rparen') this.backup();
        return pipe;
      }
      switch (t.t) {
        case 'bool': case 'charconst': case 'dot': case 'field': case 'ident': case 'number': case 'nil':
        case 'rawstring': case 'string': case 'var': case 'lparen':
          this.backup();
          pipe.cmds.push(this.command());
          break;
        default:
          this.unexpected(t, context);
      }
    }
  }

  private checkPipeline(pipe: Pipe, context: string, at: Item): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`, at);
    pipe.cmds.slice(1).forEach((c, i) => {
      const k = c.args[0]!.k;
      if (k === 'bool' || k === 'dot' || k === 'nil' || k === 'num' || k === 'str') {
        this.errorf(`non executable command in pipeline stage ${i + 2}`, at);
      }
    });
  }

  private command(): Cmd {
    const cmd: Cmd = { args: [], pos: this.peekNonSpace().pos, src: '' };
    for (;;) {
      this.peekNonSpace();
      const op = this.operand();
      if (op) cmd.args.push(op);
      const t = this.next();
      if (t.t === 'space') continue;
      if (t.t === 'right' || t.t === 'rparen') { this.backup(); break; }
      if (t.t === 'pipe') break;
      this.unexpected(t, 'operand');
    }
    if (cmd.args.length === 0) this.errorf('empty command');
    const last = cmd.args[cmd.args.length - 1]!;
    cmd.src = this.src.slice(cmd.pos, last.pos + last.src.length);
    return cmd;
  }

  private operand(): Arg | null {
    const node = this.term();
    if (!node) return null;
    if (this.peek().t === 'field') {
      const idents: string[] = [];
      let end = node.pos + node.src.length;
      while (this.peek().t === 'field') {
        const f = this.next();
        idents.push(f.v.slice(1));
        end = f.pos + f.v.length;
      }
      const src = this.src.slice(node.pos, end);
      switch (node.k) {
        case 'field': return { k: 'field', idents: [...node.idents, ...idents], pos: node.pos, src };
        case 'var': return { k: 'var', name: node.name, idents: [...node.idents, ...idents], pos: node.pos, src };
        case 'bool': case 'str': case 'num': case 'nil': case 'dot':
          this.errorf(`unexpected . after term ${JSON.stringify(node.src)}`);
        default: return { k: 'chain', node, idents, pos: node.pos, src };
      }
    }
    return node;
  }

  private term(): Arg | null {
    const t = this.nextNonSpace();
    switch (t.t) {
      case 'ident':
        if (!this.funcs.has(t.v)) this.errorf(`function ${JSON.stringify(t.v)} not defined`, t);
        return { k: 'ident', name: t.v, pos: t.pos, src: t.v };
      case 'dot': return { k: 'dot', pos: t.pos, src: '.' };
      case 'nil': return { k: 'nil', pos: t.pos, src: 'nil' };
      case 'var':
        if (!this.vars.includes(t.v)) this.errorf(`undefined variable "${t.v}"`, t);
        return { k: 'var', name: t.v, idents: [], pos: t.pos, src: t.v };
      case 'field': return { k: 'field', idents: [t.v.slice(1)], pos: t.pos, src: t.v };
      case 'bool': return { k: 'bool', v: t.v === 'true', pos: t.pos, src: t.v };
      case 'charconst': {
        const s = unquoteGo(t.v, "'", () => this.errorf(`malformed character constant: ${t.v}`, t));
        const cps = [...s];
        if (cps.length !== 1) this.errorf(`malformed character constant: ${t.v}`, t);
        return { k: 'num', v: cps[0]!.codePointAt(0)!, pos: t.pos, src: t.v };
      }
      case 'number': {
        const v = parseGoNumber(t.v);
        if (v === null) this.errorf(`illegal number syntax: ${JSON.stringify(t.v)}`, t);
        return { k: 'num', v, pos: t.pos, src: t.v };
      }
      case 'lparen': {
        const pipe = this.pipeline('parenthesized pipeline', 'rparen');
        const close = this.next();
        if (close.t !== 'rparen') this.unexpected(close, 'parenthesized pipeline');
        return { k: 'pipe', pipe, pos: t.pos, src: this.src.slice(t.pos, close.pos + 1) };
      }
      case 'string':
        return { k: 'str', v: unquoteGo(t.v, '"', () => this.errorf(`invalid syntax: ${t.v}`, t)), pos: t.pos, src: t.v };
      case 'rawstring':
        return { k: 'str', v: t.v.slice(1, -1).replace(/\r/g, ''), pos: t.pos, src: t.v };
      case 'error':
        this.errorf(t.v, t);
      default:
        this.backup();
        return null;
    }
  }
}

function parseGoNumber(s: string): number | null {
  let t = s.replace(/_/g, '');
  let neg = false;
  if (t.startsWith('+')) t = t.slice(1);
  else if (t.startsWith('-')) { neg = true; t = t.slice(1); }
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(t) || /^0[oO][0-7]+$/.test(t) || /^0[bB][01]+$/.test(t)) v = Number(t);
  else if (/^0[0-7]+$/.test(t)) v = parseInt(t, 8);
  else if (/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) v = Number(t);
  else return null;
  return neg ? -v : v;
}

/** strconv.Unquote for "…" and '…' literals. */
function unquoteGo(lit: string, q: string, fail: () => never): string {
  const body = lit.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') { out += c; continue; }
    const e = body[++i];
    switch (e) {
      case 'a': out += '\x07'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '"': if (q !== '"') fail(); out += '"'; break;
      case "'": if (q !== "'") fail(); out += "'"; break;
      case 'x': {
        const h = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) fail();
        out += String.fromCharCode(parseInt(h, 16)); i += 2; break;
      }
      case 'u': case 'U': {
        const n = e === 'u' ? 4 : 8;
        const h = body.slice(i + 1, i + 1 + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) fail();
        const cp = parseInt(h, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) fail();
        out += String.fromCodePoint(cp); i += n; break;
      }
      default: {
        if (e !== undefined && /[0-7]/.test(e)) {
          const o = body.slice(i, i + 3);
          if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) fail();
          out += String.fromCharCode(parseInt(o, 8)); i += 2; break;
        }
        fail();
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values: Go-like printing, truth, JSON
// ---------------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function hasOwnToString(v: object): boolean {
  const ts = (v as { toString?: unknown }).toString;
  return typeof ts === 'function' && ts !== Object.prototype.toString && ts !== Array.prototype.toString;
}

function formatNumberV(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return Object.is(n, -0) ? '0' : String(n);
  return goFormatFloat(n, 'g', -1);
}

/** Go's %v of a value (fmt.Sprint of one operand). */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  switch (typeof v) {
    case 'string': return v;
    case 'number': return formatNumberV(v);
    case 'bigint': return v.toString();
    case 'boolean': return v ? 'true' : 'false';
    case 'function': return '<func>';
    case 'symbol': return v.toString();
    default: break;
  }
  if (v instanceof Date) return formatDockerTime(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (v instanceof Map) {
    const keys = [...v.keys()].sort((a, b) => compareKeys(a, b));
    return `map[${keys.map((k) => `${formatValue(k)}:${formatValue(v.get(k))}`).join(' ')}]`;
  }
  if (v instanceof Uint8Array) return `[${Array.from(v).join(' ')}]`;
  if (!isPlainObject(v) && hasOwnToString(v)) return String(v);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort((a, b) => compareKeys(a, b));
  return `map[${keys.map((k) => `${k}:${formatValue(o[k])}`).join(' ')}]`;
}

function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What an action prints: "<no value>" for a missing value, else %v. */
function printable(v: unknown): string {
  if (v === undefined) return '<no value>';
  return formatValue(v);
}

/** Go's template truth: false, 0, nil, empty string/slice/map are false. */
export function isTrue(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  switch (typeof v) {
    case 'boolean': return v;
    case 'number': return v !== 0 && !Number.isNaN(v);
    case 'bigint': return v !== 0n;
    case 'string': return v.length > 0;
    case 'function': return true;
    default: break;
  }
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map || v instanceof Set) return v.size > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

/**
 * Go's encoding/json output of a value: insertion order for objects (JS objects stand for structs
 * as often as maps), sorted keys for Map, U+2028/U+2029 escaped; with escapeHTML, <, > and & as
 * \u003c, \u003e, \u0026 (json.Marshal's default).
 */
export function goJSON(v: unknown, escapeHTML = true): string {
  const replacer = (_k: string, val: unknown): unknown => {
    if (val instanceof Map) {
      const o: Record<string, unknown> = {};
      for (const k of [...val.keys()].sort(compareKeys)) o[String(k)] = val.get(k);
      return o;
    }
    if (typeof val === 'bigint') return Number(val);
    return val;
  };
  let s = JSON.stringify(v === undefined ? null : v, replacer) ?? 'null';
  s = s.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  if (escapeHTML) s = s.replace(/[<>&]/g, (c) => (c === '<' ? '\\u003c' : c === '>' ? '\\u003e' : '\\u0026'));
  return s;
}

/** Go type names for error messages. */
function goTypeName(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  switch (typeof v) {
    case 'string': return 'string';
    case 'number': return Number.isInteger(v) ? 'int' : 'float64';
    case 'bigint': return 'int64';
    case 'boolean': return 'bool';
    case 'function': return 'func';
    default: break;
  }
  if (Array.isArray(v)) return '[]interface {}';
  if (v instanceof Map || isPlainObject(v)) return 'map[string]interface {}';
  return (v as object).constructor?.name ?? 'object';
}

// ---------------------------------------------------------------------------------------------
// printf (Go's fmt.Sprintf, the verbs templates use)
// ---------------------------------------------------------------------------------------------

interface Spec { minus: boolean; plus: boolean; sharp: boolean; space: boolean; zero: boolean; width: number | null; prec: number | null }

function runeLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function padStr(s: string, sp: Spec, numeric = false): string {
  if (sp.width === null) return s;
  const n = sp.width - runeLen(s);
  if (n <= 0) return s;
  if (sp.minus) return s + ' '.repeat(n);
  if (sp.zero) {
    if (numeric && (s.startsWith('-') || s.startsWith('+') || s.startsWith(' '))) return s[0] + '0'.repeat(n) + s.slice(1);
    return '0'.repeat(n) + s;
  }
  return ' '.repeat(n) + s;
}

function badVerb(verb: string, v: unknown): string {
  if (v === undefined || v === null) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${formatValue(v)})`;
}

function fmtInteger(n: number, base: number, sp: Spec, upper: boolean, verb: string): string {
  const neg = n < 0;
  let digits = Math.abs(n).toString(base);
  if (upper) digits = digits.toUpperCase();
  if (sp.prec !== null) {
    if (sp.prec === 0 && n === 0) digits = '';
    else digits = digits.padStart(sp.prec, '0');
  }
  let prefix = '';
  if (sp.sharp) {
    if (base === 16) prefix = upper ? '0X' : '0x';
    else if (base === 8 && !digits.startsWith('0')) prefix = '0';
    else if (base === 2) prefix = '0b';
  }
  if (verb === 'O') prefix = '0o';
  const sign = neg ? '-' : sp.plus ? '+' : sp.space ? ' ' : '';
  const body = prefix + digits;
  if (sp.zero && !sp.minus && sp.prec === null && sp.width !== null) {
    const n2 = sp.width - sign.length - body.length;
    if (n2 > 0) return sign + prefix + '0'.repeat(n2) + digits;
  }
  return padStr(sign + body, { ...sp, zero: false });
}

function fmtOne(verb: string, v: unknown, sp: Spec): string {
  if (Array.isArray(v) && verb !== 'v' && verb !== 'T') {
    // Go applies the verb element-wise to slices
    return padStr(`[${v.map((e) => fmtOne(verb, e, { ...sp, width: null })).join(' ')}]`, sp);
  }
  switch (verb) {
    case 'v': {
      if (typeof v === 'number' && sp.plus && v >= 0) return padStr('+' + formatValue(v), sp, true);
      if (typeof v === 'string' && sp.sharp) return padStr(goQuote(v), sp);
      return padStr(formatValue(v), sp, typeof v === 'number');
    }
    case 'T': return padStr(goTypeName(v), sp);
    case 's': {
      if (typeof v === 'string' || (v !== null && typeof v === 'object' && !isPlainObject(v) && !Array.isArray(v) && hasOwnToString(v))) {
        let s = String(v);
        if (sp.prec !== null) s = [...s].slice(0, sp.prec).join('');
        return padStr(s, sp);
      }
      if (v instanceof Map || isPlainObject(v)) return padStr(formatValue(v), sp);
      return badVerb(verb, v);
    }
    case 'q': {
      if (typeof v === 'string') {
        let s = v;
        if (sp.prec !== null) s = [...s].slice(0, sp.prec).join('');
        if (sp.sharp && !s.includes('`') && !/[\x00-\x08\x0a-\x1f\x7f]/.test(s)) return padStr('`' + s + '`', sp);
        return padStr(goQuote(s), sp);
      }
      if (typeof v === 'number' && Number.isInteger(v)) {
        const ch = String.fromCodePoint(v);
        const q = ch === "'" ? "'\\''" : goQuote(ch).slice(1, -1).replace(/\\"/, '"');
        return padStr(ch === "'" ? q : `'${q}'`, sp);
      }
      return badVerb(verb, v);
    }
    case 'd': case 'b': case 'o': case 'O': case 'x': case 'X': case 'c': case 'U': {
      if (typeof v === 'bigint') v = Number(v);
      if (typeof v === 'number' && Number.isInteger(v)) {
        switch (verb) {
          case 'd': return fmtInteger(v, 10, sp, false, verb);
          case 'b': return fmtInteger(v, 2, sp, false, verb);
          case 'o': case 'O': return fmtInteger(v, 8, sp, false, verb);
          case 'x': return fmtInteger(v, 16, sp, false, verb);
          case 'X': return fmtInteger(v, 16, sp, true, verb);
          case 'c': return padStr(String.fromCodePoint(v), sp);
          default: return padStr(`U+${v.toString(16).toUpperCase().padStart(4, '0')}`, sp);
        }
      }
      if (typeof v === 'string' && (verb === 'x' || verb === 'X')) {
        let hex = Buffer.from(v, 'utf8').toString('hex');
        if (verb === 'X') hex = hex.toUpperCase();
        if (sp.sharp) hex = (verb === 'X' ? '0X' : '0x') + hex;
        return padStr(hex, sp);
      }
      if (typeof v === 'number' && (verb === 'x' || verb === 'X' || verb === 'b')) return badVerb(verb, v);
      return badVerb(verb, v);
    }
    case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': {
      if (typeof v !== 'number') return badVerb(verb, v);
      const f = verb === 'F' ? 'f' : verb;
      const prec = sp.prec ?? (f === 'g' || f === 'G' ? -1 : 6);
      let s = goFormatFloat(v, f as 'e' | 'E' | 'f' | 'g' | 'G', prec);
      if (sp.plus && !s.startsWith('-')) s = '+' + s;
      else if (sp.space && !s.startsWith('-')) s = ' ' + s;
      if (sp.zero && !sp.minus && sp.width !== null && /^[+\- ]?\d/.test(s)) {
        const sign = /^[+\- ]/.test(s) ? s[0]! : '';
        const rest = sign ? s.slice(1) : s;
        const n = sp.width - s.length;
        if (n > 0) return sign + '0'.repeat(n) + rest;
      }
      return padStr(s, { ...sp, zero: false });
    }
    case 't': {
      if (typeof v === 'boolean') return padStr(v ? 'true' : 'false', sp);
      return badVerb(verb, v);
    }
    default:
      return badVerb(verb, v);
  }
}

/** Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %x %X %o %b %c %U %e %f %g %t %T %%. */
export function sprintf(format: string, ...args: unknown[]): string {
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== '%') { out += c; i++; continue; }
    i++;
    const sp: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: null, prec: null };
    for (; i < format.length; i++) {
      const f = format[i];
      if (f === '-') { sp.minus = true; sp.zero = false; }
      else if (f === '+') sp.plus = true;
      else if (f === '#') sp.sharp = true;
      else if (f === ' ') sp.space = true;
      else if (f === '0') sp.zero = !sp.minus;
      else break;
    }
    if (format[i] === '*') {
      i++;
      const w = args[argi++];
      if (typeof w === 'number' && Number.isInteger(w)) {
        sp.width = w;
        if (w < 0) { sp.minus = true; sp.width = -w; sp.zero = false; }
      } else out += '%!(BADWIDTH)';
    } else {
      let w = '';
      while (/[0-9]/.test(format[i] ?? '')) w += format[i++];
      if (w) sp.width = Number(w);
    }
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        const p = args[argi++];
        if (typeof p === 'number' && Number.isInteger(p) && p >= 0) sp.prec = p;
        else out += '%!(BADPREC)';
      } else {
        let p = '';
        while (/[0-9]/.test(format[i] ?? '')) p += format[i++];
        sp.prec = p ? Number(p) : 0;
      }
    }
    if (i >= format.length) { out += '%!(NOVERB)'; break; }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') { out += '%'; continue; }
    if (argi >= args.length) { out += `%!${verb}(MISSING)`; continue; }
    out += fmtOne(verb, args[argi++], sp);
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => (a === undefined || a === null ? '<nil>' : `${goTypeName(a)}=${formatValue(a)}`)).join(', ') + ')';
  }
  return out;
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(a);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------------

class ExecError extends Error {}

function asString(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  if (v === undefined) throw new ExecError(`invalid value; expected string`);
  if (v !== null && typeof v === 'object' && hasOwnToString(v) && !isPlainObject(v)) return String(v);
  void fn;
  throw new ExecError(`wrong type for value; expected string; got ${goTypeName(v)}`);
}

function asInt(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new ExecError(`wrong type for value; expected int; got ${goTypeName(v)}`);
}

function basicKind(v: unknown): 'string' | 'number' | 'bool' | 'nil' | 'other' {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'boolean') return 'bool';
  return 'other';
}

function eqValues(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'nil' || kb === 'nil') return ka === kb;
  if (ka === 'other' || kb === 'other') {
    if (ka !== kb) throw new ExecError('incompatible types for comparison');
    if (Array.isArray(a) || Array.isArray(b) || isPlainObject(a) || isPlainObject(b)) throw new ExecError('non-comparable type');
    return a === b;
  }
  if (ka !== kb) throw new ExecError('incompatible types for comparison');
  return ka === 'number' ? Number(a) === Number(b) : a === b;
}

function ltValues(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'bool' || ka === 'other' || ka === 'nil' || kb === 'bool' || kb === 'other' || kb === 'nil') {
    throw new ExecError('invalid type for comparison');
  }
  if (ka !== kb) throw new ExecError('incompatible types for comparison');
  if (ka === 'number') return Number(a) < Number(b);
  return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string)) < 0;
}

function indexValue(item: unknown, ...idx: unknown[]): unknown {
  let v = item;
  if (v === undefined) throw new ExecError('index of untyped nil');
  for (const ix of idx) {
    if (v === null) return '';
    if (Array.isArray(v) || typeof v === 'string') {
      const i = asIndex(ix);
      if (i < 0 || i >= v.length) throw new ExecError(`index out of range: ${i}`);
      v = typeof v === 'string' ? Buffer.from(v)[i] : v[i];
      continue;
    }
    if (v instanceof Map) {
      v = v.has(ix) ? v.get(ix) : zeroOf(v.values());
      continue;
    }
    if (typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const key = typeof ix === 'string' ? ix : typeof ix === 'number' ? String(ix) : undefined;
      if (key === undefined) throw new ExecError(`value has type ${goTypeName(ix)}; should be string`);
      v = Object.prototype.hasOwnProperty.call(o, key) ? o[key] : zeroOf(Object.values(o));
      continue;
    }
    throw new ExecError(`can't index item of type ${goTypeName(v)}`);
  }
  return v;
}

/** The zero value of a map's element type, guessed from its values: "" for string maps (docker's labels). */
function zeroOf(values: Iterable<unknown>): unknown {
  let all = true;
  for (const x of values) if (typeof x !== 'string') { all = false; break; }
  return all ? '' : undefined;
}

function asIndex(ix: unknown): number {
  if (typeof ix === 'number' && Number.isInteger(ix)) return ix;
  if (typeof ix === 'bigint') return Number(ix);
  throw new ExecError(`cannot index slice/array with type ${goTypeName(ix)}`);
}

function sliceValue(item: unknown, ...idx: unknown[]): unknown {
  if (typeof item !== 'string' && !Array.isArray(item)) throw new ExecError(`can't slice item of type ${goTypeName(item)}`);
  if (idx.length > 3) throw new ExecError(`too many slice indexes: ${idx.length}`);
  const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
  const ix = idx.map(asIndex);
  const lo = ix[0] ?? 0;
  const hi = ix[1] ?? len;
  if (lo < 0 || hi < lo || hi > len) throw new ExecError(`index out of range: ${hi > len ? hi : lo}`);
  if (typeof item === 'string') return Buffer.from(item).subarray(lo, hi).toString();
  return item.slice(lo, hi);
}

function lenValue(v: unknown): number {
  if (v === undefined || v === null) throw new ExecError('len of untyped nil');
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  if (v instanceof Uint8Array) return v.length;
  if (typeof v === 'object') return Object.keys(v).length;
  throw new ExecError(`len of type ${goTypeName(v)}`);
}

/** strings.Title */
function titleCase(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    out += isSeparator(prev) ? ch.toUpperCase() : ch;
    prev = ch;
  }
  return out;
}

function isSeparator(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if (cp <= 0x7f) return !/[0-9a-zA-Z_]/.test(ch);
  if (/[\p{L}\p{Nd}]/u.test(ch)) return false;
  return /\s/u.test(ch);
}

function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => ({ '\0': '\uFFFD', '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    switch (ch) {
      case '\\': out += '\\\\'; break;
      case "'": out += "\\'"; break;
      case '"': out += '\\"'; break;
      case '<': out += '\\u003C'; break;
      case '>': out += '\\u003E'; break;
      case '&': out += '\\u0026'; break;
      case '=': out += '\\u003D'; break;
      default: {
        const cp = ch.codePointAt(0)!;
        out += cp < 0x20 ? `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}` : ch;
      }
    }
  }
  return out;
}

function urlQueryEscape(s: string): string {
  return Buffer.from(s).toString('binary').split('').map((c) => {
    if (/[A-Za-z0-9\-_.~]/.test(c)) return c;
    if (c === ' ') return '+';
    return '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
  }).join('');
}

function evalArgsString(args: unknown[]): string {
  // html/js/urlquery: fmt.Sprint of the args, or the single string
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  return sprint(args);
}

/** Built-in functions: name → [implementation, minimum args, maximum args (-1 = variadic)]. */
const BUILTINS: Record<string, [TemplateFunc, number, number]> = {
  len: [(v) => lenValue(v), 1, 1],
  index: [(item, ...idx) => indexValue(item, ...idx), 1, -1],
  slice: [(item, ...idx) => sliceValue(item, ...idx), 1, -1],
  not: [(v) => !isTrue(v), 1, 1],
  eq: [(a, ...bs) => {
    if (bs.length === 0) throw new ExecError('missing argument for comparison');
    return bs.some((b) => eqValues(a, b));
  }, 1, -1],
  ne: [(a, b) => !eqValues(a, b), 2, 2],
  lt: [(a, b) => ltValues(a, b), 2, 2],
  le: [(a, b) => ltValues(a, b) || eqValues(a, b), 2, 2],
  gt: [(a, b) => !ltValues(a, b) && !eqValues(a, b), 2, 2],
  ge: [(a, b) => !ltValues(a, b), 2, 2],
  print: [(...a) => sprint(a), 0, -1],
  println: [(...a) => a.map(formatValue).join(' ') + '\n', 0, -1],
  printf: [(f, ...a) => sprintf(asString(f, 'printf'), ...a), 1, -1],
  html: [(...a) => htmlEscape(evalArgsString(a)), 0, -1],
  js: [(...a) => jsEscape(evalArgsString(a)), 0, -1],
  urlquery: [(...a) => urlQueryEscape(evalArgsString(a)), 0, -1],
  call: [(fn, ...a) => {
    if (typeof fn !== 'function') throw new ExecError(`non-function of type ${goTypeName(fn)}`);
    return (fn as TemplateFunc)(...a);
  }, 1, -1],
  // docker's cli/templates basicFunctions
  json: [(v) => goJSON(v, true), 1, 1],
  split: [(s, sep) => {
    const str = asString(s, 'split');
    const sp = asString(sep, 'split');
    return sp === '' ? [...str] : str.split(sp);
  }, 2, 2],
  join: [(elems, sep) => {
    const sp = asString(sep, 'join');
    if (elems === undefined || elems === null) return '';
    if (!Array.isArray(elems)) throw new ExecError(`wrong type for value; expected []string; got ${goTypeName(elems)}`);
    return elems.map((e) => (typeof e === 'string' ? e : formatValue(e))).join(sp);
  }, 2, 2],
  title: [(s) => titleCase(asString(s, 'title')), 1, 1],
  lower: [(s) => asString(s, 'lower').toLowerCase(), 1, 1],
  upper: [(s) => asString(s, 'upper').toUpperCase(), 1, 1],
  pad: [(s, prefix, suffix) => {
    const str = asString(s, 'pad');
    if (str === '') return str;
    return ' '.repeat(Math.max(0, asInt(prefix))) + str + ' '.repeat(Math.max(0, asInt(suffix)));
  }, 3, 3],
  truncate: [(s, n) => {
    const str = asString(s, 'truncate');
    const len = asInt(n);
    const b = Buffer.from(str);
    if (b.length < len) return str;
    return b.subarray(0, Math.max(0, len)).toString();
  }, 2, 2],
};

/** docker's HeaderFunctions: for the header row these functions return their first argument unchanged. */
const HEADER_FUNCS: Record<string, TemplateFunc> = {
  json: (v) => v,
  split: (v) => v,
  join: (v) => v,
  title: (v) => v,
  lower: (v) => v,
  upper: (v) => v,
  truncate: (v) => v,
};

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

const NO_FINAL = Symbol('noFinal');
class BreakSignal { constructor(readonly cont: boolean) {} }

interface Var { name: string; value: unknown }

class Exec {
  private vars: Var[];
  private out: string[] = [];
  private at: { pos: number; src: string } | null = null;

  constructor(
    private readonly src: string,
    private readonly funcs: Map<string, [TemplateFunc, number, number]>,
    data: unknown,
  ) {
    this.vars = [{ name: '$', value: data }];
  }

  run(nodes: Node[], data: unknown): string {
    this.walkList(data, nodes);
    return this.out.join('');
  }

  private errorf(msg: string): never {
    const pos = this.at?.pos ?? 0;
    const before = this.src.slice(0, pos);
    const line = 1 + (before.match(/\n/g)?.length ?? 0);
    const nl = before.lastIndexOf('\n');
    const col = nl < 0 ? pos : pos - (nl + 1);
    let ctx = this.at?.src ?? '';
    if (ctx.length > 20) ctx = `${ctx.slice(0, 20)}...`;
    throw new InvalidParameterError(`template: :${line}:${col}: executing "" at <${ctx}>: ${msg}`);
  }

  private walkList(dot: unknown, nodes: Node[]): void {
    for (const n of nodes) this.walk(dot, n);
  }

  private walk(dot: unknown, n: Node): void {
    switch (n.k) {
      case 'text': this.out.push(n.text); return;
      case 'action': {
        const v = this.evalPipeline(dot, n.pipe);
        if (n.pipe.decl.length === 0) this.out.push(printable(v));
        return;
      }
      case 'if': case 'with': {
        const mark = this.vars.length;
        const v = this.evalPipeline(dot, n.pipe);
        if (isTrue(v)) this.walkList(n.k === 'with' ? v : dot, n.list);
        else if (n.elseList) this.walkList(dot, n.elseList);
        this.vars.length = mark;
        return;
      }
      case 'range': this.walkRange(dot, n); return;
      case 'break': throw new BreakSignal(false);
      case 'continue': throw new BreakSignal(true);
    }
  }

  private walkRange(dot: unknown, n: Extract<Node, { k: 'range' }>): void {
    const outer = this.vars.length;
    const val = this.evalPipeline(dot, n.pipe);
    const mark = this.vars.length;
    const decl = n.pipe.decl;
    const one = (index: unknown, elem: unknown): boolean => {
      if (decl.length > 0) {
        if (n.pipe.isAssign) {
          this.setVar(decl[0]!, decl.length > 1 ? index : elem);
          if (decl.length > 1) this.setVar(decl[1]!, elem);
        } else {
          this.vars[this.vars.length - 1]!.value = elem;
          if (decl.length > 1) this.vars[this.vars.length - 2]!.value = index;
        }
      }
      try {
        this.walkList(elem, n.list);
      } catch (e) {
        if (e instanceof BreakSignal) {
          this.vars.length = mark;
          return !e.cont;
        }
        throw e;
      }
      this.vars.length = mark;
      return false;
    };
    let count = 0;
    if (val === undefined || val === null) {
      // nothing to iterate
    } else if (Array.isArray(val)) {
      for (let i = 0; i < val.length; i++) { count++; if (one(i, val[i])) break; }
    } else if (typeof val === 'number' && Number.isInteger(val)) {
      if (decl.length > 1) this.errorf(`can't use ${val} to iterate over more than one variable`);
      for (let i = 0; i < val; i++) { count++; if (one(i, i)) break; }
    } else if (val instanceof Map) {
      for (const k of [...val.keys()].sort(compareKeys)) { count++; if (one(k, val.get(k))) break; }
    } else if (typeof val === 'object' && !(val instanceof Date)) {
      const o = val as Record<string, unknown>;
      for (const k of Object.keys(o).sort(compareKeys)) { count++; if (one(k, o[k])) break; }
    } else {
      this.at = { pos: n.pipe.pos, src: n.pipe.src };
      this.errorf(`range can't iterate over ${formatValue(val)}`);
    }
    if (count === 0 && n.elseList) this.walkList(dot, n.elseList);
    this.vars.length = outer;
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) { this.vars[i]!.value = value; return; }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.value;
    this.errorf(`undefined variable: ${name}`);
  }

  private evalPipeline(dot: unknown, pipe: Pipe): unknown {
    let value: unknown = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const name of pipe.decl) {
      if (pipe.isAssign) this.setVar(name, value);
      else this.vars.push({ name, value });
    }
    return value;
  }

  private evalCommand(dot: unknown, cmd: Cmd, final: unknown): unknown {
    const first = cmd.args[0]!;
    this.at = first;
    switch (first.k) {
      case 'field': return this.evalFieldChain(dot, dot, first, first.idents, cmd.args, final);
      case 'chain': {
        const recv = this.evalArg(dot, first.node);
        return this.evalFieldChain(dot, recv, first, first.idents, cmd.args, final);
      }
      case 'ident': return this.evalFunction(dot, first, cmd.args, final, cmd);
      case 'pipe': this.notAFunction(cmd.args, final); return this.evalPipeline(dot, first.pipe);
      case 'var': {
        const v = this.varValue(first.name);
        if (first.idents.length === 0) { this.notAFunction(cmd.args, final); return v; }
        return this.evalFieldChain(dot, v, first, first.idents, cmd.args, final);
      }
      default: break;
    }
    this.notAFunction(cmd.args, final);
    switch (first.k) {
      case 'bool': return first.v;
      case 'dot': return dot;
      case 'nil': this.errorf('nil is not a command');
      case 'num': return first.v;
      case 'str': return first.v;
    }
  }

  private notAFunction(args: Arg[], final: unknown): void {
    if (args.length > 1 || final !== NO_FINAL) this.errorf(`can't give argument to non-function ${args[0]!.src}`);
  }

  private evalFieldChain(dot: unknown, receiver: unknown, node: Arg, idents: string[], args: Arg[] | null, final: unknown): unknown {
    const n = idents.length;
    for (let i = 0; i < n - 1; i++) receiver = this.evalField(dot, idents[i]!, node, null, NO_FINAL, receiver);
    return this.evalField(dot, idents[n - 1]!, node, args, final, receiver);
  }

  private evalField(dot: unknown, name: string, node: Arg, args: Arg[] | null, final: unknown, receiver: unknown): unknown {
    this.at = node;
    const hasArgs = (args !== null && args.length > 1) || final !== NO_FINAL;
    if (receiver === undefined || receiver === null) return undefined;
    if (receiver instanceof Map) {
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      return receiver.get(name);
    }
    if (typeof receiver === 'object' || typeof receiver === 'function') {
      if (Array.isArray(receiver)) this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
      const found = lookupProperty(receiver as object, name);
      if (!found) {
        if (isPlainObject(receiver)) {
          if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
          return undefined; // map semantics: missing key → <no value>
        }
        this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
      }
      const v = (receiver as Record<string, unknown>)[name];
      if (typeof v === 'function') {
        const argv = (args ?? []).slice(1).map((a) => this.evalArg(dot, a));
        if (final !== NO_FINAL) argv.push(final);
        this.at = node;
        try {
          return (v as TemplateFunc).apply(receiver, argv);
        } catch (e) {
          if (e instanceof InvalidParameterError && e.message.startsWith('template: ')) throw e;
          this.errorf(`error calling ${name}: ${(e as Error).message ?? String(e)}`);
        }
      }
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      return v;
    }
    this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  private evalFunction(dot: unknown, node: Extract<Arg, { k: 'ident' }>, args: Arg[], final: unknown, cmd?: Cmd): unknown {
    const name = node.name;
    const entry = this.funcs.get(name);
    if (!entry) this.errorf(`"${name}" is not a defined function`);
    const [fn, min, max] = entry;
    const argNodes = args.slice(1);
    const nargs = argNodes.length + (final !== NO_FINAL ? 1 : 0);
    this.at = node;
    if (nargs < min || (max >= 0 && nargs > max)) {
      if (max === min) this.errorf(`wrong number of args for ${name}: want ${min} got ${nargs}`);
      this.errorf(`wrong number of args for ${name}: want at least ${min} got ${nargs}`);
    }
    // and / or evaluate lazily, stopping at the first false / true argument
    if (name === 'and' || name === 'or') {
      let v: unknown;
      for (let i = 0; i < nargs; i++) {
        v = i < argNodes.length ? this.evalArg(dot, argNodes[i]!) : final;
        if (isTrue(v) !== (name === 'and')) return v;
      }
      return v;
    }
    const argv = argNodes.map((a) => this.evalArg(dot, a));
    if (final !== NO_FINAL) argv.push(final);
    this.at = node;
    try {
      return fn(...argv);
    } catch (e) {
      if (e instanceof InvalidParameterError && e.message.startsWith('template: ')) throw e;
      if (cmd) this.at = cmd;
      this.errorf(`error calling ${name}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private evalArg(dot: unknown, a: Arg): unknown {
    this.at = a;
    switch (a.k) {
      case 'dot': return dot;
      case 'nil': return null;
      case 'bool': return a.v;
      case 'num': return a.v;
      case 'str': return a.v;
      case 'field': return this.evalFieldChain(dot, dot, a, a.idents, [a], NO_FINAL);
      case 'var': {
        const v = this.varValue(a.name);
        return a.idents.length === 0 ? v : this.evalFieldChain(dot, v, a, a.idents, [a], NO_FINAL);
      }
      case 'pipe': return this.evalPipeline(dot, a.pipe);
      case 'ident': return this.evalFunction(dot, a, [a], NO_FINAL);
      case 'chain': {
        const recv = this.evalArg(dot, a.node);
        return this.evalFieldChain(dot, recv, a, a.idents, [a], NO_FINAL);
      }
    }
  }
}

function lookupProperty(o: object, name: string): boolean {
  let p: object | null = o;
  while (p !== null && p !== Object.prototype && p !== Function.prototype) {
    if (Object.prototype.hasOwnProperty.call(p, name)) return true;
    p = Object.getPrototypeOf(p) as object | null;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

function buildFuncs(funcs: Record<string, TemplateFunc> | undefined, escapeHTML: boolean): Map<string, [TemplateFunc, number, number]> {
  const m = new Map<string, [TemplateFunc, number, number]>();
  for (const [k, v] of Object.entries(BUILTINS)) m.set(k, v);
  m.set('and', [() => undefined, 1, -1]);
  m.set('or', [() => undefined, 1, -1]);
  if (!escapeHTML) m.set('json', [(v) => goJSON(v, false), 1, 1]);
  if (funcs) for (const [k, f] of Object.entries(funcs)) m.set(k, [f, 0, -1]);
  return m;
}

function parseTemplate(src: string, funcs: Map<string, [TemplateFunc, number, number]>): Node[] {
  const items = lex(src);
  return new Parser(items, src, new Set(funcs.keys())).parse();
}

/**
 * Compiles a docker --format template. Parse errors throw InvalidParameterError
 * ("template: :1: unexpected \"}\" in operand"); execution errors throw it from the returned function
 * ("template: :1:2: executing \"\" at <.Foo>: …"). Extra `funcs` are added to (or replace) the built-ins.
 */
export function compileTemplate(
  src: string,
  funcs?: Record<string, (...a: unknown[]) => unknown>,
  opts: CompileOptions = {},
): (data: unknown) => string {
  const text = opts.raw ? src : preFormat(src);
  const fm = buildFuncs(funcs, opts.jsonEscapeHTML ?? true);
  const tree = parseTemplate(text, fm);
  return (data: unknown) => new Exec(text, fm, data).run(tree, data);
}

/** Parses a template only to validate it (throws InvalidParameterError on error). */
export function checkTemplate(src: string, funcs?: Record<string, TemplateFunc>, opts: CompileOptions = {}): void {
  compileTemplate(src, funcs, opts);
}

/**
 * The header row of a "table" format: the template executed on a header context, as docker's formatter
 * does, where each {{.Field}} renders as headers[Field] (unknown fields: the field name upper-cased)
 * and json/split/join/title/lower/upper/truncate return their argument unchanged.
 */
export function headerFor(format: string, headers: Record<string, string>): string {
  const text = preFormat(format);
  const fm = buildFuncs(HEADER_FUNCS, true);
  const tree = parseTemplate(text, fm);
  const ctx = new Proxy(Object.create(null) as Record<string, unknown>, {
    get: (_t, k) => (typeof k === 'string' ? (Object.prototype.hasOwnProperty.call(headers, k) ? headers[k] : k.toUpperCase()) : undefined),
    has: (_t, k) => typeof k === 'string',
    getOwnPropertyDescriptor: (_t, k) => (typeof k === 'string'
      ? { value: Object.prototype.hasOwnProperty.call(headers, k) ? headers[k] : k.toUpperCase(), enumerable: true, configurable: true, writable: false }
      : undefined),
    ownKeys: () => Object.keys(headers),
  });
  return new Exec(text, fm, ctx).run(tree, ctx);
}

/**
 * docker's formatter Context.Write for a list command (images, ps, volume ls, history…): each row is the
 * template's output plus "\n"; a "table" format gets the header row first and goes through the tabwriter
 * (NewWriter(out, 10, 1, 3, ' ', 0)); other formats are printed as they are. The header is printed even
 * when there are no rows. Errors carry docker's "template parsing error: " prefix.
 */
export function formatList(
  format: string,
  rows: readonly unknown[],
  headers: Record<string, string>,
  funcs?: Record<string, TemplateFunc>,
): string {
  let tmpl: (data: unknown) => string;
  try {
    tmpl = compileTemplate(format, funcs);
  } catch (e) {
    throw new InvalidParameterError(`template parsing error: ${(e as Error).message}`, { cause: e });
  }
  let body = '';
  for (const r of rows) {
    try {
      body += tmpl(r) + '\n';
    } catch (e) {
      throw new InvalidParameterError(`template parsing error: ${(e as Error).message}`, { cause: e });
    }
  }
  if (!isTableFormat(format)) return body;
  const w = new TabWriter();
  w.write(headerFor(format, headers) + '\n');
  w.write(body);
  return w.flush();
}
