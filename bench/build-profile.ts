/**
 * Where a fully cached rebuild of the issue-17 case goes inside wharfd (no dockerd): the build is made once, then
 * rebuilt BENCH_RUNS times by the docker CLI and BENCH_RUNS times by posting the same context tar straight to
 * POST /build (no CLI); wharfd runs with --log-level debug and its `build timings` lines are summarised (medians).
 * BENCH_WHARFD_BEFORE=<a built checkout> runs that checkout's wharfd too, alternating, for before/after figures.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileP, median, releaseBenchFs, startWharfd, timeIt, type Daemon } from './support.js';
import { writeIssue17Project } from './build-cases.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function post(sock: string, body: Buffer): Promise<string> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: sock, method: 'POST', path: '/v1.41/build?q=1&t=proj:warm', headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } }, (r) => {
      let s = ''; r.on('data', (c: Buffer) => { s += c.toString(); }); r.on('end', () => res(s)); r.on('error', rej);
    });
    req.on('error', rej);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-buildprof-'));
  const daemons: Daemon[] = [];
  try {
    const proj = await writeIssue17Project(join(work, 'proj'));
    // the context as the docker CLI sends it: the .dockerignore applied by the client
    const ignored = (await readFile(join(proj, '.dockerignore'), 'utf8')).trim().split('\n').flatMap((p) => ['--exclude', `./${p}`]);
    await execFileP('tar', ['-cf', join(work, 'ctx.tar'), ...ignored, '-C', proj, '.']);
    const tar = readFileSync(join(work, 'ctx.tar'));
    const trees: [string, string | undefined][] = [['after', undefined]];
    if (process.env.BENCH_WHARFD_BEFORE) trees.push(['before', process.env.BENCH_WHARFD_BEFORE]);
    const ds: { label: string; d: Daemon; lines: string[] }[] = [];
    for (const [label, root] of trees) {
      const d = await startWharfd(['--log-level', 'debug'], root); daemons.push(d);
      await execFileP(join(root ?? join(import.meta.dirname, '..', '..'), 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${d.sock}` } });
      await d.docker(['build', '-q', '-t', 'proj:warm', proj]);
      const entry = { label, d, lines: [] as string[] };
      let buf = '';
      d.proc.stderr!.on('data', (c: Buffer) => {
        buf += c.toString();
        const parts = buf.split('\n'); buf = parts.pop()!;
        for (const l of parts) if (l.includes('msg="build timings"')) entry.lines.push(l);
      });
      ds.push(entry);
    }
    const t: Record<string, { cli: number[]; api: number[] }> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const { label, d } of i % 2 ? [...ds].reverse() : ds) {
        const r = (t[label] ??= { cli: [], api: [] });
        r.cli.push(await timeIt(() => d.docker(['build', '-q', '-t', 'proj:warm', proj])));
        r.api.push(await timeIt(() => post(d.sock, tar)));
      }
    }
    for (const [label, r] of Object.entries(t)) {
      console.log(`${label}: docker build (CLI) median ${median(r.cli).toFixed(1)} ms; POST /build alone median ${median(r.api).toFixed(1)} ms`);
      console.error(`# ${label} cli ${r.cli.map((x) => x.toFixed(0)).join(',')} api ${r.api.map((x) => x.toFixed(0)).join(',')}`);
    }
    for (const { label, lines } of ds) {
      const last = lines.slice(-2 * RUNS);
      const fields = new Map<string, number[]>();
      for (const l of last) {
        for (const m of l.matchAll(/ (\w+Ms)=([\d.]+)/g)) { const a = fields.get(m[1]!) ?? []; a.push(Number(m[2])); fields.set(m[1]!, a); }
      }
      console.log(`${label}: build timings inside wharfd (medians of ${last.length}): ${[...fields].map(([k, v]) => `${k} ${median(v).toFixed(2)}`).join(', ')}`);
    }
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
