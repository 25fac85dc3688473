/**
 * The containers module's door for other engine modules: what the builder's step containers (dockerd's
 * containerManager: every RUN a real container) do with containers. The API's calls go through api/backend.ts.
 */
import type { Readable } from 'node:stream';
import type { ContainerCreateRequest, ContainerCreateResponse } from '../../wire/index.js';

/** Where an attachment's output goes, and where its stdin comes from. */
export interface AttachStreams {
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
  /** Where stdin comes from (attach with stdin=1). */
  stdin?: Readable;
}

/** Container records: made and removed (the composition root's `remove` also ends the lifecycle's waiters). */
export interface ContainerRecords {
  /** POST /containers/create; `noImage`: a container without an image (a `FROM scratch` stage). */
  create(name: string | null, body: ContainerCreateRequest, opts?: { noImage?: boolean }): Promise<ContainerCreateResponse>;
  /** DELETE /containers/{id}: a container that is not there is a NotFoundError. */
  remove(ref: string, opts: { force: boolean; volumes?: boolean }): Promise<void>;
}

/** A container's processes (`ContainerRunner` implements it). */
export interface ContainerProcesses {
  /** Attached before start, nothing is missed; resolves when the output ends. */
  attach(ref: string, streams: AttachStreams, opts: { logs: boolean; stream: boolean }): Promise<void>;
  /** `processEnv`: variables given to this start's process only, never recorded (build secrets). */
  start(ref: string, opts?: { processEnv?: readonly string[] }): Promise<void>;
  kill(ref: string, signal: string): Promise<void>;
  /** `not-running`, `next-exit` or `removed`. */
  wait(ref: string, condition: string): Promise<{ StatusCode: number; Error: { Message: string } | null }>;
}
