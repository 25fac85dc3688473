/**
 * What every image verb shares: the stores, the container lookup and dockerd's image lookup (`resolve`: full
 * ID, reference, or unambiguous ID prefix), with parsed references cached.
 */
import { hexOf, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, NotFoundError, WharfError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import type { PullOptions } from '../../wire/index.js';
import type { LayerStore } from '../layers/types.js';
import { familiarString, parseNamed, refString, withDefaultTag, type ParsedRef } from './refs.js';
import type { ChangeApplier, Image, ImageStore, ReferenceStore } from './types.js';
import { discardLogger, type Logger } from '../../lib/log.js';

export interface ContainerUsers {
  usersOf(imageId: string): Promise<{ id: string; running: boolean }[]>;
}

/**
 * Makes a base image without a registry into the given stores (engine/bootstrap's `bootstrapImage`; the
 * composition root passes it, so images never imports bootstrap, which builds on images).
 */
export type Bootstrapper = (
  name: string,
  into: { images: ImageStore; layers: LayerStore; dataRoot: string; dockerVersion: string; tag(id: Digest, ref: string): Promise<void> },
  progress: ProgressSink,
) => Promise<Digest>;

export interface ImageServiceDeps {
  images: ImageStore;
  refs: ReferenceStore;
  layers: LayerStore;
  dataRoot: string;
  puller: { pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void> };
  containers?: ContainerUsers;
  /** `import --change`: the builder's applier, passed by the composition root. */
  applyChanges: ChangeApplier;
  /** POST /images/bootstrap; absent: bootstrap is refused. */
  bootstrap?: Bootstrapper;
  log?: Logger;
}

export class ImageContext {
  readonly images: ImageStore;
  readonly refs: ReferenceStore;
  readonly layers: LayerStore;
  readonly dataRoot: string;
  readonly containers?: ContainerUsers;
  readonly applyChanges: ChangeApplier;
  readonly log: Logger;
  /** Set while a prune runs (one at a time). */
  pruneRunning = false;
  private readonly parsedCache = new Map<string, ParsedRef>();

  constructor(deps: ImageServiceDeps) {
    this.images = deps.images;
    this.refs = deps.refs;
    this.layers = deps.layers;
    this.dataRoot = deps.dataRoot;
    this.containers = deps.containers;
    this.applyChanges = deps.applyChanges;
    this.log = deps.log ?? discardLogger;
  }

  private parsed(ref: string): ParsedRef {
    let p = this.parsedCache.get(ref);
    if (!p) {
      p = parseNamed(ref);
      this.parsedCache.set(ref, p);
    }
    return p;
  }

  /** The references of an image, parsed, in the reference store's (lexical) order. */
  refsOf(id: Digest): ParsedRef[] {
    return this.refs.refsOf(id).map((r) => this.parsed(r));
  }

  async usersOf(id: Digest): Promise<{ id: string; running: boolean }[]> {
    return this.containers ? await this.containers.usersOf(id) : [];
  }

  private notFound(ref: string): NotFoundError {
    return new NotFoundError(`No such image: ${ref}`);
  }

  /**
   * dockerd's GetImage: a full ID ("sha256:<hex>" or 64 hex), a reference (tag, default latest, or name@digest),
   * or an unambiguous ID prefix.
   */
  async resolve(name: string): Promise<Image> {
    if (/^[a-f0-9]{64}$/.test(name) || /^sha256:[a-f0-9]{64}$/.test(name)) {
      const id = (name.startsWith('sha256:') ? name : `sha256:${name}`) as Digest;
      if (await this.images.has(id)) return this.images.get(id);
      throw this.notFound(id);
    }
    let ref: ParsedRef;
    try {
      ref = parseNamed(name);
    } catch (e) {
      throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message, { cause: e });
    }
    const full = withDefaultTag(ref);
    const id = this.refs.get(refString(full));
    if (id && (await this.images.has(id))) return this.images.get(id);
    const found = await this.searchPrefix(name);
    if (found) return this.images.get(found);
    throw this.notFound(familiarString(full));
  }

  /** Truncated-index lookup: a unique image whose hex ID starts with the given prefix. */
  private async searchPrefix(term: string): Promise<Digest | null> {
    const hex = term.startsWith('sha256:') ? term.slice(7) : term;
    if (!/^[a-f0-9]+$/.test(hex)) return null;
    let match: Digest | null = null;
    for (const img of await this.images.list()) {
      if (hexOf(img.id).startsWith(hex)) {
        if (match) return null; // ambiguous
        match = img.id;
      }
    }
    return match;
  }
}
