/**
 * docker stats (GET /containers/{id}/stats): a container's resource usage read from its cgroups — v1 (one
 * hierarchy per controller) or v2 (the unified one), found through /proc/<pid>/cgroup of its init — and its
 * network counters read from /proc/<pid>/net/dev (the container's own netns). The answer has dockerd 20.10's
 * shape (types.StatsJSON): cpu_stats/precpu_stats, memory_stats, blkio_stats, pids_stats, networks.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { rfc3339NanoFixed } from '../../lib/go.js';
import type { BlkioEntry, CpuStats, StatsJson } from '../../wire/stats.js';
import type { ContainerRecord } from './service.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';
/** USER_HZ: the unit of /proc/stat and cpuacct.stat (100 on Linux). */
const TICKS_PER_SECOND = 100;

/** One reading, and when it was taken. */
export interface Sample { at: Date; body: Omit<StatsJson, 'read' | 'preread' | 'precpu_stats' | 'name' | 'id'> }

const read = (p: string) => readFile(p, 'utf8').then((s) => s.trim(), () => null);
const int = (s: string | null | undefined) => (s === null || s === undefined || s === '' || s === 'max' ? undefined : Number(s));

/** "key value" lines (memory.stat, cpu.stat) as numbers. */
function kv(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Where the cgroup hierarchies are mounted: controller → mount point (v1), and the v2 mount. */
let mountsCache: Promise<{ v1: Map<string, string>; v2: string | null }> | undefined;
function cgroupMounts(): Promise<{ v1: Map<string, string>; v2: string | null }> {
  mountsCache ??= (async () => {
    const v1 = new Map<string, string>();
    let v2: string | null = null;
    for (const line of ((await read('/proc/self/mountinfo')) ?? '').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) continue;
      const mp = pre.split(' ')[4]!;
      const [fstype, , superOpts] = post.split(' ');
      if (fstype === 'cgroup2') v2 ??= mp;
      else if (fstype === 'cgroup') for (const o of (superOpts ?? '').split(',')) if (!['rw', 'ro'].includes(o)) v1.set(o.replace(/^name=/, 'name='), mp);
    }
    return { v1, v2 };
  })();
  return mountsCache;
}

/** The container's cgroup directories: per v1 controller, or its unified (v2) directory. */
async function cgroupDirs(pid: number): Promise<{ v1: Map<string, string>; v2: string | null }> {
  const text = await read(`/proc/${pid}/cgroup`);
  if (text === null) throw new Error(`process ${pid} is gone`);
  const mounts = await cgroupMounts();
  const v1 = new Map<string, string>();
  let v2: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, hid, ctrls, path] = m as unknown as [string, string, string, string];
    if (hid === '0' && ctrls === '') { if (mounts.v2) v2 = join(mounts.v2, path); continue; }
    for (const c of ctrls.split(',')) { const mp = mounts.v1.get(c); if (mp) v1.set(c, join(mp, path)); }
  }
  // a hybrid host puts the container in v1 controllers and the (controller-less) unified tree: v1 it is
  if (v1.has('memory') || v1.has('cpuacct')) v2 = null;
  return { v1, v2 };
}

/** The host's CPU time in ns and online CPUs, from /proc/stat as dockerd reads it. */
async function systemCpu(): Promise<{ usage: number; online: number }> {
  const text = (await read('/proc/stat')) ?? '';
  let usage = 0, online = 0;
  for (const l of text.split('\n')) {
    if (l.startsWith('cpu ')) usage = l.split(/\s+/).slice(1, 8).reduce((a, x) => a + Number(x), 0) * (1e9 / TICKS_PER_SECOND);
    else if (/^cpu\d+ /.test(l)) online++;
  }
  return { usage, online: online || cpus().length };
}

async function hostMemory(): Promise<number> {
  const m = /MemTotal:\s+(\d+) kB/.exec((await read('/proc/meminfo')) ?? '');
  return m ? Number(m[1]) * 1024 : 0;
}

