/**
 * Build contexts: the request body (tar, gzip/bzip2/xz tar, or a bare Dockerfile), a `remote=` tarball or
 * Dockerfile URL, or a git URL (`#ref:subdir`, cloned with the git binary). Every context is unpacked into a
 * private directory; `.dockerignore` is applied there, after the Dockerfile was read (the Dockerfile and
 * .dockerignore are removed too when a pattern names them, as dockerd does).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { startSum, typeflagOf } from './srchash.js';
import { InvalidParameterError, NotFoundError, UnavailableError } from '../../lib/errors.js';
import { get as httpGet, goNetError, type HttpResponse } from '../../lib/httpclient.js';
import { PatternMatcher, readIgnoreFile } from '../../lib/dockerignore.js';
import { resolveInRoot } from '../fsroot/index.js';
import { extractLayerTar } from '../layers/index.js';
import { peek } from '../../lib/streams.js';
import { isMissing, missingAs } from '../../lib/fsutil.js';
import { decompressStream } from '../../lib/compression.js';
import { execChecked } from '../../lib/exec.js';


export interface BuildContext {
  /** Root directory of the (filtered) context. */
  dir: string;
  dockerfile: string;
  /** dockerd's tarsum of each context entry, by absolute path (srchash.ts). */
  sums: Map<string, string>;
  /**
   * "sha256:<hex>" of the request body as received, when the context is one (not a remote): the same bytes give
   * the same unpacked tree, so whatever is computed from the tree alone may be remembered under it.
   */
  key?: string;
  /** Done with the context: removes it (or, when the memo keeps it, lets go of it; `discard` drops it there too). */
  close(discard?: boolean): Promise<void>;
}

interface MemoEntry {
  key: string;
  /** What to remove (the entry's own directory). */
  root: string;
  dir: string;
  dockerfile: string;
  sums: Map<string, string>;
  bytes: number;
  users: number;
  lastUsed: number;
  dropped: boolean;
}

/**
 * Unpacked contexts kept after their build, by the sha256 of the request body and the Dockerfile's name: a
 * rebuild that sends the same bytes (docker build of an unchanged directory) skips unpacking, summing and the
 * .dockerignore walk. Sound because an entry is the deterministic result of those bytes and nothing writes into a
 * context while builds use it (RUN --mount=type=bind binds it read-only or copies it). Bounded: bodies of at
 * most MAX_BODY bytes, MAX_ENTRIES entries of MAX_BYTES (body bytes) together, the least recently used going
 * first (once no build holds them); entries unused for IDLE_MS are removed. Directories left by a previous
 * daemon are swept with the other build leftovers.
 */
export class ContextMemo {
  static readonly MAX_BODY = 8 << 20;
  static readonly MAX_ENTRIES = 8;
  static readonly MAX_BYTES = 32 << 20;
  static readonly IDLE_MS = 10 * 60_000;
  private readonly entries = new Map<string, MemoEntry>();
  private timer: NodeJS.Timeout | undefined;
  /** Contexts served from the memo, and unpacked into it (for tests and the debug log). */
  readonly stats = { hits: 0, stored: 0 };

  constructor(private readonly tmpDir: string, private readonly onError: (e: unknown, path: string) => void = () => {}) {}

  /** A fresh directory for an entry (under the builder's tmp directory, named like a build's). */
  newRoot(): string { return join(this.tmpDir, `build-memo-${randomBytes(8).toString('hex')}`); }

  take(key: string): BuildContext | null {
    const e = this.entries.get(key);
    if (!e || e.dropped) return null;
    this.entries.delete(key);
    this.entries.set(key, e);
    e.users++;
    e.lastUsed = Date.now();
    this.stats.hits++;
    return this.handle(e);
  }

  /** Keeps a freshly unpacked context (null: not kept — one like it was stored meanwhile, or it is too large). */
  put(key: string, c: { root: string; dir: string; dockerfile: string; sums: Map<string, string>; bytes: number }): BuildContext | null {
    if (this.entries.has(key) || c.bytes > ContextMemo.MAX_BODY) return null;
    const e: MemoEntry = { key, ...c, users: 1, lastUsed: Date.now(), dropped: false };
    this.entries.set(key, e);
    this.stats.stored++;
    this.trim();
    return this.handle(e);
  }

