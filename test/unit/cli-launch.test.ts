/**
 * The bundled CLI's launcher (src/cli/launch.ts, built into dist/src/cli/wharf.cjs by scripts/build-cli.mjs):
 * the command word that keys the code cache, the cache directory's safety checks, and the cache's life through
 * bin/wharf (written once, reused, a corrupt or stale one ignored and rewritten, an unsafe directory left alone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cacheHeader, checksum, commandWord, readCache, safeCacheDir, writeCache } from '../../src/cli/launch.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const WHARF = join(ROOT, 'bin', 'wharf');
const BUNDLE = join(ROOT, 'dist', 'src', 'cli', 'wharf-app.cjs');

function wharf(args: string[], cacheDir: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    execFile(WHARF, args, { env: { ...process.env, WHARF_CLI_CACHE: cacheDir, DOCKER_HOST: 'unix:///nonexistent.sock' } }, (e, out, err) => {
      res({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

test('commandWord: the first argument that is not a flag or a global flag\'s value', () => {
  assert.equal(commandWord(['images']), 'images');
  assert.equal(commandWord(['-H', 'unix:///x.sock', 'ps', '-a']), 'ps');
  assert.equal(commandWord(['--debug', '--log-level', 'debug', 'image', 'ls']), 'image');
  assert.equal(commandWord(['--host=unix:///x', 'version']), 'version');
  assert.equal(commandWord([]), '_');
  assert.equal(commandWord(['-v']), '_');
  assert.equal(commandWord(['../../etc/passwd']), '_', 'only plain words name a cache file');
  assert.equal(commandWord(['--', 'images']), '_');
});

test('checksum: every byte counts, aligned or not', () => {
  const b = Buffer.alloc(1031, 7);
  const c = checksum(b);
  for (const i of [0, 3, 512, 1027, 1030]) {
    const x = Buffer.from(b);
    x[i] ^= 1;
    assert.notEqual(checksum(x), c, `byte ${i}`);
  }
  const unaligned = Buffer.alloc(1032);
  b.copy(unaligned, 1);
  assert.equal(checksum(unaligned.subarray(1)), c);
});

test('safeCacheDir: made 0700 when missing; refused when writable by others, a symlink, or another user\'s', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-launch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const made = join(dir, 'a', 'b');
  assert.equal(safeCacheDir(made), made);
  assert.equal(statSync(made).mode & 0o777, 0o700);

  const open = join(dir, 'open');
  mkdirSync(open); chmodSync(open, 0o777);
  assert.equal(safeCacheDir(open), undefined);
  chmodSync(open, 0o770);
  assert.equal(safeCacheDir(open), undefined, 'group-writable');
  chmodSync(open, 0o755);
  assert.equal(safeCacheDir(open), open);

  const link = join(dir, 'link');
  symlinkSync(made, link);
  assert.equal(safeCacheDir(link), undefined);

  if (process.getuid?.() === 0) {
    const other = join(dir, 'other');
    mkdirSync(other, { mode: 0o700 });
    chownSync(other, 65534, 65534);
    assert.equal(safeCacheDir(other), undefined);
  }
  assert.equal(safeCacheDir(undefined), undefined);
});

test('readCache: only the user\'s own file, with the header of this bundle and Node', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-launch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const header = cacheHeader(statSync(BUNDLE));
  const file = join(dir, 'x.v8');
  writeCache(file, header, Buffer.from('payload'));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readCache(file, header)?.toString(), 'payload');
  const raw = readFileSync(file);
  raw[raw.length - 1] ^= 1;
  writeFileSync(file, raw);
  assert.equal(readCache(file, header), undefined, 'a changed byte fails the checksum');
  writeCache(file, header, Buffer.from('payload'));
  assert.equal(readCache(file, header.replace(process.version, 'v0.0.0')), undefined, 'another Node');
  assert.equal(readCache(join(dir, 'missing.v8'), header), undefined);
  chmodSync(file, 0o666);
  assert.equal(readCache(file, header), undefined, 'writable by others');
  chmodSync(file, 0o600);
  symlinkSync(file, join(dir, 'l.v8'));
  assert.equal(readCache(join(dir, 'l.v8'), header), undefined, 'a symlink');
  assert.deepEqual(readdirSync(dir).sort(), ['l.v8', 'x.v8'], 'no temporary file left');
});

test('bin/wharf: the code cache is written once per command word, reused, and a corrupt or stale one is rewritten', { skip: !existsSync(BUNDLE) && 'no bundle (npm run build makes it)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-launch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cache = join(dir, 'cache');
  const first = await wharf(['version', '--help'], cache);
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /^Usage:\s+wharf version \[OPTIONS\]/m);
  const file = join(cache, 'version.v8');
  const header = cacheHeader(statSync(BUNDLE));
  const data = readCache(file, header);
  assert.ok(data && data.length > 1000, 'a V8 code cache after the first run');
  const mtime = statSync(file).mtimeMs;

  // reused: same output, the file untouched
  const second = await wharf(['version', '--help'], cache);
  assert.equal(second.out, first.out);
  assert.equal(statSync(file).mtimeMs, mtime);

  // corrupt (bytes flipped after the checksum was written; V8 itself would crash on this data): same output,
  // rewritten with good data
  const whole = readFileSync(file);
  for (let i = 64; i < whole.length; i += 97) whole[i] ^= 0x5a;
  writeFileSync(file, whole, { mode: 0o600 });
  assert.equal(readCache(file, header), undefined, 'the checksum catches it');
  const third = await wharf(['version', '--help'], cache);
  assert.equal(third.code, 0, third.err);
  assert.equal(third.out, first.out);
  const rewritten = readCache(file, header);
  assert.ok(rewritten && rewritten.length > 1000, 'a cache again');
  assert.notDeepEqual(readFileSync(file), whole, 'the corrupt cache was replaced');

  // stale (another bundle's header): ignored and rewritten
  writeFileSync(file, 'wharf-cli-cache 2 v0.0.0 x64 1 1\nsum 00000000\ngarbage', { mode: 0o600 });
  const fourth = await wharf(['version', '--help'], cache);
  assert.equal(fourth.out, first.out);
  assert.ok(readCache(file, header), 'rewritten for this bundle');

  // an unsafe directory is not used at all
  const open = join(dir, 'open');
  mkdirSync(open); chmodSync(open, 0o777);
  const fifth = await wharf(['version', '--help'], open);
  assert.equal(fifth.out, first.out);
  assert.deepEqual(readdirSync(open), []);
});

test('the bundle is ASCII (the launcher decodes it as latin1)', { skip: !existsSync(BUNDLE) && 'no bundle' }, () => {
  const b = readFileSync(BUNDLE);
  assert.ok(b.length > 10_000);
  assert.equal(b.findIndex((x) => x > 0x7f), -1);
});
