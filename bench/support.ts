/**
 * Benchmark plumbing: reference daemons (dockerd from Debian's docker.io) and wharfd side by side on private
 * sockets and data roots, a local registry, OCI layouts made from tarballs, and timing helpers.
 * Everything listens on loopback or unix sockets only.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, writeFile, rm, stat, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { createRefBridge } from '../test/support/refbridge.js';

export const execFileP = promisify(execFile);
export const projectRoot = resolve(import.meta.dirname, '..', '..');
export const DOCKER = existsSync('/usr/local/bin/docker') ? '/usr/local/bin/docker' : 'docker';

/** Where benchmark inputs made once are kept (the Debian rootfs and its tar, synthetic layers). */
export const CACHE = '/var/cache/wharf-bench';

/** A Debian bookworm minbase rootfs as one tar (~199 MB), made once with debootstrap and cached. */
export async function debianTar(): Promise<string> {
  const tar = join(CACHE, 'debian-bookworm.tar');
  if (existsSync(tar)) return tar;
  const rootfs = join(CACHE, 'rootfs-bookworm');
  if (!existsSync(join(rootfs, 'etc', 'debian_version'))) {
    await mkdir(CACHE, { recursive: true });
    console.error('# debootstrap --variant=minbase bookworm (about a minute)…');
    await execFileP('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], { maxBuffer: 64 << 20 });
  }
  await execFileP('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '-cf', tar + '.tmp', '.']);
  await execFileP('mv', [tar + '.tmp', tar]);
  return tar;
}

/**
 * Where both engines keep their data roots during a benchmark. `BENCH_FS=loop` (the default): a fresh ext4 made
 * with mkfs's defaults (so with a journal, as on any Docker host) on a loop device, mounted for this process and
 * removed at its end; both engines get the same filesystem in the same state. `BENCH_FS=tmp`: the machine's
 * temporary directory, whatever its filesystem is (this VM's root is ext4 *without* a journal, where creating
 * files right after mass deletions costs hundreds of µs each; see README.md).
 */
let benchFs: Promise<string> | undefined;
let benchFsTeardown: (() => Promise<void>) | undefined;
export function benchBase(): Promise<string> {
  benchFs ??= (async () => {
    if ((process.env.BENCH_FS ?? 'loop') !== 'loop') return tmpdir();
    const img = join(tmpdir(), `wharf-bench-fs-${process.pid}.img`);
    const mnt = join(tmpdir(), `wharf-bench-fs-${process.pid}`);
    await execFileP('truncate', ['-s', process.env.BENCH_FS_SIZE ?? '24G', img]);
    await execFileP('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
    const dev = (await execFileP('losetup', ['--find', '--show', '--direct-io=on', img])).stdout.trim();
    await mkdir(mnt, { recursive: true });
    await execFileP('mount', ['-t', 'ext4', dev, mnt]);
    benchFsTeardown = async () => {
      await execFileP('umount', [mnt]).catch(() => execFileP('umount', ['-l', mnt]));
      await execFileP('losetup', ['-d', dev]).catch(() => {});
      await rm(img, { force: true });
      await rm(mnt, { recursive: true, force: true });
    };
    const { stdout } = await execFileP('sh', ['-c', `tune2fs -l ${dev} | grep -i 'features'`]);
    console.error(`# data roots on a fresh ext4 (${dev}, ${stdout.trim().replace(/\s+/g, ' ')})`);
    return mnt;
  })();
  return benchFs;
}

/** Unmounts and removes the benchmark filesystem (after every daemon on it has stopped). */
export async function releaseBenchFs(): Promise<void> {
  const t = benchFsTeardown;
  benchFs = undefined; benchFsTeardown = undefined;
  if (t) await t();
}

export function ms(ns: bigint): number { return Number(ns / 1000n) / 1000; }

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return ms(process.hrtime.bigint() - t);
}

/**
 * A results row from per-engine timings: "| label | dockerd | wharfd | wharfd/dockerd |" (medians) plus a target
 * column when given; the single runs go to stderr.
 */
export function ratioRow(label: string, t: Record<string, number[]>, target?: string): string {
  const md = median(t.dockerd!), mw = median(t.wharfd!);
  console.error(`# ${label}: dockerd ${t.dockerd!.map((x) => x.toFixed(0)).join(',')} wharfd ${t.wharfd!.map((x) => x.toFixed(0)).join(',')}`);
  return `| ${label} | ${md.toFixed(0)} ms | ${mw.toFixed(0)} ms | **${(mw / md).toFixed(2)}** |${target === undefined ? '' : ` ${target} |`}`;
}

/** busybox made by wharf from the host's static busybox, then loaded into dockerd: the same image in both. */
export async function busyboxOnBoth(wharfd: Daemon, dockerd: Daemon): Promise<void> {
  await execFileP(join(projectRoot, 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${wharfd.sock}` } });
  const tar = join(tmpdir(), `bench-busybox-${process.pid}.tar`);
  try {
    await wharfd.docker(['save', '-o', tar, 'busybox']);
    await dockerd.docker(['load', '-i', tar]);
  } finally {
    await rm(tar, { force: true });
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function ping(sock: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: sock, path: '/_ping', method: 'GET', timeout: 1000 }, (r) => { r.resume(); res(r.statusCode === 200); });
    req.on('error', () => res(false));
    req.on('timeout', () => { req.destroy(); res(false); });
    req.end();
  });
}

export async function waitForSocket(sock: string, what: string, ms = 30000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ping(sock)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not answer on ${sock} within ${ms} ms`);
}

export interface Daemon {
  name: string;
  sock: string;
  root: string;
  proc: ChildProcess;
  docker(args: string[]): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((res) => {
    const t = setTimeout(() => { p.kill('SIGKILL'); }, 15000);
    p.once('exit', () => { clearTimeout(t); res(); });
    p.kill('SIGTERM');
  });
}

function dockerFor(sock: string) {
  return (args: string[]) => execFileP(DOCKER, args, {
    env: { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' },
    maxBuffer: 64 << 20,
  });
}

async function cleanRoot(root: string): Promise<void> {
  await execFileP('sh', ['-c', `grep -o " ${root}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => {});
  await rm(root, { recursive: true, force: true });
}

/**
 * dockerd from Debian's docker.io on its own socket and data root, with a bridge of its own (wref<N>, see
 * test/support/refbridge.ts: a veth per container like a default install, never the host's docker0, which
 * `--bridge=none` would delete) and no iptables rules (dockerd would also set the host's FORWARD policy to DROP,
 * which outlives it). `opts` is kept for callers: every reference dockerd now gets the same setup.
 */
export async function startDockerd(_opts: { network?: boolean; bridge?: boolean } = {}): Promise<Daemon> {
  const root = await mkdtemp(join(await benchBase(), 'bench-dockerd-'));
  const sock = join(root, 'docker.sock');
  const args = ['--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'), '-H', `unix://${sock}`,
    '--pidfile', join(root, 'docker.pid'), '--storage-driver', 'overlay2',
    '--containerd-namespace', 'bench', '--containerd-plugins-namespace', 'benchp'];
  const bridge = createRefBridge();
  process.once('exit', () => bridge.remove());
  args.push(`--bridge=${bridge.name}`, '--iptables=false', '--ip-masq=false');
  const log = createWriteStream(join(tmpdir(), `bench-dockerd-${process.pid}.log`));
  const proc = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.pipe(log); proc.stderr!.pipe(log);
  try {
    await waitForSocket(sock, 'dockerd', 60000);
  } catch (e) {
    await stopProc(proc);
    bridge.remove();
    throw e;
  }
  return { name: 'dockerd', sock, root, proc, docker: dockerFor(sock), stop: async () => { await stopProc(proc); await cleanRoot(root); bridge.remove(); } };
}

/** wharfd from this tree, or from `binRoot` (another checkout's build, for before/after comparisons). */
export async function startWharfd(extra: string[] = [], binRoot = projectRoot): Promise<Daemon> {
  const root = await mkdtemp(join(await benchBase(), 'bench-wharfd-'));
  const sock = join(root, 'wharf.sock');
  const proc = spawn(join(binRoot, 'bin', 'wharfd'), ['--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'),
    '-H', `unix://${sock}`, '--pidfile', join(root, 'wharfd.pid'), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(tmpdir(), `bench-wharfd-${process.pid}.log`));
  proc.stdout!.pipe(log); proc.stderr!.pipe(log);
  await waitForSocket(sock, 'wharfd', 30000);
  return { name: 'wharfd', sock, root, proc, docker: dockerFor(sock), stop: async () => { await stopProc(proc); await cleanRoot(root); } };
}

async function sha256File(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return { digest: `sha256:${h.digest('hex')}`, size: (await stat(path)).size };
}

/**
 * Writes an OCI image layout at `dir` for an image made of the given uncompressed layer tarballs (oldest
 * first); layers are gzipped into the layout. Returns the layout path for `skopeo copy oci:DIR:TAG`.
 */
export async function layoutFromTars(dir: string, tars: string[], tag: string, cmd: string[] = ['sh']): Promise<string> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const diffIds: string[] = [];
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  for (const tar of tars) {
    diffIds.push((await sha256File(tar)).digest);
    const gz = join(dir, 'layer.tmp');
    await pipeline(createReadStream(tar), createGzip({ level: 6 }), createWriteStream(gz));
    const { digest, size } = await sha256File(gz);
    await execFileP('mv', [gz, join(blobs, digest.slice(7))]);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size });
  }
  const now = new Date().toISOString();
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: now,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: tars.map((t) => ({ created: now, created_by: `/bin/sh -c #(nop) ADD file:${t.split('/').pop()} in / ` })),
  }));
  const put = async (b: Buffer) => {
    const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    await writeFile(join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const cfg = await put(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers,
  }));
  const man = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return dir;
}

