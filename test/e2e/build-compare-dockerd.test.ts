/**
 * The same Dockerfiles built by wharfd and by Debian's dockerd (its legacy builder, DOCKER_BUILDKIT=0) from the
 * same base image give the same image: the config (everything but the IDs of intermediate images) and, layer by
 * layer, the same file tree (paths, types, modes, owners, sizes, link targets, contents; not mtimes, which are
 * the build's time). Skipped when dockerd is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import tarStream from 'tar-stream';
import { sameBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;
let work: string;
let web: Server | undefined;
let webUrl = '';

before(async () => {
  if (!haveDockerd) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-buildcmp-'));
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  // ADD's URL sources: a Last-Modified, none, and a name from Content-Disposition
  web = createServer((req, res) => {
    if (req.url === '/files/notes.txt') res.writeHead(200, { 'Last-Modified': 'Tue, 03 Feb 2026 04:05:06 GMT' }).end('notes\n');
    else if (req.url === '/plain') res.writeHead(200).end('plain\n');
    else if (req.url === '/dl/') res.writeHead(200, { 'Content-Disposition': 'attachment; filename="named.txt"' }).end('named\n');
    else res.writeHead(404).end();
  });
  await new Promise<void>((res) => web!.listen(0, '127.0.0.1', res));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  await sameBusybox(w, r);
  // the context: files, a directory, a gzip tarball for ADD, an ignored file
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'dir', 'sub'), { recursive: true });
  await writeFile(join(ctx, 'hello.txt'), 'hello\n');
  await writeFile(join(ctx, 'dir', 'a.sh'), '#!/bin/sh\necho a\n', { mode: 0o755 });
  await writeFile(join(ctx, 'dir', 'sub', 'b.txt'), 'b'.repeat(5000));
  await writeFile(join(ctx, 'secret.txt'), 'not for the image\n');
  await writeFile(join(ctx, '.dockerignore'), 'secret.txt\n');
  const src = join(work, 'tarsrc');
  await mkdir(join(src, 'pkg'), { recursive: true });
  await writeFile(join(src, 'pkg', 'data.txt'), 'from a tarball\n');
  execFileSync('tar', ['-czf', join(ctx, 'pkg.tar.gz'), '-C', src, '--owner=0', '--group=0', 'pkg']);
  // a base image without Env (so without PATH): the same imported tar on both daemons
  const bare = join(work, 'bare');
  await mkdir(join(bare, 'etc'), { recursive: true });
  await writeFile(join(bare, 'etc', 'marker'), 'bare\n');
  execFileSync('tar', ['-cf', join(work, 'bare.tar'), '-C', bare, '--owner=0', '--group=0', 'etc']);
  for (const d of [w, r]) {
    const i = await d.docker(['import', join(work, 'bare.tar'), 'cmp/nopath']);
    assert.equal(i.code, 0, show(i));
  }
});
after(async () => {
  web?.close();
  await Promise.all([w?.stop(), r?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const DOCKERFILES: Record<string, string> = {
  metadata: [
    'FROM busybox',
    'LABEL org.example.name="compare" version=1',
    'ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH',
    'ARG FLAVOR=plain',
    'WORKDIR $APP_HOME/work',
    'EXPOSE 8080/tcp 53/udp',
    'VOLUME ["/data"]',
    'USER 1000:1000',
    'STOPSIGNAL SIGQUIT',
    'HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD ["true"]',
    'SHELL ["/bin/sh", "-e", "-c"]',
    'ONBUILD RUN echo child',
    'ENTRYPOINT ["/bin/sh", "-c"]',
    'CMD ["echo $APP_HOME"]',
  ].join('\n'),
  files: [
    'FROM busybox',
    'ARG WEB',
    'COPY hello.txt /etc/hello.txt',
    'COPY dir /opt/dir/',
    'COPY --chown=1000:1000 dir/sub/*.txt /home/user/',
    'ADD pkg.tar.gz /usr/local/',
    'ADD hello.txt /root/added.txt',
    'COPY . /ctx/',
    'ADD $WEB/files/notes.txt /web/',
    'ADD $WEB/plain /web/plain.txt',
    'ADD $WEB/dl/ /web/',
    'WORKDIR /opt',
    'RUN mkdir -p made/deep && echo made > made/deep/file && chmod 640 made/deep/file && ln -s deep/file made/link',
    'RUN rm /etc/hello.txt && rm -r /opt/dir/sub',
    'CMD ["cat", "/opt/made/deep/file"]',
  ].join('\n'),
  // dockerd's FROM gives a base without PATH the default one; an absolute WORKDIR keeps its trailing slash,
  // a relative one is joined and cleaned
  paths: [
    'FROM cmp/nopath',
    'ENV SEEN=$PATH',
    'WORKDIR /root/',
    'WORKDIR sub/',
    'LABEL at=$PWD',
    'WORKDIR /srv/',
  ].join('\n'),
  stages: [
    'ARG BASE=busybox',
    'FROM $BASE AS builder',
    'ARG VERSION=1.0',
    'RUN mkdir /out && echo "v$VERSION" > /out/version && echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd && mkdir /out/sub && ln -s ../version /out/sub/v',
    'FROM busybox',
    'ARG VERSION',
    'COPY --from=builder /out/version /srv/',
    'COPY --from=builder /etc/passwd /etc/passwd',
    'COPY --from=builder /out /srv/out/',
    'RUN chown 1234 /srv/version',
    'USER app',
    'RUN echo "as $(id -u)" > /tmp/whoami',
    'WORKDIR /srv',
  ].join('\n'),
};

for (const [name, text] of Object.entries(DOCKERFILES)) {
  test(`${name}: wharfd and dockerd build the same config and the same files, layer by layer`, { timeout: 300_000 }, async (t) => {
    if (!haveDockerd) return t.skip('dockerd is not installed');
    const file = join(work, 'ctx', `Dockerfile.${name}`);
    await writeFile(file, text + '\n');
    for (const d of [w!, r!]) {
      const b = await d.docker(['build', '--build-arg', 'VERSION=2.5', '--build-arg', `WEB=${webUrl}`, '-f', file, '-t', `cmp/${name}`, join(work, 'ctx')]);
      assert.equal(b.code, 0, `${d === w ? 'wharfd' : 'dockerd'}: ${show(b)}`);
    }
    const [mine, theirs] = await Promise.all([w!, r!].map((d) => imageOf(d, `cmp/${name}`)));
    assert.deepEqual(mine.config, theirs.config, 'the image config (container config, architecture, os)');
    assert.deepEqual(mine.history, theirs.history, 'history: the same steps, the same empty layers');
    assert.equal(mine.layers.length, theirs.layers.length, 'the same number of layers');
    for (let i = 0; i < mine.layers.length; i++) {
      assert.deepEqual(mine.layers[i], theirs.layers[i], `layer ${i}: the same entries`);
    }
    // the wharf CLI's context tar carries the headers the docker CLI writes: the same source hashes, the cache shared
    const wb = await w!.wharf(['build', '--build-arg', 'VERSION=2.5', '--build-arg', `WEB=${webUrl}`, '-f', file, '-t', `cmp/${name}-wharf`, join(work, 'ctx')]);
    assert.equal(wb.code, 0, show(wb));
    assert.doesNotMatch(wb.stdout, /Running in/, 'every step from the cache of the docker CLI build');
    assert.match(wb.stdout, /Using cache/);
    const viaWharf = await imageOf(w!, `cmp/${name}-wharf`);
    assert.deepEqual(viaWharf.history, theirs.history, 'wharf build: the same history as docker build');
  });
}

interface Entry { path: string; type: string; mode: string; uid: number; gid: number; size: number; link: string; sha: string; mtime?: number }

/** The saved image: its config without volatile fields, its history shape, each layer's entries. */
async function imageOf(d: Daemon, ref: string): Promise<{ config: Record<string, unknown>; history: unknown[]; layers: Entry[][] }> {
  const file = join(work, `${d === w ? 'w' : 'r'}-${ref.replace(/\W/g, '_')}.tar`);
  const s = await d.docker(['save', '-o', file, ref]);
  assert.equal(s.code, 0, show(s));
  const files = new Map<string, Buffer>();
  await untar(await readFile(file), (name, body) => { files.set(name.replace(/^\.\//, ''), body); });
  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string; Layers: string[] }[];
  const cfg = JSON.parse(files.get(manifest[0]!.Config)!.toString()) as Record<string, unknown>;
  const config = { ...(cfg.config as Record<string, unknown>) };
  delete config.Image; // the ID of the builder's previous step: differs with every build's timestamps
  delete config.Hostname; // the builder's intermediate container
  const history = (cfg.history as { created_by?: string; empty_layer?: boolean }[]).map((h) => ({
    // COPY/ADD name their sources by dockerd's content hashes (srchash.ts): these must be equal too
    created_by: h.created_by ?? '',
    empty_layer: h.empty_layer === true,
  }));
  const layers: Entry[][] = [];
  for (const l of manifest[0]!.Layers) {
    const entries: Entry[] = [];
    await untar(files.get(l)!, (name, body, h) => {
      const path = `/${name.replace(/^\.?\/*/, '').replace(/\/$/, '')}`;
      entries.push({
        path, type: h.type ?? 'file', mode: ((h.mode ?? 0) & 0o7777).toString(8), uid: h.uid ?? 0, gid: h.gid ?? 0,
        size: h.type === 'file' ? body.length : 0,
        // dockerd's tar writer links whiteouts that share the kernel's one whiteout inode (Linux >= 5.8) to the first
        // one's original name; the link of a whiteout means nothing to anyone who applies the layer
        link: name.split('/').pop()!.startsWith('.wh.') ? '' : h.linkname ?? '',
        sha: createHash('sha256').update(body).digest('hex').slice(0, 16),
        // downloads take Last-Modified, else the epoch: those mtimes are not the build's time
        ...(path.startsWith('/web/') ? { mtime: h.mtime?.getTime() ?? -1 } : {}),
      });
    });
    layers.push(entries.sort((a, b) => a.path.localeCompare(b.path)));
  }
  return { config: { config, architecture: cfg.architecture, os: cfg.os }, history, layers };
}

async function untar(buf: Buffer, onEntry: (name: string, body: Buffer, h: tarStream.Header) => void): Promise<void> {
  const ex = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => { ex.on('finish', resolve); ex.on('error', reject); });
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: unknown) => { chunks.push(c as Buffer); });
    stream.on('end', () => { onEntry(h.name, Buffer.concat(chunks), h); next(); });
  });
  ex.end(buf);
  await done;
}
