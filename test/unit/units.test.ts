import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  humanSize, humanSizeWithPrecision, bytesSize, humanDuration, timeAgo, parseBytes, fromHumanSize,
  formatDockerTime, goFormatFloat, ellipsis,
} from '../../src/lib/units.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

test('humanSize: the sizes docker printed in the transcript', () => {
  // docker images SIZE (precision 3) and {{json .}} VirtualSize (precision 4) of busybox, 1984234 bytes
  assert.equal(humanSizeWithPrecision(1984234, 3), '1.98MB');
  assert.equal(humanSize(1984234), '1.984MB');
  assert.equal(humanSizeWithPrecision(0, 3), '0B');
  assert.equal(humanSizeWithPrecision(24, 3), '24B');
  assert.equal(humanSizeWithPrecision(10, 3), '10B');
  assert.equal(humanSize(2048), '2.048kB'); // "Sending build context to Docker daemon  2.048kB"
  assert.equal(humanSize(7680), '7.68kB');
  assert.equal(humanSize(7168), '7.168kB');
  assert.equal(humanSize(183), '183B');
});

test('humanSize: Go %g rules (no trailing zeros, exponent form, unit limits)', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(512), '512B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(1500), '1.5kB');
  assert.equal(humanSize(10_000_000), '10MB');
  assert.equal(humanSize(117_700_000), '117.7MB');
  assert.equal(humanSizeWithPrecision(117_700_000, 3), '118MB');
  assert.equal(humanSize(1e12), '1TB');
  assert.equal(humanSize(3.5e15), '3.5PB');
  assert.equal(humanSize(1e27), '1000YB');
  assert.equal(humanSize(1e28), '1e+04YB');
  // 999999 bytes = 999.999kB, rounded to 4 digits is 1000 (exponent 3 < 4: no exponent form)
  assert.equal(humanSize(999_999), '1000kB');
  // with precision 3 the same value needs the exponent form, as Go prints it
  assert.equal(humanSizeWithPrecision(999_999, 3), '1e+03kB');
  // exact ties round half to even (1125/1000 is exactly 1.125 in binary)
  assert.equal(humanSizeWithPrecision(1125, 3), '1.12kB');
  assert.equal(humanSizeWithPrecision(1375, 3), '1.38kB');
  assert.equal(humanSizeWithPrecision(2500, 1), '2kB');
  assert.equal(humanSizeWithPrecision(3500, 1), '4kB');
});

test('bytesSize: binary units', () => {
  assert.equal(bytesSize(0), '0B');
  assert.equal(bytesSize(1023), '1023B');
  assert.equal(bytesSize(1024), '1KiB');
  assert.equal(bytesSize(1536), '1.5KiB');
  assert.equal(bytesSize(1024 * 1024), '1MiB');
  assert.equal(bytesSize(25_275_990_016), '23.54GiB'); // docker info "Total Memory: 23.54GiB"
  assert.equal(bytesSize(5 * 1024 ** 4), '5TiB');
});

test('goFormatFloat: e, f, g', () => {
  assert.equal(goFormatFloat(1984234, 'g', -1), '1.984234e+06');
  assert.equal(goFormatFloat(100000, 'g', -1), '100000');
  assert.equal(goFormatFloat(1.5, 'g', -1), '1.5');
  assert.equal(goFormatFloat(0.0001, 'g', -1), '0.0001');
  assert.equal(goFormatFloat(0.00001, 'g', -1), '1e-05');
  assert.equal(goFormatFloat(0, 'g', -1), '0');
  assert.equal(goFormatFloat(100, 'g', 2), '1e+02');
  assert.equal(goFormatFloat(3.14159, 'f', 2), '3.14');
  assert.equal(goFormatFloat(2.5, 'f', 0), '2');
  assert.equal(goFormatFloat(3.5, 'f', 0), '4');
  assert.equal(goFormatFloat(0.5, 'f', 0), '0');
  assert.equal(goFormatFloat(1.5, 'f', 6), '1.500000');
  assert.equal(goFormatFloat(-1.5, 'f', 1), '-1.5');
  assert.equal(goFormatFloat(0.001234, 'f', 3), '0.001');
  assert.equal(goFormatFloat(1234.5678, 'e', 3), '1.235e+03');
  assert.equal(goFormatFloat(1234.5678, 'E', -1), '1.2345678E+03');
  assert.equal(goFormatFloat(0, 'e', 2), '0.00e+00');
  assert.equal(goFormatFloat(1e100, 'g', -1), '1e+100');
  assert.equal(goFormatFloat(Number.NaN, 'g', -1), 'NaN');
  assert.equal(goFormatFloat(-Infinity, 'f', 2), '-Inf');
});

