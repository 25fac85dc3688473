/**
 * wharf build — the classic builder's client, as `DOCKER_BUILDKIT=0 docker build` does it: the context
 * directory is sent as a tar (entries owned by 0:0, in walk order) without what .dockerignore excludes (the
 * Dockerfile and .dockerignore are always sent), a Dockerfile outside the context travels inside the tar as
 * `.dockerfile.<random>`, `-` reads a tar (plain or compressed) or a lone Dockerfile from stdin, a URL is left to
 * the daemon (`remote`). The daemon's stream is printed as docker prints it; a failure exits with its code.
 */
import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { PatternMatcher, readIgnoreFile } from '../../lib/dockerignore.js';
import { humanSize } from '../../lib/units.js';
import { encodeAuthHeader, credentialsFor } from '../../client/auth.js';
import type { EngineClient, Query } from '../../client/index.js';
import { decodeJSONMessages } from '../../client/jsonstream.js';
import type { JSONMessage } from '../../lib/jsonmessage.js';
import { displayJSONMessages } from '../jsonmessage.js';
import { confirmOrCancel, StatusError, type CliContext, type Opts } from '../context.js';
import { DEFAULT_DOMAIN, INDEX_SERVER } from '../../lib/reference.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

interface Entry { rel: string; abs: string; st: Stats }

/** The context's files in filepath.Walk order (lexical, directories before their contents), minus the ignored. */
function walkContext(root: string, ignore: PatternMatcher, keep: Set<string>): Entry[] {
  const out: Entry[] = [];
  const visit = (relDir: string) => {
    const absDir = relDir === '' ? root : join(root, relDir);
    let names: string[];
    try { names = readdirSync(absDir); } catch (e) {
      throw new StatusError(`error checking context: 'can't stat '${absDir}'': ${(e as Error).message}.`, 1);
    }
    names.sort();
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = join(absDir, name);
      const st = lstatSync(abs);
      const ignored = !keep.has(rel) && ignore.matches(rel);
      if (ignored) {
        // an ignored directory is still walked when an exception might bring back something below it
        if (st.isDirectory() && ignore.hasExclusions) visit(rel);
        continue;
      }
      out.push({ rel, abs, st });
      if (st.isDirectory()) visit(rel);
    }
  };
  visit('');
  return out;
}

