/**
 * Distribution benchmark (issue 4): push of the 7-layer image to a fresh local registry, and save / load of
 * the Debian image, through the real docker CLI, dockerd and wharfd in the same run. Prints ratios
 * wharfd/dockerd (target ≤ 0.7).
 *
 * Uses the layer tarballs `bench/pull.ts` caches in /var/cache/wharf-bench (run `node dist/bench/run.js pull`
 * once first). Needs root, dockerd (Debian docker.io), docker-registry and skopeo.
 * BENCH_WHARFD_BEFORE=<a built checkout>: that checkout's wharfd too, in the same rounds (rows of its own).
 * BENCH_DIST_ONLY=save,load (any of push, save, load): only those parts (with save and no load, the image stays and
 * every save reads the same layer).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import { benchBase, execFileP, layoutFromTars, ratioRow, releaseBenchFs, skopeoPush, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const CACHE = '/var/cache/wharf-bench';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ONLY = new Set((process.env.BENCH_DIST_ONLY ?? 'push,save,load').split(','));

async function main(): Promise<void> {
  const deb = join(CACHE, 'debian-bookworm.tar');
  const extras = [1, 2, 3, 4, 5, 6].map((i) => join(CACHE, `extra-layer-${i}.tar`));
  for (const f of [deb, ...extras]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run the pull benchmark once first (it builds the fixtures)`);
  }
  const source = await startRegistry();
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  try {
    const work = join(CACHE, 'layouts-dist');
    await rm(work, { recursive: true, force: true });
    const l1 = await layoutFromTars(join(work, 'debian'), [deb], 'bookworm', ['bash']);
    const l7 = await layoutFromTars(join(work, 'seven'), [deb, ...extras], 'v1', ['bash']);
    const refDeb = `${source.host}/bench/debian:bookworm`;
    const ref7 = `${source.host}/bench/seven:v1`;
    await skopeoPush(l1, 'bookworm', refDeb);
    await skopeoPush(l7, 'v1', ref7);
    const dockerd = await startDockerd(); daemons.push(dockerd);
    const wharfd = await startWharfd(); daemons.push(wharfd);
    if (process.env.BENCH_WHARFD_BEFORE) daemons.push({ ...(await startWharfd([], process.env.BENCH_WHARFD_BEFORE)), name: 'before' });
    // each round runs every daemon once, in the next of all the orders: every daemon follows every other equally
    // often (a rotation made the 'before' daemon never follow dockerd, and the daemon right after dockerd's save
    // was measured slower: 1.16-1.72 between identical code paths). Use a multiple of 2 (6 with before) runs.
    const perms = (xs: Daemon[]): Daemon[][] => xs.length <= 1 ? [xs] : xs.flatMap((x, k) => perms([...xs.slice(0, k), ...xs.slice(k + 1)]).map((p) => [x, ...p]));
    const orders = perms(daemons);
    const order = (i: number) => orders[i % orders.length]!;
    for (const d of daemons) {
      await d.docker(['pull', '-q', refDeb]);
      await d.docker(['pull', '-q', ref7]);
    }

    const record = (label: string, t: Record<string, number[]>) => {
      rows.push(ratioRow(label, t));
      if (t.before?.length) rows.push(ratioRow(`${label} (before: BENCH_WHARFD_BEFORE)`, { dockerd: t.dockerd!, wharfd: t.before }));
      if (t.before?.length) rows.push(ratioRow(`${label} (this tree / before)`, { dockerd: t.before, wharfd: t.wharfd! }));
    };

    // push: each run to a fresh registry, so every layer is compressed and uploaded (no mounts, no HEAD hits)
    const push: Record<string, number[]> = { dockerd: [], wharfd: [], before: [] };
    for (let i = 0; i < RUNS && ONLY.has('push'); i++) {
      for (const d of order(i)) {
        const dest = await startRegistry();
        try {
          const ref = `${dest.host}/bench/seven:v1`;
          await d.docker(['tag', ref7, ref]);
          push[d.name]!.push(await timeIt(() => d.docker(['push', '-q', ref])));
          await d.docker(['rmi', ref]);
        } finally {
          await dest.stop();
        }
      }
    }
    if (ONLY.has('push')) record('push, 7 layers, to a fresh registry', push);

    // save and load of the Debian image (the 7-layer image goes first: it shares the Debian layer, and a load
    // that finds the layer present skips extracting it)
    for (const d of daemons) await d.docker(['rmi', ref7]);
    const save: Record<string, number[]> = { dockerd: [], wharfd: [], before: [] };
    const load: Record<string, number[]> = { dockerd: [], wharfd: [], before: [] };
    for (let i = 0; i < RUNS && (ONLY.has('save') || ONLY.has('load')); i++) {
      for (const d of order(i)) {
        const file = join(await benchBase(), `bench-save-${d.name}-${process.pid}.tar`);
        try {
          await execFileP('sync'); // the previous step's writes are not charged to this save
          save[d.name]!.push(await timeIt(() => d.docker(['save', '-o', file, refDeb])));
          if (process.env.BENCH_VERBOSE) console.error(`save ${d.name} ${save[d.name]!.at(-1)} ms`);
          if (!ONLY.has('load')) continue;
          await d.docker(['rmi', '-f', refDeb]);
          await d.docker(['image', 'prune', '-af']);
          load[d.name]!.push(await timeIt(() => d.docker(['load', '-q', '-i', file])));
        } finally {
          await rm(file, { force: true });
        }
      }
    }
    if (ONLY.has('save')) record('save, Debian (1 layer, ~200 MB)', save);
    if (ONLY.has('load')) record('load, Debian (cold)', load);

    console.log('| work | dockerd | wharfd | wharfd/dockerd |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await source.stop();
  }
}

await main();
