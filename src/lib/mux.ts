/**
 * A small stream multiplexer over one byte stream (the build session: a hijacked API connection between the
 * `wharf` CLI and wharfd). Both ends run this module. Each logical stream is a Duplex; frames are
 *
 *   type (u8) | stream id (u32 BE) | payload length (u32 BE) | payload
 *
 * with the types OPEN (payload: a label naming what the opener wants, e.g. `ssh:default`), DATA, END (the sender
 * writes no more: a half-close) and RESET (the stream is aborted, or an OPEN refused; payload: the reason).
 * The end that made the connection (the client) numbers its streams odd, the other even, so both may open.
 * Flow control is the carrier's own: a stream whose reader falls behind pauses the whole carrier until it reads
 * again (fine for the few small streams of an SSH agent; not meant for bulk transfers side by side).
 */
import { Duplex } from 'node:stream';

const OPEN = 1;
const DATA = 2;
const END = 3;
const RESET = 4;
const HEADER = 9;
/** Largest payload sent in one DATA frame; a peer's frame above MAX_FRAME ends the session (protocol error). */
const CHUNK = 64 * 1024;
const MAX_FRAME = 1024 * 1024;

/** A stream ended by the peer's RESET (or by the session's end): `message` is the peer's reason. */
export class MuxResetError extends Error {}

export interface MuxOptions {
  /** True on the end that made the connection (its streams are odd). */
  client: boolean;
  /** Bytes of the carrier already read (e.g. after an HTTP upgrade's response head). */
  head?: Buffer;
  /** A stream the peer opened, with its label. Without a handler every OPEN is refused. */
  onStream?: (stream: MuxStream, label: string) => void;
}

export class MuxStream extends Duplex {
  /** Set once a RESET was sent or received, or the session ended: nothing more goes out for this stream. */
  reset = false;
  private sentEnd = false;
  /** @internal the peer sent END */
  gotEnd = false;

