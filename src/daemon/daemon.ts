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
import { SystemService } from '../engine/system/system.js';
import { BuildService } from '../engine/build/service.js';
import { ContainerExecutor } from '../engine/build/run-executor.js';
import { buildRoutes } from '../api/routes/build.js';
import type { Router } from '../api/router.js';
import { DOCKER_VERSION, goContainerConfig, decompressStream } from '../engine/images/service.js';
import { goArch } from '../lib/go.js';
import { Pusher } from '../engine/distribution/push.js';
import { ArchiveService } from '../engine/archive/archive.js';
import { distributionRoutes } from '../api/routes/distribution.js';
import { archiveRoutes } from '../api/routes/archive.js';
import { authRoutes } from '../api/routes/auth.js';
import { login } from '../engine/distribution/auth.js';
import { SearchService } from '../engine/search/search.js';
import { parseNamed } from '../engine/images/refs.js';
import { ContainerService } from '../engine/containers/service.js';
import { VolumeStore } from '../engine/volumes/store.js';
import { volumeRoutes } from '../api/routes/volumes.js';
import { containerRoutes } from '../api/routes/containers.js';
import { ContainerRunner } from '../engine/containers/lifecycle.js';
import { ExecService } from '../engine/containers/exec.js';
import { CommitService } from '../engine/containers/commit.js';
import { ArchiveReader } from '../engine/containers/archive.js';
import { BridgeNetwork, NetworkService } from '../engine/network/index.js';
import { createRuntime } from '../engine/runtime/runc.js';
import { isENOENT } from '../lib/fsutil.js';
import { DEFAULT_DOMAIN, INDEX_SERVER, LEGACY_DEFAULT_DOMAIN } from '../lib/reference.js';

/** wharfd's product version (Server header, /version, /info). */
export const WHARF_VERSION = '0.1.0';

export interface Daemon {
  backends: Backends;
  /** Routes of resources not wired in api/server.ts's buildRouter (POST /build), for createRequestListener. */
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

export async function createDaemon(cfg: DaemonConfig): Promise<Daemon> {
  const dataRoot = cfg.dataRoot;
  await secureRoots(dataRoot, cfg.execRoot);
  // older wharfd versions kept pulled manifests and configs in a content store nothing ever read: drop it
  await rm(join(dataRoot, 'content'), { recursive: true, force: true });

  const layers = await openLayerStore({ dataRoot, ...(cfg.storageDriver !== undefined ? { driver: cfg.storageDriver } : {}) });
  const images = await openImageStore(dataRoot, layers);
  const refs = await openReferenceStore(dataRoot);
  // After a crash (kill -9 mid-pull), layers may hold references nothing owns any more: recount from the images.
  if (layers.reconcile) {
    const held = new Map<Digest, number>();
    for (const img of await images.list()) {
      const top = topChainOf(img.config);
      if (top) held.set(top, (held.get(top) ?? 0) + 1);
    }
    await layers.reconcile(held);
  }
  const puller = new Puller({ layers, images, refs, config: cfg, dataRoot });
  // containers.usersOf is looked up lazily: the container service needs imageService.resolve
  let containerService: ContainerService | undefined;
  const imageService = new ImageService({
    images, refs, layers, dataRoot, puller,
    containers: { usersOf: (id) => containerService ? containerService.usersOf(id) : Promise.resolve([]) },
  });
  const volumes = await new VolumeStore(dataRoot).open();
  const networks = await new NetworkService({ dataRoot, execRoot: cfg.execRoot, bridge: new BridgeNetwork({ dataRoot, execRoot: cfg.execRoot }) }).open();
  containerService = await new ContainerService({ dataRoot, layers, volumes, networks, resolveImage: (name) => imageService.resolve(name) }).open();
  networks.setContainers(containerService);
  const containers = containerService;
  const runtime = createRuntime({ root: join(cfg.execRoot, 'runtime'), runtime: cfg.defaultRuntime });
  const runner = new ContainerRunner(containers, runtime, layers, cfg.execRoot, networks);
  const execs = new ExecService(containers, runtime, cfg.execRoot);
  const commits = new CommitService({
    containers, images, layers, tagImage: (id, repo, tag) => imageService.tagImage(id, repo, tag),
    freeze: { pause: (id) => runner.pause(id, { byDaemon: true }), unpause: (id) => runner.unpause(id) },
  });
  await runner.recover();
  const system = new SystemService({
    config: cfg,
    version: WHARF_VERSION,
    driverName: layers.driverName,
    countImages: async () => (await images.list()).length,
    imagesDiskUsage: () => imageService.imagesDiskUsage(),
    containersDiskUsage: async () => {
      const list = containers.list({ all: true, filters: {} });
      for (const x of list) Object.assign(x, await containers.sizes(String(x.Id)).catch(() => ({})));
      return list;
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
    tag: (id, ref) => imageService.tagImage(id, ref),
    containerConfig: goContainerConfig,
    executor: new ContainerExecutor({ containers, runner, layers }),
    tmpDir: join(dataRoot, 'tmp'),
    dockerVersion: DOCKER_VERSION,
    arch: goArch(),
  });

  const pusher = new Pusher({ images, refs, layers, config: cfg, dataRoot });
  const archive = new ArchiveService({
    images, refs, layers, dataRoot, resolve: (name) => imageService.resolve(name), decompress: decompressStream,
  });

  return {
    backends: { images: imageService, system, build, networks },
    extraRoutes: [
      (r) => { if (build) buildRoutes(r, build); },
      (r) => { distributionRoutes(r, pusher); archiveRoutes(r, archive); },
      (r) => containerRoutes(r, containers, runner, execs, commits, new ArchiveReader(containers, layers)),
      (r) => volumeRoutes(r, volumes),
      (r) => authRoutes(r, { login: (a, signal) => login(a, cfg, signal) }, new SearchService(cfg)),
    ],
    async close() {
      // The stores write every change atomically as it happens: nothing to flush.
    },
  };
}
