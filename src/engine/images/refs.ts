/** The reference helpers the image module uses, over lib/reference (distribution/reference semantics). */
import {
  familiarName as libFamiliarName, familiarString as libFamiliarString, normalizedName, parseNormalizedNamed, parseTag,
  referenceString, withDefaultTag as libWithDefaultTag, type Reference,
} from '../../lib/reference.js';

/** A parsed reference plus its normalized name ("docker.io/library/busybox"). */
export type ParsedRef = Reference & { readonly name: string };

function decorate(r: Reference): ParsedRef {
  return { ...r, name: normalizedName(r) };
}

/** ParseNormalizedNamed (no default tag). Throws InvalidParameterError. */
export function parseNamed(s: string): ParsedRef {
  return decorate(parseNormalizedNamed(s));
}

/** ParseNormalizedNamed + TagNameOnly: the key form of the reference store. */
export function parseRef(s: string): ParsedRef {
  return decorate(libWithDefaultTag(parseNormalizedNamed(s)));
}

export function withDefaultTag(r: ParsedRef): ParsedRef {
  return decorate(libWithDefaultTag(r));
}

/** WithTag(TrimNamed(r), tag). */
export function withTag(r: Reference, tag: string): ParsedRef {
  return decorate({ domain: r.domain, path: r.path, tag: parseTag(tag) });
}

export function refString(r: Reference): string {
  return referenceString(r);
}

export function familiarString(r: Reference): string {
  return libFamiliarString(r);
}

export function familiarName(r: Reference): string {
  return libFamiliarName(r);
}
