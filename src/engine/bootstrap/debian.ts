/**
 * debian:<suite> without Docker Hub: `debootstrap --variant=minbase <suite> <dir> <mirror>` (the mirror taken
 * from the host's APT sources, deb.debian.org by default), packed into one layer tar that is cached under
 * <dataRoot>/bootstrap/ (so a second bootstrap, or one after `rmi`, needs no network), then imported with
 * Cmd ["bash"] and tagged debian:<suite>.
 */
import { spawnChild } from '../../lib/exec.js';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { imageFromTar, packDirectory, type BootstrapDeps } from './common.js';
import { goArch, rfc3339 } from '../../lib/go.js';
import { isMissing, missingAs } from '../../lib/fsutil.js';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/** The first Debian (non-security) mirror named in APT's sources (one-line and deb822 formats). */
export async function hostDebianMirror(etcApt = '/etc/apt'): Promise<string> {
  const texts: string[] = [];
  try { texts.push(await readFile(join(etcApt, 'sources.list'), 'utf8')); } catch (e) { if (!isMissing(e)) throw e; /* absent */ }
  try {
    for (const n of (await readdir(join(etcApt, 'sources.list.d'))).sort()) {
      if (n.endsWith('.list') || n.endsWith('.sources')) texts.push(await readFile(join(etcApt, 'sources.list.d', n), 'utf8'));
    }
  } catch (e) { if (!isMissing(e)) throw e; /* absent */ }
  const urls: string[] = [];
  for (const t of texts) {
    for (const raw of t.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      let m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
      if (m) { urls.push(m[1]!); continue; }
      m = /^URIs:\s*(.+)$/i.exec(line);
      if (m) urls.push(...m[1]!.split(/\s+/));
    }
  }
  const good = urls.find((u) => /^https?:\/\//.test(u) && /\/debian\/?$/.test(u) && !/security/.test(u));
  return (good ?? DEFAULT_MIRROR).replace(/\/$/, '');
}

function runLogged(cmd: string, args: string[], progress: ProgressSink): Promise<void> {
  return new Promise((resolve, reject) => {
    let child;
    try { child = spawnChild(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) { return reject(new SystemError(`${cmd}: ${(e as Error).message}`)); }
    let tail = '';
    const onData = (buf: Buffer) => {
      tail = (tail + buf.toString()).slice(-4000);
      for (const line of buf.toString().split('\n')) if (line.trim()) progress({ status: line.trim() });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('close', (code: number | null) => (code === 0 ? resolve() : reject(new SystemError(`${cmd} exited with status ${code}: ${tail.trim().split('\n').pop() ?? ''}`))));
  });
}

/** Paths left out of the image: device nodes, caches, APT lists (as Docker's official debian images do). */
export function debianExclude(rel: string): boolean {
  return /^(dev|proc|sys|run)\/./.test(rel)
    || /^var\/cache\/apt\/(archives\/.*\.deb|.*\.bin)$/.test(rel)
    || /^var\/lib\/apt\/lists\/[^/]+$/.test(rel) && !rel.endsWith('/partial') && !rel.endsWith('lock')
    || /^var\/log\/(bootstrap\.log|dpkg\.log|apt\/.+)$/.test(rel)
    || rel === 'debootstrap';
}

export async function bootstrapDebian(deps: BootstrapDeps, suite: string, progress: ProgressSink): Promise<Digest> {
  if (!/^[a-z][a-z0-9-]*$/.test(suite)) throw new InvalidParameterError(`invalid Debian suite: ${JSON.stringify(suite)}`);
  const cacheDir = join(deps.dataRoot, 'bootstrap');
  await mkdir(cacheDir, { recursive: true });
  const cached = join(cacheDir, `debian-${suite}-${goArch()}.tar`);
  let st = await stat(cached).catch(missingAs(null));
  if (!st) {
    const mirror = await hostDebianMirror();
    const work = await mkdtemp(join(cacheDir, `.work-${suite}-`));
    try {
      const rootfs = join(work, 'rootfs');
      progress({ status: `Running debootstrap --variant=minbase ${suite} from ${mirror}` });
      await runLogged('debootstrap', ['--variant=minbase', suite, rootfs, mirror], progress);
      // a clean sources.list like the official image's, and no resolv.conf from the host
      progress({ status: 'Packing root filesystem' });
      const tmp = join(work, 'rootfs.tar');
      const mtime = (await stat(join(rootfs, 'var/lib/dpkg/status'))).mtime;
      await pipeline(packDirectory(rootfs, debianExclude, new Date(Math.floor(mtime.getTime() / 1000) * 1000)), createWriteStream(tmp));
      await rename(tmp, cached);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    st = await stat(cached);
  } else progress({ status: `Using cached ${cached}` });
  const created = rfc3339(new Date(Math.floor(st.mtimeMs / 1000) * 1000));
  return imageFromTar(deps, createReadStream(cached), { cmd: ['bash'], created, ref: `debian:${suite}` }, progress);
}
