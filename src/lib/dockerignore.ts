/**
 * .dockerignore with docker's pattern semantics (moby's ignorefile + patternmatcher): one pattern a line, `#`
 * comments, patterns cleaned like Go's filepath.Clean with a leading `/` dropped, `!` exceptions, `*` and `?`
 * within one path element, `**` across any number of elements, `[…]` classes, `\` escapes. A path is excluded
 * when the last pattern that matches it (or one of its parent directories) is not an exception.
 */
import { posix } from 'node:path';
import { InvalidParameterError } from './errors.js';

export interface IgnorePattern { text: string; exclusion: boolean; re: RegExp }

/** Go's filepath.Clean for slash paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Reads .dockerignore text into patterns (ignorefile.ReadAll). */
export function readIgnoreFile(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (raw.startsWith('#')) continue;
    let p = raw.trim();
    if (p === '') continue;
    let invert = false;
    if (p.startsWith('!')) {
      invert = true;
      p = p.slice(1).trim();
    }
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

function toRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        while (pattern[i + 1] === '*') i++;
        if (pattern[i + 1] === '/') i++;
        if (i + 1 >= pattern.length) re += '.*';
        else re += '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) throw new InvalidParameterError(`syntax error in pattern: ${pattern}`);
      re += n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      i++;
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new InvalidParameterError(`syntax error in pattern: ${pattern}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = '!' + cls.slice(1);
      re += '[' + (cls.startsWith('!') ? '^' + cls.slice(1) : cls).replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += ch.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

export class PatternMatcher {
  readonly patterns: IgnorePattern[] = [];

  constructor(patterns: string[]) {
    for (let p of patterns) {
      p = p.trim();
      if (p === '') continue;
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new InvalidParameterError('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      p = cleanPath(p);
      this.patterns.push({ text: p, exclusion, re: toRegExp(p) });
    }
  }

  get hasExclusions(): boolean { return this.patterns.some((p) => p.exclusion); }

  /** Whether a slash path relative to the context root is ignored (patternmatcher.MatchesOrParentMatches). */
  matches(file: string): boolean {
    const f = cleanPath(file);
    const parent = posix.dirname(f);
    const dirs = parent.split('/');
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.re.test(f);
      if (!m && parent !== '.') {
        for (let i = 0; i < dirs.length; i++) {
          if (p.re.test(dirs.slice(0, i + 1).join('/'))) { m = true; break; }
        }
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }
}

export function hasWildcards(p: string): boolean { return /[*?[]/.test(p); }
