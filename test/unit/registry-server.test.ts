import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { get as httpsGet } from 'node:https';
import { startRegistryServer, collectGarbage, parseRanges, type RegistryServer } from '../../src/registry/server.js';
import { serveRegistry } from '../../src/registry/main.js';
import { request as httpRequest } from 'node:http';
import { sleep } from '../support/wait.js';

const execFileP = promisify(execFile);

function sha(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

const MT_OCI = 'application/vnd.oci.image.manifest.v1+json';
const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'wharf-regsrv-'));
}

async function errCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: { code: string }[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, 'error body has errors[]');
  return body.errors[0]!.code;
}

/** Pushes a blob monolithically; returns its digest. */
async function pushBlob(url: string, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const d = sha(data);
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${d}`, {
    method: 'POST', body: data, headers: { 'Content-Type': 'application/octet-stream', ...headers },
  });
  await res.arrayBuffer();
  assert.equal(res.status, 201);
  return d;
}

function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}, mediaType = MT_OCI): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: mediaType === MT_OCI ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json', digest: sha(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(l), size: l.length })),
    ...extra,
  }, null, 3));
}

async function putManifest(url: string, repo: string, ref: string, m: Buffer, ct = MT_OCI, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: m, headers: { 'Content-Type': ct, ...headers } });
}

/** Pushes config + layers + manifest under `tag`; returns the manifest's digest and bytes. */
async function pushImage(url: string, repo: string, tag: string, seed: string): Promise<{ digest: string; manifest: Buffer; layers: Buffer[]; config: Buffer }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layers = [Buffer.from(`layer-a-${seed}`), Buffer.from(`layer-b-${seed}`.repeat(1000))];
  await pushBlob(url, repo, config);
  for (const l of layers) await pushBlob(url, repo, l);
  const manifest = imageManifest(config, layers);
  const res = await putManifest(url, repo, tag, manifest);
  await res.arrayBuffer();
  assert.equal(res.status, 201);
  return { digest: sha(manifest), manifest, layers, config };
}

describe('registry server, no auth', () => {
  let root: string;
  let srv: RegistryServer;
  let url: string;
  before(async () => {
    root = await tmp();
    srv = await startRegistryServer({ root, addr: '127.0.0.1:0' });
    url = srv.url;
  });
  after(async () => {
    await srv.close();
    await rm(root, { recursive: true, force: true });
  });

  test('GET /v2/ answers 200 with the API version header on every response', async () => {
    const res = await fetch(`${url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    await res.arrayBuffer();
    const res2 = await fetch(`${url}/v2/nope/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(res2.status, 404);
    assert.equal(res2.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.equal(await errCode(res2), 'BLOB_UNKNOWN');
  });

  test('monolithic upload, HEAD/GET blob, range requests', async () => {
    const data = Buffer.from('0123456789abcdefghij'.repeat(50));
    const d = sha(data);
    const res = await fetch(`${url}/v2/mono/blobs/uploads/?digest=${d}`, { method: 'POST', body: data });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), d);
    assert.equal(res.headers.get('location'), `/v2/mono/blobs/${d}`);
    const head = await fetch(`${url}/v2/mono/blobs/${d}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    assert.equal(head.headers.get('docker-content-digest'), d);
    const get = await fetch(`${url}/v2/mono/blobs/${d}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
    const part = await fetch(`${url}/v2/mono/blobs/${d}`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.equal(Buffer.from(await part.arrayBuffer()).toString(), 'abcdefghij');
    const suffix = await fetch(`${url}/v2/mono/blobs/${d}`, { headers: { Range: 'bytes=-5' } });
    assert.equal(suffix.status, 206);
    assert.equal(Buffer.from(await suffix.arrayBuffer()).toString(), 'fghij');
    const bad = await fetch(`${url}/v2/mono/blobs/${d}`, { headers: { Range: `bytes=${data.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${data.length}`);
    await bad.arrayBuffer();
    // Another repository has no link to the blob.
    const other = await fetch(`${url}/v2/other/blobs/${d}`, { method: 'HEAD' });
    assert.equal(other.status, 404);
  });

  test('multi-range GET: one 206 multipart/byteranges with every part in the order asked; never 416 when one range is satisfiable', async () => {
    const data = randomBytes(300_000);
    const d = await pushBlob(url, 'multi/range', data);
    const asked = [[0, 4], [100_000, 200_123], [299_990, 400_000]] as const;
    const r = await fetch(`${url}/v2/multi/range/blobs/${d}`, { headers: { Range: `bytes=${asked.map(([a, b]) => `${a}-${b}`).join(', ')}, -7` } });
    assert.equal(r.status, 206);
    const ct = r.headers.get('content-type') ?? '';
    const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(ct);
    assert.ok(m, ct);
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(r.headers.get('content-length'), String(body.length));
    // parse the parts: --boundary CRLF headers CRLF CRLF bytes CRLF ... --boundary--
    const want = [...asked.map(([a, b]) => [a, Math.min(b, data.length - 1)] as const), [data.length - 7, data.length - 1] as const];
    let pos = 0;
    for (const [a, b] of want) {
      const delim = Buffer.from(`--${m[1]}\r\n`);
      pos = body.indexOf(delim, pos);
      assert.ok(pos >= 0, 'a part is missing');
      const headEnd = body.indexOf('\r\n\r\n', pos);
      const head = body.subarray(pos + delim.length, headEnd).toString();
      assert.match(head, new RegExp(`Content-Range: bytes ${a}-${b}/${data.length}`, 'i'));
      const part = body.subarray(headEnd + 4, headEnd + 4 + (b - a + 1));
      assert.ok(part.equals(data.subarray(a, b + 1)), `part ${a}-${b}`);
      assert.equal(body.subarray(headEnd + 4 + (b - a + 1), headEnd + 6 + (b - a + 1)).toString(), '\r\n');
      pos = headEnd + 4 + (b - a + 1);
    }
    assert.equal(body.subarray(pos).toString(), `\r\n--${m[1]}--\r\n`);
    // one satisfiable range among unsatisfiable ones: that range, 206, not 416
    const one = await fetch(`${url}/v2/multi/range/blobs/${d}`, { headers: { Range: `bytes=${data.length + 5}-, 10-19` } });
    assert.equal(one.status, 206);
    assert.equal(one.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.ok(Buffer.from(await one.arrayBuffer()).equals(data.subarray(10, 20)));
    // none satisfiable: 416; HEAD of a multi-range: the length without a body
    const none = await fetch(`${url}/v2/multi/range/blobs/${d}`, { headers: { Range: `bytes=${data.length}-, ${data.length + 1}-${data.length + 9}` } });
    assert.equal(none.status, 416);
    await none.arrayBuffer();
    const head = await fetch(`${url}/v2/multi/range/blobs/${d}`, { method: 'HEAD', headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(head.status, 206);
    assert.match(head.headers.get('content-type') ?? '', /^multipart\/byteranges/);
    // a Range the server does not understand is ignored: the whole blob
    const odd = await fetch(`${url}/v2/multi/range/blobs/${d}`, { headers: { Range: 'items=0-5' } });
    assert.equal(odd.status, 200);
    assert.ok(Buffer.from(await odd.arrayBuffer()).equals(data));
  });

  test('parseRanges: satisfiable ranges clamped, in order; unsatisfiable; ignored headers', () => {
    assert.deepEqual(parseRanges('bytes=0-9', 100), [{ start: 0, end: 9 }]);
    assert.deepEqual(parseRanges('bytes=90-200,-5, 3-', 100), [{ start: 90, end: 99 }, { start: 95, end: 99 }, { start: 3, end: 99 }]);
    assert.deepEqual(parseRanges('bytes=-500', 100), [{ start: 0, end: 99 }]);
    assert.equal(parseRanges('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRanges('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRanges('bytes=0-0', 0), 'unsatisfiable');
    assert.equal(parseRanges('bytes=9-3', 100), null);
    assert.equal(parseRanges('bytes=a-b', 100), null);
    assert.equal(parseRanges('lines=1-2', 100), null);
    assert.equal(parseRanges(`bytes=${Array.from({ length: 65 }, (_, i) => `${i}-${i}`).join(',')}`, 100), null);
  });

  test('a manifest naming an unknown layer or config → 400 MANIFEST_BLOB_UNKNOWN (OCI and docker schema 2)', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layer = Buffer.from('a known layer');
    await pushBlob(url, 'mbu/app', config);
    await pushBlob(url, 'mbu/app', layer);
    const unknownLayer = Buffer.from('a layer never pushed');
    const unknownConfig = Buffer.from('{"a config":"never pushed"}');
    for (const mt of [MT_OCI, MT_DOCKER]) {
      for (const [what, m, missingDigest] of [
        ['layer', imageManifest(config, [layer, unknownLayer], {}, mt), sha(unknownLayer)],
        ['config', imageManifest(unknownConfig, [layer], {}, mt), sha(unknownConfig)],
      ] as const) {
        const r = await putManifest(url, 'mbu/app', 'v1', m, mt);
        assert.equal(r.status, 400, `${mt} unknown ${what}`);
        const body = (await r.json()) as { errors: { code: string; detail?: { digest?: string } }[] };
        assert.equal(body.errors[0]!.code, 'MANIFEST_BLOB_UNKNOWN', `${mt} unknown ${what}`);
        assert.equal(body.errors[0]!.detail?.digest, missingDigest);
      }
      const ok = await putManifest(url, 'mbu/app', 'v1', imageManifest(config, [layer], {}, mt), mt);
      assert.equal(ok.status, 201, mt);
      await ok.arrayBuffer();
    }
    // nothing was published by the refused PUTs: the tag names the last good manifest
    const g = await fetch(`${url}/v2/mbu/app/manifests/v1`, { headers: { Accept: MT_DOCKER } });
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), imageManifest(config, [layer], {}, MT_DOCKER));
  });

  test('large blob GETs (several send buffers) return exact bytes, whole and by range, many at once', async () => {
    const data = randomBytes((3 << 20) + 12345);
    const d = await pushBlob(url, 'big/blob', data);
    const gets = await Promise.all(Array.from({ length: 6 }, async () => Buffer.from(await (await fetch(`${url}/v2/big/blob/blobs/${d}`)).arrayBuffer())));
    for (const g of gets) assert.ok(g.equals(data), 'whole blob intact');
    // Clients that go away mid-download leave the server serving others correctly.
    for (let i = 0; i < 4; i++) {
      const ac = new AbortController();
      const r = await fetch(`${url}/v2/big/blob/blobs/${d}`, { signal: ac.signal });
      const reader = r.body!.getReader();
      await reader.read();
      ac.abort();
      await reader.read().catch(() => {});
    }
    const after = Buffer.from(await (await fetch(`${url}/v2/big/blob/blobs/${d}`)).arrayBuffer());
    assert.ok(after.equals(data), 'intact after aborted downloads');
    for (const [a, b] of [[1048000, 2100000], [0, (1 << 20) - 1], [1 << 20, (2 << 20) + 5], [data.length - 3, data.length - 1]] as const) {
      const r = await fetch(`${url}/v2/big/blob/blobs/${d}`, { headers: { Range: `bytes=${a}-${b}` } });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-length'), String(b - a + 1));
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(data.subarray(a, b + 1)), `range ${a}-${b}`);
    }
  });

  test('chunked upload with Content-Range, status, out-of-order chunk → 416, final chunk on PUT', async () => {
    const data = Buffer.alloc(300);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const d = sha(data);
    const post = await fetch(`${url}/v2/chunked/blobs/uploads/`, { method: 'POST' });
    assert.equal(post.status, 202);
    const loc = post.headers.get('location')!;
    assert.match(loc, /^\/v2\/chunked\/blobs\/uploads\/[0-9a-f-]+$/);
    assert.ok(post.headers.get('docker-upload-uuid'));
    assert.equal(post.headers.get('range'), '0-0');
    const p1 = await fetch(`${url}${loc}`, {
      method: 'PATCH', body: data.subarray(0, 100),
      headers: { 'Content-Range': '0-99', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(p1.status, 202);
    assert.equal(p1.headers.get('range'), '0-99');
    const st = await fetch(`${url}${p1.headers.get('location')}`);
    assert.equal(st.status, 204);
    assert.equal(st.headers.get('range'), '0-99');
    const ooo = await fetch(`${url}${loc}`, { method: 'PATCH', body: data.subarray(150, 200), headers: { 'Content-Range': '150-199' } });
    assert.equal(ooo.status, 416);
    assert.equal(await errCode(ooo), 'BLOB_UPLOAD_INVALID');
    assert.equal(ooo.headers.get('range'), '0-99');
    const p2 = await fetch(`${url}${loc}`, { method: 'PATCH', body: data.subarray(100, 200), headers: { 'Content-Range': '100-199' } });
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.get('range'), '0-199');
    // Not visible before completion.
    const early = await fetch(`${url}/v2/chunked/blobs/${d}`, { method: 'HEAD' });
    assert.equal(early.status, 404);
    const put = await fetch(`${url}${loc}?digest=${d}`, { method: 'PUT', body: data.subarray(200), headers: { 'Content-Range': '200-299' } });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('docker-content-digest'), d);
    const get = await fetch(`${url}/v2/chunked/blobs/${d}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
    // The session is gone.
    const gone = await fetch(`${url}${loc}`);
    assert.equal(gone.status, 404);
    assert.equal(await errCode(gone), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('streamed PATCH without Content-Range, then PUT with no body', async () => {
    const parts = [Buffer.alloc(70_000, 1), Buffer.alloc(90_000, 2), Buffer.alloc(10, 3)];
    const whole = Buffer.concat(parts);
    const post = await fetch(`${url}/v2/streamed/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(new Uint8Array(p));
        c.close();
      },
    });
    const patch = await fetch(`${url}${loc}`, { method: 'PATCH', body, duplex: 'half' } as RequestInit);
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get('range'), `0-${whole.length - 1}`);
    const put = await fetch(`${url}${patch.headers.get('location')}?digest=${sha(whole)}`, { method: 'PUT' });
    assert.equal(put.status, 201);
    const get = await fetch(`${url}/v2/streamed/blobs/${sha(whole)}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), whole);
  });

  test('digest mismatch at completion → 400 DIGEST_INVALID, nothing published or left behind', async () => {
    const data = Buffer.from('the real content');
    const wrong = sha('something else');
    const mono = await fetch(`${url}/v2/mismatch/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: data });
    assert.equal(mono.status, 400);
    assert.equal(await errCode(mono), 'DIGEST_INVALID');
    const post = await fetch(`${url}/v2/mismatch/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    await fetch(`${url}${loc}`, { method: 'PATCH', body: data });
    const put = await fetch(`${url}${loc}?digest=${wrong}`, { method: 'PUT' });
    assert.equal(put.status, 400);
    assert.equal(await errCode(put), 'DIGEST_INVALID');
    assert.equal(existsSync(join(root, 'blobs', 'sha256', sha(data).slice(7))), false);
    assert.deepEqual(await readdir(join(root, 'uploads')), []);
    assert.equal(existsSync(join(root, 'blobs', 'sha256', wrong.slice(7))), false);
    const head = await fetch(`${url}/v2/mismatch/blobs/${wrong}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    const bad = await fetch(`${url}/v2/mismatch/blobs/uploads/?digest=sha256:xyz`, { method: 'POST', body: data });
    assert.equal(bad.status, 400);
    assert.equal(await errCode(bad), 'DIGEST_INVALID');
  });

  test('clients that abort an upload mid-body leave a usable server and a resumable upload', async () => {
    const post = await fetch(`${url}/v2/aborted/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    const first = Buffer.alloc(300_000, 7);
    // A PATCH (and a monolithic POST) whose body stops half-way, the connection then destroyed.
    for (const target of [`${url}${loc}`, `${url}/v2/aborted/blobs/uploads/?digest=${sha(first)}`]) {
      await new Promise<void>((resolve) => {
        const req = httpRequest(target, { method: target.includes('?digest=') ? 'POST' : 'PATCH', agent: false, headers: { 'Content-Length': String(first.length * 2) } });
        req.on('error', () => resolve());
        req.on('response', () => resolve());
        req.write(first, () => setTimeout(() => { req.destroy(); resolve(); }, 50));
      });
    }
    // let the server finish with the aborted bodies (not observable from outside: the upload's range may still grow)
    await sleep(100);
    const st = await fetch(`${url}${loc}`);
    assert.equal(st.status, 204, 'the server is alive and the upload still there');
    const got = Number(st.headers.get('range')!.split('-')[1]) + 1;
    assert.ok(got > 0 && got <= first.length, `received part of the body (${got})`);
    // Resume from where it stopped.
    const rest = Buffer.alloc(first.length - got, 7);
    const put = await fetch(`${url}${loc}?digest=${sha(first)}`, { method: 'PUT', body: rest, headers: { 'Content-Range': `${got}-${first.length - 1}` } });
    assert.equal(put.status, 201);
    const head = await fetch(`${url}/v2/aborted/blobs/${sha(first)}`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(first.length));
  });

  test('DELETE of an upload cancels it', async () => {
    const post = await fetch(`${url}/v2/cancel/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    await (await fetch(`${url}${loc}`, { method: 'PATCH', body: 'abc' })).arrayBuffer();
    const del = await fetch(`${url}${loc}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    const st = await fetch(`${url}${loc}`);
    assert.equal(st.status, 404);
    assert.equal(await errCode(st), 'BLOB_UPLOAD_UNKNOWN');
    const put = await fetch(`${url}${loc}?digest=${sha('abc')}`, { method: 'PUT' });
    assert.equal(put.status, 404);
    assert.equal(await errCode(put), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('cross-repository mount: 201 when the source has the blob, 202 (a new upload) otherwise', async () => {
    const data = Buffer.from('mount me');
    const d = await pushBlob(url, 'library/src', data);
    const m = await fetch(`${url}/v2/dst/app/blobs/uploads/?mount=${d}&from=library/src`, { method: 'POST' });
    assert.equal(m.status, 201);
    assert.equal(m.headers.get('location'), `/v2/dst/app/blobs/${d}`);
    assert.equal(m.headers.get('docker-content-digest'), d);
    const get = await fetch(`${url}/v2/dst/app/blobs/${d}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
    const missing = sha('not there');
    const m2 = await fetch(`${url}/v2/dst/app/blobs/uploads/?mount=${missing}&from=library/src`, { method: 'POST' });
    assert.equal(m2.status, 202);
    assert.match(m2.headers.get('location')!, /\/v2\/dst\/app\/blobs\/uploads\//);
    // A repository without the blob cannot be the source of a mount.
    const m3 = await fetch(`${url}/v2/dst/other/blobs/uploads/?mount=${d}&from=nobody/here`, { method: 'POST' });
    assert.equal(m3.status, 202);
  });

  test('manifests: blobs must exist, exact bytes back by tag and digest, Content-Type, HEAD, digest PUT', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = Buffer.from('layer bytes');
    const manifest = imageManifest(config, [layer]);
    const missing = await putManifest(url, 'man/app', 'v1', manifest);
    assert.equal(missing.status, 400);
    assert.equal(await errCode(missing), 'MANIFEST_BLOB_UNKNOWN');
    await pushBlob(url, 'man/app', config);
    await pushBlob(url, 'man/app', layer);
    const put = await putManifest(url, 'man/app', 'v1', manifest);
    assert.equal(put.status, 201);
    const d = sha(manifest);
    assert.equal(put.headers.get('docker-content-digest'), d);
    assert.equal(put.headers.get('location'), `/v2/man/app/manifests/${d}`);
    for (const ref of ['v1', d]) {
      const get = await fetch(`${url}/v2/man/app/manifests/${ref}`, { headers: { Accept: MT_OCI } });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), MT_OCI);
      assert.equal(get.headers.get('docker-content-digest'), d);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), manifest);
    }
    const head = await fetch(`${url}/v2/man/app/manifests/v1`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(manifest.length));
    assert.equal(head.headers.get('docker-content-digest'), d);
    // Docker schema 2 under its own media type, pushed by digest.
    const dm = imageManifest(config, [layer], {}, MT_DOCKER);
    const wrong = await putManifest(url, 'man/app', sha('x'), dm, MT_DOCKER);
    assert.equal(wrong.status, 400);
    assert.equal(await errCode(wrong), 'DIGEST_INVALID');
    const byDigest = await putManifest(url, 'man/app', sha(dm), dm, MT_DOCKER);
    assert.equal(byDigest.status, 201);
    const gd = await fetch(`${url}/v2/man/app/manifests/${sha(dm)}`);
    assert.equal(gd.headers.get('content-type'), MT_DOCKER);
    assert.deepEqual(Buffer.from(await gd.arrayBuffer()), dm);
    // An index may only reference manifests the repository has.
    const index = (children: string[]) => Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT_INDEX,
      manifests: children.map((c) => ({ mediaType: MT_OCI, digest: c, size: 10, platform: { os: 'linux', architecture: 'amd64' } })),
    }));
    const badIdx = await putManifest(url, 'man/app', 'multi', index([sha('nope')]), MT_INDEX);
    assert.equal(badIdx.status, 400);
    assert.equal(await errCode(badIdx), 'MANIFEST_BLOB_UNKNOWN');
    const idx = index([d]);
    const okIdx = await putManifest(url, 'man/app', 'multi', idx, MT_INDEX);
    assert.equal(okIdx.status, 201);
    const gi = await fetch(`${url}/v2/man/app/manifests/multi`);
    assert.equal(gi.headers.get('content-type'), MT_INDEX);
    assert.deepEqual(Buffer.from(await gi.arrayBuffer()), idx);
    // Invalid JSON / schema 1.
    const inv = await putManifest(url, 'man/app', 'bad', Buffer.from('{not json'));
    assert.equal(inv.status, 400);
    assert.equal(await errCode(inv), 'MANIFEST_INVALID');
    const s1 = await putManifest(url, 'man/app', 'bad', Buffer.from('{"schemaVersion":1}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws');
    assert.equal(s1.status, 400);
    // Unknown ones.
    const unk = await fetch(`${url}/v2/man/app/manifests/nope`);
    assert.equal(unk.status, 404);
    assert.equal(await errCode(unk), 'MANIFEST_UNKNOWN');
  });

  test('manifest and tag delete, blob delete', async () => {
    const img = await pushImage(url, 'del/app', 'v1', 'del');
    const tagRes = await putManifest(url, 'del/app', 'v2', img.manifest);
    assert.equal(tagRes.status, 201);
    // Deleting a tag keeps the manifest.
    const dt = await fetch(`${url}/v2/del/app/manifests/v2`, { method: 'DELETE' });
    assert.equal(dt.status, 202);
    assert.equal((await fetch(`${url}/v2/del/app/manifests/v2`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(`${url}/v2/del/app/manifests/${img.digest}`, { method: 'HEAD' })).status, 200);
    const dm = await fetch(`${url}/v2/del/app/manifests/${img.digest}`, { method: 'DELETE' });
    assert.equal(dm.status, 202);
    assert.equal((await fetch(`${url}/v2/del/app/manifests/v1`, { method: 'HEAD' })).status, 404);
    const again = await fetch(`${url}/v2/del/app/manifests/${img.digest}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(await errCode(again), 'MANIFEST_UNKNOWN');
    const tags = (await (await fetch(`${url}/v2/del/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, []);
    const ld = sha(img.layers[0]!);
    const db = await fetch(`${url}/v2/del/app/blobs/${ld}`, { method: 'DELETE' });
    assert.equal(db.status, 202);
    assert.equal((await fetch(`${url}/v2/del/app/blobs/${ld}`, { method: 'HEAD' })).status, 404);
    const db2 = await fetch(`${url}/v2/del/app/blobs/${ld}`, { method: 'DELETE' });
    assert.equal(db2.status, 404);
    assert.equal(await errCode(db2), 'BLOB_UNKNOWN');
  });

  test('tags list with pagination (n, last, Link)', async () => {
    const img = await pushImage(url, 'paged/app', 'c', 'paged');
    for (const t of ['e', 'a', 'd', 'b']) {
      const r = await putManifest(url, 'paged/app', t, img.manifest);
      assert.equal(r.status, 201);
    }
    const all = await fetch(`${url}/v2/paged/app/tags/list`);
    assert.equal(all.headers.get('link'), null);
    assert.deepEqual(await all.json(), { name: 'paged/app', tags: ['a', 'b', 'c', 'd', 'e'] });
    const seen: string[] = [];
    let next: string | null = '/v2/paged/app/tags/list?n=2';
    let pages = 0;
    while (next) {
      const r: Response = await fetch(`${url}${next}`);
      const body = (await r.json()) as { tags: string[] };
      assert.ok(body.tags.length <= 2);
      seen.push(...body.tags);
      const link = r.headers.get('link');
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
      pages++;
    }
    assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(pages, 3);
    const after = await fetch(`${url}/v2/paged/app/tags/list?last=c`);
    assert.deepEqual(((await after.json()) as { tags: string[] }).tags, ['d', 'e']);
    const unknown = await fetch(`${url}/v2/never/pushed/tags/list`);
    assert.equal(unknown.status, 404);
    assert.equal(await errCode(unknown), 'NAME_UNKNOWN');
  });

  test('catalog with pagination', async () => {
    await pushImage(url, 'cat/one', 'v', 'c1');
    await pushImage(url, 'cat/two', 'v', 'c2');
    const all = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(all.repositories.includes('cat/one') && all.repositories.includes('cat/two'));
    assert.deepEqual(all.repositories, [...all.repositories].sort());
    const seen: string[] = [];
    let next: string | null = '/v2/_catalog?n=3';
    while (next) {
      const r: Response = await fetch(`${url}${next}`);
      const body = (await r.json()) as { repositories: string[] };
      assert.ok(body.repositories.length <= 3);
      seen.push(...body.repositories);
      const link = r.headers.get('link');
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    }
    const again = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(seen, again.repositories);
  });

  test('referrers: OCI-Subject on PUT, listing, artifactType filter, unknown subject → empty index', async () => {
    const img = await pushImage(url, 'ref/app', 'v1', 'ref');
    const empty = Buffer.from('{}');
    const ed = await pushBlob(url, 'ref/app', empty);
    const sigBlob = Buffer.from('signature');
    await pushBlob(url, 'ref/app', sigBlob);
    const artifact = (type: string, ann: string) => Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT_OCI, artifactType: type,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: ed, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: sha(sigBlob), size: sigBlob.length }],
      subject: { mediaType: MT_OCI, digest: img.digest, size: img.manifest.length },
      annotations: { note: ann },
    }));
    const sig = artifact('application/vnd.example.sig', 's');
    const sbom = artifact('application/vnd.example.sbom', 'b');
    for (const a of [sig, sbom]) {
      const r = await putManifest(url, 'ref/app', sha(a), a);
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('oci-subject'), img.digest);
    }
    const all = await fetch(`${url}/v2/ref/app/referrers/${img.digest}`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), MT_INDEX);
    const idx = (await all.json()) as { mediaType: string; manifests: { digest: string; artifactType: string; size: number; annotations: Record<string, string> }[] };
    assert.equal(idx.mediaType, MT_INDEX);
    assert.deepEqual(idx.manifests.map((m) => m.digest).sort(), [sha(sig), sha(sbom)].sort());
    const sigEntry = idx.manifests.find((m) => m.digest === sha(sig))!;
    assert.equal(sigEntry.artifactType, 'application/vnd.example.sig');
    assert.equal(sigEntry.size, sig.length);
    assert.deepEqual(sigEntry.annotations, { note: 's' });
    const filtered = await fetch(`${url}/v2/ref/app/referrers/${img.digest}?artifactType=application/vnd.example.sbom`);
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    const f = (await filtered.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(f.manifests.map((m) => m.digest), [sha(sbom)]);
    const none = await fetch(`${url}/v2/ref/app/referrers/${sha('nothing')}`);
    assert.equal(none.status, 200);
    assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);
    // Deleting a referrer removes it from the list.
    assert.equal((await fetch(`${url}/v2/ref/app/manifests/${sha(sig)}`, { method: 'DELETE' })).status, 202);
    const after = (await (await fetch(`${url}/v2/ref/app/referrers/${img.digest}`)).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(after.manifests.map((m) => m.digest), [sha(sbom)]);
  });

  test('invalid names → 400 NAME_INVALID; unknown routes and methods', async () => {
    const r = await fetch(`${url}/v2/Upper/Case/tags/list`);
    assert.equal(r.status, 400);
    assert.equal(await errCode(r), 'NAME_INVALID');
    const r2 = await fetch(`${url}/v2/a..b/blobs/uploads/`, { method: 'POST' });
    assert.equal(r2.status, 400);
    assert.equal(await errCode(r2), 'NAME_INVALID');
    const r3 = await fetch(`${url}/v2/ok/tags/list`, { method: 'POST' });
    assert.equal(r3.status, 405);
    assert.equal(await errCode(r3), 'UNSUPPORTED');
  });

  test('garbage collection deletes only unreferenced blobs; the image still pulls', async () => {
    const gcRoot = await tmp();
    const s = await startRegistryServer({ root: gcRoot, addr: '127.0.0.1:0' });
    try {
      const img = await pushImage(s.url, 'gc/app', 'v1', 'gc');
      const gone = await pushImage(s.url, 'gc/old', 'v1', 'old');
      const orphan = await pushBlob(s.url, 'gc/app', Buffer.from('orphan blob'));
      assert.equal((await fetch(`${s.url}/v2/gc/old/manifests/${gone.digest}`, { method: 'DELETE' })).status, 202);
      const dry = await collectGarbage(gcRoot, { dryRun: true });
      const goneDigests = [orphan, gone.digest, sha(gone.config), ...gone.layers.map(sha)].sort();
      assert.deepEqual([...dry.deleted].sort(), goneDigests);
      assert.ok(existsSync(join(gcRoot, 'blobs', 'sha256', orphan.slice(7))));
      const r = await collectGarbage(gcRoot);
      assert.deepEqual([...r.deleted].sort(), goneDigests);
      const left = (await readdir(join(gcRoot, 'blobs', 'sha256'))).map((h) => `sha256:${h}`).sort();
      assert.deepEqual(left, [img.digest, sha(img.config), ...img.layers.map(sha)].sort());
      assert.equal((await fetch(`${s.url}/v2/gc/app/blobs/${orphan}`, { method: 'HEAD' })).status, 404);
      const m = await fetch(`${s.url}/v2/gc/app/manifests/v1`);
      assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifest);
      for (const l of img.layers) {
        const b = await fetch(`${s.url}/v2/gc/app/blobs/${sha(l)}`);
        assert.deepEqual(Buffer.from(await b.arrayBuffer()), l);
      }
    } finally {
      await s.close();
      await rm(gcRoot, { recursive: true, force: true });
    }
  });

  test('garbage collection with deleteUntagged keeps what tags reach (index children, referrers)', async () => {
    const gcRoot = await tmp();
    const s = await startRegistryServer({ root: gcRoot, addr: '127.0.0.1:0' });
    try {
      const tagged = await pushImage(s.url, 'gcu/app', 'v1', 'tagged');
      const child = await pushImage(s.url, 'gcu/app', 'tmp', 'child');
      const loose = await pushImage(s.url, 'gcu/app', 'tmp2', 'loose');
      const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [{ mediaType: MT_OCI, digest: child.digest, size: child.manifest.length }] }));
      assert.equal((await putManifest(s.url, 'gcu/app', 'multi', idx, MT_INDEX)).status, 201);
      const empty = Buffer.from('{}');
      const ed = await pushBlob(s.url, 'gcu/app', empty);
      const sig = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI, artifactType: 'application/x.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: ed, size: 2 }, layers: [],
        subject: { mediaType: MT_OCI, digest: tagged.digest, size: tagged.manifest.length } }));
      assert.equal((await putManifest(s.url, 'gcu/app', sha(sig), sig)).status, 201);
      // Untag the child (still reached through the index) and the loose image (reached by nothing).
      for (const t of ['tmp', 'tmp2']) assert.equal((await fetch(`${s.url}/v2/gcu/app/manifests/${t}`, { method: 'DELETE' })).status, 202);
      const plain = await collectGarbage(gcRoot, { dryRun: true });
      assert.deepEqual(plain.deleted, [], 'without deleteUntagged every manifest keeps its blobs');
      const r = await collectGarbage(gcRoot, { deleteUntagged: true });
      assert.deepEqual(r.untagged, [`gcu/app@${loose.digest}`]);
      assert.deepEqual([...r.deleted].sort(), [loose.digest, sha(loose.config), ...loose.layers.map(sha)].sort());
      for (const ref of ['v1', child.digest, sha(sig), 'multi']) {
        assert.equal((await fetch(`${s.url}/v2/gcu/app/manifests/${ref}`, { method: 'HEAD' })).status, 200, ref);
      }
      assert.equal((await fetch(`${s.url}/v2/gcu/app/manifests/${loose.digest}`, { method: 'HEAD' })).status, 404);
      const refs = (await (await fetch(`${s.url}/v2/gcu/app/referrers/${tagged.digest}`)).json()) as { manifests: { digest: string }[] };
      assert.deepEqual(refs.manifests.map((m) => m.digest), [sha(sig)]);
    } finally {
      await s.close();
      await rm(gcRoot, { recursive: true, force: true });
    }
  });

  test('committed data survives a restart on the same root; an upload in progress resumes there', async () => {
    const r2 = await tmp();
    let s = await startRegistryServer({ root: r2, addr: '127.0.0.1:0' });
    const img = await pushImage(s.url, 'persist/app', 'v1', 'persist');
    const post = await fetch(`${s.url}/v2/persist/app/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    await (await fetch(`${s.url}${loc}`, { method: 'PATCH', body: 'half' })).arrayBuffer();
    await s.close();
    s = await startRegistryServer({ root: r2, addr: '127.0.0.1:0' });
    try {
      const m = await fetch(`${s.url}/v2/persist/app/manifests/v1`);
      assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifest);
      const st = await fetch(`${s.url}${loc}`);
      assert.equal(st.status, 204);
      assert.equal(st.headers.get('range'), '0-3');
      // The new process has no running hash: it hashes the file, and still catches a wrong digest.
      const bad = await fetch(`${s.url}${loc}?digest=${sha('half-wrong')}`, { method: 'PUT', body: '-done', headers: { 'Content-Range': '4-8' } });
      assert.equal(bad.status, 400);
      assert.equal(await errCode(bad), 'DIGEST_INVALID');
      const post2 = await fetch(`${s.url}/v2/persist/app/blobs/uploads/`, { method: 'POST' });
      const loc2 = post2.headers.get('location')!;
      await (await fetch(`${s.url}${loc2}`, { method: 'PATCH', body: 'half' })).arrayBuffer();
      await s.close();
      s = await startRegistryServer({ root: r2, addr: '127.0.0.1:0' });
      const put = await fetch(`${s.url}${loc2}?digest=${sha('half-done')}`, { method: 'PUT', body: '-done' });
      assert.equal(put.status, 201);
      const b = await fetch(`${s.url}/v2/persist/app/blobs/${sha('half-done')}`);
      assert.equal(await b.text(), 'half-done');
    } finally {
      await s.close();
      await rm(r2, { recursive: true, force: true });
    }
  });
});

describe('registry server, auth', () => {
  let root: string;
  let htpasswd: string;
  before(async () => {
    root = await tmp();
    htpasswd = join(root, 'htpasswd');
    await execFileP('htpasswd', ['-Bbc', htpasswd, 'alice', 'wonderland']);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('htpasswd basic auth: 401 with WWW-Authenticate, wrong password refused, right one accepted', async () => {
    const s = await startRegistryServer({ root: join(root, 'basic'), addr: '127.0.0.1:0', htpasswd, realm: 'test-realm' });
    try {
      const anon = await fetch(`${s.url}/v2/`);
      assert.equal(anon.status, 401);
      assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="test-realm"');
      assert.equal(anon.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.equal(await errCode(anon), 'UNAUTHORIZED');
      const basic = (u: string, p: string) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
      const wrong = await fetch(`${s.url}/v2/`, { headers: basic('alice', 'nope') });
      assert.equal(wrong.status, 401);
      await wrong.arrayBuffer();
      const nouser = await fetch(`${s.url}/v2/`, { headers: basic('bob', 'wonderland') });
      assert.equal(nouser.status, 401);
      await nouser.arrayBuffer();
      const ok = await fetch(`${s.url}/v2/`, { headers: basic('alice', 'wonderland') });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      const up = await fetch(`${s.url}/v2/auth/app/blobs/uploads/?digest=${sha('x')}`, { method: 'POST', body: 'x' });
      assert.equal(up.status, 401);
      await up.arrayBuffer();
      const d = await pushBlob(s.url, 'auth/app', Buffer.from('x'), basic('alice', 'wonderland'));
      assert.equal(d, sha('x'));
    } finally {
      await s.close();
    }
  });

  test('token auth: Bearer challenge with scope, token from /auth/token, scope enforced', async () => {
    const s = await startRegistryServer({ root: join(root, 'token'), addr: '127.0.0.1:0', htpasswd, token: { service: 'test-svc' } });
    try {
      const anon = await fetch(`${s.url}/v2/tok/app/tags/list`);
      assert.equal(anon.status, 401);
      const ch = anon.headers.get('www-authenticate')!;
      assert.equal(ch, `Bearer realm="${s.url}/auth/token",service="test-svc",scope="repository:tok/app:pull"`);
      await anon.arrayBuffer();
      const realm = /realm="([^"]+)"/.exec(ch)![1]!;
      const getToken = async (scope: string, creds?: string) => {
        const r = await fetch(`${realm}?service=test-svc&scope=${encodeURIComponent(scope)}`, {
          headers: creds ? { Authorization: `Basic ${Buffer.from(creds).toString('base64')}` } : {},
        });
        return { status: r.status, body: (await r.json()) as { token: string } };
      };
      const bad = await getToken('repository:tok/app:pull', 'alice:wrong');
      assert.equal(bad.status, 401);
      const pullOnly = await getToken('repository:tok/app:pull', 'alice:wonderland');
      assert.equal(pullOnly.status, 200);
      const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
      // Pull-only token cannot push.
      const push = await fetch(`${s.url}/v2/tok/app/blobs/uploads/`, { method: 'POST', headers: bearer(pullOnly.body.token) });
      assert.equal(push.status, 401);
      assert.match(push.headers.get('www-authenticate')!, /error="insufficient_scope"/);
      await push.arrayBuffer();
      const pushTok = await getToken('repository:tok/app:pull,push', 'alice:wonderland');
      const d = await pushBlob(s.url, 'tok/app', Buffer.from('tokened'), bearer(pushTok.body.token));
      const head = await fetch(`${s.url}/v2/tok/app/blobs/${d}`, { method: 'HEAD', headers: bearer(pullOnly.body.token) });
      assert.equal(head.status, 200);
      // A token for another repository grants nothing here.
      const other = await getToken('repository:other/app:pull', 'alice:wonderland');
      const o = await fetch(`${s.url}/v2/tok/app/blobs/${d}`, { method: 'HEAD', headers: bearer(other.body.token) });
      assert.equal(o.status, 401);
      // Anonymous tokens carry no access when users are configured; forged tokens fail.
      const anonTok = await getToken('repository:tok/app:pull');
      const a = await fetch(`${s.url}/v2/tok/app/blobs/${d}`, { method: 'HEAD', headers: bearer(anonTok.body.token) });
      assert.equal(a.status, 401);
      // OAuth2 password grant (POST form), as containerd sends it.
      const form = await fetch(realm, {
        method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wonderland', service: 'test-svc', scope: 'repository:tok/app:pull', client_id: 'test' }).toString(),
      });
      assert.equal(form.status, 200);
      const fb = (await form.json()) as { access_token: string; scope: string };
      assert.equal(fb.scope, 'repository:tok/app:pull');
      assert.equal((await fetch(`${s.url}/v2/tok/app/blobs/${d}`, { method: 'HEAD', headers: bearer(fb.access_token) })).status, 200);
      const badForm = await fetch(realm, {
        method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'nope', service: 'test-svc' }).toString(),
      });
      assert.equal(badForm.status, 401);
      await badForm.arrayBuffer();
      const refresh = await fetch(realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x' }).toString() });
      assert.equal(refresh.status, 400);
      assert.equal(((await refresh.json()) as { error: string }).error, 'unsupported_grant_type');
      const parts = pushTok.body.token.split('.');
      const forged = [parts[0], Buffer.from(JSON.stringify({ iss: 'wharf-registry', aud: 'test-svc', exp: 9e9, access: [{ type: 'repository', name: 'tok/app', actions: ['*'] }] })).toString('base64url'), parts[2]].join('.');
      const fr = await fetch(`${s.url}/v2/tok/app/blobs/${d}`, { method: 'HEAD', headers: bearer(forged) });
      assert.equal(fr.status, 401);
    } finally {
      await s.close();
    }
  });

  test('TLS with the given certificate and key', async () => {
    const dir = join(root, 'tls');
    await execFileP('mkdir', ['-p', dir]);
    await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const s = await startRegistryServer({ root: join(dir, 'data'), addr: '127.0.0.1:0', tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
    try {
      assert.match(s.url, /^https:\/\//);
      const r = await new Promise<import('node:http').IncomingMessage>((res, rej) =>
        httpsGet(`${s.url}/v2/`, { rejectUnauthorized: false, agent: false }, res).on('error', rej));
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      r.resume();
      // Plain HTTP is not answered as HTTP.
      await assert.rejects(fetch(s.url.replace('https:', 'http:') + '/v2/'));
    } finally {
      await s.close();
    }
  });
});

test('--addr 0.0.0.0 with htpasswd and no TLS: the bound address is shown, with a clear-text credentials warning', async () => {
  const root = await tmp();
  const htpasswd = join(root, 'htpasswd');
  await execFileP('htpasswd', ['-Bbc', htpasswd, 'u', 'p']);
  const servers: RegistryServer[] = [];
  try {
    const wide = await startRegistryServer({ root: join(root, 'a'), addr: '0.0.0.0:0', htpasswd });
    servers.push(wide);
    const port = new URL(wide.url).port;
    assert.equal(wide.listenUrl, `http://0.0.0.0:${port}`);
    assert.equal(wide.url, `http://127.0.0.1:${port}`); // what a client on this host uses
    assert.match(wide.warning ?? '', /--htpasswd without TLS on 0\.0\.0\.0:\d+: Basic credentials travel in clear text/);
    // loopback, or no auth, or TLS: no warning
    const local = await startRegistryServer({ root: join(root, 'b'), addr: '127.0.0.1:0', htpasswd });
    servers.push(local);
    assert.equal(local.warning, undefined);
    assert.equal(local.listenUrl, local.url);
    const open = await startRegistryServer({ root: join(root, 'c'), addr: '0.0.0.0:0' });
    servers.push(open);
    assert.equal(open.warning, undefined);
  } finally {
    for (const s of servers) await s.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('htpasswd file with a comment and a non-bcrypt entry', async () => {
  const root = await tmp();
  try {
    const file = join(root, 'htpasswd');
    const { stdout } = await execFileP('htpasswd', ['-nbB', 'carol', 'pw']);
    await writeFile(file, `# users\nplain:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n${stdout.trim()}\n`);
    const s = await startRegistryServer({ root: join(root, 'd'), addr: '127.0.0.1:0', htpasswd: file });
    try {
      const b = (u: string, p: string) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
      const plain = await fetch(`${s.url}/v2/`, { headers: b('plain', 'password') });
      assert.equal(plain.status, 401);
      await plain.arrayBuffer();
      const carol = await fetch(`${s.url}/v2/`, { headers: b('carol', 'pw') });
      assert.equal(carol.status, 200);
      await carol.arrayBuffer();
    } finally {
      await s.close();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('token auth with an external token server key (ES256 and RS256): signature, issuer, audience, expiry, scope', async () => {
  const root = await tmp();
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = (alg: 'ES256' | 'RS256', key: typeof ec.privateKey, claims: Record<string, unknown>) => {
    const input = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
    const sig = cryptoSign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
    return `${input}.${sig.toString('base64url')}`;
  };
  const now = Math.floor(Date.now() / 1000);
  const good = { iss: 'ext-issuer', aud: 'ext-svc', exp: now + 60, nbf: now - 5, sub: 'x', access: [{ type: 'repository', name: 'ext/app', actions: ['pull', 'push'] }] };
  try {
    for (const [alg, pair] of [['ES256', ec], ['RS256', rsa]] as const) {
      const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const s = await startRegistryServer({
        root: join(root, alg), addr: '127.0.0.1:0',
        token: { realm: 'https://auth.example.test/token', service: 'ext-svc', issuer: 'ext-issuer', publicKeyPem: pem },
      });
      try {
        const anon = await fetch(`${s.url}/v2/ext/app/tags/list`);
        assert.equal(anon.headers.get('www-authenticate'), 'Bearer realm="https://auth.example.test/token",service="ext-svc",scope="repository:ext/app:pull"');
        await anon.arrayBuffer();
        // The server issues no tokens itself in this mode.
        assert.equal((await fetch(`${s.url}/auth/token?scope=repository:ext/app:pull`)).status, 404);
        const status = async (tok: string) => {
          const r = await fetch(`${s.url}/v2/ext/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
          await r.arrayBuffer();
          return r.status;
        };
        assert.equal(await status(jwt(alg, pair.privateKey, good)), 202, `${alg} token accepted`);
        assert.equal(await status(jwt(alg, pair.privateKey, { ...good, iss: 'someone-else' })), 401);
        assert.equal(await status(jwt(alg, pair.privateKey, { ...good, aud: 'other-svc' })), 401);
        assert.equal(await status(jwt(alg, pair.privateKey, { ...good, exp: now - 3600 })), 401);
        assert.equal(await status(jwt(alg, pair.privateKey, { ...good, access: [{ type: 'repository', name: 'ext/app', actions: ['pull'] }] })), 401);
        const other = alg === 'ES256' ? rsa : ec;
        const otherAlg = alg === 'ES256' ? 'RS256' : 'ES256';
        assert.equal(await status(jwt(otherAlg, other.privateKey, good)), 401, 'signed by another key');
      } finally {
        await s.close();
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** One request on a fresh connection (so that a cluster hands it to any worker). */
function fresh(url: string, method: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest(url, { method, agent: false, headers: { Connection: 'close', ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', rej);
    req.end(body);
  });
}

test('serveRegistry with 2 workers: a chunked upload spread over both workers completes and is verified', async () => {
  const root = await tmp();
  const h = await serveRegistry({ root, addr: '127.0.0.1:0', workers: 2 });
  try {
    const pids = new Set<string>();
    const parts = Array.from({ length: 8 }, (_, i) => Buffer.alloc(10_000 + i, 65 + i));
    const whole = Buffer.concat(parts);
    for (const expected of [sha(whole), sha('not it')]) {
      const post = await fresh(`${h.url}/v2/multi/worker/blobs/uploads/`, 'POST');
      assert.equal(post.status, 202);
      let loc = post.headers.location as string;
      let off = 0;
      for (const p of parts) {
        const r = await fresh(`${h.url}${loc}`, 'PATCH', p, { 'Content-Range': `${off}-${off + p.length - 1}`, 'Content-Type': 'application/octet-stream' });
        assert.equal(r.status, 202, r.body);
        off += p.length;
        assert.equal(r.headers.range, `0-${off - 1}`);
        loc = r.headers.location as string;
      }
      const put = await fresh(`${h.url}${loc}?digest=${expected}`, 'PUT');
      if (expected === sha(whole)) {
        assert.equal(put.status, 201, put.body);
        const get = await fetch(`${h.url}/v2/multi/worker/blobs/${expected}`);
        assert.deepEqual(Buffer.from(await get.arrayBuffer()), whole);
      } else {
        assert.equal(put.status, 400);
        assert.equal(JSON.parse(put.body).errors[0].code, 'DIGEST_INVALID');
      }
    }
    void pids;
  } finally {
    await h.close();
    await rm(root, { recursive: true, force: true });
  }
});
