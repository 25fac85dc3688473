/**
 * ImageService: the Engine API's image resource (dockerd 20.10 semantics) over the image, reference and layer
 * stores — a facade over one file per verb (`list.ts`, `inspect.ts`, `history.ts`, `tag.ts`, `delete.ts`,
 * `prune.ts`, `import.ts`) sharing `context.ts`'s lookup. Pull is delegated to the distribution module's puller;
 * bootstrap to src/engine/bootstrap.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../../lib/digest.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import type { DeleteItem, HistoryItem, ImageSummary, ImportOptions, PullOptions } from '../../wire/index.js';
import type { Filters } from '../../lib/filters.js';
import { bootstrapImage } from '../bootstrap/index.js';
import { ImageContext, type ImageServiceDeps } from './context.js';
import { imageDelete } from './delete.js';
import { DOCKER_VERSION } from './format.js';
import { imageHistory } from './history.js';
import { importImage } from './import.js';
import { inspectImage } from './inspect.js';
import { imagesDiskUsage, listImages } from './list.js';
import { pruneImages } from './prune.js';
import { tagImage } from './tag.js';
import type { Image } from './types.js';

export type { ContainerUsers, ImageServiceDeps } from './context.js';
export { DOCKER_VERSION, goContainerConfig, goTimeString, goUnix } from './format.js';
export { decompressStream } from './decompress.js';

export class ImageService {
  private readonly ctx: ImageContext;
  private readonly puller: ImageServiceDeps['puller'];

  constructor(deps: ImageServiceDeps) {
    this.ctx = new ImageContext(deps);
    this.puller = deps.puller;
  }

  get dataRoot(): string { return this.ctx.dataRoot; }

  /** dockerd's GetImage (full ID, reference, or unambiguous ID prefix). */
  resolve(name: string): Promise<Image> { return this.ctx.resolve(name); }

  list(opts: { all: boolean; filters: Filters; sharedSize?: boolean }): Promise<ImageSummary[]> {
    return listImages(this.ctx, opts.all, opts.filters ?? {}, opts.sharedSize ?? false);
  }

  /** /system/df's image part: {LayersSize, Images} (Images with SharedSize and Containers filled in). */
  imagesDiskUsage(): Promise<{ LayersSize: number; Images: ImageSummary[] }> { return imagesDiskUsage(this.ctx); }

  inspect(name: string): Promise<Record<string, unknown>> { return inspectImage(this.ctx, name); }

  history(name: string): Promise<HistoryItem[]> { return imageHistory(this.ctx, name); }

  async tag(source: string, repo: string, tag: string | undefined): Promise<void> {
    const img = await this.ctx.resolve(source);
    await tagImage(this.ctx, img.id, repo, tag);
  }

  /** Tags an image ID with repo[:tag] (dockerd's TagImage after lookup). Returns the familiar reference. */
  tagImage(id: Digest, repo: string, tag?: string): Promise<string> { return tagImage(this.ctx, id, repo, tag); }

  remove(name: string, opts: { force: boolean; noPrune: boolean }): Promise<DeleteItem[]> {
    return imageDelete(this.ctx, name, opts.force, !opts.noPrune);
  }

  prune(filters: Filters): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> { return pruneImages(this.ctx, filters); }

  pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void> { return this.puller.pull(ref, opts, progress); }

  importImage(tar: Readable, opts: ImportOptions, progress: ProgressSink): Promise<string> { return importImage(this.ctx, tar, opts, progress); }

  bootstrap(name: string, progress: ProgressSink): Promise<string> {
    return bootstrapImage(name, {
      images: this.ctx.images, layers: this.ctx.layers, dataRoot: this.ctx.dataRoot, dockerVersion: DOCKER_VERSION,
      tag: (id, ref) => tagImage(this.ctx, id, ref).then(() => {}),
    }, progress);
  }
}
