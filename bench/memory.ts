/**
 * Memory benchmark (issue 17, item 1): wharfd against dockerd + containerd in one run, through the same docker CLI.
 *
 * Each round starts both engines afresh (alternating order) and reads their resident memory
 *   - freshly started (3 s after the socket answers, no request yet),
 *   - 10 s (and 20 s) after a cold pull of the Debian bookworm minbase image (1 layer, ~93 MB gzip, ~199 MB unpacked, pushed
 *     to a local docker-registry from a debootstrap-made rootfs), a build on it and 5 `run --rm` of it;
 * and the peak during the pull and the build. Then, once, on fresh engines: the peak of a pull of the 7-layer
 * image (~370 MB unpacked), of `load` of each image's saved tar and of builds with an 8 MB and a 256 MB context
 * (a bounded peak does not grow with the image or the context), and the memory with 50 running busybox
 * containers (per container, including conmon for wharfd and containerd-shim for dockerd), read also at 20 (issue 14).
 * BENCH_TRACE=1 prints the daemon's memory every second for 20 s after the work of each round.
 *
 * "Memory of an engine" is the resident set (RSS) summed over its processes: the daemon and its descendants
 * (dockerd: containerd; wharfd: the fsroot worker when one is alive), plus the per-container helpers that outlive
 * their parent (conmon, containerd-shim-runc-v2: processes whose command line names the engine's data root),
 * never the containers' own processes (those in another pid namespace). Peaks are sampled every 20 ms.
 *
 * Env: BENCH_RUNS (default 5), BENCH_ENGINES (default "dockerd,wharfd"), BENCH_SKIP_ONCE=1 (rounds only),
 * BENCH_WHARFD_BEFORE=<a built checkout>: its wharfd joins the rounds as "wharfd-before" (added to BENCH_ENGINES).
 * Needs what bench/pull.ts needs (root, dockerd, docker-registry, skopeo, debootstrap or its cached rootfs).
 */
import { readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import {
  CACHE, busyboxOnBoth, debianTar, execFileP, extraLayerTars, projectRoot, layoutFromTars, median, processTree, releaseBenchFs, rssKiB,
  skopeoPush, startDockerd, startWharfd, type Daemon,
} from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BEFORE = process.env.BENCH_WHARFD_BEFORE;
const ENGINES = [...(process.env.BENCH_ENGINES ?? 'dockerd,wharfd').split(','), ...(BEFORE ? ['wharfd-before'] : [])];
/** BENCH_TRACE=1: the daemons log at debug level (their idle trims, with RSS before and after, in the bench's wharfd log). */
const TRACE_ARGS = process.env.BENCH_TRACE === '1' ? ['--debug'] : [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const MiB = (kib: number) => (kib / 1024).toFixed(0);

const selfPidNs = readlinkSync('/proc/self/ns/pid');

/** The engine's processes: the daemon's tree and the helpers naming its root, without containers' processes. */
function enginePids(d: Daemon): number[] {
  const pids = new Set(processTree(d.proc.pid!));
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(d.root)) pids.add(Number(p));
    } catch { /* gone */ }
  }
  return [...pids].filter((p) => {
    try { return readlinkSync(`/proc/${p}/ns/pid`) === selfPidNs; } catch { return false; }
  });
}

function engineRssKiB(d: Daemon): { total: number; byName: Record<string, number> } {
  const byName: Record<string, number> = {};
  let total = 0;
  for (const p of enginePids(d)) {
    const r = rssKiB(p);
    let name = '?';
    try { name = readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { /* gone */ }
    byName[name] = (byName[name] ?? 0) + r;
    total += r;
  }
  return { total, byName };
}

/** The anonymous part of the engine's resident memory (RssAnon summed; the rest is file-backed: binaries' pages). */
function engineAnonKiB(d: Daemon): number {
  return enginePids(d).reduce((a, p) => a + (statusOf(p).RssAnon ?? 0), 0);
}

/** Runs `fn` while sampling the engine's memory every 20 ms (process list refreshed every 200 ms); the peak in KiB. */
async function peakDuring(d: Daemon, fn: () => Promise<unknown>): Promise<number> {
  let pids = enginePids(d);
  let peak = 0;
  let n = 0;
  const timer = setInterval(() => {
    if (++n % 10 === 0) pids = enginePids(d);
    peak = Math.max(peak, pids.reduce((a, p) => a + rssKiB(p), 0));
  }, 20);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, engineRssKiB(d).total);
}