/** Packs entries into a tar stream (0:0 owners, modes and mtimes kept); returns the stream. */
function packContext(entries: Entry[], extra: { name: string; data: Buffer }[], replace = new Map<string, Buffer>()): Readable {
  const pack = tarStream.pack();
  void (async () => {
    const add = (h: Partial<tarStream.Header> & { name: string }, body?: Buffer | Readable) => new Promise<void>((res, rej) => {
      if (body === undefined || Buffer.isBuffer(body)) { pack.entry(h, body ?? Buffer.alloc(0), (e) => (e ? rej(e) : res())); return; }
      const w = pack.entry(h, (e) => (e ? rej(e) : res()));
      w.on('error', rej);
      body.on('error', rej);
      body.pipe(w);
    });
    try {
      for (const e of entries) {
        const base = { name: e.rel, mode: e.st.mode & 0o7777, mtime: e.st.mtime, uid: 0, gid: 0 };
        if (e.st.isDirectory()) await add({ ...base, name: `${e.rel}/`, type: 'directory' });
        else if (e.st.isSymbolicLink()) await add({ ...base, type: 'symlink', linkname: readlinkSync(e.abs) });
        else if (replace.has(e.rel)) { const data = replace.get(e.rel)!; replace.delete(e.rel); await add({ ...base, type: 'file', size: data.length }, data); }
        else if (e.st.isFile()) await add({ ...base, type: 'file', size: e.st.size }, e.st.size < 65536 ? readFileSync(e.abs) : createReadStream(e.abs));
      }
      for (const x of extra) await add({ name: x.name, mode: 0o600, mtime: new Date(), uid: 0, gid: 0, size: x.data.length }, x.data);
      for (const [name, data] of replace) await add({ name, mode: 0o600, mtime: new Date(), uid: 0, gid: 0, size: data.length }, data);
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return pack as unknown as Readable;
}

/** docker's detection of a compressed or plain tar on stdin (vs. a Dockerfile). */
function looksLikeArchive(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true; // gzip
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return true;
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true; // xz
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true; // zstd
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

/** Counts bytes as they pass (the "Sending build context" size). */
function counting(src: Readable): { stream: Readable; size: () => number } {
  let n = 0;
  const pt = new PassThrough();
  src.on('data', (c: Buffer) => { n += c.length; });
  src.on('error', (e) => pt.destroy(e));
  src.pipe(pt);
  return { stream: pt, size: () => n };
}

export async function runBuild(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const spec = args[0]!;
  const quiet = o.quiet === true;
  let dockerfileOpt = str(o.file);
  let body: Readable | undefined;
  let remote: string | undefined;
  let dockerfileName = 'Dockerfile';
  let sized: { stream: Readable; size: () => number } | undefined;

  if (spec === '-') {
    if (dockerfileOpt === '-') throw new StatusError('invalid argument: can\'t use stdin for both build context and dockerfile', 1);
    const data = await readAll(ctx.stdio.stdin);
    if (looksLikeArchive(data.subarray(0, 512))) {
      body = Readable.from([data]);
      if (dockerfileOpt) dockerfileName = dockerfileOpt;
    } else {
      // a Dockerfile alone: no context
      body = packContext([], [{ name: 'Dockerfile', data }]);
    }
  } else if (/^(https?:\/\/|git@|git:\/\/|github\.com\/)/.test(spec)) {
    remote = spec;
    if (dockerfileOpt) dockerfileName = dockerfileOpt;
  } else {
    const root = resolve(spec);
    let st: Stats;
    try { st = lstatSync(root); } catch { throw new StatusError(`unable to prepare context: path ${JSON.stringify(spec)} not found`, 1); }
    if (!st.isDirectory()) throw new StatusError(`unable to prepare context: context must be a directory: ${root}`, 1);
    let dockerfileData: Buffer | undefined;
    let dfAbs: string;
    if (dockerfileOpt === '-') {
      dockerfileData = await readAll(ctx.stdio.stdin);
      dfAbs = '';
    } else {
      dfAbs = dockerfileOpt ? resolve(dockerfileOpt) : join(root, 'Dockerfile');
      if (!dockerfileOpt) {
        try { lstatSync(dfAbs); } catch {
          try { lstatSync(join(root, 'dockerfile')); dfAbs = join(root, 'dockerfile'); } catch { /* reported below */ }
        }
      }
      try { lstatSync(dfAbs); } catch {
        throw new StatusError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dfAbs}: no such file or directory`, 1);
      }
    }
    let ignoreText = '';
    try { ignoreText = readFileSync(join(root, '.dockerignore'), 'utf8'); } catch { /* none */ }
    let matcher: PatternMatcher;
    try { matcher = new PatternMatcher(readIgnoreFile(ignoreText)); } catch (e) { throw new StatusError(`Error checking context: ${(e as Error).message}`, 1); }
    const relDf = dfAbs === '' ? null : relative(root, dfAbs);
    const inside = relDf !== null && !relDf.startsWith('..') && !isAbsolute(relDf);
    const keep = new Set<string>(['.dockerignore']);
    const extra: { name: string; data: Buffer }[] = [];
    const replace = new Map<string, Buffer>();
    if (inside) {
      dockerfileName = relDf!.split(sep).join('/');
      keep.add(dockerfileName);
    } else {
      // outside the context (or stdin): sent inside the tar under a random name, as the docker CLI does
      dockerfileName = `.dockerfile.${randomBytes(10).toString('hex')}`;
      extra.push({ name: dockerfileName, data: dockerfileData ?? readFileSync(dfAbs) });
      // and, as docker does, the .dockerignore sent names it (and itself), so `COPY .` does not pick it up
      const base = ignoreText === '' || ignoreText.endsWith('\n') ? ignoreText : `${ignoreText}\n`;
      replace.set('.dockerignore', Buffer.from(`${base}.dockerignore\n${dockerfileName}\n`));
    }
    // docker keeps the Dockerfile and .dockerignore even when a pattern excludes them
    if (inside) for (const p of ['.dockerignore', dockerfileName]) if (matcher.matches(p)) keep.add(p);
    body = packContext(walkContext(root, matcher, keep), extra, replace);
  }
  if (body) sized = counting(body);

  const buildArgs: Record<string, string | null> = {};
  for (const a of list(o.buildArg)) {
    const i = a.indexOf('=');
    if (i >= 0) buildArgs[a.slice(0, i)] = a.slice(i + 1);
    else buildArgs[a] = process.env[a] ?? null;
  }
  const labels: Record<string, string> = {};
  for (const l of list(o.label)) { const i = l.indexOf('='); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1); }
  const tags = list(o.tag);
  const { parseNormalizedNamed } = await import('../../lib/reference.js');
  for (const t of tags) {
    try { parseNormalizedNamed(t); } catch (e) { throw new StatusError(`invalid argument "${t}" for "-t, --tag" flag: ${(e as Error).message}\nSee 'wharf build --help'.`, 125); }
  }
  const registryConfig: Record<string, unknown> = {};
  const auth = credentialsFor(DEFAULT_DOMAIN, ctx.globals.config);
  if (Object.keys(auth).length) registryConfig[INDEX_SERVER] = auth;

  // --secret and --ssh: read (files read, key files parsed) before anything is sent
  const secrets = readSecrets(list(o.secret));
  const sshSpecs = list(o.ssh);
  const ssh = sshSpecs.length ? await (await import('../build-session.js')).readSsh(sshSpecs) : undefined;
  const client = await ctx.client();
  const query: Query = {
    t: tags, dockerfile: dockerfileName, buildargs: JSON.stringify(buildArgs), labels: JSON.stringify(labels),
    target: str(o.target), nocache: o.noCache === true, pull: o.pull === true, rm: o.rm !== false ? '1' : '0',
    forcerm: o.forceRm === true, q: quiet, networkmode: str(o.network), platform: str(o.platform), extrahosts: list(o.addHost),
    cachefrom: JSON.stringify(list(o.cacheFrom)), remote, version: '1',
  };
  const headers: Record<string, string> = { 'Content-Type': 'application/x-tar', 'X-Registry-Config': encodeAuthHeader(registryConfig as never) };
  // the secrets and agents stay here: a session the daemon reaches them through, for as long as the build runs
  const session = ssh || secrets
    ? await (await import('../build-session.js')).openBuildSession(client, { ssh: ssh ?? new Map(), secrets: secrets ?? new Map() }, (m) => ctx.err(`${m}\n`))
    : undefined;
  try {
    await sendBuild(ctx, client, o, quiet, query, { ...headers, ...session?.headers }, sized);
  } finally {
    session?.close();
  }
}

async function sendBuild(ctx: CliContext, client: EngineClient, o: Opts, quiet: boolean, query: Query,
  headers: Record<string, string>, sized: { stream: Readable; size: () => number } | undefined): Promise<void> {
  const uploaded = sized ? new Promise<void>((r) => { sized!.stream.on('end', r); sized!.stream.on('close', r); }) : Promise.resolve();
  const res = await client.request('POST', '/build', { query, headers, ...(sized ? { bodyStream: sized.stream } : {}) });
  await uploaded;
  // docker's progress line, its size right-aligned, ended by "\r\r\n" off a terminal
  if (sized && !quiet) ctx.out(`Sending build context to Docker daemon ${humanSize(sized.size()).padStart(8)}\r\r\n`);
  let id = '';
  let failure: { message: string; code: number } | null = null;
  async function* tap(src: AsyncIterable<JSONMessage>): AsyncGenerator<JSONMessage> {
    for await (const m of src) {
      const aux = m.aux as { ID?: string } | undefined;
      if (aux?.ID) { id = aux.ID; continue; }
      if (m.error !== undefined || m.errorDetail !== undefined) {
        failure = { message: m.errorDetail?.message ?? m.error ?? '', code: m.errorDetail?.code || 1 };
        return;
      }
      yield m;
    }
  }
  await displayJSONMessages(tap(decodeJSONMessages(res)), quiet ? () => {} : ctx.out, { isTerminal: ctx.isTerminal && !quiet, width: ctx.columns });
  const f = failure as { message: string; code: number } | null;
  if (f) throw new StatusError(f.message, f.code);
  const iid = str(o.iidfile);
  if (iid && id) writeFileSync(iid, id);
  if (quiet) ctx.out(`${id}\n`);
}

/** BuildKit's limit on one secret's size (the daemon refuses more). */
const MAX_SECRET_SIZE = 500 * 1024;

/**
 * --secret id=x[,src=file|,env=VAR][,type=file|env] (buildx's syntax): each value read now (a missing file fails
 * before anything is sent) and kept in this process; the daemon fetches one through the build session only when a
 * step mounts it (never in a header, the context tar nor the query).
 */
export function readSecrets(specs: string[], env: NodeJS.ProcessEnv = process.env): Map<string, Buffer> | undefined {
  if (!specs.length) return undefined;
  const out = new Map<string, Buffer>();
  for (const spec of specs) {
    const f: Record<string, string> = {};
    for (const part of spec.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) throw new StatusError(`invalid argument "${spec}" for "--secret" flag: field "${part}" must be key=value`, 125);
      const k = part.slice(0, i).trim().toLowerCase();
      if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw new StatusError(`invalid argument "${spec}" for "--secret" flag: unexpected key '${k}'`, 125);
      f[k === 'source' ? 'src' : k] = part.slice(i + 1);
    }
    const id = f.id;
    if (!id) throw new StatusError(`invalid argument "${spec}" for "--secret" flag: id is required`, 125);
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new StatusError(`invalid argument "${spec}" for "--secret" flag: invalid id "${id}"`, 125);
    if (out.has(id)) throw new StatusError(`invalid argument "${spec}" for "--secret" flag: id "${id}" given twice`, 125);
    if (f.type && f.type !== 'file' && f.type !== 'env') throw new StatusError(`invalid argument "${spec}" for "--secret" flag: unsupported secret type "${f.type}"`, 125);
    let value: Buffer;
    const varName = f.env ?? (f.type === 'env' ? (f.src ?? id) : undefined);
    if (varName !== undefined) {
      const v = env[varName];
      if (v === undefined) throw new StatusError(`secret ${id}: environment variable ${varName} is not set`, 1);
      value = Buffer.from(v);
    } else {
      const src = f.src ?? (env[id] === undefined ? undefined : null);
      if (src === null) value = Buffer.from(env[id]!);
      else {
        if (src === undefined) throw new StatusError(`secret ${id}: give src=<file> or env=<VAR>`, 1);
        try { value = readFileSync(src); } catch (e) { throw new StatusError(`secret ${id}: failed to read ${src}: ${(e as Error).message}`, 1); }
      }
    }
    if (value.length > MAX_SECRET_SIZE) throw new StatusError(`secret ${id}: too big (${value.length} bytes, at most ${MAX_SECRET_SIZE})`, 1);
    out.set(id, value);
  }
  return out;
}

/** builder prune: POST /build/prune (the cache mounts' directories), docker's prompt and output. */
export async function runBuilderPrune(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  if (o.force !== true) await confirmOrCancel(ctx, `WARNING! This will remove all ${o.all === true ? '' : 'dangling '}build cache. Are you sure you want to continue?`);
  const client = await ctx.client();
  const r = await client.json<{ CachesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/build/prune', { query: { all: o.all === true } });
  let out = '';
  if (r.CachesDeleted?.length) out += `Deleted build cache objects:\n${r.CachesDeleted.map((n) => `${n}\n`).join('')}\n`;
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`;
  ctx.out(out);
}
