/**
 * The classic builder's contracts: what the API route calls (BuildBackend lives in api/backend.ts) and what the
 * builder needs from the rest of the engine, injected by the composition root.
 */
import type { Readable } from 'node:stream';
import type { ExtractedLayer } from '../layers/types.js';

/** Runs one RUN step in a container over an image and returns its exit code and filesystem changes. */
export interface RunExecutor {
  run(opts: {
    /** Container ID (64 hex) that "Running in" names. */
    id: string;
    /** Top chain ID of the image the step runs on (null: scratch). */
    rootfsChain: string | null;
    cmd: string[];
    env: string[];
    user: string;
    workdir: string;
    /** "host" (default for builds), "none". */
    network?: string;
    /** VOLUME paths of the image: like docker's anonymous volumes, RUN's writes below them are discarded. */
    volumes?: string[];
    stdout: (b: Buffer) => void;
    stderr: (b: Buffer) => void;
    signal?: AbortSignal;
  }): Promise<{ exitCode: number; layer: ExtractedLayer | null }>;
}

export type { BuildRequest as BuildOptions } from '../../api/backend.js';
