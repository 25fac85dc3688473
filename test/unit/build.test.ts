import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { gzipSync } from 'node:zlib';
import { PatternMatcher, readIgnoreFile, cleanPath } from '../../src/lib/dockerignore.js';
import { goMatch } from '../../src/lib/go.js';
import { goHealthcheck, goQuoteList, goQuoteRune } from '../../src/engine/build/format.js';
import { goDuration } from '../../src/lib/go.js';
import { Builder, cacheKeyOf, type BuilderDeps } from '../../src/engine/build/builder.js';
import { applyDockerignore, ContextMemo, looksLikeTar, openContext } from '../../src/engine/build/context.js';
import { buildRequestOf } from '../../src/api/routes/build.js';
import { openLayerStore } from '../../src/engine/layers/store.js';
import { openImageStore } from '../../src/engine/images/store.js';
import { goContainerConfig } from '../../src/engine/images/service.js';
import { NotFoundError } from '../../src/lib/errors.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import type { Digest } from '../../src/lib/digest.js';
import type { ImageConfig } from '../../src/engine/images/types.js';
import type { BuildRequest } from '../../src/api/backend.js';
import type { RunExecutor } from '../../src/engine/build/types.js';
import { sleep, waitFor } from '../support/wait.js';
import { fakeServer } from '../support/fakehttp.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

const cleanup: string[] = [];
after(async () => { for (const d of cleanup) await rm(d, { recursive: true, force: true }); });

// ------------------------------------------------------------------ .dockerignore

test('.dockerignore: patterns cleaned, comments dropped, leading slash removed', () => {
  assert.deepEqual(readIgnoreFile('# c\n/foo/\n  bar/../baz  \n!keep\n\n'), ['foo', 'baz', '!keep']);
  assert.equal(cleanPath('a//b/./c/'), 'a/b/c');
});

test('.dockerignore: *, **, ? and parent-directory matches like moby patternmatcher', () => {
  const pm = new PatternMatcher(['*.log', 'docs', '**/tmp', 'a/**/z', 'x?']);
  assert.equal(pm.matches('err.log'), true);
  assert.equal(pm.matches('sub/err.log'), false); // * does not cross /
  assert.equal(pm.matches('docs/readme.md'), true); // parent matches
  assert.equal(pm.matches('tmp'), true);
  assert.equal(pm.matches('deep/er/tmp/file'), true);
  assert.equal(pm.matches('a/z'), true);
  assert.equal(pm.matches('a/b/c/z'), true);
  assert.equal(pm.matches('xy'), true);
  assert.equal(pm.matches('xyz'), false);
  assert.equal(pm.matches('main.go'), false);
});

test('.dockerignore: ! exceptions, the last matching pattern wins', () => {
  const pm = new PatternMatcher(['*.md', '!README.md', 'README*.md']);
  assert.equal(pm.matches('CHANGES.md'), true);
  assert.equal(pm.matches('README.md'), true);
  const pm2 = new PatternMatcher(['*', '!src', '!Dockerfile']);
  assert.equal(pm2.matches('secret.txt'), true);
  assert.equal(pm2.matches('src/main.ts'), false);
  assert.equal(pm2.matches('Dockerfile'), false);
  assert.throws(() => new PatternMatcher(['!']), /illegal exclusion pattern/);
});

test('.dockerignore applied to a context directory keeps re-included files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-build-ign-'));
  cleanup.push(dir);
  await mkdir(join(dir, 'logs/keep'), { recursive: true });
  await writeFile(join(dir, 'logs/a.log'), 'a');
  await writeFile(join(dir, 'logs/keep/b.log'), 'b');
  await writeFile(join(dir, 'app.txt'), 'x');
  await writeFile(join(dir, 'Dockerfile'), 'FROM x');
  await writeFile(join(dir, '.dockerignore'), 'logs\n!logs/keep\nDockerfile\n');
  await applyDockerignore(dir);
  const { readdir } = await import('node:fs/promises');
  assert.deepEqual((await readdir(dir)).sort(), ['.dockerignore', 'app.txt', 'logs']);
  assert.deepEqual(await readdir(join(dir, 'logs')), ['keep']);
  assert.deepEqual(await readdir(join(dir, 'logs/keep')), ['b.log']);
});

test('Go filepath.Match for COPY sources', () => {
  assert.equal(goMatch('hom*', 'home'), true);
  assert.equal(goMatch('hom*', 'homer.txt'), true);
  assert.equal(goMatch('hom*', 'xhome'), false);
  assert.equal(goMatch('f?.txt', 'f1.txt'), true);
  assert.equal(goMatch('[a-c]*', 'beta'), true);
  assert.equal(goMatch('[^a-c]*', 'beta'), false);
  assert.equal(goMatch('\\*', '*'), true);
  assert.equal(goMatch('\\*', 'a'), false);
});

// ------------------------------------------------------------------ Go formatting

test('history formatting: %q lists, durations, the HEALTHCHECK struct', () => {
  assert.equal(goQuoteList(['sh', '-c']), '["sh" "-c"]');
  assert.equal(goQuoteList(['a "q"\n']), '["a \\"q\\"\\n"]');
  assert.equal(goDuration(5e9), '5s');
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(3600e9), '1h0m0s');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(100e6), '100ms');
  assert.equal(goQuoteRune(0), "'\\x00'");
  assert.equal(goQuoteRune(3), "'\\x03'");
  assert.equal(goHealthcheck({ Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'], Interval: 5e9, Timeout: 3e9 }),
    '&{["CMD-SHELL" "wget -q -O- http://localhost/ || exit 1"] "5s" "3s" "0s" \'\\x00\'}');
});

test('cache keys ignore Image and Hostname, not the command or the env', () => {
  const a = goContainerConfig({ Cmd: ['/bin/sh', '-c', '#(nop) ', 'ENV A=1'], Env: ['A=1'], Image: 'sha256:1', Hostname: 'x' });
  const b = goContainerConfig({ Cmd: ['/bin/sh', '-c', '#(nop) ', 'ENV A=1'], Env: ['A=1'], Image: 'sha256:2', Hostname: 'y' });
  const c = goContainerConfig({ Cmd: ['/bin/sh', '-c', '#(nop) ', 'ENV A=2'], Env: ['A=2'] });
  assert.equal(cacheKeyOf(a), cacheKeyOf(b));
  assert.notEqual(cacheKeyOf(a), cacheKeyOf(c));
  assert.notEqual(cacheKeyOf({ Cmd: ['|1', 'V=1', '/bin/sh', '-c', 'x'] }), cacheKeyOf({ Cmd: ['|1', 'V=2', '/bin/sh', '-c', 'x'] }));
});

