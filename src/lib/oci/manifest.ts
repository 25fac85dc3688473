/**
 * Descriptors, manifests, indexes and image configs: parsing and shape checks shared by pull, push,
 * save/load and the registry server.
 *
 * `parseManifest` classifies a manifest's bytes (by its `mediaType`, the Content-Type it came with, or its
 * shape) and checks its structure. Two policies:
 * - `consumer` (pull, load): what an engine accepts from a registry or an archive — a declared `mediaType`
 *   wins over the Content-Type, an image manifest needs a config digest and a `layers` array, any other
 *   manifest type is normalized to the OCI one;
 * - `registry` (the registry server's PUT): `schemaVersion` 2, a declared `mediaType` equal to a manifest
 *   Content-Type, only known manifest types, every descriptor with a size, artifacts without layers allowed.
 * Both refuse schema 1. Failures are `ManifestError`s carrying a `reason` the caller words its own way.
 */
import { isDigest, type Digest } from '../digest.js';
import { InvalidParameterError } from '../errors.js';
import {
  MANIFEST_MEDIA_TYPES, MEDIA_TYPES, bareMediaType, isIndexMediaType, isSchema1MediaType,
} from './mediatypes.js';

export interface PlatformSpec {
  os?: string;
  architecture?: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  platform?: PlatformSpec;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export type ManifestFailure =
  | 'json' | 'schema1' | 'version' | 'media-type-mismatch' | 'unsupported' | 'index' | 'config' | 'layers'
  | 'descriptor';

/** A manifest that is not valid; `reason` is a short lower-case sentence, `failure` the kind of fault. */
export class ManifestError extends InvalidParameterError {
  constructor(readonly failure: ManifestFailure, readonly reason: string) {
    super(reason);
    this.name = 'ManifestError';
  }
}

export interface ParsedManifest {
  /** The normalized media type (one of MANIFEST_MEDIA_TYPES). */
  mediaType: string;
  kind: 'index' | 'manifest';
  index?: ImageIndex;
  manifest?: ImageManifest;
  /** Blobs the manifest needs from its repository: config and distributable layers (foreign layers left out). */
  blobs: Descriptor[];
  /** Manifests an index lists. */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export type ManifestPolicy = 'consumer' | 'registry';

/**
 * Checks a descriptor's shape: an object with a sha256 `digest`, a numeric `size` (a non-negative integer;
 * `requireSize` false lets it be absent), a string `mediaType` when present, `urls` an array of strings and
 * `platform` an object of strings when present. Throws ManifestError('descriptor', "bad descriptor in <where>").
 */
export function checkDescriptor(v: unknown, where: string, requireSize = true): Descriptor {
  const bad = () => new ManifestError('descriptor', `bad descriptor in ${where}`);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad();
  const d = v as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw bad();
  if (d.size === undefined ? requireSize : typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad();
  if (d.mediaType !== undefined && typeof d.mediaType !== 'string') throw bad();
  if (d.urls !== undefined && (!Array.isArray(d.urls) || d.urls.some((u) => typeof u !== 'string'))) throw bad();
  if (d.platform !== undefined) {
    const p = d.platform as Record<string, unknown> | null;
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw bad();
    for (const k of ['os', 'architecture', 'variant', 'os.version'] as const) {
      if (p[k] !== undefined && typeof p[k] !== 'string') throw bad();
    }
  }
  return d as unknown as Descriptor;
}

/** Parses and checks a manifest or index (see the module comment for the two policies). */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, policy: ManifestPolicy): ParsedManifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new ManifestError('json', 'not JSON');
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new ManifestError('json', 'not an object');
  const strict = policy === 'registry';
  const ct = bareMediaType(contentType);
  const declared = typeof m.mediaType === 'string' ? m.mediaType : '';
  if (m.schemaVersion === 1 || isSchema1MediaType(ct) || (!strict && isSchema1MediaType(declared))) {
    throw new ManifestError('schema1', 'schema 1 manifests are not supported');
  }
  if (strict && m.schemaVersion !== 2) throw new ManifestError('version', 'schemaVersion must be 2');
  let mediaType: string;
  let isIndex: boolean;
  if (strict) {
    if (declared && ct && MANIFEST_MEDIA_TYPES.has(ct) && ct !== declared) {
      throw new ManifestError('media-type-mismatch', `mediaType ${declared} does not match Content-Type ${ct}`);
    }
    mediaType = declared || (MANIFEST_MEDIA_TYPES.has(ct) ? ct : Array.isArray(m.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
    if (!MANIFEST_MEDIA_TYPES.has(mediaType)) throw new ManifestError('unsupported', `unsupported media type ${mediaType}`);
    isIndex = isIndexMediaType(mediaType);
  } else {
    mediaType = declared || ct;
    isIndex = Array.isArray(m.manifests) || isIndexMediaType(mediaType);
    if (isIndex) { if (mediaType !== MEDIA_TYPES.dockerList) mediaType = MEDIA_TYPES.ociIndex; }
    else if (mediaType !== MEDIA_TYPES.dockerManifest) mediaType = MEDIA_TYPES.ociManifest;
  }

  const out: ParsedManifest = { mediaType, kind: isIndex ? 'index' : 'manifest', blobs: [], manifests: [] };
  if (isIndex) {
    if (!Array.isArray(m.manifests)) throw new ManifestError('index', 'index without manifests');
    out.manifests = m.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`));
    out.index = m as unknown as ImageIndex;
  } else {
    if (strict) out.blobs.push(checkDescriptor(m.config, 'config'));
    else {
      const cfg = m.config as Record<string, unknown> | undefined;
      if (!cfg || typeof cfg !== 'object' || typeof cfg.digest !== 'string' || !isDigest(cfg.digest)) {
        throw new ManifestError('config', `unsupported manifest format ${declared || ct || 'unknown'}`);
      }
      out.blobs.push(cfg as unknown as Descriptor);
    }
    const layers = m.layers ?? (strict ? [] : undefined);
    if (!Array.isArray(layers)) {
      throw strict ? new ManifestError('layers', 'layers must be an array') : new ManifestError('config', `unsupported manifest format ${declared || ct || 'unknown'}`);
    }
    for (const [i, l] of layers.entries()) {
      const d = checkDescriptor(l, `layers[${i}]`);
      // non-distributable (foreign) layers are fetched from their URLs, not from the registry
      if (Array.isArray(d.urls) && d.urls.length > 0) continue;
      out.blobs.push(d);
    }
    out.manifest = m as unknown as ImageManifest;
    const cfg = m.config as Descriptor;
    if (typeof m.artifactType === 'string') out.artifactType = m.artifactType;
    else if (typeof cfg.mediaType === 'string') out.artifactType = cfg.mediaType;
  }
  if (isIndex && typeof m.artifactType === 'string') out.artifactType = m.artifactType;
  if (m.subject !== undefined) out.subject = checkDescriptor(m.subject, 'subject');
  if (m.annotations && typeof m.annotations === 'object') out.annotations = m.annotations as Record<string, string>;
  return out;
}

/** Digests a stored manifest refers to (config, layers, `blobs`, index entries), read leniently (for GC). */
export function referencedDigests(m: Record<string, unknown>): { blobs: Digest[]; manifests: Digest[] } {
  const pick = (v: unknown): Digest | null => {
    const dig = (v as { digest?: unknown } | null)?.digest;
    return typeof dig === 'string' && isDigest(dig) ? dig : null;
  };
  const blobs: Digest[] = [];
  const manifests: Digest[] = [];
  const c = pick(m.config);
  if (c) blobs.push(c);
  for (const key of ['layers', 'blobs'] as const) {
    const arr = m[key];
    if (Array.isArray(arr)) for (const x of arr) { const d = pick(x); if (d) blobs.push(d); }
  }
  if (Array.isArray(m.manifests)) for (const x of m.manifests) { const d = pick(x); if (d) manifests.push(d); }
  return { blobs, manifests };
}

/** Serializes an index (OCI image layout's index.json, a manifest list). */
export function imageIndexBytes(mediaType: string, manifests: readonly unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests }));
}
