/**
 * Bundles the wharf CLI for a fast start (run by `npm run build`, after tsc): esbuild makes of tsc's output
 *  - dist/src/cli/wharf-app.cjs: the whole CLI from src/cli/entry.ts (commander, specs, commands, client) as one
 *    CommonJS script, ASCII only; modules load lazily inside it as they did as files;
 *  - dist/src/cli/wharf.cjs: the launcher (src/cli/launch.ts), which compiles the first with V8's code cache.
 * bin/wharf runs the launcher. Both files sit beside tsc's dist/src/cli/*.js, so paths made from
 * `import.meta.dirname` (the project root, ../registry/main.js) are the same in the bundle.
 *
 * Commander `require()`s node:child_process at load (for executable subcommands, which wharf does not use);
 * in the bundle it gets a stand-in that loads the real module on first use (child_process brings net, dgram
 * and the stream modules with it).
 */
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyBuiltins } from './esbuild-plugins.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist', 'src', 'cli');

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  // ASCII only (strings escaped, comments dropped with the whitespace): the launcher reads it as latin1
  charset: 'ascii',
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
  // CommonJS has no import.meta: the file's own names stand in (both bundles live in dist/src/cli)
  define: {
    'import.meta.url': '__filename',
    'import.meta.filename': '__filename',
    'import.meta.dirname': '__dirname',
  },
};

/** Commander's `require('node:child_process')` → a stand-in that loads the real module when first used. */
const lazyChildProcess = lazyBuiltins({ modules: ['child_process'], importer: /[\\/]node_modules[\\/]commander[\\/]/ });

/**
 * `await import('node:https')`, `await import('ssh2')`: esbuild keeps import() of an external module as it is,
 * but a script compiled by node:vm has no loader for import(). Each import() of a builtin or a package becomes a
 * small bundled module that require()s it, outside the bundle (loaded when the import() runs, as before; packages
 * imported lazily, like ssh2 with its optional native parts, stay in node_modules).
 */
const dynamicExternals = {
  name: 'dynamic-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === 'dynamic-import') return { path: args.path, namespace: 'wharf-external' };
      if (args.namespace === 'wharf-external') return { path: args.path, external: true };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'wharf-external' }, (args) => ({ loader: 'js', contents: `module.exports = require(${JSON.stringify(args.path)});` }));
  },
};

await build({
  ...common,
  entryPoints: [join(cliDir, 'entry.js')],
  outfile: join(cliDir, 'wharf-app.cjs'),
  plugins: [lazyChildProcess, dynamicExternals],
});

// esbuild escapes strings, template literals and identifiers, but writes regular expression literals as they
// are; a \uXXXX escape means the same character there (with or without the u flag). No import() may be left in
// it (see dynamicExternals): the build fails naming it.
{
  const file = join(cliDir, 'wharf-app.cjs');
  const text = readFileSync(file, 'utf8');
  // eslint-disable-next-line no-control-regex
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(file, ascii);
  const left = /[^\w$.'"]import\((?!\s*\))/.exec(ascii);
  if (left) throw new Error(`build-cli: an import() is left in the bundle, which node:vm cannot run: …${ascii.slice(left.index, left.index + 80)}`);
}

await build({
  ...common,
  stdin: {
    contents: `require('./launch.js').launch(require('node:path').join(__dirname, 'wharf-app.cjs'));`,
    resolveDir: cliDir,
    sourcefile: 'wharf-launcher.js',
  },
  outfile: join(cliDir, 'wharf.cjs'),
});
