/**
 * ImageService: the Engine API's image resource (dockerd 20.10 semantics) over the image, reference, layer and
 * content stores. Pull is delegated to the distribution module's puller; bootstrap to src/engine/bootstrap.
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { chainIds, hexOf, type Digest } from '../../lib/digest.js';
import { ConflictError, InvalidParameterError, NotFoundError, WharfError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { getBoolOrDefault, hasFilter, matchKVList, validateFilters } from '../../lib/filters.js';
import type {
  DeleteItem, Filters, HistoryItem, ImageBackend, ImageSummary, ImportOptions, PullOptions,
} from '../../api/backend.js';
import type { ContentStore } from '../content/types.js';
import type { LayerStore } from '../layers/types.js';
import { applyChanges } from './changes.js';
import { familiarName, familiarString, parseNamed, refString, withDefaultTag, withTag, type ParsedRef } from './refs.js';
import { rfc3339Nano, topChainOf } from './store.js';
import type { ContainerConfig, Image, ImageConfig, ImageStore, ReferenceStore } from './types.js';
import { bootstrapImage } from '../bootstrap/index.js';

/** The Docker version written into configs this engine creates (import, bootstrap). */
export const DOCKER_VERSION = '20.10.24';

export interface ContainerUsers {
  usersOf(imageId: string): Promise<{ id: string; running: boolean }[]>;
}

export interface ImageServiceDeps {
  images: ImageStore;
  refs: ReferenceStore;
  layers: LayerStore;
  content: ContentStore;
  dataRoot: string;
  puller: { pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void> };
  containers?: ContainerUsers;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';
const ZERO_UNIX = -62135596800;

/** Go's runtime.GOARCH for this host. */
export function goArch(arch: string = process.arch): string {
  switch (arch) {
    case 'x64': return 'amd64';
    case 'ia32': return '386';
    case 'arm': return 'arm';
    case 'arm64': return 'arm64';
    case 'ppc64': return 'ppc64le';
    case 's390x': return 's390x';
    case 'riscv64': return 'riscv64';
    default: return arch;
  }
}

const TIME_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i;

/** A config time as Go's time.Format(RFC3339Nano) prints it after parsing ("" / absent → zero time). */
export function goTimeString(s: string | undefined): string {
  if (!s) return ZERO_TIME;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_TIME;
  const frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[3]!.toUpperCase() === 'Z' || m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]!;
  return `${m[1]}${frac ? '.' + frac : ''}${zone}`;
}

/** Unix seconds of a config time (Go's Time.Unix()); absent → the zero time's. */
export function goUnix(s: string | undefined): number {
  if (!s) return ZERO_UNIX;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_UNIX;
  const ms = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`);
  return Number.isNaN(ms) ? ZERO_UNIX : Math.floor(ms / 1000);
}

/** Sortable time of a config: [unix ms, nanos within the ms]. */
function timeKey(s: string | undefined): number {
  if (!s) return ZERO_UNIX * 1000;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_UNIX * 1000;
  const base = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`);
  const frac = Number(`0.${m[2] ?? '0'}`);
  return base + frac * 1000;
}

/** container.Config as Go marshals it (field order, nulls, omitempty). */
export function goContainerConfig(c: ContainerConfig | undefined | null): Record<string, unknown> {
  const x = c ?? {};
  const o: Record<string, unknown> = {
    Hostname: x.Hostname ?? '',
    Domainname: x.Domainname ?? '',
    User: x.User ?? '',
    AttachStdin: x.AttachStdin ?? false,
    AttachStdout: x.AttachStdout ?? false,
    AttachStderr: x.AttachStderr ?? false,
  };
  if (x.ExposedPorts && Object.keys(x.ExposedPorts).length) o.ExposedPorts = x.ExposedPorts;
  o.Tty = x.Tty ?? false;
  o.OpenStdin = x.OpenStdin ?? false;
  o.StdinOnce = x.StdinOnce ?? false;
  o.Env = x.Env ?? null;
  o.Cmd = x.Cmd ?? null;
  if (x.Healthcheck) o.Healthcheck = x.Healthcheck;
  if (x.ArgsEscaped) o.ArgsEscaped = true;
  o.Image = x.Image ?? '';
  o.Volumes = x.Volumes ?? null;
  o.WorkingDir = x.WorkingDir ?? '';
  o.Entrypoint = x.Entrypoint ?? null;
  if (x.NetworkDisabled) o.NetworkDisabled = true;
  const mac = (x as Record<string, unknown>).MacAddress;
  if (typeof mac === 'string' && mac) o.MacAddress = mac;
  o.OnBuild = x.OnBuild ?? null;
  o.Labels = x.Labels ?? null;
  if (x.StopSignal) o.StopSignal = x.StopSignal;
  const st = (x as Record<string, unknown>).StopTimeout;
  if (typeof st === 'number') o.StopTimeout = st;
  if (x.Shell && x.Shell.length) o.Shell = x.Shell;
  return o;
}

