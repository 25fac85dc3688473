/**
 * Log drivers (issue 14 item 6) through the docker CLI, wharfd beside Debian's dockerd: json-file with
 * max-size/max-file rotation, `logs --tail/--since/--until/--details`, `local`, `none` (logs refused), unknown
 * drivers and options refused with dockerd's words, `--storage-opt` refused; the daemon's defaults from
 * daemon.json (`log-driver`, `log-opts`). Skipped when dockerd is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sameBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

const haveDockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].some((p) => existsSync(p));
let w: Daemon | undefined;
let r: Daemon | undefined;
let work: string;

before(async () => {
  if (!haveDockerd) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-logdrv-'));
  [w, r] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 })]);
  await sameBusybox(w, r);
});
after(async () => {
  await Promise.all([w?.stop(), r?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const both = () => [['wharfd', w!], ['dockerd', r!]] as const;

test('refusals: unknown driver, unknown option, --storage-opt — dockerd\'s words and exit codes', { skip: !haveDockerd }, async () => {
  for (const args of [
    ['run', '--log-driver', 'asdf', 'busybox', 'true'],
    ['create', '--log-opt', 'foo=bar', 'busybox', 'true'],
    ['create', '--log-driver', 'local', '--log-opt', 'max-size=1k', '--log-opt', 'foo=1', 'busybox', 'true'],
    ['create', '--storage-opt', 'size=1G', 'busybox', 'true'],
  ]) {
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.notEqual(b.code, 0);
    assert.deepEqual([a.code, a.stderr], [b.code, b.stderr], args.join(' '));
  }
  const left = await w!.docker(['ps', '-aq']);
  assert.equal(left.stdout, '', 'nothing was created');
});

test('none: output still reaches the attached client, logs are refused (501)', { skip: !haveDockerd }, async () => {
  for (const [engine, d] of both()) {
    const x = await d.docker(['run', '--name', 'nl', '--log-driver', 'none', 'busybox', 'echo', 'hi']);
    assert.deepEqual([x.code, x.stdout], [0, 'hi\n'], `${engine}: ${show(x)}`);
    const l = await d.docker(['logs', 'nl']);
    assert.deepEqual([l.code, l.stderr], [1, 'Error response from daemon: configured logging driver does not support reading\n'], `${engine}: ${show(l)}`);
    const api = await d.api('GET', '/containers/nl/logs?stdout=1');
    assert.equal(api.status, 501, engine);
    await d.docker(['rm', '-f', 'nl']);
  }
});

test('json-file max-size/max-file: rotated, the newest lines kept in order; --tail, --details, LogConfig as dockerd', { skip: !haveDockerd }, async () => {
  const script = 'i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done';
  for (const [engine, d] of both()) {
    const x = await d.docker(['run', '--name', 'jf', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', script]);
    assert.equal(x.code, 0, `${engine}: ${show(x)}`);
    assert.equal(x.stdout.split('\n').filter(Boolean).length, 300, `${engine}: the attached client gets everything`);
    const l = await d.docker(['logs', 'jf']);
    const nums = l.stdout.split('\n').filter(Boolean).map((s) => Number(/^line-(\d+)-x+$/.exec(s)?.[1] ?? NaN));
    assert.ok(nums.length > 5 && nums.length < 300, `${engine}: rotation dropped the oldest (${nums.length} kept)`);
    assert.equal(nums.at(-1), 299, engine);
    assert.deepEqual(nums, nums.map((_, i) => nums[0]! + i), `${engine}: a contiguous run of the newest lines`);
  }
  // three files at most, none above max-size by more than a line (wharfd's directory)
  const id = (await w!.docker(['inspect', '-f', '{{.Id}}', 'jf'])).stdout.trim();
  const files = (await readdir(join(w!.dataRoot, 'containers', id))).filter((f) => /\.log(\.\d+)?$/.test(f));
  assert.ok(files.length >= 2 && files.length <= 3, files.join(','));
  for (const args of [['logs', '--tail', '2', 'jf'], ['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'jf']]) {
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.deepEqual([a.code, a.stdout], [b.code, b.stdout], args.join(' '));
  }
  for (const [, d] of both()) {
    assert.equal((await d.docker(['run', '--name', 'lc', '--log-driver', 'local', 'busybox', 'echo', 'hi'])).code, 0);
    assert.equal((await d.docker(['run', '--name', 'lab', '--label', 'a=b c', '-e', 'E1=v', '--log-opt', 'labels=a', '--log-opt', 'env=E1', 'busybox', 'echo', 'hi'])).code, 0);
  }
  for (const args of [
    ['logs', '--details', 'lc'], ['logs', '--details', 'lab'], ['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'lc'],
    ['logs', '--since', '1h', 'lc'], ['logs', '--until', '2000-01-01T00:00:00Z', 'lc'], ['logs', '--since', '2999-01-01T00:00:00Z', 'lc'],
  ]) {
    const [a, b] = [await w!.docker(args), await r!.docker(args)];
    assert.deepEqual([a.code, a.stdout, a.stderr], [b.code, b.stdout, b.stderr], args.join(' '));
  }
  // the wharf CLI resolves --since/--until itself, as docker does
  assert.equal((await w!.wharf(['logs', '--since', '1h', 'lc'])).stdout, 'hi\n');
  assert.equal((await w!.wharf(['logs', '--until', '2000-01-01T00:00:00Z', 'lc'])).stdout, '');
  for (const [, d] of both()) await d.docker(['rm', '-f', 'jf', 'lc', 'lab']);
});

test('daemon.json log-driver and log-opts are the defaults; a bad one stops the daemon', { skip: !haveDockerd }, async () => {
  const cfg = join(work, 'daemon.json');
  await writeFile(cfg, JSON.stringify({ 'log-driver': 'local', 'log-opts': { 'max-size': '2k' } }));
  const d = await startDaemon({ extraArgs: ['--config-file', cfg] });
  try {
    assert.equal((await d.wharf(['image', 'bootstrap', 'busybox'])).code, 0);
    const x = await d.docker(['run', '--name', 'dflt', 'busybox', 'echo', 'hi']);
    assert.equal(x.code, 0, show(x));
    const lc = await d.docker(['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'dflt']);
    assert.equal(lc.stdout, '{"Type":"local","Config":{"max-size":"2k"}}\n');
    // another driver named by the container does not take the daemon's options
    await d.docker(['run', '--name', 'own', '--log-driver', 'json-file', 'busybox', 'true']);
    assert.equal((await d.docker(['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'own'])).stdout, '{"Type":"json-file","Config":{}}\n');
    assert.equal((await d.docker(['logs', 'dflt'])).stdout, 'hi\n');
  } finally {
    await d.stop();
  }
  await writeFile(cfg, JSON.stringify({ 'log-driver': 'asdf' }));
  await assert.rejects(startDaemon({ extraArgs: ['--config-file', cfg], startTimeoutMs: 5000 }));
});

// dockerd 20.10 repeats lines when its follower crosses a rotation (328 of 300 lines here): wharfd alone is held
// to every line once, in order
test('logs -f follows across rotations: every line once, in order', { skip: !haveDockerd }, async () => {
  const script = 'sleep 1; i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done';
  for (const [engine, d] of both().slice(0, 1)) {
    const x = await d.docker(['run', '-d', '--name', 'fol', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', script]);
    assert.equal(x.code, 0, `${engine}: ${show(x)}`);
    const f = await d.docker(['logs', '-f', 'fol'], { timeoutMs: 30_000 });
    const nums = f.stdout.split('\n').filter(Boolean).map((l) => Number(/^line-(\d+)-x+$/.exec(l)?.[1] ?? NaN));
    assert.deepEqual(nums, Array.from({ length: 300 }, (_, i) => i), `${engine}: ${nums.length} lines followed`);
    await d.docker(['rm', '-f', 'fol']);
  }
});

test('rotation goes on after wharfd restarts and re-adopts the container', { skip: !haveDockerd }, async () => {
  const script = 'sleep 3; i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done';
  const x = await w!.docker(['run', '-d', '--name', 'rot', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', script]);
  assert.equal(x.code, 0, show(x));
  const id = x.stdout.trim();
  await w!.kill('SIGKILL');
  await w!.restart();
  const wait = await w!.docker(['wait', 'rot']);
  assert.equal(wait.stdout, '0\n', show(wait));
  const files = (await readdir(join(w!.dataRoot, 'containers', id))).filter((f) => /\.log(\.\d+)?$/.test(f)).sort();
  assert.deepEqual(files, ['container.log', 'container.log.1', 'container.log.2']);
  const nums = (await w!.docker(['logs', 'rot'])).stdout.split('\n').filter(Boolean).map((s) => Number(/^line-(\d+)-x+$/.exec(s)?.[1] ?? NaN));
  assert.ok(nums.length > 5 && nums.length < 300, `${nums.length} kept`);
  assert.deepEqual(nums, nums.map((_, i) => nums[0]! + i), 'a contiguous run of the newest lines');
  assert.equal(nums.at(-1), 299);
  await w!.docker(['rm', '-f', 'rot']);
});
