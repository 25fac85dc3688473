/**
 * engine/fsroot: in-root single-file access (openat2) and the chrooted tree worker, on hostile roots: absolute and
 * "../" symlinks at /etc/passwd, /etc/group and a WORKDIR path never reach the host's files (canaries in TMPDIR);
 * the worker, once chrooted into a root that holds planted copies of every file it could load (its own dist
 * files, tar-stream and its dependencies, koffi and its native module, libc, ld.so.cache), runs none of them
 * and may not chroot again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { mkdirAllInRoot, readFileInRoot } from '../../src/engine/fsroot/inroot.js';
import { statInView } from '../../src/engine/fsroot/view.js';
import { exportFromRoot, extractIntoRoot, packFromRoot, selftest } from '../../src/engine/fsroot/worker.js';
import { listInRoot } from '../../src/engine/fsroot/beneath.js';
import { resolveUser } from '../../src/engine/runtime/spec.js';

const projectRoot = resolve(import.meta.dirname, '..', '..', '..');
let work: string;
let hostDir: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-fsroot-'));
  hostDir = join(work, 'host');
  await mkdir(join(hostDir, 'etc'), { recursive: true });
  await writeFile(join(hostDir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nhostuser:x:4242:4242::/home/hostuser:/bin/sh\n');
  await writeFile(join(hostDir, 'etc', 'group'), 'root:x:0:\nhostgroup:x:4343:hostuser\n');
  await mkdir(join(hostDir, 'workdir'));
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function hostileRoot(name: string, kind: 'absolute' | 'relative'): Promise<string> {
  const root = join(work, name);
  await mkdir(join(root, 'etc'), { recursive: true });
  const to = (p: string) => (kind === 'absolute' ? join(hostDir, p) : `../../../../../../../../..${join(hostDir, p)}`);
  await symlink(to('etc/passwd'), join(root, 'etc', 'passwd'));
  await symlink(to('etc/group'), join(root, 'etc', 'group'));
  await symlink(to('workdir'), join(root, 'app'));
  return root;
}

test('readFileInRoot and resolveUser never read the host\'s passwd or group through an image\'s symlinks', async () => {
  for (const kind of ['absolute', 'relative'] as const) {
    const root = await hostileRoot(`users-${kind}`, kind);
    assert.equal(readFileInRoot(root, '/etc/passwd'), null, `${kind}: the link resolves inside the root, where nothing is`);
    await assert.rejects(resolveUser(root, 'hostuser'), /unable to find user hostuser: no matching entries in passwd file/);
    await assert.rejects(resolveUser(root, '0:hostgroup'), /unable to find group hostgroup/);
    // the same absolute path inside the root is what the link means there
    await mkdir(join(root, hostDir, 'etc'), { recursive: true });
    await writeFile(join(root, hostDir, 'etc', 'passwd'), 'inroot:x:1500:1600::/home/in:/bin/sh\n');
    const u = await resolveUser(root, 'inroot');
    assert.deepEqual([u.uid, u.gid, u.home], [1500, 1600, '/home/in']);
  }
  // a FIFO at /etc/passwd does not block the daemon
  const fifoRoot = join(work, 'fifo');
  await mkdir(join(fifoRoot, 'etc'), { recursive: true });
  execFileSync('mkfifo', [join(fifoRoot, 'etc', 'passwd')]);
  assert.equal(readFileInRoot(fifoRoot, '/etc/passwd'), null);
});

test('mkdirAllInRoot makes a WORKDIR through a symlink inside the root, never in the host directory', async () => {
  for (const kind of ['absolute', 'relative'] as const) {
    const root = await hostileRoot(`workdir-${kind}`, kind);
    assert.equal(mkdirAllInRoot(root, '/app/sub/deeper'), true);
    assert.deepEqual(readdirSync(join(hostDir, 'workdir')), [], 'nothing made in the host directory');
    assert.ok(statSync(join(root, hostDir, 'workdir', 'sub', 'deeper')).isDirectory(), 'made where the link points inside the root');
  }
  const root = join(work, 'notdir');
  await mkdir(root);
  await writeFile(join(root, 'file'), '');
  assert.equal(mkdirAllInRoot(root, '/file/x'), false);
});

test('the worker reads and writes through hostile symlinks only inside the root', async () => {
  const root = await hostileRoot('worker', 'absolute');
  await writeFile(join(root, 'inside'), 'in the root\n');
  // cp out of a symlink to the host: nothing there inside the root
  await assert.rejects(packFromRoot(root, '/app/', 'c'), /Could not find the file \/app\/ in container c/);
  assert.throws(() => statInView(root, [], '/etc/passwd/', 'c'), /Could not find/);
  const st = statInView(root, [], '/etc/passwd', 'c');
  assert.equal(st.linkTarget, join(hostDir, 'etc/passwd'), 'the link itself, not followed');
  // cp in through the link: lands inside the root
  await mkdir(join(root, hostDir, 'workdir'), { recursive: true });
  const tar = execFileSync('tar', ['-C', work, '-c', '--owner=0', '--group=0', 'host/etc/passwd']);
  await extractIntoRoot(root, '/app', Readable.from([tar]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false });
  assert.deepEqual(await readdir(join(hostDir, 'workdir')), []);
  assert.ok(existsSync(join(root, hostDir, 'workdir', 'host', 'etc', 'passwd')));
  // a tar entry that climbs out is refused
  const bad = execFileSync('tar', ['-C', work, '-c', '-P', '--transform', 's,^,../../,', 'host/etc/group']);
  await assert.rejects(extractIntoRoot(root, '/', Readable.from([bad]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: false }), /outside of/);
  // export and the listing see the root's own entries only
  const chunks: Buffer[] = [];
  for await (const c of await exportFromRoot(root)) chunks.push(c as Buffer);
  const names = execFileSync('tar', ['-t'], { input: Buffer.concat(chunks) }).toString().split('\n');
  assert.ok(names.includes('inside'));
  assert.ok(names.includes(`${hostDir.slice(1)}/workdir/host/etc/passwd`), 'the copy made through the link is in the root');
  assert.ok(!names.some((n) => n.startsWith('etc/passwd/')), 'the links were not followed out of the root');
  const list = await listInRoot(root, false);
  assert.ok(list.some((e) => e.rel === 'etc/passwd' && e.type === 'symlink'));
});

/** Every file the worker could load, by absolute path (its code, its packages, koffi's native module). */
function loadableFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const n of readdirSync(dir)) {
      if (['src', 'vendor', 'doc', 'test'].includes(n) && dir.includes('koffi')) continue;
      const p = join(dir, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(js|cjs|mjs|json|node)$/.test(n)) out.push(p);
    }
  };
  for (const d of ['dist/src/engine/fsroot', 'dist/src/engine/layers', 'dist/src/lib']) walk(join(projectRoot, d));
  for (const m of ['tar-stream', 'streamx', 'b4a', 'fast-fifo', 'text-decoder', 'events-universal', 'bare-events', 'koffi', '@koromix/koffi-linux-x64']) {
    if (existsSync(join(projectRoot, 'node_modules', m))) walk(join(projectRoot, 'node_modules', m));
  }
  out.push(join(projectRoot, 'package.json'));
  return out;
}

