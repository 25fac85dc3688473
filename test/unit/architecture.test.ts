// Dependency rules of ARCHITECTURE.md, checked on the sources: the CLI and the client talk HTTP only, the API
// layer sees the engine only through backend interfaces, and lib depends on nothing of ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every relative import of a file, resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|require\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    out.push(relative(join(root, 'src'), resolve(dirname(file), spec)));
  }
  return out;
}

function violations(fromDir: string, forbidden: RegExp): string[] {
  const bad: string[] = [];
  for (const f of sources(join(root, 'src', fromDir))) {
    for (const imp of importsOf(f)) if (forbidden.test(imp)) bad.push(`${relative(root, f)} imports ${imp}`);
  }
  return bad;
}

test('the CLI and the client never import engine, API or daemon code', () => {
  assert.deepEqual(violations('cli', /^(engine|api|daemon|registry)\//), []);
  assert.deepEqual(violations('client', /^(engine|api|daemon|registry|cli)\//), []);
});

test('the API layer does not reach into engine modules (it calls backend interfaces)', () => {
  assert.deepEqual(violations('api', /^(daemon|cli)\//), []);
});

test('lib depends on nothing of ours', () => {
  assert.deepEqual(violations('lib', /^(engine|api|daemon|cli|client|registry)\//), []);
});

test('the import scanner sees imports (so the rules above can fail)', () => {
  const imps = importsOf(join(root, 'src', 'daemon', 'daemon.ts'));
  assert.ok(imps.some((i) => i.startsWith('engine/')), `daemon.ts imports: ${imps.join(', ')}`);
});
