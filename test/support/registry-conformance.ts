/**
 * The conformance suite of the registry's storage drivers (src/registry/driver.ts): the same tests on the
 * filesystem driver (test/unit/registry-server-driver.test.ts) and on the S3 driver over Ceph RGW
 * (test/e2e/registry-server-s3.test.ts). Driver-level checks, then registry behaviour through two servers on one
 * store (replicas): an upload started on one finished on the other, manifests visible at once, concurrent pushes
 * of the same blob and manifest, garbage collection.
 *
 *   driverConformance('filesystem', { open: () => FsDriver.open(dir), keys: async () => [...] });
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { StorageDriver } from '../../src/registry/driver.js';
import { startRegistryServer, collectGarbage, type RegistryServer } from '../../src/registry/server.js';

export interface ConformanceTarget {
  /** A driver on the store under test; each call another instance on the same store (a replica). */
  open(): Promise<StorageDriver>;
  /** Skip every test, with the reason. */
  skip?: string;
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

async function* chunksOf(...bufs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bufs) yield b;
}

export function driverConformance(name: string, target: ConformanceTarget): void {
  const opts = target.skip ? { skip: target.skip } : {};
  const T = (title: string, fn: () => Promise<void>) => test(`${name}: ${title}`, opts, fn);

  T('objects: put/get/stat/list/delete, ranges, invalid keys refused', async () => {
    const d = await target.open();
    try {
      assert.equal(await d.get('repositories/a/_manifests/tags/x'), null);
      assert.equal(await d.stat('repositories/a/_manifests/tags/x'), null);
      await d.put('repositories/a/_manifests/tags/x', 'sha256:abc');
      await d.put('repositories/a/_manifests/tags/y', Buffer.from('two'));
      await d.put('repositories/a/b/_layers/00', '');
      assert.equal((await d.get('repositories/a/_manifests/tags/x'))?.toString(), 'sha256:abc');
      const st = await d.stat('repositories/a/_manifests/tags/y');
      assert.equal(st?.size, 3);
      assert.ok(st && Math.abs(st.modifiedMs - Date.now()) < 120_000, `modification time ${st?.modifiedMs}`);
      assert.deepEqual((await d.list('repositories/a')).sort(), ['_manifests', 'b']);
      assert.deepEqual((await d.list('repositories/a/_manifests/tags')).sort(), ['x', 'y']);
      assert.deepEqual(await d.list('repositories/none'), []);
      await d.put('repositories/a/_manifests/tags/x', 'sha256:def');
      assert.equal((await d.get('repositories/a/_manifests/tags/x'))?.toString(), 'sha256:def', 'put overwrites');
      const big = randomBytes(300_000);
      await d.put('blobs/sha256/big', big);
      assert.deepEqual(await collect(await d.read('blobs/sha256/big', 1000, 200_999)), big.subarray(1000, 201_000));
      await d.delete('repositories/a/_manifests/tags/x');
      await d.delete('repositories/a/_manifests/tags/x');
      assert.deepEqual(await d.list('repositories/a/_manifests/tags'), ['y']);
      for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b']) {
        await assert.rejects(d.get(bad), /invalid storage key/, bad);
      }
    } finally {
      await d.close();
    }
  });

  T('uploads: chunks appended on one instance, continued and committed on another; nothing left after', async () => {
    const a = await target.open();
    const b = await target.open();
    try {
      for (const sizes of [[100, 200, 0, 50], [5 * 1024 * 1024 + 7, 5 * 1024 * 1024, 1000]]) {
        const id = crypto.randomUUID();
        await a.createUpload(id, 'conf/repo');
        const st0 = await b.uploadState(id);
        assert.deepEqual([st0?.repo, st0?.size], ['conf/repo', 0]);
        assert.ok((await b.listUploads()).includes(id));
        const parts = sizes.map((n) => randomBytes(n));
        let off = 0;
        const tapped: Buffer[] = [];
        for (const [i, p] of parts.entries()) {
          const d = i % 2 === 0 ? a : b; // alternate replicas
          const half = Math.floor(p.length / 2);
          const n = await d.appendUpload(id, off, chunksOf(p.subarray(0, half), p.subarray(half)), (x) => tapped.push(Buffer.from(x)));
          assert.equal(n, p.length);
          off += n;
          assert.equal((await (i % 2 === 0 ? b : a).uploadState(id))?.size, off, 'the other instance sees the size at once');
        }
        const all = Buffer.concat(parts);
        assert.deepEqual(Buffer.concat(tapped), all, 'tap saw every byte in order');
        assert.deepEqual(await collect(b.readUpload(id)), all);
        const key = `blobs/sha256/${sha(all).slice(7)}`;
        await b.commitUpload(id, key);
        assert.equal((await a.stat(key))?.size, all.length);
        assert.equal(sha((await a.get(key))!), sha(all));
        assert.equal(await a.uploadState(id), null);
        assert.equal(await a.uploadModified(id), null, 'no part of the session is left');
        assert.ok(!(await a.listUploads()).includes(id));
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  T('uploads: a body cut by the client keeps what arrived and the upload continues; delete removes it', async () => {
    const d = await target.open();
    try {
      const id = crypto.randomUUID();
      await d.createUpload(id, 'conf/cut');
      const first = randomBytes(70_000);
      async function* cut(): AsyncGenerator<Buffer> {
        yield first;
        throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      }
      let n = 0;
      try {
        n = await d.appendUpload(id, 0, cut(), () => {});
      } catch {
        // a driver may also report the cut; what counts is the state after
      }
      const st = await d.uploadState(id);
      assert.ok(st, 'the session survives');
      assert.equal(st.size, first.length, `kept ${st.size} of ${first.length} (returned ${n})`);
      const rest = randomBytes(1000);
      await d.appendUpload(id, st.size, chunksOf(rest), () => {});
      assert.deepEqual(await collect(d.readUpload(id)), Buffer.concat([first, rest]));
      await d.deleteUpload(id);
      assert.equal(await d.uploadState(id), null);
      assert.equal(await d.uploadModified(id), null);
    } finally {
      await d.close();
    }
  });

  T('replicas: an upload started on A is finished on B; a manifest pushed to A is served by B at once', async () => {
    const [da, db] = [await target.open(), await target.open()];
    const A = await startRegistryServer({ driver: da, addr: '127.0.0.1:0' });
    const B = await startRegistryServer({ driver: db, addr: '127.0.0.1:0' });
    try {
      const layer = randomBytes(400_000);
      const post = await fetch(`${A.url}/v2/conf/img/blobs/uploads/`, { method: 'POST' });
      assert.equal(post.status, 202);
      const loc = post.headers.get('location')!;
      const p1 = await fetch(`${A.url}${loc}`, { method: 'PATCH', body: layer.subarray(0, 150_000), headers: { 'Content-Range': '0-149999' } });
      assert.equal(p1.status, 202);
      const st = await fetch(`${B.url}${loc}`);
      assert.equal(st.status, 204, 'B knows the upload');
      assert.equal(st.headers.get('range'), '0-149999');
      const p2 = await fetch(`${B.url}${loc}`, { method: 'PATCH', body: layer.subarray(150_000, 300_000), headers: { 'Content-Range': '150000-299999' } });
      assert.equal(p2.status, 202);
      const put = await fetch(`${A.url}${loc}?digest=${sha(layer)}`, { method: 'PUT', body: layer.subarray(300_000) });
      assert.equal(put.status, 201, await put.text());
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
      const cput = await fetch(`${B.url}/v2/conf/img/blobs/uploads/?digest=${sha(config)}`, { method: 'POST', body: config });
      assert.equal(cput.status, 201);
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
      }));
      const mput = await fetch(`${A.url}/v2/conf/img/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(mput.status, 201, await mput.text());
      const mget = await fetch(`${B.url}/v2/conf/img/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(mget.status, 200);
      assert.equal(mget.headers.get('docker-content-digest'), sha(manifest));
      assert.deepEqual(Buffer.from(await mget.arrayBuffer()), manifest);
      assert.deepEqual(await (await fetch(`${B.url}/v2/conf/img/tags/list`)).json(), { name: 'conf/img', tags: ['v1'] });
      assert.ok(((await (await fetch(`${B.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories.includes('conf/img'));
      const whole = await fetch(`${B.url}/v2/conf/img/blobs/${sha(layer)}`);
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get('docker-content-digest'), sha(layer));
      assert.equal(sha(Buffer.from(await whole.arrayBuffer())), sha(layer));
      const part = await fetch(`${B.url}/v2/conf/img/blobs/${sha(layer)}`, { headers: { Range: 'bytes=1000-1999' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${layer.length}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), layer.subarray(1000, 2000));
      const head = await fetch(`${B.url}/v2/conf/img/blobs/${sha(layer)}`, { method: 'HEAD' });
      assert.equal(head.headers.get('content-length'), String(layer.length));
      // a referrer pushed to B is listed by A
      const sig = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/x.conf.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length },
      }));
      assert.equal((await fetch(`${B.url}/v2/conf/img/blobs/uploads/?digest=${sha('{}')}`, { method: 'POST', body: '{}' })).status, 201);
      const sput = await fetch(`${B.url}/v2/conf/img/manifests/${sha(sig)}`, { method: 'PUT', body: sig, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(sput.status, 201, await sput.text());
      const refs = (await (await fetch(`${A.url}/v2/conf/img/referrers/${sha(manifest)}`)).json()) as { manifests: { digest: string }[] };
      assert.deepEqual(refs.manifests.map((m) => m.digest), [sha(sig)]);
    } finally {
      await A.close();
      await B.close();
    }
  });

  T('replicas: the same blob and manifest pushed to both at once both succeed, stored once', async () => {
    const servers: RegistryServer[] = [];
    for (let i = 0; i < 2; i++) servers.push(await startRegistryServer({ driver: await target.open(), addr: '127.0.0.1:0' }));
    try {
      const blob = randomBytes(250_000);
      const ups = await Promise.all(servers.map(async (s) => {
        const post = await fetch(`${s.url}/v2/conf/race/blobs/uploads/`, { method: 'POST' });
        const loc = post.headers.get('location')!;
        await fetch(`${s.url}${loc}`, { method: 'PATCH', body: blob });
        return fetch(`${s.url}${loc}?digest=${sha(blob)}`, { method: 'PUT' });
      }));
      assert.deepEqual(ups.map((r) => r.status), [201, 201]);
      const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
      await fetch(`${servers[0]!.url}/v2/conf/race/blobs/uploads/?digest=${sha(config)}`, { method: 'POST', body: config });
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(blob), size: blob.length }],
      }));
      const puts = await Promise.all(servers.map((s) => fetch(`${s.url}/v2/conf/race/manifests/latest`, { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })));
      assert.deepEqual(puts.map((r) => r.status), [201, 201]);
      const d = servers[0]!.storage.driver;
      assert.deepEqual(await d.list('blobs/sha256').then((l) => l.filter((n) => n === sha(blob).slice(7))), [sha(blob).slice(7)], 'one blob object');
      assert.equal(sha((await d.get(`blobs/sha256/${sha(blob).slice(7)}`))!), sha(blob));
      assert.deepEqual((await d.listUploads()).filter((id) => id.length === 36).length, 0, 'no upload session left');
      for (const s of servers) {
        const m = await fetch(`${s.url}/v2/conf/race/manifests/latest`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
        assert.equal(m.headers.get('docker-content-digest'), sha(manifest));
      }
    } finally {
      for (const s of servers) await s.close();
    }
  });

  T('garbage collection: deletes unreferenced blobs, keeps referenced ones and those within the grace period', async () => {
    const d = await target.open();
    const S = await startRegistryServer({ driver: d, addr: '127.0.0.1:0' });
    try {
      const orphan = randomBytes(1000);
      const young = randomBytes(1000);
      assert.equal((await fetch(`${S.url}/v2/conf/gc/blobs/uploads/?digest=${sha(orphan)}`, { method: 'POST', body: orphan })).status, 201);
      const before = await collectGarbage(d, { dryRun: true });
      assert.ok(before.deleted.includes(sha(orphan) as never), 'dry run lists the orphan');
      assert.ok(await d.stat(`blobs/sha256/${sha(orphan).slice(7)}`), 'dry run deletes nothing');
      // the referenced blobs of the earlier tests stay; the orphan goes
      const referenced = (await d.list('repositories/conf/race/_layers'))[0];
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await fetch(`${S.url}/v2/conf/gc/blobs/uploads/?digest=${sha(young)}`, { method: 'POST', body: young })).status, 201);
      const r = await collectGarbage(d, { minAgeMs: 1000 });
      assert.ok(r.deleted.includes(sha(orphan) as never), `deleted ${r.deleted.join(' ')}`);
      assert.ok(!r.deleted.includes(sha(young) as never), 'a blob within the grace period stays');
      assert.equal(await d.stat(`blobs/sha256/${sha(orphan).slice(7)}`), null);
      assert.ok(await d.stat(`blobs/sha256/${sha(young).slice(7)}`));
      if (referenced) assert.ok(await d.stat(`blobs/sha256/${referenced}`), 'a referenced blob stays');
      assert.equal((await fetch(`${S.url}/v2/conf/gc/blobs/${sha(orphan)}`, { method: 'HEAD' })).status, 404);
    } finally {
      await S.close();
    }
  });
}
