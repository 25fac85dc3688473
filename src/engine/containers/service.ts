/**
 * The container store and service (first slice of issue 5): container records under
 * <data-root>/containers/<id>/config.v2.json (written atomically on every change, loaded at start), unique names,
 * an RW layer per container (layers.createRW over the image's top chain), and the Engine API shapes of
 * create / inspect / list / remove.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../lib/atomic.js';
import type { Digest } from '../../lib/digest.js';
import { ConflictError, InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import type { VolumeStore } from '../volumes/store.js';
import type { LayerStore } from '../layers/types.js';
import type { ContainerConfig, Image } from '../images/types.js';
import { topChainOf } from '../images/store.js';
import { parseBind, validateCreateBody } from './hostconfig.js';
import { rfc3339NanoFixed } from '../../lib/go.js';
import { humanDuration } from '../../lib/units.js';
import type { EndpointSettings } from '../../wire/networks.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

/** What is persisted in config.v2.json. */
export interface ContainerRecord {
  ID: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig & Record<string, unknown>;
  HostConfig: Record<string, unknown>;
  /** The image ID ("sha256:…"). */
  Image: string;
  Name: string;
  State: ContainerState;
  Driver: string;
  RestartCount: number;
  /** Stopped by stop/kill: a restart policy leaves it alone (docker's HasBeenManuallyStopped). */
  ManuallyStopped?: boolean;
  /** While running on the bridge: its endpoint and published ports. */
  Net?: ContainerNet;
  /** User-defined networks the container is on (NetworkSettings.Networks, kept by engine/network). */
  Networks?: Record<string, EndpointSettings>;
  /** Bind mounts and volumes (records from before volumes have only HostConfig.Binds). */
  MountPoints?: MountPoint[];
}

export interface ContainerNet {
  Mode: string;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  /** "80/tcp" → bindings, as inspect's NetworkSettings.Ports. */
  Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
}

export interface ContainerServiceDeps {
  dataRoot: string;
  layers: LayerStore;
  resolveImage(name: string): Promise<Image>;
  /** Named and anonymous volumes (absent: only bind mounts are accepted). */
  volumes?: VolumeStore;
  /** Networks: checks NetworkMode and NetworkingConfig at create (absent: only the predefined modes). */
  networks?: {
    endpointsForCreate(mode: string, endpoints: Record<string, Partial<EndpointSettings> | null> | undefined, links?: unknown): Record<string, EndpointSettings> | undefined;
    /** NetworkSettings.Networks of a container (engine/network's NetworkService.networksOf). */
    networksOf(c: ContainerRecord): Record<string, EndpointSettings>;
  };
}

/** A mount of a container, as recorded (docker's MountPoint): a bind of a host path or a volume. */
export interface MountPoint {
  Type: 'bind' | 'volume';
  /** The volume's name (volumes only). */
  Name?: string;
  /** Host path: the bind source or the volume's mountpoint. */
  Source: string;
  Destination: string;
  Mode: string;
  RW: boolean;
  Propagation?: string;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';
const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const LEFT = ['admiring', 'brave', 'clever', 'dreamy', 'eager', 'focused', 'gallant', 'happy', 'jolly', 'keen',
  'loving', 'modest', 'nifty', 'pensive', 'quirky', 'relaxed', 'serene', 'tender', 'upbeat', 'vibrant', 'wizardly',
  'youthful', 'zealous'];
const RIGHT = ['albattani', 'bell', 'curie', 'darwin', 'euclid', 'fermi', 'galileo', 'hopper', 'hypatia', 'johnson',
  'kepler', 'lovelace', 'meitner', 'newton', 'noether', 'pasteur', 'ritchie', 'shannon', 'tesla', 'turing', 'wozniak'];

export class ContainerService {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly root: string;

  constructor(private readonly d: ContainerServiceDeps) {
    this.root = join(d.dataRoot, 'containers');
  }