test('POST /build query decoding', () => {
  const q = new URLSearchParams('buildargs=%7B%22VERSION%22%3A%222.0%22%7D&dockerfile=Dockerfile.full&t=full%3Abase&t=x&target=base&version=1&labels=%7B%22a%22%3A%22b%22%7D&nocache=1&q=1');
  const r = buildRequestOf(q);
  assert.deepEqual(r.tags, ['full:base', 'x']);
  assert.deepEqual(r.buildArgs, { VERSION: '2.0' });
  assert.deepEqual(r.labels, { a: 'b' });
  assert.equal(r.target, 'base');
  assert.equal(r.dockerfile, 'Dockerfile.full');
  assert.equal(r.noCache, true);
  assert.equal(r.quiet, true);
  assert.equal(r.rm, true);
  assert.throws(() => buildRequestOf(new URLSearchParams('buildargs={')), /invalid buildargs/);
});

test('tar detection by header', () => {
  const hdr = Buffer.alloc(512);
  assert.equal(looksLikeTar(hdr), false);
  assert.equal(looksLikeTar(Buffer.from('FROM busybox\n'.padEnd(600, ' '))), false);
});

// ------------------------------------------------------------------ evaluation with real stores

async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = tar.pack();
  for (const [name, content] of Object.entries(files)) p.entry({ name, mode: 0o644, mtime: new Date(1000) }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function setup(executor?: RunExecutor) {
  const root = await mkdtemp(join(tmpdir(), 'wharf-build-'));
  cleanup.push(root);
  const layers = await openLayerStore({ dataRoot: root, driver: 'vfs' });
  const images = await openImageStore(root, layers);
  const tags = new Map<string, Digest>();
  const runs: Parameters<RunExecutor['run']>[0][] = [];
  const deps: BuilderDeps = {
    images, layers,
    resolveImage: async (name) => {
      const id = tags.get(name.includes(':') ? name : `${name}:latest`) ?? (name.startsWith('sha256:') ? name as Digest : undefined);
      if (!id) throw new NotFoundError(`No such image: ${name}`);
      return images.get(id);
    },
    pull: async (ref) => { throw new NotFoundError(`pull access denied for ${ref}`); },
    tag: async (id, ref) => { const r = ref.includes(':') ? ref : `${ref}:latest`; tags.set(r, id); return r; },
    containerConfig: goContainerConfig,
    executor: executor ?? {
      async run(o) { runs.push(o); return { exitCode: 0, layer: await layers.extract(Readable.from([await tarOf({ 'ran.txt': o.cmd.join(' ') })])) }; },
    },
    tmpDir: join(root, 'tmp'),
    cacheDir: join(root, 'build-cache'),
    dockerVersion: '20.10.24',
    arch: 'amd64',
  };
  const builder = new Builder(deps);
  const build = async (files: Record<string, string | Buffer>, opts: Partial<BuildRequest> = {}) => {
    const msgs: JSONMessage[] = [];
    const req: BuildRequest = { tags: [], dockerfile: 'Dockerfile', buildArgs: {}, noCache: false, pull: false, rm: true, forceRm: false, quiet: false, labels: {}, cacheFrom: [], ...opts };
    let id: string;
    try {
      id = await builder.build(Readable.from([await tarOf(files)]), req, (m) => msgs.push(m));
    } catch (e) {
      (e as { out?: string }).out = msgs.map((m) => m.stream ?? '').join('');
      throw e;
    }
    const out = msgs.map((m) => m.stream ?? '').join('');
    return { id, out, msgs };
  };
  return { root, layers, images, tags, build, runs, builder };
}

test('config-only instructions: docker\'s config and history strings, empty layers, parents', async () => {
  const { images, build } = await setup();
  const df = `FROM scratch
LABEL a=1 b="two words"
ARG V=1.0
ENV APP=/app NAME="Happy Feet"
USER nobody
EXPOSE 80 443/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s CMD true
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-c"]
ONBUILD RUN echo hi
ENTRYPOINT ["sh", "-c"]
CMD echo $NAME
`;
  const { id, out } = await build({ Dockerfile: df });
  const img = await images.get(id as Digest);
  const cfg = img.config as ImageConfig;
  const c = cfg.config!;
  assert.deepEqual(c.Labels, { a: '1', b: 'two words' });
  assert.deepEqual(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP=/app', 'NAME=Happy Feet']);
  assert.equal(c.User, 'nobody');
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '443/tcp': {} });
  assert.deepEqual(c.Volumes, { '/data': {} });
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Timeout: 3e9 });
  assert.equal(c.StopSignal, 'SIGTERM');
  assert.deepEqual(c.Shell, ['/bin/bash', '-c']);
  assert.deepEqual(c.OnBuild, ['RUN echo hi']);
  assert.deepEqual(c.Entrypoint, ['sh', '-c']);
  assert.deepEqual(c.Cmd, ['/bin/bash', '-c', 'echo $NAME']);
  const h = cfg.history!.map((x) => x.created_by);
  assert.deepEqual(h, [
    '/bin/sh -c #(nop)  LABEL a=1 b=two words',
    '/bin/sh -c #(nop)  ARG V=1.0',
    '/bin/sh -c #(nop)  ENV APP=/app NAME=Happy Feet',
    '/bin/sh -c #(nop)  USER nobody',
    '/bin/sh -c #(nop)  EXPOSE 443/tcp 80',
    '/bin/sh -c #(nop)  VOLUME [/data]',
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "3s" "0s" \'\\x00\'}',
    '/bin/sh -c #(nop)  STOPSIGNAL SIGTERM',
    '/bin/bash -c #(nop)  SHELL [/bin/bash -c]', // the commit already uses the new shell; %v, unquoted (dockerd 20.10)
    '/bin/bash -c #(nop)  ONBUILD RUN echo hi',
    '/bin/bash -c #(nop)  ENTRYPOINT ["sh" "-c"]',
    '/bin/bash -c #(nop)  CMD ["/bin/bash" "-c" "echo $NAME"]',
  ]);
  assert.ok(cfg.history!.every((x) => x.empty_layer === true));
  assert.deepEqual(cfg.rootfs.diff_ids, []);
  assert.match(out, /^Step 1\/13 : FROM scratch\n ---> \nStep 2\/13 : LABEL a=1 b="two words"\n ---> Running in [0-9a-f]{12}\nRemoving intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}\n/);
  assert.match(out, /Successfully built [0-9a-f]{12}\n$/);
  // every step is an image whose parent is the previous step's
  let cur = img;
  let depth = 0;
  while (cur.parent) { cur = await images.get(cur.parent); depth++; }
  assert.equal(depth, 11);
});

