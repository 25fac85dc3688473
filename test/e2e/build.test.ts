/**
 * End to end, issue 3 through the real docker CLI (`DOCKER_BUILDKIT=0 docker build`) against a real wharfd with a
 * bootstrapped busybox: the transcript's Dockerfile.full (step output, config equal to the transcript's
 * `docker inspect --format {{json .Config}} full:base`, history), cache hits on rebuild, --target, COPY --from,
 * ONBUILD triggers, a failing RUN's exit code, a parse error, COPY outside the context, a Dockerfile on stdin,
 * compressed tar contexts, -q, .dockerignore; and the cold/warm timing of a 6-step build (printed, not asserted).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { gitContextRepo } from '../support/gitrepo.js';
import { projectRoot, show, type RunResult } from '../support/cli.js';

let d: Daemon;
let ctx: string;

const FULL = `FROM busybox AS base
LABEL com.example.version=0.1 maintainer="t@example.com"
ARG VERSION=1.0
ENV APP_HOME=/app NAME="Happy Feet" \\
    DEBUG=on
WORKDIR $APP_HOME
COPY hom* ./
COPY ["f 1.txt", "./spaced/"]
ADD ctx.tar.gz /extracted/
RUN echo "version=$VERSION name=$NAME" > /app/info && cd /tmp && echo gone > lost
RUN ["sh", "-c", "echo exec form > /app/exec"]
USER nobody
EXPOSE 80 443/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s CMD wget -q -O- http://localhost/ || exit 1
STOPSIGNAL SIGTERM
ONBUILD RUN echo child-build > /onbuild
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/info"]

FROM busybox
COPY --from=base /app /app
COPY --from=0 /app/exec /exec2
CMD ["cat", "/app/info"]
`;

/** The transcript's lines of one command's output (after "$ <cmd>" up to "[exit N]"); test/fixtures holds the sections used. */
async function transcript(cmd: string): Promise<string[]> {
  const text = await readFile(join(projectRoot, 'test', 'fixtures', 'docker-transcript-build.txt'), 'utf8');
  const start = text.indexOf(`$ ${cmd}\n`);
  assert.ok(start >= 0, `transcript has no "${cmd}"`);
  const body = text.slice(start + cmd.length + 3);
  return body.slice(0, body.indexOf('[exit ')).split('\n').filter((l) => l !== '');
}

/** The build output without the CLI's deprecation banner, IDs replaced. */
function shape(lines: string[]): string[] {
  return lines
    .filter((l) => !/DEPRECATED|BuildKit is currently disabled|environment-variable|^Sending build context/.test(l))
    .map((l) => l.replace(/\b[0-9a-f]{12}\b/g, '<id>'));
}

const build = (args: string[], input?: string | Buffer): Promise<RunResult> =>
  d.docker(['build', ...args], { cwd: ctx, env: { DOCKER_BUILDKIT: '0' }, ...(input !== undefined ? { input } : {}), timeoutMs: 300_000 });

before(async () => {
  d = await startDaemon();
  const r = await d.api('POST', '/images/bootstrap?name=busybox');
  assert.equal(r.status, 200, r.body);
  ctx = await mkdtemp(join(tmpdir(), 'wharf-build-ctx-'));
  await writeFile(join(ctx, 'home'), 'home');
  await writeFile(join(ctx, 'f 1.txt'), 'f1');
  await mkdir(join(ctx, 'tarsrc'));
  await writeFile(join(ctx, 'tarsrc', 'inside.txt'), 'inside');
  execFileSync('tar', ['-czf', join(ctx, 'ctx.tar.gz'), '-C', join(ctx, 'tarsrc'), 'inside.txt']);
  await rm(join(ctx, 'tarsrc'), { recursive: true });
  await writeFile(join(ctx, '.dockerignore'), 'Dockerfile*\n*.log\n');
  await writeFile(join(ctx, 'secret.log'), 'secret');
  await writeFile(join(ctx, 'Dockerfile.full'), FULL);
  await writeFile(join(ctx, 'Dockerfile.child'), 'FROM full:base\n');
  await writeFile(join(ctx, 'Dockerfile.fail'), 'FROM busybox\nRUN exit 7\n');
  await writeFile(join(ctx, 'Dockerfile.bad'), 'FROM busybox\nRUNN x\n');
  await writeFile(join(ctx, 'Dockerfile.escape'), 'FROM busybox\nCOPY ../etc/passwd /x\n');
  await writeFile(join(ctx, 'Dockerfile.ignored'), 'FROM busybox\nCOPY secret.log /x\n');
  await writeFile(join(ctx, 'Dockerfile.check'), 'FROM full:final\nRUN cat /app/info /exec2 /app/home "/app/spaced/f 1.txt" && ls /app\n');
  await writeFile(join(ctx, 'Dockerfile.image'), 'FROM busybox\nCOPY --from=full:base /extracted /e\nCOPY --from=full:base /tmp/lost /lost\nRUN cat /e/inside.txt /lost\n');
});

