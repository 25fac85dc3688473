/**
 * What test daemons leave running when a test ends abruptly: containers outlive their daemon by design (conmon
 * monitors), so a test process that exits or is killed without `stop()` leaves containers on the shared bridge.
 * Everything a test starts lives under one directory (data root, exec root, sockets), so it is found from there:
 * the containers through runc's state files (their init pids), the daemons, monitors and registries through
 * their command lines. Used by the test daemons' exit hook (test/support/daemon.ts) and by the test runner
 * (scripts/test.mjs, after each file) — the runner also catches files that were killed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Directories that hold layers and volumes (large, never runtime state): not walked. */
const SKIP = new Set(['overlay', 'overlay2', 'vfs', 'volumes', 'image', 'layerdb', 'rootfs', 'merged', 'diff', 'work', 'blobs']);

/** Host pids of the containers whose runc state lies under `dir`. */
export function containerInits(dir: string, depth = 0, out: number[] = []): number[] {
  if (depth > 8) return out;
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP.has(e.name)) containerInits(p, depth + 1, out);
    } else if (e.name === 'state.json') {
      try {
        const pid: unknown = JSON.parse(readFileSync(p, 'utf8')).init_process_pid;
        if (typeof pid === 'number' && Number.isInteger(pid) && pid > 1) out.push(pid);
      } catch { /* not runc's */ }
    }
  }
  return out;
}

/** Pids of the processes (other than this one) whose command line names `dir` or a path below it. */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd: string;
    try { cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8'); } catch { continue; /* gone */ }
    if (cmd.split('\0').some((a) => a === dir || a.includes(dir + '/'))) out.push(Number(name));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch { return false; }
}

/**
 * SIGKILLs the containers under `dir` first, then every process naming it, and waits (up to `waitMs`) until
 * they are gone or zombies. Returns how many were signalled.
 */
export function killLeftovers(dir: string, waitMs = 3000): number {
  const pids = [...new Set([...containerInits(dir), ...processesUnder(dir)])];
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  const until = Date.now() + waitMs;
  const wait = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < until && pids.some(alive)) Atomics.wait(wait, 0, 0, 20);
  return pids.length;
}
