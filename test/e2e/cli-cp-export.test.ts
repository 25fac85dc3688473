/**
 * docker cp both ways and docker export / import, through wharf and the real docker CLI against a real wharfd:
 * docker's path rules (into a directory, to a new name, "dir/." contents, out to a new name, "-" as a tar),
 * ownership with and without -a, nothing written outside the container (tar entries with "..", symlinks in the
 * container pointing at the host's root), export of a container whose layer added and deleted files, then
 * import of that tar into an image that runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, chown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import tarStream from 'tar-stream';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
let work: string;
before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-cp-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  await mkdir(join(work, 'src', 'dir', 'sub'), { recursive: true });
  await writeFile(join(work, 'src', 'file'), 'file content\n');
  await writeFile(join(work, 'src', 'dir', 'a'), 'A\n');
  await writeFile(join(work, 'src', 'dir', 'sub', 'b'), 'B\n');
  await chown(join(work, 'src', 'file'), 1234, 5678);
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function tree(container: string, path: string): Promise<string> {
  const r = await d.wharf(['exec', container, 'sh', '-c', `cd ${path} && find . | sort && cat $(find . -type f | sort)`]);
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

test('cp into a container: docker\'s path rules, the same result as the docker CLI', async () => {
  for (const cli of ['wharf', 'docker'] as const) {
    const x = (args: string[]) => (cli === 'wharf' ? d.wharf(args, { cwd: work }) : d.docker(args, { cwd: work }));
    const name = `cp-in-${cli}`;
    assert.equal((await x(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'mkdir /t && sleep 120'])).code, 0);
    await waitFor(async () => (await x(['exec', name, 'test', '-d', '/t'])).code === 0, { interval: 100, message: `/t in ${name}` });
    for (const args of [['src/file', `${name}:/t/`], ['src/file', `${name}:/t/renamed`], ['src/dir', `${name}:/t/`], ['src/dir/.', `${name}:/t/newdir`], ['src/dir', `${name}:/t/dircopy`]]) {
      const r = await x(['cp', ...args]);
      assert.equal(r.code, 0, `${cli} cp ${args.join(' ')}: ${show(r)}`);
    }
    const bad = await x(['cp', 'src/dir', `${name}:/t/file`]);
    assert.notEqual(bad.code, 0, `${cli}: a directory onto a file is refused`);
  }
  assert.equal(await tree('cp-in-wharf', '/t'), await tree('cp-in-docker', '/t'));
  const owner = await d.wharf(['exec', 'cp-in-wharf', 'stat', '-c', '%u:%g', '/t/file']);
  assert.equal(owner.stdout, '0:0\n', 'without -a the files belong to root');
  assert.equal((await d.wharf(['cp', '-a', 'src/file', 'cp-in-wharf:/t/owned'], { cwd: work })).code, 0);
  assert.equal((await d.wharf(['exec', 'cp-in-wharf', 'stat', '-c', '%u:%g', '/t/owned'])).stdout, '1234:5678\n');
  const diff = await d.wharf(['diff', 'cp-in-wharf']);
  assert.match(diff.stdout, /^A \/t\/renamed$/m, 'the copies are the container\'s changes');
});

test('cp out of a container: into a directory, to a new name, contents, and a tar on stdout', async () => {
  const out = join(work, 'out');
  await mkdir(out);
  assert.equal((await d.wharf(['cp', 'cp-in-wharf:/t/dir', out])).code, 0);
  assert.equal(await readFile(join(out, 'dir', 'sub', 'b'), 'utf8'), 'B\n');
  assert.equal((await d.wharf(['cp', 'cp-in-wharf:/t/dir', join(out, 'named')])).code, 0);
  assert.equal(await readFile(join(out, 'named', 'a'), 'utf8'), 'A\n');
  assert.equal((await d.wharf(['cp', 'cp-in-wharf:/t/file', join(out, 'f2')])).code, 0);
  assert.equal(await readFile(join(out, 'f2'), 'utf8'), 'file content\n');
  const tar = await d.wharf(['cp', 'cp-in-wharf:/t/file', '-']);
  const dtar = await d.docker(['cp', 'cp-in-wharf:/t/file', '-']);
  assert.equal(tar.code, 0);
  const names = (s: string) => execFileSync('tar', ['-t'], { input: Buffer.from(s, 'latin1') }).toString();
  assert.equal(names(tar.stdout), 'file\n');
  assert.equal(names(tar.stdout), names(dtar.stdout));
  const missing = await d.wharf(['cp', 'cp-in-wharf:/no/such', out]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Could not find the file \/no\/such in container cp-in-wharf/);
});

test('cp never writes outside the container: ".." entries and symlinks to the host root', async () => {
  const marker = join(work, 'escaped');
  // a symlink inside the container that points at "/" (the container's root, not the host's)
  assert.equal((await d.wharf(['exec', 'cp-in-wharf', 'ln', '-s', '/', '/t/hostroot'])).code, 0);
  const unique = `payload-${process.pid}-${Date.now()}`;
  await writeFile(join(work, unique), 'payload\n');
  const via = await d.wharf(['cp', join(work, unique), 'cp-in-wharf:/t/hostroot/tmp/']);
  assert.equal(via.code, 0, show(via));
  assert.equal((await d.wharf(['exec', 'cp-in-wharf', 'cat', `/tmp/${unique}`])).stdout, 'payload\n', 'followed inside the container');
  assert.ok(!existsSync(join('/tmp', unique)), 'and not on the host');
  // a tar whose entries climb out with ".."
  const pack = tarStream.pack();
  pack.entry({ name: 'inside', mode: 0o644 }, 'in\n');
  pack.entry({ name: `../../../../../../../../..${marker}`, mode: 0o644 }, 'out\n');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const r = await d.wharf(['cp', '-', 'cp-in-wharf:/t'], { input: Buffer.concat(chunks) });
  assert.notEqual(r.code, 0, show(r));
  assert.match(r.stderr, /is outside of "\/t"/);
  assert.ok(!existsSync(marker), 'nothing was written on the host');
  const found = await d.wharf(['exec', 'cp-in-wharf', 'sh', '-c', `ls ${marker} 2>&1; cat /t/inside`]);
  assert.match(found.stdout, /No such file or directory\nin\n$/, 'entries before the bad one were extracted, the bad one nowhere');
});

test('export flattens the container (additions and deletions); import of that tar runs', async () => {
  const r = await d.wharf(['run', '-d', '--name', 'exp', 'busybox', 'sh', '-c', 'rm /bin/vi; echo added > /added; sleep 120']);
  assert.equal(r.code, 0, show(r));
  await waitFor(async () => (await d.wharf(['exec', 'exp', 'test', '-f', '/added'])).code === 0, { interval: 100, message: '/added in exp' });
  const file = join(work, 'exp.tar');
  const e = await d.wharf(['export', '-o', file, 'exp']);
  assert.deepEqual([e.code, e.stdout, e.stderr], [0, '', ''], show(e));
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
  assert.ok(names.includes('added'));
  assert.ok(names.includes('bin/busybox'));
  assert.ok(!names.includes('bin/vi'), 'a deleted file is not exported');
  assert.ok(!names.some((n) => n.includes('.wh.')), 'no whiteouts in an export');
  const dnames = execFileSync('sh', ['-c', `docker export exp | tar -t`], { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: d.host } }).split('\n');
  assert.deepEqual(names, dnames);
  const imp = await d.wharf(['import', file, 'exported:1']);
  assert.match(imp.stdout, /^sha256:[a-f0-9]{64}\n$/, show(imp));
  const run = await d.wharf(['run', '--rm', 'exported:1', 'cat', '/added']);
  assert.equal(run.stdout, 'added\n', show(run));
  const hist = await d.wharf(['history', '--format', '{{.Comment}}', 'exported:1']);
  assert.equal(hist.stdout, 'Imported from -\n');
  assert.ok((await readdir(work)).includes('exp.tar'));
});
