/**
 * Tar-split: keeping a layer's tar reproducible byte for byte (what docker's tar-split does for dockerd).
 *
 * A layer's DiffID is the sha256 of its uncompressed tar, and push/save must send exactly those bytes again.
 * Regenerating a tar from the extracted files cannot reproduce arbitrary producers' choices (entry order,
 * uname/gname, PAX records, padding, the archive's trailing record blocks). So while a layer is extracted,
 * `TarSplitRecorder` watches the raw tar bytes and writes a sidecar: every byte that is not the content of
 * a regular file (headers, extension records, padding, the end-of-archive blocks) verbatim, and for each
 * regular file's content only its path and size. `tarSplitStream` rebuilds the original tar from the sidecar
 * and the files on disk.
 *
 * The recorder only needs the block structure (size field, typeflag, name, ustar prefix, GNU long names, PAX
 * path/size): entries it does not understand keep their payload as raw bytes, which is always correct.
 *
 * Sidecar format (gzip-compressed): a sequence of records,
 *   'R' u32be length, bytes                       — raw tar bytes
 *   'F' f64be size, u16be path length, path utf8  — the content of the regular file at path (relative, clean)
 */
import { constants as fsc, createReadStream, createWriteStream } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip, constants as zc } from 'node:zlib';
import { finished } from 'node:stream/promises';
import { SystemError } from '../../lib/errors.js';

const BLOCK = 512;
/** Raw runs are flushed to the sidecar in records of at most this many bytes. */
const RAW_FLUSH = 256 * 1024;

function parseNumeric(b: Buffer): number {
  if (b[0]! & 0x80) {
    // base-256 (GNU): big-endian two's complement, first byte's top bit is the marker
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = b.toString('latin1').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function cstr(b: Buffer): string {
  const i = b.indexOf(0);
  return (i < 0 ? b : b.subarray(0, i)).toString('utf8');
}

function cleanPath(name: string): string | null {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') { if (out.length === 0) return null; out.pop(); } else out.push(c);
  }
  return out.length === 0 ? null : out.join('/');
}

/** PAX records "len key=value\n" → map. */
function parsePax(buf: Buffer): Map<string, string> {
  const m = new Map<string, string>();
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(buf.toString('latin1', i, sp), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > buf.length) break;
    const rec = buf.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) m.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return m;
}

type State =
  | { kind: 'header' }
  /** extension payload collected (PAX x/g, GNU L/K), then its padding */
  | { kind: 'ext'; type: string; left: number; pad: number; chunks: Buffer[] }
  /** regular file content (not recorded), then padding (recorded raw) */
  | { kind: 'file'; left: number; pad: number }
  /** payload of an entry kept raw */
  | { kind: 'raw'; left: number };

/**
 * A pass-through Transform over an uncompressed tar that writes the tar-split sidecar to `path`.
 * Call `finish()` after the stream ended (and the consumer is done) to flush and close the sidecar; the
 * result says whether the sidecar is usable (false when a path got content twice, or the tar was cut short).
 */
export class TarSplitRecorder extends Transform {
  private readonly gz = createGzip({ level: zc.Z_BEST_SPEED });
  private readonly out;
  private state: State = { kind: 'header' };
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private raw: Buffer[] = [];
  private rawLen = 0;
  private longName: string | null = null;
  private pax = new Map<string, string>();
  private globalPax = new Map<string, string>();
  private seen = new Set<string>();
  private usable = true;

  constructor(readonly path: string) {
    super();
    this.out = createWriteStream(path);
    this.gz.pipe(this.out);
    this.gz.on('error', () => { this.usable = false; });
    this.out.on('error', () => { this.usable = false; });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch {
      this.usable = false;
    }
    cb(null, chunk);
  }

  private addRaw(b: Buffer): void {
    if (b.length === 0) return;
    this.raw.push(Buffer.from(b));
    this.rawLen += b.length;
    if (this.rawLen >= RAW_FLUSH) this.flushRaw();
  }

