/**
 * The Puller: `docker pull` as dockerd does it, with the same JSON progress messages, but each layer is
 * fetched, verified, decompressed and extracted in one streaming pass, and different layers extract in
 * parallel (dockerd extracts serially).
 *
 * Order of publication (nothing half-visible): layers are registered bottom-up, then the image config
 * (`images.create`, the image now exists), then the tag and the repo digest. On any failure, extracted but
 * unregistered layers are dropped (the layer store never lists them and removes their directories when it
 * opens) and the references this pull took on registered layers are released, so layers no image holds go away.
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressionOf, decompressor } from '../../lib/compression.js';
import type { LayerStore, ExtractedLayer } from '../layers/types.js';
import type { ImageStore, ReferenceStore, ImageConfig } from '../images/types.js';
import type { DaemonConfig } from '../config.js';
import type { PullOptions } from '../../wire/index.js';
import type { JSONMessage, ProgressSink } from '../../lib/jsonmessage.js';
import { chainIds, isDigest, newHasher, sha256, shortId, type Digest } from '../../lib/digest.js';
import {
  InvalidParameterError, NotFoundError, SystemError, UnavailableError, WharfError,
} from '../../lib/errors.js';
import {
  familiarName, familiarString, normalizedName, parseNormalizedNamed, referenceString, withDefaultTag,
  type Reference,
} from '../../lib/reference.js';
import { Repository, RegistryHttpError, errcodeString, type FetchedManifest } from './registry.js';
import type { Descriptor, ImageManifest } from '../../lib/oci/manifest.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, selectPlatform, type Platform } from '../../lib/oci/platform.js';
import { progressBar } from './progress.js';
import { V2Metadata } from './metadata.js';
import { Semaphore } from '../../lib/sync.js';
import { peek } from '../../lib/streams.js';
import type { Logger } from '../../lib/log.js';

export interface PullerDeps {
  layers: LayerStore;
  images: ImageStore;
  refs: ReferenceStore;
  config: DaemonConfig;
  dataRoot: string;
  log?: Logger;
}

/** How often (ms) a layer's Downloading progress is sent at most. */
const PROGRESS_INTERVAL_MS = 100;

interface Inflight {
  done: Promise<void>;
  messages: JSONMessage[];
  sinks: Set<ProgressSink>;
  /** Aborted when every caller's signal has aborted (a caller without a signal keeps it alive). */
  abort: AbortController;
  live: number;
}

/** The decompressor for a layer: by magic number (gzip 1f 8b, zstd 28 b5 2f fd), else by media type. */
export function decompressorFor(mediaType: string, head: Buffer): Transform {
  return decompressor(compressionOf(mediaType, head));
}