  /** Loads every record from disk (a record half-written never exists: writes are atomic). */
  async open(): Promise<this> {
    await mkdir(this.root, { recursive: true, mode: 0o710 });
    for (const id of await readdir(this.root)) {
      try {
        const rec = JSON.parse(await readFile(join(this.root, id, 'config.v2.json'), 'utf8')) as ContainerRecord;
        // records of an older wharfd were 0644 in 0755 directories: repaired here
        await chmod(join(this.root, id), 0o710);
        await chmod(join(this.root, id, 'config.v2.json'), 0o600);
        // a container that was running is checked against the runtime by ContainerRunner.recover()
        this.byId.set(rec.ID, rec);
        for (const m of rec.MountPoints ?? []) if (m.Type === 'volume' && m.Name) this.d.volumes?.retain(m.Name, rec.ID);
      } catch {
        // a directory without a record (crash during create before the record was written): garbage
        await this.d.layers.removeRW(id).catch(() => {});
        await rm(join(this.root, id), { recursive: true, force: true }).catch(() => {});
      }
    }
    return this;
  }

  dir(id: string): string { return join(this.root, id); }

  async save(rec: ContainerRecord): Promise<void> {
    await mkdir(this.dir(rec.ID), { recursive: true, mode: 0o710 });
    // a state file, 0600 as dockerd's config.v2.json (it holds the whole HostConfig and Env)
    await writeJsonAtomic(join(this.dir(rec.ID), 'config.v2.json'), rec, 0o600);
  }