test('COPY: wildcards, directories by content, trailing-slash rules, --chown, relative WORKDIR; cache reuse and invalidation', async () => {
  const { images, layers, build } = await setup();
  const files = {
    Dockerfile: 'FROM scratch\nWORKDIR /app\nWORKDIR sub\nCOPY hom* ./\nCOPY dir /d\nCOPY one.txt /renamed\nCOPY --chown=7:8 one.txt /owned/\n',
    home: 'h', homer: 'hr', 'dir/x/y.txt': 'y', 'one.txt': '1',
  };
  const first = await build(files);
  const img = await images.get(first.id as Digest);
  const cfg = img.config as ImageConfig;
  assert.equal(cfg.config!.WorkingDir, '/app/sub');
  const hist = cfg.history!.map((x) => x.created_by!);
  assert.equal(hist[0], '/bin/sh -c #(nop) WORKDIR /app');
  assert.equal(hist[1], '/bin/sh -c #(nop) WORKDIR /app/sub');
  assert.match(hist[2]!, /^\/bin\/sh -c #\(nop\) COPY multi:[0-9a-f]{64} in \.\/ $/);
  assert.match(hist[3]!, /^\/bin\/sh -c #\(nop\) COPY dir:[0-9a-f]{64} in \/d $/);
  assert.match(hist[4]!, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/renamed $/);
  // the image's files (vfs: the top layer's directory is the whole rootfs)
  const { readFile, stat } = await import('node:fs/promises');
  const { chainIds } = await import('../../src/lib/digest.js');
  const top = chainIds(cfg.rootfs.diff_ids).pop()!;
  const dir = await layers.diffPath(top);
  assert.equal(await readFile(join(dir, 'app/sub/home'), 'utf8'), 'h');
  assert.equal(await readFile(join(dir, 'app/sub/homer'), 'utf8'), 'hr');
  assert.equal(await readFile(join(dir, 'd/x/y.txt'), 'utf8'), 'y');
  assert.equal(await readFile(join(dir, 'renamed'), 'utf8'), '1');
  const owned = await stat(join(dir, 'owned/one.txt'));
  assert.deepEqual([owned.uid, owned.gid], [7, 8]);

  const second = await build(files);
  assert.equal(second.id, first.id);
  assert.equal(second.out.match(/ ---> Using cache\n/g)?.length, 6);
  const changed = await build({ ...files, 'dir/x/y.txt': 'changed' });
  assert.notEqual(changed.id, first.id);
  assert.equal(changed.out.match(/ ---> Using cache\n/g)?.length, 3); // WORKDIR, WORKDIR, COPY hom*
  const nocache = await build(files, { noCache: true });
  assert.doesNotMatch(nocache.out, /Using cache/);
});

test('COPY errors: outside the context, missing source', async () => {
  const { build } = await setup();
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nCOPY ../etc/passwd /x\n' }), { message: 'COPY failed: forbidden path outside the build context: ../etc/passwd ()' });
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nCOPY x /x\n' }), { message: 'COPY failed: file not found in build context or excluded by .dockerignore: stat x: file does not exist' });
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nCOPY secret /x\n', secret: 's', '.dockerignore': 'secret\n' }), /file not found in build context or excluded by .dockerignore: stat secret/);
});

test('ADD unpacks a local gzip tar into the destination', async () => {
  const { images, layers } = await setup();
  const inner = gzipSync(await tarOf({ 'sub/a.txt': 'A' }));
  const p = tar.pack();
  p.entry({ name: 'Dockerfile', mode: 0o644 }, 'FROM scratch\nADD ctx.tar.gz /extracted/\n');
  p.entry({ name: 'ctx.tar.gz', mode: 0o644 }, inner);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  const addTmp = await mkdtemp(join(tmpdir(), 'wharf-build-add-'));
  cleanup.push(addTmp);
  const res = await (async () => {
    const msgs: JSONMessage[] = [];
    const builder = new Builder({
      images, layers, resolveImage: async () => { throw new NotFoundError('x'); }, pull: async () => {}, tag: async (_i, r) => r,
      containerConfig: goContainerConfig, executor: { run: async () => ({ exitCode: 0, layer: null }) }, tmpDir: addTmp, cacheDir: join(addTmp, 'build-cache'), dockerVersion: '20.10.24', arch: 'amd64',
    });
    const id = await builder.build(Readable.from([Buffer.concat(chunks)]), { tags: [], dockerfile: 'Dockerfile', buildArgs: {}, noCache: false, pull: false, rm: true, forceRm: false, quiet: false, labels: {}, cacheFrom: [] }, (m) => msgs.push(m));
    return id;
  })();
  const cfg = (await images.get(res as Digest)).config as ImageConfig;
  assert.match(cfg.history![0]!.created_by!, /^\/bin\/sh -c #\(nop\) ADD file:[0-9a-f]{64} in \/extracted\/ $/);
  const { chainIds } = await import('../../src/lib/digest.js');
  const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
  const { readFile } = await import('node:fs/promises');
  assert.equal(await readFile(join(dir, 'extracted/sub/a.txt'), 'utf8'), 'A');
});

test('RUN: build args prefix the history and the cache key; a failing command carries its exit code', async () => {
  let code = 0;
  const seen: string[][] = [];
  const { layers: _l, build, images } = await setup({
    async run(o) { seen.push(o.env); return { exitCode: code, layer: null }; },
  });
  void _l;
  const df = 'FROM scratch\nARG VERSION=1.0\nENV X=1\nRUN echo $VERSION\nRUN ["sh", "-c", "true"]\n';
  const a = await build({ Dockerfile: df }, { buildArgs: { VERSION: '2.0' } });
  const cfg = (await images.get(a.id as Digest)).config as ImageConfig;
  assert.equal(cfg.history![2]!.created_by, '|1 VERSION=2.0 /bin/sh -c echo $VERSION');
  assert.equal(cfg.history![3]!.created_by, '|1 VERSION=2.0 sh -c true');
  assert.equal(cfg.history![2]!.empty_layer, true); // no changes: empty layer, as docker's commit
  assert.ok(seen[0]!.includes('VERSION=2.0') && seen[0]!.includes('X=1'));
  assert.equal(cfg.config!.Env!.some((e) => e.startsWith('VERSION')), false); // ARG not persisted
  const again = await build({ Dockerfile: df }, { buildArgs: { VERSION: '2.0' } });
  assert.equal(again.id, a.id);
  const other = await build({ Dockerfile: df }, { buildArgs: { VERSION: '3.0' } });
  assert.notEqual(other.id, a.id);
  assert.match(other.out, /Step 4\/5 : RUN echo \$VERSION\n ---> Running in/);
  code = 7;
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nRUN exit 7\n' }), (e: Error & { exitCode?: number }) => {
    assert.equal(e.message, "The command '/bin/sh -c exit 7' returned a non-zero code: 7");
    assert.equal(e.exitCode, 7);
    return true;
  });
});

test('multi-stage: --target, stages by name and index, unneeded stages skipped, ONBUILD triggers', async () => {
  const { images, build, runs } = await setup();
  const df = `FROM scratch AS a
COPY one.txt /one
FROM scratch AS unused
RUN never
FROM scratch AS b
COPY --from=a /one /from-a
COPY --from=0 /one /from-0
ONBUILD RUN echo trigger
FROM b
LABEL last=1
`;
  const r = await build({ Dockerfile: df, 'one.txt': '1' }, { tags: ['t1', 't2:x'] });
  assert.equal(runs.filter((x) => x.cmd.join(' ').includes('never')).length, 0);
  assert.match(r.out, /Step 1\/8 : FROM scratch AS a/);
  assert.match(r.out, /Step 7\/8 : FROM b\n# Executing 1 build trigger\n ---> Running in/);
  assert.match(r.out, /Successfully tagged t1:latest\nSuccessfully tagged t2:x\n$/);
  const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
  assert.deepEqual(cfg.config!.OnBuild, []);
  assert.ok(runs.some((x) => x.cmd.join(' ') === '/bin/sh -c echo trigger'));
  const t = await build({ Dockerfile: df, 'one.txt': '1' }, { target: 'a' });
  assert.match(t.out, /Step 1\/2 : FROM scratch AS a\n/);
  assert.doesNotMatch(t.out, /FROM b/);
  await assert.rejects(build({ Dockerfile: df, 'one.txt': '1' }, { target: 'nope' }), /failed to reach build target nope in Dockerfile/);
  const q = await build({ Dockerfile: df, 'one.txt': '1' }, { quiet: true });
  assert.equal(q.out, `${q.id}\n`);
});

test('a parse error fails before anything is streamed; labels= become a last LABEL step', async () => {
  const { images, build } = await setup();
  let streamed = 0;
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nRUNN x\n' }).then((r) => { streamed = r.msgs.length; }), { message: 'dockerfile parse error line 2: unknown instruction: RUNN' });
  assert.equal(streamed, 0);
  const r = await build({ Dockerfile: 'FROM scratch\n' }, { labels: { z: '1', a: 'x y' } });
  assert.match(r.out, /Step 2\/2 : LABEL "a"="x y" "z"="1"\n/);
  const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
  assert.deepEqual(cfg.config!.Labels, { a: 'x y', z: '1' });
});

test('more than 127 layers is refused', async () => {
  const { build } = await setup();
  const lines = ['FROM scratch'];
  for (let i = 0; i < 128; i++) lines.push(`COPY f${i % 2} /f${i}`);
  await assert.rejects(build({ Dockerfile: lines.join('\n') + '\n', f0: 'a', f1: 'b' }), /max depth exceeded/);
});

// ------------------------------------------------------------------ remote contexts, ADD URLs, proxies, parallel stages

import { createServer, type Server } from 'node:http';
import { gitContextRepo } from '../support/gitrepo.js';
import { readFile as readFileP, stat as statP } from 'node:fs/promises';

async function serveDir(root: string, extra: Record<string, { body: Buffer; headers?: Record<string, string> }> = {}): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    const e = extra[path];
    if (e) { res.writeHead(200, e.headers ?? {}); res.end(e.body); return; }
    try {
      const body = await readFileP(join(root, path));
      res.writeHead(200); res.end(body);
    } catch { res.writeHead(404); res.end(); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address() as { port: number };
  return { url: `http://127.0.0.1:${a.port}`, server };
}

test('remote contexts: a tarball URL, a Dockerfile URL, a git URL with #ref:subdir', async () => {
  const { images, build } = await setup();
  const root = await mkdtemp(join(tmpdir(), 'wharf-build-remote-'));
  cleanup.push(root);
  // a git repository with the context in sub/ on branch "rel", served over dumb http
  await gitContextRepo(root, { Dockerfile: 'FROM scratch\nCOPY hello /hello\n', hello: 'from git' });
  const ctxTar = await tarOf({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'from tarball' });
  const { url, server } = await serveDir(join(root, 'srv'), {
    '/ctx.tar.gz': { body: gzipSync(ctxTar) },
    '/Dockerfile': { body: Buffer.from('FROM scratch\nLABEL from=url\n'), headers: { 'Content-Type': 'text/plain' } },
  });
  try {
    const t = await build({}, { remote: `${url}/ctx.tar.gz` });
    assert.match(t.out, /Step 2\/2 : COPY a \/a\n/);
    const df = await build({}, { remote: `${url}/Dockerfile` });
    assert.deepEqual(((await images.get(df.id as Digest)).config as ImageConfig).config!.Labels, { from: 'url' });
    const g = await build({}, { remote: `${url}/repo.git#rel:sub` });
    assert.match(g.out, /Step 2\/2 : COPY hello \/hello\n/);
    await assert.rejects(build({}, { remote: `${url}/repo.git#rel:nosuch` }), /subdir not found in git repository: nosuch/);
  } finally {
    server.close();
  }
});

test('ADD of a URL: file named after the URL, mode 0600, mtime from Last-Modified', async () => {
  const { images, layers, build } = await setup();
  const { url, server } = await serveDir(tmpdir(), { '/files/data.txt': { body: Buffer.from('payload'), headers: { 'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT' } } });
  try {
    const r = await build({ Dockerfile: `FROM scratch\nADD ${url}/files/data.txt /dl/\n` });
    const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
    const { chainIds } = await import('../../src/lib/digest.js');
    const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
    assert.equal(await readFileP(join(dir, 'dl/data.txt'), 'utf8'), 'payload');
    const s = await statP(join(dir, 'dl/data.txt'));
    assert.equal(s.mode & 0o777, 0o600);
    assert.equal(s.mtime.toISOString(), '2015-10-21T07:28:00.000Z');
  } finally {
    server.close();
  }
});

/** Every file under `dir` (recursively), as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const all = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return all.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** Deterministic content: `mib` MiB, each MiB different (its index in its first bytes). */
function* payload(mib: number): Generator<Buffer> {
  const block = Buffer.alloc(1 << 20, 0x5a);
  for (let i = 0; i < mib; i++) { const b = Buffer.from(block); b.writeUInt32BE(i, 0); yield b; }
}

test('ADD of a URL: the download is summed as dockerd sums a 0600 file of that name, with and without Content-Length', async () => {
  const { images, build, root } = await setup();
  const body = Buffer.concat([...payload(3)]);
  const web = await fakeServer();
  web.handler = (req, res) => {
    // with Content-Length the sum is taken on the way; chunked, from the file afterwards: both must be dockerd's
    if (req.url === '/sized/blob.bin') res.writeHead(200, { 'content-length': body.length }).end(body);
    else { res.writeHead(200); res.write(body.subarray(0, 1000)); res.end(body.subarray(1000)); }
  };
  try {
    // dockerd's reference: a lazy source over a temporary directory holding the file, mode 0600, the daemon's user
    const ref = join(root, 'ref');
    await mkdir(ref);
    await writeFile(join(ref, 'blob.bin'), body, { mode: 0o600 });
    const { lazySum } = await import('../../src/engine/build/srchash.js');
    const want = await lazySum(join(ref, 'blob.bin'), 'blob.bin');
    for (const path of ['/sized/blob.bin', '/chunked/blob.bin']) {
      const r = await build({ Dockerfile: `FROM scratch\nADD ${web.base}${path} /dl/\n` });
      const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
      assert.equal(cfg.history!.at(-1)!.created_by, `/bin/sh -c #(nop) ADD ${want} in /dl/ `, path);
    }
    assert.equal(web.seen.find((x) => x.path === '/chunked/blob.bin')?.path, '/chunked/blob.bin');
    assert.deepEqual((await filesUnder(join(root, 'tmp'))).filter((f) => /download-/.test(f)), [], 'the step removed its downloads');
  } finally {
    web.server.close();
  }
});

test('ADD of a 200 MiB URL streams to disk: memory stays flat, the layer has every byte', async (t) => {
  const { images, layers, build, root } = await setup();
  const MIB = 200;
  const want = createHash('sha256');
  for (const b of payload(MIB)) want.update(b);
  const web = await fakeServer();
  web.handler = (_req, res) => {
    res.writeHead(200, { 'content-length': MIB << 20 });
    Readable.from(payload(MIB)).pipe(res);
  };
  const base = process.memoryUsage();
  let peak = { arrayBuffers: 0, rss: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peak = { arrayBuffers: Math.max(peak.arrayBuffers, m.arrayBuffers), rss: Math.max(peak.rss, m.rss) };
  }, 10);
  try {
    const r = await build({ Dockerfile: `FROM scratch\nADD ${web.base}/big.bin /dl/\n` });
    clearInterval(sampler);
    const grown = (peak.arrayBuffers - base.arrayBuffers) / (1 << 20);
    t.diagnostic(`external memory +${grown.toFixed(1)} MiB, rss +${((peak.rss - base.rss) / (1 << 20)).toFixed(1)} MiB at most`);
    // the body held in memory (the old Buffer.concat) is 200 MiB of live external memory, twice during the concat;
    // streamed, what grows is garbage V8 collects every ~64 MiB of external allocation
    assert.ok(grown < 128, `external memory grew by ${grown.toFixed(1)} MiB during a ${MIB} MiB download (rss peak +${((peak.rss - base.rss) / (1 << 20)).toFixed(1)} MiB)`);
    const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
    const { chainIds } = await import('../../src/lib/digest.js');
    const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
    const got = createHash('sha256');
    for await (const c of createReadStream(join(dir, 'dl/big.bin'))) got.update(c as Buffer);
    assert.equal(got.digest('hex'), want.digest('hex'));
    assert.deepEqual((await filesUnder(join(root, 'tmp'))).filter((f) => /download-/.test(f)), []);
  } finally {
    clearInterval(sampler);
    web.server.close();
  }
});

test('ADD of a URL that breaks off, or a build cancelled mid-download: the partial download is removed', async () => {
  const { build, root } = await setup();
  const tmp = join(root, 'tmp');
  const downloading = async () => {
    const { stat } = await import('node:fs/promises');
    for (const f of await filesUnder(tmp)) if (/download-/.test(f) && (await stat(join(tmp, f)).catch(() => null))?.size) return f;
    return undefined;
  };
  const web = await fakeServer();
  let broken = 0;
  web.handler = (req, res) => {
    // the broken download's resume (a Range request) is refused
    if (req.url === '/broken.bin' && broken++ > 0) { res.writeHead(416).end(); return; }
    res.writeHead(200, { 'content-length': 8 << 20 });
    res.write(Buffer.alloc(1 << 20, 1));
    // the broken download: once the daemon has part of it on disk, the connection drops
    if (req.url === '/broken.bin') { const drop = () => res.destroy(); waitFor(downloading, { message: 'the partial download' }).then(drop, drop); }
    // the cancelled one never ends
  };
  try {
    await assert.rejects(build({ Dockerfile: `FROM scratch\nADD ${web.base}/broken.bin /dl/\n` }),
      new RegExp(`^UnavailableError: Get "${web.base.replace(/\./g, '\\.')}/broken\\.bin": `));
    assert.ok(broken >= 1);
    assert.deepEqual(await filesUnder(tmp), [], 'nothing left of the failed build');

    const client = new AbortController();
    const cancelled = build({ Dockerfile: `FROM scratch\nADD ${web.base}/endless.bin /dl/\n` }, { signal: client.signal });
    cancelled.catch(() => {});
    const partial = await waitFor(downloading, { message: 'the download on disk' });
    assert.match(partial, /-mounts\/copy-[0-9a-f]+\/download-[0-9a-f]{16}$/);
    client.abort();
    await assert.rejects(cancelled);
    assert.deepEqual(await filesUnder(tmp), [], 'nothing left of the cancelled build');
  } finally {
    web.server.closeAllConnections();
    web.server.close();
  }
});

test('predefined proxy args reach RUN but not its history unless declared', async () => {
  const seen: string[][] = [];
  const { images, build } = await setup({ async run(o) { seen.push(o.env); return { exitCode: 0, layer: null }; } });
  const r = await build({ Dockerfile: 'FROM scratch\nRUN true\nARG HTTP_PROXY\nRUN true\n' }, { buildArgs: { HTTP_PROXY: 'http://proxy:3128' } });
  const h = ((await images.get(r.id as Digest)).config as ImageConfig).history!.map((x) => x.created_by);
  assert.equal(h[0], '/bin/sh -c true');
  assert.equal(h[2], '|1 HTTP_PROXY=http://proxy:3128 /bin/sh -c true');
  assert.ok(seen[0]!.includes('HTTP_PROXY=http://proxy:3128'));
});

test('independent stages build in parallel; their output stays in stage order', async () => {
  const { build } = await setup({
    // each RUN takes 300 ms (the point: three of them in parallel stages take less than 900 ms)
    async run(o) { await sleep(300); o.stdout(Buffer.from(`out:${o.cmd[2]}\n`)); return { exitCode: 0, layer: null }; },
  });
  const df = 'FROM scratch AS a\nRUN a1\nFROM scratch AS b\nRUN b1\nFROM scratch AS c\nRUN c1\nFROM scratch\nCOPY --from=a /x /x\n';
  const t0 = performance.now();
  await assert.rejects(build({ Dockerfile: df }), /COPY failed: stat x: file does not exist/);
  const ms = performance.now() - t0;
  const r2 = await build({ Dockerfile: 'FROM scratch AS a\nRUN a1\nFROM scratch AS b\nRUN b1\nFROM scratch AS c\nRUN c1\nFROM scratch\nCOPY --from=a / /a\nCOPY --from=b / /b\nCOPY --from=c / /c\n' }, { noCache: true });
  assert.ok(ms < 800, `three 300 ms RUNs in independent stages took ${ms.toFixed(0)} ms`);
  const order = [...r2.out.matchAll(/out:(\w+)/g)].map((m) => m[1]);
  assert.deepEqual(order, ['a1', 'b1', 'c1']);
  assert.match(r2.out, /Step 1\/10 : FROM scratch AS a\n ---> \nStep 2\/10 : RUN a1\n ---> Running in [0-9a-f]{12}\nout:a1\nRemoving intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}\nStep 3\/10 : FROM scratch AS b\n/);
});

