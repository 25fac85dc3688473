/**
 * Distribution benchmark (issue 4): push of the 7-layer image to a fresh local registry, and save / load of
 * the Debian image, through the real docker CLI, dockerd and wharfd in the same run. Prints ratios
 * wharfd/dockerd (target ≤ 0.7).
 *
 * Uses the layer tarballs `bench/pull.ts` caches in /var/cache/wharf-bench (run `node dist/bench/run.js pull`
 * once first). Needs root, dockerd (Debian docker.io), docker-registry and skopeo.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import { benchBase, layoutFromTars, ratioRow, releaseBenchFs, skopeoPush, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const CACHE = '/var/cache/wharf-bench';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

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
    for (const d of daemons) {
      await d.docker(['pull', '-q', refDeb]);
      await d.docker(['pull', '-q', ref7]);
    }

    const record = (label: string, t: Record<string, number[]>) => { rows.push(ratioRow(label, t)); };

    // push: each run to a fresh registry, so every layer is compressed and uploaded (no mounts, no HEAD hits)
    const push: Record<string, number[]> = { dockerd: [], wharfd: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const d of i % 2 ? [wharfd, dockerd] : [dockerd, wharfd]) {
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
    record('push, 7 layers, to a fresh registry', push);

    // save and load of the Debian image (the 7-layer image goes first: it shares the Debian layer, and a load
    // that finds the layer present skips extracting it)
    for (const d of daemons) await d.docker(['rmi', ref7]);
    const save: Record<string, number[]> = { dockerd: [], wharfd: [] };
    const load: Record<string, number[]> = { dockerd: [], wharfd: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const d of i % 2 ? [wharfd, dockerd] : [dockerd, wharfd]) {
        const file = join(await benchBase(), `bench-save-${d.name}-${process.pid}.tar`);
        try {
          save[d.name]!.push(await timeIt(() => d.docker(['save', '-o', file, refDeb])));
          await d.docker(['rmi', '-f', refDeb]);
          await d.docker(['image', 'prune', '-af']);
          load[d.name]!.push(await timeIt(() => d.docker(['load', '-q', '-i', file])));
        } finally {
          await rm(file, { force: true });
        }
      }
    }
    record('save, Debian (1 layer, ~200 MB)', save);
    record('load, Debian (cold)', load);

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
