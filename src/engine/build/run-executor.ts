/**
 * The first real RunExecutor: a RUN step as a short-lived container driven by runc directly (no conmon: a build
 * step never outlives the build). RW layer over the image's top chain → overlay mount → config.json from
 * runtime/spec.ts's buildSpec (host network for builds, so `apt-get` works; mount/pid/ipc/uts namespaces; docker's
 * default mounts; resolv.conf/hosts from the host) → `runc run --bundle` in the foreground with piped stdio →
 * the RW layer's diff extracted as a new (not yet registered) layer → RW layer removed.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import type { LayerStore } from '../layers/types.js';
import { buildSpec, writeBundle } from '../runtime/spec.js';
import type { RunExecutor } from './types.js';

const RUNC_FAILED = /level=error msg="runc run failed: ((?:[^"\\]|\\.)*)"/;

export interface RuncExecutorOptions {
  layers: LayerStore;
  /** Directory for bundles and runc state (under the exec root). */
  stateDir: string;
  runtime?: string;
}

export class RuncExecutor implements RunExecutor {
  private readonly runtime: string;
  constructor(private readonly o: RuncExecutorOptions) {
    this.runtime = o.runtime ?? 'runc';
  }

  async run(opts: Parameters<RunExecutor['run']>[0]): ReturnType<RunExecutor['run']> {
    const { layers } = this.o;
    const id = opts.id;
    const bundle = join(this.o.stateDir, 'bundles', id);
    const runcRoot = join(this.o.stateDir, 'runc');
    await mkdir(runcRoot, { recursive: true });
    await layers.createRW(id, opts.rootfsChain as Digest | null);
    let mounted = false;
    try {
      const rootfs = await layers.mount(id);
      mounted = true;
      const net = opts.network === 'none' ? { mode: 'none' as const } : { mode: 'host' as const };
      // anonymous volumes: a copy of the image's content, bind-mounted over the path, thrown away afterwards
      const binds: { source: string; destination: string }[] = [];
      for (const [i, v] of (opts.volumes ?? []).entries()) {
        const src = join(bundle, 'volumes', String(i));
        await mkdir(src, { recursive: true });
        const inImage = join(rootfs, v);
        await cp(inImage, src, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true }).catch(() => {});
        await mkdir(inImage, { recursive: true }).catch(() => {});
        binds.push({ source: src, destination: v });
      }
      const spec = await buildSpec({
        id, rootfs, args: opts.cmd, env: opts.env, cwd: opts.workdir || '/', user: opts.user,
        containerDir: join(bundle, 'etc'), network: net, hostname: id.slice(0, 12), cgroupParent: '/wharf-build',
        binds,
      });
      await writeBundle(bundle, spec);
      let startError: string | null = null;
      let started = false;
      const exitCode = await new Promise<number>((resolve, reject) => {
        const child = spawn(this.runtime, ['--root', runcRoot, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
        const onAbort = () => { spawn(this.runtime, ['--root', runcRoot, 'kill', id, 'KILL'], { stdio: 'ignore' }); };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        child.stdout!.on('data', (b: Buffer) => { started = true; opts.stdout(b); });
        child.stderr!.on('data', (b: Buffer) => {
          // runc's own failure to start the process (a logrus line) is an error of the step, not its output
          const m = RUNC_FAILED.exec(b.toString('utf8'));
          if (m && !started) { startError = m[1]!.replace(/\\(.)/g, '$1'); return; }
          started = true;
          opts.stderr(b);
        });
        child.on('error', (e) => reject(new InvalidParameterError(`${this.runtime}: ${e.message}`)));
        child.on('close', (code, sig) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(code ?? (sig ? 128 + 9 : 1));
        });
      });
      await new Promise<void>((r) => spawn(this.runtime, ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore' }).on('close', () => r()).on('error', () => r()));
      if (startError !== null) {
        throw new InvalidParameterError(`failed to create shim task: OCI runtime create failed: runc create failed: ${startError}: unknown`);
      }
      if (exitCode !== 0) return { exitCode, layer: null };
      await layers.unmount(id);
      mounted = false;
      const diff = await layers.diff(id);
      const layer = await layers.extract(diff);
      return { exitCode, layer };
    } finally {
      if (mounted) await layers.unmount(id).catch(() => {});
      await layers.removeRW(id).catch(() => {});
      await rm(bundle, { recursive: true, force: true }).catch(() => {});
    }
  }
}
