/**
 * docker's build cache as data: the key of a step is its container_config (the instruction as a "#(nop)" command
 * with effective build args and, for COPY/ADD, the source hash; Image and Hostname left out), looked up among the
 * children of the parent image (local cache), and `--cache-from` sources (image/cache's history match).
 */
import type { Digest } from '../../lib/digest.js';
import { notFoundAs } from '../../lib/errors.js';
import type { ContainerConfig, Image, ImageStore } from '../images/types.js';

export interface CacheDeps {
  images: ImageStore;
  resolveImage(name: string): Promise<Image>;
  containerConfig(c: ContainerConfig): Record<string, unknown>;
  dockerVersion: string;
}

export interface CacheOptions { noCache: boolean; cacheFrom: readonly string[] }

/** The step being probed: the image it builds on and the run config after the instruction. */
export interface CacheProbe { imageId: Digest | null; run: ContainerConfig }

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) o[k] = sortKeys((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

/** The cache comparison of two container_configs (docker ignores Image and Hostname). */
export function cacheKeyOf(cc: ContainerConfig | Record<string, unknown> | undefined): string {
  const c = { ...(cc ?? {}) } as Record<string, unknown>;
  delete c.Image;
  delete c.Hostname;
  for (const k of Object.keys(c)) {
    const v = c[k];
    if (v === null || v === '' || v === false || (Array.isArray(v) && v.length === 0) || (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) delete c[k];
  }
  return JSON.stringify(sortKeys(c));
}

export class BuildCache {
  private cacheSources: Image[] | null = null;

  constructor(private readonly d: CacheDeps, private readonly opts: CacheOptions) {}

  /** The image that gives this step from the cache, or null. */
  async find(st: CacheProbe, ccCmd: string[]): Promise<Image | null> {
    if (this.opts.noCache) return null;
    const want = cacheKeyOf(this.d.containerConfig({ ...st.run, Cmd: ccCmd }));
    let candidates: Digest[];
    if (st.imageId) candidates = await this.d.images.children(st.imageId);
    else candidates = (await this.d.images.list()).filter((i) => i.parent === null).map((i) => i.id);
    let best: Image | null = null;
    for (const c of candidates) {
      const img = await this.d.images.get(c).catch(notFoundAs(null));
      if (!img) continue;
      if (cacheKeyOf(img.config.container_config) !== want) continue;
      if (!best || (img.config.created ?? '') > (best.config.created ?? '')) best = img;
    }
    if (this.opts.cacheFrom.length) best = await this.cacheFrom(st, ccCmd, best);
    return best;
  }

  /**
   * docker's --cache-from (image/cache): a local hit counts only when it is an ancestor of a source image; otherwise
   * a source whose history and layers continue the current image with this very step (created_by = the step's
   * command) gives the step: the source itself when this is its last step (it gets the current image as parent),
   * else an image restored from the source's history entry and layer. Sources are pulled images without parents.
   */
  private async cacheFrom(st: CacheProbe, ccCmd: string[], local: Image | null): Promise<Image | null> {
    if (!this.cacheSources) {
      this.cacheSources = [];
      for (const n of this.opts.cacheFrom) {
        const img = await this.d.resolveImage(n).catch(notFoundAs(null));
        if (img) this.cacheSources.push(img);
      }
    }
    if (local) {
      for (const s of this.cacheSources) {
        let cur: Image | null = s;
        while (cur) {
          if (cur.id === local.id) return local;
          cur = cur.parent ? await this.d.images.get(cur.parent).catch(notFoundAs(null)) : null;
        }
      }
    }
    const parent = st.imageId ? await this.d.images.get(st.imageId) : null;
    const pHist = parent?.config.history ?? [];
    const pDiffs = parent?.config.rootfs?.diff_ids ?? [];
    const L = pHist.length;
    const want = ccCmd.join(' ');
    for (const t of this.cacheSources) {
      const h = t.config.history ?? [];
      const diffs = t.config.rootfs?.diff_ids ?? [];
      if (h.length <= L) continue;
      if (JSON.stringify(h.slice(0, L)) !== JSON.stringify(pHist)) continue;
      if (JSON.stringify(diffs.slice(0, pDiffs.length)) !== JSON.stringify(pDiffs)) continue;
      const step = h[L]!;
      if (step.created_by !== want) continue;
      if (h.length - 1 === L) {
        if (parent) await this.d.images.setParent(t.id, parent.id);
        return t;
      }
      // restore the intermediate image from the source's history entry and layer
      const diffIds = [...pDiffs];
      if (!step.empty_layer) diffIds.push(diffs[pDiffs.length]!);
      const config = { ...st.run, Image: parent?.id ?? '' };
      const cfg: Record<string, unknown> = {
        architecture: t.config.architecture,
        ...(t.config.author ? { author: t.config.author } : {}),
        config: this.d.containerConfig(config),
        container_config: this.d.containerConfig({ ...config, Cmd: ccCmd }),
        created: step.created,
        docker_version: this.d.dockerVersion,
        history: [...pHist, step],
        os: t.config.os,
        rootfs: { type: 'layers', diff_ids: diffIds },
      };
      const img = await this.d.images.create(Buffer.from(JSON.stringify(cfg)), parent?.id ?? null);
      this.cacheSources = [t];
      return img;
    }
    return null;
  }
}
