/**
 * Registry server benchmark (issue 4): pull throughput of `wharf registry serve` against Debian's
 * docker-registry on the same 50 MiB blob, 10 parallel curl clients each fetching it REP times; rounds alternate
 * between the two servers and the medians are compared (target: ≥ 1.0×). The e2e test
 * test/e2e/registry-server-throughput.test.ts runs the same measurement as a loose regression guard.
 *
 * S3 (issue 18, `node dist/bench/run.js registry-s3`, needs scripts/ceph-rgw.sh to start): 10 parallel clients
 * (curl, following redirects) each pulling a 7-layer image (manifest + 7 blobs) through 2 `--storage s3` replicas
 * on one RGW bucket, with and without `--redirect`, against 10 clients on one docker-registry (filesystem):
 * throughput, p50/p99 latency of the requests, the replicas' CPU time and peak RSS. Then a 200 MB image (4 layers)
 * pushed to the filesystem back end and through one `--blob-cache` replica on RGW, and pulled from each server
 * (the cached replica, a cold one, one without a cache, a `--redirect` one): `BENCH_BIG_RUNS` (3) fresh images,
 * the order turned each run, medians, with the CPU time of the registry process and of radosgw + ceph-osd in each
 * phase (the private cluster's daemons when WHARF_CEPH_DIR names it); `BENCH_S3_ONLY=big` runs only that part,
 * `BENCH_VERBOSE=1` prints each run. Every 200 MB transfer is curl's (a light client: the bench measures the
 * servers): a push streams the 4 blobs from files at once, a pull fetches one after another (curl's request times)
 * or 3 at a time as wharfd and dockerd do (from the moment the started curl got its list).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort, startRegistry } from '../test/support/registry.js';
import { readFile } from 'node:fs/promises';
import { makeBucket, removeBucket, startRgw, type Rgw } from '../test/support/rgw.js';

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

/**
 * fetch, sent again once when the connection failed before an answer: under a load of 15–30 runs died on
 * 'other side closed' / EPIPE (likely a kept-alive socket, idle since an earlier blob while the bench's own event
 * loop lagged, reused just as the server's keep-alive timeout closed it; not proven). Only idempotent requests go through here (blob uploads by digest, a
 * manifest PUT).
 */
async function fetchAgain(url: string | URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if ((e as Error).message !== 'fetch failed') throw e;
    return fetch(url, init);
  }
}

async function pushBlob(url: string, repo: string, data: Buffer, digest: string): Promise<void> {
  const res = await fetchAgain(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  await res.arrayBuffer();
  if (res.status === 201) return;
  // docker-registry 2.8 wants POST then PUT for a monolithic upload of this size
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  const loc = new URL(post.headers.get('location')!, url);
  loc.searchParams.set('digest', digest);
  const put = await fetchAgain(loc, { method: 'PUT', body: data });
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


// ---- S3 back end (issue 18) ----

interface Served { url: string; child: ChildProcess | null; stop(): Promise<void> }

async function serveWharf(args: string[], env: NodeJS.ProcessEnv = process.env, main = MAIN): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [main, 'serve', '--addr', `127.0.0.1:${port}`, '--workers', '1', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const url = await new Promise<string>((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => { const m = /listening on (\S+)/.exec(d.toString()); if (m) res(m[1]!); });
    child.once('exit', (c) => rej(new Error(`registry exited ${c}`)));
  });
  return {
    url, child,
    stop: () => new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
    }),
  };
}

interface Image { manifest: Buffer; digest: string; blobs: { data: Buffer; digest: string }[] }

function makeImage(layers: number, layerMiB: number): Image {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const blobs = Array.from({ length: layers }, () => { const data = randomBytes(layerMiB << 20); return { data, digest: sha(data) }; });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: blobs.map((b) => b.digest) } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha(config), size: config.length },
    layers: blobs.map((b) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: b.digest, size: b.data.length })),
  }));
  return { manifest, digest: sha(manifest), blobs: [{ data: config, digest: sha(config) }, ...blobs] };
}

