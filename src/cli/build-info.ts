/**
 * Where the CLI runs from and what it was built from: the project root, the checkout's commit and the build
 * time. This module sits in dist/src/cli/, and so does the bundle scripts/build-cli.mjs makes of the CLI, so
 * `import.meta.dirname` is the same directory in both.
 */
import type * as FsNs from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const require = createRequire(import.meta.url);

/** The project root (dist/src/cli → ../../..). */
export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..', '..');

/** The directory of the CLI's compiled files (dist/src/cli). */
export const CLI_DIR = import.meta.dirname;

/** The checkout's commit, 7 hex digits, or 'unknown' outside a git checkout. */
export function gitCommit(): string {
  const { readFileSync } = require('node:fs') as typeof FsNs;
  try {
    const head = readFileSync(join(PROJECT_ROOT, '.git', 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 7);
    const ref = head.slice(5);
    try { return readFileSync(join(PROJECT_ROOT, '.git', ref), 'utf8').trim().slice(0, 7); } catch { /* packed */ }
    const line = readFileSync(join(PROJECT_ROOT, '.git', 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`));
    return line ? line.slice(0, 7) : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** When the running CLI file was built (its mtime), as an RFC 3339 time without fractions; undefined if unknown. */
export function builtAt(): string | undefined {
  const { statSync } = require('node:fs') as typeof FsNs;
  try { return statSync(import.meta.filename).mtime.toISOString().replace(/\.\d+Z$/, 'Z'); } catch { return undefined; }
}
