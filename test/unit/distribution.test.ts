import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostPlatform, parsePlatform, selectPlatform, formatPlatform, platformMatches } from '../../src/lib/oci/platform.js';
import { parseManifest } from '../../src/engine/distribution/registry.js';
import { parseWWWAuthenticate, isInsecureRegistry, resolveEndpoints, errcodeString, goNetError } from '../../src/engine/distribution/transport.js';
import { progressBar } from '../../src/engine/distribution/progress.js';
import { decompressorFor } from '../../src/engine/distribution/pull.js';
import { sha256 } from '../../src/lib/digest.js';
import { NotFoundError, InvalidParameterError } from '../../src/lib/errors.js';

const D = (c: string) => `sha256:${c.repeat(64)}` as const;
const entries = [
  { digest: D('a'), platform: { os: 'linux', architecture: 'amd64' } },
  { digest: D('b'), platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
  { digest: D('c'), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
  { digest: D('d'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  { digest: D('e'), platform: { os: 'unknown', architecture: 'unknown' } },
  { digest: D('f'), platform: { os: 'windows', architecture: 'amd64' } },
];

test('host platform maps process.arch to GOARCH', () => {
  const p = hostPlatform();
  assert.equal(p.os, 'linux');
  const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
  if (expected[process.arch]) assert.equal(p.architecture, expected[process.arch]);
});

test('parsePlatform normalizes aliases and variants', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.equal(formatPlatform(parsePlatform('linux/arm/7')), 'linux/arm/v7');
  assert.throws(() => parsePlatform('linux//amd64'), InvalidParameterError);
  assert.throws(() => parsePlatform('a/b/c/d'), InvalidParameterError);
});

test('selectPlatform: exact matches, arm variant defaults and fallbacks, no match error', () => {
  assert.equal(selectPlatform(entries, parsePlatform('linux/amd64')).digest, D('a'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm64')).digest, D('d'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm')).digest, D('c'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm/v6')).digest, D('b'));
  assert.equal(selectPlatform(entries, parsePlatform('windows/amd64')).digest, D('f'));
  // v7 accepts a v6 image when there is no v7 one; v5 does not accept v6
  const onlyV6 = [entries[1]!];
  assert.equal(selectPlatform(onlyV6, parsePlatform('linux/arm/v7')).digest, D('b'));
  assert.throws(() => selectPlatform(onlyV6, parsePlatform('linux/arm/v5')), /no matching manifest for linux\/arm\/v5 in the manifest list entries/);
  assert.throws(() => selectPlatform(entries, parsePlatform('linux/s390x')), (e: unknown) =>
    e instanceof NotFoundError && e.message === 'no matching manifest for linux/s390x in the manifest list entries');
  assert.equal(platformMatches({ os: 'linux', architecture: 'amd64' }, parsePlatform('linux/amd64')), true);
  assert.equal(platformMatches({ os: 'linux', architecture: 'arm64' }, parsePlatform('linux/amd64')), false);
});

test('WWW-Authenticate parsing: Bearer with quoted params, Basic, several challenges', () => {
  const c = parseWWWAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.equal(c.length, 1);
  assert.equal(c[0]!.scheme, 'bearer');
  assert.deepEqual(c[0]!.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' });
  const b = parseWWWAuthenticate('Basic realm="wharf-test"');
  assert.deepEqual(b, [{ scheme: 'basic', params: { realm: 'wharf-test' } }]);
  const two = parseWWWAuthenticate('Basic realm="a, b", Bearer realm=https://x/token, service=svc, error="invalid_token"');
  assert.equal(two.length, 2);
  assert.equal(two[0]!.params.realm, 'a, b');
  assert.deepEqual(two[1]!.params, { realm: 'https://x/token', service: 'svc', error: 'invalid_token' });
  const esc = parseWWWAuthenticate('Bearer realm="q\\"x"');
  assert.equal(esc[0]!.params.realm, 'q"x');
});

test('progress bar renders like JSONProgress.String', () => {
  assert.equal(progressBar(0, 0), '');
  assert.equal(progressBar(512, 24), `[${'='.repeat(50)}>]     512B`);
  assert.equal(progressBar(32768, 2818370), `[>${' '.repeat(50)}]  32.77kB/2.818MB`);
  assert.equal(progressBar(1409185, 2818370), `[${'='.repeat(25)}>${' '.repeat(25)}]  1.409MB/2.818MB`);
  assert.equal(progressBar(2818370, 2818370), `[${'='.repeat(50)}>]  2.818MB/2.818MB`);
  assert.equal(progressBar(1200000, 2300000), `[${'='.repeat(26)}>${' '.repeat(24)}]    1.2MB/2.3MB`);
  assert.equal(progressBar(1000, 0), '     1kB');
});

test('insecure registries and endpoints', () => {
  assert.equal(isInsecureRegistry('localhost:5000', []), true);
  assert.equal(isInsecureRegistry('127.0.0.1:5000', []), true);
  assert.equal(isInsecureRegistry('127.8.9.1', []), true);
  assert.equal(isInsecureRegistry('[::1]:5000', []), true);
  assert.equal(isInsecureRegistry('registry.example.com', []), false);
  assert.equal(isInsecureRegistry('registry.example.com:5000', ['registry.example.com:5000']), true);
  assert.equal(isInsecureRegistry('10.1.2.3:5000', ['10.0.0.0/8']), true);
  assert.equal(isInsecureRegistry('11.1.2.3:5000', ['10.0.0.0/8']), false);
  const cfg = { registryMirrors: ['https://mirror.example.com/'], insecureRegistries: [] };
  assert.deepEqual(resolveEndpoints('docker.io', cfg).map((e) => e.url), ['https://mirror.example.com', 'https://registry-1.docker.io']);
  assert.deepEqual(resolveEndpoints('quay.io', cfg).map((e) => e.url), ['https://quay.io']);
  assert.deepEqual(resolveEndpoints('127.0.0.1:5000', cfg).map((e) => e.url), ['https://127.0.0.1:5000', 'http://127.0.0.1:5000']);
});

test('manifest classification; schema 1 refused', () => {
  const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
  assert.equal(parseManifest(idx, sha256(idx), '').kind, 'index');
  const man = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: D('a'), size: 1 }, layers: [] }));
  const m = parseManifest(man, sha256(man), 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(m.kind, 'manifest');
  assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const s1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }));
  assert.throws(() => parseManifest(s1, sha256(s1), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), /schema 1 support is disabled/);
});

test('error wording helpers', () => {
  assert.equal(errcodeString({ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }), 'manifest unknown: manifest unknown');
  assert.equal(errcodeString({ code: 'DENIED', message: 'requested access to the resource is denied' }), 'denied: requested access to the resource is denied');
  const e = goNetError('Get', 'https://127.0.0.1:1/v2/', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 1 }));
  assert.equal(e.message, 'Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused');
});

test('decompressor chosen by magic, then media type', () => {
  assert.equal(decompressorFor('application/vnd.oci.image.layer.v1.tar', Buffer.from([0x1f, 0x8b, 8, 0])).constructor.name, 'Gunzip');
  assert.match(decompressorFor('', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])).constructor.name, /Zstd/);
  assert.equal(decompressorFor('application/vnd.oci.image.layer.v1.tar', Buffer.from('abcd')).constructor.name, 'PassThrough');
});
