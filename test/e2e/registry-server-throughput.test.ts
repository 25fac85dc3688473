/**
 * Pull throughput of `wharf registry serve` against Debian's docker-registry on the same blob: 10 parallel
 * curl clients each fetch the same 50 MiB blob REP times; rounds alternate between the two servers and the
 * medians are compared. Reported as diagnostics (MB/s per client and aggregate). The assertion is a loose
 * regression guard (≥ 0.5× docker-registry), not the performance target (≥ 1.0×), because the machine is
 * shared while tests run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, startRegistry } from '../support/registry.js';

const execFileP = promisify(execFile);
const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/registry/main.js');
const CLIENTS = Number(process.env.WHARF_BENCH_CLIENTS ?? 10);
const REP = Number(process.env.WHARF_BENCH_REP ?? 3);
const ROUNDS = Number(process.env.WHARF_BENCH_ROUNDS ?? 3);

interface Round { perClient: number; aggregate: number }

async function round(url: string, repo: string, digest: string, size: number): Promise<Round> {
  const t0 = process.hrtime.bigint();
  const speeds = await Promise.all(Array.from({ length: CLIENTS }, async () => {
    const args = ['-s', '--fail'];
    for (let i = 0; i < REP; i++) args.push('-o', '/dev/null', `${url}/v2/${repo}/blobs/${digest}`);
    args.push('-w', '%{speed_download} %{size_download}\n');
    const { stdout } = await execFileP('curl', args);
    const lines = stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
    assert.equal(lines.length, REP);
    for (const [, got] of lines) assert.equal(got, size, 'whole blob received');
    return lines.reduce((a, [s]) => a + s, 0) / lines.length / 1e6;
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perClient: speeds.reduce((a, b) => a + b, 0) / speeds.length, aggregate: (CLIENTS * REP * size) / 1e6 / secs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function push(url: string, repo: string, data: Buffer, digest: string): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  await res.arrayBuffer();
  if (res.status !== 201) {
    // docker-registry 2.8 wants POST then PUT for a monolithic upload of this size
    const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await post.arrayBuffer();
    const loc = new URL(post.headers.get('location')!, url);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, { method: 'PUT', body: data });
    await put.arrayBuffer();
    assert.equal(put.status, 201);
  }
}

test('pull throughput with 10 parallel clients: wharf registry vs docker-registry', { timeout: 300_000 }, async (t) => {
  const data = randomBytes(50 << 20);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const ref = await startRegistry();
  const root = await mkdtemp(join(tmpdir(), 'wharf-e2e-regbench-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [MAIN, 'serve', '--addr', `127.0.0.1:${port}`, '--root', root], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((res, rej) => {
      child.stdout!.on('data', (d: Buffer) => { const m = /listening on (\S+)/.exec(d.toString()); if (m) res(m[1]!); });
      child.once('exit', (c) => rej(new Error(`registry exited ${c}`)));
    });
    await push(ref.url, 'bench/blob', data, digest);
    await push(url, 'bench/blob', data, digest);
    const theirs: Round[] = [];
    const ours: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      theirs.push(await round(ref.url, 'bench/blob', digest, data.length));
      ours.push(await round(url, 'bench/blob', digest, data.length));
    }
    const show = (rs: Round[]) => `${median(rs.map((r) => r.perClient)).toFixed(0)} MB/s per client, ${median(rs.map((r) => r.aggregate)).toFixed(0)} MB/s aggregate`;
    t.diagnostic(`docker-registry: ${show(theirs)}`);
    t.diagnostic(`wharf registry:  ${show(ours)}`);
    const ratio = median(ours.map((r) => r.aggregate)) / median(theirs.map((r) => r.aggregate));
    t.diagnostic(`ratio (aggregate): ${ratio.toFixed(2)}x`);
    assert.ok(ratio >= 0.5, `wharf registry serves at ${ratio.toFixed(2)}x docker-registry's throughput`);
  } finally {
    await new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
    });
    await ref.stop();
    await rm(root, { recursive: true, force: true });
  }
});
