import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseFilters, encodeFilters, filtersFromArgs, validateFilters, exactMatch, matchFilter, matchKVList,
  getBoolOrDefault, filterValues, hasFilter, invalidFilterError,
} from '../../src/lib/filters.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

test('parseFilters: the forms the docker CLI sends (from the API trace)', () => {
  // GET /v1.41/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D
  const q = decodeURIComponent('%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D');
  assert.deepEqual({ ...parseFilters(q) }, { dangling: ['true'] });
  const label = decodeURIComponent('%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D');
  assert.deepEqual({ ...parseFilters(label) }, { label: ['a=b'] });
  assert.deepEqual({ ...parseFilters('{"reference":{"busybox":true,"nginx:*":true},"since":{"x":true}}') },
    { reference: ['busybox', 'nginx:*'], since: ['x'] });
});

test('parseFilters: legacy list form, empty input, null values', () => {
  assert.deepEqual({ ...parseFilters('{"label":["a=b","c"],"dangling":["true"]}') }, { label: ['a=b', 'c'], dangling: ['true'] });
  assert.deepEqual({ ...parseFilters(undefined) }, {});
  assert.deepEqual({ ...parseFilters(null) }, {});
  assert.deepEqual({ ...parseFilters('') }, {});
  assert.deepEqual({ ...parseFilters('{}') }, {});
  assert.deepEqual({ ...parseFilters('{"dangling":null}') }, { dangling: [] });
  assert.deepEqual({ ...parseFilters('{"dangling":{}}') }, { dangling: [] });
});

test('parseFilters: bad JSON is an invalid parameter', () => {
  assert.throws(() => parseFilters('{'), (e: unknown) => e instanceof InvalidParameterError && /^invalid filter/.test(e.message));
  assert.throws(() => parseFilters('not json'), InvalidParameterError);
  assert.throws(() => parseFilters('["a"]'), /cannot unmarshal array/);
  assert.throws(() => parseFilters('{"a":"b"}'), /cannot unmarshal string/);
  assert.throws(() => parseFilters('{"a":{"b":"yes"}}'), InvalidParameterError);
  assert.throws(() => parseFilters('{"a":[1]}'), InvalidParameterError);
});

test('encodeFilters: sorted {"k":{"v":true}}, round trip', () => {
  assert.equal(encodeFilters({ dangling: ['true'] }), '{"dangling":{"true":true}}');
  assert.equal(encodeFilters({ since: ['busybox'] }), '{"since":{"busybox":true}}');
  assert.equal(encodeFilters({ reference: ['b', 'a'], label: ['x=y'] }), '{"label":{"x=y":true},"reference":{"a":true,"b":true}}');
  assert.equal(encodeFilters({}), '');
  const f = { label: ['a=b', 'c'], before: ['x:1'] };
  assert.deepEqual({ ...parseFilters(encodeFilters(f)) }, { before: ['x:1'], label: ['a=b', 'c'] });
});

test('filtersFromArgs: -f name=value', () => {
  assert.deepEqual({ ...filtersFromArgs(['dangling=true']) }, { dangling: ['true'] });
  assert.deepEqual({ ...filtersFromArgs(['label=a=b', 'label=c', 'since=busybox']) }, { label: ['a=b', 'c'], since: ['busybox'] });
  assert.deepEqual({ ...filtersFromArgs([' Dangling = true ']) }, { dangling: ['true'] });
  assert.deepEqual({ ...filtersFromArgs(['label=x', 'label=x']) }, { label: ['x'] });
  assert.deepEqual({ ...filtersFromArgs(['name=']) }, { name: [''] });
  assert.deepEqual({ ...filtersFromArgs([]) }, {});
  assert.throws(() => filtersFromArgs(['dangling']), (e: unknown) =>
    e instanceof InvalidParameterError && e.message === 'bad format of filter (expected name=value)');
});

test('validateFilters: dockerd 20.10 message', () => {
  validateFilters({ dangling: ['true'], label: [] }, ['dangling', 'label', 'before']);
  assert.throws(() => validateFilters({ dangling: ['true'], bogus: ['1'] }, ['dangling']), (e: unknown) =>
    e instanceof InvalidParameterError && e.message === "Invalid filter 'bogus'");
  assert.equal(invalidFilterError('dangling', ['maybe']).message, "Invalid filter 'dangling=[maybe]'");
});

