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
import { closeSync, constants as fsc, createWriteStream, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGzip, gunzip, constants as zc } from 'node:zlib';
import { finished } from 'node:stream/promises';
import { SystemError } from '../../lib/errors.js';

/** gunzip as a promise, made at first use: node:zlib is not loaded at start-up (bench/README.md, memory). */
let gunzipPromise: ((b: Buffer) => Promise<Buffer>) | undefined;
const gunzipP = (b: Buffer): Promise<Buffer> => (gunzipPromise ??= promisify(gunzip))(b);
const BLOCK = 512;
/** Raw runs are flushed to the sidecar in records of at most this many bytes. */
const RAW_FLUSH = 256 * 1024;
const SIDE_PIECE = 1 << 18;

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
  /** The length of the tar the sidecar reproduces: raw bytes plus the recorded files' sizes. */
  private length = 0;
  /** Sidecar bytes not yet handed to gzip: written in pieces of SIDE_PIECE (each gzip write is a thread-pool
   *  round trip; a few per file made the recorder cost more than the extraction's own syscalls). */
  private side: Buffer[] = [];
  private sideLen = 0;

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
    this.length += b.length;
    this.raw.push(Buffer.from(b));
    this.rawLen += b.length;
    if (this.rawLen >= RAW_FLUSH) this.flushRaw();
  }

  private flushRaw(): void {
    if (this.rawLen === 0) return;
    const head = Buffer.alloc(5);
    head[0] = 0x52; // 'R'
    head.writeUInt32BE(this.rawLen, 1);
    this.sideOut(head);
    for (const b of this.raw) this.sideOut(b);
    this.raw = [];
    this.rawLen = 0;
  }

  private sideOut(b: Buffer): void {
    this.side.push(b);
    this.sideLen += b.length;
    if (this.sideLen >= SIDE_PIECE) this.flushSide();
  }

  private flushSide(): void {
    if (this.sideLen === 0) return;
    this.gz.write(this.side.length === 1 ? this.side[0]! : Buffer.concat(this.side, this.sideLen));
    this.side = [];
    this.sideLen = 0;
  }

  private addFile(path: string, size: number): void {
    this.length += size;
    this.flushRaw();
    const p = Buffer.from(path, 'utf8');
    const head = Buffer.alloc(11);
    head[0] = 0x46; // 'F'
    head.writeDoubleBE(size, 1);
    head.writeUInt16BE(p.length, 9);
    this.sideOut(head);
    this.sideOut(p);
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
      } else if (s.kind === 'ext' || s.kind === 'file') {
        if (s.left > 0) {
          // an extended header's body is raw (and parsed at its end); a file's content is not recorded
          const n = Math.min(s.left, chunk.length - i);
          if (s.kind === 'ext') {
            const part = chunk.subarray(i, i + n);
            s.chunks.push(Buffer.from(part));
            this.addRaw(part);
          }
          s.left -= n;
          i += n;
          if (s.kind === 'ext' && s.left === 0) this.onExt(s.type, Buffer.concat(s.chunks));
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

  /** Flushes and closes the sidecar. Returns the length of the tar it reproduces, or null when it cannot. */
  async finish(): Promise<number | null> {
    this.flushRaw();
    this.flushSide();
    this.gz.end();
    try {
      await finished(this.out);
    } catch {
      return null;
    }
    return this.usable ? this.length : null;
  }

  /** Closes the sidecar without caring about its content (the extraction failed). */
  abort(): void {
    this.gz.destroy();
    this.out.destroy();
  }
}

/**
 * The original tar of a layer, from its sidecar and the layer's files under `root`. Errors (a file missing
 * or of another size, a path resolving outside the layer) surface as stream errors; callers verify the DiffID.
 *
 * The sidecar is small (headers only) and read whole; file contents are read with synchronous calls into
 * 1 MiB pieces, which `_read` pushes whole — a layer holds thousands of small files, and a thread-pool round
 * trip for each open/stat/read/close, or a gzip write per 512-byte header, costs more than the work itself.
 */
export function tarSplitStream(sidecar: string, root: string): Readable {
  return new TarSplitReader(sidecar, root);
}

const PIECE = 1 << 20;

/** The length of the tar a sidecar reproduces (raw bytes + file contents), without touching the files. */
export async function tarSplitSize(sidecar: string): Promise<number> {
  const side = await gunzipP(await readFile(sidecar));
  let total = 0;
  let pos = 0;
  while (pos < side.length) {
    const kind = side[pos];
    if (kind === 0x52 && pos + 5 <= side.length) {
      const len = side.readUInt32BE(pos + 1);
      total += len;
      pos += 5 + len;
    } else if (kind === 0x46 && pos + 11 <= side.length) {
      total += side.readDoubleBE(pos + 1);
      pos += 11 + side.readUInt16BE(pos + 9);
    } else {
      throw new SystemError('tar-split sidecar is corrupt');
    }
  }
  if (pos !== side.length) throw new SystemError('tar-split sidecar is truncated');
  return total;
}

class TarSplitReader extends Readable {
  private side: Buffer | null = null;
  private pos = 0;
  private fd: number | null = null;
  private fileLeft = 0;
  private filePos = 0;
  private fileRel = '';
  private realRoot = '';
  private readonly dirs = new Map<string, string>();

  constructor(private readonly sidecar: string, private readonly root: string) {
    super({ highWaterMark: PIECE });
  }

  override _construct(cb: (e?: Error | null) => void): void {
    readFile(this.sidecar).then((gz) => gunzipP(gz)).then((b) => {
      this.side = b;
      this.realRoot = realpathSync(this.root);
      cb();
    }, (e: Error) => cb(new SystemError(`tar-split sidecar of the layer cannot be read: ${e.message}`, { cause: e })));
  }

  /** The piece being filled: headers, padding and small files' contents are gathered into 1 MiB pieces, so a
   *  consumer (gzip, a hash, a socket) gets a few large writes instead of two tiny ones per file. */
  private out: Buffer = Buffer.allocUnsafe(PIECE);
  private outLen = 0;

  /** Pushes the gathered piece; false when the consumer wants no more for now. */
  private flushOut(): boolean {
    if (this.outLen === 0) return true;
    const piece = this.out.subarray(0, this.outLen);
    this.out = Buffer.allocUnsafe(PIECE);
    this.outLen = 0;
    return this.push(piece);
  }

  override _read(): void {
    try {
      for (;;) {
        if (this.fd !== null) {
          // straight into the piece being filled
          const room = PIECE - this.outLen;
          const n = Math.min(this.fileLeft, room);
          const got = readSync(this.fd, this.out, this.outLen, n, this.filePos);
          if (got === 0) throw new SystemError(`layer file ${this.fileRel} is shorter than its record`);
          this.filePos += got;
          this.fileLeft -= got;
          this.outLen += got;
          if (this.fileLeft === 0) { closeSync(this.fd); this.fd = null; }
          if (this.outLen === PIECE && !this.flushOut()) return;
          continue;
        }
        const side = this.side!;
        if (this.pos >= side.length) { this.flushOut(); this.push(null); return; }
        const kind = side[this.pos];
        if (kind === 0x52) {
          if (this.pos + 5 > side.length) throw new SystemError('tar-split sidecar is truncated');
          const len = side.readUInt32BE(this.pos + 1);
          const start = this.pos + 5;
          if (start + len > side.length) throw new SystemError('tar-split sidecar is truncated');
          this.pos = start + len;
          let at = start;
          while (at < start + len) {
            const k = Math.min(start + len - at, PIECE - this.outLen);
            side.copy(this.out, this.outLen, at, at + k);
            this.outLen += k;
            at += k;
            if (this.outLen === PIECE && !this.flushOut() && at === start + len) return;
          }
        } else if (kind === 0x46) {
          if (this.pos + 11 > side.length) throw new SystemError('tar-split sidecar is truncated');
          const size = side.readDoubleBE(this.pos + 1);
          const plen = side.readUInt16BE(this.pos + 9);
          if (this.pos + 11 + plen > side.length) throw new SystemError('tar-split sidecar is truncated');
          const rel = side.toString('utf8', this.pos + 11, this.pos + 11 + plen);
          this.pos += 11 + plen;
          this.openFile(rel, size);
        } else {
          throw new SystemError('tar-split sidecar is corrupt');
        }
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  /** Opens a layer file where it lies inside the layer: its directory resolved and under the root, no symlink. */
  private openFile(rel: string, size: number): void {
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    let real = this.dirs.get(dir);
    if (real === undefined) {
      try {
        real = dir === '' ? this.realRoot : realpathSync(join(this.realRoot, dir));
      } catch (e) {
        throw new SystemError(`layer file ${rel} is missing: ${(e as Error).message}`, { cause: e });
      }
      if (real !== this.realRoot && !real.startsWith(this.realRoot + '/')) throw new SystemError(`layer file ${rel} resolves outside the layer`);
      this.dirs.set(dir, real);
    }
    let fd: number;
    try {
      fd = openSync(join(real, rel.slice(slash + 1)), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      throw new SystemError(`layer file ${rel} is missing: ${(e as Error).message}`, { cause: e });
    }
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) {
      closeSync(fd);
      throw new SystemError(`layer file ${rel} changed (size ${st.size}, expected ${size})`);
    }
    this.fd = fd;
    this.fileLeft = size;
    this.filePos = 0;
    this.fileRel = rel;
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.fd !== null) { try { closeSync(this.fd); } catch { /* closed */ } this.fd = null; }
    cb(err);
  }
}
