/**
 * Media types of images and their parts (docker image manifest v2 schema 2, OCI image spec), in one place for
 * pull, push, save/load and the registry server.
 */

export const MEDIA_TYPES = {
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociForeignLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociForeignLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociForeignLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Manifest lists / OCI indexes. */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex]);
/** Single-image manifests. */
export const IMAGE_MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest]);
/** Every manifest type this project reads or serves (schema 1 is refused everywhere). */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([...INDEX_MEDIA_TYPES, ...IMAGE_MANIFEST_MEDIA_TYPES]);
export const SCHEMA1_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.schema1, MEDIA_TYPES.schema1Signed]);

/** The Accept list of a manifest GET, in docker's order. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest,
];

/** A Content-Type header without its parameters. */
export function bareMediaType(contentType: string | undefined | null): string {
  return (contentType ?? '').split(';')[0]!.trim();
}

export function isIndexMediaType(mt: string | undefined): boolean { return mt !== undefined && INDEX_MEDIA_TYPES.has(mt); }
export function isSchema1MediaType(mt: string | undefined): boolean { return mt !== undefined && SCHEMA1_MEDIA_TYPES.has(mt); }

/** Layer media types whose blobs live elsewhere (`urls`), not in the registry. */
export function isForeignLayer(mt: string | undefined): boolean {
  return !!mt && (mt.startsWith('application/vnd.docker.image.rootfs.foreign.') || mt.startsWith('application/vnd.oci.image.layer.nondistributable.'));
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/**
 * The compression a layer's media type declares: `+gzip`/`.gzip`, `+zstd`/`.zstd`, or none for a plain tar;
 * null for a type that is not a layer type this project knows (the bytes' magic then decides).
 */
export function layerCompression(mt: string | undefined): LayerCompression | null {
  if (!mt) return null;
  if (!/^application\/vnd\.(docker\.image\.rootfs\.(foreign\.)?diff\.tar|oci\.image\.layer\.(nondistributable\.)?v1\.tar)/.test(mt)) return null;
  if (/[.+]gzip$/.test(mt)) return 'gzip';
  if (/[.+]zstd$/.test(mt)) return 'zstd';
  if (/\.tar$/.test(mt)) return 'none';
  return null;
}

/** Largest manifest or index read into memory or accepted by the registry server (the spec asks for at least 4 MiB). */
export const MAX_MANIFEST_SIZE = 4 << 20;
/** Largest image config read into memory. */
export const MAX_CONFIG_SIZE = 8 << 20;