test('--cache-from: a parentless (pulled-like) image gives its steps, restored one by one', async () => {
  const { images, build } = await setup();
  const files = { Dockerfile: 'FROM scratch\nENV A=1\nCOPY a /a\nRUN make\nCMD ["x"]\n', a: 'A' };
  const first = await build(files);
  const top = await images.get(first.id as Digest);
  // make it look pulled: no parent, its intermediate images gone
  const ancestors: Digest[] = [];
  for (let p = top.parent; p; p = (await images.get(p)).parent) ancestors.push(p);
  await images.setParent(top.id, null);
  for (const id of ancestors) await images.remove(id);
  const plain = await build(files);
  assert.doesNotMatch(plain.out, /Using cache/);
  await images.remove(plain.id as Digest).catch(() => {});
  const cached = await build(files, { cacheFrom: [first.id] });
  assert.equal(cached.out.match(/ ---> Using cache\n/g)?.length, 4, cached.out);
  assert.equal(cached.id, first.id);
  const restored = await images.get(first.id as Digest);
  assert.ok(restored.parent, 'the source image got the restored chain as parent');
  const parentCfg = (await images.get(restored.parent!)).config as ImageConfig;
  assert.equal(parentCfg.history!.length, 3);
  assert.deepEqual(parentCfg.history, (top.config as ImageConfig).history!.slice(0, 3));
});

