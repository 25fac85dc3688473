/**
 * engine/fsroot's container view (view.ts, cp.ts): a root with a volume, a read-only bind and a file mount over
 * it, read and written the way docker cp does — single files in the daemon, trees through the worker with the
 * mounts in its own namespace. A symlink inside the volume pointing to "/" leads to the view's root, never the
 * host's; nothing the worker mounts stays mounted on the host; read-only mounts refuse writes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { extractIntoView, packFromView } from '../../src/engine/fsroot/cp.js';
import { statInView, type ViewMount } from '../../src/engine/fsroot/view.js';
import { buildTar } from '../support/tar.js';

let work: string;
let root: string;
let vol: string;
let ro: string;
let hosts: string;
let mounts: ViewMount[];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-view-'));
  root = join(work, 'root');
  vol = join(work, 'vol');
  ro = join(work, 'ro');
  hosts = join(work, 'hosts');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'data'));
  await writeFile(join(root, 'etc', 'hosts'), 'image hosts\n');
  await writeFile(join(root, 'rootmark'), 'in the container root\n');
  await writeFile(join(root, 'data', 'under'), 'hidden under the volume\n');
  await mkdir(join(vol, 'sub'), { recursive: true });
  await writeFile(join(vol, 'f'), 'volume file\n');
  await writeFile(join(vol, 'sub', 'g'), 'volume sub\n');
  await symlink('/', join(vol, 'up')); // hostile: "/" must be the view's root
  await symlink('../../../../../../../..', join(vol, 'dotdot'));
  await mkdir(ro);
  await writeFile(join(ro, 'r'), 'read-only\n');
  await writeFile(hosts, 'managed hosts\n');
  // /data is a volume (over image content), /data/ro a read-only bind inside it, /etc/hosts a file mount,
  // /mnt/new a bind whose destination the image lacks
  mounts = [
    { destination: '/etc/hosts', source: hosts, readonly: false },
    { destination: '/data/ro', source: ro, readonly: true },
    { destination: '/data', source: vol, readonly: false },
  ];
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function entries(tar: Readable): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = tarStream.extract();
  tar.pipe(ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out.set(e.header.name, e.header.type === 'symlink' ? `-> ${e.header.linkname}` : Buffer.concat(chunks).toString());
  }
  return out;
}

function mountedOnHost(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(work));
}

test('stat and single files resolve through the mounts, symlinks inside a volume stay in the view', async () => {
  assert.equal(statInView(root, mounts, '/data/f', 'c').size, 'volume file\n'.length);
  assert.equal(statInView(root, mounts, '/etc/hosts', 'c').size, 'managed hosts\n'.length);
  assert.equal(statInView(root, [], '/etc/hosts', 'c').size, 'image hosts\n'.length, 'without mounts: the image file');
  assert.throws(() => statInView(root, mounts, '/data/under', 'c'), /Could not find the file \/data\/under in container c/);
  assert.equal(statInView(root, mounts, '/data/up', 'c').linkTarget, '/');
  // out of the volume through its "/" link and its "../.." link: the container root, not the host's
  for (const p of ['/data/up/rootmark', '/data/dotdot/rootmark', '/data/sub/../up/data/ro/r']) {
    const { stat, tar } = await packFromView(root, mounts, p, 'c');
    const got = await entries(tar);
    assert.equal(stat.name, p.split('/').pop());
    assert.deepEqual([...got.values()], [p.endsWith('/r') ? 'read-only\n' : 'in the container root\n'], p);
  }
  await assert.rejects(packFromView(root, mounts, '/data/up/etc/passwd', 'c'), /Could not find/, 'the host\'s /etc/passwd is not in the view');
  const hostsOut = await entries((await packFromView(root, mounts, '/etc/hosts', 'c')).tar);
  assert.deepEqual([...hostsOut], [['hosts', 'managed hosts\n']]);
});

test('trees are packed by the worker with the mounts in its own namespace, which leaves nothing on the host', async () => {
  const got = await entries((await packFromView(root, mounts, '/data', 'c')).tar);
  assert.equal(got.get('data/f'), 'volume file\n');
  assert.equal(got.get('data/sub/g'), 'volume sub\n');
  assert.equal(got.get('data/ro/r'), 'read-only\n');
  assert.equal(got.get('data/up'), '-> /');
  assert.equal(got.has('data/under'), false, 'the image content under the volume is hidden');
  const etc = await entries((await packFromView(root, mounts, '/etc/', 'c')).tar);
  assert.equal(etc.get('etc/hosts'), 'managed hosts\n', [...etc.keys()].join(','));
  assert.deepEqual(mountedOnHost(), [], 'no mount of the worker is visible on the host');
  assert.deepEqual(await readdir(join(vol, 'ro')), [], 'the bind was made in the worker only (its mount point made in the volume, as dockerd does)');
});

test('cp into the view: into the volume (in the daemon and through the worker), refused in a read-only bind', async () => {
  await extractIntoView(root, mounts, '/data', Readable.from([await buildTar([{ name: 'one', content: 'single\n' }])]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false });
  assert.equal(await readFile(join(vol, 'one'), 'utf8'), 'single\n');
  assert.equal(existsSync(join(root, 'data', 'one')), false, 'not in the root under the volume');
  // a top file then a directory: the first is written here, the rest by the worker, in the volume
  const tar = await buildTar([
    { name: 'two', content: 'first\n' },
    { name: 'd', type: 'directory', mode: 0o755 },
    { name: 'd/three', content: 'third\n' },
  ]);
  await extractIntoView(root, mounts, '/data/up/data/', Readable.from([tar]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false });
  assert.equal(await readFile(join(vol, 'two'), 'utf8'), 'first\n');
  assert.equal(await readFile(join(vol, 'd', 'three'), 'utf8'), 'third\n');
  for (const path of ['/data/ro', '/data/up/data/ro/']) {
    await assert.rejects(
      extractIntoView(root, mounts, path, Readable.from([await buildTar([{ name: 'x', content: 'no\n' }])]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false }),
      /mounted volume is marked read-only/, path,
    );
  }
  assert.deepEqual((await readdir(ro)).sort(), ['r']);
  // a read-only rootfs still takes copies into a volume, not elsewhere
  const one = async (p: string) => extractIntoView(root, mounts, p, Readable.from([await buildTar([{ name: 'rofs', content: 'x\n' }])]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false, readonlyRootfs: true });
  await one('/data');
  assert.equal(existsSync(join(vol, 'rofs')), true);
  await assert.rejects(one('/etc'), /container rootfs is marked read-only/);
  assert.deepEqual(mountedOnHost(), []);
});

test('a single file read by the daemon: a reader that goes away mid-file leaves no descriptor open', async () => {
  await writeFile(join(vol, 'big'), Buffer.alloc(8 << 20, 7));
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  const { tar } = await packFromView(root, mounts, '/data/big', 'c');
  await new Promise<void>((resolve) => tar.once('data', () => resolve()));
  tar.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(fds(), before);
});

test('the daemon\'s walk races a directory swapped for a symlink to the host inside a volume: nothing read or written there', async () => {
  const canary = join(work, 'canary');
  await mkdir(canary);
  await writeFile(join(canary, 'secret'), 'HOST-SECRET\n');
  const { spawn } = await import('node:child_process');
  // the "container": /data/d flips between a directory holding f and a symlink to the host's canary directory
  const swapper = spawn('sh', ['-c', `cd ${vol} && while :; do rm -rf d; mkdir d; echo in > d/f; rm -rf d; ln -s ${canary} d; done`], { stdio: 'ignore' });
  let reads = 0, writes = 0, refused = 0;
  try {
    // until both states were met several times (the swapper runs beside, on a shared machine)
    for (let i = 0; i < 3000 && (reads < 10 || writes < 10 || refused < 10); i++) {
      try {
        const got = await entries((await packFromView(root, mounts, '/data/d/f', 'c')).tar);
        // the container's own file (empty between its creation and its write), never the host's
        assert.ok(['in\n', ''].includes([...got.values()].join()), [...got.values()].join());
        reads++;
      } catch (e) {
        assert.match(String(e), /Could not find|ENOENT|ENOTDIR/);
        refused++;
      }
      assert.throws(() => statInView(root, mounts, '/data/d/secret', 'c'), /Could not find/);
      try {
        await extractIntoView(root, mounts, '/data/d', Readable.from([await buildTar([{ name: `x${i}`, content: 'no\n' }])]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false });
        writes++;
      } catch (e) {
        assert.match(String(e), /Could not find|ENOENT|ENOTDIR|not a directory/);
      }
    }
  } finally {
    swapper.kill('SIGKILL');
  }
  assert.deepEqual(await readdir(canary), ['secret'], 'nothing written into the host directory');
  assert.ok(reads >= 10 && writes >= 10 && refused >= 10, `both states were met (${reads} reads, ${writes} writes succeeded, ${refused} reads refused)`);
});

test('the worker\'s thread pool starts after its confinement: chrooted, in its mount namespace, without capabilities', async () => {
  const { selftest } = await import('../../src/engine/fsroot/worker.js');
  const { readlinkSync } = await import('node:fs');
  for (const m of [[], mounts]) {
    const probe = await selftest(root, m);
    assert.ok(probe.entries.includes('rootmark'), 'it sees the root');
    const threads = readdirSync(`/proc/${probe.pid}/task`).map((tid) => {
      const at = `/proc/${probe.pid}/task/${tid}`;
      const status = readFileSync(`${at}/status`, 'utf8');
      const field = (k: string) => /^(\S+):\s+(\S+)/m.exec(status.split('\n').find((l) => l.startsWith(`${k}:`)) ?? '')?.[2];
      return { comm: readFileSync(`${at}/comm`, 'utf8').trim(), root: readlinkSync(`${at}/root`), ns: readlinkSync(`${at}/ns/mnt`), capEff: field('CapEff'), capBnd: field('CapBnd'), nnp: field('NoNewPrivs') };
    });
    const main = threads[0]!;
    const pool = threads.filter((t) => t.comm.startsWith('libuv-worker'));
    assert.ok(pool.length > 0, `the pool runs: ${threads.map((t) => t.comm).join(',')}`);
    for (const t of [main, ...pool]) {
      assert.equal(t.root, root, `${t.comm}: chrooted`);
      assert.equal(t.ns, main.ns, `${t.comm}: the main thread's mount namespace`);
      assert.equal(t.capEff, '000000000000001f', `${t.comm}: only chown, dac_override, dac_read_search, fowner, fsetid`);
      assert.equal(t.capBnd, '000000000000001f', `${t.comm}: bounding set`);
      assert.equal(t.nnp, '1', `${t.comm}: no_new_privs`);
    }
    if (m.length) assert.notEqual(main.ns, readlinkSync('/proc/self/ns/mnt'), 'with mounts: a namespace of its own');
  }
});

test('a mount over a dangling symlink goes where the link points, in the daemon\'s walk and in the worker alike', async () => {
  const r2 = join(work, 'root2');
  await mkdir(join(r2, 'etc'), { recursive: true });
  await symlink('../run/resolv.conf', join(r2, 'etc', 'resolv.conf')); // as in images with systemd-resolved
  const src = join(work, 'resolv');
  await writeFile(src, 'nameserver 192.0.2.53\n');
  const m: ViewMount[] = [{ destination: '/etc/resolv.conf', source: src, readonly: false }];
  assert.equal(statInView(r2, m, '/etc/resolv.conf', 'c').linkTarget, '../run/resolv.conf', 'the link itself, as docker cp (no -L)');
  const one = await entries((await packFromView(r2, m, '/run/resolv.conf', 'c')).tar);
  assert.deepEqual([...one], [['resolv.conf', 'nameserver 192.0.2.53\n']], 'in the daemon');
  const tree = await entries((await packFromView(r2, m, '/run', 'c')).tar);
  assert.equal(tree.get('run/resolv.conf'), 'nameserver 192.0.2.53\n', `through the worker: ${[...tree.keys()].join(',')}`);
  const etc = await entries((await packFromView(r2, m, '/etc', 'c')).tar);
  assert.equal(etc.get('etc/resolv.conf'), '-> ../run/resolv.conf');
});
