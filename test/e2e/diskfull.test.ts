/**
 * A full disk (issue 12, item 6): wharfd's data root on a 96 MB ext4 filesystem in a loop-mounted sparse file.
 * A pull, an import (many small files, or one big one), a load, a build (COPY, and a RUN whose layer does not fit) and a commit that need more room
 * than there is each fail within seconds, the client seeing docker's "no space left on device"; the partial data is
 * gone at once (no driver directory, sidecar, ingest file or build directory left, the space given back), and the
 * store stays usable: a pull sharing a layer with the failed one works, and the earlier image is intact
 * (`docker save` gives the same bytes as before). Content is random, so that it does not compress.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { dockerArchive, pushRaw, rawImage } from '../support/hostile.js';
import { buildTar } from '../support/tar.js';
import { show, type RunResult } from '../support/cli.js';

let work: string;
let mnt: string;
let loopDev = '';
let d: Daemon | null = null;
let reg: Registry | null = null;
let dataRoot: string;

const FAIL_WITHIN_MS = 20_000;

function unmountUnder(dir: string): void {
  const mounts = readFileSyncLines('/proc/self/mountinfo').map((l) => l.split(' ')[4] ?? '').filter((m) => m === dir || m.startsWith(dir + '/'));
  for (const m of mounts.sort().reverse()) {
    try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { /* gone */ }
  }
}

function readFileSyncLines(p: string): string[] {
  return execFileSync('cat', [p], { encoding: 'utf8' }).split('\n');
}

