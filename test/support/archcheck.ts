/**
 * The dependency rules of ARCHITECTURE.md as a checker over a source tree (`<root>/src/**.ts`), so that
 * `test/unit/architecture.test.ts` can run it on the real tree and on small planted trees.
 *
 * A module is a folder directly under `src/` (`api`, `lib`, `wire`, …) or under `src/engine/` (`engine/images`, …);
 * files directly in `src/engine/` (the engine-wide `config.ts`) form the module `engine`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface Edge {
  /** Importing file, relative to src/ ("engine/images/service.ts"). */
  from: string;
  /** Imported file, relative to src/, with its .ts ending ("lib/errors.ts"). */
  to: string;
}

/**
 * An allowed import: `from` is a module or a file, `to` a file or a `module/*` pattern; each says why. A `rule`
 * exception excuses a breach of a rule; a `cycle` exception also takes the import out of the module graph the
 * cycle check walks.
 */
export interface Exception { from: string; to: string; kind: 'rule' | 'cycle'; why: string }

export interface Report {
  /** Every breach, one line each ("engine/x/a.ts imports api/backend.ts: engine never imports api"). */
  violations: string[];
  /** Cycles between modules, each as "a → b → a". */
  cycles: string[];
  /** Exceptions that no longer match any import (the list must shrink with the code). */
  stale: Exception[];
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE =
  /(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s+['"](\.[^'"]+)['"]|(?:^|[;\s])import\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|require\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** Every relative import of every file under `<root>/src`, resolved to a src-relative `.ts` path. */
export function importEdges(root: string): Edge[] {
  const src = join(root, 'src');
  const edges: Edge[] = [];
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4]!;
      const to = relative(src, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
      edges.push({ from: relative(src, file), to });
    }
  }
  return edges;
}

/** The module a src-relative path belongs to. */
export function moduleOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'engine') return parts.length > 2 ? `engine/${parts[1]}` : 'engine';
  return parts.length > 1 ? parts[0]! : '.';
}

const top = (mod: string): string => mod.split('/')[0]!;

/**
 * A module's doors, the only files other engine modules may import: its `types.ts` (interfaces and shapes) and,
 * for a module whose service is functions rather than an object wired by the daemon (e.g. `engine/fsroot`), its
 * `index.ts`; plus the engine-wide `config.ts`.
 */
function isInterfaceFile(path: string): boolean {
  return /^engine\/[^/]+\/(types|index)\.ts$/.test(path) || path === 'engine/config.ts';
}

/**
 * The rules, each a predicate over one cross-module import; returns the rule's words when the import breaks it.
 */
function ruleBroken(from: string, to: string): string | undefined {
  const fm = moduleOf(from), tm = moduleOf(to);
  if (fm === tm) return undefined;
  const ft = top(fm), tt = top(tm);
  if (ft === 'lib' && tt !== 'lib') return 'lib imports nothing of ours';
  if (ft === 'wire' && tt !== 'wire') return 'wire imports nothing of ours';
  if (ft === 'engine' && ['api', 'cli', 'client', 'daemon', 'registry'].includes(tt)) return `engine never imports ${tt}`;
  if ((ft === 'cli' || ft === 'client') && ['engine', 'api', 'daemon', 'registry'].includes(tt)) return `${ft} never imports ${tt}`;
  if (ft === 'client' && tt === 'cli') return 'client never imports cli';
  if (ft === 'registry' && !['lib', 'wire'].includes(tt)) return 'registry imports only lib and wire';
  if (ft === 'api' && !['lib', 'wire'].includes(tt)) return 'api imports only lib, wire and its backend interfaces';
  if (ft === 'engine' && tt === 'engine' && !isInterfaceFile(to)) return `engine modules meet through their types.ts or index.ts`;
  return undefined;
}

function matches(ex: Exception, e: Edge): boolean {
  const fromOk = ex.from === e.from || ex.from === moduleOf(e.from);
  const toOk = ex.to.endsWith('/*') ? moduleOf(e.to) === ex.to.slice(0, -2) : ex.to === e.to;
  return fromOk && toOk;
}

/** Cycles in the module graph (one per strongly connected component of more than one module). */
function moduleCycles(edges: Edge[]): string[] {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = moduleOf(e.from), b = moduleOf(e.to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    if (!graph.has(b)) graph.set(b, new Set());
    graph.get(a)!.add(b);
  }
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), on = new Set<string>(), stack: string[] = [];
  const comps: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) comps.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  // Name one concrete cycle per component: a shortest path back to its first module.
  return comps.map((comp) => {
    const start = comp[0]!, inComp = new Set(comp);
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!inComp.has(w)) continue;
        if (w === start) {
          const path = [v];
          while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
          return [...path, start].join(' → ');
        }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    return comp.join(' ↔ ');
  });
}

