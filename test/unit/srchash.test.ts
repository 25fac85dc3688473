import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir, chmod, symlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { dirHash, lazySum, multiHash, startSum, typeflagOf } from '../../src/engine/build/srchash.js';
import { untarTo } from '../../src/engine/build/context.js';

const cleanup: string[] = [];
after(async () => { for (const d of cleanup) await rm(d, { recursive: true, force: true }); });

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

test('tarsum v1: header fields as key+value in order, no mtime, sorted xattrs, then the content', () => {
  const h = startSum({
    name: 'a/b.txt', mode: 0o100644, uid: 0, gid: 0, size: 3, typeflag: '0', linkname: '', uname: 'root', gname: 'root',
    devmajor: 0, devminor: 0, xattrs: { 'user.z': '1', 'security.capability': 'x' },
  });
  h.update('hi\n');
  const expected = sha('namea/b.txt' + 'mode33188' + 'uid0' + 'gid0' + 'size3' + 'typeflag0' + 'linkname' + 'unameroot'
    + 'gnameroot' + 'devmajor0' + 'devminor0' + 'security.capabilityx' + 'user.z1' + 'hi\n');
  assert.equal(h.digest('hex'), expected);
});

test('typeflags, dir: and multi: hashes', () => {
  assert.equal(typeflagOf('directory'), '5');
  assert.equal(typeflagOf('symlink'), '2');
  assert.equal(typeflagOf(null), '0');
  // a directory's sums are sorted before joining; several sources keep their order
  assert.equal(dirHash(['bb', 'aa']), `dir:${sha('aa,bb')}`);
  assert.equal(multiHash(['file:2', 'file:1']), `multi:${sha('file:2,file:1')}`);
  assert.notEqual(multiHash(['file:1', 'file:2']), multiHash(['file:2', 'file:1']));
});

test('the context sums every entry as the client wrote it; mtime does not count, owner and mode do', async () => {
  const sums = async (mtime: Date, uid: number, mode: number) => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-srchash-'));
    cleanup.push(dir);
    const pack = tar.pack();
    pack.entry({ name: 'd/', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
    pack.entry({ name: 'd/f.txt', mode, mtime, uid, gid: 0, uname: 'u' }, 'content\n');
    pack.finalize();
    const out = new Map<string, string>();
    await untarTo(pack as unknown as Readable, dir, out);
    return [out.get(join(dir, 'd')), out.get(join(dir, 'd', 'f.txt'))];
  };
  const [d1, f1] = await sums(new Date(1000_000), 0, 0o644);
  const [d2, f2] = await sums(new Date(2000_000), 0, 0o644);
  assert.ok(d1 && f1);
  assert.equal(d1, d2);
  assert.equal(f1, f2);
  // tar-stream writes mode & 07777: the file's sum is over exactly that
  const manual = startSum({ name: 'd/f.txt', mode: 0o644, uid: 0, gid: 0, size: 8, typeflag: '0', linkname: '', uname: 'u', gname: '', devmajor: 0, devminor: 0 });
  manual.update('content\n');
  assert.equal(f1, manual.digest('hex'));
  const [, f3] = await sums(new Date(1000_000), 5, 0o644);
  const [, f4] = await sums(new Date(1000_000), 0, 0o600);
  assert.notEqual(f3, f1);
  assert.notEqual(f4, f1);
});

test('lazy sums (COPY --from) hash a header from lstat: full mode with type bits, dirs with a trailing slash', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-srchash-'));
  cleanup.push(dir);
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'f'), 'abc');
  await chmod(join(dir, 'sub', 'f'), 0o640);
  await symlink('f', join(dir, 'sub', 'l'));
  const st = await stat(join(dir, 'sub', 'f'));
  const s = await lazySum(join(dir, 'sub', 'f'), 'sub/f');
  const names = { uname: '', gname: '' };
  // the host's names for the owner, as Go's FileInfoHeader looks them up
  const { readFile } = await import('node:fs/promises');
  const nameOf = async (file: string, id: number) => (await readFile(file, 'utf8')).split('\n').map((l) => l.split(':')).find((f) => Number(f[2]) === id)?.[0] ?? '';
  names.uname = await nameOf('/etc/passwd', st.uid);
  names.gname = await nameOf('/etc/group', st.gid);
  const h = startSum({ name: 'sub/f', mode: 0o100640, uid: st.uid, gid: st.gid, size: 3, typeflag: '0', linkname: '', ...names, devmajor: 0, devminor: 0 });
  h.update('abc');
  assert.equal(s, h.digest('hex'));
  const dsum = await lazySum(join(dir, 'sub'), 'sub');
  const dstat = await stat(join(dir, 'sub'));
  assert.equal(dsum, startSum({ name: 'sub/', mode: dstat.mode, uid: dstat.uid, gid: dstat.gid, size: 0, typeflag: '5', linkname: '', ...names, devmajor: 0, devminor: 0 }).digest('hex'));
  const lsum = await lazySum(join(dir, 'sub', 'l'), 'sub/l');
  assert.notEqual(lsum, s);
  assert.equal((dstat.mode & 0o170000), 0o040000);
});
