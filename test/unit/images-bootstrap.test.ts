/**
 * Bootstrap images over the real stores: busybox from the host's static busybox must give a rootfs that runs
 * (chroot + busybox), with applet links, docker-like history and config, and the same layer/image every time.
 * debian:<suite> needs the network and minutes: only its pure helpers run here unless WHARF_TEST_DEBOOTSTRAP=1.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainIds, type Digest } from '../../src/lib/digest.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { openImageStore, openReferenceStore } from '../../src/engine/images/store.js';
import { ImageService } from '../../src/engine/images/service.js';
import { applyChanges } from '../../src/engine/build/changes.js';
import type { LayerStore } from '../../src/engine/layers/types.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import { appletsOf, findBusybox, isDynamicElf } from '../../src/engine/bootstrap/busybox.js';
import { bootstrapImage } from '../../src/engine/bootstrap/index.js';
import { debianExclude, hostDebianMirror } from '../../src/engine/bootstrap/debian.js';

async function service(root: string): Promise<{ svc: ImageService; layers: LayerStore }> {
  const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
  const images = await openImageStore(root, layers);
  const refs = await openReferenceStore(root);
  const svc = new ImageService({ images, refs, layers, dataRoot: root, applyChanges, puller: { async pull() { throw new Error('offline'); } }, bootstrap: bootstrapImage });
  return { svc, layers };
}

const haveBusybox = await findBusybox().then(() => true, () => false);

describe('bootstrap busybox', { skip: !haveBusybox && 'no static busybox on this host' }, () => {
  let root: string;
  let root2: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-bb-'));
    root2 = await mkdtemp(join(tmpdir(), 'wharf-bb2-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(root2, { recursive: true, force: true });
  });

  test('builds a working rootfs, tagged busybox:latest, with docker-like config and history', async () => {
    const { svc, layers } = await service(root);
    const msgs: JSONMessage[] = [];
    const id = await svc.bootstrap('busybox', (m) => { msgs.push(m); });
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.ok(msgs.length >= 2 && msgs.every((m) => typeof m.status === 'string'));
    assert.ok(msgs.some((m) => m.status === 'Status: Created busybox:latest'));

    const ins = await svc.inspect('busybox');
    assert.equal(ins.Id, id);
    assert.deepEqual(ins.RepoTags, ['busybox:latest']);
    const cfg = ins.Config as Record<string, unknown>;
    assert.deepEqual(cfg.Cmd, ['sh']);
    assert.deepEqual(cfg.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.equal(ins.Os, 'linux');
    const bb = await findBusybox();
    assert.ok((ins.Size as number) > bb.binary.length && (ins.Size as number) < bb.binary.length + 4096);

    const h = await svc.history('busybox');
    assert.equal(h.length, 2);
    assert.deepEqual([h[0]!.Id, h[0]!.CreatedBy, h[0]!.Size, h[0]!.Tags], [id, '/bin/sh -c #(nop)  CMD ["sh"]', 0, ['busybox:latest']]);
    const layersOf = (ins.RootFS as { Layers: Digest[] }).Layers;
    assert.equal(h[1]!.Id, '<missing>');
    assert.equal(h[1]!.CreatedBy, `/bin/sh -c #(nop) ADD file:${layersOf[0]!.slice(7)} in / `);
    assert.equal(h[1]!.Size, ins.Size);

    // the layer directory is a rootfs that runs
    const dir = await layers.diffPath(chainIds(layersOf)[0]!);
    const out = execFileSync('chroot', [dir, '/bin/busybox', 'echo', 'hi'], { encoding: 'utf8' });
    assert.equal(out, 'hi\n');
    const sh = execFileSync('chroot', [dir, '/bin/sh', '-c', 'export PATH=/bin; ls / | tr "\\n" " "; id -un'], { encoding: 'utf8' });
    assert.match(sh, /bin dev etc home proc root sys tmp usr var/);
    assert.match(sh, /root\n/);
    // applet links, as in the reference busybox image (bin/[ -> busybox)
    const applets = await appletsOf(bb.path);
    assert.ok(applets.length > 100);
    for (const a of ['[', 'ls', 'sh', 'wget', 'httpd', applets[applets.length - 1]!]) {
      assert.equal(await readlink(join(dir, 'bin', a)), 'busybox', a);
    }
    assert.equal(((await stat(join(dir, 'tmp'))).mode & 0o7777), 0o1777);
    assert.equal(((await stat(join(dir, 'root'))).mode & 0o7777), 0o700);
    const passwd = await readFile(join(dir, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^root:x:0:0:root:\/root:\/bin\/sh$/m);
    assert.match(passwd, /^nobody:x:65534:65534:nobody:\/home:\/bin\/false$/m);
    assert.match(await readFile(join(dir, 'etc/group'), 'utf8'), /^nogroup:x:65534:$/m);
    for (const d of ['dev', 'proc', 'sys', 'home', 'usr/sbin', 'var/spool/mail', 'var/www']) assert.ok(existsSync(join(dir, d)), d);
    const su = execFileSync('chroot', ['--userspec=65534:65534', dir, '/bin/sh', '-c', 'id'], { encoding: 'utf8' });
    assert.match(su, /uid=65534\(nobody\) gid=65534\(nogroup\)/);
  });

  test('deterministic: a second bootstrap (and one in another data root) gives the same layer and image', async () => {
    const { svc } = await service(root);
    const a = await svc.resolve('busybox');
    const again = await svc.bootstrap('busybox:latest', () => {});
    assert.equal(again, a.id);
    const other = await service(root2);
    const b = await other.svc.bootstrap('busybox:1.35', () => {});
    assert.equal(b, a.id);
    const ins = await other.svc.inspect(b);
    assert.deepEqual(ins.RepoTags, ['busybox:1.35']);
    // and it is an ordinary image: rmi deletes it with its layer
    const del = await other.svc.remove('busybox:1.35', { force: false, noPrune: false });
    assert.deepEqual(del.map((d) => Object.keys(d)[0]), ['Untagged', 'Deleted', 'Deleted']);
    assert.deepEqual(await other.layers.list(), []);
  });

  test('unknown names are refused', async () => {
    const { svc } = await service(root);
    await assert.rejects(svc.bootstrap('alpine', () => {}), /cannot bootstrap "alpine"/);
  });
});

describe('bootstrap helpers', () => {
  test('ELF interpreter detection', async () => {
    assert.equal(isDynamicElf(await readFile(process.execPath)), true);
    if (haveBusybox) assert.equal(isDynamicElf((await findBusybox()).binary), false);
    assert.throws(() => isDynamicElf(Buffer.from('#!/bin/sh\n'.padEnd(80, ' '))));
  });

  test('Debian mirror from APT sources (one-line and deb822), default deb.debian.org', async () => {
    const d = await mkdtemp(join(tmpdir(), 'wharf-apt-'));
    try {
      assert.equal(await hostDebianMirror(d), 'http://deb.debian.org/debian');
      await mkdir(join(d, 'sources.list.d'));
      await writeFile(join(d, 'sources.list.d', 'debian.sources'),
        'Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n');
      assert.equal(await hostDebianMirror(d), 'http://mirror.example/debian');
      await writeFile(join(d, 'sources.list'), '# comment\ndeb [arch=amd64] http://ftp.example.org/debian bookworm main\n');
      assert.equal(await hostDebianMirror(d), 'http://ftp.example.org/debian');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test('Debian rootfs exclusions', () => {
    assert.equal(debianExclude('dev/null'), true);
    assert.equal(debianExclude('dev'), false);
    assert.equal(debianExclude('proc/1'), true);
    assert.equal(debianExclude('var/cache/apt/archives/libc6.deb'), true);
    assert.equal(debianExclude('var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease'), true);
    assert.equal(debianExclude('var/lib/apt/lists/partial'), false);
    assert.equal(debianExclude('usr/bin/bash'), false);
    assert.equal(debianExclude('debootstrap'), true);
  });
});

describe('bootstrap debian (network)', { skip: process.env.WHARF_TEST_DEBOOTSTRAP !== '1' && 'set WHARF_TEST_DEBOOTSTRAP=1' }, () => {
  test('debootstrap minbase → debian:<suite> with bash, cached tarball reused', { timeout: 900_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'wharf-deb-'));
    try {
      const { svc, layers } = await service(root);
      const id = await svc.bootstrap('debian:bookworm', () => {});
      const ins = await svc.inspect('debian:bookworm');
      assert.equal(ins.Id, id);
      assert.deepEqual((ins.Config as { Cmd: string[] }).Cmd, ['bash']);
      const dir = await layers.diffPath(chainIds((ins.RootFS as { Layers: Digest[] }).Layers)[0]!);
      assert.equal(execFileSync('chroot', [dir, '/bin/bash', '-c', 'echo $((6*7))'], { encoding: 'utf8' }), '42\n');
      assert.ok(existsSync(join(root, 'bootstrap', `debian-bookworm-${process.arch === 'x64' ? 'amd64' : process.arch}.tar`)));
      const msgs: JSONMessage[] = [];
      assert.equal(await svc.bootstrap('debian:bookworm', (m) => { msgs.push(m); }), id);
      assert.ok(msgs.some((m) => m.status?.startsWith('Using cached')));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
