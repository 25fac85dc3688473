/**
 * docker cp benchmark (issue 13 item 6): `docker cp` into and out of a running busybox container of a 10 MB file
 * and of a directory of 1,000 small files, wharfd against dockerd in the same run, through the same docker CLI.
 * Target: no slower than before the chrooted worker (within 10 %); the wharfd/dockerd ratio is reported.
 * `BENCH_WHARFD_BEFORE=<checkout>` also runs that checkout's wharfd (built) in the same rounds, as "before".
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileP, median, projectRoot, releaseBenchFs, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  const work = await mkdtemp(join(tmpdir(), 'bench-cp-'));
  try {
    await writeFile(join(work, 'big'), randomBytes(10 * 1024 * 1024));
    await mkdir(join(work, 'many'));
    for (let i = 0; i < 1000; i++) await writeFile(join(work, 'many', `f${i}`), randomBytes(512));
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd(); daemons.push(dockerd);
    const beforeRoot = process.env.BENCH_WHARFD_BEFORE;
    const before = beforeRoot ? { ...(await startWharfd([], beforeRoot)), name: 'before' } : null;
    if (before) daemons.push(before);
    await execFileP(join(projectRoot, 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${wharfd.sock}` } });
    const tar = join(work, 'busybox.tar');
    await wharfd.docker(['save', '-o', tar, 'busybox']);
    await dockerd.docker(['load', '-i', tar]);
    if (before) await before.docker(['load', '-i', tar]);
    for (const d of daemons) {
      await d.docker(['run', '-d', '--name', 'cpbench', '--network', 'none', 'busybox', 'sleep', '3600']);
      await d.docker(['cp', join(work, 'big'), 'cpbench:/warmup']); // warm up
    }
    const cases: [string, (d: Daemon, i: number) => string[]][] = [
      ['`docker cp` in, a 10 MB file', (_d, i) => ['cp', join(work, 'big'), `cpbench:/big${i}`]],
      ['`docker cp` out, a 10 MB file', (d, i) => ['cp', `cpbench:/big${i}`, join(work, `out-${d.name}-big${i}`)]],
      ['`docker cp` in, 1,000 files', (_d, i) => ['cp', join(work, 'many'), `cpbench:/many${i}`]],
      ['`docker cp` out, 1,000 files', (d, i) => ['cp', `cpbench:/many${i}`, join(work, `out-${d.name}-many${i}`)]],
    ];
    for (const [label, args] of cases) {
      const t: Record<string, number[]> = { dockerd: [], wharfd: [], before: [] };
      for (let i = 0; i < RUNS; i++) {
        const order = i % 2 ? [...daemons].reverse() : daemons;
        for (const d of order) t[d.name]!.push(await timeIt(() => d.docker(args(d, i))));
      }
      const md = median(t.dockerd!), mw = median(t.wharfd!);
      const mb = before ? ` ${median(t.before!).toFixed(0)} ms | **${(mw / median(t.before!)).toFixed(2)}** |` : '';
      rows.push(`| ${label} | ${md.toFixed(0)} ms | ${mw.toFixed(0)} ms | **${(mw / md).toFixed(2)}** |${mb}`);
      console.error(`# ${label}: ${daemons.map((d) => `${d.name} ${t[d.name]!.map((x) => x.toFixed(0)).join(',')}`).join(' ')}`);
    }
    console.log(`| work | dockerd | wharfd | wharfd/dockerd |${before ? ' before | wharfd/before |' : ''}`);
    console.log(`|---|---|---|---|${before ? '---|---|' : ''}`);
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) {
      await d.docker(['rm', '-f', 'cpbench']).catch(() => {});
      await d.stop().catch((e) => console.error(e));
    }
    await releaseBenchFs();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
