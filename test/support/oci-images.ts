/**
 * Test images built *without wharf*: OCI image layouts written by hand (tar-stream + node:zlib) and pushed
 * to a registry with skopeo. Deterministic: same spec → same bytes → same digests (fixed mtimes).
 *
 *   const img = await buildOciLayout(dir, {
 *     layers: [
 *       { files: [{ path: 'etc/hello', content: 'hi\n' }, { path: 'bin', type: 'dir' }] },
 *       { files: [{ path: 'etc/.wh.hello', type: 'whiteout' }] },        // or { path: 'etc/hello', type: 'whiteout' }
 *       { compression: 'zstd', files: [{ path: 'opt', type: 'opaque' }] }, // opaque dir: opt/.wh..wh..opq
 *     ],
 *     config: { Cmd: ['sh'] },
 *   });                                   // → { manifestDigest, configDigest, layers: [{digest, diffId, size}], … }
 *   await pushLayout(dir, reg.host, 'test/app:v1');                         // skopeo copy oci:dir:latest docker://…
 *   await buildOciIndex(dir2, [specAmd64, specArm64]);                     // multi-platform image index
 *   await pushLayout(dir2, reg.host, 'test/multi:v1', { all: true });
 *   await pushBusybox(reg.host, 'library/busybox:latest');                 // busybox from the host's static binary
 *   await pushBusybox(reg.host, 'library/busybox:multi', { multiArch: true }); // amd64 + arm64 index
 *
 * File entries: `path` (relative, no leading slash), `type` 'file' (default) | 'dir' | 'symlink' | 'hardlink'
 * | 'whiteout' (deletes `path` in lower layers: written as <dir>/.wh.<name>) | 'opaque' (hides the lower
 * content of directory `path`: written as <path>/.wh..wh..opq), `content` (string | Buffer), `target`
 * (symlink/hardlink target), `mode` (permission bits, default 0644 files / 0755 dirs), `uid`, `gid`,
 * `mtime`. Parent directories are added automatically (0755, root).
 * Compression per layer: 'gzip' (default) | 'zstd' | 'none'.
 */
import { mkdir, writeFile, readFile, rm, mkdtemp, access } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { join, posix } from 'node:path';
import { tmpdir } from 'node:os';
import * as tar from 'tar-stream';

const execFileP = promisify(execFile);

export type Compression = 'gzip' | 'zstd' | 'none';

export interface FileSpec {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'opaque';
  content?: string | Buffer;
  target?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
}

export interface LayerSpec {
  files: FileSpec[];
  compression?: Compression;
  /** History "created_by" of this layer. */
  createdBy?: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  /** The image config's "config" section (Cmd, Env, Entrypoint, WorkingDir, Labels, …). */
  config?: Record<string, unknown>;
  os?: string;
  architecture?: string;
  variant?: string;
  created?: string;
  /** Extra history entries without a layer (e.g. CMD), appended after the layers' entries. */
  emptyHistory?: string[];
  /** The tag (org.opencontainers.image.ref.name) in index.json; default "latest". */
  tag?: string;
}

export interface BuiltLayer { digest: string; diffId: string; size: number; mediaType: string; tar: Buffer }

export interface BuiltImage {
  manifestDigest: string;
  manifest: Buffer;
  configDigest: string;
  config: Buffer;
  layers: BuiltLayer[];
  platform: { os: string; architecture: string; variant?: string };
}

const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');
const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