  private flushRaw(): void {
    if (this.rawLen === 0) return;
    const head = Buffer.alloc(5);
    head[0] = 0x52; // 'R'
    head.writeUInt32BE(this.rawLen, 1);
    this.gz.write(head);
    for (const b of this.raw) this.gz.write(b);
    this.raw = [];
    this.rawLen = 0;
  }

  private addFile(path: string, size: number): void {
    this.flushRaw();
    const p = Buffer.from(path, 'utf8');
    const head = Buffer.alloc(11);
    head[0] = 0x46; // 'F'
    head.writeDoubleBE(size, 1);
    head.writeUInt16BE(p.length, 9);
    this.gz.write(head);
    this.gz.write(p);
  }

  private scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const s = this.state;
      if (s.kind === 'header') {
        const n = Math.min(BLOCK - this.hdrFill, chunk.length - i);
        chunk.copy(this.hdr, this.hdrFill, i, i + n);
        this.hdrFill += n;
        i += n;
        if (this.hdrFill === BLOCK) {
          this.hdrFill = 0;
          this.addRaw(this.hdr);
          this.onHeader(this.hdr);
        }
      } else if (s.kind === 'ext') {
        if (s.left > 0) {
          const n = Math.min(s.left, chunk.length - i);
          const part = chunk.subarray(i, i + n);
          s.chunks.push(Buffer.from(part));
          this.addRaw(part);
          s.left -= n;
          i += n;
          if (s.left === 0) this.onExt(s.type, Buffer.concat(s.chunks));
        } else {
          const n = Math.min(s.pad, chunk.length - i);
          this.addRaw(chunk.subarray(i, i + n));
          s.pad -= n;
          i += n;
        }
        if (s.left === 0 && s.pad === 0) this.state = { kind: 'header' };
      } else if (s.kind === 'file') {
        if (s.left > 0) {
          const n = Math.min(s.left, chunk.length - i);
          s.left -= n;
          i += n;
        } else {
          const n = Math.min(s.pad, chunk.length - i);
          this.addRaw(chunk.subarray(i, i + n));
          s.pad -= n;
          i += n;
        }
        if (s.left === 0 && s.pad === 0) this.state = { kind: 'header' };
      } else {
        const n = Math.min(s.left, chunk.length - i);
        this.addRaw(chunk.subarray(i, i + n));
        s.left -= n;
        i += n;
        if (s.left === 0) this.state = { kind: 'header' };
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) return; // end-of-archive / padding blocks: raw
    const type = String.fromCharCode(h[156]!);
    let size = parseNumeric(h.subarray(124, 136));
    const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size === 0) return;
      this.state = { kind: 'ext', type, left: size, pad: padded(size) - size, chunks: [] };
      return;
    }
    // the name this entry has, after extensions
    let name = cstr(h.subarray(0, 100));
    const magic = h.toString('latin1', 257, 263);
    if (magic === 'ustar\0') {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    if (this.longName !== null) name = this.longName;
    const paxPath = this.pax.get('path') ?? this.globalPax.get('path');
    if (paxPath !== undefined) name = paxPath;
    const paxSize = this.pax.get('size') ?? this.globalPax.get('size');
    if (paxSize !== undefined && /^\d+$/.test(paxSize)) size = Number(paxSize);
    this.longName = null;
    this.pax = new Map();
    if (size === 0) return;
    const regular = type === '0' || type === '\0' || type === '7';
    const path = regular ? cleanPath(name) : null;
    if (path === null || name.endsWith('/')) {
      this.state = { kind: 'raw', left: padded(size) };
      return;
    }
    if (this.seen.has(path)) this.usable = false; // the first content was overwritten on disk
    this.seen.add(path);
    this.addFile(path, size);
    this.state = { kind: 'file', left: size, pad: padded(size) - size };
  }

  private onExt(type: string, payload: Buffer): void {
    if (type === 'L') this.longName = cstr(payload);
    else if (type === 'x') this.pax = parsePax(payload);
    else if (type === 'g') for (const [k, v] of parsePax(payload)) this.globalPax.set(k, v);
  }

  override _flush(cb: TransformCallback): void {
    if (this.state.kind !== 'header' || this.hdrFill !== 0) {
      // a partial trailing block or a cut payload: keep the tail raw only if it is a partial block
      if (this.hdrFill > 0) this.addRaw(this.hdr.subarray(0, this.hdrFill));
      if (this.state.kind === 'file' && this.state.left > 0) this.usable = false;
    }
    cb();
  }

  /** Flushes and closes the sidecar. Returns whether it can reproduce the tar. */
  async finish(): Promise<boolean> {
    this.flushRaw();
    this.gz.end();
    try {
      await finished(this.out);
    } catch {
      return false;
    }
    return this.usable;
  }

  /** Closes the sidecar without caring about its content (the extraction failed). */
  abort(): void {
    this.gz.destroy();
    this.out.destroy();
  }
}

