/**
 * The OCI image layout writer (as docker ≥ 25 writes it, into the same tar as the docker-archive):
 * `blobs/sha256/<digest>` for every config, layer and manifest, `index.json` naming each tag, `oci-layout`.
 * Blobs already in the archive (a layer's `layer.tar`, `<id>.json`) are hard links to them, so no byte is
 * stored twice.
 */
import { hexOf, sha256, type Digest } from '../../lib/digest.js';
import { MEDIA_TYPES } from '../../lib/oci/mediatypes.js';
import { imageIndexBytes, type Descriptor, type ImageManifest } from '../../lib/oci/manifest.js';
import { referenceString, type Reference } from '../../lib/reference.js';
import type { Image } from '../images/types.js';
import type { EntryWriter } from './types.js';
import type { WrittenLayer } from './docker-writer.js';

export class OciLayoutWriter {
  private readonly blobs = new Set<string>();
  private readonly index: Descriptor[] = [];

  constructor(private readonly entry: EntryWriter) {}

  /** A blob entry (a hard link to `target`, or the bytes), once per digest. */
  private async blob(digest: Digest, target: string | Buffer): Promise<void> {
    const name = `blobs/sha256/${hexOf(digest)}`;
    if (this.blobs.has(name)) return;
    if (this.blobs.size === 0) {
      await this.entry({ name: 'blobs/', type: 'directory', mode: 0o755 });
      await this.entry({ name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
    }
    this.blobs.add(name);
    if (typeof target === 'string') await this.entry({ name, type: 'link', linkname: target, mode: 0o644 });
    else await this.entry({ name, mode: 0o644 }, target);
  }

  /** An image whose layers and config the docker-archive writer already wrote at `layers[].path` / `configPath`. */
  async addImage(img: Image, configPath: string, layers: readonly WrittenLayer[], tags: readonly Reference[]): Promise<void> {
    for (const l of layers) await this.blob(l.digest, l.path);
    await this.blob(img.id, configPath);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: img.id, size: img.raw.length },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.ociLayer, digest: l.digest, size: l.size })),
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = sha256(bytes);
    await this.blob(digest, bytes);
    const desc: Descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest, size: bytes.length };
    if (tags.length === 0) this.index.push(desc);
    for (const t of tags) {
      this.index.push({ ...desc, annotations: { 'io.containerd.image.name': referenceString(t), ...(t.tag !== undefined ? { 'org.opencontainers.image.ref.name': t.tag } : {}) } });
    }
  }

  /** `index.json` and `oci-layout`. */
  async finish(): Promise<void> {
    await this.entry({ name: 'index.json', mode: 0o644 }, imageIndexBytes(MEDIA_TYPES.ociIndex, this.index));
    await this.entry({ name: 'oci-layout', mode: 0o644 }, Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  }
}