async function pushImage(url: string, repo: string, img: Image): Promise<void> {
  await Promise.all(img.blobs.map((b) => pushBlob(url, repo, b.data, b.digest)));
  const r = await fetchAgain(`${url}/v2/${repo}/manifests/latest`, { method: 'PUT', body: img.manifest, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' } });
  await r.arrayBuffer();
  if (r.status !== 201) throw new Error(`manifest PUT to ${url}: ${r.status}`);
}

/** One client: one curl fetching the manifest and every blob (following redirects), each request timed. */
async function pullImage(url: string, repo: string, img: Image): Promise<number[]> {
  const args = ['-s', '--fail', '-L', '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', '-o', '/dev/null', `${url}/v2/${repo}/manifests/latest`];
  for (const b of img.blobs) args.push('-o', '/dev/null', `${url}/v2/${repo}/blobs/${b.digest}`);
  args.push('-w', '%{time_total} %{size_download}\n');
  const { stdout } = await execFileP('curl', args, { maxBuffer: 1 << 20 });
  const rows = stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
  const want = [img.manifest.length, ...img.blobs.map((b) => b.data.length)];
  if (rows.length !== want.length || rows.some(([, n], i) => n !== want[i])) throw new Error(`incomplete pull from ${url}: ${stdout}`);
  return rows.map(([t]) => t * 1000);
}

/**
 * One client fetching as wharfd and dockerd do, up to 3 transfers at a time (engine/distribution/pull.ts: 3
 * layers at once): one curl with `--parallel --parallel-max 3` over the manifest and every blob (redirects
 * followed), each body's length checked. The bench knows the digests, so the manifest and the config overlap the
 * first layers here (a real client reads them first: a few ms on either back end). Returns [ms] from the moment
 * the started curl was handed its request list to its exit: curl is started with `-K -` and waits, blocked reading
 * its standard input, before the clock starts: the curl process's wall time in `pullImage` exceeded its request
 * times by 0.1–0.3 s under load (its start and exit from this process), a third or more of a 200 MB pull from the
 * filesystem back end.
 * An in-process client was tried first (undici's request API with the redirect interceptor, as wharfd's
 * transport): it was itself the bottleneck (50 MiB from RGW in ~70 ms against curl's 39 ms; 200 MB three at a time
 * in 0.6–1.5 s at a load of 9–12), so it measured the client, not the store.
 */
async function pullImageParallel(url: string, repo: string, img: Image): Promise<number[]> {
  const want: [string, number][] = [[`${url}/v2/${repo}/manifests/latest`, img.manifest.length], ...img.blobs.map((b) => [`${url}/v2/${repo}/blobs/${b.digest}`, b.data.length] as [string, number])];
  const config = ['fail', 'location', 'parallel-max = 3', `header = ${q('Accept: application/vnd.docker.distribution.manifest.v2+json')}`,
    'write-out = "%{url} %{size_download}\\n"', ...want.flatMap(([u]) => [`url = ${q(u)}`, 'output = "/dev/null"'])];
  const { ms, stdout } = await curlTimed(config, `parallel pull from ${url}`);
  // --parallel reports transfers as they end: matched by the URL asked for
  const got = new Map(stdout.trim().split('\n').map((l) => { const [u, n] = l.split(' '); return [u!, Number(n)] as const; }));
  if (want.some(([u, n]) => got.get(u) !== n)) throw new Error(`incomplete parallel pull from ${url}: ${stdout}`);
  return [ms];
}

/**
 * A push as the bench's light client: one curl streaming every blob from its file (`-T`, read as it is sent: the
 * files were written beforehand and sit in the page cache) as a monolithic upload (`POST …/uploads?digest=`, no
 * `Expect: 100-continue`), all at once, then the manifest. Returns [ms] from the moment the started curl got its
 * list (as `pullImageParallel`) to the manifest's 201. The in-process client used before (Node's fetch with a
 * Buffer body) was itself the bottleneck: it copied each 50 MiB body into fresh memory before sending (~0.3 s
 * each, one after another) and the first 16 MiB of a blob reached the replica ~2 s after the push began, on the
 * filesystem back end as on S3, so the ratio measured the client more than the store.
 */
async function pushImageCurl(url: string, repo: string, img: Image, files: string[]): Promise<number[]> {
  const config = ['fail', `parallel-max = ${img.blobs.length}`, 'header = "Expect:"', 'request = POST', 'write-out = "%{url} %{http_code}\\n"',
    ...img.blobs.flatMap((b, i) => [`url = ${q(`${url}/v2/${repo}/blobs/uploads?digest=${b.digest}`)}`, `upload-file = ${q(files[i]!)}`, 'output = "/dev/null"'])];
  const { ms, stdout } = await curlTimed(config, `push to ${url}`);
  const codes = stdout.trim().split('\n').map((l) => l.split(' ')[1]);
  if (codes.length !== img.blobs.length || codes.some((c) => c !== '201')) throw new Error(`blob push to ${url}: ${stdout}`);
  const t1 = process.hrtime.bigint();
  const r = await fetchAgain(`${url}/v2/${repo}/manifests/latest`, { method: 'PUT', body: img.manifest, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' } });
  await r.arrayBuffer();
  if (r.status !== 201) throw new Error(`manifest PUT to ${url}: ${r.status}`);
  return [ms + Number(process.hrtime.bigint() - t1) / 1e6];
}

const q = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Runs one curl over a config of transfers (`--parallel`, silent) and times it from the moment the config is handed
 * over: curl is started with `-K -` and waits, blocked reading its standard input, before the clock starts (the
 * curl process's start and exit cost 0.1–0.3 s under load, a third or more of a 200 MB transfer here).
 */
async function curlTimed(config: string[], what: string): Promise<{ ms: number; stdout: string }> {
  const child = spawn('curl', ['-K', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); }); // --parallel draws its meter there
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  // Ready: the process is curl (exec'd) and blocked in read(0, …) (x86-64 syscall 0 on fd 0: its config).
  for (;;) {
    const [comm, sc] = await Promise.all([readFile(`/proc/${child.pid}/comm`, 'utf8').catch(() => ''), readFile(`/proc/${child.pid}/syscall`, 'utf8').catch(() => '')]);
    if (comm.trim() === 'curl' && sc.startsWith('0 0x0 ')) break;
    if (child.exitCode !== null) throw new Error('curl exited before reading its config');
    await new Promise((r) => setTimeout(r, 1));
  }
  const t0 = process.hrtime.bigint();
  child.stdin!.end(['silent', 'no-progress-meter', 'parallel', ...config].join('\n') + '\n');
  const code = await exited;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`${what}: curl exit ${code}: ${stdout} ${stderr.slice(-500)}`);
  return { ms, stdout };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function procUsage(pid: number): Promise<{ cpuMs: number; hwmKiB: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime (fields 14 and 15)
  const hwm = /VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs: ticks * 10, hwmKiB: Number(hwm?.[1] ?? 0) };
}

export interface PullLoad { mbps: number; p50: number; p99: number; cpuMs: number; rssMiB: number }

async function load(servers: Served[], repo: string, img: Image, clients: number, rounds: number): Promise<PullLoad> {
  const before = await Promise.all(servers.filter((s) => s.child).map((s) => procUsage(s.child!.pid!)));
  const times: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    const per = await Promise.all(Array.from({ length: clients }, (_, i) => pullImage(servers[i % servers.length]!.url, repo, img)));
    for (const p of per) times.push(...p);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = await Promise.all(servers.filter((s) => s.child).map((s) => procUsage(s.child!.pid!)));
  const bytes = clients * rounds * (img.manifest.length + img.blobs.reduce((a, b) => a + b.data.length, 0));
  return {
    mbps: bytes / 1e6 / secs, p50: pct(times, 50), p99: pct(times, 99),
    cpuMs: after.reduce((a, u, i) => a + u.cpuMs - before[i]!.cpuMs, 0),
    rssMiB: after.reduce((a, u) => a + u.hwmKiB, 0) / 1024,
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** CPU time (ms) of the processes named (radosgw, ceph-osd: the store's own work) plus the pids given. */
async function cpuOf(names: string[], pids: number[] = []): Promise<number> {
  let all = [...pids];
  for (const n of names) {
    const { stdout } = await execFileP('pgrep', ['-x', n]).catch(() => ({ stdout: '' }));
    all = all.concat(stdout.split('\n').filter(Boolean).map(Number));
  }
  let ms = 0;
  for (const pid of all) ms += (await procUsage(pid).catch(() => ({ cpuMs: 0 }))).cpuMs;
  return ms;
}

/**
 * The store's CPU (ms): radosgw + ceph-osd of the micro-cluster in WHARF_CEPH_DIR (its pid files) when that names
 * one, else of every radosgw and ceph-osd on the machine (the shared cluster's daemons too, if tests use it).
 */
async function storeCpu(): Promise<number> {
  const dir = process.env.WHARF_CEPH_DIR;
  if (dir) {
    const pids = await Promise.all(['client.rgw', 'osd.0'].map((n) => readFile(join(dir, 'run', `${n}.pid`), 'utf8').then(Number, () => 0)));
    if (pids.every(Boolean)) return cpuOf([], pids);
  }
  return cpuOf(['radosgw', 'ceph-osd']);
}

/**
 * One timed phase and the CPU the store (radosgw + ceph-osd) and the registry process spent in it; `clientMs`:
 * the client's own time when the phase's function returns it (the sum of the ms it returns: curl's per-request
 * times of `pullImage`, the start-free time of `pullImageParallel`).
 */
export interface Phase { ms: number; storeCpuMs: number; serverCpuMs: number; clientMs?: number }

async function phase(server: Served, fn: () => Promise<unknown>): Promise<Phase> {
  const pid = server.child?.pid ? [server.child.pid] : [];
  const s0 = await storeCpu();
  const r0 = await cpuOf([], pid);
  let out: unknown;
  const ms = await timed(async () => { out = await fn(); });
  const s1 = await storeCpu();
  const r1 = await cpuOf([], pid);
  const p: Phase = { ms, storeCpuMs: s1 - s0, serverCpuMs: r1 - r0 };
  if (Array.isArray(out)) p.clientMs = (out as number[]).reduce((a, b) => a + b, 0);
  return p;
}

/**
 * The 200 MB part: the phases of each run (ms, CPU) by name, their medians, and each run's S3/filesystem ratios.
 * Phases: `fs*` the filesystem back end; `cached*` one `--storage s3 --blob-cache` replica (the push goes through
 * it, so its pulls read its cache); `redir*` a `--redirect` replica on the same bucket (the client reads RGW);
 * `proxy*` a replica without a cache (every byte from RGW through the replica); `cold*` a `--blob-cache` replica
 * that has not seen the image (reads through into its cache); `before*` BENCH_WHARFD_BEFORE's `--redirect` replica
 * (a bucket of its own). `…Push` the push; `…Pull` one curl, blobs one after another (curl's request times in
 * `clientMs`); `…Par` one curl, 3 transfers at a time, its start left out.
 */
/** The filesystem back end's phase that phase `k` is compared with (`cachedPar` → `fsPar`). */
function fsPhase(k: string): string {
  return `fs${k.endsWith('Push') ? 'Push' : k.endsWith('Pull') ? 'Pull' : 'Par'}`;
}

export interface S3BenchResult {
  reference?: PullLoad; replicas?: PullLoad; redirect?: PullLoad;
  big: Record<string, Phase>;
  perRun: Record<string, number>[];
}

export async function measureS3(rgw: Rgw, o: { clients?: number; rounds?: number; layerMiB?: number } = {}): Promise<S3BenchResult> {
  const clients = o.clients ?? 10, rounds = o.rounds ?? 3;
  const img = makeImage(7, o.layerMiB ?? 8);
  const bucket = await makeBucket(rgw, 'wharf-bench');
  // BENCH_WHARFD_BEFORE=<a built checkout>: its registry too (--redirect, a bucket of its own), in the same runs.
  const beforeTree = process.env.BENCH_WHARFD_BEFORE;
  const beforeBucket = beforeTree ? await makeBucket(rgw, 'wharf-bench-before') : undefined;
  // A replica without a blob cache on a bucket of its own, for the push: what the cache's copy costs a push.
  const plainBucket = await makeBucket(rgw, 'wharf-bench-plain');
  const env = { ...process.env, AWS_ACCESS_KEY_ID: rgw.accessKey, AWS_SECRET_ACCESS_KEY: rgw.secretKey };
  const s3 = ['--storage', 's3', '--s3-bucket', bucket, '--s3-endpoint', rgw.endpoint, '--s3-force-path-style', '--s3-region', rgw.region];
  const ref = await startRegistry();
  const root = await mkdtemp(join(tmpdir(), 'wharf-regbench-fs-'));
  const caches = await mkdtemp(join(tmpdir(), 'wharf-regbench-cache-'));
  const started: Served[] = [];
  try {
    const bigOnly = process.env.BENCH_S3_ONLY === 'big';
    let reference: PullLoad | undefined, replicas: PullLoad | undefined, redirect: PullLoad | undefined;
    if (!bigOnly) {
      await pushImage(ref.url, 'bench/img', img);
      const refPid = Number((await execFileP('sh', ['-c', `pgrep -f 'docker-registry serve ${ref.dir}' | head -1`])).stdout.trim());
      const refServed: Served = { url: ref.url, child: refPid ? ({ pid: refPid } as ChildProcess) : null, stop: async () => {} };
      const plain = [await serveWharf(s3, env), await serveWharf(s3, env)];
      started.push(...plain);
      await pushImage(plain[0]!.url, 'bench/img', img);
      reference = await load([refServed], 'bench/img', img, clients, rounds);
      replicas = await load(plain, 'bench/img', img, clients, rounds);
      for (const p of plain) await p.stop();
    }
    const redir = [await serveWharf([...s3, '--redirect'], env), await serveWharf([...s3, '--redirect'], env)];
    started.push(...redir);
    if (!bigOnly) redirect = await load(redir, 'bench/img', img, clients, rounds);
    // 200 MB image: a fresh image each run (no 'already exists'), pushed to the filesystem back end and through
    // the cached S3 replica, then pulled from each server; the order of the pulls turns each run; medians.
    const fs = await serveWharf(['--root', root]);
    const cached = await serveWharf([...s3, '--blob-cache', join(caches, 'a')], env);
    const cold = await serveWharf([...s3, '--blob-cache', join(caches, 'b')], env);
    const proxy = await serveWharf(s3, env);
    const bare = await serveWharf(s3.map((a) => (a === bucket ? plainBucket : a)), env);
    started.push(bare);
    started.push(fs, cached, cold, proxy);
    const servers: Record<string, Served> = { fs, cached, redir: redir[0]!, proxy, cold, bare };
    if (beforeTree) {
      const s3b = s3.map((a) => (a === bucket ? beforeBucket! : a));
      servers.before = await serveWharf([...s3b, '--redirect'], env, resolve(beforeTree, 'dist', 'src', 'registry', 'main.js'));
      started.push(servers.before);
    }
    const runs: Record<string, Phase[]> = {};
    const add = (k: string, p: Phase) => (runs[k] ??= []).push(p);
    const perRun: Record<string, number>[] = [];
    for (let i = 0; i < Number(process.env.BENCH_BIG_RUNS ?? 3); i++) {
      const bigImg = makeImage(4, 50);
      const files = await Promise.all(bigImg.blobs.map(async (b, j) => { const f = join(caches, `blob-${i}-${j}`); await writeFile(f, b.data); return f; }));
      const repo = `bench/big${i}`;
      const pushers = ['fs', 'cached', 'bare', ...(servers.before ? ['before'] : [])];
      if (i % 2) pushers.reverse();
      for (const k of pushers) add(`${k}Push`, await phase(servers[k]!, () => pushImageCurl(servers[k]!.url, repo, bigImg, files)));
      await Promise.all(files.map((f) => rm(f, { force: true })));
      // The cold replica's own cache has never seen this image: it pulls first, from RGW through itself.
      const pullers = ['fs', 'cached', 'redir', 'proxy', 'cold', ...(servers.before ? ['before'] : [])];
      for (let r = 0; r < i % pullers.length; r++) pullers.push(pullers.shift()!);
      for (const k of pullers) {
        if (k === 'cold') {
          add('coldPar', await phase(servers[k]!, () => pullImageParallel(servers[k]!.url, repo, bigImg)));
          continue;
        }
        add(`${k}Pull`, await phase(servers[k]!, () => pullImage(servers[k]!.url, repo, bigImg)));
        add(`${k}Par`, await phase(servers[k]!, () => pullImageParallel(servers[k]!.url, repo, bigImg)));
      }
      const last = (k: string) => runs[k]!.at(-1)!;
      const ratio: Record<string, number> = {};
      for (const k of Object.keys(runs)) {
        if (k.startsWith('fs')) continue;
        const ours = last(k), theirs = last(fsPhase(k));
        ratio[k] = ours.clientMs! / theirs.clientMs!;
      }
      perRun.push(ratio);
      if (process.env.BENCH_VERBOSE) console.error(`# run ${i}: ${Object.entries(runs).map(([k, v]) => `${k} ${(v.at(-1)!.clientMs ?? v.at(-1)!.ms).toFixed(0)} ms (registry ${v.at(-1)!.serverCpuMs} ms, store ${v.at(-1)!.storeCpuMs} ms CPU)`).join(', ')}`);
    }
    const med = (ps: Phase[]): Phase => {
      const m: Phase = { ms: medianOf(ps.map((p) => p.ms)), serverCpuMs: medianOf(ps.map((p) => p.serverCpuMs)), storeCpuMs: medianOf(ps.map((p) => p.storeCpuMs)) };
      if (ps.every((p) => p.clientMs !== undefined)) m.clientMs = medianOf(ps.map((p) => p.clientMs!));
      return m;
    };
    const big = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, med(v)]));
    return { reference, replicas, redirect, big, perRun };
  } finally {
    for (const s of started) await s.stop();
    await ref.stop();
    await rm(root, { recursive: true, force: true });
    await rm(caches, { recursive: true, force: true });
    await removeBucket(rgw, bucket);
    if (beforeBucket) await removeBucket(rgw, beforeBucket);
    await removeBucket(rgw, plainBucket);
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if ((isMain && process.argv[2] !== 's3') || process.env.WHARF_BENCH_MAIN === 'registry') {
  const r = await measureRegistryThroughput({ rounds: Number(process.env.BENCH_RUNS ?? 5) });
  console.error(`# docker-registry: ${describe(r.theirs)}`);
  console.error(`# wharf registry:  ${describe(r.ours)}`);
  console.log('| work | docker-registry | wharf registry | wharf/docker-registry | target |');
  console.log('|---|---|---|---|---|');
  console.log(`| pull throughput, 10 clients × 3 × 50 MiB blob (aggregate) | ${medianOf(r.theirs.map((x) => x.aggregate)).toFixed(0)} MB/s | ${medianOf(r.ours.map((x) => x.aggregate)).toFixed(0)} MB/s | **${r.ratio.toFixed(2)}** | ≥ 1.0 |`);
}
if ((isMain && process.argv[2] === 's3') || process.env.WHARF_BENCH_MAIN === 'registry-s3') {
  const rgw = await startRgw();
  if ('skip' in rgw) {
    console.error(`# registry-s3 skipped: ${rgw.skip}`);
  } else {
    const r = await measureS3(rgw, { rounds: Number(process.env.BENCH_RUNS ?? 3) });
    const row = (name: string, l: PullLoad) => `| ${name} | ${l.mbps.toFixed(0)} MB/s | ${l.p50.toFixed(0)} ms | ${l.p99.toFixed(0)} ms | ${(l.cpuMs / 1000).toFixed(1)} s | ${l.rssMiB.toFixed(0)} MiB |`;
    if (r.reference && r.replicas && r.redirect) {
      console.log('| 10 clients pulling a 7-layer image (7 × 8 MiB) | throughput | p50 request | p99 request | server CPU | server peak RSS |');
      console.log('|---|---|---|---|---|---|');
      console.log(row('docker-registry, filesystem (1 process)', r.reference));
      console.log(row('wharf registry, 2 replicas on RGW', r.replicas));
      console.log(row('wharf registry, 2 replicas on RGW, --redirect', r.redirect));
      console.log('');
    }
    const b = r.big;
    const cpu = (p: Phase) => `${(p.serverCpuMs / 1000).toFixed(2)} s / ${(p.storeCpuMs / 1000).toFixed(2)} s`;
    const rows: [string, string, string][] = [
      ['push through the replica (`--blob-cache`)', 'cachedPush', '≤ 1.5'],
      ['push through a replica without a cache', 'barePush', ''],
      ['pull through that replica, 3 transfers at a time', 'cachedPar', '≤ 1.5'],
      ['pull through that replica, blobs one after another', 'cachedPull', '≤ 1.5'],
      ['pull through a replica that has not seen the image (reads RGW into its cache), 3 at a time', 'coldPar', ''],
      ['pull through a replica without a cache, 3 at a time', 'proxyPar', ''],
      ['pull through a replica without a cache, one after another', 'proxyPull', ''],
      ['pull with `--redirect` (bytes from RGW), 3 at a time', 'redirPar', ''],
      ['pull with `--redirect`, one after another', 'redirPull', ''],
      ['push (before: BENCH_WHARFD_BEFORE, `--redirect`)', 'beforePush', ''],
      ['pull --redirect, 3 at a time (before)', 'beforePar', ''],
      ['pull --redirect, one after another (before)', 'beforePull', ''],
    ];
    console.log('| 200 MB image (4 × 50 MiB) | filesystem | S3 on RGW | S3/filesystem | target | CPU registry / radosgw+osd (fs; S3) | each run |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, k, target] of rows) {
      const p = b[k];
      if (!p) continue;
      const fsP = b[fsPhase(k)]!;
      const ratio = (p.clientMs! / fsP.clientMs!).toFixed(2);
      const runs = r.perRun.map((x) => x[k]?.toFixed(2)).join(', ');
      console.log(`| ${name} | ${fsP.clientMs!.toFixed(0)} ms | ${p.clientMs!.toFixed(0)} ms | ${target ? `**${ratio}**` : ratio} | ${target || 'reported'} | ${cpu(fsP)}; ${cpu(p)} | ${runs} |`);
    }
    console.log('');
    console.log('Times are curl\'s own: pulls one after another by its request times; 3 at a time, and pushes (4 blobs at once, then the manifest), from the moment the started curl got its list to its exit.');
  }
}