/**
 * The original tar of a layer, from its sidecar and the layer's files under `root`. Errors (a file missing
 * or of another size) surface as stream errors; callers verify the DiffID anyway.
 */
export function tarSplitStream(sidecar: string, root: string): Readable {
  // A file is read only where it lies inside the layer: its directory is resolved (symlinks included) and
  // must stay under the root, and the file itself is opened without following a symlink.
  const dirs = new Map<string, string>();
  let realRoot: string | undefined;
  const safePath = async (rel: string): Promise<string> => {
    realRoot ??= await realpath(root);
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    let real = dirs.get(dir);
    if (real === undefined) {
      try { real = dir === '' ? realRoot : await realpath(join(realRoot, dir)); } catch (e) {
        throw new SystemError(`layer file ${rel} is missing: ${(e as Error).message}`, { cause: e });
      }
      if (real !== realRoot && !real.startsWith(realRoot + '/')) throw new SystemError(`layer file ${rel} resolves outside the layer`);
      dirs.set(dir, real);
    }
    return join(real, rel.slice(slash + 1));
  };
  async function* gen(): AsyncGenerator<Buffer> {
    const src = createReadStream(sidecar).pipe(createGunzip());
    let buf: Buffer = Buffer.alloc(0);
    const need = async function* (it: AsyncIterator<Buffer>, n: number): AsyncGenerator<never, boolean> {
      while (buf.length < n) {
        const r = await it.next();
        if (r.done) return false;
        buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
      }
      return true;
    };
    const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      if (!(yield* need(it, 1))) return;
      const kind = buf[0];
      if (kind === 0x52) {
        if (!(yield* need(it, 5))) throw new SystemError('tar-split sidecar is truncated');
        let len = buf.readUInt32BE(1);
        buf = buf.subarray(5);
        while (len > 0) {
          if (buf.length === 0 && !(yield* need(it, 1))) throw new SystemError('tar-split sidecar is truncated');
          const n = Math.min(len, buf.length);
          yield buf.subarray(0, n);
          buf = buf.subarray(n);
          len -= n;
        }
      } else if (kind === 0x46) {
        if (!(yield* need(it, 11))) throw new SystemError('tar-split sidecar is truncated');
        const size = buf.readDoubleBE(1);
        const plen = buf.readUInt16BE(9);
        if (!(yield* need(it, 11 + plen))) throw new SystemError('tar-split sidecar is truncated');
        const rel = buf.toString('utf8', 11, 11 + plen);
        buf = buf.subarray(11 + plen);
        yield* fileContent(await safePath(rel), size, rel);
      } else {
        throw new SystemError('tar-split sidecar is corrupt');
      }
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

async function* fileContent(abs: string, size: number, rel: string): AsyncGenerator<Buffer> {
  let fh;
  try {
    fh = await open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    throw new SystemError(`layer file ${rel} is missing: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== size) throw new SystemError(`layer file ${rel} changed (size ${st.size}, expected ${size})`);
    let left = size;
    let pos = 0;
    const chunk = Math.min(size, 1 << 20);
    while (left > 0) {
      const b = Buffer.allocUnsafe(Math.min(chunk, left));
      const { bytesRead } = await fh.read(b, 0, b.length, pos);
      if (bytesRead === 0) throw new SystemError(`layer file ${rel} is shorter than its record`);
      pos += bytesRead;
      left -= bytesRead;
      yield bytesRead === b.length ? b : b.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
