/**
 * The hostile-layer corpus (test/support/hostile.ts) fed to a real daemon the four ways a layer arrives: `docker
 * load` (a docker-archive tar), `docker import`, a pull from a real docker-registry (each case pushed as a
 * one-layer OCI image) and a build's `ADD case.tar /`. Canary files outside the data root (in this test's TMPDIR)
 * must keep their content, modes, owners and link counts, with no new names, after every single operation.
 *
 * wharfd: the cases marked 'refused' fail through load, import and pull with an error naming the entry, the
 * 'confined' ones are accepted, and after removing every image nothing is left in the data root. (ADD re-packs the
 * archive with names cleaned as dockerd does, so there only confinement is asserted.)
 * dockerd (when installed): the same corpus, confinement only — dockerd applies layers in a chroot, so most
 * tricks are accepted and stay inside; its outcome per case is printed as a diagnostic for comparison.
 */
// wharf-test: slow
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from '../support/daemon.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { dockerArchive, hostileCorpus, makeCanaries, pushRaw, rawImage, snapshot, type HostileCase } from '../support/hostile.js';
import { buildTar } from '../support/tar.js';
import { show } from '../support/cli.js';

let work: string;
let outside: string;
let reg: Registry;
let corpus: HostileCase[];
const tars = new Map<string, Buffer>();

const hasDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));

before(async () => {
  work = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'wharf-hostile-e2e-'));
  outside = await makeCanaries(join(work, 'outside'));
  corpus = hostileCorpus(outside);
  reg = await startRegistry();
  for (const c of corpus) {
    const tar = await buildTar(c.entries);
    tars.set(c.id, tar);
    await pushRaw(reg.url, `hostile/${c.id.toLowerCase()}`, 'v1', rawImage([tar], c.id));
  }
});

after(async () => {
  await reg?.stop().catch(() => {});
  await rm(work, { recursive: true, force: true });
});

for (const engine of ['wharfd', 'dockerd'] as const) {
  test(`hostile corpus through load, import, pull and build ADD (${engine}): canaries untouched`, {
    timeout: 900_000, skip: engine === 'dockerd' && !hasDockerd ? 'dockerd is not installed: no comparison' : false,
  }, async (t) => {
    const d = await startDaemon({ engine });
    const before = await snapshot(outside);
    const outcomes: string[] = [];
    try {
      const dir = join(work, engine);
      await mkdir(dir);
      for (const c of corpus) {
        const tar = tars.get(c.id)!;
        const lower = c.id.toLowerCase();
        const caseTar = join(dir, `${c.id}.tar`);
        await writeFile(caseTar, tar);
        const archive = join(dir, `${c.id}.archive.tar`);
        await writeFile(archive, await dockerArchive(rawImage([tar], c.id), `hostile-load-${lower}:v1`));
        const ctx = join(dir, `ctx-${c.id}`);
        await mkdir(ctx);
        await writeFile(join(ctx, 'case.tar'), tar);
        await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nADD case.tar /\n');
        const ways = {
          load: () => d.docker(['load', '-i', archive]),
          import: () => d.docker(['import', caseTar, `hostile-import-${lower}:v1`]),
          pull: () => d.docker(['pull', `${reg.host}/hostile/${lower}:v1`]),
          add: () => d.docker(['build', '-q', '-t', `hostile-add-${lower}:v1`, ctx], { timeoutMs: 120_000 }),
        };
        const line: string[] = [];
        for (const [way, fn] of Object.entries(ways)) {
          const r = await fn();
          const msg = (r.stderr.split('\n').find((l) => /Error|error/.test(l)) ?? '').trim();
          line.push(`${way}=${r.code === 0 ? 'accepted' : `refused (${msg.slice(0, 200)})`}`);
          assert.deepEqual(await snapshot(outside), before, `${engine} ${way} ${c.id}: canaries untouched`);
          if (engine !== 'wharfd' || way === 'add') continue;
          if (c.expect === 'refused') {
            assert.notEqual(r.code, 0, `${way} ${c.id} must be refused: ${show(r)}`);
            if (c.mention) assert.ok(r.stderr.includes(JSON.stringify(c.mention)), `${way} ${c.id}: the error names ${c.mention}: ${show(r)}`);
          } else {
            assert.equal(r.code, 0, `${way} ${c.id} is accepted: ${show(r)}`);
          }
        }
        outcomes.push(`${c.id}: ${line.join(', ')}`);
      }
      t.diagnostic(`${engine} outcomes:\n${outcomes.join('\n')}`);
      // every image removed, nothing of the corpus stays in wharfd's data root
      const ids = (await d.docker(['images', '-aq'])).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) {
        const r = await d.docker(['rmi', '-f', ...new Set(ids)]);
        assert.equal(r.code, 0, show(r));
      }
      assert.deepEqual(await snapshot(outside), before, `${engine}: canaries untouched after rmi`);
      if (engine === 'wharfd') {
        assert.deepEqual((await readdir(join(d.dataRoot, 'overlay'))).filter((n) => n !== 'l'), [], 'no layer directory left');
        assert.deepEqual(await readdir(join(d.dataRoot, 'layers', 'tarsplit')), [], 'no sidecar left');
        // build contexts kept for cached rebuilds are build cache (as BuildKit's local sources): pruned with it
        const pr = await d.docker(['builder', 'prune', '-af']);
        assert.equal(pr.code, 0, show(pr));
        assert.deepEqual(await readdir(join(d.dataRoot, 'tmp')).catch(() => []), [], 'no build directory left');
      }
    } finally {
      await d.stop();
    }
  });
}
