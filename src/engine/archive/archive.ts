/**
 * docker save / docker load (dockerd's image/tarexport), the facade the API's image backend calls. A saved
 * archive is a docker-archive and an OCI image layout at once:
 * - `save.ts` selects images and spools their layers; `docker-writer.ts` and `oci-writer.ts` write each format;
 * - `load.ts` reads the tar in one pass; `docker-reader.ts` (manifest.json) or `oci-reader.ts` (index.json)
 *   says what to create.
 */
import type { Readable } from 'node:stream';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { loadArchive } from './load.js';
import { saveImages } from './save.js';
import type { ArchiveDeps } from './types.js';

export type { ArchiveDeps } from './types.js';

export class ArchiveService {
  constructor(private readonly deps: ArchiveDeps) {}

  /** Resolves every name first (a missing image fails before anything is streamed), then streams the tar. */
  save(names: string[]): Promise<Readable> { return saveImages(this.deps, names); }

  load(input: Readable, progress: ProgressSink): Promise<void> { return loadArchive(this.deps, input, progress); }
}
