/**
 * The filesystem storage driver (the default): key `a/b/c` is the file `<root>/a/b/c`. Objects are published by
 * writeFileAtomic (temp file, fsync, rename); an upload is `uploads/<id>/{repo,data}`, appended in place and
 * published by fsync + one rename into place, so a kill -9 at any moment leaves committed data intact and at most
 * temporaries (`.tmp-*`, upload files) behind.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../lib/atomic.js';
import { isENOENT } from '../lib/fsutil.js';
import { checkKey, type ObjectInfo, type StorageDriver, type UploadState } from './driver.js';

export class FsDriver implements StorageDriver {
  readonly kind = 'filesystem';
  readonly location: string;

  private constructor(readonly root: string) {
    this.location = root;
  }

  static async open(root: string): Promise<FsDriver> {
    for (const d of ['repositories', join('blobs', 'sha256'), 'uploads']) await mkdir(join(root, d), { recursive: true });
    return new FsDriver(root);
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, key);
  }

  localPath(key: string): string {
    return this.path(key);
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if (isENOENT(e) || (e as NodeJS.ErrnoException).code === 'EISDIR') return null;
      throw e;
    }
  }

  put(key: string, data: Buffer | string): Promise<void> {
    return writeFileAtomic(this.path(key), data);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await stat(this.path(key));
      return { size: st.size, modifiedMs: st.mtimeMs };
    } catch (e) {
      if (isENOENT(e)) return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    try {
      return (await readdir(this.path(prefix))).filter((n) => !n.startsWith('.'));
    } catch (e) {
      if (isENOENT(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }

  async read(key: string, start: number, end: number): Promise<AsyncIterable<Buffer>> {
    const p = this.path(key);
    await stat(p);
    return createReadStream(p, { start, end, highWaterMark: 1 << 20 });
  }

  // ---- uploads ----

  private uploadDir(id: string): string {
    return this.path(`uploads/${id}`);
  }

  async createUpload(id: string, repo: string): Promise<void> {
    const dir = this.uploadDir(id);
    await mkdir(dir);
    await writeFile(join(dir, 'data'), '');
    // The repo file appears last: an upload without it is unusable and swept.
    await writeFileAtomic(join(dir, 'repo'), repo);
  }

  async uploadState(id: string): Promise<UploadState | null> {
    const dir = this.uploadDir(id);
    try {
      const repo = await readFile(join(dir, 'repo'), 'utf8');
      const st = await stat(join(dir, 'data'));
      return { repo, size: st.size, modifiedMs: st.mtimeMs };
    } catch (e) {
      if (isENOENT(e)) return null;
      throw e;
    }
  }

  async appendUpload(id: string, offset: number, body: AsyncIterable<unknown>, tap: (b: Buffer) => void): Promise<number> {
    const data = join(this.uploadDir(id), 'data');
    const fh = await open(data, 'r+');
    let n = 0;
    try {
      for await (const c of body) {
        const b = c as Buffer;
        let off = 0;
        while (off < b.length) {
          const { bytesWritten } = await fh.write(b, off, b.length - off, offset + n);
          tap(b.subarray(off, off + bytesWritten));
          off += bytesWritten;
          n += bytesWritten;
        }
      }
    } finally {
      await fh.close();
    }
    return n;
  }

  readUpload(id: string): AsyncIterable<Buffer> {
    return createReadStream(join(this.uploadDir(id), 'data'), { highWaterMark: 1 << 20 });
  }

  async commitUpload(id: string, key: string): Promise<void> {
    const data = join(this.uploadDir(id), 'data');
    const fh = await open(data, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    await rename(data, target);
    await fsyncDir(dirname(target));
    await this.deleteUpload(id);
  }

  async deleteUpload(id: string): Promise<void> {
    await rm(this.uploadDir(id), { recursive: true, force: true });
  }

  listUploads(): Promise<string[]> {
    return this.list('uploads');
  }

  async uploadModified(id: string): Promise<number | null> {
    const dir = this.uploadDir(id);
    const st = await stat(join(dir, 'data')).catch(() => stat(dir)).catch((e: unknown) => {
      if (isENOENT(e)) return null;
      throw e;
    });
    return st ? st.mtimeMs : null;
  }

  async close(): Promise<void> {}
}
