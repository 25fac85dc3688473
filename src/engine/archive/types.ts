/**
 * What save and load share: the dependencies, the docker-archive manifest item and the tar entry writer both
 * formats' writers append to (a saved archive is one tar that is a docker-archive and an OCI layout at once).
 */
import type { Readable } from 'node:stream';
import type tar from 'tar-stream';
import type { LayerStore } from '../layers/types.js';
import type { Image, ImageStore, ReferenceStore } from '../images/types.js';
import type { Logger } from '../../lib/log.js';

export interface ArchiveDeps {
  images: ImageStore;
  refs: ReferenceStore;
  layers: LayerStore;
  dataRoot: string;
  /** dockerd's GetImage (ID, prefix or reference). */
  resolve(name: string): Promise<Image>;
  /** Decompresses gzip/zstd/… layer tars; plain tar passes through. */
  decompress(input: Readable): Promise<Readable>;
  log?: Logger;
}

/** One image of a docker-archive's `manifest.json`. */
export interface ManifestItem { Config: string; RepoTags: string[] | null; Layers: string[] }

/** Appends one entry (a directory, a hard link, bytes or a stream) to the archive being written. */
export type EntryWriter = (header: Partial<tar.Header> & { name: string }, body?: Buffer | Readable) => Promise<void>;

/** Strips `./` and trailing slashes from an entry name. */
export function normEntryName(n: string): string {
  return n.replace(/^\.\//, '').replace(/\/+$/, '');
}
