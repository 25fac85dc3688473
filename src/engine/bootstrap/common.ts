/**
 * Shared pieces of the bootstrap images: packing a directory into a deterministic tar (tar-stream), and turning
 * one layer tar into a tagged image with docker-like history ("ADD file:<sha> in /" + "CMD [...]").
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { Digest } from '../../lib/digest.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import type { LayerStore } from '../layers/types.js';
import type { ImageStore } from '../images/types.js';
import { goArch } from '../../lib/go.js';

export interface BootstrapDeps {
  images: ImageStore;
  layers: LayerStore;
  dataRoot: string;
  /** Tags an image ID with a reference ("busybox:latest"). */
  tag(id: Digest, ref: string): Promise<void>;
  /** The Docker version recorded in configs. */
  dockerVersion?: string;
}

function goConfig(over: Record<string, unknown>): Record<string, unknown> {
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    Tty: false, OpenStdin: false, StdinOnce: false,
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
    ...over,
  };
}

/**
 * Registers a layer tar, writes a config like the official images' (two history entries: the ADD of the rootfs
 * and the CMD), tags it. Returns the image ID. Deterministic: `created` is given by the caller.
 */
export async function imageFromTar(
  deps: BootstrapDeps,
  tar: Readable,
  opts: { cmd: string[]; created: string; ref: string },
  progress: ProgressSink,
): Promise<Digest> {
  progress({ status: 'Registering layer' });
  const extracted = await deps.layers.extract(tar);
  const layer = await deps.layers.register(null, extracted);
  let id: Digest;
  try {
    const hex = extracted.diffId.slice(7);
    const cmdJson = JSON.stringify(opts.cmd);
    // keys in the order docker's configs from the registry have them (alphabetical)
    const config = {
      architecture: goArch(),
      config: goConfig({ Cmd: opts.cmd }),
      container: '',
      container_config: goConfig({ Cmd: ['/bin/sh', '-c', '#(nop) ', `CMD ${cmdJson}`] }),
      created: opts.created,
      docker_version: deps.dockerVersion ?? '20.10.24',
      history: [
        { created: opts.created, created_by: `/bin/sh -c #(nop) ADD file:${hex} in / ` },
        { created: opts.created, created_by: `/bin/sh -c #(nop)  CMD ${cmdJson}`, empty_layer: true },
      ],
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [extracted.diffId] },
    };
    const img = await deps.images.create(Buffer.from(JSON.stringify(config)));
    id = img.id;
  } finally {
    await deps.layers.release(layer.chainId);
  }
  await deps.tag(id, opts.ref);
  progress({ status: `Digest: ${id}` });
  progress({ status: `Status: Created ${opts.ref}` });
  return id;
}

/** One entry of a directory walk, for packing. */
interface WalkEntry {
  rel: string;
  abs: string;
}

async function walk(root: string, rel: string, out: WalkEntry[], exclude: (rel: string) => boolean): Promise<void> {
  const names = (await readdir(join(root, rel))).sort();
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n;
    if (exclude(r)) continue;
    out.push({ rel: r, abs: join(root, r) });
    const st = await lstat(join(root, r));
    if (st.isDirectory()) await walk(root, r, out, exclude);
  }
}

/**
 * Packs a directory as a tar stream (sorted, numeric owners, hard links preserved, sockets skipped,
 * device nodes kept). `exclude` gets paths relative to the root ("dev/null"); excluded directories are
 * skipped with their contents. `mtime` overrides every timestamp when given.
 */
export function packDirectory(root: string, exclude: (rel: string) => boolean = () => false, mtime?: Date): Readable {
  const pack = tarStream.pack();
  (async () => {
    const entries: WalkEntry[] = [];
    await walk(root, '', entries, exclude);
    const inodes = new Map<string, string>();
    for (const e of entries) {
      const st = await lstat(e.abs);
      const base = { name: e.rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: mtime ?? st.mtime };
      if (st.isDirectory()) {
        await entry(pack, { ...base, name: `${e.rel}/`, type: 'directory' });
      } else if (st.isSymbolicLink()) {
        await entry(pack, { ...base, type: 'symlink', linkname: await readlink(e.abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) {
          await entry(pack, { ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) inodes.set(key, e.rel);
        await new Promise<void>((resolve, reject) => {
          const w = pack.entry({ ...base, type: 'file', size: st.size } as tarStream.Header, (err) => (err ? reject(err) : resolve()));
          const r = createReadStream(e.abs);
          w.on('error', reject);
          r.on('error', reject);
          r.pipe(w);
        });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
        const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
        await entry(pack, { ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
      } else if (st.isFIFO()) {
        await entry(pack, { ...base, type: 'fifo' });
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err as Error));
  return Readable.from(pack);
}

export type TarHeader = Partial<tarStream.Header> & { name: string };

export function entry(pack: tarStream.Pack, h: TarHeader, data?: Buffer): Promise<void> {
  const header = h as tarStream.Header;
  return new Promise((resolve, reject) => {
    if (data !== undefined) pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
    else pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}
