/**
 * The classic builder's step containers, as dockerd's builder/dockerfile containerManager: every RUN (and, when
 * kept, every config-only step) is a real container of the daemon's container service, created from the current
 * stage image (visible in `ps -a`, on the network the build asks for: the default bridge unless `networkmode`
 * says otherwise, so NAT and DNS are those of `docker run`). RUN attaches before start (nothing missed), starts,
 * waits for the exit; a zero exit turns the container's RW-layer diff into a new (not yet registered) layer. The
 * builder decides whether the container is removed (--rm / --force-rm). A cancelled build kills and removes it.
 */
import type { LayerStore } from '../layers/types.js';
import type { ContainerService } from '../containers/service.js';
import type { ContainerRunner } from '../containers/lifecycle.js';
import type { RunExecutor, StepContainer } from './types.js';

export interface ContainerExecutorDeps {
  containers: ContainerService;
  runner: ContainerRunner;
  layers: LayerStore;
}

/** After the exit, how long the attachment may still deliver buffered output. */
const DRAIN_MS = 2000;

export class ContainerExecutor implements RunExecutor {
  constructor(private readonly d: ContainerExecutorDeps) {}

  async create(spec: StepContainer): Promise<string> {
    const { Hostname: _n, Domainname: _dn, ...run } = spec.config as Record<string, unknown>;
    const body: Record<string, unknown> = {
      ...run,
      Image: spec.imageId ?? '',
      Cmd: spec.cmd,
      // RUN: the image's ENTRYPOINT does not wrap the command (docker's override with [""]) and its HEALTHCHECK is
      // off (docker's withoutHealthcheck); config-only steps keep both
      Entrypoint: spec.runStep ? [] : (spec.config.Entrypoint ?? null),
      ...(spec.runStep ? { Healthcheck: { Test: ['NONE'] } } : {}),
      Env: spec.env ?? spec.config.Env ?? [],
      Volumes: spec.config.Volumes ?? null,
      HostConfig: { NetworkMode: spec.network && spec.network !== '' ? spec.network : 'default', ...(spec.extraHosts ? { ExtraHosts: spec.extraHosts } : {}) },
    };
    const { Id } = await this.d.containers.create(null, body, { noImage: spec.imageId === null });
    return Id;
  }

  async run(io: Parameters<RunExecutor['run']>[0]): ReturnType<RunExecutor['run']> {
    const { runner, layers } = this.d;
    const id = io.id;
    if (io.signal?.aborted) { await this.remove(id); throw new BuildCancelledError(); }
    // attached before start: the attachment is made between the runtime's create and start
    const attached = runner.attach(id, { stdout: io.stdout, stderr: io.stderr }, { logs: false, stream: true }).catch(() => {});
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      void runner.kill(id, 'KILL').catch(() => {});
    };
    io.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await runner.start(id);
      if (cancelled) await runner.kill(id, 'KILL').catch(() => {});
      const { StatusCode } = await runner.wait(id, 'not-running');
      await Promise.race([attached, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      if (cancelled) throw new BuildCancelledError();
      if (StatusCode !== 0) return { exitCode: StatusCode, layer: null };
      const layer = await layers.extract(await layers.diff(id));
      return { exitCode: 0, layer };
    } catch (e) {
      if (cancelled || io.signal?.aborted) {
        await this.remove(id);
        throw e instanceof BuildCancelledError ? e : new BuildCancelledError();
      }
      throw e;
    } finally {
      io.signal?.removeEventListener('abort', onAbort);
    }
  }

  async remove(id: string): Promise<void> {
    let rec;
    try { rec = this.d.containers.get(id); } catch { return; /* already gone */ }
    // force: a cancelled step's container may still be on its way down; its anonymous volumes go with it
    await this.d.containers.remove(id, { force: true, volumes: true });
    this.d.runner.notifyRemoved(rec);
  }
}

/** dockerd's errCancelled. */
export class BuildCancelledError extends Error {
  constructor() { super('build cancelled'); }
}
