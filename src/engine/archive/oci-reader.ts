/**
 * The OCI image layout reader: `index.json` and `blobs/sha256/…` become docker-archive manifest items whose
 * Config and Layers name blob paths; layer blobs are decompressed and extracted here. Names come from the
 * `io.containerd.image.name` annotation (or a full reference in `org.opencontainers.image.ref.name`).
 * Manifests and indexes are checked by `lib/oci`.
 */
import { goArch } from '../../lib/go.js';
import { readFile } from 'node:fs/promises';
import { isDigest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import { ManifestError, parseManifest, type Descriptor, type ParsedManifest } from '../../lib/oci/manifest.js';
import type { ExtractedLayer } from '../layers/types.js';
import type { ManifestItem } from './types.js';

/** What the single pass over the archive collected. */
export interface ArchiveEntries {
  /** Small files by name (index.json, manifest.json, configs…). */
  files: Map<string, Buffer>;
  /** OCI blobs spooled to temporary files, by entry name. */
  blobs: Map<string, string>;
  /** Layers extracted as they arrived, by entry name. */
  extracted: Map<string, ExtractedLayer>;
}

export function blobPath(d: string): string {
  if (!isDigest(d)) throw new InvalidParameterError(`invalid digest ${JSON.stringify(d)}`);
  return `blobs/sha256/${d.slice(7)}`;
}

function parse(bytes: Buffer, what: string): ParsedManifest {
  try {
    return parseManifest(bytes, undefined, 'consumer');
  } catch (e) {
    if (e instanceof ManifestError) throw new InvalidParameterError(`invalid ${what}: ${e.reason}`, { cause: e });
    throw e;
  }
}

/** The images of an OCI layout as docker-archive manifest items (`extractLayer` extracts a spooled blob). */
export async function ociLayoutItems(entries: ArchiveEntries, extractLayer: (file: string) => Promise<ExtractedLayer>): Promise<ManifestItem[]> {
  const { files, blobs, extracted } = entries;
  const readBlob = async (d: string): Promise<Buffer> => {
    const p = blobPath(d);
    const f = blobs.get(p);
    if (!f) throw new InvalidParameterError(`open ${p}: no such file or directory`);
    const b = await readFile(f);
    files.set(p, b);
    return b;
  };
  const index = parse(files.get('index.json')!, 'index.json');
  const items: ManifestItem[] = [];
  const visit = async (d: Descriptor, name: string | undefined, depth: number): Promise<void> => {
    if (depth > 4) return;
    const m = parse(await readBlob(d.digest), `manifest ${d.digest}`);
    const ann = d.annotations ?? {};
    const refName = ann['io.containerd.image.name'] ?? (ann['org.opencontainers.image.ref.name']?.includes('/') || ann['org.opencontainers.image.ref.name']?.includes(':') ? ann['org.opencontainers.image.ref.name'] : undefined) ?? name;
    if (m.kind === 'index') {
      const linux = m.manifests.filter((e) => !e.platform || (e.platform.os === 'linux' && (!e.platform.architecture || e.platform.architecture === goArch())));
      if (linux[0]) await visit(linux[0], refName, depth + 1);
      return;
    }
    const manifest = m.manifest!;
    await readBlob(manifest.config.digest);
    const layerPaths: string[] = [];
    for (const l of manifest.layers) {
      const p = blobPath(l.digest);
      if (!extracted.has(p)) {
        const f = blobs.get(p);
        if (!f) throw new InvalidParameterError(`open ${p}: no such file or directory`);
        extracted.set(p, await extractLayer(f));
      }
      layerPaths.push(p);
    }
    items.push({ Config: blobPath(manifest.config.digest), RepoTags: refName ? [refName] : null, Layers: layerPaths });
  };
  for (const d of index.manifests) await visit(d, undefined, 0);
  return items;
}
