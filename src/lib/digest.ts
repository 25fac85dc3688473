import { createHash, type Hash } from 'node:crypto';
import { InvalidParameterError } from './errors.js';

/** A content digest, "sha256:<64 hex>". */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw new InvalidParameterError(`invalid digest: ${JSON.stringify(s)}`);
  return s;
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function newHasher(): Hash {
  return createHash('sha256');
}

/** The 64-hex part of a digest. */
export function hexOf(d: Digest | string): string {
  return d.startsWith('sha256:') ? d.slice(7) : d;
}

/** Docker's short ID: the first 12 hex digits. */
export function shortId(d: Digest | string): string {
  return hexOf(d).slice(0, 12);
}

/**
 * Chain ID per the OCI image spec: ChainID(L0) = DiffID(L0),
 * ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln)).
 */
export function chainIdOf(parent: Digest | null, diffId: Digest): Digest {
  return parent === null ? diffId : sha256(`${parent} ${diffId}`);
}

/** The chain IDs of every prefix of a diffID list. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  let parent: Digest | null = null;
  for (const d of diffIds) {
    parent = chainIdOf(parent, d);
    out.push(parent);
  }
  return out;
}
