/**
 * A real wharfd for end-to-end tests, on a private socket, data root and exec root under os.tmpdir().
 *
 *   const d = await startDaemon();                 // or startDaemon({ driver: 'vfs', extraArgs: [...] })
 *   after(() => d.stop());
 *   const r = await d.wharf(['images']);           // { code, stdout, stderr } through the wharf CLI
 *   const s = await d.docker(['images']);          // the same through the real docker CLI
 *   await d.kill('SIGKILL'); await d.restart();    // crash and start again on the same data root
 *
 * wharfd runs as `node_modules/node/bin/node dist/src/daemon/wharfd.cjs -H unix://SOCK --data-root … (the bundle; main.js when tsc ran since)
 * --exec-root … --pidfile …` (so a signal reaches the daemon itself), and startDaemon resolves once
 * `GET /_ping` answers 200. stop() ends it (SIGTERM, then SIGKILL), unmounts whatever is still mounted
 * under its directory (lazily, deepest first) and removes the directory; an exit handler does the same
 * synchronously for daemons a failed test did not stop.
 *
 * Checking the tests themselves against docker: with WHARF_E2E_DAEMON=dockerd, startDaemon starts Debian's
 * dockerd (with its own containerd, a bridge of its own — wref<N>, see refbridge.ts, removed when it stops; never
 * docker0 — and --iptables=false) on the same private directories instead,
 * and wharf() runs the docker CLI, so every e2e expectation can be confirmed against the real thing.
 * With WHARF_E2E_CLI=docker, wharf() runs the docker CLI against wharfd (to tell daemon from CLI faults).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER, NODE, WHARFD, WHARF_CLI, run, sha256, type RunOpts, type RunResult } from './cli.js';
import { createRefBridge, type RefBridge } from './refbridge.js';
import { killLeftovers, processesUnder } from './leftovers.js';

export interface DaemonOptions {
  /** -s/--storage-driver (overlay or vfs); the daemon's own choice when absent. */
  driver?: string;
  extraArgs?: string[];
  /** How long to wait for /_ping (ms, default 30 s). */
  startTimeoutMs?: number;
  /** 'dockerd': Debian's dockerd on the same private directories (reference mode for this daemon only). */
  engine?: 'wharfd' | 'dockerd';
  /** The data root (default <dir>/data), e.g. a small filesystem the test mounted; the test removes it. */
  dataRoot?: string;
}

export interface Daemon {
  /** Which engine this is: wharfd, or Debian's dockerd (reference mode). */
  engine: 'wharfd' | 'dockerd';
  /** The private directory holding everything below. */
  dir: string;
  sock: string;
  /** unix://<sock> */
  host: string;
  dataRoot: string;
  execRoot: string;
  pidfile: string;
  /** The daemon's pid (changes with restart()). */
  readonly pid: number | undefined;
  /** What wharfd printed so far (stdout and stderr of every start). */
  log(): string;
  /** The wharf CLI with DOCKER_HOST set to this daemon. */
  wharf(args: string[], opts?: RunOpts): Promise<RunResult>;
  /** The real docker CLI with DOCKER_HOST set to this daemon, a private DOCKER_CONFIG and DOCKER_BUILDKIT=0. */
  docker(args: string[], opts?: RunOpts): Promise<RunResult>;
  /** GET/POST on the daemon's socket: status and body text. */
  api(method: string, path: string, body?: string): Promise<{ status: number; body: string }>;
  /** Sends a signal (default SIGKILL) and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the daemon if it runs, then starts it again on the same directories and waits for /_ping. */
  restart(): Promise<void>;
  /** Stops the daemon, unmounts what is left under its directory and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<{ child?: ChildProcess; dir: string; bridge?: RefBridge }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const d of live) {
      try { d.child?.kill('SIGKILL'); } catch { /* gone */ }
      killLeftovers(d.dir); // containers outlive the daemon: runc's state under the dir names them
      cleanupDirSync(d.dir);
      d.bridge?.remove();
    }
  });
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
function mountsUnder(dir: string): string[] {
  let text = '';
  try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(dir + '/')) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