  /** Full ID, exact name (with or without "/"), or unique ID prefix — dockerd's GetContainer. */
  get(ref: string): ContainerRecord {
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    for (const r of this.byId.values()) if (r.Name === name) return r;
    if (ref !== '' && /^[a-f0-9]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((r) => r.ID.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) throw new InvalidParameterError(`multiple IDs found with provided prefix: ${ref}`);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  all(): ContainerRecord[] { return [...this.byId.values()]; }

  /** Image IDs in use, for ImageService's `containers.usersOf`. */
  async usersOf(imageId: string): Promise<{ id: string; running: boolean }[]> {
    return this.all().filter((r) => r.Image === imageId).map((r) => ({ id: r.ID, running: r.State.Running }));
  }

  private generateName(): string {
    for (let i = 0; i < 100; i++) {
      const n = `${LEFT[randomBytes(1)[0]! % LEFT.length]}_${RIGHT[randomBytes(1)[0]! % RIGHT.length]}${i > 5 ? String(randomBytes(1)[0]! % 10) : ''}`;
      if (!this.nameOwner(`/${n}`)) return n;
    }
    return `wharf_${randomBytes(4).toString('hex')}`;
  }

  private nameOwner(name: string): ContainerRecord | undefined {
    for (const r of this.byId.values()) if (r.Name === name) return r;
    return undefined;
  }

  /**
   * The container's mounts from HostConfig.Binds ("/host:/ctr[:opts]" binds, "name:/ctr[:opts]" named
   * volumes, created when missing), HostConfig.Mounts (type bind or volume) and Config.Volumes (the image's
   * VOLUMEs and `-v /path`: anonymous volumes unless something else is mounted there). Volumes are retained
   * for the container; `made` collects the ones created here, for a rollback.
   */
  private async mountPointsOf(id: string, hc: Record<string, unknown>, cfg: ContainerConfig, made: string[]): Promise<MountPoint[]> {
    const out: MountPoint[] = [];
    const vols = this.d.volumes;
    const volume = async (name: string, dst: string, mode: string, rw: boolean): Promise<MountPoint> => {
      if (!vols) throw new InvalidParameterError('volumes are not supported by this daemon');
      const existed = name !== '' && vols.has(name);
      const v = await vols.create(name === '' ? {} : { Name: name });
      if (!existed) made.push(v.Name);
      vols.retain(v.Name, id);
      return { Type: 'volume', Name: v.Name, Source: v.Mountpoint, Destination: dst, Mode: mode, RW: rw };
    };
    const taken = (dst: string) => out.some((m) => m.Destination === dst);
    for (const b of (Array.isArray(hc.Binds) ? hc.Binds : []) as string[]) {
      const p = parseBind(b);
      if (taken(p.destination)) throw new InvalidParameterError(`Duplicate mount point: ${p.destination}`);
      if (!p.volume) out.push({ Type: 'bind', Source: p.source, Destination: p.destination, Mode: p.mode, RW: p.rw, Propagation: p.propagation ?? 'rprivate' });
      else out.push(await volume(p.source, p.destination, p.mode, p.rw));
    }
    for (const m of (Array.isArray(hc.Mounts) ? hc.Mounts : []) as { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }[]) {
      const dst = m.Target ?? '';
      if (!dst.startsWith('/')) throw new InvalidParameterError(`invalid mount config: invalid mount path: '${dst}' mount path must be absolute`);
      if (taken(dst)) throw new InvalidParameterError(`Duplicate mount point: ${dst}`);
      if (m.Type === 'bind') {
        if (!m.Source?.startsWith('/')) throw new InvalidParameterError(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ''}' mount path must be absolute`);
        out.push({ Type: 'bind', Source: m.Source, Destination: dst, Mode: '', RW: !m.ReadOnly, Propagation: 'rprivate' });
      } else if (m.Type === 'volume') out.push(await volume(m.Source ?? '', dst, '', !m.ReadOnly));
      else throw new InvalidParameterError(`invalid mount config: mount type "${m.Type ?? ''}" is not supported`);
    }
    for (const dst of Object.keys(cfg.Volumes ?? {})) {
      if (!dst.startsWith('/')) continue;
      if (taken(dst)) continue;
      out.push(await volume('', dst, '', true));
    }
    return out;
  }

  /**
   * POST /containers/create. `opts.noImage` (the classic builder's RUN after FROM scratch, as dockerd's
   * ContainerCreateIgnoreImagesArgsEscaped): an empty Image gives a container on an empty root filesystem.
   */
  async create(name: string | null, body: Record<string, unknown>, opts: { noImage?: boolean } = {}): Promise<{ Id: string; Warnings: string[] }> {
    if (name !== null && name !== '' && !NAME_RE.test(name)) {
      throw new InvalidParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const { warnings } = validateCreateBody(body);
    const imageName = typeof body.Image === 'string' ? body.Image : '';
    if (imageName === '' && !opts.noImage) throw new InvalidParameterError('Config cannot be empty in order to create a container');
    const img = imageName === '' ? null : await this.d.resolveImage(imageName);
    const ic = (img?.config.config ?? {}) as ContainerConfig;
    const { HostConfig: hc0, NetworkingConfig: nc, ...cfg0 } = body as Record<string, unknown>;
    const hc = (hc0 && typeof hc0 === 'object' ? hc0 : {}) as Record<string, unknown>;
    const cfg = { ...cfg0 } as ContainerConfig & Record<string, unknown>;
    // merge with the image's config, as dockerd's merge()
    if (!cfg.User) cfg.User = ic.User ?? '';
    if (!cfg.Env || cfg.Env.length === 0) cfg.Env = [...(ic.Env ?? [])];
    else {
      const keys = new Set(cfg.Env.map((e) => e.split('=')[0]));
      cfg.Env = [...(ic.Env ?? []).filter((e) => !keys.has(e.split('=')[0])), ...cfg.Env];
    }
    if (!cfg.WorkingDir) cfg.WorkingDir = ic.WorkingDir ?? '';
    const userEntrypoint = Array.isArray(cfg.Entrypoint) && cfg.Entrypoint.length > 0;
    if (!userEntrypoint && cfg.Entrypoint === null) cfg.Entrypoint = ic.Entrypoint ?? null;
    if (!userEntrypoint && (!cfg.Cmd || cfg.Cmd.length === 0)) cfg.Cmd = ic.Cmd ?? null;
    // labels, exposed ports and volumes are unions (the container's own win), as dockerd merges them
    cfg.Labels = { ...(ic.Labels ?? {}), ...((cfg.Labels ?? {}) as Record<string, string>) };
    if (ic.ExposedPorts || cfg.ExposedPorts) cfg.ExposedPorts = { ...(ic.ExposedPorts ?? {}), ...(cfg.ExposedPorts ?? {}) };
    else cfg.ExposedPorts = null;
    if (ic.Volumes || (cfg.Volumes && Object.keys(cfg.Volumes).length)) cfg.Volumes = { ...(ic.Volumes ?? {}), ...(cfg.Volumes ?? {}) };
    else cfg.Volumes = null;
    if (!cfg.StopSignal && ic.StopSignal) cfg.StopSignal = ic.StopSignal;
    if (!cfg.Healthcheck && ic.Healthcheck) cfg.Healthcheck = ic.Healthcheck;
    else if (cfg.Healthcheck && ic.Healthcheck && (!cfg.Healthcheck.Test || cfg.Healthcheck.Test.length === 0)) {
      // options given without a test keep the image's test (docker run --health-interval …)
      cfg.Healthcheck = { ...ic.Healthcheck, ...cfg.Healthcheck, Test: ic.Healthcheck.Test };
    }
    cfg.Image = imageName;
    const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
    if (argv.length === 0) throw new InvalidParameterError('No command specified');

    const netMode = typeof hc.NetworkMode === 'string' && hc.NetworkMode !== '' ? hc.NetworkMode : 'default';
    const networks = this.d.networks?.endpointsForCreate(netMode, (nc as { EndpointsConfig?: Record<string, Partial<EndpointSettings> | null> } | null | undefined)?.EndpointsConfig, hc.Links);
    const id = randomBytes(32).toString('hex');
    if (!cfg.Hostname) cfg.Hostname = id.slice(0, 12);
    const finalName = `/${(name && name !== '' ? name : this.generateName()).replace(/^\//, '')}`;
    const owner = this.nameOwner(finalName);
    if (owner) {
      throw new ConflictError(`Conflict. The container name "${finalName}" is already in use by container "${owner.ID}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const rec: ContainerRecord = {
      ID: id,
      Created: rfc3339NanoFixed(new Date()),
      Path: argv[0]!,
      Args: argv.slice(1),
      Config: cfg,
      HostConfig: { NetworkMode: 'default', ...hc },
      Image: img?.id ?? '',
      Name: finalName,
      State: {
        Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
        Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME,
      },
      Driver: this.d.layers.driverName,
      RestartCount: 0,
      ...(networks ? { Networks: networks } : {}),
    };
    // reserve the name before any await, so two concurrent creates cannot both take it
    this.byId.set(id, rec);
    const madeVolumes: string[] = [];
    try {
      rec.MountPoints = await this.mountPointsOf(id, hc, cfg, madeVolumes);
      await mkdir(this.dir(id), { recursive: true, mode: 0o710 });
      await this.d.layers.createRW(id, img ? topChainOf(img.config) as Digest | null : null);
      await this.save(rec);
    } catch (e) {
      this.byId.delete(id);
      for (const m of rec.MountPoints ?? []) if (m.Name) this.d.volumes?.release(m.Name, id);
      for (const v of madeVolumes) await this.d.volumes?.remove(v).catch(() => {});
      await this.d.layers.removeRW(id).catch(() => {});
      await rm(this.dir(id), { recursive: true, force: true }).catch(() => {});
      throw e;
    }
    return { Id: id, Warnings: warnings };
  }

  /** GET /containers/{id}/json. */
  inspect(ref: string): Record<string, unknown> {
    const r = this.get(ref);
    const dir = this.dir(r.ID);
    return {
      Id: r.ID,
      Created: r.Created,
      Path: r.Path,
      Args: r.Args,
      State: r.State,
      Image: r.Image,
      ResolvConfPath: join(dir, 'resolv.conf'),
      HostnamePath: join(dir, 'hostname'),
      HostsPath: join(dir, 'hosts'),
      LogPath: join(dir, `${r.ID}-json.log`),
      Name: r.Name,
      RestartCount: r.RestartCount,
      Driver: r.Driver,
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: null,
      HostConfig: r.HostConfig,
      GraphDriver: { Data: null, Name: r.Driver },
      Mounts: this.mountsView(r),
      Config: r.Config,
      NetworkSettings: this.networkSettings(r),
    };
  }

  /** docker's MountPoint view (inspect's Mounts, list's Mounts). */
  mountsView(r: ContainerRecord): Record<string, unknown>[] {
    const mps = r.MountPoints ?? ((Array.isArray(r.HostConfig.Binds) ? r.HostConfig.Binds : []) as string[]).map((b): MountPoint => {
      const [src, dst, mode = ''] = b.split(':') as [string, string, string | undefined];
      return { Type: 'bind', Source: src, Destination: dst, Mode: mode, RW: !mode.split(',').includes('ro'), Propagation: 'rprivate' };
    });
    return mps.map((m) => (m.Type === 'volume'
      ? { Type: 'volume', Name: m.Name, Source: m.Source, Destination: m.Destination, Driver: 'local', Mode: m.Mode === '' ? 'z' : m.Mode, RW: m.RW, Propagation: '' }
      : { Type: 'bind', Source: m.Source, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation ?? 'rprivate' }));
  }

  private networkSettings(r: ContainerRecord): Record<string, unknown> {
    const n = r.Net;
    const mode = String(r.HostConfig.NetworkMode ?? 'default');
    const netName = mode === 'default' ? 'bridge' : mode;
    const ep = {
      IPAMConfig: null, Links: null, Aliases: null, NetworkID: '', EndpointID: '', Gateway: n?.Gateway ?? '',
      IPAddress: n?.IPAddress ?? '', IPPrefixLen: n?.IPPrefixLen ?? 0, IPv6Gateway: '', GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0, MacAddress: n?.MacAddress ?? '', DriverOpts: null,
    };
    return {
      Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
      Ports: n?.Ports ?? {}, SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '',
      Gateway: n?.Gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: n?.IPAddress ?? '',
      IPPrefixLen: n?.IPPrefixLen ?? 0, IPv6Gateway: '', MacAddress: n?.MacAddress ?? '',
      Networks: this.d.networks ? this.d.networks.networksOf(r) : { [netName]: ep },
    };
  }

  /**
   * SizeRw (the container's own layer) and SizeRootFs (that plus its image's layers), as `ps -s`, inspect
   * `--size` and `system df` report them.
   */
  async sizes(ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
    const r = this.get(ref);
    const rw = await this.d.layers.rwSize(r.ID).catch(() => 0);
    let image = 0;
    try {
      const img = await this.d.resolveImage(r.Image);
      image = await this.d.layers.chainSize(topChainOf(img.config) as Digest | null);
    } catch { /* the image is gone (forced rmi) */ }
    return { SizeRw: rw, SizeRootFs: rw + image };
  }

  /** Docker's Status column. */
  statusText(r: ContainerRecord, now = Date.now()): string {
    const s = r.State;
    if (s.Running) return `Up ${humanDuration(now - Date.parse(s.StartedAt))}${s.Paused ? ' (Paused)' : ''}`;
    if (s.Status === 'created') return 'Created';
    if (s.Status === 'removing') return 'Removal In Progress';
    if (s.Status === 'dead') return 'Dead';
    if (s.FinishedAt === ZERO_TIME) return 'Created';
    return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  }

  /** GET /containers/json. */
  list(opts: { all: boolean; limit?: number; filters: Record<string, string[]> }): Record<string, unknown>[] {
    const f = opts.filters;
    for (const k of Object.keys(f)) {
      if (!['status', 'name', 'id', 'label', 'exited', 'ancestor'].includes(k)) throw new InvalidParameterError(`Invalid filter '${k}'`);
    }
    for (const st of f.status ?? []) {
      if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(st)) {
        throw new InvalidParameterError(`Unrecognised filter value for status: ${st}`);
      }
    }
    const all = opts.all || (f.status?.length ?? 0) > 0 || (opts.limit ?? 0) > 0;
    let recs = this.all().sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
    recs = recs.filter((r) => {
      if (!all && !r.State.Running) return false;
      if (f.status && !f.status.includes(r.State.Status)) return false;
      if (f.name && !f.name.some((n) => new RegExp(n).test(r.Name))) return false;
      if (f.id && !f.id.some((p) => r.ID.startsWith(p))) return false;
      if (f.exited && (r.State.Status !== 'exited' || !f.exited.includes(String(r.State.ExitCode)))) return false;
      if (f.label) {
        const labels = (r.Config.Labels ?? {}) as Record<string, string>;
        for (const l of f.label) {
          const [k, v] = l.split('=', 2) as [string, string | undefined];
          if (!(k in labels) || (v !== undefined && labels[k] !== v)) return false;
        }
      }
      return true;
    });
    if (opts.limit && opts.limit > 0) recs = recs.slice(0, opts.limit);
    const now = Date.now();
    return recs.map((r) => ({
      Id: r.ID,
      Names: [r.Name],
      Image: r.Config.Image ?? r.Image,
      ImageID: r.Image,
      // dockerd's list: arguments holding a space are wrapped in single quotes, nothing else is escaped
      Command: r.Args.length ? `${r.Path} ${r.Args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}` : r.Path,
      Created: Math.floor(Date.parse(r.Created) / 1000),
      Ports: Object.entries(r.Net?.Ports ?? {}).flatMap(([k, bs]) => {
        const [port, proto] = k.split('/') as [string, string];
        if (!bs) return [{ PrivatePort: Number(port), Type: proto }];
        return bs.map((b) => ({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: proto }));
      }),
      Labels: r.Config.Labels ?? {},
      State: r.State.Status,
      Status: this.statusText(r, now),
      HostConfig: { NetworkMode: (r.HostConfig.NetworkMode as string) ?? 'default' },
      NetworkSettings: { Networks: (this.networkSettings(r) as { Networks: unknown }).Networks },
      Mounts: this.mountsView(r),
    }));
  }

  /** POST /containers/{id}/rename. */
  async rename(ref: string, newName: string): Promise<void> {
    const r = this.get(ref);
    if (!newName) throw new InvalidParameterError('Neither old nor new names may be empty');
    if (!NAME_RE.test(newName)) throw new InvalidParameterError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const name = `/${newName.replace(/^\//, '')}`;
    if (name === r.Name) throw new InvalidParameterError(`Renaming a container with the same name as its current name`);
    const owner = this.nameOwner(name);
    if (owner) throw new ConflictError(`Error when allocating new name: Conflict. The container name "${name}" is already in use by container "${owner.ID}". You have to remove (or rename) that container to be able to reuse that name.`);
    r.Name = name;
    await this.save(r);
  }

  /** POST /containers/prune: every stopped container. */
  async prune(): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const r of this.all()) {
      if (r.State.Running || r.State.Status === 'removing') continue;
      const size = await this.d.layers.rwSize(r.ID).catch(() => 0);
      try { await this.remove(r.ID, { force: false }); deleted.push(r.ID); space += size; } catch { /* raced */ }
    }
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: space };
  }

  /** Hook for the runtime slice: stops a running container before a forced remove. */
  stopHook?: (r: ContainerRecord) => Promise<void>;

  /** DELETE /containers/{id}. */
  async remove(ref: string, opts: { force: boolean; volumes?: boolean }): Promise<void> {
    const r = this.get(ref);
    if (r.State.Running) {
      if (!opts.force) {
        throw new ConflictError(`You cannot remove a running container ${r.ID}. Stop the container before attempting removal or force remove`);
      }
      if (this.stopHook) await this.stopHook(r);
    }
    if (r.State.Status === 'removing') return;
    r.State.Status = 'removing';
    try {
      await this.d.layers.unmount(r.ID).catch(() => {});
      await this.d.layers.removeRW(r.ID);
    } catch (e) {
      r.State.Status = r.State.FinishedAt === ZERO_TIME ? 'created' : 'exited';
      throw e;
    }
    this.byId.delete(r.ID);
    await rm(this.dir(r.ID), { recursive: true, force: true });
    // the container's volumes: released; with -v (and --rm) its anonymous ones go too, named ones never
    for (const m of r.MountPoints ?? []) {
      if (m.Type !== 'volume' || !m.Name || !this.d.volumes) continue;
      this.d.volumes.release(m.Name, r.ID);
      if (opts.volumes && this.d.volumes.isAnonymous(m.Name)) await this.d.volumes.remove(m.Name).catch(() => {});
    }
  }
}
