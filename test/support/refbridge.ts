/**
 * A bridge of its own for each reference dockerd that tests and benchmarks start, so that dockerd never touches
 * the host's docker0 (`--bridge=none` makes dockerd delete docker0; the default would create or take it over).
 *
 *   const br = createRefBridge();          // ip link add wref<N> type bridge; 10.213.<N>.1/24; up
 *   spawn('dockerd', [..., `--bridge=${br.name}`, '--iptables=false', '--ip-masq=false']);
 *   br.remove();                           // ip link del wref<N> (synchronous: usable from exit handlers)
 *
 * N is the first free number (the `ip link add` itself is the claim, so parallel callers never share one); the
 * subnet 10.213.<N>.0/24 is checked against the host's routes and skipped when anything already covers it.
 * dockerd takes the address of an existing bridge as its default network's gateway and subnet.
 */
import { execFileSync } from 'node:child_process';

export interface RefBridge {
  name: string;
  /** The bridge's address with its prefix, e.g. "10.213.0.1/24". */
  address: string;
  remove(): void;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether an IPv4 route of the host covers or lies inside 10.213.<n>.0/24. */
function subnetTaken(n: number, routes: string): boolean {
  const net = (10 << 24 | 213 << 16 | n << 8) >>> 0;
  for (const line of routes.split('\n')) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?\s/.exec(line);
    if (!m) continue;
    const addr = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const len = Number(m[5] ?? 32);
    const common = Math.min(len, 24);
    const mask = common === 0 ? 0 : (~0 << (32 - common)) >>> 0;
    if (((addr & mask) >>> 0) === ((net & mask) >>> 0)) return true;
  }
  return false;
}

export function createRefBridge(): RefBridge {
  const routes = ip(['-4', 'route', 'show', 'table', 'all']);
  for (let n = 0; n < 250; n++) {
    if (subnetTaken(n, routes)) continue;
    const name = `wref${n}`;
    try {
      ip(['link', 'add', name, 'type', 'bridge']);
    } catch {
      continue; // another reference daemon holds this one
    }
    const address = `10.213.${n}.1/24`;
    try {
      ip(['addr', 'add', address, 'dev', name]);
      ip(['link', 'set', name, 'up']);
    } catch (e) {
      try { ip(['link', 'del', name]); } catch { /* gone */ }
      throw e;
    }
    let removed = false;
    return {
      name, address,
      remove() {
        if (removed) return;
        removed = true;
        try { ip(['link', 'del', name]); } catch { /* already gone */ }
      },
    };
  }
  throw new Error('no free wref<N> bridge name or 10.213.<N>.0/24 subnet for a reference dockerd');
}