  constructor(private readonly mux: Mux, readonly id: number) {
    super({ allowHalfOpen: true });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.reset) { cb(new MuxResetError('stream closed')); return; }
    this.mux.send(DATA, this.id, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.reset) { cb(); return; }
    this.sentEnd = true;
    this.mux.send(END, this.id, Buffer.alloc(0), cb);
    this.settle();
  }

  override _read(): void {
    this.mux.readable(this);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.reset && !(this.sentEnd && this.gotEnd)) {
      this.reset = true;
      this.mux.send(RESET, this.id, Buffer.from(err?.message ?? 'stream closed'));
    }
    this.mux.forget(this);
    cb(err);
  }

  /** @internal the peer's END */
  remoteEnd(): void {
    this.gotEnd = true;
    this.push(null);
    this.settle();
  }

  /** @internal the peer's RESET, or the session's end */
  remoteReset(reason: string): void {
    this.reset = true;
    // (on the next tick, so that whoever just opened the stream can listen; an error only for a reader listening
    // for one: a stream nobody watches just closes)
    process.nextTick(() => this.destroy(this.listenerCount('error') ? new MuxResetError(reason) : undefined));
  }

  private settle(): void {
    if (this.sentEnd && this.gotEnd) this.mux.forget(this);
  }
}

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  private buf: Buffer = Buffer.alloc(0);
  /** Streams whose reader asked to wait (their push returned false): the carrier is paused while any does. */
  private readonly stalled = new Set<MuxStream>();
  private closedWith: Error | null | undefined;
  private readonly closeWaiters: ((err: Error | null) => void)[] = [];

  constructor(private readonly carrier: Duplex, private readonly opts: MuxOptions) {
    this.nextId = opts.client ? 1 : 2;
    carrier.on('data', (d: Buffer) => this.receive(d));
    carrier.on('end', () => this.close());
    carrier.on('close', () => this.close());
    carrier.on('error', (e) => this.close(e));
    if (opts.head?.length) queueMicrotask(() => this.receive(opts.head!));
  }

  /** Whether the session has ended (the carrier closed, or close() was called). */
  get closed(): boolean { return this.closedWith !== undefined; }

  /** Resolves when the session ends (with the carrier's error, if any). */
  done(): Promise<Error | null> {
    if (this.closedWith !== undefined) return Promise.resolve(this.closedWith);
    return new Promise((r) => this.closeWaiters.push(r));
  }

  /** Opens a stream to the peer; the peer's handler gets `label`. */
  open(label: string): MuxStream {
    if (this.closed) throw new MuxResetError('the session is closed');
    const id = this.nextId;
    this.nextId += 2;
    const s = new MuxStream(this, id);
    this.streams.set(id, s);
    this.send(OPEN, id, Buffer.from(label));
    return s;
  }

  /** Ends the session: every stream is reset with `err`'s message (or "session closed"), the carrier ended. */
  close(err?: Error | null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err ?? null;
    for (const s of [...this.streams.values()]) s.remoteReset(err ? `session closed: ${err.message}` : 'session closed');
    this.streams.clear();
    if (!this.carrier.destroyed) this.carrier.end();
    for (const w of this.closeWaiters.splice(0)) w(this.closedWith);
  }

  /** @internal */
  send(type: number, id: number, payload: Buffer, cb?: (err?: Error | null) => void): void {
    if (this.closed || this.carrier.destroyed || this.carrier.writableEnded) { cb?.(new MuxResetError('the session is closed')); return; }
    let ok = true;
    let off = 0;
    do {
      const part = payload.subarray(off, off + CHUNK);
      const h = Buffer.allocUnsafe(HEADER);
      h.writeUInt8(type, 0);
      h.writeUInt32BE(id, 1);
      h.writeUInt32BE(part.length, 5);
      ok = this.carrier.write(Buffer.concat([h, part])) && ok;
      off += part.length;
    } while (off < payload.length);
    if (!cb) return;
    if (ok) cb();
    else this.carrier.once('drain', () => cb());
  }

  /** @internal a stream's reader wants more */
  readable(s: MuxStream): void {
    if (this.stalled.delete(s) && this.stalled.size === 0 && !this.closed) this.carrier.resume();
  }

  /** @internal */
  forget(s: MuxStream): void {
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
    this.readable(s);
  }

  private receive(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= HEADER && !this.closed) {
      const type = this.buf.readUInt8(0);
      const id = this.buf.readUInt32BE(1);
      const len = this.buf.readUInt32BE(5);
      if (len > MAX_FRAME) { this.protocolError(`frame of ${len} bytes`); return; }
      if (this.buf.length < HEADER + len) return;
      const payload = this.buf.subarray(HEADER, HEADER + len);
      this.buf = this.buf.subarray(HEADER + len);
      this.frame(type, id, payload);
    }
  }

  private frame(type: number, id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    switch (type) {
      case OPEN: {
        const theirs = this.opts.client ? id % 2 === 0 : id % 2 === 1;
        if (!theirs || id === 0 || s) { this.protocolError(`OPEN of stream ${id}`); return; }
        const label = payload.toString('utf8');
        if (!this.opts.onStream) { this.send(RESET, id, Buffer.from(`nothing is served here (${label})`)); return; }
        const ns = new MuxStream(this, id);
        this.streams.set(id, ns);
        this.opts.onStream(ns, label);
        return;
      }
      case DATA:
        // (a stream this end already reset may still get the peer's frames in flight: dropped)
        if (s && !s.reset && !s.gotEnd && !s.push(Buffer.from(payload))) {
          this.stalled.add(s);
          this.carrier.pause();
        }
        return;
      case END:
        s?.remoteEnd();
        return;
      case RESET:
        s?.remoteReset(payload.toString('utf8') || 'reset by peer');
        return;
      default:
        this.protocolError(`frame type ${type}`);
    }
  }

  private protocolError(what: string): void {
    const err = new Error(`session protocol error: unexpected ${what}`);
    this.close(err);
    this.carrier.destroy(err);
  }
}
