/**
 * The OCI module (src/lib/oci): media types, descriptor checks, manifest/index classification and validation
 * under the consumer (pull, load) and registry (server PUT) policies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../src/lib/digest.js';
import {
  MANIFEST_ACCEPT, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MEDIA_TYPES, bareMediaType, isForeignLayer, layerCompression,
} from '../../src/lib/oci/mediatypes.js';
import { ManifestError, checkDescriptor, parseManifest, referencedDigests } from '../../src/lib/oci/manifest.js';

const d = (s: string, size = 10, extra: Record<string, unknown> = {}) => ({ mediaType: MEDIA_TYPES.ociLayerGzip, digest: sha256(s), size, ...extra });
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const manifest = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
  config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256('cfg'), size: 3 }, layers: [d('a'), d('b')], ...extra,
});
const fails = (fn: () => unknown, failure: string, re?: RegExp) => assert.throws(fn, (e: unknown) => {
  assert.ok(e instanceof ManifestError, `not a ManifestError: ${String(e)}`);
  assert.equal(e.failure, failure, e.reason);
  if (re) assert.match(e.reason, re);
  return true;
});

test('media types: layer compression from the type, foreign layers, Accept list, size caps', () => {
  assert.equal(layerCompression(MEDIA_TYPES.dockerLayerGzip), 'gzip');
  assert.equal(layerCompression(MEDIA_TYPES.ociLayerGzip), 'gzip');
  assert.equal(layerCompression(MEDIA_TYPES.ociLayerZstd), 'zstd');
  assert.equal(layerCompression(MEDIA_TYPES.dockerLayerZstd), 'zstd');
  assert.equal(layerCompression(MEDIA_TYPES.ociLayer), 'none');
  assert.equal(layerCompression(MEDIA_TYPES.ociForeignLayerGzip), 'gzip');
  assert.equal(layerCompression(MEDIA_TYPES.dockerForeignLayerGzip), 'gzip');
  assert.equal(layerCompression(MEDIA_TYPES.ociConfig), null);
  assert.equal(layerCompression('application/x-gzip'), null);
  assert.equal(layerCompression(undefined), null);
  assert.ok(isForeignLayer(MEDIA_TYPES.dockerForeignLayerGzip));
  assert.ok(isForeignLayer(MEDIA_TYPES.ociForeignLayer));
  assert.ok(!isForeignLayer(MEDIA_TYPES.ociLayerGzip));
  assert.deepEqual(MANIFEST_ACCEPT, [MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest]);
  assert.equal(bareMediaType(`${MEDIA_TYPES.ociIndex}; charset=utf-8`), MEDIA_TYPES.ociIndex);
  assert.equal(MAX_MANIFEST_SIZE, 4 * 1024 * 1024);
  assert.equal(MAX_CONFIG_SIZE, 8 * 1024 * 1024);
});

test('descriptors: digest, size, urls and platform shapes', () => {
  assert.equal(checkDescriptor(d('x'), 'layers[0]').size, 10);
  fails(() => checkDescriptor(null, 'config'), 'descriptor', /bad descriptor in config/);
  fails(() => checkDescriptor({ digest: 'sha256:abc', size: 1 }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x') }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: -1 }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: 1.5 }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: '1' }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: 1, urls: 'http://x' }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: 1, platform: { os: 1 } }, 'x'), 'descriptor');
  fails(() => checkDescriptor({ digest: sha256('x'), size: 1, platform: 'linux/amd64' }, 'x'), 'descriptor');
  assert.equal(checkDescriptor({ digest: sha256('x') }, 'x', false).digest, sha256('x'));
});

test('consumer policy: classifies by mediaType, Content-Type or shape and normalizes the type', () => {
  const m = parseManifest(json(manifest()), '', 'consumer');
  assert.equal(m.kind, 'manifest');
  assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
  assert.equal(m.manifest!.layers.length, 2);
  assert.deepEqual(m.blobs.map((b) => b.digest), [sha256('cfg'), sha256('a'), sha256('b')]);
  // docker schema 2 by Content-Type, no mediaType field
  const noMt = manifest(); delete (noMt as Record<string, unknown>).mediaType;
  assert.equal(parseManifest(json(noMt), MEDIA_TYPES.dockerManifest, 'consumer').mediaType, MEDIA_TYPES.dockerManifest);
  // an unknown Content-Type with an image shape reads as OCI
  assert.equal(parseManifest(json(noMt), 'application/octet-stream', 'consumer').mediaType, MEDIA_TYPES.ociManifest);
  // indexes: by shape, docker list kept, anything else OCI
  const idx = { schemaVersion: 2, manifests: [d('m1', 5, { mediaType: MEDIA_TYPES.ociManifest, platform: { os: 'linux', architecture: 'amd64' } })] };
  const pi = parseManifest(json(idx), '', 'consumer');
  assert.equal(pi.kind, 'index');
  assert.equal(pi.mediaType, MEDIA_TYPES.ociIndex);
  assert.equal(pi.manifests[0]!.platform!.architecture, 'amd64');
  assert.equal(parseManifest(json({ ...idx, mediaType: MEDIA_TYPES.dockerList }), '', 'consumer').mediaType, MEDIA_TYPES.dockerList);
  // foreign layers are not blobs of the repository
  const foreign = manifest({ layers: [d('f', 7, { mediaType: MEDIA_TYPES.dockerForeignLayerGzip, urls: ['https://example.invalid/l'] }), d('b')] });
  assert.deepEqual(parseManifest(json(foreign), '', 'consumer').blobs.map((b) => b.digest), [sha256('cfg'), sha256('b')]);
});

test('consumer policy: invalid manifests', () => {
  fails(() => parseManifest(Buffer.from('{nope'), '', 'consumer'), 'json');
  fails(() => parseManifest(Buffer.from('[1]'), '', 'consumer'), 'json');
  fails(() => parseManifest(Buffer.from('null'), '', 'consumer'), 'json');
  fails(() => parseManifest(json({ schemaVersion: 1, name: 'x' }), '', 'consumer'), 'schema1');
  fails(() => parseManifest(json({ schemaVersion: 2 }), MEDIA_TYPES.schema1Signed, 'consumer'), 'schema1');
  fails(() => parseManifest(json({ schemaVersion: 2, mediaType: MEDIA_TYPES.schema1 }), '', 'consumer'), 'schema1');
  fails(() => parseManifest(json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex }), '', 'consumer'), 'index');
  fails(() => parseManifest(json(manifest({ config: { digest: 'sha256:short', size: 1 } })), '', 'consumer'), 'config', /unsupported manifest format/);
  fails(() => parseManifest(json(manifest({ layers: undefined })), '', 'consumer'), 'config');
  fails(() => parseManifest(json(manifest({ layers: [{ digest: sha256('a') }] })), '', 'consumer'), 'descriptor', /layers\[0\]/);
  fails(() => parseManifest(json({ schemaVersion: 2, manifests: [{ digest: sha256('m') }] }), '', 'consumer'), 'descriptor', /manifests\[0\]/);
  fails(() => parseManifest(json(manifest({ subject: { digest: 'nope' } })), '', 'consumer'), 'descriptor', /subject/);
});

test('registry policy: schemaVersion, mediaType vs Content-Type, known types, artifacts, subject', () => {
  const ok = parseManifest(json(manifest({ subject: d('s', 3, { mediaType: MEDIA_TYPES.ociManifest }), annotations: { a: 'b' } })), MEDIA_TYPES.ociManifest, 'registry');
  assert.equal(ok.subject!.digest, sha256('s'));
  assert.equal(ok.artifactType, MEDIA_TYPES.ociConfig);
  assert.deepEqual(ok.annotations, { a: 'b' });
  // an artifact without layers is accepted; artifactType wins over the config's type
  const art = parseManifest(json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, artifactType: 'application/x-sig', config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256('{}'), size: 2 } }), undefined, 'registry');
  assert.equal(art.artifactType, 'application/x-sig');
  assert.equal(art.blobs.length, 1);
  // the Content-Type decides when the body has no mediaType
  const noMt = manifest(); delete (noMt as Record<string, unknown>).mediaType;
  assert.equal(parseManifest(json(noMt), MEDIA_TYPES.dockerManifest, 'registry').mediaType, MEDIA_TYPES.dockerManifest);
  assert.equal(parseManifest(json({ schemaVersion: 2, manifests: [] }), undefined, 'registry').kind, 'index');
  fails(() => parseManifest(json({ ...manifest(), schemaVersion: 3 }), undefined, 'registry'), 'version');
  fails(() => parseManifest(json(manifest()), MEDIA_TYPES.dockerManifest, 'registry'), 'media-type-mismatch', /does not match Content-Type/);
  fails(() => parseManifest(json(manifest({ mediaType: 'application/json' })), undefined, 'registry'), 'unsupported', /application\/json/);
  fails(() => parseManifest(json(manifest({ config: { digest: sha256('cfg') } })), undefined, 'registry'), 'descriptor', /config/);
  fails(() => parseManifest(json(manifest({ layers: {} })), undefined, 'registry'), 'layers');
  fails(() => parseManifest(json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex }), undefined, 'registry'), 'index');
  fails(() => parseManifest(json({ schemaVersion: 1 }), undefined, 'registry'), 'schema1');
  fails(() => parseManifest(json({ schemaVersion: 2 }), MEDIA_TYPES.schema1, 'registry'), 'schema1');
});

test('referencedDigests reads config, layers, blobs and index entries leniently', () => {
  const r = referencedDigests({ config: { digest: sha256('c') }, layers: [{ digest: sha256('l') }, { digest: 'bad' }], blobs: [{ digest: sha256('b') }], manifests: [{ digest: sha256('m') }, null] });
  assert.deepEqual(r.blobs, [sha256('c'), sha256('l'), sha256('b')]);
  assert.deepEqual(r.manifests, [sha256('m')]);
  assert.deepEqual(referencedDigests({}), { blobs: [], manifests: [] });
});
