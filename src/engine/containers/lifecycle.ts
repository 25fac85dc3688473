/**
 * Running containers (issue 5, slice 2): start (RW layer mounted, buildSpec, conmon+runc create/start), the exit
 * monitor (state, exit code, unmount, AutoRemove), wait conditions, attach (before start: the attachment is taken
 * between runtime create and start, so nothing is missed), logs, stop and kill.
 *
 * Networking: "host", "none", "default"/"bridge" and user-defined networks through engine/network's
 * NetworkService (netns, veth and IP made before the runtime runs, ports through the userland proxy); without a
 * NetworkService, default falls back to the host's network namespace.
 */
import { chmod, chown, lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ConflictError, InvalidParameterError, NotFoundError, NotModifiedError, SystemError } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/atomic.js';
import { mkdirAllInRoot, extractIntoRoot, packFromRoot } from '../fsroot/index.js';
import type { LayerStore } from '../layers/types.js';
import { buildSpec, writeBundle, type NetworkMode } from '../runtime/index.js';
import { createOptionsOf, namespaceOptionsOf, parseBind, specOptionsOf } from './hostconfig.js';
import { RuntimeError, type AttachHandle, type Runtime } from '../runtime/index.js';
import { readLogs, type LogRecord } from '../runtime/index.js';
import { type ContainerNet, type ContainerRecord, type ContainerService, type MountPoint } from './service.js';
import type { AttachStreams } from './types.js';

import { boundPorts, linkEnv, linkHost, parseLink, type Endpoint, type LinkedContainer, type NetworkService, type PortMapping } from '../network/index.js';
import { isENOENT, missingAs } from '../../lib/fsutil.js';
import { parseSignal, SIGKILL } from '../../lib/signals.js';
import { memoryCgroupOf, oomKills } from './stats.js';
import { rfc3339NanoFixed } from '../../lib/go.js';
import { discardLogger, type Logger } from '../../lib/log.js';
import { execCollect } from '../../lib/exec.js';

export type { AttachStreams } from './types.js';

/** HostConfig.Binds ("/host:/ctr[:ro|rw][,propagation]") as runtime binds; a missing host directory is created, as dockerd does. */
export async function bindsOf(hc: Record<string, unknown>): Promise<{ source: string; destination: string; readonly?: boolean; propagation?: string }[]> {
  const out: { source: string; destination: string; readonly?: boolean; propagation?: string }[] = [];
  for (const b of (Array.isArray(hc.Binds) ? hc.Binds : []) as string[]) {
    const p = parseBind(b);
    if (p.volume) throw new InvalidParameterError(`named volumes are not supported yet: '${b}'`);
    await mkdir(p.source, { recursive: true });
    out.push({ source: p.source, destination: p.destination, ...(!p.rw ? { readonly: true } : {}), ...(p.propagation ? { propagation: p.propagation } : {}) });
  }
  return out;
}

/**
 * docker's copy-up: the image's directory at `destination` (resolved inside the rootfs) copied into the empty
 * volume directory `volume`, which takes the directory's owner and mode. Both sides are handled by chrooted
 * workers (one packs inside the rootfs, one extracts inside the volume), so an image's symlinks (absolute or
 * "../") lead nowhere outside either. Devices and sockets are not copied.
 */