before(async () => {
  work = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-diskfull-'));
  const img = join(work, 'fs.img');
  mnt = join(work, 'mnt');
  await mkdir(mnt);
  execFileSync('truncate', ['-s', '96M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  loopDev = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  execFileSync('mount', [loopDev, mnt]);
  dataRoot = join(mnt, 'data');
  d = await startDaemon({ dataRoot });
  reg = await startRegistry();
});

after(async () => {
  await d?.stop().catch(() => {});
  await reg?.stop().catch(() => {});
  if (mnt) unmountUnder(mnt);
  if (loopDev) { try { execFileSync('losetup', ['-d', loopDev]); } catch { /* already detached */ } }
  await rm(work, { recursive: true, force: true });
});

interface State { overlay: string[]; tarsplit: string[]; ingest: string[]; tmp: string[]; layerdb: string[]; usedKb: number }

async function state(): Promise<State> {
  const ls = async (p: string) => (await readdir(join(dataRoot, p)).catch(() => [] as string[])).filter((n) => n !== 'l').sort();
  const df = execFileSync('df', ['-k', '--output=used', mnt], { encoding: 'utf8' }).trim().split('\n').pop()!;
  return {
    overlay: await ls('overlay'), tarsplit: await ls('layers/tarsplit'), ingest: await ls('content/ingest'),
    tmp: await ls('tmp'), layerdb: (await ls('layers/layerdb')).filter((n) => !n.startsWith('.tmp')), usedKb: Number(df),
  };
}

function assertLikeBefore(now: State, was: State, what: string): void {
  assert.deepEqual(now.overlay, was.overlay, `${what}: no driver directory left`);
  assert.deepEqual(now.tarsplit, was.tarsplit, `${what}: no sidecar left`);
  assert.deepEqual(now.ingest, was.ingest, `${what}: no ingest file left`);
  assert.deepEqual(now.tmp, was.tmp, `${what}: no temporary directory left`);
  assert.deepEqual(now.layerdb, was.layerdb, `${what}: no layer record`);
  if (now.usedKb >= was.usedKb + 2048) {
    // what holds it: the data root's directories and files the daemon keeps open after their removal
    const du = execFileSync('du', ['-sk', ...execFileSync('ls', [dataRoot], { encoding: 'utf8' }).trim().split('\n').map((n) => join(dataRoot, n))], { encoding: 'utf8' });
    let fds = '';
    try { fds = execFileSync('sh', ['-c', `ls -l /proc/${d!.pid}/fd /proc/${d!.pid}/task/*/fd 2>/dev/null | grep -i deleted || true`], { encoding: 'utf8' }); } catch { /* gone */ }
    assert.fail(`${what}: the space is given back (${was.usedKb} KB used before, ${now.usedKb} KB now)\n${du}\nopen removed files:\n${fds}`);
  }
}

async function failsFast(what: string, fn: () => Promise<RunResult>): Promise<RunResult> {
  const t0 = Date.now();
  const r = await fn();
  const ms = Date.now() - t0;
  assert.notEqual(r.code, 0, `${what} must fail: ${show(r)}`);
  assert.match(r.stderr + r.stdout, /no space left on device/, `${what}: docker's message: ${show(r)}`);
  assert.ok(ms < FAIL_WITHIN_MS, `${what}: failed after ${ms} ms`);
  return r;
}

async function saveSum(ref: string): Promise<string> {
  const out = join(work, 'save.tar');
  const r = await d!.docker(['save', '-o', out, ref]);
  assert.equal(r.code, 0, show(r));
  const sum = createHash('sha256').update(await readFile(out)).digest('hex');
  await rm(out);
  return sum;
}

test('ENOSPC in pull, import, load, build and commit: fast failure with docker\'s message, nothing left behind, the store still usable', { timeout: 400_000 }, async () => {
  const dm = d!;
  const boot = await dm.api('POST', '/images/bootstrap?name=busybox');
  assert.equal(boot.status, 200, boot.body);
  const busyboxSave = await saveSum('busybox');

  // a layer shared by both images, a big one that cannot fit, a small one that can
  const shared = await buildTar([{ name: 'shared/data', content: randomBytes(512 << 10) }]);
  const big = await buildTar([{ name: 'big/data', content: randomBytes(100 << 20) }]);
  const small = await buildTar([{ name: 'small/data', content: randomBytes(256 << 10) }]);
  const bigImg = rawImage([shared, big], 'big');
  const smallImg = rawImage([shared, small], 'small');
  await pushRaw(reg!.url, 'full/big', 'v1', bigImg);
  await pushRaw(reg!.url, 'full/small', 'v1', smallImg);

  let was = await state();
  await failsFast('pull', () => dm.docker(['pull', `${reg!.host}/full/big:v1`], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), was, 'pull');

  // a pull of a layer shared with the failed pull works
  const p = await dm.docker(['pull', `${reg!.host}/full/small:v1`], { timeoutMs: 60_000 });
  assert.equal(p.code, 0, show(p));
  const inspect = await dm.docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', `${reg!.host}/full/small:v1`]);
  assert.deepEqual(JSON.parse(inspect.stdout), JSON.parse(smallImg.config.toString()).rootfs.diff_ids);

  was = await state();
  // import: 1,600 files of 64 KiB (the writer threads' batches meet ENOSPC), then one file of 100 MB (streamed)
  const manyTar = join(work, 'many.tar');
  await writeFile(manyTar, await buildTar(Array.from({ length: 1600 }, (_, i) => ({ name: `many/f${i}`, content: randomBytes(64 << 10) }))));
  await failsFast('import (small files)', () => dm.docker(['import', manyTar, 'imported:v1'], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), was, 'import (small files)');
  await rm(manyTar);
  const bigTar = join(work, 'big.tar');
  await writeFile(bigTar, big);
  await failsFast('import', () => dm.docker(['import', bigTar, 'imported:v1'], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), was, 'import');

  const archive = join(work, 'archive.tar');
  await writeFile(archive, await dockerArchive(bigImg, 'loaded:v1'));
  await rm(bigTar);
  await failsFast('load', () => dm.docker(['load', '-i', archive], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), was, 'load');
  await rm(archive);

  // build: a context that fits, a layer that does not
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'big.bin'), randomBytes(50 << 20));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY big.bin /\n');
  await failsFast('build COPY', () => dm.docker(['build', '-q', '-t', 'copied:v1', ctx], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), was, 'build COPY');

  // build: RUN writes 45 MB in its container; its layer (45 MB more) does not fit
  await rm(join(ctx, 'big.bin'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN head -c 47185920 /dev/urandom > /big\n');
  await failsFast('build RUN', () => dm.docker(['build', '-q', '-t', 'ran:v1', ctx], { timeoutMs: 120_000 }));
  // as dockerd, the failed step's container stays; committing it fails the same way
  const ps = await dm.docker(['ps', '-aq']);
  const ctr = ps.stdout.trim().split('\n').filter(Boolean);
  assert.equal(ctr.length, 1, show(ps));
  const beforeCommit = await state();
  await failsFast('commit', () => dm.docker(['commit', ctr[0]!, 'committed:v1'], { timeoutMs: 120_000 }));
  assertLikeBefore(await state(), beforeCommit, 'commit');
  const rmr = await dm.docker(['rm', ctr[0]!]);
  assert.equal(rmr.code, 0, show(rmr));
  assertLikeBefore(await state(), was, 'build RUN + commit, container removed');

  // everything from before is intact
  const images = await dm.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(images.stdout.trim().split('\n').sort(), [`${reg!.host}/full/small:v1`, 'busybox:latest'].sort());
  assert.equal(await saveSum('busybox'), busyboxSave, 'busybox saves to the same bytes');
  const out = join(work, 'small.tar');
  const sv = await dm.docker(['save', '-o', out, `${reg!.host}/full/small:v1`]);
  assert.equal(sv.code, 0, show(sv));
  const listing = execFileSync('tar', ['-tf', out], { encoding: 'utf8' });
  assert.match(listing, /manifest\.json/);
  await rm(out);
});
