/**
 * End to end: wharfd killed with SIGKILL in the middle of pulling a large image (≈96 MB of incompressible
 * layers) from a real docker-registry, at several points of the pull. After each restart on the same data
 * root: `images` works, the image pulled earlier is intact, and the large image is either fully there (every
 * layer's files readable with their sizes) or absent — never half there. Finally the pull is done again, whole.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageLayerDirs, startDaemon, type Daemon } from '../support/daemon.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { buildOciLayout, busyboxSpec, pushLayout, type BuiltImage } from '../support/oci-images.js';
import { lines, show } from '../support/cli.js';

let reg: Registry;
let d: Daemon;
let H: string;
let work: string;
let busybox: BuiltImage;
let big: BuiltImage;
const LAYER_BYTES = 32 << 20;
const BIG_LAYERS = 3;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-crash-'));
  reg = await startRegistry();
  H = reg.host;
  d = await startDaemon();
  const base = await busyboxSpec();
  busybox = await buildOciLayout(join(work, 'busybox'), base);
  await pushLayout(join(work, 'busybox'), H, 'library/busybox:latest');
  big = await buildOciLayout(join(work, 'big'), {
    layers: [
      base.layers[0]!,
      ...Array.from({ length: BIG_LAYERS }, (_, i) => ({
        files: [{ path: `data/blob${i}.bin`, content: randomBytes(LAYER_BYTES) }, { path: `data/marker${i}`, content: `${i}\n` }],
        createdBy: `/bin/sh -c #(nop) ADD blob${i}`,
      })),
    ],
    config: { Cmd: ['sh'] },
  });
  await pushLayout(join(work, 'big'), H, 'test/big:1');
  const p = await d.wharf(['pull', `${H}/library/busybox:latest`]);
  assert.equal(p.code, 0, show(p));
});

after(async () => {
  await d?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * POST /images/create for the big image and SIGKILL the daemon when `when(statuses)` first holds, statuses
 * being the JSON progress lines' "status" fields so far. Resolves with the statuses seen and whether the
 * pull had already finished when the kill came.
 */
function pullAndKill(when: (statuses: string[]) => boolean): Promise<{ statuses: string[]; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const statuses: string[] = [];
    let killed = false;
    let buf = '';
    const req = request({
      socketPath: d.sock, method: 'POST',
      path: `/v1.41/images/create?fromImage=${encodeURIComponent(`${H}/test/big`)}&tag=1`,
    }, (res) => {
      res.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          try { statuses.push(String(JSON.parse(line).status ?? JSON.parse(line).error ?? '')); } catch { statuses.push(line); }
          if (!killed && when(statuses)) {
            killed = true;
            void d.kill('SIGKILL').then(() => resolve({ statuses, killed }), reject);
          }
        }
      });
      res.on('end', () => { if (!killed) resolve({ statuses, killed }); });
      res.on('error', () => { /* the daemon died: expected */ });
    });
    req.on('error', (e) => { if (!killed) reject(e); });
    req.end();
  });
}

/**
 * The big image is absent, or complete — tagged, or (killed between the image and its tag, which dockerd
 * leaves the same way, even after it printed "Digest:") untagged. Busybox must be intact in every case.
 */
