/**
 * docker commit (POST /commit): the container's RW layer as a new layer on top of its image, the container's
 * config (with --change lines and the request's Config applied) as the new image's config, one history entry.
 */
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import { DOCKER_VERSION, goContainerConfig, topChainOf } from '../images/index.js';
import { rfc3339Nano } from '../../lib/go.js';
import type { ChangeApplier, ContainerConfig, ImageStore } from '../images/types.js';
import type { LayerStore } from '../layers/types.js';
import type { ContainerService } from './service.js';
import type { Logger } from '../../lib/log.js';

export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  changes: string[];
  config?: ContainerConfig;
  /** Freeze a running container while its changes are read (docker commit --pause, the default). */
  pause?: boolean;
}

export class CommitService {
  constructor(private readonly d: {
    containers: ContainerService; images: ImageStore; layers: LayerStore;
    tagImage(id: Digest, repo: string, tag?: string): Promise<unknown>;
    /** `--change` lines: the builder's applier, passed by the composition root. */
    applyChanges: ChangeApplier;
    /**
     * Pause/unpause of the lifecycle (absent: commits never pause). `pause` resolves false when the container is
     * no longer running by then (it exited meanwhile: committed unpaused, as dockerd does).
     */
    freeze?: { pause(id: string): Promise<boolean>; unpause(id: string): Promise<void> };
    log?: Logger;
  }) {}

  async commit(ref: string, o: CommitOptions): Promise<string> {
    const r = this.d.containers.get(ref);
    if (r.State.Status === 'removing') throw new InvalidParameterError(`can't commit container ${r.ID}: removal in progress`);
    const parent = await this.d.images.get(r.Image as Digest);
    const pc = parent.config;
    // the request's Config overrides, --change lines on top (dockerd: merge, then changes)
    let cfg: ContainerConfig = { ...(r.Config as ContainerConfig) };
    if (o.config) for (const [k, v] of Object.entries(o.config)) if (v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) (cfg as Record<string, unknown>)[k] = v;
    cfg = this.d.applyChanges(cfg, o.changes);
    // as dockerd: a running container is paused for the read of its changes unless --pause=false
    const freeze = o.pause !== false && r.State.Running && !r.State.Paused ? this.d.freeze : undefined;
    const paused = freeze ? await freeze.pause(r.ID) : false;
    // as dockerd (its deferred unpause): the container stays paused until the image exists, is tagged and the commit
    // event is out — `docker events` shows pause, tag, commit, unpause — and is resumed whatever fails on the way
    let id: Digest;
    try {
      const extracted = await this.d.layers.extract(await this.d.layers.diff(r.ID));
      const layer = await this.d.layers.register(topChainOf(pc) as Digest | null, extracted);
      try {
        const created = rfc3339Nano(new Date());
        const raw: Record<string, unknown> = {
          architecture: pc.architecture,
          ...(o.author ? { author: o.author } : {}),
          config: goContainerConfig(cfg),
          container: r.ID,
          container_config: goContainerConfig(r.Config as ContainerConfig),
          created,
          docker_version: DOCKER_VERSION,
          history: [
            ...(pc.history ?? []),
            {
              created, created_by: [r.Path, ...r.Args].join(' '),
              ...(o.author ? { author: o.author } : {}), ...(o.comment ? { comment: o.comment } : {}),
            },
          ],
          os: pc.os,
          ...(pc.variant ? { variant: pc.variant } : {}),
          rootfs: { type: 'layers', diff_ids: [...pc.rootfs.diff_ids, layer.diffId] },
        };
        if (o.comment) raw.comment = o.comment;
        const img = await this.d.images.create(Buffer.from(JSON.stringify(raw)), parent.id);
        id = img.id;
      } finally {
        await this.d.layers.release(layer.chainId);
      }
      if (o.repo) {
        await this.d.tagImage(id, o.repo, o.tag || undefined);
        this.d.containers.events?.publish('image', 'tag', id, { ...(cfg.Labels ?? {}), name: `${o.repo}:${o.tag || 'latest'}` });
      }
      this.d.containers.emit(r, 'commit', { comment: o.comment ?? '', imageID: id, imageRef: o.repo ? `${o.repo}:${o.tag || 'latest'}` : '' });
    } finally {
      if (paused) await freeze!.unpause(r.ID).catch((e) => { this.d.log?.error('resuming a container paused for commit: it stays paused', { container: r.ID, error: e }); });
    }
    return id;
  }
}
