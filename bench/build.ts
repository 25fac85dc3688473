/**
 * Build benchmark (issue 3), wharfd against dockerd's legacy builder in the same run, through the same docker CLI
 * (DOCKER_BUILDKIT=0): a 6-step Dockerfile (2 RUN, one 2 MB COPY) cold (--no-cache) and fully cached, and a
 * 3-stage build whose first two stages are independent (wharf builds them in parallel), cold; and (issue 17) the
 * fully cached rebuild of a two-stage Dockerfile with ARG, ENV, WORKDIR, COPY with a wildcard, ADD of a .tar.gz,
 * RUN, COPY --from twice and a .dockerignore, in a context of ~20 files.
 * Targets: ≤ 0.7 cold, ≤ 0.5 warm.
 *
 * The same busybox image in both engines: made by wharf from the host's static busybox, loaded into dockerd.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeIssue17Project } from './build-cases.js';
import { busyboxOnBoth, ratioRow, releaseBenchFs, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  const work = await mkdtemp(join(tmpdir(), 'bench-build-'));
  try {
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd({ bridge: true }); daemons.push(dockerd);
    await busyboxOnBoth(wharfd, dockerd);
    // BENCH_WHARFD_BEFORE=<a built checkout>: its wharfd too, in the same rounds (its ratio in a column of its own)
    let before: Daemon | undefined;
    if (process.env.BENCH_WHARFD_BEFORE) {
      before = { ...(await startWharfd([], process.env.BENCH_WHARFD_BEFORE)), name: 'before' };
      daemons.push(before);
      await busyboxOnBoth(before, dockerd);
    }
    const engines = before ? [dockerd, wharfd, before] : [dockerd, wharfd];

    const six = join(work, 'six');
    await mkdir(six);
    await writeFile(join(six, 'blob.bin'), randomBytes(2 << 20));
    await writeFile(join(six, 'Dockerfile'), [
      'FROM busybox',
      'ENV APP=/app',
      'RUN mkdir -p /app && echo built > /app/stamp',
      'COPY blob.bin /app/blob.bin',
      'RUN wc -c /app/blob.bin > /app/size',
      'CMD ["cat", "/app/size"]',
    ].join('\n') + '\n');
    const multi = join(work, 'multi');
    await mkdir(multi);
    await writeFile(join(multi, 'Dockerfile'), [
      'FROM busybox AS one',
      'RUN sleep 0.5 && echo one > /one',
      'FROM busybox AS two',
      'RUN sleep 0.5 && echo two > /two',
      'FROM busybox',
      'COPY --from=one /one /one',
      'COPY --from=two /two /two',
      'CMD ["cat", "/one", "/two"]',
    ].join('\n') + '\n');

    // issue 17: a small two-stage project, rebuilt fully cached
    const proj = await writeIssue17Project(join(work, 'proj'));

    const record = (label: string, t: Record<string, number[]>, target: string) => {
      rows.push(ratioRow(label, t, target));
      if (t.before) rows.push(ratioRow(`${label} (before: BENCH_WHARFD_BEFORE)`, { dockerd: t.dockerd!, wharfd: t.before }, target));
    };
    const series = async (args: (d: Daemon, i: number) => string[], before?: (d: Daemon) => Promise<void>) => {
      const t: Record<string, number[]> = Object.fromEntries(engines.map((d) => [d.name, []]));
      for (let i = 0; i < RUNS; i++) {
        for (const d of i % 2 ? [...engines].reverse() : engines) {
          if (before) await before(d);
          t[d.name]!.push(await timeIt(() => d.docker(args(d, i))));
        }
      }
      return t;
    };
    if (process.env.BENCH_BUILD_ONLY !== 'cached') record('6 steps, cold (--no-cache)', await series(() => ['build', '-q', '--no-cache', '-t', 'six:cold', six]), '≤ 0.7');
    for (const d of engines) await d.docker(['build', '-q', '-t', 'six:warm', six]);
    record('6 steps, fully cached', await series(() => ['build', '-q', '-t', 'six:warm', six]), '≤ 0.5');
    for (const d of engines) await d.docker(['build', '-q', '-t', 'proj:warm', proj]);
    record('2 stages, ARG/ENV/WORKDIR/COPY */ADD .tar.gz/RUN/COPY --from ×2, .dockerignore, fully cached', await series(() => ['build', '-q', '-t', 'proj:warm', proj]), '≤ 0.5');
    if (process.env.BENCH_BUILD_ONLY !== 'cached') record('3 stages (2 independent), cold', await series(() => ['build', '-q', '--no-cache', '-t', 'multi:cold', multi]), '≤ 0.7');

    console.log('| work | dockerd | wharfd | wharfd/dockerd | target |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
