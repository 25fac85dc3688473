/**
 * Bundles wharfd for a smaller resident set (run by `npm run build`, after tsc and build-cli.mjs): esbuild makes of
 * tsc's output dist/src/daemon/wharfd.cjs, the daemon from src/daemon/main.ts with our modules and the small
 * packages they import (commander, tar-stream, content-disposition) as one CommonJS script, which bin/wharfd runs
 * when it is newer than tsc's dist/src/daemon/main.js (else main.js: tsc ran alone since).
 *
 * Why (bench/README.md, memory): run as ~190 ES modules, a fresh daemon was ~70 MB resident, ~10 more than the
 * same code as one script: Node's ES module loader (its own modules, resolving and linking each file, which
 * also gets TurboFan to optimize the loader's path and URL code) and a module record and source string per file.
 * Builtins a fresh daemon does not use (crypto with OpenSSL's set-up, zlib, worker_threads, …) load at first use.
 *
 * What stays outside: packages with native parts or loaded on first use (koffi, undici, ssh2, the AWS SDK), resolved
 * from node_modules as before; worker threads (layers' extraction and writer threads) and fsroot's child run tsc's
 * files, which import.meta in the bundle still names (importMetaOfSource).
 */
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importMetaOfSource, lazyBuiltins } from './esbuild-plugins.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const daemonDir = join(root, 'dist', 'src', 'daemon');
const outfile = join(daemonDir, 'wharfd.cjs');

/** Builtins loaded at their first use: none of them is needed to start and answer /_ping. */
const LAZY = ['crypto', 'child_process', 'zlib', 'worker_threads', 'os', 'v8', 'vm', 'dgram', 'net', 'tls', 'https', 'dns',
  'dns/promises', 'readline', 'timers/promises', 'stream/promises', 'perf_hooks', 'http2', 'cluster', 'inspector'];

const meta = importMetaOfSource({ outfile, files: /[\\/]dist[\\/]src[\\/].*\.js$/ });

await build({
  entryPoints: [join(daemonDir, 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
  external: ['koffi', 'undici', 'ssh2', 'cpu-features', '@aws-sdk/*'],
  banner: { js: meta.banner },
  plugins: [lazyBuiltins({ modules: LAZY, trace: true }), meta.plugin],
});
