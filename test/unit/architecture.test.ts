// The dependency rules of ARCHITECTURE.md, checked on the sources (test/support/archcheck.ts): no import cycles
// between modules; engine never imports api/cli/client/daemon/registry; the CLI and the client talk HTTP only;
// api sees lib, wire and its own backend interfaces; registry only lib and wire; lib and wire import nothing of
// ours; engine modules meet through their types.ts (or, for function modules, index.ts). And ARCHITECTURE.md's code map matches the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkArchitecture, codeMapMismatches, codeMapRows, codeMapTable, importEdges, mapFolders, type Exception } from '../support/archcheck.js';

const root = resolve(import.meta.dirname, '..', '..', '..');

/**
 * Today's allowed breaches: none. Should one ever be needed, each entry says why, and the test fails when an entry
 * no longer matches any import (remove it then).
 */
const EXCEPTIONS: Exception[] = [];

test('the source tree keeps the dependency rules and has no cycles between modules', () => {
  const r = checkArchitecture(root, EXCEPTIONS);
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.cycles, []);
  assert.deepEqual(r.stale.map((e) => `${e.from} → ${e.to}`), [], 'exceptions that no import needs any more');
});

test('the import scanner sees imports (so the rules above can fail)', () => {
  const edges = importEdges(root).filter((e) => e.from === 'daemon/daemon.ts');
  assert.ok(edges.some((e) => e.to.startsWith('engine/')), `daemon.ts imports: ${edges.map((e) => e.to).join(', ')}`);
  assert.ok(edges.some((e) => e.to === 'api/backend.ts'), 'a type-only import is an import too');
});

/** A small fake tree: files by src-relative path, each importing the listed paths. */
function fakeTree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'arch-'));
  for (const [path, imports] of Object.entries(files)) {
    const file = join(dir, 'src', path);
    mkdirSync(dirname(file), { recursive: true });
    const rel = (to: string): string => {
      const up = path.split('/').length - 1;
      return (up ? '../'.repeat(up) : './') + to.replace(/\.ts$/, '.js');
    };
    writeFileSync(file, imports.map((to, i) => i % 2
      ? `import type { X${i} } from '${rel(to)}';\n`
      : `export { y${i} } from "${rel(to)}";\n`).join('') + 'export const z = 1;\n');
  }
  return dir;
}

test('the checker fails on planted violations: a cycle, engine → api, cli → engine, a module\'s internals', (t) => {
  const dir = fakeTree({
    'api/backend.ts': ['wire/index.ts'],
    'api/routes/images.ts': ['api/backend.ts', 'lib/errors.ts'],
    'wire/index.ts': [],
    'lib/errors.ts': [],
    'engine/images/types.ts': ['wire/index.ts'],
    'engine/images/service.ts': ['engine/images/types.ts', 'api/backend.ts', 'engine/layers/store.ts'],
    'engine/layers/types.ts': [],
    'engine/layers/store.ts': ['engine/layers/types.ts', 'engine/images/types.ts'],
    'cli/main.ts': ['client/index.ts', 'engine/images/types.ts'],
    'client/index.ts': ['wire/index.ts'],
    'registry/server.ts': ['lib/errors.ts', 'client/index.ts'],
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = checkArchitecture(dir);
  assert.deepEqual(r.violations, [
    'cli/main.ts imports engine/images/types.ts: cli never imports engine',
    'engine/images/service.ts imports api/backend.ts: engine never imports api',
    'engine/images/service.ts imports engine/layers/store.ts: engine modules meet through their types.ts or index.ts',
    'registry/server.ts imports client/index.ts: registry imports only lib and wire',
  ]);
  assert.deepEqual(r.cycles, ['engine/images → engine/layers → engine/images']);

  // An exception excuses exactly its import; one that matches nothing is reported stale.
  const ex: Exception[] = [
    { from: 'engine/images', to: 'engine/layers/*', kind: 'cycle', why: 'test' },
    { from: 'engine/images/service.ts', to: 'api/backend.ts', kind: 'rule', why: 'test' },
    { from: 'lib', to: 'engine/images/*', kind: 'rule', why: 'matches nothing' },
  ];
  const r2 = checkArchitecture(dir, ex);
  assert.deepEqual(r2.cycles, []);
  assert.deepEqual(r2.violations, [
    'cli/main.ts imports engine/images/types.ts: cli never imports engine',
    'registry/server.ts imports client/index.ts: registry imports only lib and wire',
  ]);
  assert.deepEqual(r2.stale.map((e) => e.why), ['matches nothing']);
});

test('ARCHITECTURE.md\'s code map has a row for every folder under src/ and src/engine/, and no row for a missing one', () => {
  const rows = codeMapRows(readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8')).filter((r) => r.startsWith('src/'));
  assert.ok(rows.length > 5, `code map rows: ${rows.join(', ')}`);
  const folders = mapFolders(root);
  const files = rows.filter((r) => !r.endsWith('/'));
  const dirRows = rows.filter((r) => r.endsWith('/'));
  // every module folder has its row; a row may also describe a sub-folder (src/lib/oci/) that exists
  assert.deepEqual(folders.filter((f) => !dirRows.includes(f)), [], 'module folders without a code map row');
  assert.deepEqual(dirRows.filter((r) => !existsSync(join(root, r))), [], 'code map rows naming a missing folder');
  // Rows naming files (src/engine/config.ts) name files that exist.
  for (const f of files) assert.doesNotThrow(() => readFileSync(join(root, f)), `code map row ${f}`);
  // Each row names files that exist and every module its folder imports.
  assert.deepEqual(codeMapMismatches(root, codeMapTable(readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8'))), []);
});

test('the code map check fails on a stale or a missing row', (t) => {
  const dir = fakeTree({ 'lib/a.ts': [], 'engine/images/types.ts': [], 'engine/config.ts': [] });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const md = '# x\n## Code map\n| folder | what |\n|---|---|\n| `src/lib/` | x |\n| `src/engine/gone/` | y |\n## Next\n| `src/engine/images/` | not in the map |\n';
  const rows = codeMapRows(md);
  assert.deepEqual(rows, ['src/lib/', 'src/engine/gone/']);
  assert.deepEqual(mapFolders(dir), ['src/engine/images/', 'src/lib/']);
  assert.notDeepEqual(rows.sort(), mapFolders(dir));

  writeFileSync(join(dir, 'src', 'engine', 'images', 'types.ts'), "import { e } from '../../lib/a.js';\n");
  const table = codeMapTable('## Code map\n| f | w | d |\n|---|---|---|\n| `src/engine/images/` | `types.ts`, `gone.ts` | `layers` |\n| `src/lib/` | `a.ts` | nothing |\n');
  assert.deepEqual(codeMapMismatches(dir, table), [
    'src/engine/images/: names gone.ts, which is not there',
    'src/engine/images/: imports lib, which "depends on" does not name',
  ]);
});
