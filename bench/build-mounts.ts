/**
 * Cache-mount benchmark (issue 16): a Dockerfile that "installs" 50 small packages from a local HTTP server
 * (a package index stand-in: 64 KiB each, 25 ms of server latency per request) in a step that follows a COPY of
 * the sources, so changing a source file re-runs the install. With `RUN --mount=type=cache` (wharfd) the second
 * build finds every package in the cache and downloads nothing. Reported: wharfd's first (cold, --no-cache)
 * and second (a source file changed) build, and beside them dockerd's legacy builder on the same Dockerfile
 * without the cache mount (which dockerd's classic builder refuses), which downloads everything both times.
 * Target: wharfd's second build ≥ 5× faster than its first.
 */
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileP, median, projectRoot, releaseBenchFs, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PACKAGES = 50;
const LATENCY_MS = 25;

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const work = await mkdtemp(join(tmpdir(), 'bench-buildmount-'));
  let hits = 0;
  const body = Buffer.alloc(64 << 10, 'p');
  const web = createServer((_q, s) => { hits++; setTimeout(() => s.end(body), LATENCY_MS); });
  await new Promise<void>((r) => web.listen(0, '0.0.0.0', r));
  try {
    const ip = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.'))?.address
      ?? Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)!.address;
    const base = `http://${ip}:${(web.address() as { port: number }).port}`;
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd({ bridge: true }); daemons.push(dockerd);
    await execFileP(join(projectRoot, 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${wharfd.sock}` } });
    const tar = join(work, 'busybox.tar');
    await wharfd.docker(['save', '-o', tar, 'busybox']);
    await dockerd.docker(['load', '-i', tar]);

    const install = (cache: string) => `RUN ${cache}mkdir -p /cache && for p in $(cat /app/requirements.txt); do `
      + `[ -f /cache/$p ] || timeout 20 wget -q -O /cache/$p ${base}/simple/$p; done && cp /cache/* /app/site-packages/`;
    const files = {
      'requirements.txt': Array.from({ length: PACKAGES }, (_, i) => `pkg${i}`).join('\n') + '\n',
      'src/main.py': 'print("v0")\n',
    };
    const ctxOf = async (name: string, cache: string) => {
      const dir = join(work, name);
      await mkdir(join(dir, 'src'), { recursive: true });
      for (const [p, c] of Object.entries(files)) await writeFile(join(dir, p), c);
      await writeFile(join(dir, 'Dockerfile'), ['FROM busybox', 'RUN mkdir -p /app/site-packages', 'COPY . /app/', install(cache)].join('\n') + '\n');
      return dir;
    };
    const withMount = await ctxOf('mount', '--mount=type=cache,target=/cache ');
    const without = await ctxOf('plain', '');

    const t: Record<string, { first: number[]; second: number[]; hits: number[] }> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const [d, ctx] of [[wharfd, withMount], [dockerd, without]] as const) {
        const r = (t[d.name] ??= { first: [], second: [], hits: [] });
        // a cold start: the cache mounts emptied, no step cache
        if (d === wharfd) await d.docker(['builder', 'prune', '-f']);
        await writeFile(join(ctx, 'src/main.py'), `print("run ${i} first")\n`);
        hits = 0;
        r.first.push(await timeIt(() => d.docker(['build', '-q', '--no-cache', '-t', 'pkgs', ctx])));
        await writeFile(join(ctx, 'src/main.py'), `print("run ${i} second")\n`);
        const before = hits;
        r.second.push(await timeIt(() => d.docker(['build', '-q', '-t', 'pkgs', ctx])));
        r.hits.push(hits - before);
      }
    }
    console.log('| build (50 packages, 25 ms each) | first (cold) | second (a source changed) | first/second | downloads in the second |');
    console.log('|---|---|---|---|---|');
    for (const [name, label] of [['wharfd', 'wharfd, RUN --mount=type=cache'], ['dockerd', 'dockerd legacy, no cache mount']] as const) {
      const r = t[name]!;
      const f = median(r.first), s = median(r.second);
      console.log(`| ${label} | ${f.toFixed(0)} ms | ${s.toFixed(0)} ms | **${(f / s).toFixed(1)}×** | ${median(r.hits)} |`);
      console.error(`# ${name}: first ${r.first.map((x) => x.toFixed(0)).join(',')} second ${r.second.map((x) => x.toFixed(0)).join(',')}`);
    }
  } finally {
    web.close();
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
