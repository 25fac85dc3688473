/**
 * The classic builder's contracts: what the API route calls (BuildBackend lives in api/backend.ts, its request shape in wire/build.ts) and what the
 * builder needs from the rest of the engine, injected by the composition root.
 */
import type { Readable } from 'node:stream';
import type { ContainerConfig } from '../images/types.js';
import type { ExtractedLayer } from '../layers/types.js';

/** A build step's container: the stage's run config with the step's command. */
export interface StepContainer {
  /** The image the step runs on (null: FROM scratch, an empty root filesystem). */
  imageId: string | null;
  /** The stage's run config (User, WorkingDir, Env, Volumes, Labels, …). */
  config: ContainerConfig;
  cmd: string[];
  /** Env of the container when it differs from config.Env (RUN: plus the build args that reach it). */
  env?: string[];
  /**
   * Variables for the step's process only (RUN --mount=type=secret,env=, SSH_AUTH_SOCK): given at start, never
   * part of the container's record, so a kept step container (--rm=false) does not show them.
   */
  processEnv?: string[];
  /** A RUN step: the image's ENTRYPOINT does not wrap the command and no healthcheck runs (docker's overrides). */
  runStep?: boolean;
  /** HostConfig.NetworkMode: "default" (the bridge) when absent, "bridge", "host", "none". */
  network?: string;
  /** RUN --mount binds (caches, context/stage binds, secret files): host path → target, over the root. */
  binds?: { source: string; target: string; readonly: boolean }[];
  /** RUN --mount=type=tmpfs: target → mount options. */
  tmpfs?: Record<string, string>;
  /** HostConfig.ExtraHosts (docker build --add-host). */
  extraHosts?: string[];
}

/**
 * Runs build steps in containers: create (the ID "Running in" names), run (RUN only), remove (the builder's
 * --rm / --force-rm decision). The daemon's executor makes real containers (run-executor.ts); an executor without
 * create/remove (a test double) gets a made-up ID and only runs. The image's VOLUMEs are anonymous volumes, so
 * RUN's writes below them never reach the layer.
 */
export interface RunExecutor {
  create?(spec: StepContainer): Promise<string>;
  /**
   * Runs the step's container with its output streamed and waits for its exit; a zero exit gives its filesystem
   * changes. An aborted signal kills and removes the container and rejects.
   */
  run(opts: {
    /** The container (from create) that "Running in" names. */
    id: string;
    /** The step as create() got it (what an executor without create runs). */
    cmd: string[];
    env: string[];
    stdout: (b: Buffer) => void;
    stderr: (b: Buffer) => void;
    signal?: AbortSignal;
    /** RUN --mount targets the image lacked (root-relative): runc's mount points, left out of the layer. */
    stubs?: string[];
  }): Promise<{ exitCode: number; layer: ExtractedLayer | null }>;
  /** Removes a step's container with its anonymous volumes (nothing when it is gone). */
  remove?(id: string): Promise<void>;
}

export type { BuildRequest as BuildOptions } from '../../wire/index.js';
