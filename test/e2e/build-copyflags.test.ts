/**
 * The BuildKit-era COPY/ADD flags, parser directives and automatic platform ARGs through `docker build`
 * (DOCKER_BUILDKIT=0) on a real wharfd. BuildKit is the reference, stated from the Dockerfile reference
 * (docs.docker.com/reference/dockerfile/):
 * - COPY --chmod: octal or symbolic ("--chmod=u=rwx,go=rx"); --exclude: patterns left out of the copy;
 *   --parents: "preserve parent directories for src entries", a "/./" pivot cutting the kept path;
 *   --link: the files form a layer of their own, "independent of the previous state", so changing the base
 *   keeps the same layer (same diff ID), taken from the earlier build instead of copied again.
 * - ADD --checksum=sha256:…: "verifies the checksum of a remote resource"; a mismatch fails the build.
 * - Automatic platform ARGs: TARGETPLATFORM/OS/ARCH/VARIANT and BUILDPLATFORM/… in the global scope, in a stage
 *   once declared with `ARG NAME`; `docker build --platform` sets TARGET*.
 * - ADD of a git URL: "ADD [--keep-git-dir=<boolean>] <git ref> <dir>": the repository's files (at the ref,
 *   `:subdir` too) in <dir>, `.git` only with --keep-git-dir.
 * - Heredocs: `RUN <<EOF` alone runs the body (a `#!` body as its own script), `RUN cmd <<EOF …` gives the
 *   command and its heredocs to the shell; `COPY <<EOF /dest` writes the body.
 * - `# syntax=docker/dockerfile:1` and `# check=` accepted; another syntax image refused by name.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult, ok, writeTree } from '../support/cli.js';
import { gitContextRepo } from '../support/gitrepo.js';

/** WHARF_E2E_DAEMON=dockerd: dockerd 20.10's classic builder has none of this (BuildKit is the reference here). */
const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
const only = { skip: reference && 'BuildKit-era syntax: dockerd 20.10\'s classic builder refuses it' };
let d: Daemon;
let work: string;
let web: Server;
let url = '';
const PAYLOAD = 'downloaded payload\n';