  /**
   * Forgets every kept context (docker builder prune: kept contexts are build cache, as BuildKit's local sources);
   * the ones no build holds are removed now, the others when their build lets go.
   */
  async clear(): Promise<void> {
    const idle: MemoEntry[] = [];
    for (const e of [...this.entries.values()]) {
      this.drop(e);
      if (e.users === 0) idle.push(e);
    }
    await Promise.all(idle.map((e) => this.remove(e).catch((err) => this.onError(err, e.root))));
  }

  /** How many contexts are kept (for tests). */
  get size(): number { return this.entries.size; }

  private handle(e: MemoEntry): BuildContext {
    let closed = false;
    return {
      dir: e.dir, dockerfile: e.dockerfile, sums: e.sums, key: e.key.slice(0, e.key.indexOf('\n')),
      close: async (discard = false) => {
        if (closed) return;
        closed = true;
        e.users--;
        e.lastUsed = Date.now();
        if (discard) this.drop(e);
        if (e.dropped && e.users === 0) await this.remove(e);
        else this.arm();
      },
    };
  }

  private drop(e: MemoEntry): void {
    e.dropped = true;
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
  }

  private async remove(e: MemoEntry): Promise<void> {
    await rm(e.root, { recursive: true, force: true });
  }

  /** The least recently used go while over the bounds; one a build holds goes when it is let go. */
  private trim(): void {
    let bytes = 0;
    for (const e of this.entries.values()) bytes += e.bytes;
    for (const e of [...this.entries.values()]) {
      if (this.entries.size <= ContextMemo.MAX_ENTRIES && bytes <= ContextMemo.MAX_BYTES) break;
      bytes -= e.bytes;
      this.drop(e);
      if (e.users === 0) void this.remove(e).catch((err) => this.onError(err, e.root));
    }
  }

  /** Removes the entries idle for IDLE_MS (checked by one timer that does not keep the daemon alive). */
  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const old = Date.now() - ContextMemo.IDLE_MS;
      for (const e of [...this.entries.values()]) {
        if (e.users === 0 && e.lastUsed <= old) { this.drop(e); void this.remove(e).catch((err) => this.onError(err, e.root)); }
      }
      if (this.entries.size) this.arm();
    }, ContextMemo.IDLE_MS);
    this.timer.unref();
  }
}