/** Numeric fields of /proc/PID/status (kB for sizes). */
function statusOf(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const m of readFileSync(`/proc/${pid}/status`, 'utf8').matchAll(/^(\w+):\s+(\d+)/gm)) out[m[1]!] = Number(m[2]);
  } catch { /* gone */ }
  return out;
}

/**
 * The daemon's resident anonymous memory by kind of mapping (MiB, from /proc/PID/smaps): glibc's main heap, thread
 * arenas (64 MiB reservations), V8's 256 KiB pages, larger V8 or mmap'd regions, the rest.
 */
function anonKinds(pid: number): string {
  const kinds: Record<string, number> = {};
  let cur: { kind: string; size: number } | null = null;
  const big: string[] = [];
  try {
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m) {
        const size = (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 1024;
        const path = m[3]!;
        cur = path === '[heap]' ? { kind: 'brk', size } : path ? null : { kind: size === 256 ? 'v8-256k' : size >= 60 * 1024 && size <= 64 * 1024 ? 'arena' : size > 256 ? 'mmap>256k' : 'small', size };
        continue;
      }
      const a = /^Anonymous:\s+(\d+) kB/.exec(line);
      if (a && cur) kinds[cur.kind] = (kinds[cur.kind] ?? 0) + Number(a[1]);
      if (a && cur?.kind === 'mmap>256k' && Number(a[1]) >= 1024) big.push(`${MiB(Number(a[1]))}/${MiB(cur.size)}`);
    }
  } catch { /* gone */ }
  return `${Object.entries(kinds).map(([k, v]) => `${k} ${MiB(v)}`).join(' ')}; mappings ≥ 1 MiB resident/size: ${big.join(' ')}`;
}

async function start(name: string): Promise<Daemon> {
  return name === 'dockerd' ? startDockerd() : name === 'wharfd-before' ? startWharfd(TRACE_ARGS, BEFORE) : startWharfd(TRACE_ARGS);
}

interface Round { fresh: number; freshAnon: number; pull: number; build: number; idle: number; idleAnon: number; settled: number; detail: string }

async function round(name: string, refDeb: string, ctx: string): Promise<Round> {
  const d = await start(name);
  try {
    await sleep(3000);
    const fresh = engineRssKiB(d).total;
    const freshAnon = engineAnonKiB(d);
    if (process.env.BENCH_TRACE === '1') console.error(`#   ${name} fresh: [${anonKinds(d.proc.pid!)}]`);
    const pull = await peakDuring(d, () => d.docker(['pull', '-q', refDeb]));
    const build = await peakDuring(d, () => d.docker(['build', '-q', '-t', 'bench/mem-build', '--build-arg', `BASE=${refDeb}`, ctx]));
    for (let i = 0; i < 5; i++) await d.docker(['run', '--rm', refDeb, 'true']);
    // one look a second for 20 s (BENCH_TRACE=1 prints them: the daemon's anonymous/file-backed pages and threads)
    const t0 = Date.now();
    const trace: string[] = [];
    let idle = engineRssKiB(d);
    let idleAnon = 0;
    for (let s = 1; s <= 20; s++) {
      await sleep(t0 + s * 1000 - Date.now());
      const now = engineRssKiB(d);
      if (s === 10) { idle = now; idleAnon = engineAnonKiB(d); }
      const st = statusOf(d.proc.pid!);
      trace.push(`${s}s ${MiB(now.total)} (anon ${MiB(st.RssAnon ?? 0)} file ${MiB(st.RssFile ?? 0)} thr ${st.Threads ?? 0})`);
      if ((s === 10 || s === 20) && process.env.BENCH_TRACE === '1') trace.push(`[${anonKinds(d.proc.pid!)}]`);
      if (s === 20) {
        if (process.env.BENCH_TRACE === '1') console.error(`#   ${name} after the work: ${trace.join(', ')}`);
        const detail = Object.entries(idle.byName).map(([k, v]) => `${k} ${MiB(v)}`).join(', ');
        return { fresh, freshAnon, pull, build, idle: idle.total, idleAnon, settled: now.total, detail };
      }
    }
    throw new Error('unreachable');
  } finally {
    await d.stop();
  }
}