before(async () => {
  if (reference) return;
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-copyflags-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  web = createServer((_q, s) => s.end(PAYLOAD));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(web.address() as { port: number }).port}/payload.txt`;
});
after(async () => {
  web?.close();
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const context = (name: string, files: Record<string, string>): Promise<string> => writeTree(join(work, name), files);

const sh = (ref: string, script: string) => d.docker(['run', '--rm', ref, 'sh', '-c', script]).then(ok);

test('COPY --chmod (octal and symbolic), --exclude, --parents', only, async () => {
  const ctx = await context('flags', {
    Dockerfile: `FROM busybox
COPY --chmod=755 a.txt /oct/
COPY --chmod=u=rwx,go=rx a.txt /sym/
COPY --chmod=go-rwx,+X run.sh a.txt /rel/
COPY --exclude=*.log --exclude=tmp app/ /app/
COPY --parents x/a.txt y/z/b.txt /p/
COPY --parents ./x/./deep/c.txt /q/
`,
    'a.txt': 'a\n', 'run.sh': 'echo run\n',
    'app/keep.txt': 'k\n', 'app/noise.log': 'n\n', 'app/tmp/t.txt': 't\n', 'app/sub/also.log': 'l\n', 'app/sub/ok.txt': 'o\n',
    'x/a.txt': 'xa\n', 'y/z/b.txt': 'yzb\n', 'x/deep/c.txt': 'c\n',
  });
  ok(await d.docker(['build', '-t', 'flags:1', ctx]));
  assert.equal(await sh('flags:1', 'stat -c %a /oct/a.txt /sym/a.txt /rel/run.sh /rel/a.txt'), '755\n755\n711\n600\n');
  // .dockerignore-style patterns, matched below the source: *.log only at its top, a directory whole
  assert.equal(await sh('flags:1', 'cd /app && find . | sort'), '.\n./keep.txt\n./sub\n./sub/also.log\n./sub/ok.txt\n');
  assert.equal(await sh('flags:1', 'cd /p && find . -type f | sort; cd /q && find . -type f'), './x/a.txt\n./y/z/b.txt\n./deep/c.txt\n');
  // the flags are part of the step's key: another mode is another step
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY --chmod=700 a.txt /oct/\n');
  const again = ok(await d.docker(['build', '-t', 'flags:2', ctx]));
  assert.doesNotMatch(again, /Using cache/);
  assert.equal(await sh('flags:2', 'stat -c %a /oct/a.txt'), '700\n');
});

test('COPY --link: the layer is the same whatever the base', only, async () => {
  const ctx = await context('link', {
    Dockerfile: 'ARG BASE\nFROM $BASE\nCOPY --link app/ /srv/app/\nCOPY --link --chmod=600 conf.txt /etc/conf.txt\n',
    'app/main.txt': 'main\n', 'conf.txt': 'conf\n',
  });
  const b1 = await context('base1', { Dockerfile: 'FROM busybox\nRUN echo one > /base.txt\n' });
  const b2 = await context('base2', { Dockerfile: 'FROM busybox\nRUN mkdir -p /srv && chmod 700 /srv && echo two > /base.txt\n' });
  ok(await d.docker(['build', '-t', 'linkbase:1', b1]));
  ok(await d.docker(['build', '-t', 'linkbase:2', b2]));
  ok(await d.docker(['build', '--build-arg', 'BASE=linkbase:1', '-t', 'linked:1', ctx]));
  const second = ok(await d.docker(['build', '--build-arg', 'BASE=linkbase:2', '-t', 'linked:2', ctx]));
  // the linked layers of the first build are put on the other base, not copied again
  assert.equal((second.match(/ ---> Using cache \(the linked layer of [0-9a-f]{12}\)\n/g) ?? []).length, 2, second);
  const layers = async (ref: string) => JSON.parse(ok(await d.docker(['inspect', '--format', '{{json .RootFS.Layers}}', ref]))) as string[];
  const l1 = await layers('linked:1');
  const l2 = await layers('linked:2');
  assert.notEqual(l1[l1.length - 3], l2[l2.length - 3], 'the bases differ');
  assert.deepEqual(l1.slice(-2), l2.slice(-2));
  assert.equal(await sh('linked:2', 'cat /srv/app/main.txt /etc/conf.txt /base.txt; stat -c %a /etc/conf.txt'), 'main\nconf\ntwo\n600\n');
});

test('ADD --checksum: a match adds the file; a mismatch fails naming the line and builds nothing', only, async () => {
  const sum = createHash('sha256').update(PAYLOAD).digest('hex');
  const good = await context('sum-ok', { Dockerfile: `FROM busybox\nADD --checksum=sha256:${sum} ${url} /dl/\n` });
  ok(await d.docker(['build', '-t', 'sum:1', good]));
  assert.equal(await sh('sum:1', 'cat /dl/payload.txt'), PAYLOAD);
  const before = ok(await d.docker(['images', '-a', '-q'])).trim().split('\n').length;
  const bad = await context('sum-bad', { Dockerfile: `FROM busybox\nRUN true\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /dl/\n` });
  const r = await d.docker(['build', '--no-cache', bad]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, new RegExp(`Dockerfile line 3: ADD failed: checksum mismatch for ${url.replace(/[.]/g, '\\.')}: expected sha256:0{64}, got sha256:${sum}`));
  // the RUN before it is an intermediate image (as a failed classic build leaves them); ADD made nothing
  const afterN = ok(await d.docker(['images', '-a', '-q'])).trim().split('\n').length;
  assert.equal(afterN, before + 1);
  const local = await context('sum-local', { Dockerfile: `FROM busybox\nADD --checksum=sha256:${sum} Dockerfile /x\n` });
  const r2 = await d.docker(['build', local]);
  assert.match(r2.stderr, /Dockerfile line 2: ADD --checksum can only be used with HTTP\(S\) sources/);
  const fmt = await context('sum-fmt', { Dockerfile: `FROM busybox\nADD --checksum=md5:abc ${url} /x\n` });
  assert.match((await d.docker(['build', fmt])).stderr, /line 2: invalid checksum digest format "md5:abc"/);
});

test('automatic platform ARGs, docker build --platform, BUILDKIT_* build args ignored', only, async () => {
  const host = ok(await d.docker(['inspect', '--format', '{{.Os}}/{{.Architecture}}', 'busybox'])).trim();
  const [, arch] = host.split('/');
  const ctx = await context('plat', {
    Dockerfile: `FROM --platform=$BUILDPLATFORM busybox
RUN echo "undeclared=[$TARGETARCH]"
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILDPLATFORM
ARG BUILDARCH
RUN echo "t=$TARGETPLATFORM os=$TARGETOS arch=$TARGETARCH v=[$TARGETVARIANT] b=$BUILDPLATFORM ba=$BUILDARCH"
`,
  });
  const out = ok(await d.docker(['build', '--build-arg', 'BUILDKIT_INLINE_CACHE=1', ctx]));
  assert.match(out, /\nundeclared=\[\]\n/);
  assert.match(out, new RegExp(`\\nt=${host} os=linux arch=${arch} v=\\[\\] b=${host} ba=${arch}\\n`));
  assert.doesNotMatch(out, /not consumed/);
  const other = arch === 'arm64' ? 'amd64' : 'arm64';
  const cross = ok(await d.docker(['build', '--platform', `linux/${other}`, ctx]));
  assert.match(cross, new RegExp(`\\nt=linux/${other} os=linux arch=${other} v=\\[\\] b=${host} ba=${arch}\\n`));
});

test('# syntax= and # check= directives; --target of a stage that uses a later one', only, async () => {
  const ok1 = await context('syn1', { Dockerfile: '# syntax=docker/dockerfile:1.7\n# check=skip=JSONArgsRecommended\nFROM busybox\nRUN echo syntax-ok\n' });
  assert.match(ok(await d.docker(['build', ok1])), /\nsyntax-ok\n/);
  const bad = await context('syn2', { Dockerfile: '# syntax=registry.example.com/my/frontend:2\nFROM busybox\nRUN echo never\n' });
  const r = await d.docker(['build', bad]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /unsupported syntax "registry\.example\.com\/my\/frontend:2": this builder runs the docker\/dockerfile:1 frontend itself/);
  assert.doesNotMatch(r.stdout, /never/);
  const fwd = await context('fwd', { Dockerfile: 'FROM busybox AS app\nCOPY --from=tools /t /t\nFROM busybox AS tools\nRUN echo t > /t\n' });
  const r2 = await d.docker(['build', '--target', 'app', fwd]);
  assert.equal(r2.code, 1, show(r2));
  assert.match(r2.stderr, /line 2: COPY --from uses stage "tools", which is defined later \(line 3\)/);
  assert.doesNotMatch(r2.stdout, /Step/);
});

test('ADD of a git URL (#ref:subdir), --keep-git-dir; a URL that does not resolve fails naming the line', only, async () => {
  const root = join(work, 'git');
  await gitContextRepo(root, { 'hello.txt': 'from git\n', 'x.txt': 'x\n' });
  const srv = createServer((q, s) => {
    readFile(join(root, 'srv', decodeURIComponent((q.url ?? '/').split('?')[0]!))).then((b) => s.end(b), () => { s.writeHead(404); s.end(); });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const repo = `http://127.0.0.1:${(srv.address() as { port: number }).port}/repo.git`;
    const ctx = await context('gitadd', {
      Dockerfile: `FROM busybox\nADD ${repo}#rel:sub /src\nADD --keep-git-dir=true ${repo}#main /full/\n`,
    });
    ok(await d.docker(['build', '-t', 'gitadd:1', ctx]));
    assert.equal(await sh('gitadd:1', 'cd /src && find . -type f | sort && cat hello.txt'), './hello.txt\n./x.txt\nfrom git\n');
    assert.equal(await sh('gitadd:1', 'test -d /src/.git || echo no-git; test -f /full/.git/HEAD && echo has-git; ls /full'), 'no-git\nhas-git\nsub\n');
    const bad = await context('gitbad', { Dockerfile: `FROM busybox\nRUN true\nADD ${repo.replace('repo.git', 'nothere.git')}#main /src\n` });
    const r = await d.docker(['build', bad]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /Dockerfile line 3: ADD http:\/\/127\.0\.0\.1:\d+\/nothere\.git#main: error fetching: /);
    const two = await context('gittwo', { Dockerfile: `FROM busybox\nADD ${repo} Dockerfile /src/\n` });
    assert.match((await d.docker(['build', two])).stderr, /line 2: ADD of a git URL takes it as the only source/);
  } finally {
    srv.close();
  }
});