after(async () => {
  await d?.stop();
  if (ctx) await rm(ctx, { recursive: true, force: true });
});

test('Dockerfile.full --target base: docker\'s step output, the transcript\'s config and history', async () => {
  const cmd = 'docker build -f Dockerfile.full --target base --build-arg VERSION=2.0 -t full:base .';
  const r = await build(['-f', 'Dockerfile.full', '--target', 'base', '--build-arg', 'VERSION=2.0', '-t', 'full:base', '.']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(shape(r.stdout.split('\n').filter(Boolean)), shape(await transcript(cmd)));
  const inspect = await d.docker(['inspect', '--format', '{{json .Config}}', 'full:base']);
  const want = (await transcript('docker inspect --format {{json .Config}} full:base'))[0];
  assert.equal(inspect.stdout.trim(), want);
  const hist = await d.docker(['history', '--format', '{{.CreatedBy}}\t{{.Size}}', '--no-trunc', 'full:base']);
  const rows = hist.stdout.trim().split('\n');
  assert.equal(rows[0], '/bin/sh -c #(nop)  CMD ["cat /app/info"]\t0B');
  assert.equal(rows[1], '/bin/sh -c #(nop)  ENTRYPOINT ["sh" "-c"]\t0B');
  assert.equal(rows[4], '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q -O- http://localhost/ || exit 1"] "5s" "3s" "0s" \'\\x00\'}\t0B');
  assert.equal(rows[6], '/bin/sh -c #(nop)  EXPOSE 443/tcp 80\t0B');
  assert.equal(rows[8], '|1 VERSION=2.0 sh -c echo exec form > /app/exec\t10B');
  assert.equal(rows[9], '|1 VERSION=2.0 /bin/sh -c echo "version=$VERSION name=$NAME" > /app/info && cd /tmp && echo gone > lost\t33B');
  assert.match(rows[10]!, /^\/bin\/sh -c #\(nop\) ADD file:[0-9a-f]{64} in \/extracted\/ \t6B$/);
  assert.match(rows[12]!, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \.\/ \t4B$/);
  assert.equal(rows[13], '/bin/sh -c #(nop) WORKDIR /app\t0B');
  assert.equal(rows[16], '/bin/sh -c #(nop)  LABEL com.example.version=0.1 maintainer=t@example.com\t0B');
});

test('rebuild with the same args: every step from cache, same image', async () => {
  const before = await d.docker(['inspect', '--format', '{{.Id}}', 'full:base']);
  const r = await build(['-f', 'Dockerfile.full', '--target', 'base', '--build-arg', 'VERSION=2.0', '-t', 'full:base', '.']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout.match(/ ---> Using cache\n/g)?.length, 17);
  assert.doesNotMatch(r.stdout, /Running in/);
  const afterId = await d.docker(['inspect', '--format', '{{.Id}}', 'full:base']);
  assert.equal(afterId.stdout, before.stdout);
});

test('the whole file: cache up to the first RUN whose build args changed, COPY --from by name and index', async () => {
  const cmd = 'docker build -f Dockerfile.full -t full:final .';
  const r = await build(['-f', 'Dockerfile.full', '-t', 'full:final', '.']);
  assert.equal(r.code, 0, show(r));
  const want = shape(await transcript(cmd));
  const got = shape(r.stdout.split('\n').filter(Boolean));
  // the transcript cut its first lines out; compare the tail it shows
  assert.deepEqual(got.slice(got.length - want.length), want);
  assert.match(r.stdout, /Step 8\/22 : ADD ctx.tar.gz \/extracted\/\n ---> Using cache\n/);
  assert.match(r.stdout, /Step 9\/22 : RUN echo .*\n ---> Running in /);
  const check = await build(['-f', 'Dockerfile.check', '.']);
  assert.equal(check.code, 0, show(check));
  assert.match(check.stdout, /version=1\.0 name=Happy Feet\nexec form\nhomef1exec\nhome\ninfo\nspaced\n/);
  const img = await build(['-f', 'Dockerfile.image', '.']);
  assert.equal(img.code, 0, show(img));
  assert.match(img.stdout, /\ninsidegone\n/);
});

test('ONBUILD trigger of full:base runs in the child build and fails like docker\'s', async () => {
  const r = await build(['-f', 'Dockerfile.child', '-t', 'child', '.']);
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(shape(r.stdout.split('\n').filter(Boolean)), [
    'Step 1/1 : FROM full:base', '# Executing 1 build trigger', ' ---> Running in <id>',
    '\u001b[91m/bin/sh: can\'t create /onbuild: Permission denied', '\u001b[0m',
  ]);
  assert.equal(r.stderr.trim().split('\n').pop(), "The command '/bin/sh -c echo child-build > /onbuild' returned a non-zero code: 1");
});

test('a failing RUN: docker\'s message and its exit code (7)', async () => {
  const r = await build(['-f', 'Dockerfile.fail', '.']);
  assert.equal(r.code, 7, show(r));
  assert.deepEqual(shape(r.stdout.split('\n').filter(Boolean)), ['Step 1/2 : FROM busybox', ' ---> <id>', 'Step 2/2 : RUN exit 7', ' ---> Running in <id>']);
  assert.match(r.stderr, /The command '\/bin\/sh -c exit 7' returned a non-zero code: 7\n$/);
});

test('a parse error is a 400 before any step', async () => {
  const r = await build(['-f', 'Dockerfile.bad', '.']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /Error response from daemon: dockerfile parse error line 2: unknown instruction: RUNN\n$/);
  assert.doesNotMatch(r.stdout, /Step/);
});

test('COPY outside the context and COPY of a .dockerignored file', async () => {
  const r = await build(['-f', 'Dockerfile.escape', '.']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /COPY failed: forbidden path outside the build context: \.\.\/etc\/passwd \(\)\n$/);
  const i = await build(['-f', 'Dockerfile.ignored', '.']);
  assert.equal(i.code, 1, show(i));
  assert.match(i.stderr, /COPY failed: file not found in build context or excluded by \.dockerignore: stat secret\.log: file does not exist\n$/);
});

test('a Dockerfile on stdin (no context), a gzip/xz/bzip2 tar on stdin, -q', async () => {
  const r = await build(['-t', 'fromstdin', '-'], 'FROM busybox\nRUN echo stdin\n');
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Step 2\/2 : RUN echo stdin\n ---> Running in [0-9a-f]{12}\nstdin\nRemoving intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}\nSuccessfully built [0-9a-f]{12}\nSuccessfully tagged fromstdin:latest\n$/);
  const dir = await mkdtemp(join(tmpdir(), 'wharf-build-tar-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo stdin\n');
    for (const flag of ['-z', '-J', '-j']) {
      const t = execFileSync('tar', ['-c', flag, '-C', dir, 'Dockerfile']);
      const x = await build(['-t', 'fromtar', '-'], t);
      assert.equal(x.code, 0, show(x));
      assert.match(x.stdout, /Step 2\/2 : RUN echo stdin\n ---> Using cache\n/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const q = await build(['-q', '-'], 'FROM busybox\nRUN echo quiet\n');
  assert.equal(q.code, 0, show(q));
  assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
});

test('timing: a 6-step build (2 RUN, one 2 MB COPY) cold and fully cached', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-build-bench-'));
  try {
    await writeFile(join(dir, 'big.bin'), randomBytes(2 * 1024 * 1024));
    await writeFile(join(dir, 'Dockerfile'), `FROM busybox\nENV A=${Date.now()}\nRUN echo one > /one\nCOPY big.bin /big.bin\nRUN wc -c /big.bin > /size\nCMD ["cat", "/size"]\n`);
    const t0 = performance.now();
    const cold = await d.docker(['build', '-t', 'bench', '.'], { cwd: dir, env: { DOCKER_BUILDKIT: '0' } });
    const t1 = performance.now();
    const warm = await d.docker(['build', '-t', 'bench', '.'], { cwd: dir, env: { DOCKER_BUILDKIT: '0' } });
    const t2 = performance.now();
    assert.equal(cold.code, 0, show(cold));
    assert.equal(warm.code, 0, show(warm));
    assert.equal(warm.stdout.match(/Using cache/g)?.length, 5);
    console.log(`# 6-step build through docker CLI: cold ${(t1 - t0).toFixed(0)} ms, warm ${(t2 - t1).toFixed(0)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('RUN writes below a VOLUME are discarded; COPY . copies the context as .dockerignore left it', async () => {
  await writeFile(join(ctx, 'Dockerfile.vol'), 'FROM busybox\nVOLUME /data\nRUN echo x > /data/f && echo y > /kept\nCOPY . /ctx/\nRUN ls -A /data; cat /kept; ls -A /ctx\n');
  const r = await build(['-f', 'Dockerfile.vol', '.']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Running in [0-9a-f]{12}\ny\n\.dockerignore\nctx\.tar\.gz\nf 1\.txt\nhome\nRemoving/);
});

test('FROM an image of a registry that needs credentials: pulled with the CLI\'s X-Registry-Config', async () => {
  const { startRegistry, REGISTRY_USER, REGISTRY_PASSWORD } = await import('../support/registry.js');
  const { pushBusybox } = await import('../support/oci-images.js');
  const reg = await startRegistry({ auth: 'htpasswd' });
  try {
    await pushBusybox(reg.host, 'priv/busybox:1', { creds: `${REGISTRY_USER}:${REGISTRY_PASSWORD}` });
    await writeFile(join(ctx, 'Dockerfile.priv'), `FROM ${reg.host}/priv/busybox:1\nRUN echo private-base\n`);
    const denied = await build(['-f', 'Dockerfile.priv', '.']);
    assert.notEqual(denied.code, 0, show(denied));
    // what `docker login` would store (wharfd has no /auth yet): the CLI sends it as X-Registry-Config
    const auth = Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64');
    await writeFile(join(d.dir, 'docker-config', 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));
    const r = await build(['-f', 'Dockerfile.priv', '.']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /Step 1\/2 : FROM 127\.0\.0\.1:\d+\/priv\/busybox:1\n/);
    assert.match(r.stdout, /\nprivate-base\n/);
  } finally {
    await reg.stop();
  }
});

test('a RUN whose program does not exist fails with the runtime\'s error, not an exit code', async () => {
  const r = await build(['-'], 'FROM busybox\nRUN ["nosuchbin"]\n');
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuchbin": executable file not found in \$PATH: unknown\n$/);
  assert.doesNotMatch(r.stdout, /level=error/);
});

test('--pull fetches a newer base even when a local image has the tag; without it the local one is used', async () => {
  const { startRegistry } = await import('../support/registry.js');
  const { pushBusybox } = await import('../support/oci-images.js');
  const reg = await startRegistry();
  const base = `${reg.host}/pull/base:1`;
  try {
    await pushBusybox(reg.host, 'pull/base:1');
    await writeFile(join(ctx, 'Dockerfile.pull'), `FROM ${base}\nRUN echo on-base\n`);
    const first = await build(['-f', 'Dockerfile.pull', '.']);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /Pulling from pull\/base/);
    const oldId = (await d.docker(['inspect', '--format', '{{.Id}}', base])).stdout.trim();
    // a newer image behind the same tag in the registry; the local tag is put back on the old one
    const v2 = await build(['-t', base, '-'], `FROM ${base}\nLABEL base.version=2\n`);
    assert.equal(v2.code, 0, show(v2));
    const push = await d.docker(['push', base]);
    assert.equal(push.code, 0, show(push));
    assert.equal((await d.docker(['tag', oldId, base])).code, 0);
    const local = await build(['-q', '-f', 'Dockerfile.pull', '.']);
    assert.equal(local.code, 0, show(local));
    const label = (id: string) => d.docker(['inspect', '--format', '{{index .Config.Labels "base.version"}}', id.trim()]);
    assert.equal((await label(local.stdout)).stdout.trim(), '', 'without --pull: the local base');
    const pulled = await build(['--pull', '-f', 'Dockerfile.pull', '.']);
    assert.equal(pulled.code, 0, show(pulled));
    assert.match(pulled.stdout, /Step 1\/2 : FROM .*\n.*Pulling from pull\/base/);
    assert.match(pulled.stdout, /Status: Downloaded newer image for /);
    const id = /Successfully built ([0-9a-f]{12})/.exec(pulled.stdout)![1]!;
    assert.equal((await label(id)).stdout.trim(), '2', '--pull: the registry\'s newer base');
    assert.notEqual((await d.docker(['inspect', '--format', '{{.Id}}', base])).stdout.trim(), oldId, 'the tag moved to the pulled image');
  } finally {
    await reg.stop();
  }
});

test('remote contexts through the docker CLI and the API: a tarball URL, a git URL with #ref:subdir; over 127 layers refused', async () => {
  const { createServer } = await import('node:http');
  const { createReadStream } = await import('node:fs');
  const root = await mkdtemp(join(tmpdir(), 'wharf-build-remote-'));
  const work = await gitContextRepo(root, { Dockerfile: 'FROM busybox\nCOPY hello /hello\nCMD ["cat", "/hello"]\n', hello: 'from git' });
  execFileSync('tar', ['-czf', join(root, 'srv', 'ctx.tar.gz'), '-C', join(work, 'sub'), 'Dockerfile', 'hello']);
  const srv = createServer((q, s) => {
    const p = join(root, 'srv', decodeURIComponent((q.url ?? '/').split('?')[0]!));
    createReadStream(p).on('error', () => { s.statusCode = 404; s.end(); }).pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as import('node:net').AddressInfo).port}`;
  try {
    // the docker CLI hands a tarball URL to the daemon as remote=
    const t = await build(['-t', 'remote:tar', `${url}/ctx.tar.gz`]);
    assert.equal(t.code, 0, show(t));
    assert.equal((await d.docker(['run', '--rm', 'remote:tar'])).stdout, 'from git');
    // a git URL through the API (the docker CLI clones git URLs itself; other clients leave it to the daemon)
    const g = await d.api('POST', `/build?t=remote:git&remote=${encodeURIComponent(`${url}/repo.git#rel:sub`)}`);
    assert.equal(g.status, 200, g.body);
    assert.match(g.body, /Successfully tagged remote:git/);
    assert.equal((await d.docker(['run', '--rm', 'remote:git'])).stdout, 'from git');
    const bad = await d.api('POST', `/build?remote=${encodeURIComponent(`${url}/repo.git#rel:nosuch`)}`);
    assert.match(bad.body, /subdir not found in git repository: nosuch/);
    // more than 127 layers: docker's refusal, through the CLI
    await writeFile(join(ctx, 'Dockerfile.deep'), ['FROM busybox', ...Array.from({ length: 128 }, (_, i) => `COPY home /h${i}`)].join('\n') + '\n');
    const deep = await build(['-f', 'Dockerfile.deep', '.']);
    assert.notEqual(deep.code, 0, show(deep));
    assert.match(deep.stderr, /max depth exceeded/);
  } finally {
    srv.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('--cache-from: steps of a named source image are reused; a source that does not match is not', async () => {
  await writeFile(join(ctx, 'Dockerfile.cf'), 'FROM busybox\nRUN echo cf-step > /cf\nCOPY home /home-copy\n');
  const first = await build(['-t', 'cf:src', '-f', 'Dockerfile.cf', '.']);
  assert.equal(first.code, 0, show(first));
  const again = await build(['--cache-from', 'cf:src', '-t', 'cf:again', '-f', 'Dockerfile.cf', '.']);
  assert.equal(again.code, 0, show(again));
  assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 2, again.stdout);
  assert.doesNotMatch(again.stdout, /Running in/);
  // busybox is not an ancestor-with-these-steps source: nothing is taken from the local cache through it
  const other = await build(['--cache-from', 'busybox', '-f', 'Dockerfile.cf', '.']);
  assert.equal(other.code, 0, show(other));
  assert.match(other.stdout, /Running in/);
});