/** Go's path.Match (used by docker's reference filter). Throws on a malformed pattern. */
export function pathMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      i++;
      if (i >= pattern.length) throw new InvalidParameterError('syntax error in pattern');
      re += pattern[i]!.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new InvalidParameterError('syntax error in pattern');
      let cls = pattern.slice(i + 1, end);
      let neg = false;
      if (cls.startsWith('^')) { neg = true; cls = cls.slice(1); }
      re += `[${neg ? '^' : ''}${cls.replace(/\\(.)/g, '\\$1').replace(/\//g, '\\/')}]`;
      i = end;
    } else re += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  re += '$';
  return new RegExp(re, 's').test(name);
}

/** docker's timestamp filter values ("until="): durations back from now, unix seconds, RFC 3339 dates. */
export function parseTimestamp(value: string, now = Date.now()): number {
  if (value === '') return now;
  const dur = /^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/.test(value);
  if (dur) {
    const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
    let total = 0;
    for (const m of value.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += parseFloat(m[1]!) * unit[m[2]!]!;
    return now - total;
  }
  if (/^-?\d+(\.\d+)?$/.test(value)) return parseFloat(value) * 1000;
  let v = value;
  if (/^\d{4}-\d\d-\d\d$/.test(v)) v += 'T00:00:00';
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(v) && v.includes('T');
  const ms = Date.parse(hasZone ? v : v); // a date without zone is local time, as Go's ParseInLocation(Local)
  if (Number.isNaN(ms)) throw new InvalidParameterError(`invalid value for 'until' filter: failed to parse value as time or duration: "${value}"`);
  return ms;
}

export class ImageService implements ImageBackend {
  private readonly images: ImageStore;
  private readonly refs: ReferenceStore;
  private readonly layers: LayerStore;
  readonly content: ContentStore;
  readonly dataRoot: string;
  private readonly puller: ImageServiceDeps['puller'];
  private readonly containers?: ContainerUsers;
  private pruneRunning = false;
  private readonly parsedCache = new Map<string, ParsedRef>();

  constructor(deps: ImageServiceDeps) {
    this.images = deps.images;
    this.refs = deps.refs;
    this.layers = deps.layers;
    this.content = deps.content;
    this.dataRoot = deps.dataRoot;
    this.puller = deps.puller;
    this.containers = deps.containers;
  }

  // ---------------------------------------------------------------- lookup

  private parsed(ref: string): ParsedRef {
    let p = this.parsedCache.get(ref);
    if (!p) {
      p = parseNamed(ref);
      this.parsedCache.set(ref, p);
    }
    return p;
  }

  /** The references of an image, parsed, in the reference store's (lexical) order. */
  private refsOf(id: Digest): ParsedRef[] {
    return this.refs.refsOf(id).map((r) => this.parsed(r));
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
      throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message);
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

  // ---------------------------------------------------------------- list

  private async summary(img: Image): Promise<ImageSummary> {
    const top = topChainOf(img.config);
    const size = top ? await this.layers.chainSize(top) : 0;
    return {
      Containers: -1,
      Created: goUnix(img.config.created),
      Id: img.id,
      Labels: img.config.config?.Labels ?? null,
      ParentId: img.parent ?? '',
      RepoDigests: null as unknown as string[],
      RepoTags: null as unknown as string[],
      SharedSize: -1,
      Size: size,
      VirtualSize: size,
    };
  }

  async list(opts: { all: boolean; filters: Filters; sharedSize?: boolean }): Promise<ImageSummary[]> {
    return this.listImages(opts.all, opts.filters ?? {}, opts.sharedSize ?? false);
  }

  private async listImages(all: boolean, filters: Filters, extra: boolean): Promise<ImageSummary[]> {
    validateFilters(filters, ['dangling', 'label', 'before', 'since', 'reference']);
    const danglingOnly = getBoolOrDefault(filters, 'dangling', false);
    let before: number | null = null;
    let since: number | null = null;
    for (const v of filters.before ?? []) before = timeKey((await this.resolve(v)).config.created);
    for (const v of filters.since ?? []) since = timeKey((await this.resolve(v)).config.created);
    const patterns = filters.reference;

    const allImages = await this.images.list();
    const childCount = new Map<Digest, number>();
    for (const img of allImages) if (img.parent) childCount.set(img.parent, (childCount.get(img.parent) ?? 0) + 1);
    const candidates = danglingOnly ? allImages.filter((i) => !childCount.get(i.id)) : allImages;

    const out: { s: ImageSummary; img: Image; t: number }[] = [];
    for (const img of candidates) {
      const t = timeKey(img.config.created);
      if (before !== null && t >= before) continue;
      if (since !== null && t <= since) continue;
      if (filters.label && filters.label.length) {
        if (!img.config.config) continue;
        if (!matchKVList(filters, 'label', img.config.config.Labels)) continue;
      }
      const s = await this.summary(img);
      let tags: string[] | null = null;
      let digests: string[] | null = null;
      for (const ref of this.refsOf(img.id)) {
        if (patterns && patterns.length) {
          let found = false;
          for (const pat of patterns) {
            found = pathMatch(pat, familiarString(ref)) || pathMatch(pat, familiarName(ref));
            if (found) break;
          }
          if (!found) continue;
        }
        if (ref.digest) (digests ??= []).push(familiarString(ref));
        if (ref.tag) (tags ??= []).push(familiarString(ref));
      }
      if (tags === null && digests === null) {
        if (all || !childCount.get(img.id)) {
          if (hasFilter(filters, 'dangling') && !danglingOnly) continue;
          if (patterns && patterns.length) continue;
          digests = ['<none>@<none>'];
          tags = ['<none>:<none>'];
        } else continue;
      } else if (danglingOnly && tags !== null) continue;
      s.RepoTags = tags as string[];
      s.RepoDigests = digests as string[];
      out.push({ s, img, t });
    }

    if (extra) {
      const layerRefs = new Map<Digest, number>();
      for (const { s, img } of out) {
        s.Containers = this.containers ? (await this.containers.usersOf(img.id)).length : 0;
        for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) layerRefs.set(c, (layerRefs.get(c) ?? 0) + 1);
      }
      for (const { s, img } of out) {
        let shared = 0;
        for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) {
          if ((layerRefs.get(c) ?? 0) > 1) shared += (await this.layers.get(c))?.size ?? 0;
        }
        s.SharedSize = shared;
      }
    }
    out.sort((a, b) => b.t - a.t || (a.img.id < b.img.id ? -1 : a.img.id > b.img.id ? 1 : 0));
    return out.map((x) => x.s);
  }

  /** /system/df's image part: {LayersSize, Images} (Images with SharedSize and Containers filled in). */
  async imagesDiskUsage(): Promise<{ LayersSize: number; Images: ImageSummary[] }> {
    const images = await this.listImages(false, {}, true);
    const used = new Set<Digest>();
    for (const img of await this.images.list()) for (const c of chainIds(img.config.rootfs.diff_ids ?? [])) used.add(c);
    let layersSize = 0;
    for (const l of await this.layers.list()) if (used.has(l.chainId)) layersSize += l.size;
    return { LayersSize: layersSize, Images: images };
  }

  // ---------------------------------------------------------------- inspect, history

  async inspect(name: string): Promise<Record<string, unknown>> {
    const img = await this.resolve(name);
    const repoTags: string[] = [];
    const repoDigests: string[] = [];
    for (const r of this.refsOf(img.id)) {
      if (r.digest) repoDigests.push(familiarString(r));
      else if (r.tag) repoTags.push(familiarString(r));
    }
    const c = img.config;
    const top = topChainOf(c);
    const size = top ? await this.layers.chainSize(top) : 0;
    let comment = c.comment ?? '';
    if (!comment && c.history && c.history.length) comment = c.history[c.history.length - 1]!.comment ?? '';
    const out: Record<string, unknown> = {
      Id: img.id,
      RepoTags: repoTags,
      RepoDigests: repoDigests,
      Parent: img.parent ?? '',
      Comment: comment,
      Created: goTimeString(c.created),
      Container: c.container ?? '',
      ContainerConfig: goContainerConfig(c.container_config),
      DockerVersion: c.docker_version ?? '',
      Author: c.author ?? '',
      Config: c.config ? goContainerConfig(c.config) : null,
      Architecture: c.architecture ?? '',
    };
    if (c.variant) out.Variant = c.variant;
    out.Os = c.os || 'linux';
    const osVersion = c['os.version'];
    if (typeof osVersion === 'string' && osVersion) out.OsVersion = osVersion;
    out.Size = size;
    out.VirtualSize = size;
    out.GraphDriver = { Data: top ? await this.graphDriverData(c) : null, Name: this.layers.graphDriverName };
    out.RootFS = { Type: 'layers', Layers: [...(c.rootfs.diff_ids ?? [])] };
    out.Metadata = { LastTagTime: img.lastTagTime ? goTimeString(img.lastTagTime) : ZERO_TIME };
    return out;
  }

  /** The storage driver's metadata of an image's top layer (overlay2: LowerDir, MergedDir, UpperDir, WorkDir). */
  private async graphDriverData(c: ImageConfig): Promise<Record<string, string> | null> {
    const chain = chainIds(c.rootfs.diff_ids ?? []);
    if (!chain.length) return null;
    try {
      return await this.layers.graphDriverData(chain[chain.length - 1]!);
    } catch {
      return null;
    }
  }

  async history(name: string): Promise<HistoryItem[]> {
    const img = await this.resolve(name);
    const diffIds = img.config.rootfs.diff_ids ?? [];
    const out: HistoryItem[] = [];
    let layer = 0;
    let parentChain: Digest | null = null;
    for (const h of img.config.history ?? []) {
      let size = 0;
      if (!h.empty_layer) {
        if (layer >= diffIds.length) throw new WharfError('too many non-empty layers in History section');
        parentChain = chainIds(diffIds.slice(0, layer + 1))[layer]!;
        const l = await this.layers.get(parentChain);
        if (!l) throw new NotFoundError(`layer does not exist: ${parentChain}`);
        size = l.size;
        layer++;
      }
      out.unshift({ Comment: h.comment ?? '', Created: goUnix(h.created), CreatedBy: h.created_by ?? '', Id: '<missing>', Size: size, Tags: null });
    }
    let cur: Image | null = img;
    for (const item of out) {
      if (!cur) break;
      item.Id = cur.id;
      const tags = this.refsOf(cur.id).filter((r) => r.tag && !r.digest).map((r) => familiarString(r));
      item.Tags = tags.length ? tags : null;
      cur = cur.parent && (await this.images.has(cur.parent)) ? await this.images.get(cur.parent) : null;
    }
    return out;
  }

  // ---------------------------------------------------------------- tag

  async tag(source: string, repo: string, tag: string | undefined): Promise<void> {
    const img = await this.resolve(source);
    await this.tagImage(img.id, repo, tag);
  }

  /** Tags an image ID with repo[:tag] (dockerd's TagImage after lookup). Returns the familiar reference. */
  async tagImage(id: Digest, repo: string, tag?: string): Promise<string> {
    let ref: ParsedRef;
    try {
      ref = parseNamed(repo);
    } catch (e) {
      throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message);
    }
    if (tag) ref = withTag(ref, tag);
    if (ref.digest) throw new InvalidParameterError('refusing to create a tag with a digest reference');
    ref = withDefaultTag(ref);
    await this.refs.add(refString(ref), id);
    await this.images.setLastUpdated(id);
    return familiarString(ref);
  }

  // ---------------------------------------------------------------- delete

  private isImageIdPrefix(id: Digest, name: string): boolean {
    return id.startsWith(name) || hexOf(id).startsWith(name);
  }

  /** All references are from one repository and at most one of them is a tag. */
  private isSingleReference(refs: ParsedRef[]): boolean {
    if (refs.length <= 1) return refs.length === 1;
    let single: ParsedRef | null = null;
    const canonical = new Set<string>();
    for (const r of refs) {
      if (r.digest) canonical.add(r.name);
      else if (!single) single = r;
      else return false;
    }
    single ??= refs[0]!;
    return canonical.size === 1 && canonical.has(single.name);
  }

  async remove(name: string, opts: { force: boolean; noPrune: boolean }): Promise<DeleteItem[]> {
    return this.imageDelete(name, opts.force, !opts.noPrune);
  }

  private async imageDelete(name: string, force: boolean, prune: boolean): Promise<DeleteItem[]> {
    const records: DeleteItem[] = [];
    const img = await this.resolve(name);
    const id = img.id;
    let repoRefs = this.refsOf(id);
    let removedRepositoryRef = false;
    if (!this.isImageIdPrefix(id, name)) {
      if (!force && this.isSingleReference(repoRefs)) {
        const users = await this.usersOf(id);
        if (users.length) {
          throw new ConflictError(`conflict: unable to remove repository reference ${JSON.stringify(name)} (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image ${hexOf(id).slice(0, 12)}`);
        }
      }
      const parsed = withDefaultTag(parseNamed(name));
      await this.refs.delete(refString(parsed));
      records.push({ Untagged: familiarString(parsed) });
      repoRefs = this.refsOf(id);
      if (!parsed.digest) {
        const sameRepoTag = repoRefs.some((r) => !r.digest && r.name === parsed.name);
        if (!sameRepoTag) {
          const remaining: ParsedRef[] = [];
          for (const r of repoRefs) {
            if (r.digest && r.name === parsed.name) {
              await this.refs.delete(refString(r));
              records.push({ Untagged: familiarString(r) });
            } else remaining.push(r);
          }
          repoRefs = remaining;
        }
      }
      if (repoRefs.length > 0) return records;
      removedRepositoryRef = true;
    } else if (this.isSingleReference(repoRefs)) {
      const conflict = await this.checkConflict(id, { child: true, running: true, stopped: !force, reference: false });
      if (conflict) throw conflict.error;
      for (const r of repoRefs) {
        await this.refs.delete(refString(r));
        records.push({ Untagged: familiarString(r) });
      }
    }
    await this.deleteHelper(id, records, force, prune, removedRepositoryRef);
    return records;
  }

  private async usersOf(id: Digest): Promise<{ id: string; running: boolean }[]> {
    return this.containers ? await this.containers.usersOf(id) : [];
  }

  private async checkConflict(
    id: Digest,
    mask: { child: boolean; running: boolean; reference: boolean; stopped: boolean },
  ): Promise<{ error: ConflictError; used: boolean } | null> {
    const short = hexOf(id).slice(0, 12);
    const err = (hard: boolean, msg: string) => new ConflictError(`conflict: unable to delete ${short} (${hard ? 'cannot be forced' : 'must be forced'}) - ${msg}`);
    if (mask.child && (await this.images.children(id)).length > 0) {
      return { error: err(true, 'image has dependent child images'), used: false };
    }
    const users = mask.running || mask.stopped ? await this.usersOf(id) : [];
    if (mask.running) {
      const r = users.find((u) => u.running);
      if (r) return { error: err(true, `image is being used by running container ${r.id.slice(0, 12)}`), used: true };
    }
    if (mask.reference && this.refs.refsOf(id).length > 0) {
      return { error: err(false, 'image is referenced in multiple repositories'), used: false };
    }
    if (mask.stopped) {
      const s = users.find((u) => !u.running);
      if (s) return { error: err(false, `image is being used by stopped container ${s.id.slice(0, 12)}`), used: true };
    }
    return null;
  }

  private async isDangling(id: Digest): Promise<boolean> {
    return !(this.refs.refsOf(id).length > 0 || (await this.images.children(id)).length > 0);
  }

  private async deleteHelper(id: Digest, records: DeleteItem[], force: boolean, prune: boolean, quiet: boolean): Promise<void> {
    const conflict = await this.checkConflict(id, { child: true, running: true, reference: !force, stopped: !force });
    if (conflict) {
      if (quiet && (!(await this.isDangling(id)) || conflict.used)) return;
      throw conflict.error;
    }
    const img = await this.images.get(id);
    const parent = img.parent;
    for (const r of this.refsOf(id)) {
      await this.refs.delete(refString(r));
      records.push({ Untagged: familiarString(r) });
    }
    const removedLayers = await this.images.remove(id);
    records.push({ Deleted: id });
    for (const l of removedLayers) records.push({ Deleted: l });
    if (!prune || !parent || !(await this.images.has(parent))) return;
    await this.deleteHelper(parent, records, false, true, true);
  }

  // ---------------------------------------------------------------- prune

  async prune(filters: Filters): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> {
    if (this.pruneRunning) throw new ConflictError('a prune operation is already running');
    this.pruneRunning = true;
    try {
      validateFilters(filters, ['dangling', 'label', 'label!', 'until']);
      const danglingOnly = getBoolOrDefault(filters, 'dangling', true);
      let until: number | null = null;
      if (filters.until && filters.until.length) {
        if (filters.until.length > 1) throw new InvalidParameterError('more than one until filter specified');
        until = parseTimestamp(filters.until[0]!);
      }
      const layerSizes = new Map<Digest, number>();
      for (const l of await this.layers.list()) layerSizes.set(l.chainId, l.size);

      const all = await this.images.list();
      const hasChildren = new Set<Digest>();
      for (const i of all) if (i.parent) hasChildren.add(i.parent);
      const candidates = danglingOnly ? all.filter((i) => !hasChildren.has(i.id)) : all;
      const top: Image[] = [];
      for (const img of candidates) {
        if (this.refs.refsOf(img.id).length === 0 && hasChildren.has(img.id)) continue;
        if (until !== null && (!img.config.created || timeKey(img.config.created) > until)) continue;
        const labels = img.config.config?.Labels ?? null;
        if (img.config.config) {
          if (!matchKVList(filters, 'label', labels)) continue;
          if (hasFilter(filters, 'label!') && matchKVList(filters, 'label!', labels)) continue;
        }
        top.push(img);
      }
      top.sort((a, b) => timeKey(b.config.created) - timeKey(a.config.created));

      let deleted: DeleteItem[] | null = null;
      for (const img of top) {
        if (!(await this.images.has(img.id))) continue;
        const items: DeleteItem[] = [];
        const refs = this.refsOf(img.id);
        if (refs.length > 0) {
          const shouldDelete = !danglingOnly || !refs.some((r) => r.tag && !r.digest);
          if (shouldDelete) {
            for (const r of refs) {
              try {
                items.push(...(await this.imageDelete(refString(r), false, true)));
              } catch {
                /* conflicts (and other failures) skip this reference, as dockerd does */
              }
            }
          }
        } else {
          try {
            items.push(...(await this.imageDelete(hexOf(img.id), false, true)));
          } catch {
            /* skipped */
          }
        }
        if (items.length) (deleted ??= []).push(...items);
      }
      let reclaimed = 0;
      for (const d of deleted ?? []) {
        if (d.Deleted && layerSizes.has(d.Deleted as Digest)) reclaimed += layerSizes.get(d.Deleted as Digest)!;
      }
      return { ImagesDeleted: deleted, SpaceReclaimed: reclaimed };
    } finally {
      this.pruneRunning = false;
    }
  }

  // ---------------------------------------------------------------- pull, import, bootstrap

  pull(ref: string, opts: PullOptions, progress: ProgressSink): Promise<void> {
    return this.puller.pull(ref, opts, progress);
  }

  async importImage(tar: Readable, opts: ImportOptions, progress: ProgressSink): Promise<string> {
    let newRef: ParsedRef | null = null;
    if (opts.repo) {
      try {
        newRef = parseNamed(opts.repo);
      } catch (e) {
        throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message);
      }
      if (newRef.digest) throw new InvalidParameterError('cannot import digest reference');
      if (opts.tag) newRef = withTag(newRef, opts.tag);
      newRef = withDefaultTag(newRef);
    }
    let os = 'linux';
    let arch = goArch();
    let variant: string | undefined;
    if (opts.platform) {
      const [o, a, v] = opts.platform.split('/');
      if (o && o !== 'linux') throw new InvalidParameterError(`operating system is not supported: ${o}`);
      if (o) os = o;
      if (a) arch = a;
      if (v) variant = v;
    }
    const config = applyChanges({}, opts.changes ?? []);
    const msg = opts.message || `Imported from ${opts.source}`;

    const stream = await decompressStream(tar);
    const extracted = await this.layers.extract(stream);
    const layer = await this.layers.register(null, extracted);
    let id: Digest;
    try {
      const created = rfc3339Nano(new Date());
      const cfg: Record<string, unknown> = {
        comment: msg,
        created,
        container_config: goContainerConfig({}),
        docker_version: DOCKER_VERSION,
        config: goContainerConfig(config),
        architecture: arch,
      };
      if (variant) cfg.variant = variant;
      cfg.os = os;
      cfg.rootfs = { type: 'layers', diff_ids: [layer.diffId] };
      cfg.history = [{ created, comment: msg }];
      const img = await this.images.create(Buffer.from(JSON.stringify(cfg)));
      id = img.id;
    } finally {
      // the image (if created) now holds its own reference; drop the registration's
      await this.layers.release(layer.chainId);
    }
    if (newRef) {
      await this.refs.add(refString(newRef), id);
      await this.images.setLastUpdated(id);
    }
    progress({ status: id });
    return id;
  }

  async bootstrap(name: string, progress: ProgressSink): Promise<string> {
    return bootstrapImage(name, {
      images: this.images, layers: this.layers, dataRoot: this.dataRoot, dockerVersion: DOCKER_VERSION,
      tag: (id, ref) => this.tagImage(id, ref).then(() => {}),
    }, progress);
  }
}

