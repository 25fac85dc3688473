/**
 * Healthchecks (Config.Healthcheck, from the image's HEALTHCHECK or `--health-*`): while a container runs, its
 * test runs as an exec every Interval; the results make State.Health (Status starting → healthy/unhealthy,
 * FailingStreak, the last 5 results) and a `health_status: <status>` event at each change — dockerd's
 * daemon/health.go rules: first probe one interval after the start, failures inside StartPeriod do not count
 * while starting, Retries failures in a row make it unhealthy, one success healthy; output kept to 4096 bytes; a
 * probe over Timeout is killed and fails with exit code -1.
 */
import { goDuration, rfc3339Nano } from '../../lib/go.js';
import type { ExecService } from './exec.js';
import type { ContainerRecord, ContainerService, HealthState } from './service.js';

const DEFAULT_INTERVAL_NS = 30e9;
const DEFAULT_TIMEOUT_NS = 30e9;
const DEFAULT_RETRIES = 3;
const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

export interface HealthConfig { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number }

/** The probe's command, or null when the container has no (enabled) healthcheck. */
export function probeCommand(hc: HealthConfig | undefined, shell: string[] | undefined): string[] | null {
  const t = hc?.Test ?? [];
  if (t.length === 0 || t[0] === 'NONE') return null;
  if (t[0] === 'CMD') return t.length > 1 ? t.slice(1) : null;
  if (t[0] === 'CMD-SHELL') return [...(shell?.length ? shell : ['/bin/sh', '-c']), t.slice(1).join(' ')];
  return null;
}

export class HealthMonitor {
  private readonly timers = new Map<string, { stop: () => void }>();

  constructor(private readonly c: ContainerService, private readonly exec: ExecService) {}

  /** At each start: Health back to starting (its log kept), probes scheduled. No-op without a healthcheck. */
  start(r: ContainerRecord): void {
    this.stop(r.ID);
    const cfg = r.Config.Healthcheck as HealthConfig | undefined;
    const cmd = probeCommand(cfg, r.Config.Shell as string[] | undefined);
    if (!cmd) return;
    r.State.Health = { Status: 'starting', FailingStreak: 0, Log: r.State.Health?.Log ?? [] };
    const interval = (cfg!.Interval || DEFAULT_INTERVAL_NS) / 1e6;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: AbortController | undefined;
    const loop = () => {
      timer = setTimeout(async () => {
        if (stopped) return;
        running = new AbortController();
        await this.probe(r, cmd, cfg!, running.signal).catch(() => {});
        running = undefined;
        if (!stopped) loop();
      }, interval);
      timer.unref();
    };
    this.timers.set(r.ID, { stop: () => { stopped = true; clearTimeout(timer); running?.abort(); } });
    loop();
  }

  /** At exit (or removal): no more probes; State.Health stays as the last probe left it, as dockerd's. */
  stop(id: string): void {
    this.timers.get(id)?.stop();
    this.timers.delete(id);
  }

  private async probe(r: ContainerRecord, cmd: string[], cfg: HealthConfig, signal: AbortSignal): Promise<void> {
    if (!r.State.Running || r.State.Paused) return;
    const start = new Date();
    const timeoutNs = cfg.Timeout || DEFAULT_TIMEOUT_NS;
    let out = Buffer.alloc(0);
    const keep = (b: Buffer) => { if (out.length < MAX_OUTPUT) out = Buffer.concat([out, b]).subarray(0, MAX_OUTPUT); };
    let exitCode: number;
    let output: string;
    const timedOut = new AbortController();
    const timer = setTimeout(() => timedOut.abort(), timeoutNs / 1e6);
    const onStop = () => timedOut.abort();
    signal.addEventListener('abort', onStop, { once: true });
    let execId: string | undefined;
    try {
      execId = this.exec.create(r.ID, { Cmd: cmd, AttachStdout: true, AttachStderr: true }).Id;
      exitCode = await this.exec.start(execId, { stdout: keep, stderr: keep }, timedOut.signal);
      output = out.toString('utf8');
      if (timedOut.signal.aborted) {
        if (signal.aborted) return; // the container stopped meanwhile: no result
        exitCode = -1;
        output = `Health check exceeded timeout (${goDuration(timeoutNs)})`;
      }
    } catch (e) {
      if (signal.aborted || !r.State.Running) return;
      exitCode = -1;
      output = (e as Error).message;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onStop);
      if (execId) this.exec.forget(execId);
    }
    if (!r.State.Running) return;
    this.record(r, cfg, { Start: rfc3339Nano(start), End: rfc3339Nano(new Date()), ExitCode: exitCode, Output: output });
    await this.c.save(r).catch(() => {});
  }

  /** dockerd's handleProbeResult. */
  private record(r: ContainerRecord, cfg: HealthConfig, result: HealthState['Log'][number]): void {
    const h: HealthState = r.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const old = h.Status;
    h.Log = [...h.Log, result].slice(-MAX_LOG_ENTRIES);
    if (result.ExitCode === 0) {
      h.FailingStreak = 0;
      h.Status = 'healthy';
    } else {
      const inStartPeriod = h.Status === 'starting' && cfg.StartPeriod
        && Date.now() - Date.parse(r.State.StartedAt) < cfg.StartPeriod / 1e6;
      if (!inStartPeriod) {
        h.FailingStreak++;
        if (h.FailingStreak >= (cfg.Retries || DEFAULT_RETRIES)) h.Status = 'unhealthy';
      }
    }
    r.State.Health = h;
    if (h.Status !== old) this.c.emit(r, `health_status: ${h.Status}`);
  }
}
