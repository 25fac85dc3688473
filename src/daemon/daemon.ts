/**
 * The composition root: the one place that constructs the engine modules and wires them together.
 * Everything else sees only interfaces (engine/*\/types.ts, api/backend.ts).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Backends } from '../api/backend.js';
import type { DaemonConfig } from '../engine/config.js';
import { openContentStore } from '../engine/content/store.js';
import { openLayerStore } from '../engine/layers/store.js';
import { openImageStore, openReferenceStore, topChainOf } from '../engine/images/store.js';
import type { Digest } from '../lib/digest.js';
import { Puller } from '../engine/distribution/pull.js';
import { ImageService } from '../engine/images/service.js';
import { SystemService } from '../engine/system/system.js';
import { BuildService } from '../engine/build/service.js';
import { RuncExecutor } from '../engine/build/run-executor.js';
import { buildRoutes } from '../api/routes/build.js';
import type { Router } from '../api/router.js';
import { DOCKER_VERSION, goArch, goContainerConfig } from '../engine/images/service.js';

/** wharfd's product version (Server header, /version, /info). */
export const WHARF_VERSION = '0.1.0';

export interface Daemon {
  backends: Backends;
  /** Routes of resources not wired in api/server.ts's buildRouter (POST /build), for createRequestListener. */
  extraRoutes: ((r: Router) => void)[];
  close(): Promise<void>;
}

export async function createDaemon(cfg: DaemonConfig): Promise<Daemon> {
  const dataRoot = cfg.dataRoot;
  await mkdir(dataRoot, { recursive: true, mode: 0o711 });
  await mkdir(cfg.execRoot, { recursive: true, mode: 0o700 });

  const content = await openContentStore(join(dataRoot, 'content'));
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
  const puller = new Puller({ content, layers, images, refs, config: cfg, dataRoot });
  const imageService = new ImageService({ images, refs, layers, content, dataRoot, puller });
  const system = new SystemService({
    config: cfg,
    version: WHARF_VERSION,
    driverName: layers.driverName,
    countImages: async () => (await images.list()).length,
    imagesDiskUsage: () => imageService.imagesDiskUsage(),
  });

  const build = new BuildService({
    images, layers,
    resolveImage: (name) => imageService.resolve(name),
    pull: (ref, progress) => imageService.pull(ref, {}, progress),
    tag: (id, ref) => imageService.tagImage(id, ref),
    containerConfig: goContainerConfig,
    executor: new RuncExecutor({ layers, stateDir: join(cfg.execRoot, 'build') }),
    tmpDir: join(dataRoot, 'tmp'),
    dockerVersion: DOCKER_VERSION,
    arch: goArch(),
  });

  return {
    backends: { images: imageService, system, build },
    extraRoutes: [(r) => { if (build) buildRoutes(r, build); }],
    async close() {
      // The stores write every change atomically as it happens: nothing to flush.
    },
  };
}
