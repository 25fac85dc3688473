/**
 * wharf cp — docker cp's client side: copying out fetches a tar of the path (GET /containers/{id}/archive) and
 * unpacks it at the destination; copying in packs the source with the right root name and sends it to the
 * destination directory (PUT /containers/{id}/archive). `-` means a tar on stdout or stdin. The path rules are
 * docker's: an existing directory receives the item under its own name, a missing destination becomes the
 * item's new name, "SRC/." copies a directory's contents.
 */
import { createReadStream, lstatSync, mkdirSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import tarStream from 'tar-stream';
import { humanSize } from '../../lib/units.js';
import { StatusError, type CliContext, type Opts } from '../context.js';
import type { EngineClient } from '../../client/client.js';

interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }
const DIR_BIT = 2 ** 31;

/** "container:path" → [container, path]; a plain (local) path → [null, path]. */
function splitCpArg(arg: string): [string | null, string] {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return [null, arg];
  const i = arg.indexOf(':');
  if (i <= 0) return [null, arg];
  return [arg.slice(0, i), arg.slice(i + 1)];
}

async function statPath(client: EngineClient, container: string, path: string): Promise<PathStat | null> {
  const res = await client.raw('HEAD', `/containers/${encodeURIComponent(container)}/archive`, { query: { path }, version: await client.apiVersion() });
  res.resume();
  if (res.statusCode === 404) {
    // a missing container and a missing path are both 404: only the first is an error here
    const c = await client.raw('GET', `/containers/${encodeURIComponent(container)}/json`, { version: await client.apiVersion() });
    c.resume();
    if (c.statusCode === 404) throw new StatusError(`Error response from daemon: No such container: ${container}`, 1);
    return null;
  }
  if ((res.statusCode ?? 500) >= 400) throw new StatusError(`Error response from daemon: cannot stat ${path} in ${container}: ${res.statusCode}`, 1);
  const h = res.headers['x-docker-container-path-stat'];
  if (typeof h !== 'string') return null;
  return JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat;
}

/** Packs a local path as a tar whose root entry is `rootName` ('.' = the directory's contents). */
function packLocal(src: string, rootName: string, counter: { n: number }): Readable {
  const pack = tarStream.pack();
  const add = (h: Partial<tarStream.Header> & { name: string }, body?: Readable) => new Promise<void>((res, rej) => {
    if (!body) { pack.entry(h, Buffer.alloc(0), (e) => (e ? rej(e) : res())); return; }
    const w = pack.entry(h, (e) => (e ? rej(e) : res()));
    w.on('error', rej);
    body.on('error', rej).pipe(w);
  });
  const walk = async (p: string, n: string): Promise<void> => {
    const s: Stats = lstatSync(p);
    const common = { name: n, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: s.mtime };
    if (s.isDirectory()) {
      if (n !== '.') await add({ ...common, type: 'directory' });
      for (const e of readdirSync(p).sort()) await walk(join(p, e), n === '.' ? e : `${n}/${e}`);
    } else if (s.isSymbolicLink()) {
      await add({ ...common, type: 'symlink', linkname: readlinkSync(p) });
    } else if (s.isFile()) {
      counter.n += s.size;
      await add({ ...common, type: 'file', size: s.size }, createReadStream(p));
    }
  };
  void walk(src, rootName).then(() => pack.finalize(), (e: Error) => pack.destroy(e));
  return pack as unknown as Readable;
}

/** Unpacks a tar (from the daemon) at `dest`, the root entry renamed to `rootName` when given. */
async function unpackLocal(tar: Readable, destDir: string, rename: { from: string; to: string } | null, counter: { n: number }): Promise<void> {
  const ex = tarStream.extract();
  const times: [string, Date][] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      let name = posix.normalize(h.name).replace(/^(\.\.\/|\/)+/, '');
      if (rename && (name === rename.from || name.startsWith(`${rename.from}/`))) name = rename.to + name.slice(rename.from.length);
      if (name === '' || name === '.' || name.split('/').includes('..')) { entry.resume(); continue; }
      const target = join(destDir, name);
      await mkdir(dirname(target), { recursive: true });
      const mode = (h.mode ?? 0o644) & 0o7777;
      if (h.type === 'directory') {
        await mkdir(target, { recursive: true });
        await chmod(target, mode);
        if (h.mtime) times.push([target, h.mtime]);
        entry.resume();
        continue;
      }
      const existing = await lstat(target).catch(() => null);
      if (existing && !existing.isDirectory()) await rm(target, { force: true });
      if (h.type === 'symlink') { await symlink(h.linkname ?? '', target); entry.resume(); continue; }
      if (h.type === 'file') {
        counter.n += h.size ?? 0;
        await pipeline(entry, createWriteStream(target, { mode }));
        await chmod(target, mode);
        if (h.mtime) await utimes(target, h.mtime, h.mtime).catch(() => {});
        continue;
      }
      entry.resume();
    }
    for (const [d, t] of times.reverse()) await utimes(d, t, t).catch(() => {});
  })();
  tar.on('error', (e) => ex.destroy(e));
  tar.pipe(ex);
  await done;
}

