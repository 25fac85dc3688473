/**
 * The docker-archive writer (dockerd 20.10's image/tarexport): per layer `<v1id>/{VERSION,json,layer.tar}`,
 * per image `<config hex>.json`, and at the end `manifest.json` ([{Config, RepoTags, Layers}]) and
 * `repositories`.
 */
import { createReadStream } from 'node:fs';
import { Transform, pipeline as streamPipeline } from 'node:stream';
import type { LayerStore } from '../layers/types.js';
import type { Image, ImageConfig } from '../images/types.js';
import { chainIdOf, hexOf, newHasher, sha256, type Digest } from '../../lib/digest.js';
import { SystemError } from '../../lib/errors.js';
import { familiarName, familiarString, type Reference } from '../../lib/reference.js';
import type { EntryWriter, ManifestItem } from './types.js';

/** A layer ready to be written: a spooled, checked tar file, or (`file` null) the store's exact bytes. */
export interface SpooledLayer { file: string | null; size: number; diffId: Digest }

/** A layer as written: its diff ID, size and path inside the archive. */
export interface WrittenLayer { digest: Digest; size: number; path: string }

/** The legacy v1 layer ID docker writes as the layer directory name (deterministic per chain). */
function v1Id(parentV1: string, diffId: Digest, topConfig?: Buffer): string {
  return hexOf(sha256(`${parentV1}\n${diffId}${topConfig ? `\n${sha256(topConfig)}` : ''}`));
}

export class DockerArchiveWriter {
  private readonly manifest: ManifestItem[] = [];
  private readonly repositories: Record<string, Record<string, string>> = {};
  private readonly written = new Set<string>();

  constructor(private readonly entry: EntryWriter, private readonly layers: LayerStore, private readonly spooled: ReadonlyMap<Digest, SpooledLayer>) {}

  /** Writes an image's layer directories (each once per archive) and its config; returns its layers as written. */
  async addImage(img: Image, tags: readonly Reference[]): Promise<WrittenLayer[]> {
    const { entry } = this;
    const id = img.id;
    const cfg = img.config as ImageConfig;
    const diffIds = cfg.rootfs?.diff_ids ?? [];
    const layerPaths: string[] = [];
    const out: WrittenLayer[] = [];
    let parentV1 = '';
    let chain: Digest | null = null;
    for (let i = 0; i < diffIds.length; i++) {
      chain = chainIdOf(chain, diffIds[i]!);
      const top = i === diffIds.length - 1;
      const lid = v1Id(parentV1, diffIds[i]!, top ? img.raw : undefined);
      layerPaths.push(`${lid}/layer.tar`);
      out.push({ digest: diffIds[i]! as Digest, size: this.spooled.get(chain)!.size, path: `${lid}/layer.tar` });
      if (!this.written.has(lid)) {
        this.written.add(lid);
        await entry({ name: `${lid}/`, type: 'directory', mode: 0o755 });
        await entry({ name: `${lid}/VERSION`, mode: 0o644 }, Buffer.from('1.0'));
        const json: Record<string, unknown> = { id: lid, ...(parentV1 ? { parent: parentV1 } : {}), created: cfg.created ?? '1970-01-01T00:00:00Z', os: cfg.os ?? 'linux' };
        await entry({ name: `${lid}/json`, mode: 0o644 }, Buffer.from(JSON.stringify(json)));
        const { file, size, diffId } = this.spooled.get(chain)!;
        if (file !== null) {
          await entry({ name: `${lid}/layer.tar`, mode: 0o644, size }, createReadStream(file));
        } else {
          const h = newHasher();
          const check = new Transform({
            transform(c: Buffer, _e, cb) { h.update(c); cb(null, c); },
            flush(cb) {
              const got = `sha256:${h.digest('hex')}`;
              cb(got === diffId ? null : new SystemError(`layer ${diffId} of image ${id} cannot be reproduced by the layer store (its tar has diff ID ${got})`));
            },
          });
          streamPipeline(await this.layers.tarStream(chain), check, () => { /* errors reach `check` */ });
          await entry({ name: `${lid}/layer.tar`, mode: 0o644, size }, check);
        }
      }
      parentV1 = lid;
    }
    await entry({ name: this.configPath(id), mode: 0o644 }, img.raw);
    const repoTags = tags.map((t) => familiarString(t));
    this.manifest.push({ Config: this.configPath(id), RepoTags: repoTags.length ? repoTags : null, Layers: layerPaths });
    for (const t of tags) {
      if (!parentV1 || t.tag === undefined) continue;
      (this.repositories[familiarName(t)] ??= {})[t.tag] = parentV1;
    }
    return out;
  }

  /** Where an image's config is in the archive. */
  configPath(id: Digest): string { return `${hexOf(id)}.json`; }

  /** `manifest.json` and `repositories`. */
  async finish(): Promise<void> {
    await this.entry({ name: 'manifest.json', mode: 0o644 }, Buffer.from(JSON.stringify(this.manifest)));
    if (Object.keys(this.repositories).length > 0) {
      await this.entry({ name: 'repositories', mode: 0o644 }, Buffer.from(JSON.stringify(this.repositories)));
    }
  }
}
