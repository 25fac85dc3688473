/**
 * Variable substitution and word splitting as the Dockerfile applies them (docker's shell lexer): `$VAR`,
 * `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`;
 * single quotes are literal, double quotes allow substitution, the escape token (`\` or the `escape`
 * directive's character) escapes the next character. Quotes and escapes are removed from the result.
 */
import { InvalidParameterError } from '../../../lib/errors.js';

export type Env = ReadonlyMap<string, string> | Record<string, string>;

function lookup(env: Env, name: string): string | undefined {
  if (env instanceof Map) return env.get(name);
  return Object.prototype.hasOwnProperty.call(env, name) ? (env as Record<string, string>)[name] : undefined;
}

class Lexer {
  private i = 0;
  constructor(private readonly src: string, private readonly env: Env, private readonly escape: string) {}

  private peek(): string | undefined { return this.src[this.i]; }

  /** Processes the whole input. With `split`, unquoted whitespace separates words. */
  run(split: boolean): string[] {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    while (this.i < this.src.length) {
      const ch = this.src[this.i]!;
      if (split && /\s/.test(ch)) {
        if (inWord) { words.push(cur); cur = ''; inWord = false; }
        this.i++;
        continue;
      }
      if (split && ch === '$') {
        // An unquoted substitution's value is split on whitespace too (docker's ProcessWords).
        for (const c of this.dollar()) {
          if (/\s/.test(c)) {
            if (inWord) { words.push(cur); cur = ''; inWord = false; }
          } else { cur += c; inWord = true; }
        }
        continue;
      }
      inWord = true;
      cur += this.one(undefined);
    }
    if (inWord || !split) words.push(cur);
    return words;
  }

  /** Processes one syntactic unit (a char, a quoted string, an escape, a substitution), stopping at `stop`. */
  private one(stop: string | undefined): string {
    const ch = this.src[this.i]!;
    if (ch === stop) return '';
    if (ch === "'") return this.single();
    if (ch === '"') return this.double();
    if (ch === this.escape) {
      this.i++;
      if (this.i >= this.src.length) return '';
      return this.src[this.i++]!;
    }
    if (ch === '$') return this.dollar();
    this.i++;
    return ch;
  }

  private single(): string {
    this.i++; // opening quote
    const end = this.src.indexOf("'", this.i);
    if (end < 0) throw new InvalidParameterError('unexpected end of statement while looking for matching single-quote');
    const out = this.src.slice(this.i, end);
    this.i = end + 1;
    return out;
  }

  private double(): string {
    this.i++;
    let out = '';
    for (;;) {
      if (this.i >= this.src.length) throw new InvalidParameterError('unexpected end of statement while looking for matching double-quote');
      const ch = this.src[this.i]!;
      if (ch === '"') { this.i++; return out; }
      if (ch === this.escape) {
        const next = this.src[this.i + 1];
        if (next === undefined) { this.i++; continue; }
        if (next === '"' || next === '$' || next === this.escape) { out += next; this.i += 2; continue; }
        out += ch + next;
        this.i += 2;
        continue;
      }
      if (ch === '$') { out += this.dollar(); continue; }
      out += ch;
      this.i++;
    }
  }

  private name(): string {
    const m = /^[A-Za-z0-9_]+/.exec(this.src.slice(this.i));
    if (!m) return '';
    this.i += m[0].length;
    return m[0];
  }

  private dollar(): string {
    this.i++; // '$'
    const ch = this.peek();
    if (ch === '{') {
      this.i++;
      const name = this.name();
      if (!name) throw new InvalidParameterError(`bad substitution: missing variable name in \${}`);
      const c = this.peek();
      if (c === '}') { this.i++; return lookup(this.env, name) ?? ''; }
      let colon = false;
      if (c === ':') { colon = true; this.i++; }
      const mod = this.peek();
      if (mod !== '-' && mod !== '+' && mod !== '?') {
        throw new InvalidParameterError(`unsupported modifier (${mod ?? ''}) in substitution`);
      }
      this.i++;
      let word = '';
      while (this.i < this.src.length && this.src[this.i] !== '}') word += this.one('}');
      if (this.peek() !== '}') throw new InvalidParameterError('missing \'}\' in substitution');
      this.i++;
      const val = lookup(this.env, name);
      const set = colon ? val !== undefined && val !== '' : val !== undefined;
      if (mod === '-') return set ? val! : word;
      if (mod === '+') return set ? word : '';
      if (!set) throw new InvalidParameterError(`${name}: ${word || 'is not allowed to be unset'}`);
      return val!;
    }
    const name = this.name();
    if (!name) return '$';
    return lookup(this.env, name) ?? '';
  }
}

/** Substitutes variables in one word, removing quotes and escapes. */
export function expandWord(word: string, env: Env, escape = '\\'): string {
  return new Lexer(word, env, escape).run(false)[0] ?? '';
}

/** Substitutes variables and splits on unquoted whitespace (EXPOSE, VOLUME, USER… take words). */
export function expandWords(text: string, env: Env, escape = '\\'): string[] {
  return new Lexer(text, env, escape).run(true);
}