test('ARGs before FROM: steps of their own, usable in FROM, overridden by --build-arg, inherited by a bare ARG', async () => {
  const { images, build, tags } = await setup();
  const base = await build({ Dockerfile: 'FROM scratch\nLABEL base=yes\n' }, { tags: ['mybase:1'] });
  void tags;
  const df = 'ARG TAG=0\nARG V=meta\nFROM mybase:${TAG}\nARG V\nENV V=$V\n';
  await assert.rejects(build({ Dockerfile: df }), /pull access denied for mybase:0/);
  const r = await build({ Dockerfile: df }, { buildArgs: { TAG: '1' } });
  assert.match(r.out, /^Step 1\/5 : ARG TAG=0\nStep 2\/5 : ARG V=meta\nStep 3\/5 : FROM mybase:\$\{TAG\}\n ---> [0-9a-f]{12}\nStep 4\/5 : ARG V\n/);
  const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
  assert.ok(cfg.config!.Env!.includes('V=meta'));
  assert.equal((await images.get(r.id as Digest)).parent !== null, true);
  void base;
});

test('a failing stage stops the others at once and its output is shown before the error', async () => {
  const { build } = await setup({
    async run(o) {
      if (o.cmd[2] === 'fail') { o.stderr(Buffer.from('boom\n')); return { exitCode: 3, layer: null }; }
      await new Promise<void>((r) => { const t = setTimeout(r, 5000); o.signal?.addEventListener('abort', () => { clearTimeout(t); r(); }); });
      return { exitCode: 137, layer: null };
    },
  });
  const t0 = performance.now();
  await assert.rejects(
    build({ Dockerfile: 'FROM scratch AS slow\nRUN sleep\nFROM scratch AS bad\nRUN fail\nFROM scratch\nCOPY --from=slow / /s\nCOPY --from=bad / /b\n' }),
    (e: Error & { exitCode?: number; out?: string }) => {
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /returned a non-zero code: 3/);
      // stage order kept: the slow stage's lines, then the failing stage's, its stderr included
      assert.match(e.out!, /^Step 1\/7 : FROM scratch AS slow\n ---> \nStep 2\/7 : RUN sleep\n ---> Running in [0-9a-f]{12}\nStep 3\/7 : FROM scratch AS bad\n ---> \nStep 4\/7 : RUN fail\n ---> Running in [0-9a-f]{12}\n\u001b\[91mboom\n\u001b\[0m$/);
      return true;
    },
  );
  assert.ok(performance.now() - t0 < 3000, 'the slow stage was not waited for');
});

test('contexts cannot reach the host: no unpacking through symlinks, COPY follows symlinks inside the context only', async () => {
  const { images, layers, build } = await setup();
  const { existsSync } = await import('node:fs');
  const packed = async (entries: { name: string; type?: 'symlink' | 'file'; linkname?: string; body?: string }[]) => {
    const p = tar.pack();
    for (const e of entries) {
      if (e.type === 'symlink') p.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
      else p.entry({ name: e.name, mode: 0o644 }, e.body ?? '');
    }
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const builder = new Builder({
    images, layers, resolveImage: async () => { throw new NotFoundError('x'); }, pull: async () => {}, tag: async (_i, r) => r,
    containerConfig: goContainerConfig, executor: { run: async () => ({ exitCode: 0, layer: null }) },
    tmpDir: await mkdtemp(join(tmpdir(), 'wharf-build-scope-')), cacheDir: join(tmpdir(), 'wharf-build-scope-cache-unused'), dockerVersion: '20.10.24', arch: 'amd64',
  });
  const req: BuildRequest = { tags: [], dockerfile: 'Dockerfile', buildArgs: {}, noCache: false, pull: false, rm: true, forceRm: false, quiet: false, labels: {}, cacheFrom: [] };
  const victim = await mkdtemp(join(tmpdir(), 'wharf-build-victim-'));
  cleanup.push(victim);
  await assert.rejects(
    builder.build(Readable.from([await packed([{ name: 'Dockerfile', body: 'FROM scratch\n' }, { name: 'evil', type: 'symlink', linkname: victim }, { name: 'evil/pwned', body: 'x' }])]), req, () => {}),
    /invalid tar entry "evil\/pwned": parent path "evil" is a symlink/,
  );
  assert.equal(existsSync(join(victim, 'pwned')), false);
  // an absolute symlink in the context resolves inside the context: /etc/passwd of the host is not found
  await assert.rejects(
    builder.build(Readable.from([await packed([{ name: 'Dockerfile', body: 'FROM scratch\nCOPY link /x\n' }, { name: 'link', type: 'symlink', linkname: '/etc/passwd' }])]), req, () => {}),
    /COPY failed: file not found in build context or excluded by \.dockerignore: stat link: file does not exist/,
  );
  const id = await builder.build(Readable.from([await packed([
    { name: 'Dockerfile', body: 'FROM scratch\nCOPY link /x\nCOPY up/real.txt /y\n' }, { name: 'real.txt', body: 'inside' },
    { name: 'link', type: 'symlink', linkname: '/real.txt' }, { name: 'up', type: 'symlink', linkname: '../../../../' },
  ])]), req, () => {});
  const cfg = (await images.get(id as Digest)).config as ImageConfig;
  const { chainIds } = await import('../../src/lib/digest.js');
  const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
  assert.equal(await readFileP(join(dir, 'x'), 'utf8'), 'inside');
  assert.equal(await readFileP(join(dir, 'y'), 'utf8'), 'inside');
  void build;
});

test('MAINTAINER sets the author; a second HEALTHCHECK notes the override; an empty Dockerfile is refused', async () => {
  const { images, build } = await setup();
  const r = await build({ Dockerfile: 'FROM scratch\nMAINTAINER Jane <j@example.com>\nHEALTHCHECK CMD a\nHEALTHCHECK --retries=3 CMD ["b"]\n' });
  const img = await images.get(r.id as Digest);
  assert.equal(img.config.author, 'Jane <j@example.com>');
  assert.equal(img.config.history![0]!.created_by, '/bin/sh -c #(nop)  MAINTAINER Jane <j@example.com>');
  assert.match(r.out, /Step 4\/4 : HEALTHCHECK --retries=3 CMD \["b"\]\nNote: overriding previous HEALTHCHECK: \[CMD-SHELL a\]\n/);
  assert.equal(img.config.history![2]!.created_by, '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "b"] "0s" "0s" "0s" \'\\x03\'}');
  await assert.rejects(build({ Dockerfile: '' }), /the Dockerfile \(Dockerfile\) cannot be empty/);
});

test('several sources need a directory destination ending in /; one wildcard match may name a file', async () => {
  const { images, layers, build } = await setup();
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nCOPY a b /dest\n', a: '1', b: '2' }), { message: 'When using COPY with more than one source file, the destination must be a directory and end with a /' });
  await assert.rejects(build({ Dockerfile: 'FROM scratch\nCOPY f* /dest\n', f1: '1', f2: '2' }), /When using COPY with more than one source file/);
  const r = await build({ Dockerfile: 'FROM scratch\nCOPY f* /dest\n', f1: 'only' });
  const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
  const { chainIds } = await import('../../src/lib/digest.js');
  const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
  assert.equal(await readFileP(join(dir, 'dest'), 'utf8'), 'only');
});

test('heredocs: COPY <<EOF writes the body (variables expanded unless the delimiter is quoted); RUN <<EOF runs it', async () => {
  const { images, layers, build, runs } = await setup();
  const r = await build({ Dockerfile: 'FROM scratch\nENV WHO=world\nCOPY <<EOF /greet\nhello $WHO\nEOF\nCOPY <<"RAW" /raw\nhello $WHO\nRAW\nRUN <<EOF\necho one\necho two\nEOF\n' });
  const cfg = (await images.get(r.id as Digest)).config as ImageConfig;
  const { chainIds } = await import('../../src/lib/digest.js');
  const dir = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
  assert.equal(await readFileP(join(dir, 'greet'), 'utf8'), 'hello world\n');
  assert.equal(await readFileP(join(dir, 'raw'), 'utf8'), 'hello $WHO\n');
  assert.deepEqual(runs.at(-1)!.cmd, ['/bin/sh', '-c', 'echo one\necho two\n']);
});

test('X-Registry-Config decoding (base64 and base64url JSON; empty means none)', async () => {
  const { decodeRegistryConfig } = await import('../../src/api/routes/build.js');
  assert.equal(decodeRegistryConfig('e30='), undefined); // {}
  assert.equal(decodeRegistryConfig(undefined), undefined);
  const v = Buffer.from(JSON.stringify({ 'localhost:5000': { username: 'u', password: 'p?>' } })).toString('base64url');
  assert.deepEqual(decodeRegistryConfig(v), { 'localhost:5000': { username: 'u', password: 'p?>' } });
  assert.equal(decodeRegistryConfig('%%%'), undefined);
});

// ------------------------------------------------------------------ kept contexts and remembered lookups

test('a context sent again is not unpacked again; a changed file invalidates exactly the steps it did before', async () => {
  const { build, builder, images, layers } = await setup();
  const files: Record<string, string | Buffer> = {
    Dockerfile: 'FROM scratch\nWORKDIR /app\nCOPY a.txt /a\nCOPY dir /d\nADD arch.tar.gz /x/\nCOPY b* /b/\n',
    '.dockerignore': 'ignored.txt\n',
    'a.txt': 'a', 'dir/x.txt': 'x', 'dir/sub/y.txt': 'y', 'b1.txt': 'b1', 'b2.txt': 'b2', 'ignored.txt': 'i', 'other.txt': 'o',
    'arch.tar.gz': gzipSync(await tarOf({ 'in.txt': 'inside' })),
  };
  const cached = (out: string) => out.match(/ ---> Using cache\n/g)?.length ?? 0;
  const first = await build(files);
  assert.deepEqual(builder.contexts.stats, { hits: 0, stored: 1 });
  const again = await build(files);
  assert.deepEqual([again.id, cached(again.out)], [first.id, 5]);
  assert.deepEqual(builder.contexts.stats, { hits: 1, stored: 1 }); // the same bytes: the kept context
  // other bytes, same sources: a new context, every step still cached
  for (const f of ['ignored.txt', 'other.txt']) {
    const r = await build({ ...files, [f]: 'changed' });
    assert.deepEqual([r.id, cached(r.out)], [first.id, 5], f);
  }
  assert.equal(builder.contexts.stats.stored, 3);
  // a changed source: its step and those after it run again, the ones before stay cached
  const expect: [string, string | Buffer, number][] = [
    ['b2.txt', 'B2', 4], ['arch.tar.gz', gzipSync(await tarOf({ 'in.txt': 'other' })), 3], ['dir/sub/y.txt', 'Y', 2], ['a.txt', 'A', 1],
  ];
  for (const [f, content, hits] of expect) {
    const r = await build({ ...files, [f]: content });
    assert.notEqual(r.id, first.id, f);
    assert.equal(cached(r.out), hits, f);
    // and sent a second time, the same (from the kept context and the remembered sums)
    const r2 = await build({ ...files, [f]: content });
    assert.deepEqual([r2.id, cached(r2.out)], [r.id, 5], f);
  }
  // the first context again, kept: the first image; without the cache, the files of the kept context
  assert.equal((await build(files)).id, first.id);
  const fresh = await build({ ...files, 'dir/x.txt': 'x2' }, { noCache: true });
  const cfg = (await images.get(fresh.id as Digest)).config as ImageConfig;
  const { chainIds } = await import('../../src/lib/digest.js');
  const { readFile } = await import('node:fs/promises');
  const top = await layers.diffPath(chainIds(cfg.rootfs.diff_ids).pop()!);
  assert.equal(await readFile(join(top, 'd/x.txt'), 'utf8'), 'x2');
  assert.equal(await readFile(join(top, 'x/in.txt'), 'utf8'), 'inside');
});

test('a kept context is per Dockerfile name; a failed build drops its context', async () => {
  const { build, builder } = await setup();
  const files = { Dockerfile: 'FROM scratch\nCOPY a /a\n', 'other.Dockerfile': 'FROM scratch\nCOPY a /b\n', a: 'a' };
  const one = await build(files);
  const two = await build(files, { dockerfile: 'other.Dockerfile' });
  assert.notEqual(one.id, two.id);
  assert.deepEqual(builder.contexts.stats, { hits: 0, stored: 2 });
  assert.equal((await build(files, { dockerfile: 'other.Dockerfile' })).id, two.id);
  assert.equal(builder.contexts.stats.hits, 1);
  const bad = { ...files, Dockerfile: 'FROM scratch\nCOPY missing /m\n' };
  await assert.rejects(build(bad), /file not found in build context/);
  await assert.rejects(build(bad), /file not found in build context/);
  assert.equal(builder.contexts.stats.hits, 1); // not kept: unpacked again
  assert.equal(builder.contexts.size, 2);
});

test('kept contexts: at most MAX_ENTRIES, the least recently used go; one in use is removed when let go', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'wharf-ctxmemo-'));
  cleanup.push(tmp);
  const memo = new ContextMemo(tmp);
  const { access } = await import('node:fs/promises');
  const exists = (p: string) => access(p).then(() => true, () => false);
  const open = async (i: number) => openContext(Readable.from([await tarOf({ Dockerfile: `FROM scratch\nLABEL n=${i}\n` })]), { dockerfile: 'Dockerfile', tmpDir: join(tmp, `b${i}`), memo });
  const held = await open(0);
  assert.match(held.key!, /^sha256:[0-9a-f]{64}$/);
  for (let i = 1; i <= ContextMemo.MAX_ENTRIES; i++) await (await open(i)).close();
  assert.equal(memo.size, ContextMemo.MAX_ENTRIES);
  assert.equal(await exists(held.dir), true); // dropped from the memo, but a build still uses it
  await held.close();
  assert.equal(await exists(held.dir), false);
  // the others are kept: the same bytes again give the kept directory
  const again = await open(ContextMemo.MAX_ENTRIES);
  assert.equal(memo.stats.hits, 1);
  assert.equal(await readFile(join(again.dir, 'Dockerfile'), 'utf8'), `FROM scratch\nLABEL n=${ContextMemo.MAX_ENTRIES}\n`);
  await again.close();
  // a context larger than MAX_BODY is unpacked as before (streamed, not kept), its key known all the same
  const big = await openContext(Readable.from([await tarOf({ Dockerfile: 'FROM scratch\n', blob: Buffer.alloc(ContextMemo.MAX_BODY + 1) })]), { dockerfile: 'Dockerfile', tmpDir: join(tmp, 'big'), memo });
  assert.match(big.key!, /^sha256:[0-9a-f]{64}$/);
  assert.equal(memo.stats.stored, ContextMemo.MAX_ENTRIES + 1);
  await big.close();
  assert.equal(await exists(join(tmp, 'big')), false);
  // builder prune forgets them all: the idle ones are removed at once, one in use when its build lets go
  const { readdir } = await import('node:fs/promises');
  const inUse = await open(100);
  const kept = await open(101);
  await kept.close();
  assert.equal(await exists(kept.dir), true);
  await memo.clear();
  assert.equal(memo.size, 0);
  assert.equal(await exists(kept.dir), false);
  assert.equal(await exists(inUse.dir), true);
  await inUse.close();
  assert.equal(await exists(inUse.dir), false);
  assert.equal((await readdir(tmp)).filter((n) => n.startsWith('build-memo-')).length, 0, 'no kept context left');
});

