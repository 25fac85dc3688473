/**
 * Debian's aardvark-dns (podman's name server for container networks), driven directly: one file per network in
 * its config directory, re-read at SIGHUP. Line 1 of a file is `<gateway> [upstream servers]`, where it binds
 * (port 53); each further line is `<container id> <ipv4s> <ipv6s> <names> [the container's servers]` (lists
 * comma-separated). A container found in several files by its id resolves the names of all its networks, through
 * any of their gateways (as docker's embedded DNS). Unknown names with a dot go to the container's servers, then
 * the network's, then the host's resolv.conf.
 *
 * One aardvark-dns serves every network of a daemon; it outlives the daemon (names resolve through a `kill -9`).
 * A network's file lives as long as the network (not only while it has containers), so a start on a network
 * where nothing runs finds the server up and costs a file write and a signal, not a start of the server; the
 * server is stopped when the daemon's last network goes.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic.js';
import { SystemError } from '../../lib/errors.js';
import { spawnChild, type Child } from '../../lib/exec.js';

export const AARDVARK_BIN = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'].find((p) => existsSync(p)) ?? '/usr/lib/podman/aardvark-dns';

export interface DnsEntry {
  id: string;
  ip: string;
  names: string[];
  /** the container's --dns (its upstream servers) */
  dns: string[];
}

/** Whether the signal reached the process (false when it is gone). */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch { return false; }
}

export class Aardvark {
  private readonly pidFile: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {
    this.pidFile = join(dir, 'aardvark.pid');
  }

  /** One change at a time: a write and its reload (or the server's start) are never interleaved with another's. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Writes a network's file and makes the server see it (a reload, or a start when none runs). */
  update(netId: string, gateway: string, entries: DnsEntry[]): Promise<void> {
    return this.serial(async () => {
      await mkdir(this.dir, { recursive: true });
      // a name or server with a space, a comma or a line break (an alias is any string an API client sends) would
      // split or add fields and lines of the file: such names are left out, never written
      const ok = (x: string) => /^[^\s,]+$/.test(x);
      const lines = [gateway, ...entries.map((e) => `${e.id} ${e.ip}  ${e.names.filter(ok).join(',')}${e.dns.filter(ok).length ? ` ${e.dns.filter(ok).join(',')}` : ''}`)];
      await writeFileAtomic(join(this.dir, netId), lines.join('\n') + '\n', 0o644, { durable: false });
      const pid = await this.livePid();
      if (!pid || !signal(pid, 'SIGHUP')) await this.start(); // gone between the look and the signal: started anew
    });
  }

  /** The network is gone: its file goes; the server is reloaded, or stopped when no network is left. */
  drop(netId: string): Promise<void> {
    return this.serial(async () => {
      await rm(join(this.dir, netId), { force: true });
      const pid = await this.livePid();
      if (!pid) return;
      const left = (await readdir(this.dir).catch(() => [] as string[])).filter((f) => /^[0-9a-f]{64}$/.test(f));
      if (left.length) signal(pid, 'SIGHUP');
      else {
        signal(pid, 'SIGTERM');
        await rm(this.pidFile, { force: true });
      }
    });
  }

  /**
   * The pid of a live aardvark-dns from the pid file, else null (and the file removed). An aardvark that exited
   * stays a zombie until PID 1 reaps it, and a signal to a zombie succeeds: it would pass for a live server. A
   * recycled pid would get the signal too.
   */
  private async livePid(): Promise<number | null> {
    const pid = (await readFile(this.pidFile, 'utf8').catch(() => '')).trim();
    if (!/^\d+$/.test(pid)) return null;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!stat || state === 'Z' || state === 'X' || !cmd.includes('aardvark-dns')) {
      await rm(this.pidFile, { force: true });
      return null;
    }
    return Number(pid);
  }

  /** `aardvark-dns run` forks; its parent exits when the server answers (binds every gateway), with its status. */
  private start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let p: Child;
      try { p = spawnChild(AARDVARK_BIN, ['--config', this.dir, '-p', '53', 'run'], { stdio: ['ignore', 'ignore', 'ignore'] }); } catch (e) {
        return reject(new SystemError(`starting aardvark-dns: ${(e as Error).message}`, { cause: e }));
      }
      p.on('exit', (code, sig) => (code === 0 ? resolve() : reject(new SystemError(`starting aardvark-dns: exit ${code ?? sig}`))));
    });
  }
}
