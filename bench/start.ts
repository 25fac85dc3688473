/**
 * Container start path (issue 17 item 2, issue 15's performance), wharfd against dockerd in the same run, through
 * the same docker CLI (and Debian's docker-compose), medians of BENCH_RUNS (default 5), engines alternated:
 * - `docker run --rm busybox true` (target ≤ 0.35);
 * - `docker run -d` of 20 containers in parallel, then `docker stop` of the 20 in parallel (target ≤ 0.5);
 * - `docker run --rm --network mynet busybox true` on a user-defined network (target ≤ 0.6);
 * - `docker-compose up -d` + `down` of a 3-service project (target ≤ 0.6);
 * - 1,000 name lookups (`nslookup peer`) from inside a container on a user network (target ≤ 1.0).
 *
 * `BENCH_WHARFD_BEFORE=<checkout>` also runs that checkout's wharfd (built) in the same rounds, as "before".
 * `BENCH_START_ONLY=run,par,net,compose,dns` picks cases. Both engines use their default bridge (dockerd without
 * iptables rules; see support.ts) and create their user networks themselves.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { busyboxOnBoth, execFileP, median, releaseBenchFs, startDockerd, startWharfd, timeIt, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PAR = 20;
const LOOKUPS = 1000;
const only = new Set((process.env.BENCH_START_ONLY ?? 'run,par,net,compose,dns').split(','));

/** A process that stops at SIGTERM on both engines (busybox `sleep` as PID 1 would ignore it). */
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait'];

function compose(d: Daemon, dir: string, args: string[]) {
  return execFileP('docker-compose', ['-p', `bench${d.name}`, ...args], {
    cwd: dir, env: { ...process.env, DOCKER_HOST: `unix://${d.sock}`, COMPOSE_INTERACTIVE_NO_CLI: '1' }, maxBuffer: 16 << 20,
  });
}

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  const projDir = await mkdtemp(join(tmpdir(), 'bench-compose-'));
  try {
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd({ bridge: true }); daemons.push(dockerd);
    await busyboxOnBoth(wharfd, dockerd);
    const beforeRoot = process.env.BENCH_WHARFD_BEFORE;
    if (beforeRoot) {
      const before = { ...(await startWharfd([], beforeRoot)), name: 'before' };
      daemons.push(before);
      await execFileP(join(beforeRoot, 'bin', 'wharf'), ['image', 'bootstrap', 'busybox'], { env: { ...process.env, DOCKER_HOST: `unix://${before.sock}` } });
    }
    const order = (i: number) => { const n = daemons.length; return daemons.map((_, k) => daemons[(k + i) % n]!); };
    const record = (label: string, t: Record<string, number[]>, target: string) => {
      const md = median(t.dockerd!), mw = median(t.wharfd!);
      console.error(`# ${label}: ${Object.entries(t).map(([k, v]) => `${k} ${v.map((x) => x.toFixed(0)).join(',')}`).join(' ')}`);
      const b = t.before?.length ? ` ${median(t.before).toFixed(0)} ms (**${(median(t.before) / md).toFixed(2)}**) |` : '';
      rows.push(`| ${label} | ${md.toFixed(0)} ms | ${mw.toFixed(0)} ms | **${(mw / md).toFixed(2)}** |${beforeRoot ? b : ''} ${target} |`);
    };
    const rounds = async (label: string, target: string, fn: (d: Daemon, i: number) => Promise<number>) => {
      const t: Record<string, number[]> = Object.fromEntries(daemons.map((d) => [d.name, [] as number[]]));
      for (const d of daemons) await fn(d, -1); // warm-up
      for (let i = 0; i < RUNS; i++) for (const d of order(i)) t[d.name]!.push(await fn(d, i));
      record(label, t, target);
    };

    if (only.has('run')) {
      await rounds('`docker run --rm busybox true`', '≤ 0.35', (d) => timeIt(() => d.docker(['run', '--rm', 'busybox', 'true'])));
    }

    if (only.has('par')) {
      await rounds(`\`docker run -d\` + \`docker stop\` of ${PAR} containers in parallel`, '≤ 0.5', async (d, i) => {
        const names = Array.from({ length: PAR }, (_, k) => `p${i + 1}x${k}`);
        const ms = await timeIt(async () => {
          await Promise.all(names.map((n) => d.docker(['run', '-d', '--name', n, 'busybox', ...SLEEPER])));
          await Promise.all(names.map((n) => d.docker(['stop', n])));
        });
        await d.docker(['rm', ...names]);
        return ms;
      });
    }

    if (only.has('net') || only.has('dns')) for (const d of daemons) await d.docker(['network', 'create', 'benchnet']);
    if (only.has('net')) {
      await rounds('`docker run --rm --network mynet busybox true`', '≤ 0.6', (d) => timeIt(() => d.docker(['run', '--rm', '--network', 'benchnet', 'busybox', 'true'])));
    }

    if (only.has('compose')) {
      await writeFile(join(projDir, 'docker-compose.yml'), [
        'version: "2.4"', 'services:',
        ...['web', 'api', 'db'].flatMap((s) => [`  ${s}:`, '    image: busybox', `    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]`]),
        '',
      ].join('\n'));
      await rounds('`docker-compose up -d` + `down`, 3 services', '≤ 0.6', (d) => timeIt(async () => {
        await compose(d, projDir, ['up', '-d']);
        await compose(d, projDir, ['down']);
      }));
    }

    if (only.has('dns')) {
      const loop = `i=0; while [ $i -lt ${LOOKUPS} ]; do nslookup peer >/dev/null 2>&1 || exit 1; i=$((i+1)); done`;
      for (const d of daemons) {
        await d.docker(['run', '-d', '--name', 'peer', '--network', 'benchnet', 'busybox', ...SLEEPER]);
        await d.docker(['run', '-d', '--name', 'asker', '--network', 'benchnet', 'busybox', ...SLEEPER]);
      }
      await rounds(`${LOOKUPS} name lookups (\`nslookup peer\` in a container)`, '≤ 1.0', (d) => timeIt(() => d.docker(['exec', 'asker', 'sh', '-c', loop])));
      for (const d of daemons) await d.docker(['rm', '-f', 'peer', 'asker']);
    }

    console.log(`| work | dockerd | wharfd | wharfd/dockerd |${beforeRoot ? ' before (before/dockerd) |' : ''} target |`);
    console.log(`|---|---|---|---|${beforeRoot ? '---|' : ''}---|`);
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) {
      if (only.has('net') || only.has('dns')) await d.docker(['network', 'rm', 'benchnet']).catch(() => {}); // not created when a case failed early
      await d.stop().catch((e) => console.error(e));
    }
    await rm(projDir, { recursive: true, force: true });
    await releaseBenchFs();
  }
}

await main();
