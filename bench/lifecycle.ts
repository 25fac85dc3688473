/**
 * Stats and events benchmark (issue 14), wharfd against dockerd in the same run, through the same docker CLI:
 * `docker stats --no-stream` with 20 running containers (target ≤ 1.0), and `docker events` delivering 1,000
 * container events (target ≤ 1.0): a `docker events` process is subscribed, 1,000 exec creations (an event each,
 * nothing written to disk by either engine, so the event path is what is measured) are sent over the raw API one
 * after the other, and the time is taken from the first request until the CLI printed the 1,000th event; the
 * daemon's CPU time over the same span (utime + stime of its process tree: dockerd with its containerd) is reported
 * per 1,000 events beside it. BENCH_WHARFD_BEFORE=<a built checkout>: that checkout's wharfd too, in the same rounds.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { DOCKER, busyboxOnBoth, ratioRow, releaseBenchFs, startDockerd, startWharfd, timeIt, treeCpuMs, type Daemon } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONTAINERS = 20;
const EVENTS = 1000;

function post(sock: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => { text += b; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * ms from the first exec creation to the moment `docker events` printed the last of EVENTS exec_create events, and
 * the daemon's CPU time (ms) over that span.
 */
async function eventsRun(d: Daemon, id: string, events = EVENTS): Promise<{ ms: number; cpuMs: number }> {
  const cli = spawn(DOCKER, ['events', '--filter', 'event=exec_create', '--format', '{{.Actor.Attributes.execID}}'], {
    env: { ...process.env, DOCKER_HOST: `unix://${d.sock}` }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let lines = 0;
  let t0 = 0n;
  let probe = '';
  let probed: () => void = () => {};
  let measuring = false;
  let resolveDone: (ms: number) => void = () => {};
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  let cpu0 = 0;
  let buf = '';
  cli.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    if (!measuring) { if (parts.includes(probe)) probed(); return; }
    lines += parts.length;
    if (lines >= events) resolveDone(Number(process.hrtime.bigint() - t0) / 1e6);
  });
  const create = async () => {
    const r = await post(d.sock, `/containers/${id}/exec`, '{"Cmd":["true"]}');
    if (r.status !== 201) throw new Error(`${d.name}: exec create answered ${r.status}`);
    return (JSON.parse(r.body) as { Id: string }).Id;
  };
  // subscribed once the CLI printed a probe's event (a fixed wait lost events when the machine was loaded, and the
  // run then waited forever): events are delivered in order, so nothing of the probes comes after it
  for (let seen = false; !seen;) {
    const printed = new Promise<void>((res) => { probed = res; });
    probe = await create();
    seen = await Promise.race([printed.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 200))]);
  }
  measuring = true;
  cpu0 = treeCpuMs(d.proc.pid!);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < events; i++) await create();
  const ms = await done;
  const cpuMs = treeCpuMs(d.proc.pid!) - cpu0;
  cli.kill('SIGTERM');
  return { ms, cpuMs: cpuMs * 1000 / events };
}

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  const rows: string[] = [];
  try {
    const wharfd = await startWharfd(); daemons.push(wharfd);
    const dockerd = await startDockerd({ bridge: true }); daemons.push(dockerd);
    await busyboxOnBoth(wharfd, dockerd);
    if (process.env.BENCH_WHARFD_BEFORE) {
      const before = { ...(await startWharfd([], process.env.BENCH_WHARFD_BEFORE)), name: 'before' };
      daemons.push(before);
      await busyboxOnBoth(before, dockerd);
    }
    for (const d of daemons) for (let i = 0; i < CONTAINERS; i++) await d.docker(['run', '-d', '--name', `s${i}`, 'busybox', 'sleep', '3600']);

    const record = (label: string, t: Record<string, number[]>, target: string) => {
      rows.push(ratioRow(label, t, target));
      if (t.before) rows.push(ratioRow(`${label} (before: BENCH_WHARFD_BEFORE)`, { dockerd: t.dockerd!, wharfd: t.before }, target));
    };
    const empty = () => Object.fromEntries(daemons.map((d) => [d.name, [] as number[]]));
    const order = (i: number) => (i % 2 ? [...daemons].reverse() : daemons);

    const stats = empty();
    for (let i = 0; i < RUNS; i++) {
      for (const d of order(i)) {
        stats[d.name]!.push(await timeIt(async () => {
          const out = (await d.docker(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}'])).stdout.trim().split('\n');
          if (out.length !== CONTAINERS) throw new Error(`${d.name}: stats listed ${out.length} containers`);
        }));
      }
    }
    record(`\`docker stats --no-stream\`, ${CONTAINERS} containers`, stats, '≤ 1.0');

    const events = empty();
    const cpu = empty();
    // warm-up of 1,000 on either engine: a fresh wharfd spends its first ~1,000 requests compiling its HTTP path (V8's
    // Maglev and TurboFan threads: measured, 490 ms of CPU for the first 1,000 exec creations against 200-300 for each
    // later 1,000), which a long-running daemon has done once; dockerd's code is compiled ahead of time
    for (const d of daemons) await eventsRun(d, 's0', 1000);
    for (let i = 0; i < RUNS; i++) {
      for (const d of order(i)) {
        const r = await eventsRun(d, 's0');
        events[d.name]!.push(r.ms);
        cpu[d.name]!.push(r.cpuMs);
      }
    }
    record(`\`docker events\` delivering ${EVENTS} container events`, events, '≤ 1.0');
    record('daemon CPU per 1,000 of those events (utime+stime)', cpu, '');

    console.log('| work | dockerd | wharfd | wharfd/dockerd | target |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    for (const d of daemons) {
      await d.docker(['rm', '-f', ...Array.from({ length: CONTAINERS }, (_, i) => `s${i}`)]).catch(() => {});
      await d.stop().catch((e) => console.error(e));
    }
    await releaseBenchFs();
  }
}

await main();
