/**
 * Distribution metadata: which compressed blob (by registry digest) produced which layer diffID, and from
 * which repositories. dockerd keeps the same facts in image/<driver>/distribution/{diffid-by-digest,
 * v2metadata-by-diffid}; here they are one JSON file, <dataRoot>/image/distribution/v2metadata.json,
 * rewritten atomically (temp + rename) under a lock. Push uses it to mount or skip blobs; pull to skip
 * re-downloading.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { isDigest, type Digest } from '../../lib/digest.js';

export interface BlobSource { digest: Digest; repository: string; mediaType?: string }

interface FileShape {
  diffIdByDigest: Record<string, Digest>;
  sourcesByDiffId: Record<string, BlobSource[]>;
}

export class V2Metadata {
  private data: FileShape = { diffIdByDigest: {}, sourcesByDiffId: {} };
  private loaded: Promise<void> | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  readonly path: string;

  constructor(dataRoot: string) {
    this.path = join(dataRoot, 'image', 'distribution', 'v2metadata.json');
  }

  private load(): Promise<void> {
    this.loaded ??= (async () => {
      try {
        const j = JSON.parse(await readFile(this.path, 'utf8')) as Partial<FileShape>;
        this.data = { diffIdByDigest: j.diffIdByDigest ?? {}, sourcesByDiffId: j.sourcesByDiffId ?? {} };
      } catch { /* absent or unreadable: start empty (it is only a cache of facts) */ }
    })();
    return this.loaded;
  }

  async diffIdOf(blob: Digest): Promise<Digest | null> {
    await this.load();
    const d = this.data.diffIdByDigest[blob];
    return d && isDigest(d) ? d : null;
  }

  async sourcesOf(diffId: Digest): Promise<BlobSource[]> {
    await this.load();
    return [...(this.data.sourcesByDiffId[diffId] ?? [])];
  }

  /** Records blob ↔ diffID pairs (one atomic rewrite for the batch). */
  add(entries: { blob: Digest; diffId: Digest; repository: string; mediaType?: string }[]): Promise<void> {
    const run = async () => {
      await this.load();
      let changed = false;
      for (const e of entries) {
        if (this.data.diffIdByDigest[e.blob] !== e.diffId) { this.data.diffIdByDigest[e.blob] = e.diffId; changed = true; }
        const list = (this.data.sourcesByDiffId[e.diffId] ??= []);
        if (!list.some((s) => s.digest === e.blob && s.repository === e.repository)) {
          list.push({ digest: e.blob, repository: e.repository, ...(e.mediaType ? { mediaType: e.mediaType } : {}) });
          if (list.length > 50) list.shift();
          changed = true;
        }
      }
      if (changed) await writeJsonAtomic(this.path, this.data);
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => {}); // the caller gets p's error; the tail only orders the writes
    return p;
  }
}
