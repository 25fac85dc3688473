/** Sockets and the pid file: the parts of wharfd that touch the host around the API server. */
import { createConnection } from 'node:net';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Server } from 'node:net';
import { ConfigError } from './config.js';
import { isENOENT } from '../lib/fsutil.js';
import type { Logger } from '../lib/log.js';

/** The gid of a group from /etc/group, or null. */
export function lookupGroup(name: string, groupFile = '/etc/group'): number | null {
  try {
    for (const line of readFileSync(groupFile, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
    }
  } catch (e) { if (!isENOENT(e)) throw e; /* no group file */ }
  return null;
}

/**
 * The default socket (/run/wharf/wharf.sock) lives in the exec root, which is 0700: the socket's group could not
 * reach it. When that group exists, the directory becomes root:<group> 0710: traversable by root and the group
 * only, listable by no one else. The group's members may use the API, which makes them root-equivalent anyway
 * (docker's `docker` group); others still reach nothing inside. Without the group it stays root-only.
 * Returns whether the directory was opened to the group.
 */
export function openDirToGroup(dir: string, group: string, groupFile = '/etc/group'): boolean {
  const gid = lookupGroup(group, groupFile);
  if (gid === null || process.getuid?.() !== 0) return false;
  chownSync(dir, 0, gid);
  chmodSync(dir, 0o710);
  return true;
}

/** True when something accepts connections on the unix socket at path. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ path });
    const done = (v: boolean) => { c.destroy(); resolve(v); };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    setTimeout(() => done(false), 500).unref();
  });
}

/**
 * Listens on a unix socket: creates the parent directory, removes a stale socket (refusing when a live
 * process still answers on it), creates the socket with mode 0660 (no window with wider permissions: the
 * umask is narrowed while binding) owned by root and `group` when that group exists.
 */
export async function listenUnix(server: Server, path: string, group: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let st;
  try { st = lstatSync(path); } catch { st = null; }
  if (st) {
    if (st.isDirectory()) throw new ConfigError(`cannot listen on ${path}: it is a directory`);
    if (st.isSocket() && (await socketAnswers(path))) {
      throw new ConfigError(`cannot listen on ${path}: another process is listening on it (is wharfd already running?)`);
    }
    unlinkSync(path);
  }
  const old = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(path, () => { server.off('error', onError); resolve(); });
    });
  } finally {
    process.umask(old);
  }
  const gid = lookupGroup(group);
  if (process.getuid?.() === 0) chownSync(path, 0, gid ?? 0);
  else if (gid !== null) { try { chownSync(path, process.getuid?.() ?? -1, gid); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e; /* not a member */ } }
  chmodSync(path, 0o660);
}

export async function listenTcp(server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => { server.off('error', onError); resolve(); });
  });
}

/** Whether pid is a live wharfd (a live process whose command line names wharfd or its entry point). */
function isLiveWharfd(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /wharfd|daemon\/main\.js/.test(cmd);
  } catch {
    return true; // alive but unreadable: be safe
  }
}

/**
 * Writes the pid file, refusing when it names a live wharfd (dockerd's "pid file found, ensure docker is
 * not running or delete …"). Returns a function removing it (only if it still holds our pid).
 */
export function writePidfile(path: string, log?: Logger): () => void {
  let existing = '';
  try { existing = readFileSync(path, 'utf8').trim(); } catch (e) { if (!isENOENT(e)) throw e; /* none */ }
  if (existing !== '' && isLiveWharfd(Number(existing))) {
    throw new ConfigError(`pid file found, ensure wharfd is not running or delete ${path}`);
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, `${process.pid}`, { mode: 0o644 });
  return () => {
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch (e) { log?.unlessGone('removing the pid file', { path })(e); }
  };
}
