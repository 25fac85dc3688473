import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseNormalizedNamed, withDefaultTag, normalizedName, familiarName, familiarString, referenceString,
  parseTag, isIdLike, isFullId, withTag, trimNamed, parseDockerRef, splitDockerDomain, isValidDomain, splitRepoTag, type Reference,
} from '../../src/lib/reference.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

const DGST = 'sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a';
const HEX64 = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

function throwsMsg(fn: () => unknown, msg: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidParameterError, `expected InvalidParameterError, got ${String(e)}`);
    if (typeof msg === 'string') assert.equal(e.message, msg);
    else assert.match(e.message, msg);
    return true;
  });
}

test('normalization of familiar names', () => {
  const cases: Array<[string, Partial<Reference>]> = [
    ['ubuntu', { domain: 'docker.io', path: 'library/ubuntu' }],
    ['busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['user/repo', { domain: 'docker.io', path: 'user/repo' }],
    ['user/repo:1.0', { domain: 'docker.io', path: 'user/repo', tag: '1.0' }],
    ['docker.io/debian', { domain: 'docker.io', path: 'library/debian' }],
    ['docker.io/library/debian', { domain: 'docker.io', path: 'library/debian' }],
    ['index.docker.io/debian', { domain: 'docker.io', path: 'library/debian' }],
    ['index.docker.io/docker/docker', { domain: 'docker.io', path: 'docker/docker' }],
    ['localhost:5002/library/busybox', { domain: 'localhost:5002', path: 'library/busybox' }],
    ['localhost:5002/library/nope:1', { domain: 'localhost:5002', path: 'library/nope', tag: '1' }],
    ['localhost/name', { domain: 'localhost', path: 'name' }],
    ['127.0.0.1:5000/debian', { domain: '127.0.0.1:5000', path: 'debian' }],
    ['host.tld/x', { domain: 'host.tld', path: 'x' }],
    ['[::1]:5000/x', { domain: '[::1]:5000', path: 'x' }],
    ['[2001:db8::1]/a/b:v', { domain: '[2001:db8::1]', path: 'a/b', tag: 'v' }],
    ['Foo/bar', { domain: 'Foo', path: 'bar' }], // an upper-case first component is a domain
    ['foo/foo_bar.com:8080', { domain: 'docker.io', path: 'foo/foo_bar.com', tag: '8080' }],
    ['a/b/c/d', { domain: 'docker.io', path: 'a/b/c/d' }],
    ['a--b__c.d-e', { domain: 'docker.io', path: 'library/a--b__c.d-e' }],
    [`docker.io/${HEX64}`, { domain: 'docker.io', path: `library/${HEX64}` }],
    [`busybox@${DGST}`, { domain: 'docker.io', path: 'library/busybox', digest: DGST as Reference['digest'] }],
    [`localhost:5002/library/busybox:latest@${DGST}`,
      { domain: 'localhost:5002', path: 'library/busybox', tag: 'latest', digest: DGST as Reference['digest'] }],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(parseNormalizedNamed(input), want, input);
  }
});

test('docker pull INVALID::ref: the transcript message', () => {
  throwsMsg(() => parseNormalizedNamed('INVALID::ref'), 'invalid reference format: repository name (library/INVALID) must be lowercase');
});

test('invalid references', () => {
  throwsMsg(() => parseNormalizedNamed('docker/Docker'), 'invalid reference format: repository name (docker/Docker) must be lowercase');
  throwsMsg(() => parseNormalizedNamed('docker.io/docker/Docker'), 'invalid reference format: repository name (docker/Docker) must be lowercase');
  throwsMsg(() => parseNormalizedNamed('localhost:5000/Foo:tag'), 'invalid reference format: repository name (Foo) must be lowercase');
  throwsMsg(() => parseNormalizedNamed('UPPER'), 'invalid reference format: repository name (library/UPPER) must be lowercase');
  for (const bad of [
    '', ':', 'busybox:', 'busybox@', 'https://github.com/docker/docker', '-docker', '-docker/docker',
    '-docker.io/docker/docker', 'docker///docker', 'docker.io/docker///docker', 'a/', '/a', 'a:b:c',
    'busybox:-tag', 'busybox:.tag', `busybox:${'t'.repeat(129)}`, 'bad char!', 'a b', 'a_-b', 'a..b', '_a',
    'a.', 'localhost:port/x', '[::1/x', 'sp ace/x',
  ]) {
    throwsMsg(() => parseNormalizedNamed(bad), 'invalid reference format');
  }
  throwsMsg(() => parseNormalizedNamed(HEX64), `invalid repository name (${HEX64}), cannot specify 64-byte hexadecimal strings`);
  throwsMsg(() => parseNormalizedNamed(`a/${'b'.repeat(250)}`), 'repository name must not be more than 255 characters');
  // 255 characters of name including "docker.io/" is still fine
  assert.equal(parseNormalizedNamed(`a/${'b'.repeat(243)}`).path.length, 245);
  throwsMsg(() => parseNormalizedNamed(`busybox@sha256:${'A'.repeat(64)}`), 'invalid checksum digest format');
  throwsMsg(() => parseNormalizedNamed(`busybox@sha256:${'a'.repeat(32)}`), 'invalid checksum digest length');
  throwsMsg(() => parseNormalizedNamed(`busybox@md5:${'a'.repeat(32)}`), 'unsupported digest algorithm');
  throwsMsg(() => parseNormalizedNamed(`busybox@sha256:${'a'.repeat(31)}`), 'invalid reference format');
});

test('tags: longest valid, characters', () => {
  assert.equal(parseNormalizedNamed(`busybox:${'t'.repeat(128)}`).tag, 't'.repeat(128));
  assert.equal(parseNormalizedNamed('busybox:_x.Y-z').tag, '_x.Y-z');
  assert.equal(parseTag('latest'), 'latest');
  assert.equal(parseTag('V1.2_3-rc'), 'V1.2_3-rc');
  throwsMsg(() => parseTag(''), 'invalid tag format');
  throwsMsg(() => parseTag('-x'), 'invalid tag format');
  throwsMsg(() => parseTag('a:b'), 'invalid tag format');
  throwsMsg(() => parseTag('x'.repeat(129)), 'invalid tag format');
});

test('withDefaultTag and parseDockerRef', () => {
  assert.equal(withDefaultTag(parseNormalizedNamed('busybox')).tag, 'latest');
  assert.equal(withDefaultTag(parseNormalizedNamed('busybox:test')).tag, 'test');
  const dig = withDefaultTag(parseNormalizedNamed(`busybox@${DGST}`));
  assert.equal(dig.tag, undefined);
  assert.equal(dig.digest, DGST);
  const both = parseDockerRef(`busybox:1@${DGST}`);
  assert.equal(both.tag, undefined);
  assert.equal(both.digest, DGST);
  assert.equal(parseDockerRef('busybox').tag, 'latest');
});

test('familiar and normalized strings', () => {
  const cases: Array<[string, string, string, string, string]> = [
    // input, normalizedName, familiarName, familiarString, referenceString
    ['busybox', 'docker.io/library/busybox', 'busybox', 'busybox', 'docker.io/library/busybox'],
    ['busybox:test', 'docker.io/library/busybox', 'busybox', 'busybox:test', 'docker.io/library/busybox:test'],
    ['user/repo:v', 'docker.io/user/repo', 'user/repo', 'user/repo:v', 'docker.io/user/repo:v'],
    ['docker.io/library/a/b', 'docker.io/library/a/b', 'library/a/b', 'library/a/b', 'docker.io/library/a/b'],
    ['localhost:5002/library/busybox:latest', 'localhost:5002/library/busybox', 'localhost:5002/library/busybox',
      'localhost:5002/library/busybox:latest', 'localhost:5002/library/busybox:latest'],
    ['index.docker.io/library/ubuntu:22.04', 'docker.io/library/ubuntu', 'ubuntu', 'ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    [`localhost:5002/library/busybox@${DGST}`, 'localhost:5002/library/busybox', 'localhost:5002/library/busybox',
      `localhost:5002/library/busybox@${DGST}`, `localhost:5002/library/busybox@${DGST}`],
    [`nginx:v3@${DGST}`, 'docker.io/library/nginx', 'nginx', `nginx:v3@${DGST}`, `docker.io/library/nginx:v3@${DGST}`],
  ];
  for (const [input, nn, fn, fs, rs] of cases) {
    const r = parseNormalizedNamed(input);
    assert.equal(normalizedName(r), nn, input);
    assert.equal(familiarName(r), fn, input);
    assert.equal(familiarString(r), fs, input);
    assert.equal(referenceString(r), rs, input);
  }
  // "Status: Image is up to date for localhost:5002/library/busybox:latest"
  assert.equal(familiarString(withDefaultTag(parseNormalizedNamed('localhost:5002/library/busybox'))), 'localhost:5002/library/busybox:latest');
});

test('isIdLike / isFullId', () => {
  assert.equal(isIdLike('a4dea7034236'), true);
  assert.equal(isIdLike('a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837'), true);
  assert.equal(isIdLike('sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837'), true);
  assert.equal(isIdLike('sha256:a4dea7'), true);
  assert.equal(isIdLike('busybox'), false);
  assert.equal(isIdLike('A4DEA7034236'), false);
  assert.equal(isIdLike(''), false);
  assert.equal(isIdLike('sha256:'), false);
  assert.equal(isIdLike('a'.repeat(65)), false);
  assert.equal(isIdLike('a4dea7034236:latest'), false);
  assert.equal(isFullId('a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837'), true);
  assert.equal(isFullId('a4dea7034236'), false);
});

test('helpers: splitDockerDomain, isValidDomain, splitRepoTag', () => {
  assert.deepEqual(splitDockerDomain('busybox'), ['docker.io', 'library/busybox']);
  assert.deepEqual(splitDockerDomain('localhost/x'), ['localhost', 'x']);
  assert.deepEqual(splitDockerDomain('index.docker.io/x'), ['docker.io', 'library/x']);
  assert.equal(isValidDomain('localhost:5000'), true);
  assert.equal(isValidDomain('[::1]:5000'), true);
  assert.equal(isValidDomain('-bad'), false);
  assert.deepEqual(splitRepoTag('localhost:5002/lab/nginx:v3'), { repo: 'localhost:5002/lab/nginx', tag: 'v3' });
  assert.deepEqual(splitRepoTag('localhost:5002/lab/nginx'), { repo: 'localhost:5002/lab/nginx' });
  assert.deepEqual(splitRepoTag(`busybox@${DGST}`), { repo: 'busybox', digest: DGST });
});

test('withTag / trimNamed', () => {
  const r = parseNormalizedNamed('localhost:5002/lab/nginx:v3');
  assert.equal(familiarString(withTag(r, 'v4')), 'localhost:5002/lab/nginx:v4');
  assert.equal(referenceString(trimNamed(r)), 'localhost:5002/lab/nginx');
  throwsMsg(() => withTag(r, 'bad tag'), 'invalid tag format');
});
