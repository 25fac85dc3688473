/**
 * The composition root: the one place that constructs the engine modules and wires them together.
 * Everything else sees only interfaces (engine/*\/types.ts, api/backend.ts).
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Backends } from '../api/backend.js';
import type { DaemonConfig } from '../engine/config.js';
import { openLayerStore } from '../engine/layers/store.js';
import { openImageStore, openReferenceStore, topChainOf } from '../engine/images/store.js';
import type { Digest } from '../lib/digest.js';
import { Puller } from '../engine/distribution/pull.js';
import { ImageService } from '../engine/images/service.js';
import { bootstrapImage } from '../engine/bootstrap/index.js';
import { SystemService } from '../engine/system/system.js';
import { BuildService } from '../engine/build/service.js';
import { ContainerExecutor } from '../engine/build/run-executor.js';
import { applyChanges } from '../engine/build/changes.js';
import type { Router } from '../api/router.js';
import { DOCKER_VERSION, goContainerConfig } from '../engine/images/index.js';
import { decompressStream } from '../lib/compression.js';
import { goArch } from '../lib/go.js';
import { Pusher } from '../engine/distribution/push.js';
import { ArchiveService } from '../engine/archive/archive.js';
import { login } from '../engine/distribution/auth.js';
import { SearchService } from '../engine/distribution/search.js';
import { parseNamed } from '../engine/images/refs.js';
import { ContainerService } from '../engine/containers/service.js';
import { VolumeStore } from '../engine/volumes/store.js';
import { ContainerRunner } from '../engine/containers/lifecycle.js';
import { ExecService } from '../engine/containers/exec.js';
import { CommitService } from '../engine/containers/commit.js';
import { StatsService } from '../engine/containers/stats.js';
import { ContainerUpdater } from '../engine/containers/update.js';
import { HealthMonitor } from '../engine/containers/health.js';
import { ArchiveReader } from '../engine/containers/archive.js';
import { BridgeNetwork, NetworkService } from '../engine/network/index.js';
import { createRuntime } from '../engine/runtime/runc.js';
import { isENOENT } from '../lib/fsutil.js';
import { discardLogger, type Logger } from '../lib/log.js';
import { EventBus } from '../engine/events/index.js';
import { ImageEvents } from './image-events.js';
import { DEFAULT_DOMAIN, INDEX_SERVER, LEGACY_DEFAULT_DOMAIN } from '../lib/reference.js';

/** wharfd's product version (Server header, /version, /info). */
export const WHARF_VERSION = '0.1.0';

export interface Daemon {
  backends: Backends;
  /**
   * Routes of a resource that has no field in `Backends` yet, for createRequestListener (none today: buildRouter
   * registers every resource's routes from `backends`; a new resource gets its backend interface in api/backend.ts,
   * a field in Backends and its line in buildRouter).
   */
  extraRoutes: ((r: Router) => void)[];
  close(): Promise<void>;
}

/**
 * The modes of the data root and its top directories, dockerd's (daemon_unix.go setupDaemonRoot, the overlay2
 * driver's Init, the containers and image roots, the local volume driver): the root itself may be traversed by
 * anyone (0711, as dockerd's), but nothing below it that holds layer content, container filesystems or records can
 * be entered by a user other than root (0710/0700), so no unprivileged host user reaches a setuid binary shipped in
 * a layer (the CVE-2021-41091 class); volumes/ is 0701 as dockerd's (a volume's _data can be reached by its name,
 * never listed). `create`: made when missing (the driver directories are left to the layer store, which knows
 * which one it uses).
 */
export const DATA_ROOT_MODES: readonly { path: string; mode: number; create: boolean }[] = [
  { path: '', mode: 0o711, create: true },
  { path: 'containers', mode: 0o710, create: true },
  { path: 'overlay', mode: 0o710, create: false },
  { path: 'vfs', mode: 0o710, create: false },
  { path: 'layers', mode: 0o700, create: true },
  { path: 'image', mode: 0o700, create: true },
  { path: 'network', mode: 0o700, create: true },
  { path: 'tmp', mode: 0o700, create: true },
  { path: 'volumes', mode: 0o701, create: true },
];

/**
 * Creates the data root and the exec root with their modes, and repairs the modes of existing ones (a data root
 * made by an older wharfd had 0755 driver directories): every top directory is chmod'ed, whatever it held before.
 */
