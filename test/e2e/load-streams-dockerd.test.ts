/**
 * `docker save IMAGE | gzip | docker load` and its bzip2, xz and zstd forms load on wharfd as on Debian's dockerd;
 * a bad archive on POST /images/load is a 200 with an errorDetail line on both (docker-py's ImageLoadError);
 * a pull that cannot reach its registry has dockerd's status. Skipped when dockerd is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;
let work: string;
let tar = '';

before(async () => {
  if (!haveDockerd) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-loadstreams-'));
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  const b = await w.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  assert.equal((await w.docker(['tag', 'busybox', 'packed:1'])).code, 0);
  tar = join(work, 'packed.tar');
  const s = await w.docker(['save', '-o', tar, 'packed:1']);
  assert.equal(s.code, 0, show(s));
});
after(async () => {
  await Promise.all([w?.stop(), r?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const both = () => [['wharfd', w!], ['dockerd', r!]] as const;

test('save | gzip/bzip2/xz/zstd | load: the image loads as with dockerd', { skip: !haveDockerd }, async () => {
  const plainId = (await w!.docker(['inspect', '-f', '{{.Id}}', 'packed:1'])).stdout.trim();
  for (const tool of ['gzip', 'bzip2', 'xz', 'zstd']) {
    const packed = execFileSync(tool, ['-c', tar], { maxBuffer: 1 << 30 });
    const outs: Record<string, string> = {};
    // dockerd 20.10 knows no zstd archives (later dockerd does): zstd is checked on wharfd alone
    for (const [engine, d] of tool === 'zstd' ? both().slice(0, 1) : both()) {
      await d.docker(['rmi', '-f', 'packed:1']);
      const l = await d.docker(['load'], { input: packed });
      assert.equal(l.code, 0, `${engine} ${tool}: ${show(l)}`);
      outs[engine] = l.stdout;
      const id = await d.docker(['inspect', '-f', '{{.Id}}', 'packed:1']);
      assert.equal(id.stdout.trim(), plainId, `${engine} ${tool}: the same image`);
    }
    assert.equal(outs.wharfd, 'Loaded image: packed:1\n', tool);
    if (tool !== 'zstd') assert.equal(outs.wharfd, outs.dockerd, tool);
  }
  const run = await w!.docker(['run', '--rm', 'packed:1', 'echo', 'loaded-ok']);
  assert.equal(run.stdout, 'loaded-ok\n', show(run));
});

test('a bad archive: 200 and an errorDetail line, docker load exits 1 as with dockerd', { skip: !haveDockerd }, async () => {
  const junk = join(work, 'junk.bin');
  await writeFile(junk, Buffer.alloc(4096, 'not a tar archive, not compressed either '));
  const gzJunk = join(work, 'junk.gz');
  await writeFile(gzJunk, Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(200, 7)]));
  for (const file of [junk, gzJunk]) {
    const res: Record<string, { status: number; lines: { error?: string; errorDetail?: { message?: string } }[] }> = {};
    for (const [engine, d] of both()) {
      const body = await readFile(file);
      const x = await rawPost(d.sock, '/images/load?quiet=1', body);
      res[engine] = { status: x.status, lines: x.body.split(/\r?\n/).filter(Boolean).map((l) => JSON.parse(l)) };
      const cli = await d.docker(['load', '-i', file]);
      assert.equal(cli.code, 1, `${engine}: ${show(cli)}`);
    }
    assert.equal(res.dockerd!.status, 200, JSON.stringify(res.dockerd));
    assert.equal(res.wharfd!.status, 200, JSON.stringify(res.wharfd));
    const err = res.wharfd!.lines.find((l) => l.errorDetail);
    assert.ok(err && err.error && err.errorDetail!.message === err.error, JSON.stringify(res.wharfd));
    assert.ok(res.dockerd!.lines.some((l) => l.errorDetail), JSON.stringify(res.dockerd));
    const wl = await w!.wharf(['load', '-i', file]);
    assert.equal(wl.code, 1, show(wl));
    assert.ok(wl.stderr.includes(err!.error!), show(wl));
  }
  const images = await w!.docker(['images', '-q']);
  assert.equal(new Set(images.stdout.trim().split('\n')).size, 1, 'nothing half-made: only busybox/packed');
});

test('a pull whose registry cannot be reached: the status dockerd gives', { skip: !haveDockerd }, async () => {
  const st: Record<string, number> = {};
  for (const [engine, d] of both()) {
    const x = await rawPost(d.sock, '/images/create?fromImage=127.0.0.1%3A9%2Fnothing&tag=1', Buffer.alloc(0));
    st[engine] = x.status;
  }
  assert.equal(st.wharfd, st.dockerd, JSON.stringify(st));
});

async function rawPost(sock: string, path: string, body: Buffer): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: `/v1.41${path}`, method: 'POST', headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
