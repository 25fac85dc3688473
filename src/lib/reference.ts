/**
 * Docker image references (github.com/distribution/reference semantics): the grammar, the
 * normalization of familiar names ("ubuntu" → "docker.io/library/ubuntu") and back.
 */
import type { Digest } from './digest.js';
import { InvalidParameterError } from './errors.js';

export interface Reference {
  /** Registry host with optional port: "docker.io", "localhost:5000", "[::1]:5000". */
  domain: string;
  /** Repository path inside the registry: "library/busybox". */
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** The host Docker Hub's registry API answers on. */
export const DEFAULT_REGISTRY_HOST = 'registry-1.docker.io';
/** Docker Hub's index server: the key of its credentials in config.json and X-Registry-Config, and /info's. */
export const INDEX_SERVER = 'https://index.docker.io/v1/';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const NAME_TOTAL_LENGTH_MAX = 255;

/** Whether a registry domain is Docker Hub under any of its names (docker.io, index.docker.io, registry-1.docker.io). */
export function isDockerHub(domain: string): boolean {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN || domain === DEFAULT_REGISTRY_HOST;
}

// The grammar (distribution/reference regexp.go), as regular-expression sources.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagSrc = '[\\w][\\w.-]{0,127}';
const digestSrc = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

/** The full reference grammar: 1 = name, 2 = tag, 3 = digest. */
export const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagSrc}))?(?:@(${digestSrc}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const ANCHORED_TAG_RE = new RegExp(`^${tagSrc}$`);
const ANCHORED_DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const SHORT_IDENTIFIER_RE = /^[a-f0-9]{1,64}$/;

function invalid(msg: string): InvalidParameterError {
  return new InvalidParameterError(msg);
}

/** opencontainers/go-digest Parse + Validate, restricted to what a Reference can hold. */
function parseRefDigest(s: string): Digest {
  const i = s.indexOf(':');
  if (i <= 0 || i + 1 === s.length) throw invalid('invalid checksum digest format');
  const alg = s.slice(0, i);
  const enc = s.slice(i + 1);
  const lengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
  const want = lengths[alg];
  if (want === undefined) throw invalid('unsupported digest algorithm');
  if (!/^[a-f0-9]+$/.test(enc)) throw invalid('invalid checksum digest format');
  if (enc.length !== want) throw invalid('invalid checksum digest length');
  return s as Digest;
}

/** distribution/reference Parse on an already-normalized string ("domain/path[:tag][@digest]"). */
function parseNormalizedString(s: string): Reference {
  const m = REFERENCE_RE.exec(s);
  if (!m) {
    if (s === '') throw invalid('repository name must have at least one component');
    if (REFERENCE_RE.test(s.toLowerCase())) throw invalid('repository name must be lowercase');
    throw invalid('invalid reference format');
  }
  const name = m[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const nm = ANCHORED_NAME_RE.exec(name)!;
  const ref: Reference = { domain: nm[1] ?? '', path: nm[2]! };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) ref.digest = parseRefDigest(m[3]);
  return ref;
}

/** splitDockerDomain: the domain of a familiar name and the rest. */
export function splitDockerDomain(name: string): [domain: string, remainder: string] {
  let domain: string;
  let remainder: string;
  const i = name.indexOf('/');
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost' && name.slice(0, i).toLowerCase() === name.slice(0, i))) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, i);
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/**
 * ParseNormalizedNamed: parses a familiar or full reference and normalizes it
 * ("busybox" → docker.io/library/busybox). Throws InvalidParameterError with docker's messages.
 */
export function parseNormalizedNamed(s: string): Reference {
  if (ANCHORED_IDENTIFIER_RE.test(s)) {
    throw invalid(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw invalid(`invalid reference format: repository name (${remote}) must be lowercase`);
  }
  return parseNormalizedString(`${domain}/${remainder}`);
}

/**
 * ParseDockerRef: like parseNormalizedNamed, then adds "latest" when neither tag nor digest is
 * given, and drops the tag when a digest is given (docker resolves by digest).
 */
export function parseDockerRef(s: string): Reference {
  const r = withDefaultTag(parseNormalizedNamed(s));
  if (r.digest !== undefined && r.tag !== undefined) {
    const { tag: _tag, ...rest } = r;
    return rest;
  }
  return r;
}

/** TagNameOnly: adds tag "latest" when the reference has neither tag nor digest. */
export function withDefaultTag(r: Reference): Reference {
  if (r.tag === undefined && r.digest === undefined) return { ...r, tag: 'latest' };
  return r;
}

/** The reference with its tag replaced (validated); a digest is kept. */
export function withTag(r: Reference, tag: string): Reference {
  return { ...r, tag: parseTag(tag) };
}

/** The reference without tag and digest. */
export function trimNamed(r: Reference): Reference {
  return { domain: r.domain, path: r.path };
}

/** "docker.io/library/busybox" */
export function normalizedName(r: Reference): string {
  return r.domain === '' ? r.path : `${r.domain}/${r.path}`;
}

/** The familiar form of the name: "busybox", "user/repo", "localhost:5002/library/busybox". */
export function familiarName(r: Reference): string {
  if (r.domain === DEFAULT_DOMAIN || r.domain === '') {
    let path = r.path;
    if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
      const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
      if (!rest.includes('/')) path = rest;
    }
    return path;
  }
  return `${r.domain}/${r.path}`;
}

function suffix(r: Reference): string {
  return (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** familiarName + ":tag" and/or "@digest": "busybox:latest". */
export function familiarString(r: Reference): string {
  return familiarName(r) + suffix(r);
}

/** normalizedName + ":tag" and/or "@digest": "docker.io/library/busybox:latest". */
export function referenceString(r: Reference): string {
  return normalizedName(r) + suffix(r);
}

/** Validates a tag ([\w][\w.-]{0,127}); returns it. */
export function parseTag(s: string): string {
  if (!ANCHORED_TAG_RE.test(s)) throw invalid(`invalid tag format`);
  return s;
}

/** Whether a string is a valid registry domain (host, optional port). */
export function isValidDomain(s: string): boolean {
  return ANCHORED_DOMAIN_RE.test(s);
}

/**
 * Whether `s` looks like an image/container ID: full or short hex ("a4dea7034236"), optionally with
 * "sha256:" ("sha256:a4dea7…" full or prefix). A short hex string may also be a valid name
 * ("cafe"); callers try the name first, as docker does.
 */
export function isIdLike(s: string): boolean {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  return SHORT_IDENTIFIER_RE.test(hex);
}

/** Whether `s` is a full 64-hex ID, with or without "sha256:". */
export function isFullId(s: string): boolean {
  return ANCHORED_IDENTIFIER_RE.test(s.startsWith('sha256:') ? s.slice(7) : s);
}

/** The repository part used in API "fromImage"/"repo" parameters: familiar name with tag/digest split off. */
export function splitRepoTag(s: string): { repo: string; tag?: string; digest?: string } {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) { digest = rest.slice(at + 1); rest = rest.slice(0, at); }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) { tag = rest.slice(colon + 1); rest = rest.slice(0, colon); }
  const out: { repo: string; tag?: string; digest?: string } = { repo: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}
