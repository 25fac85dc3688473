/**
 * The docker-archive reader: `manifest.json` ([{Config, RepoTags, Layers}]) checked against what the pass over
 * the archive collected — each config parsed, its diff_ids matched by the layers named (extracting layers
 * that are OCI blobs, as docker ≥ 25 writes them), tags parsed — before anything is created.
 */
import { readFile } from 'node:fs/promises';
import type { ImageConfig } from '../images/types.js';
import type { ExtractedLayer } from '../layers/types.js';
import { isDigest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import { parseNormalizedNamed, withDefaultTag, type Reference } from '../../lib/reference.js';
import { normEntryName, type ManifestItem } from './types.js';
import type { ArchiveEntries } from './oci-reader.js';

/** One image to create: its config bytes, its layers' entry names (bottom first) and its tags. */
export interface ImagePlan { raw: Buffer; cfg: ImageConfig; layerNames: string[]; tags: Reference[] }

export function parseManifestJson(raw: Buffer): ManifestItem[] {
  let manifest: ManifestItem[];
  try { manifest = JSON.parse(raw.toString('utf8')); } catch (e) { throw new InvalidParameterError(`invalid manifest.json: ${(e as Error).message}`, { cause: e }); }
  if (!Array.isArray(manifest)) throw new InvalidParameterError('invalid manifest.json');
  return manifest;
}

export async function planImages(items: ManifestItem[], entries: ArchiveEntries, extractLayer: (file: string) => Promise<ExtractedLayer>): Promise<ImagePlan[]> {
  const { files, blobs, extracted } = entries;
  const plans: ImagePlan[] = [];
  for (const m of items) {
    const cfgName = normEntryName(String(m.Config));
    let raw = files.get(cfgName);
    if (!raw && blobs.has(cfgName)) raw = await readFile(blobs.get(cfgName)!);
    if (!raw) throw new InvalidParameterError(`open ${m.Config}: no such file or directory`);
    let cfg: ImageConfig;
    try { cfg = JSON.parse(raw.toString('utf8')); } catch (e) { throw new InvalidParameterError(`invalid image config ${m.Config}: ${(e as Error).message}`, { cause: e }); }
    const diffIds = cfg.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.some((d) => !isDigest(String(d)))) throw new InvalidParameterError(`invalid image config ${m.Config}: no rootfs`);
    const layerNames = (m.Layers ?? []).map((l) => normEntryName(String(l)));
    if (layerNames.length !== diffIds.length) throw new InvalidParameterError('invalid manifest, layers length mismatch: expected ' + diffIds.length + ', got ' + layerNames.length);
    for (const [i, ln] of layerNames.entries()) {
      let x = extracted.get(ln);
      const spooled = blobs.get(ln);
      if (!x && spooled) {
        // docker ≥ 25 archives: manifest.json's layers are OCI blobs
        x = await extractLayer(spooled);
        extracted.set(ln, x);
      }
      if (!x) throw new InvalidParameterError(`open ${ln}: no such file or directory`);
      if (x.diffId !== diffIds[i]) throw new InvalidParameterError(`invalid diffID for layer ${i}: expected "${diffIds[i]}", got "${x.diffId}"`);
    }
    const tags: Reference[] = [];
    for (const t of m.RepoTags ?? []) {
      let r: Reference;
      try { r = withDefaultTag(parseNormalizedNamed(String(t))); } catch { throw new InvalidParameterError(`invalid reference ${JSON.stringify(t)}`); }
      if (r.digest !== undefined) throw new InvalidParameterError(`invalid tag ${JSON.stringify(t)}`);
      tags.push(r);
    }
    plans.push({ raw, cfg, layerNames, tags });
  }
  return plans;
}
