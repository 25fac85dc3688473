#!/usr/bin/env node
// Runs Wharf's test suite after the build (`npm test` = `npm run build && node scripts/test.mjs`).
//
//   node scripts/test.mjs                 # unit tests, then e2e tests
//   node scripts/test.mjs unit            # only dist/test/unit
//   node scripts/test.mjs e2e images      # only e2e files whose path contains "images"
//
// Every test file runs in its own `node --test --test-reporter=tap FILE` with Node 24 from the npm
// package `node` (never the machine's node), under a per-file time limit (WHARF_TEST_FILE_TIMEOUT seconds,
// default 120 for unit files and 600 for e2e files); a file over its limit is killed with its process group
// and counted as failed. Unit files run two at a time (the machines have 2 cores). e2e files also run two at a
// time (WHARF_E2E_PARALLEL overrides; 1 = one after the other): every file has its own TMPDIR, daemons, data
// roots, sockets and registry ports, and the default bridge's addresses are claimed host-wide. A file whose
// results depend on having the machine to itself (race counts, throughput, timing comparisons) says so with a
// line `// wharf-test: alone` in its source: those run first, one at a time, before the shared part. A line
// `// wharf-test: slow` schedules a file early in the shared part, so the long files do not end up last.
// At the end the per-file summaries are added up and printed in the node test runner's own closing format
// ("# tests N", "# pass N", "# fail N", …).
// Exit status: 0 when nothing failed or was cancelled, 1 otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nodeBin = join(root, 'node_modules', 'node', 'bin', 'node');
if (!existsSync(nodeBin)) {
  console.error(`test: ${nodeBin} is missing: run "bash scripts/setup.sh" first`);
  process.exit(2);
}

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const kinds = args.filter((a) => a === 'unit' || a === 'e2e');
const filters = args.filter((a) => a !== 'unit' && a !== 'e2e');
const want = (kind) => kinds.length === 0 || kinds.includes(kind);
const match = (f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s));

const groups = [
  { kind: 'unit', files: want('unit') ? findTests(join(root, 'dist/test/unit')).filter(match) : [], parallel: 2, timeout: 120 },
  { kind: 'e2e', files: want('e2e') ? findTests(join(root, 'dist/test/e2e')).filter(match) : [], parallel: e2eParallel(), timeout: 600 },
];

function e2eParallel() {
  const n = Number(process.env.WHARF_E2E_PARALLEL);
  return Number.isInteger(n) && n >= 1 ? n : 2;
}

/** The `// wharf-test: <word>` marks of a compiled test file (tsc keeps comments). */
function marks(file) {
  const head = readFileSync(file, 'utf8').slice(0, 4000);
  return new Set([...head.matchAll(/^\/\/ wharf-test: (\w+)\s*$/gm)].map((m) => m[1]));
}
const envTimeout = Number(process.env.WHARF_TEST_FILE_TIMEOUT);

const KEYS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const total = Object.fromEntries(KEYS.map((k) => [k, 0]));
const failedFiles = [];
const started = Date.now();

// The S3 tests share one Ceph RGW micro-cluster (scripts/ceph-rgw.sh), left running between files; one this run
// started is stopped at the end. The script records who started a cluster (WHARF_RGW_OWNER, inherited by the test
// files): a cluster that was already running, or that another run started meanwhile, is left alone.
const rgwScript = join(root, 'scripts', 'ceph-rgw.sh');
const rgwOwner = `test-run-${process.pid}-${Date.now()}`;
process.env.WHARF_RGW_OWNER = rgwOwner;
const rgwStartedHere = () => {
  try {
    return readFileSync(join(process.env.WHARF_CEPH_DIR ?? '/tmp/wharf-ceph', 'started-by'), 'utf8').trim() === rgwOwner;
  } catch { return false; }
};

// What a file left running under its TMPDIR (containers, daemons, conmons, registries) is killed by the same
// code the test daemons' exit hook uses (test/support/leftovers.ts, built to dist/): this also covers files
// that were killed at their time limit, whose exit hooks never ran.
const leftovers = existsSync(join(root, 'dist/test/support/leftovers.js'))
  ? await import(pathToFileURL(join(root, 'dist/test/support/leftovers.js')).href)
  : undefined;

function killLeftovers(dir) {
  const n = leftovers?.killLeftovers(dir) ?? 0;
  if (n) process.stdout.write(`# killed ${n} process(es) left under ${dir}\n`);
}

/** Unmounts (lazily, deepest first) whatever is still mounted under `dir`, then removes `dir`. */
function cleanupDir(dir) {
  killLeftovers(dir);
  let mounts = [];
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m === dir || m.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
  } catch { /* no /proc */ }
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  try { rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch (e) { process.stdout.write(`# could not remove ${dir}: ${e.message}\n`); }
}

