/**
 * RUN --mount through `docker build` (DOCKER_BUILDKIT=0: the Dockerfile reaches wharfd unchanged) against a real
 * wharfd. BuildKit is the reference (no BuildKit daemon here), stated from the Dockerfile reference
 * (docs.docker.com/reference/dockerfile/#run---mount):
 * - type=cache: "Cache directories for compilers and package managers"; contents persist across builds, are
 *   shared by `id` (default: the target), never part of the image; `docker builder prune` empties them.
 * - type=bind: "read-only by default" from the context or `from=` a stage/image; `rw` writes are discarded.
 * - type=tmpfs: a tmpfs at the target, `size` limits it.
 * A local HTTP server counts downloads: a pip/go-style step behind a changed source file downloads nothing twice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult, ok, writeTree } from '../support/cli.js';

/** WHARF_E2E_DAEMON=dockerd: dockerd 20.10's classic builder has none of this (BuildKit is the reference here). */
const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
const only = { skip: reference && 'BuildKit-era syntax: dockerd 20.10\'s classic builder refuses it' };
let d: Daemon;
let work: string;
let web: Server;
let base = '';
const hits: string[] = [];

before(async () => {
  if (reference) return;
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-mounts-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  web = createServer((q, s) => { hits.push(q.url ?? ''); s.end(`package ${q.url}\n`); });
  await new Promise<void>((r) => web.listen(0, '0.0.0.0', r));
  const ip = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.'))?.address
    ?? Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)!.address;
  base = `http://${ip}:${(web.address() as { port: number }).port}`;
});
after(async () => {
  web?.close();
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const context = (name: string, files: Record<string, string>): Promise<string> => writeTree(join(work, name), files);

/** The image's layers as one listing: every path and file content of every layer (via save). */
async function imageText(ref: string): Promise<string> {
  const tar = join(work, `${ref.replace(/\W/g, '_')}.tar`);
  ok(await d.docker(['save', '-o', tar, ref]));
  const out = join(work, `${ref.replace(/\W/g, '_')}-x`);
  await mkdir(out, { recursive: true });
  const { execFileSync } = await import('node:child_process');
  execFileSync('tar', ['-xf', tar, '-C', out]);
  let all = '';
  for (const l of execFileSync('sh', ['-c', `find ${out} -name '*.tar' -o -name 'layer.tar' | sort -u`]).toString().trim().split('\n').filter(Boolean)) {
    all += execFileSync('tar', ['-tvf', l], { maxBuffer: 1 << 28 }).toString('latin1');
    all += execFileSync('sh', ['-c', `tar -xOf ${l} 2>/dev/null || true`], { maxBuffer: 1 << 28 }).toString('latin1');
  }
  return all;
}

test('type=cache: a pip-style install downloads each package once across builds; the cache is not in the image', only, async () => {
  const pkgs = ['alpha', 'beta', 'gamma', 'delta'];
  const dockerfile = `FROM busybox
COPY requirements.txt /app/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \\
    for p in $(cat /app/requirements.txt); do \\
      [ -f /root/.cache/pip/$p ] || wget -q -O /root/.cache/pip/$p ${base}/pkg/$p; \\
      cp /root/.cache/pip/$p /app/$p.installed; \\
    done
`;
  const ctx = await context('pip', { Dockerfile: dockerfile, 'requirements.txt': pkgs.join('\n') + '\n' });
  hits.length = 0;
  ok(await d.docker(['build', '-t', 'pip:1', ctx]));
  assert.deepEqual(hits.sort(), pkgs.map((p) => `/pkg/${p}`).sort());
  // a changed source file re-runs the step: nothing is downloaded again, one new package is
  await writeFile(join(ctx, 'requirements.txt'), [...pkgs, 'epsilon'].join('\n') + '\n');
  hits.length = 0;
  const second = ok(await d.docker(['build', '-t', 'pip:2', ctx]));
  assert.doesNotMatch(second, /Step 3\/3[^\n]*\n ---> Using cache/);
  assert.deepEqual(hits, ['/pkg/epsilon']);
  const run = ok(await d.docker(['run', '--rm', 'pip:2', 'sh', '-c', 'ls /app; ls -A /root/.cache/pip 2>/dev/null | wc -l']));
  assert.match(run, /alpha\.installed\n[\s\S]*epsilon\.installed\n/);
  // the cache directory's content is not in any layer
  assert.match(run, /\n0\n$/);
  const layers = await imageText('pip:2');
  assert.match(layers, /package \/pkg\/alpha/); // the installed copy is
  assert.doesNotMatch(layers, /root\/\.cache\/pip\/alpha/);
  // nor is the mount point runc made for it (BuildKit removes its mount stubs)
  assert.doesNotMatch(layers, /root\/\.cache/);
  assert.equal(ok(await d.docker(['run', '--rm', 'pip:2', 'sh', '-c', 'test -e /root/.cache && echo there || echo absent'])), 'absent\n');
});

test('type=cache: shared by id between Dockerfiles (go-style), sharing=locked and private accepted; builder prune empties it', only, async () => {
  const a = await context('go-a', {
    Dockerfile: `FROM busybox\nCOPY main.go /src/\nRUN --mount=type=cache,id=gomod,target=/go/pkg/mod,sharing=locked [ -f /go/pkg/mod/dep ] || wget -q -O /go/pkg/mod/dep ${base}/go/dep\n`,
    'main.go': 'package main\n',
  });
  const b = await context('go-b', {
    Dockerfile: `FROM busybox\nWORKDIR /w\nCOPY main.go ./\nRUN --mount=type=cache,id=gomod,target=mod,sharing=private cat mod/dep > got.txt\n`,
    'main.go': 'package other\n',
  });
  hits.length = 0;
  ok(await d.docker(['build', '-t', 'goa', a]));
  assert.deepEqual(hits, ['/go/dep']);
  // another Dockerfile, another target (relative to WORKDIR): the same cache by its id
  ok(await d.docker(['build', '-t', 'gob', b]));
  assert.equal(ok(await d.docker(['run', '--rm', 'gob', 'cat', '/w/got.txt'])), 'package /go/dep\n');
  assert.deepEqual(hits, ['/go/dep']);
  // docker builder prune (POST /build/prune) empties the caches: the next build downloads again
  const pruned = ok(await d.docker(['builder', 'prune', '-f']));
  assert.match(pruned, /Total reclaimed space: \d/);
  assert.doesNotMatch(pruned, /Total reclaimed space: 0B/);
  await writeFile(join(a, 'main.go'), 'package main // changed\n');
  ok(await d.docker(['build', '-t', 'goa', a]));
  assert.deepEqual(hits, ['/go/dep', '/go/dep']);
  const again = ok(await d.wharf(['builder', 'prune', '-f']));
  assert.match(again, /^Deleted build cache objects:\n[0-9a-f]{32}\n\nTotal reclaimed space: /);
});

test('type=bind: the context read-only, rw writes discarded, from= another stage; a changed bound file re-runs the step', only, async () => {
  const ctx = await context('bind', {
    Dockerfile: `FROM busybox AS tools
RUN mkdir -p /opt/tools && echo 'tool v1' > /opt/tools/tool.txt
FROM busybox
RUN --mount=type=bind,source=src,target=/src cat /src/hello.txt > /hello.txt && (touch /src/new 2>/dev/null && echo writable || echo read-only) > /ro.txt
RUN --mount=type=bind,source=src,target=/src,rw echo scribble > /src/hello.txt && cat /src/hello.txt > /rw.txt
RUN --mount=type=bind,from=tools,source=/opt/tools,target=/t cat /t/tool.txt > /tool.txt
RUN --mount=type=tmpfs,target=/scratch,size=1m echo tmp > /scratch/f && df -k /scratch | tail -1 | awk '{print $2}' > /tmpfs-size.txt
`,
    'src/hello.txt': 'hello v1\n',
  });
  ok(await d.docker(['build', '-t', 'bind:1', ctx]));
  const cat = (f: string) => d.docker(['run', '--rm', 'bind:1', 'cat', f]).then(ok);
  assert.equal(await cat('/hello.txt'), 'hello v1\n');
  assert.equal(await cat('/ro.txt'), 'read-only\n');
  assert.equal(await cat('/rw.txt'), 'scribble\n');
  assert.equal(await cat('/tool.txt'), 'tool v1\n');
  assert.equal(await cat('/tmpfs-size.txt'), '1024\n');
  // nothing the mounts showed is in the image: /src and /scratch and /t hold nothing
  const ls = ok(await d.docker(['run', '--rm', 'bind:1', 'sh', '-c', 'ls -A /src /t /scratch 2>&1; true']));
  assert.doesNotMatch(ls, /hello\.txt|tool\.txt|\bf\b/);
  // the rw write went to a copy: the context is unchanged for the next build, which is all cached
  const cached = ok(await d.docker(['build', '-t', 'bind:1', ctx]));
  assert.equal((cached.match(/Using cache/g) ?? []).length, 5, cached);
  // a changed file under the bound source re-runs the steps that bind it (BuildKit keys a bind by its content)
  await writeFile(join(ctx, 'src/hello.txt'), 'hello v2\n');
  const changed = ok(await d.docker(['build', '-t', 'bind:2', ctx]));
  assert.match(changed, /Step 4\/7 : RUN --mount=type=bind,source=src,target=\/src cat[^\n]*\n ---> Running in/);
  assert.equal(ok(await d.docker(['run', '--rm', 'bind:2', 'cat', '/hello.txt'])), 'hello v2\n');
});

test('bad --mount input names the line and builds nothing', only, async () => {
  const cases: [string, RegExp][] = [
    ['FROM busybox\nRUN true\nRUN --mount=type=nfs,target=/x true\n', /line 3: .*unsupported mount type "nfs"/],
    ['FROM busybox\nRUN --mount=type=cache,target=/x,colour=red true\n', /line 2: .*unexpected key 'colour'/],
    ['FROM busybox\nRUN --mount=type=cache true\n', /line 2: .*requires a target/],
    ['FROM busybox\nRUN --mount=type=cache,target=/c,sharing=sometimes true\n', /line 2: .*unsupported sharing value "sometimes"/],
    ['FROM busybox\nRUN --mount=type=bind,source=nope,target=/n true\n', /line 2: .*source "nope" not found in the build context/],
    ['FROM busybox\nRUN --network=bridge2 true\n', /line 2: .*unsupported network mode "bridge2"/],
    ['FROM busybox\nRUN --mount=type=secret,id=tok,required true\n', /line 2: .*secret tok: not found/],
  ];
  const before = ok(await d.docker(['images', '-a', '-q'])).split('\n').filter(Boolean).length;
  const psBefore = ok(await d.docker(['ps', '-a', '-q']));
  for (const [i, [text, re]] of cases.entries()) {
    const ctx = await context(`bad${i}`, { Dockerfile: text });
    const r = await d.docker(['build', ctx]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr + r.stdout, re);
  }
  const afterN = ok(await d.docker(['images', '-a', '-q'])).split('\n').filter(Boolean).length;
  assert.equal(afterN, before);
  assert.equal(ok(await d.docker(['ps', '-a', '-q'])), psBefore);
});

test('RUN --network=none has only the loopback; --network=default the build\'s network', only, async () => {
  const ctx = await context('net', {
    Dockerfile: 'FROM busybox\nRUN --network=none grep -c : /proc/net/dev > /none.txt\nRUN --network=default grep -c : /proc/net/dev > /default.txt\n',
  });
  ok(await d.docker(['build', '-t', 'net:1', ctx]));
  assert.equal(ok(await d.docker(['run', '--rm', 'net:1', 'cat', '/none.txt', '/default.txt'])), '1\n2\n');
  // the network mode is part of the step's key
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN grep -c : /proc/net/dev > /none.txt\n');
  assert.doesNotMatch(ok(await d.docker(['build', ctx])), /Using cache/);
});

test('the reference: dockerd 20.10\'s classic builder refuses RUN --mount (what wharfd no longer does)', { skip: !reference && 'WHARF_E2E_DAEMON=dockerd only' }, async () => {
  const r = await startDaemon();
  try {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-e2e-mounts-ref-'));
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nRUN --mount=type=cache,target=/x true\n');
    const b = await r.docker(['build', dir]);
    assert.equal(b.code, 1, show(b));
    assert.match(b.stderr, /the --mount option requires BuildKit/);
    await rm(dir, { recursive: true, force: true });
  } finally {
    await r.stop();
  }
});