test('after the chroot the worker loads nothing from the root: planted copies of its modules never run', async () => {
  const root = join(work, 'planted');
  await mkdir(root);
  const files = loadableFiles();
  assert.ok(files.length > 20 && files.some((f) => f.endsWith('child.js')) && files.some((f) => f.endsWith('.node')), 'the planted set covers the worker');
  const payload = "globalThis.process.getBuiltinModule('fs').writeFileSync('/planted-ran', 'x');\n";
  for (const f of files) {
    await mkdir(join(root, dirname(f)), { recursive: true });
    if (f.endsWith('.json')) {
      // package.json files keep their shape (so a load would reach the planted code), module types included
      const real = JSON.parse(await readFile(f, 'utf8')) as Record<string, unknown>;
      await writeFile(join(root, f), JSON.stringify(real));
    } else if (f.endsWith('.node')) await writeFile(join(root, f), 'not an ELF object\n');
    else await writeFile(join(root, f), payload);
  }
  for (const lib of ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libgcc_s.so.1', '/etc/ld.so.cache', '/lib64/ld-linux-x86-64.so.2']) {
    await mkdir(join(root, dirname(lib)), { recursive: true });
    await writeFile(join(root, lib), 'garbage\n');
  }
  await writeFile(join(root, 'etc', 'ld.so.preload'), '/evil.so\n');
  await mkdir(join(root, 'data'));
  await writeFile(join(root, 'data', 'f'), 'data\n');

  const probe = await selftest(root);
  assert.ok(probe.entries.includes('data') && !probe.entries.includes('proc'), 'the worker sees the root as /');
  assert.equal(probe.chrootAgain, 'EPERM', 'CAP_SYS_CHROOT is gone');
  const { stat, tar } = await packFromRoot(root, '/data', 'c');
  assert.equal(stat.name, 'data');
  for await (const _ of tar) { /* drain */ }
  for await (const _ of await exportFromRoot(root)) { /* drain */ }
  await listInRoot(root, true);
  const t = execFileSync('tar', ['-C', work, '-c', 'host/etc']);
  await extractIntoRoot(root, '/data', Readable.from([t]), { label: 'c', noOverwriteDirNonDir: false, copyUIDGID: true });
    assert.equal(existsSync(join(root, 'planted-ran')), false, 'no planted module ran inside the worker');
});
