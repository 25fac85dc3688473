/**
 * The bundled daemon (scripts/build-daemon.mjs → dist/src/daemon/wharfd.cjs, which bin/wharfd runs) and the esbuild
 * plugins it is made with (scripts/esbuild-plugins.mjs): a deferred builtin is not loaded until one of its exports
 * is read, and then works (named, namespace and default imports); import.meta in a bundled file names the file tsc
 * wrote, not the bundle; random identifiers made without node:crypto (src/lib/random.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomHex } from '../../src/lib/random.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');

function node(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    execFile(NODE, args, (e, out, err) => res({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }));
  });
}

interface Plugins {
  lazyBuiltins(o: { modules: string[]; importer?: RegExp }): unknown;
  importMetaOfSource(o: { outfile: string; files: RegExp; urls?: Map<string, string> }): { banner: string; plugin: unknown };
}

test('lazyBuiltins: a deferred builtin loads at the first read of an export, through every kind of import', async () => {
  const plugins = await import(pathToFileURL(join(ROOT, 'scripts', 'esbuild-plugins.mjs')).href) as Plugins;
  const { build } = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bundle-'));
  try {
    mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'src', 'sub', 'meta.js'), 'export const here = import.meta.filename; export const url = import.meta.url; export const dirOf = import.meta.dirname;\n');
    writeFileSync(join(dir, 'src', 'sub', 'worker.js'), 'export const workerUrl = import.meta.url;\n');
    writeFileSync(join(dir, 'src', 'entry.js'), `
import { gzipSync, gunzipSync } from 'node:zlib';
import * as os from 'node:os';
import dgram from 'node:dgram';
import { here, url, dirOf } from './sub/meta.js';
import { workerUrl } from './sub/worker.js';
const loaded = (m) => process.moduleLoadList.includes('NativeModule ' + m);
const out = { before: { zlib: loaded('zlib'), os: loaded('os'), dgram: loaded('dgram') } };
out.round = gunzipSync(gzipSync(Buffer.from('wharf'))).toString();
out.afterZlib = { zlib: loaded('zlib'), os: loaded('os') };
out.eol = os.EOL;
out.socket = typeof dgram.createSocket;
out.after = { os: loaded('os'), dgram: loaded('dgram') };
out.meta = { here, url, dirOf, workerUrl };
console.log(JSON.stringify(out));
`);
    const outfile = join(dir, 'out', 'bundle.cjs');
    const meta = plugins.importMetaOfSource({ outfile, files: /[\\/]src[\\/].*\.js$/, urls: new Map([[join(dir, 'src', 'sub', 'worker.js'), join(dir, 'out', 'worker.cjs')]]) });
    await build({
      entryPoints: [join(dir, 'src', 'entry.js')], outfile, bundle: true, platform: 'node', format: 'cjs', logLevel: 'silent',
      banner: { js: meta.banner }, plugins: [plugins.lazyBuiltins({ modules: ['zlib', 'os', 'dgram'] }), meta.plugin] as never,
    });
    const r = await node([outfile]);
    assert.equal(r.code, 0, r.err);
    const o = JSON.parse(r.out) as Record<string, Record<string, unknown> | string>;
    assert.deepEqual(o.before, { zlib: false, os: false, dgram: false }, 'nothing deferred is loaded by the bundle itself');
    assert.equal(o.round, 'wharf');
    assert.deepEqual(o.afterZlib, { zlib: true, os: false }, 'a named import loads its module, and only that one');
    assert.equal(o.eol, '\n', 'a namespace import reads through');
    assert.equal(o.socket, 'function', 'a default import reads through');
    assert.deepEqual(o.after, { os: true, dgram: true });
    const file = join(dir, 'src', 'sub', 'meta.js');
    assert.deepEqual(o.meta, { here: file, url: pathToFileURL(file).href, dirOf: join(dir, 'src', 'sub'), workerUrl: pathToFileURL(join(dir, 'out', 'worker.cjs')).href },
      'import.meta names the source file, not the bundle; a worker module\'s URL names the bundle made of it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the daemon bundle is built and runs: wharfd.cjs --version; its worker threads\' bundles beside it', async (t) => {
  const bundle = join(ROOT, 'dist', 'src', 'daemon', 'wharfd.cjs');
  try { statSync(bundle); } catch { t.skip('no bundle: tsc ran alone (npm run build makes it)'); return; }
  const r = await node([bundle, '--version']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Wharf version \S+\n$/);
  for (const w of ['extractworker', 'filewriter']) {
    const cjs = join(ROOT, 'dist', 'src', 'engine', 'layers', `${w}.cjs`);
    assert.ok(statSync(cjs).size > 0, `${cjs} is built with the daemon's bundle`);
    assert.ok(readFileSync(bundle, 'utf8').includes(`__wharfMeta("../engine/layers/${w}.cjs").url`), `the daemon bundle starts ${w} from its bundle`);
  }
});

test('randomHex: n random bytes as 2n hex digits, different each time', () => {
  const a = randomHex(32);
  const b = randomHex(32);
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, b);
  assert.match(randomHex(1), /^[0-9a-f]{2}$/);
});
