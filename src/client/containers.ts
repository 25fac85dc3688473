/**
 * Container endpoints of the Engine API for the CLI: create/start/wait/attach/logs/exec/resize and the
 * management calls (list, stop, kill, rm, …), plus the stdcopy demultiplexer of non-tty streams.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import type { EngineClient, Query } from './client.js';
export { parseDetachKeys } from '../lib/detachkeys.js';

import type {
  ContainerCommitResponse, ContainerConfig, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerPruneReport,
  ContainerSummary, ContainerWaitResponse,
} from '../wire/index.js';

export type { ContainerSummary } from '../wire/index.js';
export type CreateResponse = ContainerCreateResponse;
export type WaitResponse = ContainerWaitResponse;
/** GET /containers/{id}/json. */
export type ContainerJSON = ContainerInspect;

function p(id: string): string {
  return encodeURIComponent(id);
}

export function containerCreate(c: EngineClient, body: ContainerCreateRequest, opts: { name?: string; platform?: string } = {}): Promise<CreateResponse> {
  return c.json('POST', '/containers/create', { query: { name: opts.name, platform: opts.platform }, body });
}

export function containerStart(c: EngineClient, id: string, opts: { detachKeys?: string } = {}): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/start`, { query: { detachKeys: opts.detachKeys } });
}

export function containerWait(c: EngineClient, id: string, condition: 'not-running' | 'next-exit' | 'removed' = 'not-running'): Promise<WaitResponse> {
  return c.json('POST', `/containers/${p(id)}/wait`, { query: { condition } });
}

export function containerResize(c: EngineClient, id: string, h: number, w: number): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/resize`, { query: { h, w } });
}

export function execResize(c: EngineClient, id: string, h: number, w: number): Promise<void> {
  return c.empty('POST', `/exec/${p(id)}/resize`, { query: { h, w } });
}

export function containerInspect(c: EngineClient, id: string, size = false): Promise<ContainerJSON> {
  return c.json('GET', `/containers/${p(id)}/json`, { query: { size } });
}

export function containerAttach(c: EngineClient, id: string, q: { stdin?: boolean; stdout?: boolean; stderr?: boolean; stream?: boolean; logs?: boolean; detachKeys?: string }): Promise<{ socket: Socket; head: Buffer }> {
  return c.hijack(`/containers/${p(id)}/attach`, { query: q as Query });
}

export function containerLogs(c: EngineClient, id: string, q: Query): Promise<IncomingMessage> {
  return c.request('GET', `/containers/${p(id)}/logs`, { query: q });
}

export function execCreate(c: EngineClient, id: string, body: Record<string, unknown>): Promise<{ Id: string }> {
  return c.json('POST', `/containers/${p(id)}/exec`, { body });
}

export function execStartDetached(c: EngineClient, execId: string, tty: boolean): Promise<void> {
  return c.empty('POST', `/exec/${p(execId)}/start`, { body: { Detach: true, Tty: tty } });
}

export function execStartAttached(c: EngineClient, execId: string, tty: boolean): Promise<{ socket: Socket; head: Buffer }> {
  return c.hijack(`/exec/${p(execId)}/start`, { body: { Detach: false, Tty: tty } });
}

export function execInspect(c: EngineClient, execId: string): Promise<{ ExitCode: number | null; Running: boolean; Pid: number }> {
  return c.json('GET', `/exec/${p(execId)}/json`);
}

export function containerList(c: EngineClient, q: { all?: boolean; limit?: number; size?: boolean; filters?: string }): Promise<ContainerSummary[]> {
  return c.json('GET', '/containers/json', { query: q as Query });
}

export function containerStop(c: EngineClient, id: string, t?: number): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/stop`, { query: { t } });
}

export function containerRestart(c: EngineClient, id: string, t?: number): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/restart`, { query: { t } });
}

export function containerKill(c: EngineClient, id: string, signal?: string): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/kill`, { query: { signal } });
}

export function containerPause(c: EngineClient, id: string): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/pause`);
}

export function containerUnpause(c: EngineClient, id: string): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/unpause`);
}

export function containerRemove(c: EngineClient, id: string, q: { force?: boolean; v?: boolean; link?: boolean }): Promise<void> {
  return c.empty('DELETE', `/containers/${p(id)}`, { query: q });
}

export function containerRename(c: EngineClient, id: string, name: string): Promise<void> {
  return c.empty('POST', `/containers/${p(id)}/rename`, { query: { name } });
}

export function containerTop(c: EngineClient, id: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }> {
  return c.json('GET', `/containers/${p(id)}/top`, { query: { ps_args: psArgs } });
}

export function containerChanges(c: EngineClient, id: string): Promise<{ Path: string; Kind: number }[] | null> {
  return c.json('GET', `/containers/${p(id)}/changes`);
}

export function containerCommit(c: EngineClient, q: Query, config?: ContainerConfig): Promise<ContainerCommitResponse> {
  return c.json('POST', '/commit', { query: q, ...(config ? { body: config } : {}) });
}

export function containerPrune(c: EngineClient, filters: string): Promise<ContainerPruneReport> {
  return c.json('POST', '/containers/prune', { query: { filters } });
}

/**
 * Splits docker's multiplexed stream (8-byte headers: stream type, 3 zero bytes, big-endian length) into
 * stdout and stderr. A stream type of 0 (stdin) goes to stdout, as docker's stdcopy does.
 */
export class StdDemux extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly out: Writable, private readonly err: Writable) {
    super();
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const waits: Promise<void>[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      const kind = this.buf[0];
      const payload = this.buf.subarray(8, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      const target = kind === 2 ? this.err : this.out;
      if (!target.write(payload)) waits.push(new Promise((r) => target.once('drain', () => r())));
    }
    if (waits.length === 0) cb();
    else void Promise.all(waits).then(() => cb());
  }
}