async function checkConsistent(): Promise<'absent' | 'complete' | 'untagged'> {
  const ls = await d.wharf(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.equal(ls.code, 0, show(ls));
  assert.ok(lines(ls.stdout).some((l) => l.startsWith(`${H}/library/busybox:latest `)), ls.stdout);
  const bb = await d.wharf(['image', 'inspect', '--format', '{{.Id}}', `${H}/library/busybox:latest`]);
  assert.equal(bb.stdout, `${busybox.configDigest}\n`, show(bb));

  let res = await d.api('GET', `/v1.41/images/${encodeURIComponent(`${H}/test/big:1`)}/json`);
  let untagged = false;
  if (res.status === 404) {
    assert.ok(!ls.stdout.includes('test/big'), ls.stdout);
    res = await d.api('GET', `/v1.41/images/${big.configDigest}/json`);
    untagged = res.status === 200;
  }
  if (res.status === 404) {
    // Nothing else half-published: only busybox is listed, even with -a.
    const all = await d.wharf(['images', '-a', '-q']);
    assert.equal(all.code, 0, show(all));
    assert.deepEqual([...new Set(lines(all.stdout))], [busybox.configDigest.slice(7, 19)], all.stdout);
    await recordLeftovers();
    return 'absent';
  }
  assert.equal(res.status, 200, res.body);
  const info = JSON.parse(res.body);
  assert.equal(info.Id, big.configDigest);
  assert.deepEqual(info.RootFS.Layers, big.layers.map((l) => l.diffId));
  const { kind, dirs } = imageLayerDirs(d, info);
  assert.equal(dirs.length, BIG_LAYERS + 1, JSON.stringify(info.GraphDriver));
  for (let i = 0; i < BIG_LAYERS; i++) {
    // vfs: the top layer holds every file; overlay: layer i+1 is dirs[BIG_LAYERS - 1 - i] (top first).
    const dir = kind === 'full' ? dirs[0]! : dirs[BIG_LAYERS - 1 - i]!;
    assert.equal((await stat(join(dir, `data/blob${i}.bin`))).size, LAYER_BYTES, `layer ${i + 1} complete in ${dir}`);
  }
  if (untagged) {
    assert.deepEqual(info.RepoTags, [], JSON.stringify(info.RepoTags));
    return 'untagged';
  }
  return 'complete';
}

/**
 * wharf's layout (ARCHITECTURE.md): a crash leaves only temporaries and unreferenced layers, which the stores
 * remove when they open. Layers (layerdb entries, driver directories) beyond busybox's one after a restart
 * are collected here and judged by their own test below.
 */
const leftovers: string[] = [];
async function recordLeftovers(): Promise<void> {
  const layerdb = join(d.dataRoot, 'layers', 'layerdb', 'sha256');
  if (!existsSync(layerdb)) return; // not wharf's layout (WHARF_E2E_DAEMON=dockerd)
  const extra = (await readdir(layerdb)).filter((x) => x !== busybox.layers[0]!.diffId.slice(7));
  if (extra.length) leftovers.push(`layerdb entries ${extra.join(', ')}`);
  const info = JSON.parse((await d.api('GET', '/v1.41/info')).body) as { Driver?: string };
  // `docker info` names dockerd's overlay2; wharfd keeps that driver's layers in <data-root>/overlay
  const driverDir = join(d.dataRoot, info.Driver === 'overlay2' ? 'overlay' : String(info.Driver ?? ''));
  assert.ok(info.Driver && existsSync(driverDir), `the driver's directory ${driverDir} (docker info: ${info.Driver})`);
  {
    const bb = JSON.parse((await d.api('GET', `/v1.41/images/${encodeURIComponent(`${H}/library/busybox:latest`)}/json`)).body);
    const keep = imageLayerDirs(d, bb).dirs.map((x) => x.replace(/\/diff$/, ''));
    const extraDirs = (await findLayerDirs(driverDir)).filter((x) => !keep.includes(x));
    if (extraDirs.length) leftovers.push(`driver directories ${extraDirs.join(', ')}`);
  }
}

/** Directories under a driver root that hold a layer (the parents of `diff` dirs, or vfs's dir/<id>). */
async function findLayerDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(root)) {
    const p = join(root, name);
    if (name === 'dir') { for (const id of await readdir(p)) out.push(join(p, id)); continue; }
    if (existsSync(join(p, 'diff'))) out.push(p);
  }
  return out.sort();
}

const killPoints: [string, (s: string[]) => boolean][] = [
  ['at the first progress line', (s) => s.some((x) => x === 'Pulling fs layer' || x === 'Waiting' || x === 'Downloading')],
  ['after the first layer was downloaded', (s) => s.some((x) => x === 'Download complete' || x === 'Verifying Checksum')],
  ['after the first layer was extracted', (s) => s.includes('Pull complete')],
  ['after the second layer was extracted', (s) => s.filter((x) => x === 'Pull complete').length >= 2],
  ['at "Digest:" (every layer registered)', (s) => s.some((x) => x.startsWith('Digest:'))],
];

for (const [name, when] of killPoints) {
  test(`kill -9 ${name}: after restart the image is whole or absent, busybox intact`, async (t) => {
    const { statuses, killed } = await pullAndKill(when);
    assert.ok(statuses.length > 0, 'the pull started');
    await d.restart();
    const state = await checkConsistent();
    t.diagnostic(`killed=${killed} after ${statuses.length} progress messages; image ${state} after restart`);
    if (!killed) assert.equal(state, 'complete', `the pull ended before the kill point: ${statuses.join(' | ')}`);
    if (state !== 'absent') {
      const r = await d.wharf(['rmi', state === 'complete' ? `${H}/test/big:1` : big.configDigest]);
      assert.equal(r.code, 0, show(r));
    }
  });
}

test('the interrupted pulls left no layers behind after the restarts', () => {
  assert.deepEqual(leftovers, []);
});

test('after the crashes, the pull completes and the image is whole', async () => {
  const r = await d.wharf(['pull', `${H}/test/big:1`]);
  assert.equal(r.code, 0, show(r));
  assert.ok(r.stdout.includes(`Status: Downloaded newer image for ${H}/test/big:1`), r.stdout);
  assert.equal(await checkConsistent(), 'complete');
  const df = await d.wharf(['system', 'df']);
  assert.equal(df.code, 0, show(df));
  assert.match(lines(df.stdout)[1]!, /^Images\s+2\s+0\s/);
});