/**
 * Runs one test file; resolves with its TAP output and parsed summary. The file gets its own TMPDIR (every
 * fixture and daemon of the tests lives under os.tmpdir()), which is unmounted and removed afterwards, so a
 * file that was killed or crashed leaves nothing behind.
 */
function runFile(file, timeoutSec, live) {
  return new Promise((resolvePromise) => {
    const t0 = Date.now();
    const tmp = mkdtempSync(join(process.env.TMPDIR || tmpdir(), 'wharf-test-'));
    const child = spawn(nodeBin, ['--test', '--test-reporter=tap', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout can end the file's daemons too
      env: { ...process.env, TMPDIR: tmp, WHARF_TEST_FILE: relative(root, file) },
    });
    let out = '';
    const onData = (d) => {
      const s = d.toString();
      out += s;
      if (live) process.stdout.write(s);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    }, timeoutSec * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Anything the file left behind in its process group (a daemon a test forgot) goes too.
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* nothing left */ }
      cleanupDir(tmp);
      const summary = {};
      // The last summary block of the file's TAP output (lines "# pass N" at column 0).
      for (const line of out.split('\n')) {
        const m = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)\s*$/.exec(line);
        if (m) summary[m[1]] = Number(m[2]);
      }
      resolvePromise({ out, code, signal, timedOut, summary, ms: Date.now() - t0 });
    });
  });
}

function account(file, r) {
  const name = relative(root, file);
  const complete = KEYS.every((k) => k === 'suites' || typeof r.summary[k] === 'number');
  for (const k of KEYS) total[k] += r.summary[k] ?? 0;
  let bad = false;
  if (r.timedOut) {
    process.stdout.write(`# ${name}: killed after the per-file limit\n`);
    total.tests += 1; total.fail += 1; bad = true;
  } else if (!complete) {
    process.stdout.write(`# ${name}: ended without a test summary (exit ${r.code ?? r.signal})\n`);
    total.tests += 1; total.fail += 1; bad = true;
  } else if (r.code !== 0 || (r.summary.fail ?? 0) > 0 || (r.summary.cancelled ?? 0) > 0) {
    bad = true;
    if ((r.summary.fail ?? 0) === 0 && (r.summary.cancelled ?? 0) === 0) { total.tests += 1; total.fail += 1; }
  }
  if (bad) failedFiles.push(name);
  process.stdout.write(`# file ${name}: ${bad ? 'FAILED' : 'ok'} in ${(r.ms / 1000).toFixed(1)}s` +
    ` (pass ${r.summary.pass ?? 0}, fail ${r.summary.fail ?? 0}, todo ${r.summary.todo ?? 0}, skipped ${r.summary.skipped ?? 0})\n`);
}

for (const g of groups) {
  if (g.files.length === 0) continue;
  const limit = Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout : g.timeout;
  const alone = g.parallel > 1 ? g.files.filter((f) => marks(f).has('alone')) : g.files;
  const shared = g.files.filter((f) => !alone.includes(f));
  process.stdout.write(`# ${g.kind}: ${g.files.length} file(s), ${g.parallel} at a time` +
    `${alone.length && shared.length ? ` (${alone.length} alone first)` : ''}, ${limit}s limit per file\n`);
  for (const f of alone) {
    process.stdout.write(`# --- ${relative(root, f)}\n`);
    account(f, await runFile(f, limit, true));
  }
  if (shared.length) {
    // Buffered: each file's output is printed whole when it ends, so parallel files do not interleave.
    const slow = shared.filter((f) => marks(f).has('slow'));
    const queue = [...slow, ...shared.filter((f) => !slow.includes(f))];
    await Promise.all(Array.from({ length: g.parallel }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const r = await runFile(f, limit, false);
        process.stdout.write(`# --- ${relative(root, f)}\n${r.out}`);
        account(f, r);
      }
    }));
  }
}

if (existsSync(rgwScript) && rgwStartedHere()) {
  spawnSync('bash', [rgwScript, 'stop'], { stdio: 'ignore' });
  process.stdout.write('# stopped the Ceph RGW cluster the S3 tests started\n');
}
if (failedFiles.length) process.stdout.write(`# failed files:\n${failedFiles.map((f) => `#   ${f}\n`).join('')}`);
for (const k of KEYS) process.stdout.write(`# ${k} ${total[k]}\n`);
process.stdout.write(`# duration_ms ${Date.now() - started}\n`);
const ok = total.tests > 0 && total.fail === 0 && total.cancelled === 0 && failedFiles.length === 0;
if (total.tests === 0) process.stdout.write('# no test files found under dist/test (did the build run?)\n');
process.exit(ok ? 0 : 1);