test('image file lookups are remembered by chain ID (answered again without reading); another chain is looked up in its own layers', async () => {
  const { ImageFileMemo, ImageFiles } = await import('../../src/engine/build/image-files.js');
  const { layers, build, images } = await setup();
  const base = await build({ Dockerfile: 'FROM scratch\nCOPY passwd /etc/passwd\nCOPY d /opt/d\n', passwd: 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n', 'd/f': 'f' });
  const cfg = (await images.get(base.id as Digest)).config as ImageConfig;
  const memo = new ImageFileMemo();
  const files = new ImageFiles(layers, memo);
  assert.deepEqual(await files.resolveChown(cfg, 'app'), { uid: 1000, gid: 1000 });
  assert.equal((await files.stat(cfg, '/opt/d'))?.isDirectory(), true);
  assert.equal(await files.stat(cfg, '/nope'), null);
  const n = memo.size;
  assert.ok(n >= 3, `${n} lookups remembered`);
  // the same lookups again: answered from the memo (another ImageFiles, the same memo)
  const again = new ImageFiles(layers, memo);
  assert.deepEqual(await again.resolveChown(cfg, 'app'), { uid: 1000, gid: 1000 });
  assert.equal((await again.stat(cfg, '/opt/d'))?.isDirectory(), true);
  assert.equal(memo.size, n);
  // another image (another chain): looked up in its own layers
  const other = await build({ Dockerfile: 'FROM scratch\nCOPY passwd /etc/passwd\n', passwd: 'app:x:2000:2000::/:/bin/sh\n' });
  const ocfg = (await images.get(other.id as Digest)).config as ImageConfig;
  assert.deepEqual(await again.resolveChown(ocfg, 'app'), { uid: 2000, gid: 2000 });
  assert.equal(await again.stat(ocfg, '/opt/d'), null);
});