export async function secureRoots(dataRoot: string, execRoot: string): Promise<void> {
  for (const { path, mode, create } of DATA_ROOT_MODES) {
    const p = join(dataRoot, path);
    if (create) await mkdir(p, { recursive: true, mode });
    await chmod(p, mode).catch((e: unknown) => { if (!isENOENT(e)) throw e; });
  }
  await mkdir(execRoot, { recursive: true, mode: 0o700 });
  await chmod(execRoot, 0o700);
}

/**
 * Builds the engine. `log` is the daemon's logger (daemon/log.ts `daemonLogger`): each service gets a child of it
 * with its `module` field through its constructor deps.
 */
export async function createDaemon(cfg: DaemonConfig, log: Logger = discardLogger): Promise<Daemon> {
  const dataRoot = cfg.dataRoot;
  await secureRoots(dataRoot, cfg.execRoot);
  // older wharfd versions kept pulled manifests and configs in a content store nothing ever read: drop it
  await rm(join(dataRoot, 'content'), { recursive: true, force: true });

  const layers = await openLayerStore({ dataRoot, ...(cfg.storageDriver !== undefined ? { driver: cfg.storageDriver } : {}) });
  const images = await openImageStore(dataRoot, layers, log.child({ module: 'images' }));
  const refs = await openReferenceStore(dataRoot, log.child({ module: 'images' }));
  // After a crash (kill -9 mid-pull), layers may hold references nothing owns any more: recount from the images.
  if (layers.reconcile) {
    const held = new Map<Digest, number>();
    for (const img of await images.list()) {
      const top = topChainOf(img.config);
      if (top) held.set(top, (held.get(top) ?? 0) + 1);
    }
    await layers.reconcile(held);
  }
  const puller = new Puller({ layers, images, refs, config: cfg, dataRoot, log: log.child({ module: 'distribution' }) });
  // containers.usersOf is looked up lazily: the container service needs imageService.resolve
  let containerService: ContainerService | undefined;
  const imageService = new ImageService({
    images, refs, layers, dataRoot, puller, bootstrap: bootstrapImage, applyChanges, log: log.child({ module: 'images' }),
    containers: { usersOf: (id) => containerService ? containerService.usersOf(id) : Promise.resolve([]) },
  });
  const volumes = await new VolumeStore(dataRoot, log.child({ module: 'volumes' })).open();
  const networks = await new NetworkService({
    dataRoot, execRoot: cfg.execRoot, bridge: new BridgeNetwork({ dataRoot, execRoot: cfg.execRoot, log: log.child({ module: 'network' }) }),
    log: log.child({ module: 'network' }),
  }).open();
  containerService = await new ContainerService({
    dataRoot, layers, volumes, networks, resolveImage: (name) => imageService.resolve(name),
    logDefaults: { driver: cfg.logDriver, opts: cfg.logOpts }, defaultRuntime: cfg.defaultRuntime,
    log: log.child({ module: 'containers' }),
  }).open();
  networks.setContainers(containerService);
  const containers = containerService;
  const events = new EventBus();
  const imageEvents = new ImageEvents(events, (name) => imageService.resolve(name));
  containers.events = events;
  volumes.events = events;
  networks.onEvent = (action, n, container) => events.publish('network', action, n.id, { name: n.name, type: n.type, ...(container ? { container } : {}) });
  const runtime = createRuntime({ root: join(cfg.execRoot, 'runtime'), runtime: cfg.defaultRuntime, log: log.child({ module: 'runtime' }) });
  const runner = new ContainerRunner(containers, runtime, layers, cfg.execRoot, networks, log.child({ module: 'containers' }));
  const execs = new ExecService(containers, runtime, cfg.execRoot, log.child({ module: 'exec' }));
  containers.execIDsOf = (id) => execs.idsOf(id);
  const stopExecCollector = execs.startCollector();
  runner.health = new HealthMonitor(containers, execs);
  /** DELETE /containers/{id} and a build's step containers: the record goes, then the lifecycle's waiters end. */
  const removeContainer = async (ref: string, o: { force: boolean; volumes?: boolean }): Promise<void> => {
    const rec = containers.get(ref);
    await containers.remove(ref, o);
    runner.notifyRemoved(rec);
  };
  const commits = new CommitService({
    containers, images, layers, tagImage: (id, repo, tag) => imageService.tagImage(id, repo, tag), applyChanges,
    freeze: { pause: (id) => runner.freeze(id), unpause: (id) => runner.unpause(id) },
    log: log.child({ module: 'commit' }),
  });
  await runner.recover();
  const system = new SystemService({
    config: cfg,
    version: WHARF_VERSION,
    driverName: layers.graphDriverName, // `docker info`'s Storage Driver: dockerd's name (overlay2)
    countImages: async () => (await images.list()).length,
    imagesDiskUsage: () => imageService.imagesDiskUsage(),
    buildCacheDiskUsage: () => build.cacheRecords(),
    containersDiskUsage: () => containers.list({ all: true, size: true, filters: {} }),
    containerCounts: () => {
      const n = { running: 0, paused: 0, stopped: 0 };
      for (const c of containers.all()) {
        if (c.State.Paused) n.paused++;
        else if (c.State.Running) n.running++;
        else n.stopped++;
      }
      return n;
    },
    volumesDiskUsage: () => volumes.usage(),
  });

  const build = new BuildService({
    images, layers,
    resolveImage: (name) => imageService.resolve(name),
    pull: (ref, progress, auth, platform) => {
      // X-Registry-Config is keyed by registry host; Docker Hub's key is its v1 index URL
      let creds;
      if (auth) {
        const domain = parseNamed(ref).domain;
        creds = domain === DEFAULT_DOMAIN ? auth[INDEX_SERVER] ?? auth[DEFAULT_DOMAIN] ?? auth[LEGACY_DEFAULT_DOMAIN] : auth[domain] ?? auth[`https://${domain}`] ?? auth[`http://${domain}`];
      }
      return imageService.pull(ref, { ...(creds ? { auth: creds } : {}), ...(platform ? { platform } : {}) }, progress);
    },
    tag: async (id, ref) => { const out = await imageService.tagImage(id, ref); await imageEvents.tagged(id, ref); return out; },
    containerConfig: goContainerConfig,
    executor: new ContainerExecutor({ containers: { create: (name, body, o) => containers.create(name, body, o), remove: removeContainer }, runner, layers, log: log.child({ module: 'build' }) }),
    tmpDir: join(dataRoot, 'tmp'),
    cacheDir: join(dataRoot, 'build-cache'),
    dockerVersion: DOCKER_VERSION,
    arch: goArch(),
    log: log.child({ module: 'build' }),
  });

  const pusher = new Pusher({ images, refs, layers, config: cfg, dataRoot, log: log.child({ module: 'distribution' }) });
  const archive = new ArchiveService({
    images, refs, layers, dataRoot, resolve: (name) => imageService.resolve(name), decompress: async (s) => (await decompressStream(s)).stream,
    log: log.child({ module: 'archive' }),
  });

  const stats = new StatsService(containers);
  const updater = new ContainerUpdater(containers, runtime);
  return {
    backends: {
      images: imageEvents.images(imageService), system, build, events, networks,
      containerResources: {
        stats: (id, opts) => stats.stats(id, opts),
        update: (id, body) => updater.update(id, body),
      },
      containers: {
        create: (name, body) => containers.create(name, body),
        inspect: (ref, o) => containers.inspect(ref, o),
        list: (o) => containers.list(o),
        prune: (f) => containers.prune(f),
        logReading: (ref) => containers.logReading(ref),
        rename: (ref, name) => containers.rename(ref, name),
        removeLink: (name) => containers.removeLink(name),
        remove: removeContainer,
        attachInfo: (ref) => {
          const rec = containers.get(ref);
          return { id: rec.ID, tty: !!rec.Config.Tty, openStdin: !!rec.Config.OpenStdin };
        },
      },
      runtime: runner,
      exec: execs,
      commit: commits,
      containerArchive: new ArchiveReader(containers, layers, log.child({ module: 'containers' })),
      volumes: {
        list: (f) => volumes.list(f),
        // POST /volumes/create makes a named volume (a random name when none is given), never an anonymous one
        create: (body) => volumes.create({ ...body, anonymous: false }),
        get: (name) => volumes.get(name),
        remove: (name, force) => volumes.remove(name, force),
        prune: (f) => volumes.prune(f),
      },
      imageArchive: imageEvents.archive(archive),
      push: imageEvents.pusher(pusher),
      auth: { login: (a, signal) => login(a, cfg, signal) },
      search: new SearchService(cfg),
    },
    extraRoutes: [],
    async close() {
      // The stores write every change atomically as it happens: nothing to flush.
      stopExecCollector();
    },
  };
}