test('humanDuration: go-units thresholds', () => {
  const s = 1000, m = 60 * s, h = 60 * m, d = 24 * h;
  assert.equal(humanDuration(0), 'Less than a second');
  assert.equal(humanDuration(999), 'Less than a second');
  assert.equal(humanDuration(-5 * s), 'Less than a second');
  assert.equal(humanDuration(1 * s), '1 second');
  assert.equal(humanDuration(1999), '1 second');
  assert.equal(humanDuration(2 * s), '2 seconds');
  assert.equal(humanDuration(59 * s + 999), '59 seconds');
  assert.equal(humanDuration(60 * s), 'About a minute');
  assert.equal(humanDuration(119 * s), 'About a minute');
  assert.equal(humanDuration(2 * m), '2 minutes');
  assert.equal(humanDuration(59 * m + 59 * s), '59 minutes');
  assert.equal(humanDuration(60 * m), 'About an hour');
  assert.equal(humanDuration(89 * m), 'About an hour');
  assert.equal(humanDuration(90 * m), '2 hours'); // rounds to the nearest hour
  assert.equal(humanDuration(47 * h + 29 * m), '47 hours');
  assert.equal(humanDuration(47 * h + 30 * m), '2 days');
  assert.equal(humanDuration(13 * d), '13 days');
  assert.equal(humanDuration(14 * d), '2 weeks');
  assert.equal(humanDuration(59 * d), '8 weeks');
  assert.equal(humanDuration(60 * d), '2 months');
  assert.equal(humanDuration(729 * d), '24 months');
  assert.equal(humanDuration(730 * d), '2 years');
  assert.equal(humanDuration(3650 * d), '10 years');
});

test('timeAgo', () => {
  const now = Date.parse('2026-11-24T16:02:30Z');
  assert.equal(timeAgo(new Date('2026-11-24T16:01:11.853310948Z'), now), 'About a minute ago');
  assert.equal(timeAgo('2026-11-24T16:01:11.853310948Z', now), 'About a minute ago');
  assert.equal(timeAgo(now - 1500, now), '1 second ago');
  assert.equal(timeAgo(now - 20_000, now), '20 seconds ago');
  assert.equal(timeAgo(now, now), 'Less than a second ago');
  assert.equal(timeAgo(now - 2 * 3600_000, now), '2 hours ago');
  assert.throws(() => timeAgo('yesterday', now), InvalidParameterError);
});

test('parseBytes: RAMInBytes', () => {
  assert.equal(parseBytes('512m'), 512 * 1024 * 1024);
  assert.equal(parseBytes('512M'), 512 * 1024 * 1024);
  assert.equal(parseBytes('32'), 32);
  assert.equal(parseBytes('32b'), 32);
  assert.equal(parseBytes('32 B'), 32);
  assert.equal(parseBytes('32k'), 32 * 1024);
  assert.equal(parseBytes('32kb'), 32 * 1024);
  assert.equal(parseBytes('32 KiB'), 32 * 1024);
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.equal(parseBytes('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseBytes('2t'), 2 * 1024 ** 4);
  assert.equal(parseBytes('1p'), 1024 ** 5);
  assert.equal(parseBytes('0.5k'), 512);
  assert.throws(() => parseBytes(''), /invalid size: ''/);
  assert.throws(() => parseBytes('m'), /invalid size: 'm'/);
  assert.throws(() => parseBytes('12x'), /invalid suffix: 'x'/);
  assert.throws(() => parseBytes('12kk'), /invalid suffix: 'kk'/);
  assert.throws(() => parseBytes('12bb'), /invalid suffix: 'bb'/);
  assert.throws(() => parseBytes('12kib2'), /strconv.ParseFloat: parsing "12kib2": invalid syntax/);
  assert.throws(() => parseBytes('-1'), /invalid size: '-1'/);
  assert.throws(() => parseBytes('1.2.3k'), InvalidParameterError);
  assert.equal(fromHumanSize('1.5kB'), 1500);
  assert.equal(fromHumanSize('10M'), 10_000_000);
});

test('formatDockerTime: Go time.Time String()', () => {
  assert.equal(formatDockerTime(new Date(Date.UTC(2026, 10, 24, 16, 1, 11))), '2026-11-24 16:01:11 +0000 UTC');
  assert.equal(formatDockerTime(Date.UTC(2026, 0, 2, 3, 4, 5)), '2026-01-02 03:04:05 +0000 UTC');
  assert.equal(formatDockerTime(Date.UTC(2026, 0, 2, 3, 4, 5, 500)), '2026-01-02 03:04:05.5 +0000 UTC');
  assert.equal(formatDockerTime('2026-11-24T16:01:11.853310948Z'), '2026-11-24 16:01:11.853310948 +0000 UTC');
  assert.equal(formatDockerTime('2026-11-24T16:01:11Z'), '2026-11-24 16:01:11 +0000 UTC');
});

test('ellipsis: docker history / ps truncation (transcript)', () => {
  assert.equal(ellipsis('/bin/sh -c #(nop) ADD file:d7bac1946deb357137d7fa759cf8115a865db93695d8598aa59d1724ad58d12b in / ', 45),
    '/bin/sh -c #(nop) ADD file:d7bac1946deb35713…');
  assert.equal(ellipsis('sh -c mkdir -p /www && echo hi > /www/index.html && httpd -f -p 80 -h /www', 45),
    'sh -c mkdir -p /www && echo hi > /www/index.…');
  assert.equal(ellipsis('/bin/sh -c #(nop)  CMD ["sh"]', 45), '/bin/sh -c #(nop)  CMD ["sh"]');
  assert.equal(ellipsis("sh -c 'mkdir -p /www && echo hi > /www/index.html'", 20), "sh -c 'mkdir -p /ww…");
  assert.equal(ellipsis('abc', 3), 'abc');
  assert.equal(ellipsis('abcd', 3), 'ab…');
  assert.equal(ellipsis('abcd', 1), 'a');
  assert.equal(ellipsis('abcd', 0), '');
  assert.equal(ellipsis('日本語テキスト', 7), '日本語…'); // wide characters count 2
  assert.equal(ellipsis('日本語', 6), '日本語');
});