test('heredocs in RUN (alone, with a command, a #! script, two in one line) and COPY', only, async () => {
  const ctx = await context('heredocs', {
    Dockerfile: `# syntax=docker/dockerfile:1
FROM busybox
ENV WHO=world
RUN cat <<EOF > /greet
hello $WHO
EOF
RUN <<EOT
echo one > /one
echo two >> /one
EOT
RUN <<'SCRIPT'
#!/bin/sh -e
echo "script $0 $WHO" > /script.txt
SCRIPT
RUN cat <<A > /a.txt && cat <<'B' > /b.txt
a $WHO
A
b $WHO
B
COPY <<EOF /copied.txt
copied $WHO
EOF
`,
  });
  ok(await d.docker(['build', '-t', 'heredocs:1', ctx]));
  // another #! body is another step (its body is in the step's key)
  const df = await readFile(join(ctx, 'Dockerfile'), 'utf8');
  await writeFile(join(ctx, 'Dockerfile'), df.replace('echo "script $0 $WHO"', 'echo "changed $0 $WHO"'));
  ok(await d.docker(['build', '-t', 'heredocs:2', ctx]));
  assert.equal(await sh('heredocs:2', 'cat /script.txt'), 'changed /dev/pipes/SCRIPT world\n');
  assert.equal(await sh('heredocs:1', 'cat /greet /one /script.txt /a.txt /b.txt /copied.txt; test -e /dev/pipes/SCRIPT || echo gone'),
    'hello world\none\ntwo\nscript /dev/pipes/SCRIPT world\na world\nb $WHO\ncopied world\ngone\n');
});
