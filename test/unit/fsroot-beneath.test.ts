/**
 * engine/fsroot/beneath.ts: layer directories walked in the daemon through descriptors. The tar keeps overlay's
 * forms (whiteouts, opaque dirs, hard links, symlinks, user xattrs); a symlink to the host in the tree — at the top,
 * as the parent of a vfs change, or swapped in for a directory by a process while the walk runs — is never
 * followed; no descriptor is left open after a walk, a finished or abandoned tar.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { listInRoot, packLayerFromRoot } from '../../src/engine/fsroot/beneath.js';

const SECRET = 'HOST-SECRET-beneath-51c7';
let work: string;
let host: string;
let racer: ChildProcess | null = null;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-beneath-'));
  host = join(work, 'host');
  await mkdir(host);
  await writeFile(join(host, 'secret'), SECRET);
});

async function stopRacer(): Promise<void> {
  const r = racer;
  racer = null;
  if (!r) return;
  const running = r.exitCode === null && r.signalCode === null;
  const gone = running ? new Promise((res) => r.once('exit', res)) : Promise.resolve();
  try { process.kill(-r.pid!, 'SIGKILL'); } catch { /* the group is gone already */ } // the shell and its background loop
  await gone;
}

after(async () => {
  await stopRacer();
  if (work) await rm(work, { recursive: true, force: true });
});

async function entries(tar: Readable): Promise<Map<string, { type: string; body: string; linkname?: string; pax?: Record<string, string> }>> {
  const ex = tarStream.extract();
  const out = new Map<string, { type: string; body: string; linkname?: string; pax?: Record<string, string> }>();
  // a tar that fails must fail the test, not leave the reader waiting for entries that never come
  tar.once('error', (e) => ex.destroy(e));
  tar.pipe(ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    const h = e.header;
    out.set(h.name, { type: h.type ?? '', body: Buffer.concat(chunks).toString(), ...(h.linkname ? { linkname: h.linkname } : {}), ...(h.pax ? { pax: h.pax as Record<string, string> } : {}) });
  }
  return out;
}

const openFds = () => readdirSync('/proc/self/fd').length;

test('an upper dir as an OCI layer tar: whiteouts, opaque dirs, hard links, symlinks and user xattrs; links to the host not followed', async () => {
  const up = join(work, 'upper');
  await mkdir(join(up, 'opq', 'x'), { recursive: true });
  await mkdir(join(up, 'a'), { recursive: true });
  await writeFile(join(up, 'a', 'f'), 'data');
  await link(join(up, 'a', 'f'), join(up, 'hard'));
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(up, 'opq')]);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(up, 'a', 'f')]);
  execFileSync('mknod', [join(up, 'gone'), 'c', '0', '0']);
  await symlink(host, join(up, 'tohost')); // a directory link to the host
  const before = openFds();
  const got = await entries(await packLayerFromRoot(up, null));
  assert.equal(got.get('a/f')?.body, 'data');
  assert.equal(got.get('a/f')?.pax?.['SCHILY.xattr.user.note'], 'kept');
  assert.equal(got.get('hard')?.type, 'link');
  assert.equal(got.get('hard')?.linkname, 'a/f');
  assert.equal(got.get('.wh.gone')?.type, 'file');
  assert.equal(got.get('opq/.wh..wh..opq')?.type, 'file');
  assert.ok(!got.has('a/.wh..wh..opq'), 'only the marked directory is opaque');
  assert.equal(got.get('tohost')?.type, 'symlink');
  assert.ok(![...got.keys()].some((n) => n.startsWith('tohost/')), 'the link was not followed');
  assert.ok(![...got.values()].some((e) => e.body.includes(SECRET)));
  const list = await listInRoot(up, true);
  assert.deepEqual(list.filter((e) => e.opaque).map((e) => e.rel), ['opq']);
  assert.deepEqual(list.map((e) => e.rel), ['a', 'a/f', 'gone', 'hard', 'opq', 'opq/x', 'tohost']);
  assert.equal(list.find((e) => e.rel === 'gone')?.type, 'whiteout');
  assert.equal(openFds(), before, 'no descriptor left open');
});

test('vfs items: one under a directory that is a link to the host is skipped, a whiteout item written', async () => {
  const root = join(work, 'vfs');
  await mkdir(join(root, 'd'), { recursive: true });
  await writeFile(join(root, 'd', 'own'), 'own');
  await symlink(host, join(root, 'sneaky'));
  const got = await entries(await packLayerFromRoot(root, [{ rel: 'd' }, { rel: 'd/own' }, { rel: 'sneaky/secret' }, { rel: 'old', whiteout: true }, { rel: '../host/secret' }]));
  assert.equal(got.get('d/own')?.body, 'own');
  assert.ok(got.has('.wh.old'));
  assert.ok(!got.has('sneaky/secret') && !got.has('../host/secret'));
  assert.ok(![...got.values()].some((e) => e.body.includes(SECRET)));
});

test('a tar abandoned by its reader mid-file leaves no descriptor open', async () => {
  const root = join(work, 'big');
  await mkdir(join(root, 'x', 'y'), { recursive: true });
  await writeFile(join(root, 'x', 'y', 'big'), Buffer.alloc(8 << 20, 1));
  const before = openFds();
  const tar = await packLayerFromRoot(root, null);
  await new Promise<void>((resolve) => tar.once('data', () => resolve()));
  tar.destroy();
  for (let i = 0; i < 50 && openFds() !== before; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openFds(), before);
});

test('a process swapping a directory for a link to the host while the layer is read: nothing of the host in 150 tars and listings', async () => {
  const up = join(work, 'race');
  await mkdir(up);
  // d: a directory and a link to the host in turn; l: a link, a directory and a file in turn (a readlink or an
  // open meeting the next form must skip the entry, not fail the tar)
  racer = spawn('sh', ['-c', `cd ${up} || exit 1; (while :; do rm -f l; ln -s ${host}/secret l; rm -f l; mkdir l; rmdir l; echo x > l; done) & while :; do rm -rf d; mkdir d; echo in > d/own; rm -rf d; ln -s ${host} d; done`], { stdio: 'ignore', detached: true });
  // a loaded machine may start the racer late: wait until it has made its first entries
  for (let t = 0; t < 500 && readdirSync(up).length === 0; t++) await new Promise((r) => setTimeout(r, 20));
  let sawDir = 0, sawLink = 0;
  for (let i = 0; i < 150 || (sawDir + sawLink === 0 && i < 3000); i++) {
    const got = await entries(await packLayerFromRoot(up, null));
    for (const [name, e] of got) {
      assert.ok(!e.body.includes(SECRET) && !name.includes('secret'), `host content in the tar: ${name}`);
    }
    if (got.get('d/')?.type === 'directory') sawDir++;
    if (got.get('d')?.type === 'symlink') sawLink++;
    const list = await listInRoot(up, true);
    assert.ok(!list.some((e) => e.rel.includes('secret')));
  }
  await stopRacer();
  console.log(`# race: the tar held d as a directory ${sawDir} times, as a link ${sawLink} times`);
  assert.ok(sawDir + sawLink > 0, 'the racing entry was seen');
});
