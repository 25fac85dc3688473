/**
 * esbuild plugins shared by the bundles `npm run build` makes of tsc's output (scripts/build-cli.mjs for the CLI,
 * scripts/build-daemon.mjs for wharfd).
 */
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import { readFile } from 'node:fs/promises';

const require = createRequire(import.meta.url);

/**
 * `import … from 'node:crypto'` (or `require('node:child_process')`) → a stand-in module that loads the real one
 * when one of its exports is first read. esbuild turns an import of an external module into
 * `__toESM(require(…))`, which lists the module's own properties: the stand-in has one getter per export of the
 * real module (their names read here, from the Node that runs the build: the project's own, node_modules/.bin),
 * so listing them loads nothing, and `(0, m.createHash)(…)` loads it at the first call.
 *
 * `modules`: the builtins to defer (names without `node:`), each a plain object of functions and classes: never a
 * module that is itself a function or class (assert, events, stream, module), nor `process` or `console`, whose
 * methods need their own `this`. `importer`: which importing files it applies to (default: all).
 * `trace`: with WHARF_LAZY_TRACE set in the environment, the stand-in prints where each module got loaded.
 */
export function lazyBuiltins({ modules, importer = /./, trace = false }) {
  const lazy = new Set(modules);
  return {
    name: 'lazy-builtins',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
        if (args.namespace === 'lazy-builtin') return { path: args.path, external: true }; // the stand-in's require
        const name = args.path.replace(/^node:/, '');
        if (!lazy.has(name) || !importer.test(args.importer)) return undefined;
        return { path: name, namespace: 'lazy-builtin' };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
        const spec = JSON.stringify(`node:${args.path}`);
        const keys = JSON.stringify(Object.keys(require(`node:${args.path}`)));
        const traced = trace
          ? `(process.env.WHARF_LAZY_TRACE && process.stderr.write(${JSON.stringify(`lazy ${args.path}: `)} + new Error().stack.split('\\n').slice(3, 6).join(' |') + '\\n'), require(${spec}))`
          : `require(${spec})`;
        return {
          loader: 'js',
          contents: `let real;
const load = () => (real ??= ${traced});
for (const k of ${keys}) Object.defineProperty(exports, k, { get: () => load()[k], enumerable: true });`,
        };
      });
    },
  };
}

/**
 * `import.meta.url`, `.filename` and `.dirname` in a bundled file → those of the file tsc wrote, found from the
 * bundle's own `__dirname` (both live in dist/): a worker started with `new URL(import.meta.url)`, a helper found
 * beside its module (fsroot's child.js) or a package resolved with `createRequire(import.meta.url)` are the same
 * files as without the bundle. The bundle needs the `banner` this returns (it defines `__wharfMeta`).
 * `files`: the files whose text is rewritten (tsc's output). `urls`: files whose `import.meta.url` names another
 * file instead (a worker's module → its own bundle: `new Worker(new URL(import.meta.url))` then starts the bundle).
 */
export function importMetaOfSource({ outfile, files, urls = new Map() }) {
  const outDir = dirname(outfile);
  return {
    banner: 'const __wharfMeta=(rel)=>{const p=require("node:path");const f=p.join(__dirname,rel);'
      + 'return{filename:f,dirname:p.dirname(f),url:require("node:url").pathToFileURL(f).href};};',
    plugin: {
      name: 'import-meta-of-source',
      setup(b) {
        b.onLoad({ filter: files }, async (args) => {
          let text = await readFile(args.path, 'utf8');
          if (text.includes('import.meta')) {
            const rel = JSON.stringify(relative(outDir, args.path));
            const urlRel = JSON.stringify(relative(outDir, urls.get(args.path) ?? args.path));
            text = text.replace(/\bimport\.meta\.(url|filename|dirname)\b/g, (_m, k) => `__wharfMeta(${k === 'url' ? urlRel : rel}).${k}`);
            if (/\bimport\.meta\b/.test(text)) throw new Error(`${args.path}: an import.meta other than url, filename or dirname`);
          }
          return { contents: text, loader: 'js' };
        });
      },
    },
  };
}
