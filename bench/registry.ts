/**
 * Registry server benchmark (issue 4): pull throughput of `wharf registry serve` against Debian's
 * docker-registry on the same 50 MiB blob, 10 parallel curl clients each fetching it REP times; rounds alternate
 * between the two servers and the medians are compared (target: ≥ 1.0×). The e2e test
 * test/e2e/registry-server-throughput.test.ts runs the same measurement as a loose regression guard.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort, startRegistry } from '../test/support/registry.js';

const execFileP = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '..', 'src', 'registry', 'main.js');

export interface ThroughputOptions { clients?: number; rep?: number; rounds?: number; sizeMiB?: number }
export interface Round { perClient: number; aggregate: number }
export interface ThroughputResult { theirs: Round[]; ours: Round[]; ratio: number }

async function round(url: string, repo: string, digest: string, size: number, clients: number, rep: number): Promise<Round> {
  const t0 = process.hrtime.bigint();
  const speeds = await Promise.all(Array.from({ length: clients }, async () => {
    const args = ['-s', '--fail'];
    for (let i = 0; i < rep; i++) args.push('-o', '/dev/null', `${url}/v2/${repo}/blobs/${digest}`);
    args.push('-w', '%{speed_download} %{size_download}\n');
    const { stdout } = await execFileP('curl', args);
    const lines = stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
    if (lines.length !== rep || lines.some(([, got]) => got !== size)) throw new Error(`a client did not receive the whole blob ${rep} times: ${stdout}`);
    return lines.reduce((a, [s]) => a + s, 0) / lines.length / 1e6;
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perClient: speeds.reduce((a, b) => a + b, 0) / speeds.length, aggregate: (clients * rep * size) / 1e6 / secs };
}

export function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function pushBlob(url: string, repo: string, data: Buffer, digest: string): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  await res.arrayBuffer();
  if (res.status === 201) return;
  // docker-registry 2.8 wants POST then PUT for a monolithic upload of this size
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  const loc = new URL(post.headers.get('location')!, url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: data });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`blob upload to ${url} answered ${put.status}`);
}

/** Both servers on fresh roots, the same blob pushed to each, then alternating rounds. */
export async function measureRegistryThroughput(o: ThroughputOptions = {}): Promise<ThroughputResult> {
  const clients = o.clients ?? 10, rep = o.rep ?? 3, rounds = o.rounds ?? 3;
  const data = randomBytes((o.sizeMiB ?? 50) << 20);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const ref = await startRegistry();
  const root = await mkdtemp(join(tmpdir(), 'wharf-regbench-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [MAIN, 'serve', '--addr', `127.0.0.1:${port}`, '--root', root], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((res, rej) => {
      child.stdout!.on('data', (d: Buffer) => { const m = /listening on (\S+)/.exec(d.toString()); if (m) res(m[1]!); });
      child.once('exit', (c) => rej(new Error(`registry exited ${c}`)));
    });
    await pushBlob(ref.url, 'bench/blob', data, digest);
    await pushBlob(url, 'bench/blob', data, digest);
    const theirs: Round[] = [];
    const ours: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      theirs.push(await round(ref.url, 'bench/blob', digest, data.length, clients, rep));
      ours.push(await round(url, 'bench/blob', digest, data.length, clients, rep));
    }
    const ratio = medianOf(ours.map((r) => r.aggregate)) / medianOf(theirs.map((r) => r.aggregate));
    return { theirs, ours, ratio };
  } finally {
    await new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
    });
    await ref.stop();
    await rm(root, { recursive: true, force: true });
  }
}

export function describe(rs: Round[]): string {
  return `${medianOf(rs.map((r) => r.perClient)).toFixed(0)} MB/s per client, ${medianOf(rs.map((r) => r.aggregate)).toFixed(0)} MB/s aggregate`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) || process.env.WHARF_BENCH_MAIN === 'registry') {
  const r = await measureRegistryThroughput({ rounds: Number(process.env.BENCH_RUNS ?? 5) });
  console.error(`# docker-registry: ${describe(r.theirs)}`);
  console.error(`# wharf registry:  ${describe(r.ours)}`);
  console.log('| work | docker-registry | wharf registry | wharf/docker-registry | target |');
  console.log('|---|---|---|---|---|');
  console.log(`| pull throughput, 10 clients × 3 × 50 MiB blob (aggregate) | ${medianOf(r.theirs.map((x) => x.aggregate)).toFixed(0)} MB/s | ${medianOf(r.ours.map((x) => x.aggregate)).toFixed(0)} MB/s | **${r.ratio.toFixed(2)}** | ≥ 1.0 |`);
}