/** v1 blkio lines "8:0 Read 1234" (the per-device "Total" included, the summary line not). */
function blkioV1(text: string | null): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const l of (text ?? '').split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const [maj, min] = f[0]!.split(':').map(Number) as [number, number];
    out.push({ major: maj, minor: min, op: f[1]!, value: Number(f[2]) });
  }
  return out;
}

/** v2 io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4 …" as dockerd maps it (lower-case ops). */
function ioV2(text: string | null): { bytes: BlkioEntry[]; ios: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [], ios: BlkioEntry[] = [];
  for (const l of (text ?? '').split('\n')) {
    const f = l.trim().split(/\s+/);
    if (!f[0]?.includes(':')) continue;
    const [major, minor] = f[0].split(':').map(Number) as [number, number];
    const v = Object.fromEntries(f.slice(1).map((x) => x.split('=') as [string, string]));
    bytes.push({ major, minor, op: 'read', value: Number(v.rbytes ?? 0) }, { major, minor, op: 'write', value: Number(v.wbytes ?? 0) });
    ios.push({ major, minor, op: 'read', value: Number(v.rios ?? 0) }, { major, minor, op: 'write', value: Number(v.wios ?? 0) });
  }
  return { bytes, ios };
}

/** Interfaces of the container's netns (loopback left out), from /proc/<pid>/net/dev. */
async function networks(pid: number): Promise<StatsJson['networks']> {
  const text = await read(`/proc/${pid}/net/dev`);
  if (!text) return undefined;
  // interface names are the container's to choose (with NET_ADMIN): no prototype to collide with
  const out: NonNullable<StatsJson['networks']> = Object.create(null) as NonNullable<StatsJson['networks']>;
  for (const l of text.split('\n').slice(2)) {
    const [name, rest] = l.split(':');
    if (!name || rest === undefined || name.trim() === 'lo') continue;
    const f = rest.trim().split(/\s+/).map(Number);
    out[name.trim()] = { rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!, tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]! };
  }
  return Object.keys(out).length ? out : undefined;
}

const EMPTY_BLKIO: StatsJson['blkio_stats'] = {
  io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null,
  io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
};

export const EMPTY_CPU: CpuStats = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/**
 * One reading of a running container's cgroups and network counters (`network` false for a container in the
 * host's netns or in none: dockerd reports no networks for those).
 */
export async function sample(pid: number, network = true): Promise<Sample> {
  return sampleAt(await cgroupDirs(pid), network ? pid : null);
}