function sha(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The uncompressed tar of one layer spec. */
export async function layerTar(files: FileSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const ended = new Promise<void>((res, rej) => { pack.on('end', res); pack.on('error', rej); });
  const seenDirs = new Set<string>();
  const explicitDirs = new Set(files.filter((f) => f.type === 'dir' || f.type === 'opaque').map((f) => f.path.replace(/^\/+|\/+$/g, '')));
  const add = (header: Partial<tar.Header> & { name: string }, body?: Buffer) => new Promise<void>((res, rej) => {
    pack.entry(header as tar.Header, body ?? Buffer.alloc(0), (err) => (err ? rej(err) : res()));
  });
  const ensureParents = async (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (seenDirs.has(d) || explicitDirs.has(d)) continue;
      seenDirs.add(d);
      await add({ name: `${d}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: FIXED_MTIME });
    }
  };
  for (const f of files) {
    const p = f.path.replace(/^\/+|\/+$/g, '');
    const common = { uid: f.uid ?? 0, gid: f.gid ?? 0, mtime: f.mtime ?? FIXED_MTIME };
    switch (f.type ?? 'file') {
      case 'dir':
        await ensureParents(p);
        seenDirs.add(p);
        await add({ name: `${p}/`, type: 'directory', mode: f.mode ?? 0o755, ...common });
        break;
      case 'opaque':
        await ensureParents(p);
        if (!seenDirs.has(p)) { seenDirs.add(p); await add({ name: `${p}/`, type: 'directory', mode: f.mode ?? 0o755, ...common }); }
        await add({ name: `${p}/.wh..wh..opq`, type: 'file', mode: 0o644, ...common });
        break;
      case 'whiteout': {
        const base = posix.basename(p);
        const name = base.startsWith('.wh.') ? p : posix.join(posix.dirname(p), `.wh.${base}`);
        await ensureParents(name);
        await add({ name, type: 'file', mode: 0o644, ...common });
        break;
      }
      case 'symlink':
        await ensureParents(p);
        await add({ name: p, type: 'symlink', linkname: f.target ?? '', mode: f.mode ?? 0o777, ...common });
        break;
      case 'hardlink':
        await ensureParents(p);
        await add({ name: p, type: 'link', linkname: (f.target ?? '').replace(/^\/+/, ''), mode: f.mode ?? 0o644, ...common });
        break;
      default: {
        await ensureParents(p);
        const body = typeof f.content === 'string' ? Buffer.from(f.content) : (f.content ?? Buffer.alloc(0));
        await add({ name: p, type: 'file', mode: f.mode ?? 0o644, size: body.length, ...common }, body);
      }
    }
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export function compress(data: Buffer, c: Compression): { blob: Buffer; mediaType: string } {
  switch (c) {
    case 'none': return { blob: data, mediaType: MT.tar };
    case 'zstd': return { blob: zstdCompressSync(data), mediaType: MT.zstd };
    default: return { blob: gzipSync(data, { level: 6 }), mediaType: MT.gzip };
  }
}

async function writeBlob(dir: string, data: Buffer | string): Promise<string> {
  const d = sha(data);
  const p = join(dir, 'blobs', 'sha256', d.slice(7));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(p, data);
  return d;
}

/** Writes the blobs (layers, config, manifest) of one image into a layout dir; does not touch index.json. */
export async function writeImageBlobs(dir: string, spec: ImageSpec): Promise<BuiltImage> {
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) {
    const t = await layerTar(l.files);
    const { blob, mediaType } = compress(t, l.compression ?? 'gzip');
    const digest = await writeBlob(dir, blob);
    layers.push({ digest, diffId: sha(t), size: blob.length, mediaType, tar: t });
  }
  const created = spec.created ?? '2024-01-01T00:00:00Z';
  const platform = { os: spec.os ?? 'linux', architecture: spec.architecture ?? 'amd64', ...(spec.variant ? { variant: spec.variant } : {}) };
  const history = [
    ...spec.layers.map((l, i) => ({ created, created_by: l.createdBy ?? `/bin/sh -c #(nop) ADD layer ${i}` })),
    ...(spec.emptyHistory ?? []).map((c) => ({ created, created_by: c, empty_layer: true })),
  ];
  const config = Buffer.from(JSON.stringify({
    created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...(spec.config ?? {}) },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  }));
  const configDigest = await writeBlob(dir, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }));
  const manifestDigest = await writeBlob(dir, manifest);
  return { manifestDigest, manifest, configDigest, config, layers, platform };
}

async function writeIndexJson(dir: string, entries: { mediaType: string; digest: string; size: number; tag: string }[]): Promise<void> {
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let existing: { manifests: unknown[] } = { manifests: [] };
  try { existing = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')); } catch { /* new layout */ }
  const keep = (existing.manifests as { annotations?: Record<string, string> }[])
    .filter((m) => !entries.some((e) => m.annotations?.['org.opencontainers.image.ref.name'] === e.tag));
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: [...keep, ...entries.map((e) => ({
      mediaType: e.mediaType, digest: e.digest, size: e.size,
      annotations: { 'org.opencontainers.image.ref.name': e.tag },
    }))],
  }));
}

/** Writes an OCI image layout (oci-layout, index.json, blobs/) holding one image tagged `spec.tag ?? 'latest'`. */
export async function buildOciLayout(dir: string, spec: ImageSpec): Promise<BuiltImage> {
  await mkdir(dir, { recursive: true });
  const img = await writeImageBlobs(dir, spec);
  await writeIndexJson(dir, [{ mediaType: MT.manifest, digest: img.manifestDigest, size: img.manifest.length, tag: spec.tag ?? 'latest' }]);
  return img;
}

