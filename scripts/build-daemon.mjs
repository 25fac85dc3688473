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
 * `WHARF_LAZY_TRACE=1` in wharfd's environment prints where each of them got loaded (to find what pulls one in at start).
 *
 * What stays outside: packages with native parts or loaded on first use (koffi, ssh2, the AWS SDK), resolved
 * from node_modules as before; fsroot's child (a process of its own) runs tsc's files, which import.meta in the bundle
 * still names (importMetaOfSource). The layers' extraction and writer threads run bundles of their own
 * (dist/src/engine/layers/extractworker.cjs, filewriter.cjs: ~1.8 MB less per thread than their ES module graphs),
 * which the bundles' `new Worker(new URL(import.meta.url))` names; run unbundled, the daemon starts tsc's files.
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

/** Threads the daemon starts with `new Worker(new URL(import.meta.url))`: each runs a bundle of its own too. */
const layersDir = join(root, 'dist', 'src', 'engine', 'layers');
const workers = ['extractworker', 'filewriter'].map((n) => ({ entry: join(layersDir, `${n}.js`), outfile: join(layersDir, `${n}.cjs`) }));
const urls = new Map(workers.map((w) => [w.entry, w.outfile]));

for (const { entry, outfile: out } of [{ entry: join(daemonDir, 'main.js'), outfile }, ...workers]) {
  const meta = importMetaOfSource({ outfile: out, files: /[\\/]dist[\\/]src[\\/].*\.js$/, urls });
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
    absWorkingDir: root,
    external: ['koffi', 'ssh2', 'cpu-features', '@aws-sdk/*'],
    banner: { js: meta.banner },
    plugins: [lazyBuiltins({ modules: LAZY, trace: true }), meta.plugin],
  });
}