/** A reading of the given cgroup directories (v1 by controller, or one v2 directory) and of `pid`'s netns. */
export async function sampleAt(dirs: { v1: Map<string, string>; v2: string | null }, pid: number | null): Promise<Sample> {
  const [sys, hostMem, nets] = await Promise.all([systemCpu(), hostMemory(), pid === null ? undefined : networks(pid)]);
  const at = new Date();
  if (dirs.v2) {
    const d = dirs.v2;
    const [cpuStat, memCur, memMax, memStat, pidsCur, pidsMax, io] = await Promise.all([
      read(join(d, 'cpu.stat')), read(join(d, 'memory.current')), read(join(d, 'memory.max')), read(join(d, 'memory.stat')),
      read(join(d, 'pids.current')), read(join(d, 'pids.max')), read(join(d, 'io.stat')),
    ]);
    const c = kv(cpuStat);
    const mlimit = int(memMax);
    const { bytes, ios } = ioV2(io);
    return {
      at,
      body: {
        pids_stats: { ...(int(pidsCur) !== undefined ? { current: int(pidsCur)! } : {}), ...(int(pidsMax) !== undefined ? { limit: int(pidsMax)! } : {}) },
        blkio_stats: { ...EMPTY_BLKIO, io_service_bytes_recursive: bytes, io_serviced_recursive: ios },
        num_procs: 0, storage_stats: {},
        cpu_stats: {
          cpu_usage: { total_usage: (c.usage_usec ?? 0) * 1000, usage_in_kernelmode: (c.system_usec ?? 0) * 1000, usage_in_usermode: (c.user_usec ?? 0) * 1000 },
          system_cpu_usage: sys.usage, online_cpus: sys.online,
          throttling_data: { periods: c.nr_periods ?? 0, throttled_periods: c.nr_throttled ?? 0, throttled_time: (c.throttled_usec ?? 0) * 1000 },
        },
        memory_stats: {
          ...(int(memCur) !== undefined ? { usage: int(memCur)! } : {}), stats: kv(memStat),
          limit: mlimit !== undefined && mlimit < hostMem ? mlimit : hostMem,
        },
        ...(nets ? { networks: nets } : {}),
      },
    };
  }
  const v1 = (c: string, f: string) => { const d = dirs.v1.get(c); return d ? read(join(d, f)) : Promise.resolve(null); };
  const [usage, percpu, cpuacctStat, cpuStat, memUsage, memMax, memLimit, memStat, pidsCur, pidsMax, ioBytes, ioServiced, thrBytes, thrServiced] = await Promise.all([
    v1('cpuacct', 'cpuacct.usage'), v1('cpuacct', 'cpuacct.usage_percpu'), v1('cpuacct', 'cpuacct.stat'), v1('cpu', 'cpu.stat'),
    v1('memory', 'memory.usage_in_bytes'), v1('memory', 'memory.max_usage_in_bytes'), v1('memory', 'memory.limit_in_bytes'),
    v1('memory', 'memory.stat'), v1('pids', 'pids.current'), v1('pids', 'pids.max'),
    v1('blkio', 'blkio.io_service_bytes_recursive'), v1('blkio', 'blkio.io_serviced_recursive'),
    v1('blkio', 'blkio.throttle.io_service_bytes_recursive'), v1('blkio', 'blkio.throttle.io_serviced_recursive'),
  ]);
  const st = kv(cpuacctStat);
  const thr = kv(cpuStat);
  const mlimit = int(memLimit);
  // dockerd: the CFQ files when they have data, else the throttle ones
  const bytes = blkioV1(ioBytes);
  const serviced = blkioV1(ioServiced);
  return {
    at,
    body: {
      pids_stats: { ...(int(pidsCur) !== undefined ? { current: int(pidsCur)! } : {}), ...(int(pidsMax) !== undefined ? { limit: int(pidsMax)! } : {}) },
      blkio_stats: {
        io_service_bytes_recursive: bytes.length ? bytes : blkioV1(thrBytes), io_serviced_recursive: serviced.length ? serviced : blkioV1(thrServiced),
        io_queue_recursive: [], io_service_time_recursive: [], io_wait_time_recursive: [], io_merged_recursive: [], io_time_recursive: [], sectors_recursive: [],
      },
      num_procs: 0, storage_stats: {},
      cpu_stats: {
        cpu_usage: {
          total_usage: Number(usage ?? 0), percpu_usage: (percpu ?? '').split(/\s+/).filter(Boolean).map(Number),
          usage_in_kernelmode: (st.system ?? 0) * (1e9 / TICKS_PER_SECOND), usage_in_usermode: (st.user ?? 0) * (1e9 / TICKS_PER_SECOND),
        },
        system_cpu_usage: sys.usage, online_cpus: sys.online,
        throttling_data: { periods: thr.nr_periods ?? 0, throttled_periods: thr.nr_throttled ?? 0, throttled_time: thr.throttled_time ?? 0 },
      },
      memory_stats: {
        ...(int(memUsage) !== undefined ? { usage: int(memUsage)! } : {}), ...(int(memMax) !== undefined ? { max_usage: int(memMax)! } : {}),
        stats: kv(memStat),
        limit: mlimit !== undefined && mlimit < hostMem ? mlimit : hostMem,
      },
      ...(nets ? { networks: nets } : {}),
    },
  };
}

