/**
 * Pull benchmark (issue 2): cold pulls of a ~200 MB single-layer Debian image and of a 7-layer ~370 MB image
 * from a local docker-registry, through the real docker CLI, against dockerd and wharfd in the same run; and
 * `docker images` with 1,000 images. Prints ratios wharfd/dockerd and the machine's floors.
 * `BENCH_WHARFD_BEFORE=<checkout>` also runs that checkout's wharfd (built) in the same pull rounds, as "before".
 *
 * Needs root, dockerd (Debian docker.io), docker-registry, skopeo, debootstrap and the Debian mirror (for the
 * base rootfs, cached in /var/cache/wharf-bench).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { startRegistry } from '../test/support/registry.js';
import { CACHE, debianTar, extraLayerTars, execFileP, layoutFromTars, median, releaseBenchFs, skopeoPush, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function floors(gzBlobPath: string): Promise<{ sha256MBs: number; gunzipMBs: number }> {
  let n = 0;
  const t1 = await timeIt(async () => { const h = createHash('sha256'); await pipeline(createReadStream(gzBlobPath, { highWaterMark: 1 << 20 }), h); });
  const t2 = await timeIt(async () => {
    await pipeline(createReadStream(gzBlobPath, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: 1 << 17 }),
      new Writable({ write(c: Buffer, _e, cb) { n += c.length; cb(); } }));
  });
  const { size } = await import('node:fs/promises').then((f) => f.stat(gzBlobPath));
  return { sha256MBs: size / 1e6 / (t1 / 1000), gunzipMBs: n / 1e6 / (t2 / 1000) };
}

async function coldPull(d: Daemon, ref: string): Promise<number> {
  await d.docker(['rmi', '-f', ref]).catch(() => {});
  await d.docker(['image', 'prune', '-af']).catch(() => {});
  return timeIt(() => d.docker(['pull', '-q', ref]));
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const daemons: Daemon[] = [];
  try {
    const deb = await debianTar();
    const extras = await extraLayerTars();
    const work = join(CACHE, 'layouts');
    await rm(work, { recursive: true, force: true });
    const l1 = await layoutFromTars(join(work, 'debian'), [deb], 'bookworm', ['bash']);
    const l7 = await layoutFromTars(join(work, 'seven'), [deb, ...extras], 'v1', ['bash']);
    const refDeb = `${reg.host}/bench/debian:bookworm`;
    const ref7 = `${reg.host}/bench/seven:v1`;
    await skopeoPush(l1, 'bookworm', refDeb);
    await skopeoPush(l7, 'v1', ref7);

    const dockerd = await startDockerd(); daemons.push(dockerd);
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const beforeRoot = process.env.BENCH_WHARFD_BEFORE;
    const before = beforeRoot ? { ...(await startWharfd([], beforeRoot)), name: 'before' } : null;
    if (before) daemons.push(before);

    const rows: string[] = [];
    // BENCH_SKIP_PULLS=1: only the `images` measurement
    const pulls = process.env.BENCH_SKIP_PULLS === '1' ? [] : [['cold pull, Debian bookworm minbase (1 layer)', refDeb], ['cold pull, 7 layers', ref7]] as const;
    for (const [label, ref] of pulls) {
      const t: Record<string, number[]> = { dockerd: [], wharfd: [], before: [] };
      for (let i = 0; i < RUNS; i++) {
        for (const d of i % 2 ? [...daemons].reverse() : daemons) t[d.name]!.push(await coldPull(d, ref));
      }
      const md = median(t.dockerd!), mw = median(t.wharfd!);
      const mb = before ? ` ${median(t.before!).toFixed(0)} ms | **${(mw / median(t.before!)).toFixed(2)}** |` : '';
      rows.push(`| ${label} | ${md.toFixed(0)} ms | ${mw.toFixed(0)} ms | **${(mw / md).toFixed(2)}** |${mb}`);
      console.error(`# ${label}: ${daemons.map((d) => `${d.name} ${t[d.name]!.map((x) => x.toFixed(0)).join(',')}`).join(' ')}`);
    }

    // `images` with 1,000 images: import 1,000 one-file tars into each daemon.
    const N = Number(process.env.BENCH_IMAGES ?? 1000);
    const tiny = join(CACHE, 'tiny');
    await mkdir(tiny, { recursive: true });
    for (const d of [dockerd, wharfd]) {
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const i = next++;
          const tar = join(tiny, `t${i}.tar`);
          if (!existsSync(tar)) {
            await writeFile(join(tiny, `f${i}`), `image ${i}\n`);
            await execFileP('tar', ['-C', tiny, '-cf', tar, `f${i}`]);
          }
          await d.docker(['import', tar, `bench/many:${i}`]);
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
    }
    const ti: Record<string, number[]> = { dockerd: [], wharfd: [] };
    for (let i = 0; i < 10; i++) for (const d of [dockerd, wharfd]) ti[d.name]!.push(await timeIt(() => d.docker(['images'])));
    const id = median(ti.dockerd!), iw = median(ti.wharfd!);
    rows.push(`| \`docker images\` with ${N} images | ${id.toFixed(0)} ms | ${iw.toFixed(0)} ms | **${(iw / id).toFixed(2)}** |`);

    const blob = (await execFileP('sh', ['-c', `ls -S ${join(l1, 'blobs', 'sha256')} | head -1`])).stdout.trim();
    const f = await floors(join(l1, 'blobs', 'sha256', blob));
    console.log(`| work | dockerd | wharfd | wharfd/dockerd |${before ? ' before | wharfd/before |' : ''}`);
    console.log(`|---|---|---|---|${before ? '---|---|' : ''}`);
    for (const r of rows) console.log(r);
    console.log(`\nFloors on this machine (Node, one core): sha256 ${f.sha256MBs.toFixed(0)} MB/s of compressed data, gunzip ${f.gunzipMBs.toFixed(0)} MB/s of output.`);
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await reg.stop();
  }
}

await main();
