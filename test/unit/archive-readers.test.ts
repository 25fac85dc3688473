/**
 * The archive readers on what a pass over a tar collected: the OCI layout reader (index.json → manifests →
 * configs and layers, checked by lib/oci) and the docker-archive reader (manifest.json → plans).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256, type Digest } from '../../src/lib/digest.js';
import { MEDIA_TYPES } from '../../src/lib/oci/mediatypes.js';
import { ociLayoutItems, type ArchiveEntries } from '../../src/engine/archive/oci-reader.js';
import { parseManifestJson, planImages } from '../../src/engine/archive/docker-reader.js';
import type { ExtractedLayer } from '../../src/engine/layers/types.js';

async function layout(manifest: unknown, annotations: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'oci-reader-'));
  const entries: ArchiveEntries = { files: new Map(), blobs: new Map(), extracted: new Map() };
  const put = async (b: Buffer) => {
    const d = sha256(b);
    const f = join(dir, d.slice(7));
    await writeFile(f, b);
    entries.blobs.set(`blobs/sha256/${d.slice(7)}`, f);
    return d;
  };
  const layer = Buffer.from('layer bytes');
  const layerDigest = await put(layer);
  const diffId = sha256('diff');
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [diffId] } }));
  const configDigest = await put(config);
  const m = typeof manifest === 'function' ? (manifest as (c: Digest, l: Digest) => unknown)(configDigest, layerDigest) : manifest;
  const mb = Buffer.from(JSON.stringify(m));
  const md = await put(mb);
  entries.files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: md, size: mb.length, annotations }] })));
  const extractedFrom: string[] = [];
  const extract = async (file: string): Promise<ExtractedLayer> => { extractedFrom.push(file); return { diffId } as unknown as ExtractedLayer; };
  return { dir, entries, extract, extractedFrom, configDigest, layerDigest, diffId };
}

const image = (c: Digest, l: Digest) => ({
  schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
  config: { mediaType: MEDIA_TYPES.ociConfig, digest: c, size: 1 },
  layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: l, size: 11 }],
});

test('OCI layout: index → manifest → config and layers; the name comes from the annotation; plans check diff IDs', async () => {
  const l = await layout(image, { 'io.containerd.image.name': 'docker.io/library/app:v1' });
  try {
    const items = await ociLayoutItems(l.entries, l.extract);
    assert.deepEqual(items, [{ Config: `blobs/sha256/${l.configDigest.slice(7)}`, RepoTags: ['docker.io/library/app:v1'], Layers: [`blobs/sha256/${l.layerDigest.slice(7)}`] }]);
    assert.equal(l.extractedFrom.length, 1);
    const plans = await planImages(items, l.entries, l.extract);
    assert.equal(plans.length, 1);
    assert.equal(plans[0]!.tags[0]!.tag, 'v1');
    assert.deepEqual(plans[0]!.cfg.rootfs.diff_ids, [l.diffId]);
  } finally { await rm(l.dir, { recursive: true, force: true }); }
});

test('OCI layout: a manifest that is not valid is refused with lib/oci\'s reason', async () => {
  for (const [bad, re] of [
    [(c: Digest, l: Digest) => ({ ...image(c, l), layers: [{ digest: l }] }), /bad descriptor in layers\[0\]/],
    [(c: Digest) => ({ schemaVersion: 2, config: { digest: c, size: 1 } }), /unsupported manifest format/],
    [{ schemaVersion: 1, fsLayers: [] }, /schema 1/],
  ] as const) {
    const l = await layout(bad);
    try {
      await assert.rejects(ociLayoutItems(l.entries, l.extract), re);
      assert.equal(l.extractedFrom.length, 0);
    } finally { await rm(l.dir, { recursive: true, force: true }); }
  }
});

test('docker-archive: manifest.json must be an array; layer count and diff IDs must match the config', async () => {
  assert.throws(() => parseManifestJson(Buffer.from('{')), /invalid manifest.json/);
  assert.throws(() => parseManifestJson(Buffer.from('{}')), /invalid manifest.json/);
  const diffId = sha256('d');
  const entries: ArchiveEntries = { files: new Map([['c.json', Buffer.from(JSON.stringify({ rootfs: { diff_ids: [diffId] } }))]]), blobs: new Map(), extracted: new Map() };
  const none = async (): Promise<ExtractedLayer> => { throw new Error('not called'); };
  await assert.rejects(planImages([{ Config: 'c.json', RepoTags: null, Layers: [] }], entries, none), /layers length mismatch: expected 1, got 0/);
  await assert.rejects(planImages([{ Config: 'c.json', RepoTags: null, Layers: ['x/layer.tar'] }], entries, none), /open x\/layer.tar/);
  entries.extracted.set('x/layer.tar', { diffId: sha256('other') } as unknown as ExtractedLayer);
  await assert.rejects(planImages([{ Config: 'c.json', RepoTags: null, Layers: ['x/layer.tar'] }], entries, none), /invalid diffID for layer 0/);
  entries.extracted.set('x/layer.tar', { diffId } as unknown as ExtractedLayer);
  const plans = await planImages([{ Config: './c.json', RepoTags: ['app'], Layers: ['./x/layer.tar'] }], entries, none);
  assert.equal(plans[0]!.tags[0]!.tag, 'latest');
  await assert.rejects(planImages([{ Config: 'c.json', RepoTags: ['app@sha256:' + 'a'.repeat(64)], Layers: ['x/layer.tar'] }], entries, none), /invalid tag/);
});
