/**
 * Container benchmark (issue 5), wharfd against dockerd in the same run, through the same docker CLI:
 * `docker run --rm busybox true` (target ≤ 0.5), `docker commit` of a container that wrote 10 MB (target
 * ≤ 1.0), and the idle resident memory of wharfd beside dockerd + containerd (reported, no target).
 *
 * Both daemons use their default bridge networking (dockerd without iptables rules). Needs root, dockerd (Debian docker.io) and busybox-static.
 */
import { busyboxOnBoth, ratioRow, releaseBenchFs, startDockerd, startWharfd, timeIt, treeRssKiB, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  try {
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd({ bridge: true }); daemons.push(dockerd);
    await busyboxOnBoth(wharfd, dockerd);
    for (const d of daemons) await d.docker(['run', '--rm', 'busybox', 'true']); // warm up

    const record = (label: string, t: Record<string, number[]>, target: string) => { rows.push(ratioRow(label, t, target)); };

    const run: Record<string, number[]> = { dockerd: [], wharfd: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const d of i % 2 ? [wharfd, dockerd] : [dockerd, wharfd]) run[d.name]!.push(await timeIt(() => d.docker(['run', '--rm', 'busybox', 'true'])));
    }
    record('`docker run --rm busybox true`', run, '≤ 0.5');

    const commit: Record<string, number[]> = { dockerd: [], wharfd: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const d of i % 2 ? [wharfd, dockerd] : [dockerd, wharfd]) {
        const name = `c${i}`;
        await d.docker(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=10 2>/dev/null; touch /done; sleep 300']);
        for (let k = 0; k < 100; k++) {
          const r = await d.docker(['exec', name, 'test', '-e', '/done']).then(() => true, () => false);
          if (r) break;
          await new Promise((res) => setTimeout(res, 50));
        }
        commit[d.name]!.push(await timeIt(() => d.docker(['commit', name, `bench/commit:${i}`])));
        await d.docker(['rm', '-f', name]);
        await d.docker(['rmi', `bench/commit:${i}`]);
      }
    }
    record('`docker commit` of a 10 MB change', commit, '≤ 1.0');

    // idle: 10 s without requests (wharfd ends idle extraction threads after 5 s)
    await new Promise((res) => setTimeout(res, 10_000));
    const w = treeRssKiB(wharfd.proc.pid!);
    const k = treeRssKiB(dockerd.proc.pid!);
    rows.push(`| idle resident memory (wharfd / dockerd + containerd) | ${(k / 1024).toFixed(0)} MiB | ${(w / 1024).toFixed(0)} MiB | **${(w / k).toFixed(2)}** | reported |`);

    console.log('| work | dockerd | wharfd | wharfd/dockerd | target |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
  }
}

await main();
