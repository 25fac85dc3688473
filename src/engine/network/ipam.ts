/**
 * IP address management for one IPv4 subnet, persisted as one JSON file written atomically.
 * Allocation and release are serialised in-process (one daemon owns the file), so concurrent container
 * starts never receive the same address; a crash leaves either the old or the new allocation table.
 *
 * Several daemons on one host share the bridge device (wharf0): each keeps its own table, and `HostClaims`
 * records who holds which address host-wide (a file under /run, changed under a lock directory), so two
 * daemons never give the same address to two live containers.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic.js';
import { ConflictError, InvalidParameterError, SystemError } from '../../lib/errors.js';
import { isENOENT, missingAs } from '../../lib/fsutil.js';

/** A state file of IP allocations that exists but cannot be read: starting over from nothing would hand out taken addresses. */
function unreadable(file: string, e: unknown): SystemError {
  return new SystemError(`IP allocations in ${file} unreadable: ${(e as Error).message}`, { cause: e });
}

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new InvalidParameterError(`invalid IP address: ${ip}`);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string, maxPrefix = 30): { network: number; prefix: number; size: number } {
  const [ip, pfx] = cidr.split('/');
  const prefix = Number(pfx);
  if (!ip || !Number.isInteger(prefix) || prefix < 8 || prefix > maxPrefix) throw new InvalidParameterError(`invalid subnet: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(ip) & mask) >>> 0, prefix, size: 2 ** (32 - prefix) };
}

/**
 * The addresses of a subnet that can be handed out (neither its network nor its broadcast address), within
 * `range` (docker's IPRange) when there is one: first and last, inclusive. dockerd's IPAM gives the first of them
 * to the gateway when none is set: 10.1.5.0 for --subnet 10.1.0.0/16 --ip-range 10.1.5.0/24 (measured).
 */
export function poolBounds(subnet: string, range?: string): { first: number; last: number } {
  const c = parseCidr(subnet);
  let first = c.network + 1;
  let last = c.network + c.size - 2;
  if (range) {
    const r = parseCidr(range, 32);
    first = Math.max(first, r.network);
    last = Math.min(last, r.network + r.size - 1);
  }
  return { first, last };
}

interface Table { subnet: string; gateway: string; allocated: Record<string, string> }

interface Claim { daemon: string; owner: string; ns: string; at: number }

/** A lock directory older than this lost its holder. */
const STALE_MS = 10_000;

/** Host-wide claims on the addresses of one bridge, shared by every daemon that uses it. */
export class HostClaims {
  constructor(private readonly file: string, private readonly daemon: string, private readonly nsPathOf: (owner: string) => string) {}

  /** Runs `fn` on the claims while holding the lock directory (a stale lock, older than STALE_MS, is broken). */
  private async locked<T>(fn: (claims: Record<string, Claim>) => Promise<{ result: T; write: Record<string, Claim> | null }>): Promise<T> {
    const lock = `${this.file}.lock`;
    await mkdir(dirname(this.file), { recursive: true });
    for (let i = 0; ; i++) {
      try {
        await mkdir(lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const st = await stat(lock).catch(missingAs(null));
        if (st && Date.now() - st.mtimeMs > STALE_MS) { await HostClaims.breakStale(lock); continue; }
        if (i > 500) throw new ConflictError(`the address claims of ${this.file} stay locked`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    try {
      let claims: Record<string, Claim> = {};
      try { claims = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, Claim>; } catch (e) { if (!isENOENT(e)) throw unreadable(this.file, e); /* none yet */ }
      const { result, write } = await fn(claims);
      // under /run (tmpfs): nothing to sync, and the claims end with the boot anyway
      if (write) await writeFileAtomic(this.file, JSON.stringify(write), 0o644, { durable: false });
      return result;
    } finally {
      await rmdir(lock).catch(missingAs(undefined));
    }
  }

  /**
   * Removes a stale lock (its holder died: a daemon killed while holding it), one breaker at a time. Without the
   * guard, two waiters that both saw the stale lock each removed "it", the second one removing the fresh lock the
   * first had just taken, and both went on holding the claims: one subnet or address handed out twice (measured:
   * 5 rounds in 30 of eight daemons waiting on a stale lock). Under the guard the lock is looked at again.
   */
  private static async breakStale(lock: string): Promise<void> {
    const guard = `${lock}.break`;
    try {
      await mkdir(guard);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // a breaker killed between its mkdir and rmdir (a few µs) leaves the guard: it goes after a minute
      const g = await stat(guard).catch(missingAs(null));
      if (g && Date.now() - g.mtimeMs > 60_000) await rmdir(guard).catch(missingAs(undefined));
      else await new Promise((r) => setTimeout(r, 5));
      return;
    }
    try {
      const st = await stat(lock).catch(missingAs(null));
      if (st && Date.now() - st.mtimeMs > STALE_MS) await rmdir(lock).catch(missingAs(undefined));
    } finally {
      await rmdir(guard).catch(missingAs(undefined));
    }
  }

  /** Whether a claim still holds: its endpoint's netns exists, or it is too young to have made it yet. */
  private static live(c: Claim): boolean {
    return existsSync(c.ns) || Date.now() - c.at < 30_000;
  }

  /** Claims the first of `candidates` no other daemon holds live; `null` when none is left. */
  pick(owner: string, candidates: Iterable<string>): Promise<string | null> {
    return this.locked(async (claims) => {
      for (const ip of candidates) {
        const c = claims[ip];
        if (c && !(c.daemon === this.daemon && c.owner === owner) && (c.daemon === this.daemon || HostClaims.live(c))) continue;
        const write = { ...claims, [ip]: { daemon: this.daemon, owner, ns: this.nsPathOf(owner), at: Date.now() } };
        return { result: ip, write };
      }
      return { result: null, write: null };
    });
  }

  /** Drops this daemon's claims of `owner`. */
  release(owner: string): Promise<void> {
    return this.locked(async (claims) => {
      const keep = Object.fromEntries(Object.entries(claims).filter(([, c]) => !(c.daemon === this.daemon && c.owner === owner)));
      return { result: undefined, write: Object.keys(keep).length === Object.keys(claims).length ? null : keep };
    });
  }
}

export class Ipam {
  private chain: Promise<unknown> = Promise.resolve();
  private table: Table | null = null;
  readonly network: number;
  readonly prefix: number;
  readonly size: number;
  readonly gateway: string;

  /** The addresses handed out without a `want` (docker's --ip-range): first and last, inclusive. */
  private readonly first: number;
  private readonly last: number;

  /**
   * `range` (docker's IPRange, inside the subnet): addresses are chosen from it only, the first free one first;
   * a `want` may lie anywhere in the subnet, as dockerd allows.
   */
  constructor(private readonly file: string, readonly subnet: string, gateway?: string, private readonly host?: HostClaims, range?: string) {
    const c = parseCidr(subnet);
    this.network = c.network; this.prefix = c.prefix; this.size = c.size;
    ({ first: this.first, last: this.last } = poolBounds(subnet, range));
    this.gateway = gateway ?? intToIp(this.first);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {}); // the caller gets p's error; the chain only orders the calls
    return p;
  }

  private async load(): Promise<Table> {
    if (this.table) return this.table;
    try {
      const t = JSON.parse(await readFile(this.file, 'utf8')) as Table;
      if (t.subnet === this.subnet) { this.table = t; return t; }
    } catch (e) { if (!isENOENT(e)) throw unreadable(this.file, e); /* fresh */ }
    this.table = { subnet: this.subnet, gateway: this.gateway, allocated: {} };
    return this.table;
  }

  /** Allocates the first free address (or `want`) for `owner`. Idempotent per owner. */
  allocate(owner: string, want?: string): Promise<string> {
    return this.locked(async () => {
      const t = await this.load();
      const mine = Object.entries(t.allocated).find(([, o]) => o === owner);
      if (mine && (!want || mine[0] === want)) {
        if (this.host) await this.host.pick(owner, [mine[0]]);
        return mine[0];
      }
      const gw = ipToInt(this.gateway);
      let ip: string | null = null;
      if (want) {
        const n = ipToInt(want);
        if (n <= this.network || n >= this.network + this.size - 1 || n === gw) throw new InvalidParameterError(`Address ${want} is not in subnet ${this.subnet} or is reserved`);
        if (t.allocated[want]) throw new ConflictError(`Address already in use: ${want}`);
        if (this.host && (await this.host.pick(owner, [want])) === null) throw new ConflictError(`Address already in use: ${want}`);
        ip = want;
      } else {
        const first = this.first, last = this.last;
        const free = function* (): Generator<string> {
          for (let n = first; n <= last; n++) {
            if (n === gw) continue;
            const s = intToIp(n);
            if (!t.allocated[s]) yield s;
          }
        };
        if (this.host) ip = await this.host.pick(owner, free());
        else for (const s of free()) { ip = s; break; }
        if (!ip) throw new ConflictError(`no available IPv4 addresses on this network's address pools: ${this.subnet}`);
      }
      const next: Table = { ...t, allocated: { ...t.allocated, [ip]: owner } };
      // not synced (nor at release): an allocation lives as long as its netns, which a power loss ends too; after a
      // reboot every container's exit releases its address again (ContainerRunner.recover)
      await writeFileAtomic(this.file, JSON.stringify(next), 0o644, { durable: false });
      this.table = next;
      return ip;
    });
  }

  /** Releases every address held by `owner`. */
  release(owner: string): Promise<void> {
    return this.locked(async () => {
      const t = await this.load();
      const allocated = Object.fromEntries(Object.entries(t.allocated).filter(([, o]) => o !== owner));
      if (this.host) await this.host.release(owner);
      if (Object.keys(allocated).length === Object.keys(t.allocated).length) return;
      const next = { ...t, allocated };
      await writeFileAtomic(this.file, JSON.stringify(next), 0o644, { durable: false });
      this.table = next;
    });
  }

  async allocations(): Promise<Record<string, string>> {
    return this.locked(async () => ({ ...(await this.load()).allocated }));
  }
}