/** The StatsJSON of a reading (with the previous one as precpu), or of a stopped container (all zero). */
export function statsJson(r: ContainerRecord, cur: Sample | null, pre: Sample | null): StatsJson {
  const base = cur?.body ?? {
    pids_stats: {}, blkio_stats: EMPTY_BLKIO, num_procs: 0, storage_stats: {}, cpu_stats: EMPTY_CPU, memory_stats: {},
  };
  return {
    read: cur ? rfc3339NanoFixed(cur.at) : ZERO_TIME,
    preread: pre ? rfc3339NanoFixed(pre.at) : ZERO_TIME,
    pids_stats: base.pids_stats, blkio_stats: base.blkio_stats, num_procs: 0, storage_stats: {},
    cpu_stats: base.cpu_stats, precpu_stats: pre?.body.cpu_stats ?? EMPTY_CPU,
    memory_stats: base.memory_stats, name: r.Name, id: r.ID,
    ...(base.networks ? { networks: base.networks } : {}),
  };
}

/** The container's memory cgroup directory (v1 memory controller, or its v2 directory), while its init runs. */
export async function memoryCgroupOf(pid: number): Promise<{ dir: string; v2: boolean } | null> {
  const dirs = await cgroupDirs(pid).catch(() => null);
  if (!dirs) return null;
  if (dirs.v2) return { dir: dirs.v2, v2: true };
  const d = dirs.v1.get('memory');
  return d ? { dir: d, v2: false } : null;
}

/** Kernel OOM kills so far in a memory cgroup: v2 memory.events' oom_kill, v1 memory.oom_control's. */
export async function oomKills(cg: { dir: string; v2: boolean }): Promise<number> {
  return kv(await read(join(cg.dir, cg.v2 ? 'memory.events' : 'memory.oom_control'))).oom_kill ?? 0;
}

/** How long a one-time reading (stream=false) waits between its two samples (dockerd: its 1 s collector tick). */
const PRE_SAMPLE_MS = 500;
/** The interval of a streamed reading (dockerd's collector interval). */
const STREAM_INTERVAL_MS = 1000;

/** Waits `ms`, or less when `signal` aborts (the client went away). */
const sleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, signal ? { signal } : {}).catch(() => {});

/** GET /containers/{id}/stats over the container records. */
export class StatsService {
  constructor(private readonly c: { get(ref: string): ContainerRecord }) {}

  private async take(r: ContainerRecord): Promise<Sample | null> {
    if (!r.State.Running || r.State.Restarting || !r.State.Pid) return null;
    const mode = String(r.HostConfig.NetworkMode ?? 'default');
    return sample(r.State.Pid, mode !== 'host' && mode !== 'none').catch(() => null);
  }

  /**
   * stream=false: one answer (two samples apart, so precpu_stats is filled; one sample with oneShot); stream=true:
   * an answer per second until the signal aborts. A container that is not running answers zeros, as dockerd.
   */
  async *stats(ref: string, opts: { stream: boolean; oneShot: boolean; signal?: AbortSignal }): AsyncGenerator<StatsJson> {
    const r = this.c.get(ref);
    if (!opts.stream) {
      const first = await this.take(r);
      if (!first || opts.oneShot) { yield statsJson(r, first, null); return; }
      await sleep(PRE_SAMPLE_MS, opts.signal);
      const second = await this.take(r);
      yield second ? statsJson(r, second, first) : statsJson(r, null, null);
      return;
    }
    let prev: Sample | null = null;
    while (!opts.signal?.aborted) {
      const cur = await this.take(r);
      yield statsJson(r, cur, cur ? prev : null);
      prev = cur;
      await sleep(STREAM_INTERVAL_MS, opts.signal);
    }
  }
}