/** A tar header block: "ustar" magic or a valid checksum. */
export function looksLikeTar(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const stored = parseInt(b.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === stored;
}

function safeJoin(root: string, name: string): string | null {
  const clean = posix.normalize('/' + name).slice(1).replace(/\/$/, '');
  if (clean === '' ) return null;
  return join(root, clean);
}

/**
 * Completes a tar that stops right after its last entry's content: the docker CLI sends such contexts when it
 * adds a Dockerfile from outside the context (no padding, no end-of-archive blocks), and dockerd accepts them.
 * The stream is padded to a whole block and given the two zero blocks; a complete tar is unaffected.
 */
function completeTarEnd(src: Readable): Readable {
  let n = 0;
  const t = new Transform({
    transform(c: Buffer, _e, cb) { n += c.length; cb(null, c); },
    flush(cb) {
      const pad = (512 - (n % 512)) % 512;
      cb(null, Buffer.alloc(pad + 1024));
    },
  });
  src.on('error', (e) => t.destroy(e));
  return src.pipe(t);
}


/**
 * Unpacks a tar stream into `dir` (no owners: the context is data) with the layer extractor's confined code
 * (layers/extract.ts, kind 'context'), summing every entry on the way as dockerd does (srchash.ts).
 */
export async function untarTo(input: Readable, dir: string, sums?: Map<string, string>): Promise<void> {
  const stream = completeTarEnd(input);
  await extractLayerTar(stream, dir, {
    kind: 'context',
    onEntry: sums ? (h, path) => {
      // dockerd's per-entry tarsum (COPY/ADD source hashes), over the header as the client wrote it
      const pax = (h as { pax?: Record<string, string> }).pax ?? {};
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
      const sum = startSum({
        name: h.name, mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, size: h.size ?? 0, typeflag: typeflagOf(h.type),
        linkname: h.linkname ?? '', uname: h.uname ?? '', gname: h.gname ?? '', devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0, xattrs,
      });
      return { update: (c) => sum.update(c), end: () => { sums.set(path, sum.digest('hex')); } };
    } : undefined,
  });
}

/** A git URL as docker and BuildKit detect one (git://, git@, github.com/, http(s)://….git[#…]). */
export function isGitUrl(s: string): boolean {
  return /^git:\/\//.test(s) || /^git@/.test(s) || /^github\.com\//.test(s)
    || (/^https?:\/\//.test(s) && /\.git(#.*)?$/.test(s));
}

/**
 * Clones `url` (`repo#ref:subdir`) into `dir` (shallow when the transport allows), returns the (sub)directory.
 * `.git` is removed unless `keepGitDir` (ADD --keep-git-dir).
 */
export async function fetchGit(url: string, dir: string, opts: { keepGitDir?: boolean } = {}): Promise<string> {
  let [repo, frag = ''] = url.split('#', 2) as [string, string?];
  if (repo.startsWith('github.com/')) repo = `https://${repo}`;
  const [ref = '', subdir = ''] = frag.split(':', 2);
  try {
    await execChecked('git', ['init', '-q', dir]);
    await execChecked('git', ['-C', dir, 'remote', 'add', 'origin', repo]);
    // shallow first; the dumb http transport cannot do shallow fetches
    await execChecked('git', ['-C', dir, 'fetch', '-q', '--depth', '1', 'origin', ref || 'HEAD'])
      .catch(() => execChecked('git', ['-C', dir, 'fetch', '-q', 'origin', ref || 'HEAD']));
    await execChecked('git', ['-C', dir, 'checkout', '-q', 'FETCH_HEAD']);
    await execChecked('git', ['-C', dir, 'submodule', 'update', '-q', '--init', '--recursive', '--depth', '1']);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
    throw new InvalidParameterError(`error fetching: ${msg}: exit status 128`);
  }
  if (!opts.keepGitDir) await rm(join(dir, '.git'), { recursive: true, force: true });
  if (!subdir) return dir;
  const sub = safeJoin(dir, await resolveInRoot(dir, subdir));
  const st = sub ? await lstat(sub).catch(missingAs(null)) : null;
  if (!sub || !st?.isDirectory()) throw new InvalidParameterError(`subdir not found in git repository: ${subdir}`);
  return sub;
}

/** Reads a stream until it ends or passes `max` bytes, hashing what it reads; `it` goes on from there. */
async function readUpTo(input: Readable, max: number): Promise<{ chunks: Buffer[]; bytes: number; ended: boolean; hash: Hash; it: AsyncIterator<Buffer> }> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  while (bytes <= max) {
    const r = await it.next();
    if (r.done) return { chunks, bytes, ended: true, hash, it };
    hash.update(r.value);
    chunks.push(r.value);
    bytes += r.value.length;
  }
  return { chunks, bytes, ended: false, hash, it };
}

/** The chunks read, then the rest of the stream through the same hash. */
function replayThenRest(chunks: Buffer[], it: AsyncIterator<Buffer>, hash: Hash): Readable {
  return Readable.from((async function* () {
    yield* chunks;
    for (let r = await it.next(); !r.done; r = await it.next()) { hash.update(r.value); yield r.value; }
  })());
}

/**
 * Opens the context of a build: unpacks it under `tmpDir`, reads the Dockerfile and applies .dockerignore. With a
 * memo, a request body of at most ContextMemo.MAX_BODY bytes is read whole first: the same bytes (and Dockerfile
 * name) as a kept context give that context, unpacked nothing; other ones are unpacked into the memo.
 */
export async function openContext(body: Readable | null, opts: { remote?: string; dockerfile: string; tmpDir: string; signal?: AbortSignal; memo?: ContextMemo }): Promise<BuildContext> {
  let input: Readable | null = body;
  let root = opts.tmpDir;
  // the body's hash: known once it is read (the memo's key, and BuildContext.key)
  let bodyHash: Hash | null = null;
  let memoKey: string | null = null;
  let bodyBytes = 0;
  if (body && !(opts.remote && opts.remote !== 'context')) {
    const head = await readUpTo(body, opts.memo ? ContextMemo.MAX_BODY : 0);
    bodyHash = head.hash;
    if (head.ended && opts.memo) {
      memoKey = `sha256:${head.hash.copy().digest('hex')}\n${opts.dockerfile || 'Dockerfile'}`;
      const kept = opts.memo.take(memoKey);
      if (kept) return kept;
      root = opts.memo.newRoot();
      bodyBytes = head.bytes;
      input = Readable.from(head.chunks);
    } else {
      input = head.ended ? Readable.from(head.chunks) : replayThenRest(head.chunks, head.it, head.hash);
    }
  }
  await mkdir(root, { recursive: true });
  const close = () => rm(root, { recursive: true, force: true });
  try {
    let dir = join(root, 'ctx');
    await mkdir(dir, { recursive: true });
    let dockerfileText: string | null = null;
    const sums = new Map<string, string>();
    let dfName = opts.dockerfile || 'Dockerfile';
    if (opts.remote && opts.remote !== 'context') {
      if (isGitUrl(opts.remote)) {
        dir = await fetchGit(opts.remote, dir);
        input = null;
      } else if (/^https?:\/\//.test(opts.remote)) {
        let resp: HttpResponse;
        try {
          resp = await httpGet(opts.remote, { signal: opts.signal });
        } catch (e) {
          throw goNetError('GET', opts.remote, e);
        }
        if (resp.statusCode < 200 || resp.statusCode > 299) {
          resp.body.destroy();
          throw new UnavailableError(`failed to GET ${opts.remote} with status ${resp.statusCode} ${resp.statusMessage}: `);
        }
        input = resp.body;
      } else {
        throw new InvalidParameterError(`unable to prepare context: unable to fetch remote: ${opts.remote}`);
      }
    }
    let tarred = false;
    if (input) {
      const { stream } = await decompressStream(input);
      const { head, stream: s2 } = await peek(stream, 512);
      if (looksLikeTar(head)) {
        await untarTo(s2, dir, sums);
        tarred = true;
      } else {
        // A bare Dockerfile (docker build - < Dockerfile, or a Dockerfile URL): no context.
        const chunks: Buffer[] = [];
        for await (const c of s2) chunks.push(c as Buffer);
        dockerfileText = Buffer.concat(chunks).toString('utf8');
        dfName = 'Dockerfile';
      }
    }
    if (dockerfileText === null) {
      const candidates = [dfName];
      if (!opts.dockerfile || opts.dockerfile === 'Dockerfile') candidates.push('dockerfile');
      for (const c of candidates) {
        const p = safeJoin(dir, await resolveInRoot(dir, c));
        if (!p) continue;
        try {
          dockerfileText = await readFile(p, 'utf8');
          dfName = c;
          break;
        } catch (e) { if (!isMissing(e)) throw e; /* next */ }
      }
      if (dockerfileText === null) throw new NotFoundError(`Cannot locate specified Dockerfile: ${dfName}`);
    }
    if (dockerfileText.length === 0) throw new InvalidParameterError(`the Dockerfile (${dfName}) cannot be empty`);
    await applyDockerignore(dir);
    const key = bodyHash ? `sha256:${bodyHash.digest('hex')}` : undefined;
    if (memoKey && tarred) {
      const kept = opts.memo!.put(memoKey, { root, dir, dockerfile: dockerfileText, sums, bytes: bodyBytes });
      if (kept) return kept;
    }
    return { dir, dockerfile: dockerfileText, sums, ...(key ? { key } : {}), close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Removes from `dir` what its .dockerignore excludes (the .dockerignore itself included when named). */
export async function applyDockerignore(dir: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, '.dockerignore'), 'utf8');
  } catch {
    return;
  }
  const pm = new PatternMatcher(readIgnoreFile(text));
  if (pm.patterns.length === 0) return;
  const walk = async (rel: string): Promise<boolean> => {
    // returns true when the directory ends up empty and ignored
    const abs = rel ? join(dir, rel) : dir;
    const entries = await readdir(abs, { withFileTypes: true });
    let kept = 0;
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const ignored = pm.matches(r);
      if (e.isDirectory()) {
        if (ignored && !pm.hasExclusions) { await rm(join(dir, r), { recursive: true, force: true }); continue; }
        const empty = await walk(r);
        if (ignored && empty) { await rmdir(join(dir, r)).catch(missingAs(undefined)); continue; }
        kept++;
      } else if (ignored) {
        await rm(join(dir, r), { force: true });
      } else kept++;
    }
    return kept === 0;
  };
  await walk('');
}

export { createReadStream };
