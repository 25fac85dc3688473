/**
 * The build cache's records and POST /build/prune's rules over them (dockerd 20.10 → BuildKit's PruneInfo):
 * filters id/type/description/inuse/private/until, keep-storage (least recently used first), the errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheMounts, type CacheMountRequest } from '../../src/engine/build/cache-mounts.js';
import { InvalidParameterError, SystemError } from '../../src/lib/errors.js';
import type { Filters } from '../../src/lib/filters.js';

const req = (id: string): CacheMountRequest => ({ id, sharing: 'shared', mode: 0o755, uid: 0, gid: 0, description: `cached mount /c with id "${id}"` });

async function fill(c: CacheMounts, id: string, bytes: number): Promise<string> {
  const h = await c.acquire(req(id));
  if (bytes) await writeFile(join(h.path, 'f'), Buffer.alloc(bytes));
  h.release();
  await new Promise((r) => setTimeout(r, 15)); // distinct LastUsedAt
  return (await c.records()).find((r) => r.Description.includes(`"${id}"`))!.ID;
}

test('records: exec.cachemount, sizes, use counts; prune filters and keep-storage as BuildKit applies them', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-cache-prune-'));
  try {
    const c = new CacheMounts(root);
    const a = await fill(c, 'a', 1000);
    const b = await fill(c, 'b', 2000);
    const x = await fill(c, 'x', 4000);
    await fill(c, 'a', 0); // used again: a is now the most recently used
    const recs = await c.records();
    assert.deepEqual(recs.map((r) => [r.Type, r.Size, r.InUse, r.Shared]), [['exec.cachemount', 1000, false, false], ['exec.cachemount', 2000, false, false], ['exec.cachemount', 4000, false, false]]);
    assert.equal(recs.find((r) => r.ID === a)!.UsageCount, 2);
    assert.equal(recs.find((r) => r.ID === a)!.Description, 'cached mount /c with id "a"');

    // filters that select nothing: another type, a parent (none here), until (all were used just now), shared
    for (const filters of <Filters[]>[{ type: ['regular'] }, { parent: [a] }, { until: ['1h'] }, { 'unused-for': ['10m'] }, { shared: [] }, { inuse: [] }]) {
      assert.deepEqual((await c.prune({ filters })).CachesDeleted, [], JSON.stringify(filters));
    }
    assert.equal((await c.records()).length, 3);
    // keep-storage above the total keeps everything
    assert.deepEqual((await c.prune({ keepStorage: 7000 })).CachesDeleted, []);
    // an id substring and a description select one record each
    assert.deepEqual((await c.prune({ filters: { id: [x.slice(3, 12)], private: [] } })).CachesDeleted, [x]);
    assert.equal((await c.prune({ filters: { description: ['cached mount /c with id "b"'] } })).SpaceReclaimed, 2000);
    // keep-storage: the least recently used go first until the rest fits
    const b2 = await fill(c, 'b', 2000);
    const a2 = await fill(c, 'a', 0);
    assert.equal(a2, a);
    assert.deepEqual((await c.prune({ keepStorage: 1500 })).CachesDeleted, [b2]);
    // a held record is never deleted
    const held = await c.acquire(req('a'));
    assert.deepEqual((await c.prune({ all: true })).CachesDeleted, []);
    assert.equal((await c.records())[0]!.InUse, true);
    held.release();
    assert.deepEqual(await c.prune({ filters: { until: ['0s'] } }), { CachesDeleted: [a], SpaceReclaimed: 1000 });
    assert.deepEqual(await c.records(), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('prune refuses what dockerd 20.10 refuses', async () => {
  const c = new CacheMounts(join(tmpdir(), 'wharf-cache-prune-none'));
  await assert.rejects(c.prune({ filters: { bogus: ['1'] } }), (e: Error) => e instanceof InvalidParameterError && e.message === "Invalid filter 'bogus'");
  await assert.rejects(c.prune({ filters: { mutable: [] } }), (e: Error) => e instanceof InvalidParameterError && e.message === "Invalid filter 'mutable'");
  await assert.rejects(c.prune({ filters: { until: ['1h'], 'unused-for': ['1h'] } }), /conflicting filters: "until" and "unused-for"/);
  await assert.rejects(c.prune({ filters: { type: ['a', 'b'] } }), (e: Error) => e instanceof InvalidParameterError && e.message === 'filters expect only one value');
  await assert.rejects(c.prune({ filters: { until: ['soon'] } }), (e: Error) => e instanceof SystemError && e.message === `"until" filter expects a duration (e.g., '24h'): time: invalid duration "soon"`);
  assert.deepEqual(await c.prune({ filters: { label: ['x'] } }), { CachesDeleted: [], SpaceReclaimed: 0 });
});