async function makeContext(dir: string, blobBytes: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  // written in 16 MiB pieces: the benchmark itself should not hold the whole blob
  const parts = Math.ceil(blobBytes / (16 << 20));
  await writeFile(join(dir, 'blob.bin'), '');
  const { appendFile } = await import('node:fs/promises');
  for (let i = 0; i < parts; i++) await appendFile(join(dir, 'blob.bin'), randomBytes(Math.min(16 << 20, blobBytes - i * (16 << 20))));
  await writeFile(join(dir, 'Dockerfile'), [
    'ARG BASE',
    'FROM $BASE',
    'RUN echo built > /stamp',
    'COPY blob.bin /blob.bin',
    'CMD ["cat", "/stamp"]',
  ].join('\n') + '\n');
  return dir;
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), 'bench-memory-'));
  const open: Daemon[] = [];
  try {
    const deb = await debianTar();
    const layouts = join(CACHE, 'layouts-memory');
    await rm(layouts, { recursive: true, force: true });
    const refDeb = `${reg.host}/bench/debian:bookworm`;
    await skopeoPush(await layoutFromTars(join(layouts, 'debian'), [deb], 'bookworm', ['bash']), 'bookworm', refDeb);
    const small = await makeContext(join(work, 'ctx-8m'), 8 << 20);

    const rounds: Record<string, Round[]> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const name of i % 2 ? [...ENGINES].reverse() : ENGINES) {
        const r = await round(name, refDeb, small);
        (rounds[name] ??= []).push(r);
        console.error(`# round ${i + 1} ${name}: fresh ${MiB(r.fresh)} (anon ${MiB(r.freshAnon)}) pull-peak ${MiB(r.pull)} build-peak ${MiB(r.build)} idle ${MiB(r.idle)} MiB (anon ${MiB(r.idleAnon)}; ${r.detail}), 20 s ${MiB(r.settled)}`);
      }
    }
    const med = (name: string, k: keyof Omit<Round, 'detail'>) => median(rounds[name]!.map((r) => r[k]));
    const cell = (name: string, k: keyof Omit<Round, 'detail'>) => rounds[name]
      ? `${MiB(med(name, k))} (${MiB(Math.min(...rounds[name]!.map((r) => r[k])))}–${MiB(Math.max(...rounds[name]!.map((r) => r[k])))})` : '–';
    const ratio = (k: keyof Omit<Round, 'detail'>) => rounds.dockerd && rounds.wharfd ? `**${(med('wharfd', k) / med('dockerd', k)).toFixed(2)}**` : '–';
    const rows = [
      `| freshly started | ${cell('dockerd', 'fresh')} | ${cell('wharfd', 'fresh')} | ${ratio('fresh')} | ≤ 60 |`,
      `| freshly started: anonymous part (RssAnon) | ${cell('dockerd', 'freshAnon')} | ${cell('wharfd', 'freshAnon')} | ${ratio('freshAnon')} | |`,
      `| peak during the cold Debian pull | ${cell('dockerd', 'pull')} | ${cell('wharfd', 'pull')} | ${ratio('pull')} | reported |`,
      `| peak during the build (8 MB context) | ${cell('dockerd', 'build')} | ${cell('wharfd', 'build')} | ${ratio('build')} | reported |`,
      `| 10 s after pull + build + 5 runs | ${cell('dockerd', 'idle')} | ${cell('wharfd', 'idle')} | ${ratio('idle')} | ≤ 80 |`,
      `| 10 s after: anonymous part (RssAnon) | ${cell('dockerd', 'idleAnon')} | ${cell('wharfd', 'idleAnon')} | ${ratio('idleAnon')} | |`,
      `| 20 s after pull + build + 5 runs | ${cell('dockerd', 'settled')} | ${cell('wharfd', 'settled')} | ${ratio('settled')} | reported |`,
    ];

    if (process.env.BENCH_SKIP_ONCE !== '1') {
      const ref7 = `${reg.host}/bench/seven:v1`;
      await skopeoPush(await layoutFromTars(join(layouts, 'seven'), [deb, ...(await extraLayerTars())], 'v1', ['bash']), 'v1', ref7);
      const big = await makeContext(join(work, 'ctx-256m'), 256 << 20);
      const once: Record<string, Record<string, string>> = {};
      for (const name of ENGINES) {
        const d = await start(name); open.push(d);
        const o: Record<string, string> = (once[name] = {});
        // each peak from a settled engine (threads ended, memory given back): it is then the operation's, not the one
        // before it's (the baselines are in the log)
        const settledPeak = async (k: string, fn: () => Promise<unknown>) => {
          await sleep(12_000);
          o[`${k}Base`] = MiB(engineRssKiB(d).total);
          o[k] = MiB(await peakDuring(d, fn));
        };
        await settledPeak('pull7', () => d.docker(['pull', '-q', ref7]));
        await d.docker(['pull', '-q', refDeb]);
        for (const [k, ref] of [['loadDeb', refDeb], ['load7', ref7]] as const) {
          const tar = join(work, `${name}-${k}.tar`);
          await d.docker(['save', '-o', tar, ref]);
          await d.docker(['rmi', ref]);
          await settledPeak(k, () => d.docker(['load', '-q', '-i', tar]));
          await rm(tar, { force: true });
        }
        await settledPeak('buildSmall', () => d.docker(['build', '-q', '--build-arg', `BASE=${refDeb}`, '-t', 'bench/mem-small', small]));
        await settledPeak('buildBig', () => d.docker(['build', '-q', '--build-arg', `BASE=${refDeb}`, '-t', 'bench/mem-big', big]));
        console.error(`# ${name}: peaks ${JSON.stringify(o)}`);
        open.splice(open.indexOf(d), 1);
        await d.stop();
      }
      rows.push(
        `| peak during a cold pull of the 7-layer image (~370 MB) | ${once.dockerd?.pull7 ?? '–'} | ${once.wharfd?.pull7 ?? '–'} | | bounded |`,
        `| peak during \`load\` of the Debian tar (~199 MB) | ${once.dockerd?.loadDeb ?? '–'} | ${once.wharfd?.loadDeb ?? '–'} | | bounded |`,
        `| peak during \`load\` of the 7-layer tar (~370 MB) | ${once.dockerd?.load7 ?? '–'} | ${once.wharfd?.load7 ?? '–'} | | bounded |`,
        `| peak during a build with an 8 MB context (same engine, same place) | ${once.dockerd?.buildSmall ?? '–'} | ${once.wharfd?.buildSmall ?? '–'} | | bounded |`,
        `| peak during a build with a 256 MB context | ${once.dockerd?.buildBig ?? '–'} | ${once.wharfd?.buildBig ?? '–'} | | bounded |`,
      );

      // 50 running busybox containers, both engines up at once (the same image in both)
      const engines: Daemon[] = [];
      for (const name of ENGINES) { const d = await start(name); engines.push(d); open.push(d); }
      const w = engines.find((d) => d.name === 'wharfd');
      const k = engines.find((d) => d.name === 'dockerd');
      if (w && k) await busyboxOnBoth(w, k);
      else if (w) await execFileP(join(projectRoot, 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${w.sock}` } });
      const fifty: Record<string, { before: number; twenty: number; after: number }> = {};
      for (const d of engines) {
        await d.docker(['run', '--rm', 'busybox', 'true']);
        await sleep(6000);
        const before = engineRssKiB(d).total;
        let next = 0;
        const upTo = async (n: number) => {
          const worker = async () => { while (next < n) { next++; await d.docker(['run', '-d', 'busybox', 'sleep', '100000']); } };
          await Promise.all([worker(), worker(), worker(), worker()]);
          await sleep(10_000);
          return engineRssKiB(d);
        };
        // issue 14: idle with 20 running containers; then issue 17: with 50
        const twenty = await upTo(20);
        console.error(`# ${d.name} with 20: ${MiB(twenty.total)} MiB (${Object.entries(twenty.byName).map(([n, v]) => `${n} ${MiB(v)}`).join(', ')})`);
        const after = await upTo(50);
        fifty[d.name] = { before, twenty: twenty.total, after: after.total };
        console.error(`# ${d.name} with 50: ${MiB(after.total)} MiB (${Object.entries(after.byName).map(([n, v]) => `${n} ${MiB(v)}`).join(', ')}), before ${MiB(before)}`);
        await d.docker(['rm', '-f', ...(await d.docker(['ps', '-q'])).stdout.trim().split('\n').filter(Boolean)]);
      }
      const f = (n: string, fn: (x: { before: number; twenty: number; after: number }) => string) => (fifty[n] ? fn(fifty[n]) : '–');
      rows.push(
        `| with 20 running busybox containers | ${f('dockerd', (x) => MiB(x.twenty))} | ${f('wharfd', (x) => MiB(x.twenty))} | ${fifty.dockerd && fifty.wharfd ? `**${(fifty.wharfd.twenty / fifty.dockerd.twenty).toFixed(2)}**` : '–'} | < dockerd (issue 14) |`,
        `| with 50 running busybox containers (idle before) | ${f('dockerd', (x) => `${MiB(x.after)} (${MiB(x.before)})`)} | ${f('wharfd', (x) => `${MiB(x.after)} (${MiB(x.before)})`)} | ${fifty.dockerd && fifty.wharfd ? `**${(fifty.wharfd.after / fifty.dockerd.after).toFixed(2)}**` : '–'} | < dockerd |`,
        `| per running container (conmon / containerd-shim included) | ${f('dockerd', (x) => ((x.after - x.before) / 50 / 1024).toFixed(2))} | ${f('wharfd', (x) => ((x.after - x.before) / 50 / 1024).toFixed(2))} | | reported |`,
      );
    }

    console.log('| memory (MiB, RSS; medians, min–max) | dockerd + containerd | wharfd | wharfd/dockerd | target |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    if (rounds['wharfd-before'] && rounds.wharfd) {
      console.log(`\n| wharfd (MiB, RSS; medians, min–max) | before (${BEFORE}) | after (this tree) | after/before |`);
      console.log('|---|---|---|---|');
      for (const [label, k] of [['freshly started', 'fresh'], ['freshly started: anonymous part', 'freshAnon'], ['peak during the cold Debian pull', 'pull'],
        ['peak during the build', 'build'], ['10 s after pull + build + 5 runs', 'idle'], ['10 s after: anonymous part', 'idleAnon'], ['20 s after', 'settled']] as const) {
        console.log(`| ${label} | ${cell('wharfd-before', k)} | ${cell('wharfd', k)} | **${(med('wharfd', k) / med('wharfd-before', k)).toFixed(2)}** |`);
      }
    }
  } finally {
    for (const d of open) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
