/**
 * The classic builder's step containers, as dockerd's builder/dockerfile containerManager: every RUN (and, when
 * kept, every config-only step) is a real container of the daemon's container service, created from the current
 * stage image (visible in `ps -a`, on the network the build asks for: the default bridge unless `networkmode`
 * says otherwise, so NAT and DNS are those of `docker run`). RUN attaches before start (nothing missed), starts,
 * waits for the exit; a zero exit turns the container's RW-layer diff into a new (not yet registered) layer. The
 * builder decides whether the container is removed (--rm / --force-rm). A cancelled build kills and removes it.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { LayerStore } from '../layers/types.js';
import type { ContainerProcesses, ContainerRecords } from '../containers/types.js';
import type { RunExecutor, StepContainer } from './types.js';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';

export interface ContainerExecutorDeps {
  containers: ContainerRecords;
  runner: ContainerProcesses;
  layers: LayerStore;
  log?: Logger;
}

/** After the exit, how long the attachment may still deliver buffered output. */
const DRAIN_MS = 2000;

export class ContainerExecutor implements RunExecutor {
  /** Step container → its process-only variables, until the step has started. */
  private readonly processEnv = new Map<string, string[]>();
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
      HostConfig: {
        NetworkMode: spec.network && spec.network !== '' ? spec.network : 'default',
        // RUN --mount: over the root, so nothing they show lands in the step's RW layer (its diff)
        ...(spec.binds?.length ? { Mounts: spec.binds.map((b) => ({ Type: 'bind', Source: b.source, Target: b.target, ReadOnly: b.readonly })) } : {}),
        ...(spec.tmpfs && Object.keys(spec.tmpfs).length ? { Tmpfs: spec.tmpfs } : {}),
        ...(spec.extraHosts ? { ExtraHosts: spec.extraHosts } : {}),
      },
    };
    const { Id } = await this.d.containers.create(null, body, { noImage: spec.imageId === null });
    if (spec.processEnv?.length) this.processEnv.set(Id, spec.processEnv);
    return Id;
  }

  async run(io: Parameters<RunExecutor['run']>[0]): ReturnType<RunExecutor['run']> {
    const { runner, layers } = this.d;
    const id = io.id;
    const processEnv = this.processEnv.get(id) ?? [];
    this.processEnv.delete(id);
    if (io.signal?.aborted) { await this.remove(id); throw new BuildCancelledError(); }
    // attached before start: the attachment is made between the runtime's create and start
    const attached = runner.attach(id, { stdout: io.stdout, stderr: io.stderr }, { logs: false, stream: true }).catch((e) => { this.d.log?.warn('attaching to a RUN step: its output is lost', { container: id, error: e }); });
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      void runner.kill(id, 'KILL').catch(notRunning(this.d.log, id));
    };
    io.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await runner.start(id, { processEnv });
      if (cancelled) await runner.kill(id, 'KILL').catch(notRunning(this.d.log, id));
      const { StatusCode } = await runner.wait(id, 'not-running');
      await Promise.race([attached, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      if (cancelled) throw new BuildCancelledError();
      if (StatusCode !== 0) return { exitCode: StatusCode, layer: null };
      const diff = await layers.diff(id);
      const layer = await layers.extract(io.stubs?.length ? withoutStubs(diff, new Set(io.stubs)) : diff);
      return { exitCode: 0, layer };
    } catch (e) {
      if (cancelled || io.signal?.aborted) {
        await this.remove(id);
        throw e instanceof BuildCancelledError ? e : new BuildCancelledError({ cause: e });
      }
      throw e;
    } finally {
      io.signal?.removeEventListener('abort', onAbort);
    }
  }

  async remove(id: string): Promise<void> {
    this.processEnv.delete(id);
    // force: a cancelled step's container may still be on its way down; its anonymous volumes go with it
    try { await this.d.containers.remove(id, { force: true, volumes: true }); } catch (e) { if (e instanceof NotFoundError) return; /* already gone */ throw e; }
  }
}

/**
 * The step's diff without the mount points runc made for RUN --mount (an empty directory or file where the image
 * had nothing), as BuildKit removes its mount stubs: a stub is dropped unless something the step wrote lies
 * below it (then it goes out just before that). Everything else passes through unchanged, in order.
 */
export function withoutStubs(src: Readable, stubs: ReadonlySet<string>): Readable {
  const ex = tar.extract();
  const pack = tar.pack();
  const held: tar.Header[] = [];
  const norm = (n: string) => posix.normalize('/' + n).slice(1).replace(/\/+$/, '');
  const put = (h: tar.Header) => new Promise<void>((res, rej) => pack.entry(h, (e) => (e ? rej(e) : res())));
  ex.on('entry', (h, body, next) => {
    void (async () => {
      const name = norm(h.name);
      if (stubs.has(name) && (h.type === 'directory' || (h.type === 'file' && !h.size))) {
        held.push(h);
        await new Promise<void>((r) => { body.on('end', r); body.resume(); });
        return;
      }
      for (let i = 0; i < held.length;) {
        if (name.startsWith(norm(held[i]!.name) + '/')) { await put(held[i]!); held.splice(i, 1); } else i++;
      }
      await pipeline(body, pack.entry(h));
    })().then(() => next(), (e: Error) => { ex.destroy(e); });
  });
  ex.on('finish', () => pack.finalize());
  ex.on('error', (e) => pack.destroy(e));
  src.on('error', (e) => ex.destroy(e));
  src.pipe(ex);
  return pack as unknown as Readable;
}

/** dockerd's errCancelled. */
export class BuildCancelledError extends Error {
  constructor(options?: { cause?: unknown }) { super('build cancelled', options); }
}

/** Killing a cancelled step's container: one that is not running any more (ConflictError) is what was wanted. */
function notRunning(log: Logger | undefined, id: string): (e: unknown) => void {
  return (e) => { if (!(e instanceof ConflictError)) log?.warn('killing a cancelled RUN step', { container: id, error: e }); };
}
