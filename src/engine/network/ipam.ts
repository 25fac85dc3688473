/**
 * IP address management for one IPv4 subnet, persisted as one JSON file written atomically.
 * Allocation and release are serialised in-process (one daemon owns the file), so concurrent container
 * starts never receive the same address; a crash leaves either the old or the new allocation table.
 */
import { readFile } from 'node:fs/promises';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { ConflictError, InvalidParameterError } from '../../lib/errors.js';

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new InvalidParameterError(`invalid IP address: ${ip}`);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { network: number; prefix: number; size: number } {
  const [ip, pfx] = cidr.split('/');
  const prefix = Number(pfx);
  if (!ip || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new InvalidParameterError(`invalid subnet: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(ip) & mask) >>> 0, prefix, size: 2 ** (32 - prefix) };
}

interface Table { subnet: string; gateway: string; allocated: Record<string, string> }

export class Ipam {
  private chain: Promise<unknown> = Promise.resolve();
  private table: Table | null = null;
  readonly network: number;
  readonly prefix: number;
  readonly size: number;
  readonly gateway: string;

  constructor(private readonly file: string, readonly subnet: string, gateway?: string) {
    const c = parseCidr(subnet);
    this.network = c.network; this.prefix = c.prefix; this.size = c.size;
    this.gateway = gateway ?? intToIp(c.network + 1);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async load(): Promise<Table> {
    if (this.table) return this.table;
    try {
      const t = JSON.parse(await readFile(this.file, 'utf8')) as Table;
      if (t.subnet === this.subnet) { this.table = t; return t; }
    } catch { /* fresh */ }
    this.table = { subnet: this.subnet, gateway: this.gateway, allocated: {} };
    return this.table;
  }

  /** Allocates the first free address (or `want`) for `owner`. Idempotent per owner. */
  allocate(owner: string, want?: string): Promise<string> {
    return this.locked(async () => {
      const t = await this.load();
      const mine = Object.entries(t.allocated).find(([, o]) => o === owner);
      if (mine && (!want || mine[0] === want)) return mine[0];
      const gw = ipToInt(this.gateway);
      let ip: string | null = null;
      if (want) {
        const n = ipToInt(want);
        if (n <= this.network || n >= this.network + this.size - 1 || n === gw) throw new InvalidParameterError(`Address ${want} is not in subnet ${this.subnet} or is reserved`);
        if (t.allocated[want]) throw new ConflictError(`Address already in use: ${want}`);
        ip = want;
      } else {
        for (let n = this.network + 2; n < this.network + this.size - 1; n++) {
          if (n === gw) continue;
          const s = intToIp(n);
          if (!t.allocated[s]) { ip = s; break; }
        }
        if (!ip) throw new ConflictError(`no available IPv4 addresses on this network's address pools: ${this.subnet}`);
      }
      const next: Table = { ...t, allocated: { ...t.allocated, [ip]: owner } };
      await writeJsonAtomic(this.file, next);
      this.table = next;
      return ip;
    });
  }

  /** Releases every address held by `owner`. */
  release(owner: string): Promise<void> {
    return this.locked(async () => {
      const t = await this.load();
      const allocated = Object.fromEntries(Object.entries(t.allocated).filter(([, o]) => o !== owner));
      if (Object.keys(allocated).length === Object.keys(t.allocated).length) return;
      const next = { ...t, allocated };
      await writeJsonAtomic(this.file, next);
      this.table = next;
    });
  }

  async allocations(): Promise<Record<string, string>> {
    return this.locked(async () => ({ ...(await this.load()).allocated }));
  }
}