/** The error message of a registry error the way dockerd's translatePullError words it. */
function translate(err: unknown, ref: Reference): unknown {
  if (!(err instanceof RegistryHttpError)) return err;
  const first = err.errors[0];
  if (first) {
    switch (first.code) {
      case 'MANIFEST_UNKNOWN':
        return new NotFoundError(`manifest for ${familiarString(ref)} not found: ${errcodeString(first)}`);
      case 'DENIED':
        return new NotFoundError(`pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': ${errcodeString(first)}`);
      case 'NAME_UNKNOWN':
      case 'UNAUTHORIZED':
        return new NotFoundError(`pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
      case 'TOOMANYREQUESTS':
        return new UnavailableError(`toomanyrequests: ${first.message ?? 'too many requests'}`);
    }
  }
  if (err.status >= 500) return new UnavailableError(err.message);
  return new SystemError(err.message);
}

export class Puller {
  private readonly inflight = new Map<string, Inflight>();
  private readonly metadata: V2Metadata;
  /** Chain IDs some pull in this process is fetching; resolves true once that pull registered the layer. */
  private readonly layerJobs = new Map<Digest, Promise<boolean>>();

  constructor(private readonly deps: PullerDeps) {
    this.metadata = new V2Metadata(deps.dataRoot);
  }

  /**
   * Pulls `ref` ("busybox", "host:5000/repo:tag", "repo@sha256:…"; the default tag is "latest"), streaming
   * dockerd's progress messages. Errors before the first message (bad reference, unreachable registry, unknown
   * manifest, denied) are thrown with nothing sent, so the API can answer with a status code. Concurrent pulls
   * of the same reference share one operation: a later caller gets the messages so far, then the rest.
   */
  pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void> {
    let named: Reference;
    let platform: Platform;
    try {
      named = parseNormalizedNamed(ref);
      if (opts.allTags && (named.tag !== undefined || named.digest !== undefined)) {
        throw new InvalidParameterError('tag can\'t be used with --all-tags/-a');
      }
      if (!opts.allTags) {
        named = withDefaultTag(named);
        if (named.digest !== undefined && named.tag !== undefined) {
          const { tag: _t, ...rest } = named;
          named = rest;
        }
      }
      platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    } catch (e) {
      return Promise.reject(e);
    }
    const who = opts.auth?.username ?? (opts.auth?.auth ? Buffer.from(opts.auth.auth, 'base64').toString().split(':')[0] : '');
    const key = JSON.stringify([referenceString(named), formatPlatform(platform), !!opts.allTags, who]);
    const existing = this.inflight.get(key);
    if (existing) {
      for (const m of existing.messages) progress(m);
      existing.sinks.add(progress);
      this.watch(existing, progress, opts.signal);
      return existing.done;
    }
    const entry: Inflight = { done: Promise.resolve(), messages: [], sinks: new Set([progress]), abort: new AbortController(), live: 0 };
    const emit: ProgressSink = (m) => {
      entry.messages.push(m);
      for (const s of entry.sinks) {
        try { s(m); } catch { /* a broken listener must not break the pull */ }
      }
    };
    this.watch(entry, progress, opts.signal);
    entry.done = (async () => {
      try {
        await this.run(named, platform, { ...opts, signal: entry.abort.signal }, emit);
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, entry);
    return entry.done;
  }

  /** Counts a caller; when its signal aborts it stops receiving progress, and the last one out cancels. */
  private watch(entry: Inflight, sink: ProgressSink, signal?: AbortSignal): void {
    entry.live++;
    if (!signal) { entry.live = Number.POSITIVE_INFINITY; return; }
    const leave = () => {
      entry.sinks.delete(sink);
      if (--entry.live <= 0) entry.abort.abort(signal.reason ?? new Error('pull cancelled'));
    };
    if (signal.aborted) leave();
    else signal.addEventListener('abort', leave, { once: true });
  }

  private async run(named: Reference, platform: Platform, opts: PullOptions, emit: ProgressSink): Promise<void> {
    const repo = new Repository(named.domain, named.path, { config: this.deps.config, auth: opts.auth, signal: opts.signal });
    if (opts.allTags) {
      let tags: string[];
      try { tags = await repo.tags(); } catch (e) { throw translate(e, named); }
      if (tags.length === 0) throw new NotFoundError(`no tags found for ${familiarName(named)}`);
      let updated = false;
      for (const tag of tags) {
        if (await this.pullOne(repo, { domain: named.domain, path: named.path, tag }, tag, platform, opts, emit)) updated = true;
      }
      emit({ status: `Status: ${updated ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarName(named)}` });
      return;
    }
    const tagOrDigest = named.digest ?? named.tag!;
    const updated = await this.pullOne(repo, named, tagOrDigest, platform, opts, emit);
    emit({ status: `Status: ${updated ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(named)}` });
  }

  /** Pulls one tag or digest; returns whether the reference now points at a different image than before. */
  private async pullOne(repo: Repository, named: Reference, tagOrDigest: string, platform: Platform, opts: PullOptions, emit: ProgressSink): Promise<boolean> {
    const { images, refs } = this.deps;
    let top: FetchedManifest;
    try { top = await repo.getManifest(tagOrDigest); } catch (e) { throw translate(e, named); }
    emit({ status: `Pulling from ${named.path}`, id: tagOrDigest });

    let fetched = top;
    if (top.kind === 'index') {
      const desc = selectPlatform(top.index!.manifests, platform);
      try { fetched = await repo.getManifest(desc.digest); } catch (e) { throw translate(e, named); }
      if (fetched.kind !== 'manifest') throw new InvalidParameterError(`manifest ${desc.digest} in the manifest list is not an image manifest`);
    }
    const manifest = fetched.manifest!;
    const configDigest = manifest.config.digest;

    let imageId: Digest;
    let rawConfig: Buffer | null = null;
    if (await images.has(configDigest)) {
      imageId = configDigest;
    } else {
      try { rawConfig = await repo.fetchBlobBytes(configDigest); } catch (e) { throw translate(e, named); }
      if (sha256(rawConfig) !== configDigest) {
        throw new InvalidParameterError(`image config verification failed for digest ${configDigest}`);
      }
      let config: ImageConfig;
      try { config = JSON.parse(rawConfig.toString('utf8')) as ImageConfig; } catch { throw new InvalidParameterError(`invalid image config ${configDigest}`); }
      if (top.kind === 'manifest' && opts.platform && !platformMatches(config, platform)) {
        const actual = formatPlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
        throw new InvalidParameterError(`image with reference ${familiarString(named)} was found but does not match the specified platform: wanted ${formatPlatform(platform)}, actual: ${actual}`);
      }
      imageId = await this.fetchLayers(repo, named, manifest, config, rawConfig, emit, opts.signal);
    }

    emit({ status: `Digest: ${top.digest}` });

    const digestRef = `${normalizedName(named)}@${top.digest}`;
    let updated: boolean;
    if (named.digest !== undefined) {
      updated = refs.get(digestRef) !== imageId;
      await this.addDigestRef(digestRef, imageId);
    } else {
      const tagRef = referenceString({ domain: named.domain, path: named.path, tag: named.tag });
      updated = refs.get(tagRef) !== imageId;
      await refs.add(tagRef, imageId);
      await this.addDigestRef(digestRef, imageId);
    }
    return updated;
  }

  private async addDigestRef(ref: string, id: Digest): Promise<void> {
    const { refs } = this.deps;
    const old = refs.get(ref);
    if (old === id) return;
    if (old) await refs.delete(ref); // same index digest, another platform: the newest pull wins (as dockerd)
    await refs.add(ref, id);
  }

  /** Downloads and extracts the missing layers, registers them in order, creates the image. Returns its ID. */
  private async fetchLayers(
    repo: Repository, named: Reference, manifest: ImageManifest, config: ImageConfig, rawConfig: Buffer,
    emit: ProgressSink, signal?: AbortSignal,
  ): Promise<Digest> {
    const { layers, images } = this.deps;
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.some((d) => !isDigest(String(d))) || diffIds.length !== manifest.layers.length) {
      throw new InvalidParameterError("layers from manifest don't match image configuration");
    }
    const chains = chainIds(diffIds);
    const n = diffIds.length;
    let existing = 0;
    while (existing < n && (await layers.has(chains[existing]!))) existing++;

    // references this pull holds until the image holds the layers; released top-down at the end
    const held: Digest[] = [];
    if (existing > 0) {
      await layers.retain(chains[existing - 1]!);
      held.push(chains[existing - 1]!);
    }
    const limit = Math.max(1, this.deps.config.maxConcurrentDownloads || 3);
    // Layers another pull in this process is already fetching are not fetched twice: wait for its registration.
    const others = new Map<number, Promise<boolean>>();
    const owned = new Map<number, (ok: boolean) => void>();
    for (let i = existing; i < n; i++) {
      const job = this.layerJobs.get(chains[i]!);
      if (job) { others.set(i, job); continue; }
      let resolve!: (ok: boolean) => void;
      const p = new Promise<boolean>((r) => { resolve = r; });
      this.layerJobs.set(chains[i]!, p);
      owned.set(i, (ok) => {
        resolve(ok);
        if (this.layerJobs.get(chains[i]!) === p) this.layerJobs.delete(chains[i]!);
        owned.delete(i);
      });
    }
    try {
      const idOf = (i: number) => shortId(manifest.layers[i]!.digest);
      for (let i = 0; i < n; i++) {
        emit({ status: i < existing ? 'Already exists' : 'Pulling fs layer', progressDetail: {}, id: idOf(i) });
      }
      let queued = 0;
      for (let i = existing; i < n; i++) {
        if (others.has(i) || (owned.has(i) && queued++ >= limit)) emit({ status: 'Waiting', progressDetail: {}, id: idOf(i) });
      }

      const abort = new AbortController();
      const onOuterAbort = () => abort.abort(signal?.reason);
      signal?.addEventListener('abort', onOuterAbort, { once: true });
      const sem = new Semaphore(limit);
      const download = (i: number) => sem.run(() => {
        if (abort.signal.aborted) throw new SystemError('pull cancelled');
        return this.fetchLayer(repo, manifest.layers[i]!, emit, abort.signal);
      });
      const tasks: Promise<ExtractedLayer | 'shared'>[] = [];
      for (let i = existing; i < n; i++) {
        const other = others.get(i);
        // the other pull failed: fetch it ourselves
        const t: Promise<ExtractedLayer | 'shared'> = other ? other.then<ExtractedLayer | 'shared'>((ok) => (ok ? 'shared' as const : download(i))) : download(i);
        t.catch(() => {}); // awaited below, in order; this only keeps an early failure from being "unhandled"
        tasks[i] = t;
      }
      let parent: Digest | null = existing > 0 ? chains[existing - 1]! : null;
      try {
        for (let i = existing; i < n; i++) {
          const desc = manifest.layers[i]!;
          let extracted = await tasks[i]!;
          if (extracted === 'shared') {
            try {
              await layers.retain(chains[i]!);
              held.push(chains[i]!);
              parent = chains[i]!;
              emit({ status: 'Download complete', progressDetail: {}, id: idOf(i) });
              emit({ status: 'Pull complete', progressDetail: {}, id: idOf(i) });
              continue;
            } catch {
              extracted = await download(i); // released again in between: fetch it ourselves
            }
          }
          if (extracted.diffId !== diffIds[i]) {
            throw new InvalidParameterError(
              `layers from manifest don't match image configuration: layer ${desc.digest} has diff ID ${extracted.diffId}, the image config says ${diffIds[i]}`);
          }
          const layer = await layers.register(parent, extracted);
          held.push(layer.chainId);
          if (layer.chainId !== chains[i]) throw new SystemError(`layer store registered ${layer.chainId}, expected ${chains[i]}`);
          parent = layer.chainId;
          owned.get(i)?.(true);
          emit({ status: 'Pull complete', progressDetail: {}, id: shortId(desc.digest) });
        }
      } catch (e) {
        abort.abort();
        const settled = await Promise.all(tasks.map((t, i) => t.then((x) => ({ i, x }), () => null)));
        // extracted but never registered: drop now (the store would also remove them when it next opens)
        for (const s of settled) {
          if (s && s.x !== 'shared' && chains[s.i] && !held.includes(chains[s.i]!)) await this.discard(s.x);
        }
        throw e;
      } finally {
        signal?.removeEventListener('abort', onOuterAbort);
      }

      await this.metadata.add(manifest.layers.slice(existing).map((d, k) => ({
        blob: d.digest, diffId: diffIds[existing + k]!, repository: normalizedName(named), mediaType: d.mediaType,
      }))).catch((e) => { this.deps.log?.warn('recording v2 metadata (only a cache)', { error: e }); });
      const img = await images.create(rawConfig);
      return img.id;
    } finally {
      for (const done of [...owned.values()]) done(false);
      for (const c of held.reverse()) await layers.release(c).catch((e) => { this.deps.log?.error('releasing a layer held by a pull: its refcount stays one too high', { layer: c, error: e }); });
    }
  }

  /** Drops an extracted, unregistered layer now (else the layer store's startup sweep removes it). */
  private async discard(x: ExtractedLayer): Promise<void> {
    await this.deps.layers.discard?.(x).catch((e) => { this.deps.log?.warn('discarding an unregistered layer (the store sweeps it at start)', { error: e }); });
  }

  /** One layer, one pass: HTTP body → sha256 + size check → decompress → layers.extract. */
  private async fetchLayer(repo: Repository, desc: Descriptor, emit: ProgressSink, signal: AbortSignal): Promise<ExtractedLayer> {
    const id = shortId(desc.digest);
    const total = desc.size;
    const { body } = await repo.fetchBlob(desc.digest);
    const onAbort = () => body.destroy(new SystemError('pull cancelled'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { head, stream: src } = await peek(body, 4);
      const hasher = newHasher();
      let got = 0;
      let last = 0;
      const report = (status: string, current: number) => emit({
        status, progressDetail: { current, total }, progress: progressBar(current, total), id,
      });
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hasher.update(chunk);
          got += chunk.length;
          if (got > total) return cb(new InvalidParameterError(`filesystem layer verification failed for digest ${desc.digest}: more than ${total} bytes`));
          const now = Date.now();
          if (now - last >= PROGRESS_INTERVAL_MS) { last = now; report('Downloading', got); }
          cb(null, chunk);
        },
        flush(cb) {
          if (got !== total) return cb(new SystemError(`error pulling layer ${desc.digest}: unexpected EOF (${got} of ${total} bytes)`));
          const d = `sha256:${hasher.digest('hex')}`;
          if (d !== desc.digest) return cb(new InvalidParameterError(`filesystem layer verification failed for digest ${desc.digest}`));
          emit({ status: 'Verifying Checksum', progressDetail: {}, id });
          emit({ status: 'Download complete', progressDetail: {}, id });
          cb();
        },
      });
      // the compressed bytes go to the layer store, which decompresses them on its extraction thread
      const compression = compressionOf(desc.mediaType ?? '', head);
      // whichever side fails first holds the cause; the other side only sees the teardown
      let cause: { err: unknown } | null = null;
      const extractP = this.deps.layers.extract(counter, { compression }).catch((e: unknown) => {
        cause ??= { err: e };
        counter.destroy(e as Error);
        body.destroy();
        throw e;
      });
      const pipeP = pipeline(src, counter).catch((e: unknown) => {
        // a premature close of the counter is the extraction's teardown (it failed, e.g. ENOSPC, and stopped
        // reading): the extraction's error is the cause, not "Premature close"
        if ((e as NodeJS.ErrnoException)?.code !== 'ERR_STREAM_PREMATURE_CLOSE') cause ??= { err: wrapStreamError(e, desc.digest) };
        throw e;
      });
      const [pr, er] = await Promise.allSettled([pipeP, extractP]);
      if (pr.status === 'rejected' || er.status === 'rejected') {
        if (er.status === 'fulfilled') await this.discard(er.value);
        throw (cause as { err: unknown } | null)?.err
          ?? wrapStreamError(er.status === 'rejected' ? er.reason : (pr as PromiseRejectedResult).reason, desc.digest);
      }
      report('Extracting', total);
      return er.value;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!body.destroyed) body.destroy();
    }
  }
}

function wrapStreamError(e: unknown, digest: Digest): unknown {
  if (e instanceof WharfError) return e;
  const msg = (e as Error)?.message ?? String(e);
  return new SystemError(`error pulling layer ${digest}: ${msg}`, { cause: e });
}
