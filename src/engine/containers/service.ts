/**
 * The container store and service (first slice of issue 5): container records under
 * <data-root>/containers/<id>/config.v2.json (written atomically on every change, loaded at start), unique names,
 * an RW layer per container (layers.createRW over the image's top chain), and the Engine API shapes of
 * create / inspect / list / remove.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic.js';
import type { Digest } from '../../lib/digest.js';
import { ConflictError, InvalidParameterError, NotFoundError, NotImplementedError, SystemError, notFoundAs } from '../../lib/errors.js';
import { exactMatch, hasFilter, invalidFilterError, matchFilter, matchKVList, pruneLabelsMatch, pruneUntil, validateFilters, type Filters } from '../../lib/filters.js';
import type { Volumes } from '../volumes/types.js';
import type { LayerStore } from '../layers/types.js';
import type { ContainerConfig, Image } from '../images/types.js';
import { topChainOf } from '../images/index.js';
import { logSettingsOf, parseBind, resolveLogConfig, validateCreateBody, type LogDefaults } from './hostconfig.js';
import { logAttrs } from '../runtime/index.js';
import { inspectView, mountsView, networksView, portsView, summaryView } from './inspect.js';
import type {
  ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerListOptions, ContainerPruneReport,
  ContainerState, ContainerSummary,
} from '../../wire/index.js';
import { rfc3339NanoFixed } from '../../lib/go.js';
import { humanDuration } from '../../lib/units.js';
import { isENOENT } from '../../lib/fsutil.js';
import { discardLogger, type Logger } from '../../lib/log.js';
import type { EndpointSettings } from '../../wire/networks.js';
import { parseLink } from '../network/index.js';

export type { ContainerState, ContainerStatus } from '../../wire/index.js';
import type { EventPublisher } from '../events/types.js';
export type { Health as HealthState } from '../../wire/index.js';

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
  volumes?: Volumes;
  log?: Logger;
  /** The daemon's log driver and options for containers that name none (default json-file). */
  logDefaults?: LogDefaults;
  /** The daemon's OCI runtime, recorded as HostConfig.Runtime of containers that name none (default runc). */
  defaultRuntime?: string;
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

  private readonly log: Logger;

  constructor(private readonly d: ContainerServiceDeps) {
    this.root = join(d.dataRoot, 'containers');
    this.log = d.log ?? discardLogger;
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
      } catch (e) {
        // a record that exists but cannot be read is kept for a person to look at, as dockerd does
        if (!isENOENT(e)) { this.log.error('container record unreadable: not loaded, left in place', { container: id, error: e }); continue; }
        // a directory without a record (crash during create before the record was written): garbage
        await this.d.layers.removeRW(id).catch(this.log.unlessGone('removing the RW layer of a half-created container', { container: id }));
        await rm(join(this.root, id), { recursive: true, force: true }).catch(this.log.onError('removing a half-created container', { container: id }));
      }
    }
    return this;
  }

  dir(id: string): string { return join(this.root, id); }

  /** Where container events go (the daemon's event log); none when unset. */
  events?: EventPublisher;

  /** Publishes a container event with dockerd's attributes: the labels, `image` (as asked for) and `name`. */
  emit(r: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    if (!this.events) return;
    this.events.publish('container', action, r.ID, {
      ...((r.Config.Labels ?? {}) as Record<string, string>), image: String(r.Config.Image ?? r.Image), name: r.Name.replace(/^\//, ''), ...extra,
    });
  }

  /**
   * Writes the record atomically. `opts.durable: false` skips the fsyncs, for states a power loss makes moot: a
   * container's start (after a crash it is not running, whatever the record says, and recover() finds that out) and
   * the exit of a container removed right after (--rm). A daemon that dies without the machine loses nothing
   * either way (the page cache outlives it).
   */
  async save(rec: ContainerRecord, opts: { durable?: boolean } = {}): Promise<void> {
    await mkdir(this.dir(rec.ID), { recursive: true, mode: 0o710 });
    // a state file, 0600 as dockerd's config.v2.json (it holds the whole HostConfig and Env)
    await writeFileAtomic(join(this.dir(rec.ID), 'config.v2.json'), JSON.stringify(rec), 0o600, { durable: opts.durable ?? true });
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
      try { await vols.whenMounted(v.Name); } catch (e) { vols.release(v.Name, id); throw e; }
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
      else if (m.Type === 'tmpfs') {
        // no mount point of its own: the runtime mounts it (specOptionsOf), like --tmpfs
        if (m.Source) throw new InvalidParameterError('invalid mount config for type "tmpfs": field Source must not be specified');
      } else throw new InvalidParameterError(`invalid mount config: mount type "${m.Type ?? ''}" is not supported`);
    }
    // --volumes-from NAME[:ro|rw]: the source container's mounts (its binds and volumes), the container's own
    // binds and mounts winning; ro/rw overrides each mount's own mode
    for (const spec of (Array.isArray(hc.VolumesFrom) ? hc.VolumesFrom : []) as string[]) {
      const i = spec.lastIndexOf(':');
      const [ref, mode] = i > 0 ? [spec.slice(0, i), spec.slice(i + 1)] : [spec, ''];
      if (!['', 'ro', 'rw'].includes(mode)) throw new InvalidParameterError(`invalid mode: ${mode}`);
      const src = this.named(ref);
      for (const m of src.MountPoints ?? []) {
        if (taken(m.Destination)) continue;
        const rw = mode === '' ? m.RW : mode === 'rw';
        if (m.Type === 'volume' && m.Name) {
          if (!vols?.has(m.Name)) continue;
          vols.retain(m.Name, id);
          out.push({ ...m, RW: rw, Mode: mode || m.Mode });
        } else out.push({ ...m, RW: rw, Mode: mode || m.Mode });
      }
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
  async create(name: string | null, body: ContainerCreateRequest, opts: { noImage?: boolean } = {}): Promise<ContainerCreateResponse> {
    if (name !== null && name !== '' && !NAME_RE.test(name)) {
      throw new InvalidParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const { warnings } = validateCreateBody(body);
    // --pid/--ipc container:X and --volumes-from name containers that must exist (running is checked at start)
    const hcIn = (body.HostConfig ?? {}) as Record<string, unknown>;
    for (const k of ['PidMode', 'IpcMode'] as const) {
      const v = hcIn[k];
      if (typeof v === 'string' && v.startsWith('container:')) this.named(v.slice('container:'.length));
    }
    if (body.HostConfig && typeof body.HostConfig === 'object') {
      const h = body.HostConfig as Record<string, unknown>;
      h.LogConfig = resolveLogConfig(h.LogConfig, this.d.logDefaults);
      if (!h.Runtime) h.Runtime = this.d.defaultRuntime ?? 'runc';
    } else body.HostConfig = { LogConfig: resolveLogConfig(undefined, this.d.logDefaults), Runtime: this.d.defaultRuntime ?? 'runc' };
    const imageName = typeof body.Image === 'string' ? body.Image : '';
    if (imageName === '' && !opts.noImage) throw new InvalidParameterError('Config cannot be empty in order to create a container');
    const img = imageName === '' ? null : await this.d.resolveImage(imageName);
    const ic = (img?.config.config ?? {}) as ContainerConfig;
    const { HostConfig: hc0, NetworkingConfig: nc, ...cfg0 } = body;
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
    // absent and null are the same nil in Go (docker-py sends no Entrypoint)
    if (!userEntrypoint && cfg.Entrypoint == null) cfg.Entrypoint = ic.Entrypoint ?? null;
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
    // legacy links are recorded as dockerd records them: "/<container>:/<this container>/<alias>"
    if (Array.isArray(hc.Links) && hc.Links.length) {
      hc.Links = (hc.Links as string[]).map((l) => { const { name: n, alias } = parseLink(l); return `/${n}:${finalName}/${alias}`; });
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
      for (const v of madeVolumes) await this.d.volumes?.remove(v).catch(this.log.onError('removing a volume after a failed create', { container: id, volume: v }));
      await this.d.layers.removeRW(id).catch(this.log.unlessGone('removing the RW layer after a failed create', { container: id }));
      await rm(this.dir(id), { recursive: true, force: true }).catch(this.log.onError('removing a container directory after a failed create', { container: id }));
      throw e;
    }
    this.emit(rec, 'create');
    return { Id: id, Warnings: warnings };
  }

  /**
   * A container a create body names (--volumes-from, --pid/--ipc container:X): a missing one is a bad request
   * (400, as dockerd: a 404 would make the docker CLI pull the image), worded "No such container: X".
   */
  private named(ref: string): ContainerRecord {
    try { return this.get(ref); } catch (e) {
      if (e instanceof NotFoundError) throw new InvalidParameterError(e.message);
      throw e;
    }
  }

  /** A container's exec instances (inspect's ExecIDs), wired by the composition root. */
  execIDsOf?: (id: string) => string[] | null;

  private graphDriverData(id: string): Record<string, string> | null {
    try { return this.d.layers.rwGraphDriverData(id); } catch (e) {
      if (e instanceof NotFoundError) return null; // a container whose RW layer is being removed
      throw e;
    }
  }

  /** GET /containers/{id}/json (with SizeRw/SizeRootFs when `size`). */
  async inspect(ref: string, opts: { size?: boolean } = {}): Promise<ContainerInspect> {
    const r = this.get(ref);
    const sizes = opts.size ? await this.sizes(r.ID) : undefined;
    return inspectView(r, {
      dir: this.dir(r.ID), runtime: this.d.defaultRuntime ?? 'runc', graphDriver: this.d.layers.graphDriverName,
      graphDriverData: this.graphDriverData(r.ID), execIDs: this.execIDsOf?.(r.ID) ?? null, ...(sizes ? { sizes } : {}),
      ...(this.d.networks ? { networks: this.d.networks.networksOf(r) } : {}),
    });
  }

  /**
   * SizeRw (the container's own layer) and SizeRootFs (that plus its image's layers), as `ps -s`, inspect
   * `--size` and `system df` report them.
   */
  async sizes(ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
    const r = this.get(ref);
    const rw = await this.d.layers.rwSize(r.ID).catch((e) => { this.log.unlessGone('measuring a container\'s RW layer', { container: r.ID })(e); return 0; });
    let image = 0;
    try {
      const img = await this.d.resolveImage(r.Image);
      image = await this.d.layers.chainSize(topChainOf(img.config) as Digest | null);
    } catch (e) { this.log.unlessGone('measuring a container\'s image', { container: r.ID })(e); /* gone: forced rmi */ }
    return { SizeRw: rw, SizeRootFs: rw + image };
  }

  /** Docker's Status column. */
  statusText(r: ContainerRecord, now = Date.now()): string {
    const s = r.State;
    if (s.Running) {
      const health = s.Paused || !s.Health ? '' : ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})`;
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))}${s.Paused ? ' (Paused)' : health}`;
    }
    if (s.Restarting) return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    if (s.Status === 'created') return 'Created';
    if (s.Status === 'removing') return 'Removal In Progress';
    if (s.Status === 'dead') return 'Dead';
    if (s.FinishedAt === ZERO_TIME) return 'Created';
    return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  }

  /** GET /containers/json. */
  async list(opts: ContainerListOptions): Promise<ContainerSummary[]> {
    const keep = await this.listFilter(opts.filters);
    const all = opts.all || (opts.filters.status?.length ?? 0) > 0 || (opts.limit ?? 0) > 0;
    let recs = this.all().sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
    recs = await keep(recs.filter((r) => all || r.State.Running));
    if (opts.limit && opts.limit > 0) recs = recs.slice(0, opts.limit);
    const now = Date.now();
    const out: ContainerSummary[] = [];
    for (const r of recs) {
      const sizes = opts.size ? await this.sizes(r.ID).catch(notFoundAs(undefined)) /* removed meanwhile */ : undefined;
      out.push(summaryView(r, this.statusText(r, now), sizes, this.d.networks?.networksOf(r)));
    }
    return out;
  }

  /**
   * The `filters` of GET /containers/json as dockerd's list: checked first (unknown names, bad status, health,
   * is-task or port values, a since/before container that does not exist), then a function that keeps the
   * matching records of a newest-first list (before: only those older than that container; since: only newer;
   * ancestor: containers of that image or of an image built on it, by the parent chain).
   */
  private async listFilter(f: Filters): Promise<(recs: ContainerRecord[]) => Promise<ContainerRecord[]>> {
    validateFilters(f, ['ancestor', 'before', 'exited', 'expose', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume']);
    const exited = (f.exited ?? []).map((v) => {
      if (!/^[+-]?\d+$/.test(v)) throw new InvalidParameterError(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
      return Number(v);
    });
    for (const st of f.status ?? []) {
      if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(st)) {
        throw new InvalidParameterError(`Unrecognised filter value for status: ${st}`);
      }
    }
    for (const h of f.health ?? []) {
      if (!['starting', 'healthy', 'unhealthy', 'none'].includes(h)) throw new InvalidParameterError(`Unrecognised filter value for health: ${h}`);
    }
    let isTask: boolean | null = null;
    if (hasFilter(f, 'is-task')) {
      if (exactMatch(f, 'is-task', 'true')) isTask = true;
      else if (exactMatch(f, 'is-task', 'false')) isTask = false;
      else throw invalidFilterError('is-task', f['is-task']);
    }
    let before: string | null = null;
    let since: string | null = null;
    const byRef = (v: string) => {
      try { return this.get(v).ID; } catch (e) {
        if (e instanceof NotFoundError) throw new NotFoundError(`no such container ${v}`);
        throw e;
      }
    };
    for (const v of f.before ?? []) before = byRef(v);
    for (const v of f.since ?? []) since = byRef(v);
    // ancestor: an image that cannot be found matches nothing (dockerd logs a warning and skips it)
    let ancestors: Set<string> | null = null;
    if (hasFilter(f, 'ancestor')) {
      ancestors = new Set();
      for (const v of f.ancestor ?? []) {
        try { ancestors.add((await this.d.resolveImage(v)).id); } catch { /* skipped */ }
      }
    }
    const chains = new Map<string, boolean>();
    const descends = async (imageId: string): Promise<boolean> => {
      if (!ancestors || ancestors.size === 0) return false;
      const known = chains.get(imageId);
      if (known !== undefined) return known;
      let id: string | null = imageId;
      let hit = false;
      for (let depth = 0; id && depth < 1000 && !hit; depth++) {
        if (ancestors.has(id)) hit = true;
        else { try { id = (await this.d.resolveImage(id)).parent; } catch { id = null; } }
      }
      chains.set(imageId, hit);
      return hit;
    };
    const publish = portFilter('publish', f.publish ?? []);
    const expose = portFilter('expose', f.expose ?? []);
    const labelsOf = (r: ContainerRecord) => (r.Config.Labels ?? {}) as Record<string, string>;
    const match = (r: ContainerRecord): boolean => {
      if (!matchFilter(f, 'name', r.Name) && !matchFilter(f, 'name', r.Name.replace(/^\//, ''))) return false;
      if (!matchFilter(f, 'id', r.ID)) return false;
      if (isTask === true) return false; // no container here is a swarm task
      if (!matchKVList(f, 'label', labelsOf(r))) return false;
      if (exited.length && !(exited.includes(r.State.ExitCode) && !r.State.Running && r.State.StartedAt !== ZERO_TIME)) return false;
      if (!matchFilter(f, 'status', r.State.Status)) return false;
      const health = (r.State as { Health?: { Status?: string } }).Health?.Status || 'none';
      if (!exactMatch(f, 'health', health)) return false;
      if (hasFilter(f, 'volume')) {
        const mounts = mountsView(r) as { Name?: string; Source: string; Destination: string }[];
        const names = new Set(mounts.map((m) => m.Name || m.Source));
        const dests = new Set(mounts.map((m) => m.Destination).filter((d) => d !== ''));
        if (!(f.volume ?? []).some((v) => dests.has(v) || names.has(v))) return false;
      }
      if (hasFilter(f, 'network')) {
        const nets = (this.d.networks?.networksOf(r) ?? networksView(r)) as unknown as Record<string, { NetworkID?: string } | null>;
        const hit = (f.network ?? []).some((v) => v in nets || Object.values(nets).some((n) => !!n && (n.NetworkID ?? '').startsWith(v)));
        if (!hit) return false;
      }
      if (publish.size || expose.size) {
        const ports = portsView(r);
        if (!ports.some((p) => publish.has(`${p.PublicPort ?? 0}/${p.Type}`) || expose.has(`${p.PrivatePort}/${p.Type}`))) return false;
      }
      return true;
    };
    return async (recs) => {
      const out: ContainerRecord[] = [];
      let skipping = before !== null;
      for (const r of recs) {
        if (skipping) { if (r.ID === before) skipping = false; continue; }
        if (since !== null && r.ID === since) break;
        if (match(r) && (ancestors === null || await descends(r.Image))) out.push(r);
      }
      return out;
    };
  }

  /**
   * How GET /containers/{id}/logs reads this container's log: refused for the `none` driver (dockerd's 501);
   * `attrs` is what `--details` prints before each line (the json-file `labels`/`env` options' picks).
   */
  logReading(ref: string): { attrs: string } {
    const r = this.get(ref);
    if (logSettingsOf(r.HostConfig).driver === 'none') throw new NotImplementedError('configured logging driver does not support reading');
    const lc = (r.HostConfig.LogConfig ?? {}) as { Config?: Record<string, string> | null };
    return { attrs: logAttrs(lc.Config ?? {}, (r.Config.Labels ?? {}) as Record<string, string>, r.Config.Env ?? []) };
  }

  /** POST /containers/{id}/rename. */
  /**
   * DELETE /containers/{/parent/alias}?link=1 (`docker rm --link`): the parent forgets that legacy link, as
   * dockerd's rmLink: the name must name a link (a plain container name is its "default link name"), the parent
   * must exist, and the link must be one of the parent's.
   */
  async removeLink(name: string): Promise<void> {
    const full = name.startsWith('/') ? name : `/${name}`;
    const cut = full.lastIndexOf('/');
    const parentName = full.slice(0, cut);
    const alias = full.slice(cut + 1);
    if (parentName === '') {
      this.get(full); // an unknown name is a 404 first, as dockerd looks the container up before the link
      throw new SystemError('Conflict, cannot remove the default link name of the container');
    }
    let parent: ContainerRecord;
    try { parent = this.get(parentName); } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`No such container: ${full.slice(1)}`, { cause: e });
      throw e;
    }
    const links = (parent.HostConfig.Links ?? []) as string[];
    const keep = links.filter((l) => parseLink(l).alias !== alias);
    if (keep.length === links.length) throw new NotFoundError(`No such container: ${full.slice(1)}`);
    parent.HostConfig.Links = keep.length ? keep : null;
    await this.save(parent);
  }

  async rename(ref: string, newName: string): Promise<void> {
    const r = this.get(ref);
    if (!newName) throw new InvalidParameterError('Neither old nor new names may be empty');
    if (!NAME_RE.test(newName)) throw new InvalidParameterError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const name = `/${newName.replace(/^\//, '')}`;
    if (name === r.Name) throw new InvalidParameterError(`Renaming a container with the same name as its current name`);
    const owner = this.nameOwner(name);
    if (owner) throw new ConflictError(`Error when allocating new name: Conflict. The container name "${name}" is already in use by container "${owner.ID}". You have to remove (or rename) that container to be able to reuse that name.`);
    const oldName = r.Name;
    r.Name = name;
    await this.save(r);
    this.emit(r, 'rename', { oldName });
  }

  /** POST /containers/prune: every stopped container, narrowed by the filters `until`, `label` and `label!`. */
  async prune(filters: Filters = {}): Promise<ContainerPruneReport> {
    validateFilters(filters, ['label', 'label!', 'until']);
    const until = pruneUntil(filters);
    const deleted: string[] = [];
    let space = 0;
    for (const r of this.all()) {
      if (r.State.Running || r.State.Status === 'removing') continue;
      if (until !== null && Date.parse(r.Created) > until) continue;
      if (!pruneLabelsMatch(filters, (r.Config.Labels ?? {}) as Record<string, string>)) continue;
      const size = await this.d.layers.rwSize(r.ID).catch((e) => { this.log.unlessGone('measuring a container\'s RW layer', { container: r.ID })(e); return 0; });
      try { await this.remove(r.ID, { force: false }); deleted.push(r.ID); space += size; } catch (e) { if (!(e instanceof ConflictError)) this.log.unlessGone('pruning a container', { container: r.ID })(e); /* raced */ }
    }
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: space };
  }

  /** Hook for the runtime slice: stops a running container before a forced remove. */
  stopHook?: (r: ContainerRecord) => Promise<void>;

  /** DELETE /containers/{id}. */
  async remove(ref: string, opts: { force: boolean; volumes?: boolean }): Promise<void> {
    const r = this.get(ref);
    // a container in its restart back-off or in its policy's start counts as running, as in dockerd (whose restarting
    // container is Running): a forced remove stops it first, else the policy's start could hold the RW layer's mount
    if (r.State.Running || r.State.Restarting) {
      if (!opts.force) {
        const state = r.State.Restarting && !r.State.Running ? 'restarting' : 'running';
        throw new ConflictError(`You cannot remove a ${state} container ${r.ID}. Stop the container before attempting removal or force remove`);
      }
      if (this.stopHook) await this.stopHook(r);
    }
    if (r.State.Status === 'removing') return;
    r.State.Status = 'removing';
    try {
      await this.d.layers.unmount(r.ID).catch(this.log.unlessGone('unmounting a container to remove it', { container: r.ID }));
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
      if (opts.volumes && this.d.volumes.isAnonymous(m.Name)) await this.d.volumes.remove(m.Name).catch(this.log.onError('removing an anonymous volume with its container', { container: r.ID, volume: m.Name }));
    }
    this.emit(r, 'destroy');
  }
}

/**
 * The `publish`/`expose` filter values of GET /containers/json ("80", "80/udp", "8000-8080/tcp") as the set of
 * "port/proto" they name; dockerd's errors for a colon or a bad range.
 */
export function portFilter(key: string, values: string[]): Set<string> {
  const out = new Set<string>();
  for (const value of values) {
    if (value.includes(':')) throw new Error(`filter for '${key}' should not contain ':': ${value}`);
    const slash = value.indexOf('/');
    const port = slash < 0 ? value : value.slice(0, slash);
    const proto = slash < 0 ? 'tcp' : value.slice(slash + 1);
    const fail = (why: string) => new Error(`error while looking up for ${key} ${value}: ${why}`);
    if (port === '') throw fail('empty string specified for ports.');
    const [a, b = a] = port.split('-', 2) as [string, string?];
    const num = (x: string) => {
      if (!/^\d+$/.test(x)) throw fail(`strconv.ParseUint: parsing ${JSON.stringify(x)}: invalid syntax`);
      if (Number(x) > 65535) throw fail(`strconv.ParseUint: parsing ${JSON.stringify(x)}: value out of range`);
      return Number(x);
    };
    const start = num(a);
    const end = num(b);
    if (end < start) throw fail(`Invalid range specified for the Port: ${port}`);
    for (let p = start; p <= end; p++) out.add(`${p}/${proto}`);
  }
  return out;
}