/** Checks the tree at `root` against the rules; `exceptions` are allowed breaches (each must still be needed). */
export function checkArchitecture(root: string, exceptions: readonly Exception[] = []): Report {
  const edges = importEdges(root);
  const used = new Set<Exception>();
  const violations: string[] = [];
  const kept: Edge[] = [];
  for (const e of edges) {
    const broken = ruleBroken(e.from, e.to);
    const cross = moduleOf(e.from) !== moduleOf(e.to);
    const ex = exceptions.find((x) => matches(x, e) && (x.kind === 'cycle' ? cross : broken !== undefined));
    if (ex) used.add(ex);
    if (ex?.kind !== 'cycle') kept.push(e);
    if (broken && !ex) violations.push(`${e.from} imports ${e.to}: ${broken}`);
  }
  return {
    violations: [...new Set(violations)].sort(),
    cycles: moduleCycles(kept),
    stale: exceptions.filter((x) => !used.has(x)),
  };
}

/** Folders the code map of ARCHITECTURE.md must list: every folder under src/ and src/engine/. */
export function mapFolders(root: string): string[] {
  const out: string[] = [];
  const list = (rel: string): string[] =>
    readdirSync(join(root, rel)).filter((n) => statSync(join(root, rel, n)).isDirectory()).map((n) => `${rel}/${n}/`);
  for (const d of list('src')) {
    if (d === 'src/engine/') { out.push(...list('src/engine')); continue; }
    out.push(d);
  }
  return out.sort();
}

/** The first-column paths of the code map table (`| \`src/lib/\` | …`), as written. */
export function codeMapRows(markdown: string): string[] {
  const section = markdown.split(/^## Code map$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows: string[] = [];
  for (const m of section.matchAll(/^\|\s*`([^`]+)`\s*\|/gm)) rows.push(m[1]!);
  return rows;
}

/** The code map's rows with the files they name and the modules their "depends on" column allows. */
export interface MapRow { folder: string; files: string[]; depends: string[] | 'any' }

export function codeMapTable(markdown: string): MapRow[] {
  const section = markdown.split(/^## Code map$/m)[1]?.split(/^## /m)[0] ?? '';
  const out: MapRow[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const folder = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    if (!folder?.startsWith('src/') || cells.length < 3) continue;
    const files = [...cells[1]!.matchAll(/`([^`\s]+\.ts)`/g)].map((m) => m[1]!);
    const dep = cells[2]!.split('never')[0]!;
    const depends = /everything/.test(dep) ? 'any' as const
      : [...dep.matchAll(/`([a-z][a-z/]*?(?:\.ts)?)\/?`/g)].map((m) => m[1]!);
    out.push({ folder, files, depends });
  }
  return out;
}

/**
 * Where a code map row and the tree disagree: a named file that is not in the folder, or a module the folder
 * imports that its "depends on" column does not name (engine modules by their short name).
 */
export function codeMapMismatches(root: string, rows: readonly MapRow[]): string[] {
  const bad: string[] = [];
  const edges = importEdges(root);
  for (const row of rows) {
    const rel = row.folder.replace(/^src\//, '').replace(/\/$/, '');
    for (const f of row.files) {
      if (f.includes('*')) continue;
      // A bare name anywhere in the folder; a path inside the folder, or else under src/ (`lib/dockerignore.ts`).
      const hit = sources(join(root, row.folder)).some((p) => relative(join(root, row.folder), p) === f
        || (!f.includes('/') && p.endsWith('/' + f))) || (f.includes('/') && existsSync(join(root, 'src', f)));
      if (!hit) bad.push(`${row.folder}: names ${f}, which is not there`);
    }
    if (row.depends === 'any' || !row.folder.endsWith('/')) continue;
    const mod = moduleOf(`${rel}/x.ts`);
    const stated = new Set(row.depends.flatMap((d) => d.endsWith('.ts') ? [moduleOf(`engine/${d}`)] : [d, `engine/${d}`]));
    const actual = new Set(edges.filter((e) => moduleOf(e.from) === mod && moduleOf(e.to) !== mod).map((e) => moduleOf(e.to)));
    for (const m of [...actual].sort()) {
      if (!stated.has(m)) bad.push(`${row.folder}: imports ${m}, which "depends on" does not name`);
    }
  }
  return bad;
}