/** Peeks at the first bytes and inflates gzip, zstd, bzip2 or xz; plain tar passes through. */
export async function decompressStream(input: Readable): Promise<Readable> {
  const head = await peek(input, 6);
  const rest = head.stream;
  const b = head.bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return rest.pipe(zlib.createGunzip({ chunkSize: 1 << 17 }));
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) {
    const z = zlib as unknown as { createZstdDecompress?: (o?: { chunkSize?: number }) => NodeJS.ReadWriteStream };
    if (!z.createZstdDecompress) throw new InvalidParameterError('zstd compression is not supported by this Node.js');
    return rest.pipe(z.createZstdDecompress({ chunkSize: 1 << 17 })) as unknown as Readable;
  }
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return external(rest, 'bzip2', ['-dc']);
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) {
    return external(rest, 'xz', ['-dc']);
  }
  return rest;
}

function external(input: Readable, cmd: string, args: string[]): Readable {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const out = new PassThrough();
  child.on('error', (e) => out.destroy(new InvalidParameterError(`cannot decompress (${cmd}): ${e.message}`)));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new InvalidParameterError(`${cmd} exited with status ${code}`));
  });
  pipeline(input, child.stdin!).catch(() => {});
  child.stdout!.pipe(out);
  return out;
}

/** Reads the first `n` bytes without losing them: returns them and a stream that still starts at byte 0. */
async function peek(input: Readable, n: number): Promise<{ bytes: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  const it = input[Symbol.asyncIterator]();
  let done = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) { done = true; break; }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(c);
    len += c.length;
  }
  const first = Buffer.concat(chunks);
  async function* gen() {
    if (first.length) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
  }
  return { bytes: first.subarray(0, n), stream: Readable.from(gen(), { objectMode: false }) };
}