test('matching helpers', () => {
  const f = filtersFromArgs(['label=a=b', 'label=c', 'name=^web', 'status=running']);
  assert.equal(exactMatch(f, 'status', 'running'), true);
  assert.equal(exactMatch(f, 'status', 'exited'), false);
  assert.equal(exactMatch(f, 'absent', 'anything'), true);
  assert.equal(matchFilter(f, 'name', 'webserver'), true);
  assert.equal(matchFilter(f, 'name', 'myweb'), false);
  assert.equal(matchFilter(filtersFromArgs(['name=[']), 'name', 'x'), false);
  assert.equal(matchKVList(f, 'label', { a: 'b', c: '', d: '1' }), true);
  assert.equal(matchKVList(f, 'label', { a: 'x', c: '' }), false);
  assert.equal(matchKVList(f, 'label', { a: 'b' }), false);
  assert.equal(matchKVList(f, 'label', null), false);
  assert.equal(matchKVList(f, 'absent', null), true);
  assert.deepEqual(filterValues(f, 'label'), ['a=b', 'c']);
  assert.deepEqual(filterValues(f, 'nope'), []);
  assert.equal(hasFilter(f, 'name'), true);
  assert.equal(hasFilter(f, 'toString'), false);
});

test('getBoolOrDefault', () => {
  assert.equal(getBoolOrDefault({}, 'dangling', false), false);
  assert.equal(getBoolOrDefault({ dangling: ['true'] }, 'dangling', false), true);
  assert.equal(getBoolOrDefault({ dangling: ['1'] }, 'dangling', false), true);
  assert.equal(getBoolOrDefault({ dangling: ['false'] }, 'dangling', true), false);
  assert.equal(getBoolOrDefault({ dangling: ['0'] }, 'dangling', true), false);
  assert.throws(() => getBoolOrDefault({ dangling: ['maybe'] }, 'dangling', false), /Invalid filter 'dangling=\[maybe\]'/);
  assert.throws(() => getBoolOrDefault({ dangling: ['true', 'false'] }, 'dangling', false), InvalidParameterError);
});

test('prune filters: until (one value, durations and dates) and label/label!', async () => {
  const { pruneUntil, pruneLabelsMatch, parseTimestamp } = await import('../../src/lib/filters.js');
  assert.equal(pruneUntil({}), null);
  assert.equal(pruneUntil({ until: ['2020-06-01T00:00:00Z'] }), Date.parse('2020-06-01T00:00:00Z'));
  const before = Date.now();
  const t = pruneUntil({ until: ['1h'] })!;
  assert.ok(t <= before - 3600e3 + 5 && t >= before - 3600e3 - 1000, String(t));
  assert.throws(() => pruneUntil({ until: ['1h', '2h'] }), /more than one until filter specified/);
  assert.throws(() => parseTimestamp('yesterday'), /invalid value for 'until' filter/);
  assert.equal(pruneLabelsMatch({}, {}), true);
  assert.equal(pruneLabelsMatch({ label: ['a'] }, { a: '1' }), true);
  assert.equal(pruneLabelsMatch({ label: ['a=2'] }, { a: '1' }), false);
  assert.equal(pruneLabelsMatch({ 'label!': ['a'] }, { a: '1' }), false);
  assert.equal(pruneLabelsMatch({ 'label!': ['a=2'] }, { a: '1' }), true);
  assert.equal(pruneLabelsMatch({ 'label!': ['a'] }, {}), true);
});

test('ps publish/expose filter values: ports, ranges, protocols and dockerd\'s errors', async () => {
  const { portFilter } = await import('../../src/engine/containers/service.js');
  assert.deepEqual([...portFilter('publish', ['80'])], ['80/tcp']);
  assert.deepEqual([...portFilter('expose', ['8000-8002/udp'])], ['8000/udp', '8001/udp', '8002/udp']);
  assert.throws(() => portFilter('publish', ['80:80']), /^Error: filter for 'publish' should not contain ':': 80:80$/);
  assert.throws(() => portFilter('expose', ['90-80']), /error while looking up for expose 90-80: Invalid range specified for the Port: 90-80/);
  assert.throws(() => portFilter('expose', ['x']), /error while looking up for expose x: strconv.ParseUint: parsing "x": invalid syntax/);
  assert.throws(() => portFilter('expose', ['70000']), /value out of range/);
});