export async function skopeoPush(layout: string, tag: string, dest: string): Promise<void> {
  await execFileP('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${dest}`], { maxBuffer: 16 << 20 });
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** Six extra layers of ~28 MB each, about 3,300 small files per layer, half of them incompressible. */
export async function extraLayerTars(): Promise<string[]> {
  const out: string[] = [];
  for (let i = 1; i <= 6; i++) {
    const tar = join(CACHE, `extra-layer-${i}.tar`);
    out.push(tar);
    if (existsSync(tar)) continue;
    const dir = join(CACHE, `extra-${i}`);
    await rm(dir, { recursive: true, force: true });
    for (let d = 0; d < 33; d++) {
      const sub = join(dir, `opt/layer${i}/d${d}`);
      await mkdir(sub, { recursive: true });
      for (let f = 0; f < 100; f++) {
        const size = 2000 + ((d * 100 + f) * 7919) % 12000;
        const data = f % 2 ? randomBytes(size) : Buffer.from(`line ${i} ${d} ${f}\n`.repeat(Math.ceil(size / 16)).slice(0, size));
        await writeFile(join(sub, `f${f}`), data);
      }
    }
    await execFileP('tar', ['--numeric-owner', '-C', dir, '-cf', tar, '.']);
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

/** The resident memory of one process in KiB (0 when it is gone). */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** A process and all its descendants (pids, the root first). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(p));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU time (utime + stime, ms) a process and all its descendants have used so far (10 ms ticks). */
export function treeCpuMs(root: number): number {
  let ticks = 0;
  for (const p of processTree(root)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]); // fields 14 and 15
    } catch { /* gone */ }
  }
  return ticks * 10;
}

/** The RSS of a process and all its descendants. */
export function treeRssKiB(root: number): number {
  return processTree(root).reduce((a, p) => a + rssKiB(p), 0);
}
