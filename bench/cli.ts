/**
 * CLI benchmark (issue 17 item 4): the wharf CLI against the docker CLI, both talking to the same wharfd, for
 * `images`, `ps` and `version`, alternating order, medians of BENCH_CLI_RUNS (default 25) runs each. Floors:
 * `node -e 0` (Node's own start) with the project's Node. wharf runs as bin/wharf does (the bundle through its
 * launcher, with the V8 code cache of the command word), and again with WHARF_CLI_CODE_CACHE=node (Node's
 * module.enableCompileCache instead). Then a breakdown of wharf's time from its start-up trace
 * (WHARF_CLI_TRACE, src/cli/trace.ts): Node's start up to the launcher, the bundle's compile (code cache),
 * up to main(), loading app.js (commander, specs),
 * parsing, loading the command (client, node:http), the ping (the version negotiation, with node:http's first
 * request), the command's request and output, and the exit.
 * BENCH_WHARF_BEFORE=<a built checkout>: its bin/wharf is timed in the same rounds too (column "before").
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DOCKER, execFileP, median, projectRoot, releaseBenchFs, startWharfd, type Daemon } from './support.js';
import { loadavg } from 'node:os';

const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 25);
const NODE = join(projectRoot, 'node_modules', 'node', 'bin', 'node');
const WHARF = join(projectRoot, 'bin', 'wharf');
const BEFORE = process.env.BENCH_WHARF_BEFORE ? join(process.env.BENCH_WHARF_BEFORE, 'bin', 'wharf') : undefined;

/** Runs a program to its exit; resolves with the wall time in ms and its stderr. */
function timed(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    execFile(file, args, { env }, (err, _stdout, stderr) => {
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ ms, stderr });
    });
  });
}

const PHASES = ['launcher', 'compiled', 'main', 'loaded', 'parsed', 'command-loaded', 'ping-start', 'ping-done', 'done', 'exit'] as const;
const PHASE_LABEL: Record<string, string> = {
  launcher: 'Node start → launcher (incl. bin/wharf\'s shell)', compiled: 'bundle read, code cache read, compile',
  main: 'bundle\'s top level → main()', loaded: 'app.js + commander + specs', parsed: 'flag parsing',
  'command-loaded': 'command + client + node:http', 'ping-start': 'context', 'ping-done': 'ping (first request)',
  done: 'request + formatting + output', exit: 'exit',
};

async function main(): Promise<void> {
  const daemons: Daemon[] = [];
  try {
    const wharfd = await startWharfd(); daemons.push(wharfd);
    // one image and one running container, so that images and ps have rows to format
    const env = { ...process.env, DOCKER_HOST: `unix://${wharfd.sock}` };
    await execFileP(WHARF, ['image', 'bootstrap', 'busybox'], { env });
    await wharfd.docker(['run', '-d', '--name', 'bench-cli', 'busybox', 'sleep', '600']);

    const rows: string[] = [];
    const traces: Record<string, number[][]> = {};
    const floor: number[] = [];
    for (const cmd of [['version'], ['images'], ['ps']]) {
      const t: Record<string, number[]> = { docker: [], wharf: [], nodecache: [], before: [] };
      traces[cmd[0]!] = [];
      // one warm-up each (page cache, compile cache)
      await timed(DOCKER, cmd, env); await timed(WHARF, cmd, env); await timed(WHARF, cmd, { ...env, WHARF_CLI_CODE_CACHE: 'node' });
      if (BEFORE) await timed(BEFORE, cmd, env);
      for (let i = 0; i < RUNS; i++) {
        const order = i % 2 ? ['wharf', 'nodecache', 'docker', 'before'] : ['before', 'docker', 'nodecache', 'wharf'];
        for (const who of order) {
          if (who === 'docker') t.docker!.push((await timed(DOCKER, cmd, env)).ms);
          else if (who === 'nodecache') t.nodecache!.push((await timed(WHARF, cmd, { ...env, WHARF_CLI_CODE_CACHE: 'node' })).ms);
          else if (who === 'before') { if (BEFORE) t.before!.push((await timed(BEFORE, cmd, env)).ms); }
          else {
            const r = await timed(WHARF, cmd, { ...env, WHARF_CLI_TRACE: '1' });
            t.wharf!.push(r.ms);
            const line = r.stderr.split('\n').find((l) => l.startsWith('WHARF_CLI_TRACE '));
            if (line) {
              const m = JSON.parse(line.slice('WHARF_CLI_TRACE '.length)) as Record<string, number>;
              traces[cmd[0]!]!.push(PHASES.map((p) => m[p] ?? NaN));
            }
          }
        }
        if (cmd[0] === 'version') floor.push((await timed(NODE, ['-e', '0'], env)).ms);
      }
      const md = median(t.docker!), mw = median(t.wharf!), mn = median(t.nodecache!);
      console.error(`# ${cmd.join(' ')}: docker ${t.docker!.map((x) => x.toFixed(0)).join(',')} wharf ${t.wharf!.map((x) => x.toFixed(0)).join(',')}${BEFORE ? ` before ${t.before!.map((x) => x.toFixed(0)).join(',')}` : ''}`);
      const mb = BEFORE ? median(t.before!) : NaN;
      rows.push(`| \`${cmd.join(' ')}\` | ${md.toFixed(1)} ms | ${mw.toFixed(1)} ms | **${(mw / md).toFixed(2)}** | ≤ 1.5 | ${mn.toFixed(1)} ms (${(mn / md).toFixed(2)}) |${BEFORE ? ` ${mb.toFixed(1)} ms | ${(mb / md).toFixed(2)} |` : ''}`);
    }
    console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}; runs: ${RUNS} per command and CLI`);
    console.log(`floor: \`node -e 0\` ${median(floor).toFixed(1)} ms (median of ${floor.length})\n`);
    console.log(`| command | docker CLI | wharf CLI | wharf/docker | target | wharf, Node's compile cache instead |${BEFORE ? ' before | before/docker |' : ''}`);
    console.log(`|---|---|---|---|---|---|${BEFORE ? '---|---|' : ''}`);
    for (const r of rows) console.log(r);
    console.log('\nwharf\'s time by phase (medians of each phase\'s duration, ms, from WHARF_CLI_TRACE):\n');
    console.log(`| phase | ${Object.keys(traces).join(' | ')} |`);
    console.log(`|---|${Object.keys(traces).map(() => '---|').join('')}`);
    for (let p = 0; p < PHASES.length; p++) {
      const cells = Object.values(traces).map((rs) => {
        const d = rs.map((r) => (p === 0 ? r[0]! : r[p]! - r[p - 1]!)).filter((x) => Number.isFinite(x));
        return d.length ? median(d).toFixed(1) : '–';
      });
      console.log(`| ${PHASE_LABEL[PHASES[p]!]} | ${cells.join(' | ')} |`);
    }
    await wharfd.docker(['rm', '-f', 'bench-cli']).catch(() => {});
  } finally {
    for (const d of daemons) await d.stop().catch((e) => console.error(e));
    await releaseBenchFs();
  }
}

await main();
