/**
 * Running commands in tests, and reading docker's table output.
 *
 *   const r = await run('skopeo', ['--version']);        // { code, stdout, stderr } — never throws on exit≠0
 *   const t = parseTable(r.stdout);                      // { header, columns, rows: [{ 'IMAGE ID': … }] }
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunResult { code: number; stdout: string; stderr: string }
export interface RunOpts {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to the child's stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Kill the child (SIGKILL) after this long; the result then has code 137 and a note in stderr. */
  timeoutMs?: number;
}

export const projectRoot = resolve(import.meta.dirname, '..', '..', '..');
/** Node 24 from the npm package `node`: the tests never run product code with the machine's node. */
export const NODE = resolve(projectRoot, 'node_modules', 'node', 'bin', 'node');
/**
 * What bin/wharf runs: the bundled CLI's launcher (scripts/build-cli.mjs) when it is newer than tsc's output,
 * else the unbundled entry.
 */
export const WHARF_CLI = ((): string => {
  const dir = resolve(projectRoot, 'dist', 'src', 'cli');
  try {
    if (statSync(join(dir, 'wharf-app.cjs')).mtimeMs > statSync(join(dir, 'entry.js')).mtimeMs) return join(dir, 'wharf.cjs');
  } catch { /* no bundle */ }
  return join(dir, 'main.js');
})();
/** The daemon as bin/wharfd runs it: the bundle (scripts/build-daemon.mjs) when newer than tsc's output, else main.js. */
export const WHARFD = ((): string => {
  const dir = resolve(projectRoot, 'dist', 'src', 'daemon');
  try {
    if (statSync(join(dir, 'wharfd.cjs')).mtimeMs > statSync(join(dir, 'main.js')).mtimeMs) return join(dir, 'wharfd.cjs');
  } catch { /* no bundle */ }
  return join(dir, 'main.js');
})();
export const DOCKER = existsSync('/usr/local/bin/docker') ? '/usr/local/bin/docker' : 'docker';

export function run(cmd: string, args: string[], opts: RunOpts = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => { /* child exited before reading */ });
    child.stdin.end(opts.input ?? '');
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolvePromise({ code: 127, stdout: '', stderr: `${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString();
      if (timedOut) stderr += `\n[test harness: ${cmd} ${args.join(' ')} killed after ${opts.timeoutMs ?? 120_000} ms]`;
      resolvePromise({
        code: code ?? (signal === 'SIGKILL' ? 137 : 128),
        stdout: Buffer.concat(out).toString(),
        stderr,
      });
    });
  });
}

/** Describes a result for assertion messages. */
export function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The output lines without the trailing empty one. */
export function lines(s: string): string[] {
  const l = s.split('\n');
  if (l.length && l[l.length - 1] === '') l.pop();
  return l;
}

export interface Table {
  header: string;
  /** Column titles in order, with the offset where each starts. */
  columns: { name: string; start: number }[];
  rows: Record<string, string>[];
}

/**
 * Parses docker's tabwriter tables (columns separated by at least 3 spaces in the header; titles such as
 * "IMAGE ID" contain single spaces). Cells are cut at the header's column offsets, so values line up only
 * when the tabwriter padded them the same way docker does.
 */
export function parseTable(stdout: string): Table {
  const ls = lines(stdout);
  const header = ls[0] ?? '';
  const columns: { name: string; start: number }[] = [];
  const re = /\S+(?: \S+)*/g;
  for (let m = re.exec(header); m; m = re.exec(header)) columns.push({ name: m[0], start: m.index });
  const rows = ls.slice(1).map((line) => {
    const row: Record<string, string> = {};
    columns.forEach((c, i) => {
      const end = i + 1 < columns.length ? columns[i + 1]!.start : undefined;
      row[c.name] = line.slice(c.start, end).trim();
    });
    return row;
  });
  return { header, columns, rows };
}

/** sha256:<hex> of bytes or a string. */
export function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Chain IDs of a list of diffIDs (OCI image spec: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1)+" "+DiffID(Ln))). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

/** docker's short ID: the first 12 hex digits of a digest. */
export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * Lays rows out the way docker's tables do (Go tabwriter, minwidth 10, padding 3; the last column unpadded).
 * `rows[0]` is the header.
 */
export function tabwrite(rows: string[][]): string {
  const n = Math.max(0, ...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < n - 1; c++) {
    widths[c] = Math.max(10, ...rows.map((r) => [...(r[c] ?? '')].length + 3));
  }
  return rows.map((r) => r.map((cell, c) => (c < n - 1 ? cell + ' '.repeat(widths[c]! - [...cell].length) : cell)).join('') + '\n').join('');
}

/** A command that must succeed: asserts exit 0 (showing its output otherwise) and gives its stdout. */
export function ok(r: RunResult): string {
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

/** Writes `files` (relative path → content) under `dir`, making parents; `*.sh` files are executable. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<string> {
  for (const [p, c] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), c, { mode: p.endsWith('.sh') ? 0o700 : 0o644 });
  }
  return dir;
}