function cleanupDirSync(dir: string): void {
  for (const m of mountsUnder(dir)) {
    try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
  try { rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch { /* best effort */ }
}

/** SIGKILLs every process whose command line mentions `dir` (reference mode: dockerd's orphaned containerd). */
function ping(sock: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: sock, path: '/_ping', method: 'GET', timeout: 2000 }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.on('error', () => res(false));
    req.on('timeout', () => { req.destroy(); res(false); });
    req.end();
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    child.once('exit', () => { clearTimeout(t); res(true); });
  });
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  installExitHook();
  const reference = opts.engine === 'dockerd' || (opts.engine === undefined && process.env.WHARF_E2E_DAEMON === 'dockerd');
  if (!reference && !existsSync(WHARFD)) throw new Error(`${WHARFD} is missing: the daemon is not built (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-e2e-'));
  const dataRoot = opts.dataRoot ?? join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const sock = join(dir, 'wharf.sock');
  const pidfile = join(dir, 'wharfd.pid');
  const dockerConfig = join(dir, 'docker-config');
  mkdirSync(dockerConfig, { recursive: true });
  const host = `unix://${sock}`;
  const args = ['-H', host, '--data-root', dataRoot, '--exec-root', execRoot, '--pidfile', pidfile];
  const driver = opts.driver ?? process.env.WHARF_TEST_DRIVER;
  if (driver) args.push('--storage-driver', driver);
  args.push(...(opts.extraArgs ?? []));

  const entry: { child?: ChildProcess; dir: string; bridge?: RefBridge } = { dir };
  live.add(entry);
  // the reference dockerd's own bridge (kept across restart(), removed by stop())
  if (reference) entry.bridge = createRefBridge();
  let logText = '';
  let stopped = false;

  async function launch(): Promise<void> {
    const child = reference
      ? spawn('dockerd', [...args, `--bridge=${entry.bridge!.name}`, '--iptables=false', '--ip-masq=false', '--ip6tables=false', '--containerd-namespace', 'wharf-e2e',
        '--containerd-plugins-namespace', 'wharf-e2e-plugins', '--exec-opt', 'native.cgroupdriver=cgroupfs'], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(NODE, [WHARFD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    entry.child = child;
    const onData = (d: Buffer) => { logText = (logText + d.toString()).slice(-200_000); };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wharfd exited (${child.exitCode ?? child.signalCode}) before answering /_ping:\n${logText}`);
      }
      if (await ping(sock)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`wharfd did not answer /_ping on ${sock} within ${opts.startTimeoutMs ?? 30_000} ms:\n${logText}`);
  }

  async function terminate(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = entry.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      if (!(await waitExit(child, graceMs))) {
        child.kill('SIGKILL');
        await waitExit(child, 5000);
      }
    }
  }

  const cliEnv = { DOCKER_HOST: host };
  const d: Daemon = {
    engine: reference ? 'dockerd' : 'wharfd', dir, sock, host, dataRoot, execRoot, pidfile,
    get pid() { return entry.child?.pid; },
    log: () => logText,
    wharf: (a, o = {}) => (reference || process.env.WHARF_E2E_CLI === 'docker' ? d.docker(a, o) : run(NODE, [WHARF_CLI, ...a], { ...o, env: { ...cliEnv, ...o.env } })),
    docker: (a, o = {}) => run(DOCKER, a, {
      ...o,
      env: { ...cliEnv, DOCKER_CONFIG: dockerConfig, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false', ...o.env },
    }),
    api: (method, path, body) => new Promise((res, rej) => {
      const req = request({ socketPath: sock, method, path, headers: body ? { 'Content-Type': 'application/json' } : {} }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => res({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        r.on('error', rej);
      });
      req.on('error', rej);
      req.end(body);
    }),
    kill: async (signal = 'SIGKILL') => {
      const child = entry.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await waitExit(child, 30_000);
      // dockerd's own containerd outlives a SIGKILL of dockerd and would block the restart
      if (reference && signal === 'SIGKILL') {
        for (let i = 0; i < 50; i++) {
          const pids = processesUnder(dir);
          if (pids.length === 0) break;
          for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
          await new Promise((r) => setTimeout(r, 100));
        }
        rmSync(join(execRoot, 'containerd', 'containerd.pid'), { force: true }); // may name a zombie
      }
    },
    restart: async () => {
      if (stopped) throw new Error('daemon was stopped');
      await terminate('SIGTERM', 15_000);
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await removeContainers();
      await terminate('SIGTERM', 15_000);
      cleanupDirSync(dir);
      entry.bridge?.remove();
      live.delete(entry);
    },
  };

  /** Containers outlive the daemon by design (monitors): those a test left behind are removed with -f first. */
  const removeContainers = async (): Promise<void> => {
    if (reference || !entry.child || entry.child.exitCode !== null || entry.child.signalCode !== null) return;
    try {
      const list = await d.api('GET', '/containers/json?all=1');
      if (list.status !== 200) return;
      const ids = (JSON.parse(list.body) as { Id: string }[]).map((c) => c.Id);
      await Promise.all(ids.map((id) => d.api('DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined)));
    } catch { /* the daemon is gone: nothing to ask */ }
  };

  try {
    await launch();
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}

/**
 * The directories of an image's layers, top first, from `docker image inspect` output: overlay-style drivers
 * name them in GraphDriver.Data (UpperDir, then LowerDir, colon-separated), each holding that layer's own
 * files. docker's vfs reports no GraphDriver.Data; there each layer is a full copy of its chain, found through
 * <data-root>/layers/layerdb/sha256/<chainID>/cache-id (dockerd: image/vfs/layerdb/…) → <data-root>/vfs/dir/<id>.
 */
export function imageLayerDirs(d: Daemon, info: Record<string, any>): { kind: 'diff' | 'full'; dirs: string[] } {
  const data = info.GraphDriver?.Data;
  if (data && (data.UpperDir || data.LowerDir)) {
    return { kind: 'diff', dirs: [data.UpperDir, ...(data.LowerDir ? String(data.LowerDir).split(':') : [])].filter(Boolean) };
  }
  const diffIds: string[] = info.RootFS?.Layers ?? [];
  const chains: string[] = [];
  for (const id of diffIds) chains.push(chains.length === 0 ? id : sha256(`${chains[chains.length - 1]} ${id}`));
  const driver = String(info.GraphDriver?.Name ?? 'vfs');
  // wharf: <data-root>/layers/layerdb; dockerd: <data-root>/image/<driver>/layerdb
  const layerdb = [join(d.dataRoot, 'layers', 'layerdb'), join(d.dataRoot, 'image', driver, 'layerdb')].find((p) => existsSync(p))
    ?? join(d.dataRoot, 'layers', 'layerdb');
  const dirs = chains.reverse().map((c) => {
    const cache = readFileSync(join(layerdb, 'sha256', c.replace(/^sha256:/, ''), 'cache-id'), 'utf8').trim();
    return join(d.dataRoot, driver, 'dir', cache);
  });
  return { kind: 'full', dirs };
}

/**
 * Debian's dockerd as the reference beside a wharfd (a bridge of its own), or why it cannot start here (`skip`:
 * the tests then skip their comparisons). With `busyboxFrom`, the reference gets that wharfd's busybox.
 */
export async function startReference(busyboxFrom?: Daemon): Promise<{ ref?: Daemon; skip?: string }> {
  let ref: Daemon;
  try {
    ref = await startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 });
  } catch (e) {
    return { skip: `dockerd could not start here: ${(e as Error).message.split('\n')[0]}` };
  }
  if (busyboxFrom) await sameBusybox(busyboxFrom, ref);
  return { ref };
}

/**
 * The same busybox on a wharfd and on a reference daemon (comparison tests): bootstrapped on `w`, saved there and
 * loaded into `ref`, so both engines start from one image (same ID). Throws with the CLI's output on a failure.
 */
export async function sameBusybox(w: Daemon, ref: Daemon): Promise<void> {
  await loadBusybox(ref, w);
}

async function step(what: string, r: Promise<RunResult>): Promise<void> {
  const res = await r;
  if (res.code !== 0) throw new Error(`${what} failed (${res.code}): ${res.stdout}${res.stderr}`);
}

/** A busybox archive saved from a wharfd, made once per test process (in its TMPDIR) when no wharfd is given. */
let busyboxTarPath: Promise<string> | undefined;
async function savedBusybox(): Promise<string> {
  busyboxTarPath ??= (async () => {
    const w = await startDaemon({ engine: 'wharfd' });
    try {
      await step('wharf image bootstrap busybox', w.wharf(['image', 'bootstrap', 'busybox']));
      const tar = join(tmpdir(), `wharf-busybox-${process.pid}.tar`);
      await step('docker save busybox', w.docker(['save', '-o', tar, 'busybox']));
      process.once('exit', () => rmSync(tar, { force: true }));
      return tar;
    } finally {
      await w.stop();
    }
  })();
  return busyboxTarPath;
}

/**
 * busybox on any engine: `wharf image bootstrap busybox` (a Wharf extension) on a wharfd; on Debian's dockerd
 * (WHARF_E2E_DAEMON=dockerd) a `docker load` of the busybox a wharfd bootstraps — `from`'s (then both engines hold
 * one image, same ID), or a short-lived wharfd's. Throws with the CLI's output on a failure.
 */
export async function loadBusybox(d: Daemon, from?: Daemon): Promise<void> {
  if (d.engine === 'wharfd') { await step('wharf image bootstrap busybox', d.wharf(['image', 'bootstrap', 'busybox'])); return; }
  let tar: string;
  if (from?.engine !== 'wharfd') from = undefined; // both dockerd (WHARF_E2E_DAEMON=dockerd): nothing bootstraps there
  if (from) {
    await step('wharf image bootstrap busybox', from.wharf(['image', 'bootstrap', 'busybox']));
    tar = join(from.dir, 'busybox-for-reference.tar');
    await step('docker save busybox', from.docker(['save', '-o', tar, 'busybox']));
  } else {
    tar = await savedBusybox();
  }
  await step('docker load (reference)', d.docker(['load', '-i', tar]));
  if (from) rmSync(tar, { force: true });
}