/**
 * Writes a multi-platform image: one image index blob listing each image with its platform, tagged `tag`
 * in index.json. Push it with `pushLayout(dir, host, ref, { all: true })`.
 */
export async function buildOciIndex(dir: string, specs: ImageSpec[], tag = 'latest'): Promise<{ indexDigest: string; index: Buffer; images: BuiltImage[] }> {
  await mkdir(dir, { recursive: true });
  const images: BuiltImage[] = [];
  for (const s of specs) images.push(await writeImageBlobs(dir, s));
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: images.map((i) => ({ mediaType: MT.manifest, digest: i.manifestDigest, size: i.manifest.length, platform: i.platform })),
  }));
  const indexDigest = await writeBlob(dir, index);
  await writeIndexJson(dir, [{ mediaType: MT.index, digest: indexDigest, size: index.length, tag }]);
  return { indexDigest, index, images };
}

/**
 * Pushes `oci:<dir>:<layoutTag>` to `docker://<registryHost>/<repoTag>` with skopeo (plain http, digests
 * preserved). `all` copies every platform of an index; `creds` is "user:password"; `format: 'v2s2'` converts
 * to docker's schema 2 media types (gzip/uncompressed layers only; the manifest digest then differs, the
 * config and layer digests stay).
 */
export async function pushLayout(dir: string, registryHost: string, repoTag: string, opts: { layoutTag?: string; all?: boolean; creds?: string; format?: 'oci' | 'v2s2' } = {}): Promise<void> {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  // v2s2 rewrites the manifest (docker media types): its digest is no longer BuiltImage.manifestDigest
  if (opts.format === 'v2s2') args.push('--format', 'v2s2');
  else args.push('--preserve-digests');
  if (opts.all) args.push('--all');
  if (opts.creds) args.push('--dest-creds', opts.creds);
  args.push(`oci:${dir}:${opts.layoutTag ?? 'latest'}`, `docker://${registryHost}/${repoTag}`);
  await execFileP('skopeo', args, { maxBuffer: 16 << 20 });
}

const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'echo', 'true', 'false', 'sleep', 'env', 'id', 'mkdir', 'rm', 'touch', 'wc', 'head', 'grep'];

async function hostBusybox(): Promise<Buffer> {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    try { await access(p, fsConstants.R_OK); return await readFile(p); } catch { /* next */ }
  }
  throw new Error('no busybox binary on this host (/bin/busybox)');
}

/** A busybox image spec from the host's static busybox: bin/busybox + applet symlinks, /etc/passwd, /tmp. */
export async function busyboxSpec(opts: { architecture?: string; variant?: string; marker?: string } = {}): Promise<ImageSpec> {
  const bin = await hostBusybox();
  const files: FileSpec[] = [
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', content: bin, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): FileSpec => ({ path: `bin/${a}`, type: 'symlink', target: 'busybox' })),
    { path: 'etc', type: 'dir' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' },
    { path: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    { path: 'root', type: 'dir', mode: 0o700 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ];
  if (opts.marker) files.push({ path: 'etc/platform', content: `${opts.marker}\n` });
  return {
    layers: [{ files, createdBy: '/bin/sh -c #(nop) ADD file:busybox in / ' }],
    config: { Cmd: ['sh'] },
    emptyHistory: ['/bin/sh -c #(nop)  CMD ["sh"]'],
    architecture: opts.architecture ?? 'amd64',
    ...(opts.variant ? { variant: opts.variant } : {}),
  };
}

/**
 * Pushes a busybox image to `<registryHost>/<repoTag>`. With `multiArch`, an OCI index of linux/amd64 and
 * linux/arm64 (same host binary; /etc/platform says which entry it is). Returns what was built.
 */
export async function pushBusybox(registryHost: string, repoTag: string, opts: { multiArch?: boolean; creds?: string } = {}): Promise<BuiltImage | { indexDigest: string; images: BuiltImage[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-oci-busybox-'));
  try {
    if (opts.multiArch) {
      const specs = [await busyboxSpec({ architecture: 'amd64', marker: 'linux/amd64' }), await busyboxSpec({ architecture: 'arm64', marker: 'linux/arm64' })];
      const r = await buildOciIndex(dir, specs);
      await pushLayout(dir, registryHost, repoTag, { all: true, creds: opts.creds });
      return { indexDigest: r.indexDigest, images: r.images };
    }
    const img = await buildOciLayout(dir, await busyboxSpec());
    await pushLayout(dir, registryHost, repoTag, { creds: opts.creds });
    return img;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Path of a blob in a docker-registry filesystem storage dir (startRegistry's `dir`), for corruption tests. */
export function registryBlobPath(registryDir: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return join(registryDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
