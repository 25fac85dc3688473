/**
 * `wharf build` against a real wharfd, next to `DOCKER_BUILDKIT=0 docker build` on the same daemon: the same
 * step output (IDs masked), the same context size line, .dockerignore applied by the client (the Dockerfile
 * always sent), -f outside the context, a Dockerfile or a tar.gz on stdin, -q, --iidfile, --build-arg (bare
 * names from the environment), --target, and a failing RUN's message and exit status.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

let d: Daemon;
let work: string;
before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-clibuild-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Build output with the IDs (which differ between two builds of RUN steps) masked, docker's deprecation notice gone. */
function norm(r: RunResult): string {
  return r.stdout.replace(/[0-9a-f]{12}/g, '<id>');
}

async function both(args: string[], cwd: string, input?: string | Buffer): Promise<[RunResult, RunResult]> {
  const o = { cwd, ...(input !== undefined ? { input } : {}) };
  const w = await d.wharf(['build', ...args], o);
  const k = await d.docker(['build', ...args], o);
  return [w, k];
}

test('a directory context: docker\'s lines, byte for byte up to the IDs; then the cache', async () => {
  const ctx = join(work, 'plain');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\nCMD ["cat", "/hello.txt"]\n');
  await writeFile(join(ctx, 'hello.txt'), 'hello from the context\n');
  const [w, k] = await both(['--no-cache', '-t', 'plain:1', '.'], ctx);
  assert.equal(w.code, 0, show(w));
  assert.equal(norm(w), norm(k));
  assert.match(w.stdout, /^Sending build context to Docker daemon  \d\.\d+kB\r\r\nStep 1\/4 : FROM busybox\n/);
  assert.match(w.stdout, /\nhello from the context\n/);
  assert.match(w.stdout, /Successfully tagged plain:1\n$/);
  const cached = await d.wharf(['build', '-t', 'plain:1', '.'], { cwd: ctx });
  assert.match(cached.stdout, /Step 2\/4 : COPY hello\.txt \/hello\.txt\n ---> Using cache\n/, show(cached));
  const run = await d.wharf(['run', '--rm', 'plain:1']);
  assert.equal(run.stdout, 'hello from the context\n');
});

test('.dockerignore is applied by the client; the Dockerfile is sent even when ignored', async () => {
  const ctx = join(work, 'ignore');
  await mkdir(join(ctx, 'secret'), { recursive: true });
  await mkdir(join(ctx, 'keep'), { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /ctx\nRUN find /ctx | sort\n');
  await writeFile(join(ctx, '.dockerignore'), 'secret\n*.log\nDockerfile\n!keep/important.log\n');
  await writeFile(join(ctx, 'secret', 'key'), 'do not send');
  await writeFile(join(ctx, 'a.log'), 'noise');
  await writeFile(join(ctx, 'keep', 'important.log'), 'keep me');
  await writeFile(join(ctx, 'keep', 'other.log'), 'drop me');
  const [w, k] = await both(['--no-cache', '-t', 'ign:1', '.'], ctx);
  assert.equal(w.code, 0, show(w));
  assert.equal(norm(w), norm(k));
  assert.match(w.stdout, /\/ctx\/keep\/important\.log\n/);
  // "*.log" matches at the top level only (docker's patterns are anchored at the context root)
  assert.match(w.stdout, /\/ctx\/keep\/other\.log\n/);
  assert.doesNotMatch(w.stdout, /secret|\/ctx\/a\.log/);
});

test('-f outside the context, a Dockerfile on stdin, a tar.gz on stdin', async () => {
  const ctx = join(work, 'ctxf');
  await mkdir(ctx);
  await writeFile(join(ctx, 'data'), 'data file\n');
  const outside = join(work, 'Outside.Dockerfile');
  await writeFile(outside, 'FROM busybox\nCOPY data /data\nRUN cat /data\n');
  const [w, k] = await both(['--no-cache', '-f', outside, '-t', 'outside:1', '.'], ctx);
  assert.equal(w.code, 0, show(w));
  // docker's CLI sends this context cut short after the last entry (no padding, no end blocks; dockerd and
  // wharfd both accept it), so only its size line differs; ours is a whole tar
  const size = (r: RunResult) => norm(r).replace(/daemon +[\d.]+k?B/, 'daemon SIZE');
  assert.equal(size(w), size(k));
  assert.match(w.stdout, /^Sending build context to Docker daemon  4\.096kB\r\r\n/);
  assert.match(w.stdout, /\ndata file\n/);

  const df = 'FROM busybox\nRUN echo stdin\n';
  const [ws, ks] = await both(['--no-cache', '-t', 'fromstdin', '-'], work, df);
  assert.equal(ws.code, 0, show(ws));
  assert.equal(norm(ws), norm(ks));
  assert.match(ws.stdout, /^Sending build context to Docker daemon  2\.048kB\r\r\n/);

  execFileSync('sh', ['-c', `printf 'FROM busybox\\nRUN echo from-tar\\n' > Dockerfile && tar -czf ${join(work, 'ctx.tgz')} Dockerfile`], { cwd: ctx });
  const tgz = await readFile(join(work, 'ctx.tgz'));
  const [wt, kt] = await both(['--no-cache', '-t', 'fromtar', '-'], work, tgz);
  assert.equal(wt.code, 0, show(wt));
  assert.equal(norm(wt), norm(kt));
  assert.match(wt.stdout, /\nfrom-tar\n/);
});

test('-q, --iidfile, --build-arg (bare name from the environment), --target, a failing RUN', async () => {
  const ctx = join(work, 'args');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox AS first\nARG GREETING=hi\nARG FROM_ENV\nRUN echo "$GREETING $FROM_ENV" > /g\nFROM first AS second\nRUN exit 7\n');
  const iid = join(work, 'iid');
  const q = await d.wharf(['build', '-q', '--iidfile', iid, '--target', 'first', '--build-arg', 'GREETING=hello', '--build-arg', 'FROM_ENV', '-t', 'args:1', '.'], { cwd: ctx, env: { FROM_ENV: 'env-value' } });
  assert.equal(q.code, 0, show(q));
  assert.match(q.stdout, /^sha256:[a-f0-9]{64}\n$/);
  assert.equal(await readFile(iid, 'utf8'), q.stdout.trim());
  const g = await d.wharf(['run', '--rm', 'args:1', 'cat', '/g']);
  assert.equal(g.stdout, 'hello env-value\n');
  const [wf, kf] = await both(['--no-cache', '-t', 'args:2', '.'], ctx);
  assert.equal(wf.code, 7, show(wf));
  assert.equal(kf.code, 7, show(kf));
  assert.equal(wf.stderr.trim(), "The command '/bin/sh -c exit 7' returned a non-zero code: 7");
  assert.equal(norm(wf), norm(kf));
  const none = await d.wharf(['build', join(work, 'no-such-dir')]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /unable to prepare context: path ".*no-such-dir" not found/);
});
