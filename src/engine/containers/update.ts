/**
 * docker update (POST /containers/{id}/update): resources and the restart policy of a container changed in its
 * record — the next start uses them — and, when it runs, live in its cgroups through the runtime's `update`.
 * dockerd's rules (daemon/update.go, container.UpdateContainer): zero means "unchanged", the merged HostConfig is
 * checked as at create, errors read "Cannot update container <id>: …".
 */
import { InvalidParameterError, WharfError } from '../../lib/errors.js';
import type { ContainerUpdate } from '../../wire/stats.js';
import type { Runtime } from '../runtime/index.js';
import { validateCreateBody } from './hostconfig.js';
import type { ContainerService } from './service.js';

/** The OCI LinuxResources for the fields an update sets (only those: the runtime leaves the rest alone). */
export function updateResources(u: ContainerUpdate, hc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const mem: Record<string, number> = {};
  if (u.Memory) mem.limit = u.Memory;
  if (u.MemorySwap) mem.swap = u.MemorySwap;
  if (u.MemoryReservation) mem.reservation = u.MemoryReservation;
  if (Object.keys(mem).length) out.memory = mem;
  const cpu: Record<string, unknown> = {};
  if (u.CpuShares) cpu.shares = u.CpuShares;
  if (u.NanoCpus) Object.assign(cpu, { quota: Math.round((u.NanoCpus * 100000) / 1e9), period: 100000 });
  if (u.CpuQuota) cpu.quota = u.CpuQuota;
  if (u.CpuPeriod) cpu.period = u.CpuPeriod;
  if (u.CpuQuota && !u.CpuPeriod && !cpu.period) cpu.period = typeof hc.CpuPeriod === 'number' && hc.CpuPeriod > 0 ? hc.CpuPeriod : 100000;
  if (u.CpusetCpus) cpu.cpus = u.CpusetCpus;
  if (u.CpusetMems) cpu.mems = u.CpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (u.PidsLimit !== undefined && u.PidsLimit !== null) out.pids = { limit: u.PidsLimit > 0 ? u.PidsLimit : -1 };
  if (u.BlkioWeight) out.blockIO = { weight: u.BlkioWeight };
  return out;
}

export class ContainerUpdater {
  constructor(private readonly c: ContainerService, private readonly rt: Pick<Runtime, 'update'>) {}

  async update(ref: string, u: ContainerUpdate): Promise<{ Warnings: string[] | null }> {
    const r = this.c.get(ref);
    const fail = (e: unknown): never => {
      const msg = `Cannot update container ${r.ID}: ${(e as Error).message}`;
      // the same kind of error (same status), dockerd's wording around it
      if (e instanceof WharfError) throw new (e.constructor as new (m: string) => WharfError)(msg);
      throw new InvalidParameterError(msg);
    };
    if (u.KernelMemory) fail(new InvalidParameterError('kernel memory limits are not supported by wharfd (deprecated in docker)'));
    // as dockerd: the request's own values are checked first (verifyContainerSettings on the update's HostConfig) and
    // refused with create's words alone ("Minimum memory limit allowed is 6MB", checked against Debian's dockerd);
    // only what fails against the container's current settings is worded "Cannot update container <id>: …"
    validateCreateBody({ HostConfig: structuredClone(u) as never });
    const hc = { ...r.HostConfig };
    if (u.RestartPolicy?.Name && hc.AutoRemove) throw new InvalidParameterError('Restart policy cannot be updated because AutoRemove is enabled for the container');
    if (u.NanoCpus && ((typeof hc.CpuPeriod === 'number' && hc.CpuPeriod > 0) || (typeof hc.CpuQuota === 'number' && hc.CpuQuota > 0)) && !u.CpuPeriod && !u.CpuQuota) {
      fail(new InvalidParameterError('Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set'));
    }
    if ((u.CpuPeriod || u.CpuQuota) && typeof hc.NanoCpus === 'number' && hc.NanoCpus > 0 && !u.NanoCpus) {
      fail(new InvalidParameterError('Conflicting options: CPU Period/Quota cannot be updated as NanoCPUs has already been set'));
    }
    const curSwap = typeof hc.MemorySwap === 'number' ? hc.MemorySwap : 0;
    if (u.Memory && curSwap > 0 && u.Memory > curSwap && !u.MemorySwap) {
      fail(new InvalidParameterError('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time'));
    }
    for (const k of ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'BlkioWeight'] as const) {
      if (u[k]) hc[k] = u[k];
    }
    if (u.CpusetCpus) hc.CpusetCpus = u.CpusetCpus;
    if (u.CpusetMems) hc.CpusetMems = u.CpusetMems;
    if (u.PidsLimit !== undefined && u.PidsLimit !== null) hc.PidsLimit = u.PidsLimit;
    if (u.RestartPolicy?.Name) hc.RestartPolicy = { Name: u.RestartPolicy.Name, MaximumRetryCount: u.RestartPolicy.MaximumRetryCount ?? 0 };
    // the merged HostConfig must pass create's checks (ranges, memory against swap, conflicting CPU options)
    try { validateCreateBody({ HostConfig: structuredClone(hc) }); } catch (e) { fail(e); }
    const res = updateResources(u, hc);
    if (r.State.Running && Object.keys(res).length) {
      try { await this.rt.update(r.ID, res); } catch (e) { fail(e); }
    }
    r.HostConfig = hc;
    await this.c.save(r);
    this.c.emit(r, 'update');
    return { Warnings: null };
  }
}
