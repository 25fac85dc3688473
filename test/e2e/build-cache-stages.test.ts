/**
 * End to end (issue 17): cached COPY --from steps through the real docker CLI (`DOCKER_BUILDKIT=0`). wharfd
 * remembers the source hash of a COPY --from (by the source image and the sources) so that a fully cached rebuild
 * does not mount the stage's image; these tests check that the remembered hash never gives a wrong hit: a changed
 * stage, another source path in the same stage, and a rebuild that keeps everything. (Builds by stage name and
 * index: build.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

let d: Daemon;
let ctx: string;

const build = (args: string[]): Promise<RunResult> =>
  d.docker(['build', ...args], { cwd: ctx, env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });

const dockerfile = (src: string) => `FROM busybox AS builder
COPY a.txt b.txt /in/
RUN cat /in/a.txt > /a.out && cat /in/b.txt > /b.out
FROM busybox
COPY --from=0 ${src} /out
CMD ["cat", "/out"]
`;

/** "Step N/M : …" followed by whether the step came from the cache, for the COPY --from steps. */
function fromSteps(stdout: string): string[] {
  const lines = stdout.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^Step \d+\/\d+ : COPY --from/.test(lines[i]!)) continue;
    out.push(`${lines[i]!.replace(/^Step \d+\/\d+ : /, '')} ${lines[i + 1] === ' ---> Using cache' ? 'cached' : 'copied'}`);
  }
  return out;
}

async function catOut(tag: string): Promise<string> {
  const r = await d.docker(['run', '--rm', tag]);
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

before(async () => {
  d = await startDaemon();
  const r = await d.api('POST', '/images/bootstrap?name=busybox');
  assert.equal(r.status, 200, r.body);
  ctx = await mkdtemp(join(tmpdir(), 'wharf-build-stages-'));
  await writeFile(join(ctx, 'a.txt'), 'a1\n');
  await writeFile(join(ctx, 'b.txt'), 'b1\n');
  await writeFile(join(ctx, 'Dockerfile.a'), dockerfile('/a.out'));
  await writeFile(join(ctx, 'Dockerfile.b'), dockerfile('/b.out'));
});

after(async () => {
  await d?.stop();
  if (ctx) await rm(ctx, { recursive: true, force: true });
});

test('a rebuild takes the COPY --from step from the cache and gives the same image', async () => {
  const first = await build(['-f', 'Dockerfile.a', '-t', 'stages:a', '.']);
  assert.equal(first.code, 0, show(first));
  assert.deepEqual(fromSteps(first.stdout), ['COPY --from=0 /a.out /out copied']);
  const id1 = (await d.docker(['inspect', '-f', '{{.Id}}', 'stages:a'])).stdout.trim();
  const again = await build(['-f', 'Dockerfile.a', '-t', 'stages:a', '.']);
  assert.equal(again.code, 0, show(again));
  assert.deepEqual(fromSteps(again.stdout), ['COPY --from=0 /a.out /out cached']);
  assert.equal((await d.docker(['inspect', '-f', '{{.Id}}', 'stages:a'])).stdout.trim(), id1);
  assert.equal(await catOut('stages:a'), 'a1\n');
});

test('another source path from the same stage image is copied, not taken for the remembered one', async () => {
  const r = await build(['-f', 'Dockerfile.b', '-t', 'stages:b', '.']);
  assert.equal(r.code, 0, show(r));
  // the same stage image (from the cache), the same destination and parent: only the source path differs
  assert.deepEqual(fromSteps(r.stdout), ['COPY --from=0 /b.out /out copied']);
  assert.equal(await catOut('stages:b'), 'b1\n');
});

test('a changed stage gives new COPY --from results', async () => {
  await writeFile(join(ctx, 'a.txt'), 'a2\n');
  const r = await build(['-f', 'Dockerfile.a', '-t', 'stages:a', '.']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(fromSteps(r.stdout), ['COPY --from=0 /a.out /out copied']);
  assert.equal(await catOut('stages:a'), 'a2\n');
  const again = await build(['-f', 'Dockerfile.a', '-t', 'stages:a', '.']);
  assert.deepEqual(fromSteps(again.stdout), ['COPY --from=0 /a.out /out cached']);
});
