/** `POST /images/{name}/tag`. */
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError, WharfError } from '../../lib/errors.js';
import type { ImageContext } from './context.js';
import { familiarString, parseNamed, refString, withDefaultTag, withTag, type ParsedRef } from './refs.js';

/** Tags an image ID with repo[:tag] (dockerd's TagImage after lookup). Returns the familiar reference. */
export async function tagImage(ctx: ImageContext, id: Digest, repo: string, tag?: string): Promise<string> {
  let ref: ParsedRef;
  try {
    ref = parseNamed(repo);
  } catch (e) {
    throw e instanceof WharfError ? e : new InvalidParameterError((e as Error).message, { cause: e });
  }
  if (tag) ref = withTag(ref, tag);
  if (ref.digest) throw new InvalidParameterError('refusing to create a tag with a digest reference');
  ref = withDefaultTag(ref);
  await ctx.refs.add(refString(ref), id);
  await ctx.images.setLastUpdated(id);
  return familiarString(ref);
}
