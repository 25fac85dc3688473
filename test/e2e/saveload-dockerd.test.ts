/**
 * Archives cross between wharfd and Debian's dockerd (test/support/daemon.ts's WHARF_E2E_DAEMON=dockerd mode):
 * `docker save` of wharfd loads into dockerd with the same image ID and tags, and dockerd's own `docker save` of an
 * image it built loads into wharfd with the same ID. Skipped when dockerd cannot start here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, startReference, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

let work: string;
let wharfd: Daemon;
let dockerd: Daemon | undefined;
let skip: string | false = false;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-saveload-dockerd-'));
  wharfd = await startDaemon();
  const reference = await startReference();
  dockerd = reference.ref;
  if (reference.skip) skip = reference.skip;
});
after(async () => {
  await Promise.all([wharfd?.stop(), dockerd?.stop()]);
  await rm(work, { recursive: true, force: true });
});

async function context(name: string, content: string): Promise<string> {
  const ctx = join(work, name);
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f /data/f\nCMD ["/x"]\n');
  await writeFile(join(ctx, 'f'), content);
  return ctx;
}

test('wharfd save → dockerd load → dockerd save → wharfd load keeps the image ID and tags', { timeout: 300_000 }, async (t) => {
  if (skip || !dockerd) return t.skip(String(skip));
  const b = await wharfd.docker(['build', '-t', 'cross/w:1', await context('w', 'made by wharfd\n')]);
  assert.equal(b.code, 0, show(b));
  const id = (await wharfd.docker(['image', 'inspect', '--format', '{{.Id}}', 'cross/w:1'])).stdout.trim();
  const f1 = join(work, 'w.tar');
  assert.equal((await wharfd.docker(['save', '-o', f1, 'cross/w:1'])).code, 0);
  const l1 = await dockerd.docker(['load', '-i', f1]);
  assert.equal(l1.code, 0, show(l1));
  assert.match(l1.stdout, /Loaded image: cross\/w:1/);
  assert.equal((await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'cross/w:1'])).stdout.trim(), id);

  const f2 = join(work, 'w2.tar');
  assert.equal((await dockerd.docker(['save', '-o', f2, 'cross/w:1'])).code, 0);
  const fresh = await startDaemon();
  try {
    const l2 = await fresh.docker(['load', '-i', f2]);
    assert.equal(l2.code, 0, show(l2));
    assert.match(l2.stdout, /Loaded image: cross\/w:1/);
    assert.equal((await fresh.docker(['image', 'inspect', '--format', '{{.Id}}', 'cross/w:1'])).stdout.trim(), id);
  } finally {
    await fresh.stop();
  }
});

test('an image dockerd built loads into wharfd with the same ID', { timeout: 300_000 }, async (t) => {
  if (skip || !dockerd) return t.skip(String(skip));
  const b = await dockerd.docker(['build', '-t', 'cross/d:1', await context('d', 'made by dockerd\n')]);
  assert.equal(b.code, 0, show(b));
  const id = (await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'cross/d:1'])).stdout.trim();
  const f = join(work, 'd.tar');
  assert.equal((await dockerd.docker(['save', '-o', f, 'cross/d:1'])).code, 0);
  const l = await wharfd.docker(['load', '-i', f]);
  assert.equal(l.code, 0, show(l));
  assert.match(l.stdout, /Loaded image: cross\/d:1/);
  const got = await wharfd.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoTags}}', 'cross/d:1']);
  assert.equal(got.stdout.trim(), `${id} ["cross/d:1"]`);
});