export async function runCp(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const [srcC, srcPath] = splitCpArg(args[0]!);
  const [dstC, dstPath] = splitCpArg(args[1]!);
  if (srcC !== null && dstC !== null) throw new StatusError('copying between containers is not supported', 1);
  if (srcC === null && dstC === null) throw new StatusError('must specify at least one container source', 1);
  const client = await ctx.client();
  const counter = { n: 0 };
  if (srcC !== null) {
    // ---- out of the container
    if (srcPath === '') throw new StatusError('filepath cannot be empty', 1);
    let st = await statPath(client, srcC, srcPath);
    if (!st) throw new StatusError(`Error response from daemon: Could not find the file ${srcPath} in container ${srcC}`, 1);
    let getPath = srcPath;
    let linkRename: { from: string; to: string } | null = null;
    if (o.followLink === true && st.linkTarget) {
      // -L: the link's target is copied, under the link's name
      getPath = st.linkTarget.startsWith('/') ? st.linkTarget : posix.join(posix.dirname(srcPath), st.linkTarget);
      const name = st.name;
      const t = await statPath(client, srcC, getPath);
      if (!t) throw new StatusError(`Error response from daemon: Could not find the file ${getPath} in container ${srcC}`, 1);
      st = t;
      linkRename = { from: t.name, to: name };
    }
    const res = await client.request('GET', `/containers/${encodeURIComponent(srcC)}/archive`, { query: { path: getPath } });
    if (dstPath === '-') { await pipeline(res, ctx.stdio.stdout, { end: false }); return; }
    const dst = resolve(dstPath);
    const dstSt = await lstat(dst).catch(() => null);
    const contents = /\/\.$/.test(srcPath);
    const srcIsDir = (st.mode & DIR_BIT) !== 0;
    if (dstSt?.isDirectory()) {
      await unpackLocal(res, dst, linkRename, counter);
    } else if (dstSt && srcIsDir) {
      throw new StatusError(`cannot copy a directory to a file: ${dstPath}`, 1);
    } else {
      if (/\/$/.test(dstPath) && !srcIsDir) throw new StatusError(`destination directory ${dstPath} does not exist`, 1);
      if (!(await lstat(dirname(dst)).catch(() => null))) throw new StatusError(`no such directory: ${dirname(dst)}`, 1);
      if (contents) { mkdirSync(dst, { recursive: true }); await unpackLocal(res, dst, null, counter); }
      else await unpackLocal(res, dirname(dst), { from: st.name, to: basename(dst) }, counter);
    }
    if (ctx.stdio.stderr.isTTY && o.quiet !== true) ctx.err(`Successfully copied ${humanSize(counter.n)} to ${dstPath}\n`);
    return;
  }
  // ---- into the container
  const container = dstC!;
  if (dstPath === '') throw new StatusError('filepath cannot be empty', 1);
  const dstSt = await statPath(client, container, dstPath);
  const dstIsDir = dstSt !== null && (dstSt.mode & DIR_BIT) !== 0;
  let body: Readable;
  let target: string;
  if (srcPath === '-') {
    if (!dstIsDir) throw new StatusError(`destination "${container}:${dstPath}" must be a directory`, 1);
    body = ctx.stdio.stdin;
    target = dstPath;
  } else {
    const src = resolve(srcPath);
    const srcSt = await lstat(src).catch(() => null);
    if (!srcSt) throw new StatusError(`lstat ${src}: no such file or directory`, 1);
    const contents = /\/\.$/.test(srcPath);
    if (dstIsDir) {
      body = packLocal(src, contents ? '.' : basename(src), counter);
      target = dstPath;
    } else {
      if (dstSt !== null && srcSt.isDirectory()) throw new StatusError(`cannot copy a directory to a file: ${dstPath}`, 1);
      if (/\/$/.test(dstPath)) throw new StatusError(`destination "${container}:${dstPath}" must be a directory`, 1);
      const parent = posix.dirname(dstPath.startsWith('/') ? dstPath : `/${dstPath}`);
      // a missing (or file) destination: the item arrives under the destination's name ("dir/." too)
      body = packLocal(src, posix.basename(dstPath), counter);
      target = parent;
    }
  }
  const pt = new PassThrough();
  body.on('error', (e) => pt.destroy(e));
  body.pipe(pt);
  await client.empty('PUT', `/containers/${encodeURIComponent(container)}/archive`, {
    query: { path: target, noOverwriteDirNonDir: true, copyUIDGID: o.archive === true },
    headers: { 'Content-Type': 'application/x-tar' }, bodyStream: pt,
  });
  if (ctx.stdio.stderr.isTTY && o.quiet !== true) ctx.err(`Successfully copied ${humanSize(counter.n)} to ${container}:${dstPath}\n`);
}
