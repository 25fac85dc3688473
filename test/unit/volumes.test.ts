/** The volume store: names, anonymous volumes, references, atomic metadata, reopening, prune. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANONYMOUS_LABEL, VolumeStore } from '../../src/engine/volumes/store.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'wharf-volumes-'));
  try { await fn(root); } finally { await rm(root, { recursive: true, force: true }); }
}

test('create: names, idempotence, anonymous volumes, invalid names', async () => {
  await withRoot(async (root) => {
    const s = await new VolumeStore(root).open();
    const a = await s.create({ Name: 'data', Labels: { k: 'v' } });
    assert.deepEqual([a.Name, a.Driver, a.Scope, a.Labels], ['data', 'local', 'local', { k: 'v' }]);
    assert.equal(a.Mountpoint, join(root, 'volumes', 'data', '_data'));
    assert.equal((await s.create({ Name: 'data' })).CreatedAt, a.CreatedAt, 'an existing name is returned as it is');
    const anon = await s.create();
    assert.match(anon.Name, /^[a-f0-9]{64}$/);
    assert.ok(s.isAnonymous(anon.Name) && !s.isAnonymous('data'));
    assert.equal(anon.Labels?.[ANONYMOUS_LABEL], '');
    await assert.rejects(s.create({ Name: '../x' }), /invalid characters/);
    await assert.rejects(s.create({ Name: 'x', Driver: 'nfs' }), /plugin "nfs" not found/);
  });
});

test('references block removal; prune removes only unused volumes; reopen keeps metadata, drops half-made ones', async () => {
  await withRoot(async (root) => {
    const s = await new VolumeStore(root).open();
    await s.create({ Name: 'used' });
    await s.create({ Name: 'idle', Labels: { keep: 'no' } });
    s.retain('used', 'c1');
    await assert.rejects(s.remove('used'), /remove used: volume is in use - \[c1\]/);
    await writeFile(join(s.mountpoint('idle'), 'f'), '12345');
    const p = await s.prune();
    assert.deepEqual(p, { VolumesDeleted: ['idle'], SpaceReclaimed: 5 });
    s.release('used', 'c1');
    // a create that died before its metadata: a directory without opts.json
    await mkdir(join(root, 'volumes', 'half', '_data'), { recursive: true });
    const s2 = await new VolumeStore(root).open();
    assert.deepEqual((await s2.list()).map((v) => v.Name), ['used']);
    assert.deepEqual((await readdir(join(root, 'volumes'))).sort(), ['used']);
    await s2.remove('used');
    await assert.rejects(s2.remove('used'), /get used: no such volume/);
    await s2.remove('used', true);
  });
});

test('list filters: name, label, dangling', async () => {
  await withRoot(async (root) => {
    const s = await new VolumeStore(root).open();
    await s.create({ Name: 'alpha', Labels: { tier: 'a' } });
    await s.create({ Name: 'beta', Labels: { tier: 'b' } });
    s.retain('beta', 'c');
    assert.deepEqual((await s.list({ name: ['alp'] })).map((v) => v.Name), ['alpha']);
    assert.deepEqual((await s.list({ label: ['tier=b'] })).map((v) => v.Name), ['beta']);
    assert.deepEqual((await s.list({ dangling: ['true'] })).map((v) => v.Name), ['alpha']);
    assert.deepEqual((await s.list({ dangling: ['false'] })).map((v) => v.Name), ['beta']);
  });
});