async function copyUp(rootfs: string, destination: string, volume: string): Promise<void> {
  let src: Awaited<ReturnType<typeof packFromRoot>>;
  try {
    src = await packFromRoot(rootfs, destination.replace(/\/*$/, '') + '/.', destination);
  } catch (e) {
    if (e instanceof NotFoundError) return; // nothing in the image there
    throw e;
  }
  if (!(src.stat.mode & 2 ** 31)) { src.tar.destroy(); return; } // not a directory: the volume stays empty
  await extractIntoRoot(volume, '/', src.tar, { label: 'volume', noOverwriteDirNonDir: false, copyUIDGID: true });
  await chown(volume, src.owner.uid, src.owner.gid);
  await chmod(volume, src.owner.mode & 0o7777);
}

/**
 * The runtime binds of recorded mount points. A bind source that does not exist is created (as dockerd does);
 * an empty volume mounted where the image has content gets a copy of it first (docker's copy-up).
 */
export async function mountsOf(mps: MountPoint[], rootfs: string): Promise<{ source: string; destination: string; readonly?: boolean; propagation?: string }[]> {
  const out: { source: string; destination: string; readonly?: boolean; propagation?: string }[] = [];
  for (const m of mps) {
    // a bind of a file (docker -v /f:/f, a build secret) is used as it is; only a missing source becomes a directory
    if (m.Type === 'bind') await mkdir(m.Source, { recursive: true }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
    else {
      await mkdir(m.Source, { recursive: true });
      if ((await readdir(m.Source)).length === 0) await copyUp(rootfs, m.Destination, m.Source);
    }
    const opts = m.Mode.split(',').filter(Boolean);
    const prop = opts.find((o) => /^r?(shared|slave|private)$/.test(o));
    out.push({ source: m.Source, destination: m.Destination, ...(!m.RW ? { readonly: true } : {}), ...(prop ? { propagation: prop } : {}) });
  }
  return out;
}

/**
 * The timeline of a start or an exit, for the debug log (`container started`, `container exit handled`): each
 * mark is when that step ended, in ms since the beginning (steps that run side by side end at their own times).
 */
function phases(): { mark(name: string): void; fields(): Record<string, string> } {
  const t0 = performance.now();
  const out: Record<string, string> = {};
  return {
    mark(name) { out[`ms_${name}`] = (performance.now() - t0).toFixed(1); },
    fields() { return { ...out, ms_total: (performance.now() - t0).toFixed(1) }; },
  };
}

type Waiter = { condition: string; resolve: (v: { StatusCode: number; Error: { Message: string } | null }) => void };

export class ContainerRunner {
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly pendingAttach = new Map<string, { s: AttachStreams; done: (h: AttachHandle | null) => void }[]>();
  private readonly monitors = new Map<string, Promise<void>>();
  /** Healthchecks (health.ts), started with each run of a container that has one, stopped at its exit. */
  health?: { start(r: ContainerRecord): void; stop(id: string): void };
  /** Running containers' memory cgroups, read at exit for the kernel's OOM kills (State.OOMKilled). */
  private readonly memCgroups = new Map<string, { dir: string; v2: boolean }>();

  constructor(
    private readonly c: ContainerService, private readonly rt: Runtime, private readonly layers: LayerStore,
    private readonly execRoot: string, private readonly net?: NetworkService,
    private readonly log: Logger = discardLogger,
  ) {
    c.stopHook = async (r) => {
      if (r.State.Paused) await this.unpause(r.ID).catch(this.log.onError('unpausing a container to remove it', { container: r.ID }));
      await this.kill(r.ID, 'KILL').catch((e) => { if (!(e instanceof ConflictError)) this.log.warn('killing a container to remove it', { container: r.ID, error: e }); });
      await this.monitors.get(r.ID);
    };
  }

  logPath(id: string): string { return join(this.c.dir(id), 'container.log'); }

  /** After a daemon restart: containers still running under conmon get a monitor again; the others their exit. */
  async recover(): Promise<void> {
    for (const r of this.c.all()) {
      const policy = (r.HostConfig.RestartPolicy as { Name?: string } | undefined)?.Name;
      if (!r.State.Running && r.State.Status !== 'created' && (policy === 'always' || (policy === 'unless-stopped' && !r.ManuallyStopped))) {
        // docker: on daemon start, "always" containers come back even after a manual stop, "unless-stopped" ones unless stopped
        await this.start(r.ID, { byPolicy: true }).catch(this.log.onError('restarting a container (restart policy) at daemon start', { container: r.ID }, 'error'));
        continue;
      }
      if (!r.State.Running) continue;
      try {
        const st = await this.rt.state(r.ID);
        st.status = await this.undoDaemonPause(r, st.status) as typeof st.status;
        if (st.status === 'running' || st.status === 'paused') {
          // its netns and veth outlived us; the port proxies lived in the old daemon: bind them again
          const ep = this.net && r.Net ? await this.net.restore(r.ID) : null;
          if (ep) r.Net = this.netInfo(r, ep, await this.net!.publish(ep, this.boundMappings(r)).catch((e) => { this.log.warn('publishing ports again after a daemon restart', { container: r.ID, error: e }); return []; }));
          const cg = await memoryCgroupOf(r.State.Pid);
          if (cg) this.memCgroups.set(r.ID, cg);
          this.monitor(r);
          this.health?.start(r);
          continue;
        }
        await this.exited(r, st.exitCode ?? 255, st.finishedAt);
      } catch (e) {
        // its runtime state gone (a reboot emptied the exec root) is an event; any other failure a problem
        if (e instanceof NotFoundError) this.log.info('container runtime state gone after a daemon restart: recorded as exited (255)', { container: r.ID });
        else this.log.warn('container state unreadable after a daemon restart: recorded as exited (255)', { container: r.ID, error: e });
        await this.exited(r, 255);
      }
    }
  }

  private modeOf(r: ContainerRecord): 'none' | 'host' | 'bridge' | 'user' {
    const m = String(r.HostConfig.NetworkMode ?? 'default');
    if (m === 'none' || m === 'host') return m;
    if (m === 'default' || m === 'bridge') return this.net ? 'bridge' : 'host';
    if (this.net?.isUserNetwork(m)) return 'user';
    throw new NotFoundError(`network ${m} not found`);
  }

  /** HostConfig.PortBindings (and -P: every exposed port on a free host port) as proxy mappings. */
  private portMappings(r: ContainerRecord): PortMapping[] {
    const out: PortMapping[] = [];
    const pb = (r.HostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>;
    const keys = new Set(Object.keys(pb));
    if (r.HostConfig.PublishAllPorts) for (const k of Object.keys(r.Config.ExposedPorts ?? {})) keys.add(k);
    for (const k of keys) {
      const [port, proto = 'tcp'] = k.split('/') as [string, string | undefined];
      const bs = pb[k] && pb[k]!.length ? pb[k]! : [{}];
      for (const b of bs) {
        out.push({ hostIp: b.HostIp ?? '', hostPort: Number(b.HostPort || 0), containerPort: Number(port), proto: proto === 'udp' ? 'udp' : 'tcp' });
      }
    }
    return out;
  }

  /** After a daemon restart: the host ports the container had (a random one stays the same), else its mappings. */
  private boundMappings(r: ContainerRecord): PortMapping[] {
    const out = boundPorts(r.Net?.Ports);
    return out.length ? out : this.portMappings(r);
  }

  private async connectNet(r: ContainerRecord): Promise<{ spec: NetworkMode; ep: Endpoint | null }> {
    const mode = this.modeOf(r);
    if (mode !== 'bridge' && mode !== 'user') return { spec: { mode }, ep: null };
    const ep = await this.net!.connect(r, mode);
    try {
      const bound = await this.net!.publish(ep, this.portMappings(r));
      r.Net = this.netInfo(r, ep, bound);
    } catch (e) {
      await this.net!.disconnect(r.ID).catch(this.log.onError('disconnecting after a failed port publish', { container: r.ID }));
      throw e;
    }
    return { spec: { mode: 'path', path: ep.netnsPath! }, ep };
  }

  private netInfo(r: ContainerRecord, ep: Endpoint, bound: { hostIp: string; hostPort: number; containerPort: number; proto: string }[]): ContainerNet {
    const ports: ContainerNet['Ports'] = {};
    for (const k of Object.keys(r.Config.ExposedPorts ?? {})) ports[k.includes('/') ? k : `${k}/tcp`] = null;
    for (const b of bound) {
      const k = `${b.containerPort}/${b.proto}`;
      (ports[k] ??= []).push({ HostIp: b.hostIp || '0.0.0.0', HostPort: String(b.hostPort) });
    }
    // docker fills the top-level addresses for the default bridge only
    if (ep.nameservers) return { Mode: String(r.HostConfig.NetworkMode), IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '', Ports: ports };
    return { Mode: 'bridge', IPAddress: ep.ip ?? '', IPPrefixLen: ep.prefixLen ?? 0, Gateway: ep.gateway ?? '', MacAddress: ep.mac ?? '', Ports: ports };
  }

  /** --link on the default bridge: each linked container, which must be running there. */
  private linksOf(r: ContainerRecord, ep: Endpoint | null): LinkedContainer[] {
    if (!ep || ep.nameservers || !Array.isArray(r.HostConfig.Links)) return [];
    return (r.HostConfig.Links as string[]).map((spec) => {
      const { name, alias } = parseLink(spec);
      const child = this.c.get(name);
      if (!child.State.Running || !child.Net?.IPAddress) throw new InvalidParameterError(`Cannot link to a non running container: ${child.Name} AS /${r.Name.slice(1)}/${alias}`);
      return {
        alias, parentName: r.Name.slice(1), name: child.Name.slice(1), hostname: String(child.Config.Hostname ?? child.ID.slice(0, 12)),
        ip: child.Net.IPAddress, env: child.Config.Env ?? [], exposedPorts: Object.keys(child.Config.ExposedPorts ?? {}),
      };
    });
  }

  /**
   * `opts.processEnv`: variables for this start's process only (a build step's secrets, RUN
   * --mount=type=secret,env=): in the runtime's spec, never in the container's record or inspect.
   */
  async start(ref: string, opts: { byPolicy?: boolean; processEnv?: readonly string[] } = {}): Promise<void> {
    const byPolicy = opts.byPolicy ?? false;
    const r = this.c.get(ref);
    if (r.State.Running) throw new NotModifiedError('container already started');
    if (!byPolicy) { r.ManuallyStopped = false; r.RestartCount = 0; }
    if (r.State.Status === 'removing') throw new ConflictError(`container is marked for removal and cannot be started`);
    const id = r.ID;
    const bundle = join(this.execRoot, 'bundles', id);
    const ph = phases();
    await this.rt.delete(id, true).catch(this.log.unlessGone('removing leftover runtime state', { container: id }));
    let rootfs: string | undefined;
    let created = false;
    let netUp = false;
    try {
      // the root filesystem and the network are independent: made side by side (each undoes itself on failure)
      const [mounted, connected] = await Promise.allSettled([
        // an --rm container's writes go with it: no sync of its upper dir at unmount (overlayfs' volatile)
        this.layers.mount(id, { volatile: !!r.HostConfig.AutoRemove }).then((p) => { ph.mark('mount'); return p; }),
        this.connectNet(r).then((n) => { ph.mark('network'); return n; }),
      ]);
      if (mounted.status === 'fulfilled') rootfs = mounted.value;
      if (connected.status === 'fulfilled') netUp = true;
      if (mounted.status === 'rejected') throw mounted.reason;
      if (connected.status === 'rejected') throw connected.reason;
      const net = connected.value;
      const root = mounted.value;
      // docker creates the WORKDIR before the process starts; resolved inside the rootfs (openat2), never on the host
      if (r.Config.WorkingDir && !mkdirAllInRoot(root, r.Config.WorkingDir)) {
        throw new InvalidParameterError(`Cannot mkdir: ${r.Config.WorkingDir} is not a directory`);
      }
      const hc = r.HostConfig;
      const links = this.linksOf(r, net.ep);
      const binds = r.MountPoints ? await mountsOf(r.MountPoints, root) : await bindsOf(hc);
      const spec = await buildSpec({
        id, rootfs: root, args: [r.Path, ...r.Args], env: [...links.flatMap(linkEnv), ...(r.Config.Env ?? []), ...(opts.processEnv ?? [])], cwd: r.Config.WorkingDir || '/',
        user: r.Config.User ?? '', terminal: !!r.Config.Tty, hostname: r.Config.Hostname ?? id.slice(0, 12),
        containerDir: this.c.dir(id), network: net.spec, ...(net.ep?.ip ? { ip: net.ep.ip } : {}),
        ...(net.ep?.nameservers ?? net.ep?.dns ? { dns: (net.ep.nameservers ?? net.ep.dns)! } : Array.isArray(hc.Dns) && hc.Dns.length ? { dns: hc.Dns as string[] } : {}),
        ...(Array.isArray(hc.ExtraHosts) || links.length ? { extraHosts: [...((hc.ExtraHosts ?? []) as string[]), ...links.map(linkHost)] } : {}),
        ...(Array.isArray(hc.DnsSearch) && hc.DnsSearch.length ? { dnsSearch: hc.DnsSearch as string[] } : {}),
        ...(Array.isArray(hc.DnsOptions) && hc.DnsOptions.length ? { dnsOptions: hc.DnsOptions as string[] } : {}),
        ...(typeof r.Config.Domainname === 'string' && r.Config.Domainname ? { domainname: r.Config.Domainname } : {}),
        ...specOptionsOf(hc),
        ...namespaceOptionsOf(hc, this.c.dir(id), (ref) => {
          const o = this.c.get(ref);
          return { id: o.ID, running: o.State.Running, pid: o.State.Pid, ipcMode: String(o.HostConfig.IpcMode ?? ''), dir: this.c.dir(o.ID) };
        }),
        binds,
      });
      await writeBundle(bundle, spec);
      ph.mark('spec');
      const stdio = r.Config.Tty ? 'tty' : r.Config.OpenStdin ? 'pipes' : 'null';
      const cs = hc.ConsoleSize as number[] | undefined;
      const { pid } = await this.rt.create(id, bundle, {
        stdio, logPath: this.logPath(id), ...createOptionsOf(hc),
        ...(r.Config.Tty && cs && cs[0] && cs[1] ? { consoleSize: { height: cs[0], width: cs[1] } } : {}),
      });
      created = true;
      ph.mark('create');
      // the init exists (waiting for start): its cgroups are known now, before it can exit
      const cg = await memoryCgroupOf(pid);
      if (cg) this.memCgroups.set(id, cg); else this.memCgroups.delete(id);
      // attachments made before start get the container's streams now, before it runs
      const pend = this.pendingAttach.get(id) ?? [];
      this.pendingAttach.delete(id);
      for (const p of pend) p.done(await this.connect(id, p.s).catch((e) => { this.log.warn('attaching before start', { container: id, error: e }); return null; }));
      ph.mark('attach');
      await this.rt.start(id);
      ph.mark('start');
      r.State = { ...r.State, Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Pid: pid, ExitCode: 0, Error: '', StartedAt: rfc3339NanoFixed(new Date()), FinishedAt: '0001-01-01T00:00:00Z' };
      // not synced: after a power loss the container is not running, whatever this says (recover() checks)
      await this.c.save(r, { durable: false });
      ph.mark('record');
      this.log.debug('container started', { container: id, ...ph.fields() });
      this.monitor(r);
      for (const m of r.MountPoints ?? []) {
        if (m.Type === 'volume' && m.Name) this.c.events?.publish('volume', 'mount', m.Name, { container: r.ID, destination: m.Destination, driver: 'local', propagation: '', 'read/write': String(m.RW) });
      }
      this.c.emit(r, 'start');
      this.health?.start(r);
    } catch (e) {
      if (created) await this.rt.delete(id, true).catch(this.log.onError('removing runtime state after a failed start', { container: id }));
      if (netUp && this.net) await this.net.disconnect(id).catch(this.log.onError('disconnecting after a failed start', { container: id }));
      delete r.Net;
      if (rootfs !== undefined) await this.layers.unmount(id).catch(this.log.onError('unmounting after a failed start', { container: id }));
      for (const p of this.pendingAttach.get(id) ?? []) p.done(null);
      this.pendingAttach.delete(id);
      // as dockerd's start: any failure (runtime, network, ports, mounts) is recorded, wakes the waiters, and
      // with AutoRemove removes the container (the docker CLI waits for `removed` after a failed start)
      const msg = (e as Error).message;
      if (e instanceof RuntimeError) {
        const m = e.runtimeMessage;
        r.State.ExitCode = /executable file not found|no such file or directory/.test(m) ? 127 : /permission denied/.test(m) ? 126 : 128;
      } else if (r.State.ExitCode === 0) r.State.ExitCode = 255;
      r.State.Error = msg;
      await this.c.save(r).catch(this.log.onError('recording a failed start', { container: id }, 'error'));
      this.notify(r, r.State.ExitCode, msg);
      // the removal's waiters get no error (dockerd's: the docker CLI reports the start error itself)
      if (r.HostConfig.AutoRemove) { r.State.Error = ''; await this.autoRemove(r); }
      if (e instanceof RuntimeError) throw new InvalidParameterError(msg, { cause: e });
      throw e;
    }
  }

  private monitor(r: ContainerRecord): void {
    const p = (async () => {
      let code = 255;
      try { code = await this.rt.wait(r.ID); } catch (e) { this.log.warn('waiting for a container failed: exit code unknown (255)', { container: r.ID, error: e }); }
      await this.exited(r, code);
    })();
    this.monitors.set(r.ID, p);
    void p.finally(() => { if (this.monitors.get(r.ID) === p) this.monitors.delete(r.ID); });
  }

  private async exited(r: ContainerRecord, code: number, at?: Date): Promise<void> {
    this.health?.stop(r.ID);
    // the cgroup goes with the runtime's delete: its OOM kill count is read first
    const cg = this.memCgroups.get(r.ID);
    this.memCgroups.delete(r.ID);
    const ph = phases();
    const oomKilled = cg ? (await oomKills(cg).catch((e) => { this.log.warn('reading the OOM kill count', { container: r.ID, error: e }); return 0; })) > 0 : false;
    // the runtime's state (then the bundle), the network and the root filesystem are undone side by side: the
    // container's processes are gone (its init's exit ended its PID namespace), so none waits for another
    await Promise.all([
      this.rt.delete(r.ID, true).catch(this.log.unlessGone('removing runtime state of an exited container', { container: r.ID }))
        .then(() => { ph.mark('runtime'); return rm(join(this.execRoot, 'bundles', r.ID), { recursive: true, force: true }); })
        .catch(this.log.onError('removing the bundle of an exited container', { container: r.ID })),
      this.net?.disconnect(r.ID).then(() => ph.mark('network')).catch(this.log.onError('disconnecting an exited container', { container: r.ID })),
      this.layers.unmount(r.ID).then(() => ph.mark('unmount')).catch(this.log.onError('unmounting an exited container', { container: r.ID })),
      // a commit's pause that could not be undone (the container exited meanwhile) leaves no marker behind
      rm(this.daemonPauseMarker(r.ID), { force: true }).catch(this.log.onError('removing a pause marker', { container: r.ID })),
    ]);
    delete r.Net;
    r.State = { ...r.State, Status: 'exited', Running: false, Paused: false, OOMKilled: oomKilled, Pid: 0, ExitCode: code, FinishedAt: rfc3339NanoFixed(at ?? new Date()) };
    if (oomKilled) this.c.emit(r, 'oom');
    const restart = !r.HostConfig.AutoRemove && this.shouldRestart(r, code);
    if (restart) {
      r.State.Restarting = true;
      r.State.Status = 'restarting';
    }
    // an --rm container's record goes right after: its exit state need not be synced
    await this.c.save(r, { durable: !r.HostConfig.AutoRemove }).catch(this.log.onError('writing the exit state', { container: r.ID, exitCode: code }, 'error'));
    ph.mark('record');
    this.c.emit(r, 'die', { exitCode: String(code) });
    for (const m of r.MountPoints ?? []) if (m.Type === 'volume' && m.Name) this.c.events?.publish('volume', 'unmount', m.Name, { container: r.ID, driver: 'local' });
    // as dockerd's waitStop: every exit ends a wait, a restart to come or not
    this.notify(r, code, null);
    if (r.HostConfig.AutoRemove) { await this.autoRemove(r); ph.mark('remove'); }
    this.log.debug('container exit handled', { container: r.ID, ...ph.fields() });
    if (restart) {
      // docker's back-off: 100 ms doubling with every restart, at most 1 minute
      const delay = Math.min(60_000, 100 * 2 ** Math.min(r.RestartCount, 10));
      setTimeout(() => {
        // as dockerd: the container stays `restarting` until the policy's start has it running (or failed)
        if (r.ManuallyStopped || !this.c.all().includes(r)) { r.State.Restarting = false; r.State.Status = 'exited'; void this.c.save(r).catch(this.log.onError('writing the exit state', { container: r.ID }, 'error')); this.notify(r, code, null); return; }
        r.RestartCount++;
        const started = this.start(r.ID, { byPolicy: true }).catch((e) => { this.log.error('restarting a container (restart policy)', { container: r.ID, error: e }); r.State.Restarting = false; r.State.Status = 'exited'; void this.c.save(r).catch(this.log.onError('writing the exit state', { container: r.ID }, 'error')); this.notify(r, code, null); });
        this.policyStarts.set(r.ID, started);
        void started.finally(() => { if (this.policyStarts.get(r.ID) === started) this.policyStarts.delete(r.ID); });
      }, delay).unref();
    }
  }

  private shouldRestart(r: ContainerRecord, code: number): boolean {
    const p = (r.HostConfig.RestartPolicy ?? {}) as { Name?: string; MaximumRetryCount?: number };
    if (r.ManuallyStopped) return false;
    switch (p.Name) {
      case 'always': case 'unless-stopped': return true;
      case 'on-failure': return code !== 0 && (!p.MaximumRetryCount || r.RestartCount < p.MaximumRetryCount);
      default: return false;
    }
  }

  private async autoRemove(r: ContainerRecord): Promise<void> {
    try { await this.c.remove(r.ID, { force: true, volumes: true }); } catch (e) { this.log.unlessGone('removing a container (--rm)', { container: r.ID })(e); }
    this.notifyRemoved(r);
  }

  private notify(r: ContainerRecord, code: number, err: string | null): void {
    const ws = this.waiters.get(r.ID) ?? [];
    const keep: Waiter[] = [];
    for (const w of ws) {
      if (w.condition === 'removed') { keep.push(w); continue; }
      w.resolve({ StatusCode: code, Error: err === null ? null : { Message: err } });
    }
    if (keep.length) this.waiters.set(r.ID, keep); else this.waiters.delete(r.ID);
  }

  notifyRemoved(r: ContainerRecord): void {
    for (const w of this.waiters.get(r.ID) ?? []) w.resolve({ StatusCode: r.State.ExitCode, Error: r.State.Error ? { Message: r.State.Error } : null });
    this.waiters.delete(r.ID);
  }

  /** POST /containers/{id}/wait: resolves when the condition is met. */
  wait(ref: string, condition: string): Promise<{ StatusCode: number; Error: { Message: string } | null }> {
    const r = this.c.get(ref);
    const cond = condition || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw new InvalidParameterError(`invalid condition: "${condition}"`);
    // a container in its restart back-off counts as running (dockerd): the wait ends at its next exit
    if (cond === 'not-running' && !r.State.Running && !r.State.Restarting) return Promise.resolve({ StatusCode: r.State.ExitCode, Error: null });
    return new Promise((resolve) => {
      const list = this.waiters.get(r.ID) ?? [];
      list.push({ condition: cond, resolve });
      this.waiters.set(r.ID, list);
    });
  }

  private async connect(id: string, s: AttachStreams): Promise<AttachHandle> {
    const h = await this.rt.attach(id);
    h.stdout.on('data', (b: Buffer) => s.stdout?.(b));
    h.stderr.on('data', (b: Buffer) => s.stderr?.(b));
    if (s.stdin) s.stdin.pipe(h.stdin as Writable); else (h.stdin as Writable).on('error', () => {});
    return h;
  }

  /**
   * Attaches to a container: running → now; created → at its next start; exited → nothing (ends at once).
   * Resolves when the attachment ends.
   */
  async attach(ref: string, s: AttachStreams, opts: { logs: boolean; stream: boolean }): Promise<void> {
    const r = this.c.get(ref);
    if (opts.logs) {
      for await (const rec of this.logs(r.ID, { follow: false })) (rec.stream === 'stdout' ? s.stdout : s.stderr)?.(rec.data);
    }
    if (!opts.stream) return;
    this.c.emit(r, 'attach');
    let h: AttachHandle | null;
    if (r.State.Running) {
      h = await this.connect(r.ID, s);
    } else if (r.State.Status === 'created' || r.State.Status === 'exited') {
      h = await new Promise<AttachHandle | null>((done) => {
        const list = this.pendingAttach.get(r.ID) ?? [];
        list.push({ s, done });
        this.pendingAttach.set(r.ID, list);
      });
    } else return;
    if (h) await h.done;
  }

  /**
   * POST /containers/{id}/kill. As dockerd: with SIGKILL (the default) it returns once the container is no longer
   * running (its exit handled: `kill && rm` works); any other signal returns once it is sent.
   */
  async kill(ref: string, signal: string): Promise<void> {
    const r = this.c.get(ref);
    const sig = parseSignal(signal || 'KILL');
    await this.policyStartSettled(r.ID);
    // as dockerd: a container waiting to be restarted counts as running; killing it only cancels the restart
    if (r.State.Restarting) { await this.cancelRestart(r); return; }
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    r.ManuallyStopped = true;
    const exited = this.monitors.get(r.ID);
    // docker kill signals the container's PID 1 only (a PID namespace ends with it); a paused container's SIGKILL
    // goes through the runtime's kill --all, which thaws it
    // the runtime says the process is gone while its exit is still being handled: as dockerd (no such process
    // during a kill), the kill succeeded — the container is exiting
    const gone = await this.rt.kill(r.ID, String(sig), sig === SIGKILL && r.State.Paused).then(() => false, (e) => {
      if (e instanceof ConflictError && exited) return true;
      if (e instanceof ConflictError) throw new ConflictError(`Container ${r.ID} is not running`);
      throw e;
    });
    if (gone) this.log.debug('kill: the process had already exited; waiting for its exit to be handled', { container: r.ID });
    this.c.emit(r, 'kill', { signal: String(sig) });
    if (sig !== SIGKILL || !exited) return;
    // as dockerd: wait (10 s at most) for the exit to be handled; a paused container is thawed by the runtime's kill --all
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((res) => { timer = setTimeout(() => res(true), 10_000); timer.unref(); }),
    ]);
    clearTimeout(timer);
    if (gaveUp) throw new SystemError('tried to kill container, but did not receive an exit event');
  }

  /**
   * Restarts by policy under way (the back-off is over, `start` has not finished): a stop or kill meanwhile waits for
   * it and then acts on the running container — else it would answer "already stopped" while the start goes on.
   */
  private readonly policyStarts = new Map<string, Promise<void>>();

  private async policyStartSettled(id: string): Promise<void> {
    await this.policyStarts.get(id);
  }

  /** A container in its restart back-off stays stopped: the pending restart sees ManuallyStopped and gives up. */
  private async cancelRestart(r: ContainerRecord): Promise<void> {
    r.ManuallyStopped = true;
    r.State = { ...r.State, Restarting: false, Status: 'exited' };
    await this.c.save(r);
    this.notify(r, r.State.ExitCode, null);
  }

  /** POST /containers/{id}/stop: StopSignal (SIGTERM), then SIGKILL after t seconds (default 10). */
  async stop(ref: string, t: number | undefined): Promise<void> {
    const r = this.c.get(ref);
    await this.policyStartSettled(r.ID);
    if (r.State.Restarting) { await this.cancelRestart(r); return; }
    if (!r.State.Running) throw new NotModifiedError('container already stopped');
    r.ManuallyStopped = true;
    const secs = t ?? (typeof r.Config.StopTimeout === 'number' ? r.Config.StopTimeout : 10);
    const exited = this.monitors.get(r.ID) ?? Promise.resolve();
    if (r.State.Paused) await this.unpause(r.ID).catch(this.log.onError('unpausing a container to stop it', { container: r.ID }));
    const stopSignal = parseSignal((r.Config.StopSignal as string | undefined) || 'TERM');
    await this.rt.kill(r.ID, String(stopSignal)).catch((e) => { if (!(e instanceof ConflictError)) this.log.warn('sending the stop signal', { container: r.ID, error: e }); });
    this.c.emit(r, 'kill', { signal: String(stopSignal) });
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((res) => setTimeout(() => res(true), Math.max(0, secs) * 1000).unref())]);
    if (timedOut) {
      await this.rt.kill(r.ID, 'KILL', true).catch((e) => { if (!(e instanceof ConflictError)) this.log.warn('killing a container after the stop timeout', { container: r.ID, error: e }); });
      this.c.emit(r, 'kill', { signal: String(SIGKILL) });
      await exited;
    }
    this.c.emit(r, 'stop');
  }

  /** GET /containers/{id}/logs as records. */
  async *logs(ref: string, o: { follow: boolean; since?: number; until?: number; tail?: number }): AsyncGenerator<LogRecord> {
    const r = this.c.get(ref);
    const stopped = r.State.Running ? (this.monitors.get(r.ID) ?? Promise.resolve()) : Promise.resolve();
    try {
      yield* readLogs(this.logPath(r.ID), {
        follow: o.follow && r.State.Running, stopped,
        ...(o.since !== undefined ? { since: o.since } : {}), ...(o.until !== undefined ? { until: o.until } : {}),
        ...(o.tail !== undefined ? { tail: o.tail } : {}),
      });
    } catch (e) {
      if (isENOENT(e)) return;
      throw e;
    }
  }

  /**
   * The marker of a pause the daemon made for itself (commit's freeze), in the container's directory: written
   * (durably) before the runtime pauses, removed after it resumes, so that a daemon killed in between finds it at
   * start and unpauses the container (recover()), while a container the user paused stays paused.
   */
  private daemonPauseMarker(id: string): string { return join(this.c.dir(id), 'paused-by-daemon'); }

  /** `opts.byDaemon`: a pause of the daemon's own (commit), undone by recover() if the daemon dies meanwhile. */
  async pause(ref: string, opts: { byDaemon?: boolean } = {}): Promise<void> {
    const r = this.c.get(ref);
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    if (r.State.Paused) throw new ConflictError(`Container ${r.ID} is already paused`);
    if (opts.byDaemon) await writeFileAtomic(this.daemonPauseMarker(r.ID), 'commit\n', 0o600);
    try {
      await this.rt.pause(r.ID);
    } catch (e) {
      if (opts.byDaemon) await rm(this.daemonPauseMarker(r.ID), { force: true });
      throw e;
    }
    r.State = { ...r.State, Paused: true, Status: 'paused' };
    await this.c.save(r);
    this.c.emit(r, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const r = this.c.get(ref);
    if (!r.State.Paused) throw new ConflictError(`Container ${r.ID} is not paused`);
    await this.rt.unpause(r.ID);
    r.State = { ...r.State, Paused: false, Status: 'running' };
    await this.c.save(r);
    await rm(this.daemonPauseMarker(r.ID), { force: true });
    this.c.emit(r, 'unpause');
  }

  /**
   * commit's freeze: pauses a running container for the read of its changes; false (nothing paused) when it is no
   * longer running by then — a container exiting meanwhile is committed as it is, as dockerd does.
   */
  async freeze(ref: string): Promise<boolean> {
    const r = this.c.get(ref);
    if (!r.State.Running || r.State.Paused) return false;
    try {
      await this.pause(r.ID, { byDaemon: true });
      return true;
    } catch (e) {
      if (!r.State.Running) return false;
      const st = await this.rt.state(r.ID).catch(() => null);
      if (!st || st.status === 'stopped') return false;
      throw e;
    }
  }

  /**
   * recover(): a container the previous daemon paused for itself (the marker) is resumed, whatever its record
   * says (the daemon may have died between the runtime's pause and the record's save); the marker goes.
   */
  private async undoDaemonPause(r: ContainerRecord, status: string): Promise<string> {
    const marker = this.daemonPauseMarker(r.ID);
    if (!(await lstat(marker).then(() => true, missingAs(false)))) return status;
    if (status === 'paused') {
      // a runtime refusing the resume leaves the container paused (as the record then says), not lost
      if (!(await this.rt.unpause(r.ID).then(() => true, (e) => { this.log.error('resuming a container the previous daemon paused: it stays paused', { container: r.ID, error: e }); return false; }))) {
        if (!r.State.Paused) {
          r.State = { ...r.State, Paused: true, Status: 'paused' };
          await this.c.save(r);
        }
        return status;
      }
      status = 'running';
    }
    if (r.State.Paused && status === 'running') {
      r.State = { ...r.State, Paused: false, Status: 'running' };
      await this.c.save(r);
    }
    await rm(marker, { force: true });
    return status;
  }

  /** POST /containers/{id}/restart: stop (if running), then start. */
  async restart(ref: string, t: number | undefined): Promise<void> {
    const r = this.c.get(ref);
    if (r.State.Running) await this.stop(r.ID, t);
    await this.start(r.ID);
    this.c.emit(r, 'restart');
  }

  async resize(ref: string, h: number, w: number): Promise<void> {
    const r = this.c.get(ref);
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    if (h > 0 && w > 0 && r.Config.Tty) await this.rt.resize(r.ID, h, w);
  }

  /** GET /containers/{id}/changes: the RW layer against the image (mount targets live in the init layer). */
  async changes(ref: string): Promise<{ path: string; kind: 0 | 1 | 2 }[]> {
    const r = this.c.get(ref);
    return (await this.layers.changes(r.ID)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * GET /containers/{id}/top: dockerd's way — the host's `ps` (default -ef), rows kept whose PID is the container's
   * init or one of its descendants (walked from /proc), split into the header's columns (the last takes the rest).
   */
  async top(ref: string, psArgs: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const r = this.c.get(ref);
    if (!r.State.Running) throw new ConflictError(`Container ${r.ID} is not running`);
    if (r.State.Restarting) throw new ConflictError(`Container ${r.ID} is restarting, wait until the container is running`);
    const pids = new Set<number>([r.State.Pid]);
    const parents = new Map<number, number[]>();
    for (const ent of await readdir('/proc')) {
      if (!/^\d+$/.test(ent)) continue;
      // a process that ended meanwhile (ENOENT, ESRCH) is not a child any more
      const stat = await readFile(`/proc/${ent}/stat`, 'utf8').catch((e: NodeJS.ErrnoException) => { if (isENOENT(e) || e.code === 'ESRCH') return ''; throw e; });
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!Number.isFinite(ppid)) continue;
      (parents.get(ppid) ?? parents.set(ppid, []).get(ppid)!).push(Number(ent));
    }
    const queue = [r.State.Pid];
    while (queue.length) for (const k of parents.get(queue.pop()!) ?? []) if (!pids.has(k)) { pids.add(k); queue.push(k); }
    const args = (psArgs || '-ef').split(/\s+/).filter(Boolean);
    const ps = await execCollect('ps', args).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
    if (ps.code !== 0) throw new InvalidParameterError(`ps: ${(ps.stderr || `exit status ${ps.code}`).trim()}`);
    const out = ps.stdout;
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    const titles = (lines.shift() ?? '').trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw new InvalidParameterError(`Couldn't find PID field in ps output`);
    const procs: string[][] = [];
    for (const l of lines) {
      const f = l.trim().split(/\s+/);
      if (!pids.has(Number(f[pidCol]))) continue;
      procs.push([...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')]);
    }
    return { Titles: titles, Processes: procs };
  }

  isTty(ref: string): boolean { return !!this.c.get(ref).Config.Tty; }
}
