/**
 * containers/stats.ts on both cgroup layouts: the files of a v2 directory and of v1 controllers (fakes written
 * here, with the kernel's formats) become dockerd's StatsJSON fields; this host's own netns for the networks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oomKills, sampleAt, statsJson } from '../../src/engine/containers/stats.js';

async function files(dir: string, f: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [k, v] of Object.entries(f)) await writeFile(join(dir, k), v);
}

test('cgroup v2: cpu.stat, memory.*, pids.*, io.stat', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stats-v2-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await files(dir, {
    'cpu.stat': 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n',
    'memory.current': '1048576\n', 'memory.max': '67108864\n', 'memory.stat': 'anon 4096\ninactive_file 8192\nfile 12288\n',
    'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n',
    'pids.current': '3\n', 'pids.max': 'max\n', 'io.stat': '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n',
  });
  const s = await sampleAt({ v1: new Map(), v2: dir }, process.pid);
  assert.deepEqual(s.body.cpu_stats.cpu_usage, { total_usage: 2_500_000, usage_in_kernelmode: 500_000, usage_in_usermode: 2_000_000 });
  assert.deepEqual(s.body.cpu_stats.throttling_data, { periods: 7, throttled_periods: 2, throttled_time: 30_000 });
  assert.ok(s.body.cpu_stats.system_cpu_usage! > 0 && s.body.cpu_stats.online_cpus! >= 1);
  assert.deepEqual(s.body.memory_stats, { usage: 1048576, stats: { anon: 4096, inactive_file: 8192, file: 12288 }, limit: 67108864 });
  assert.deepEqual(s.body.pids_stats, { current: 3 });
  assert.deepEqual(s.body.blkio_stats.io_service_bytes_recursive, [{ major: 8, minor: 0, op: 'read', value: 100 }, { major: 8, minor: 0, op: 'write', value: 200 }]);
  assert.deepEqual(s.body.blkio_stats.io_serviced_recursive, [{ major: 8, minor: 0, op: 'read', value: 1 }, { major: 8, minor: 0, op: 'write', value: 2 }]);
  assert.equal(await oomKills({ dir, v2: true }), 1);
});

test('cgroup v1: cpuacct, cpu, memory, pids, blkio (throttle files when the CFQ ones are empty)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stats-v1-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await files(join(dir, 'cpuacct'), { 'cpuacct.usage': '3000\n', 'cpuacct.usage_percpu': '1000 2000 \n', 'cpuacct.stat': 'user 4\nsystem 1\n' });
  await files(join(dir, 'cpu'), { 'cpu.stat': 'nr_periods 5\nnr_throttled 1\nthrottled_time 999\n' });
  await files(join(dir, 'memory'), {
    'memory.usage_in_bytes': '2048\n', 'memory.max_usage_in_bytes': '4096\n', 'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.stat': 'cache 0\nrss 1024\ntotal_inactive_file 0\n', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
  });
  await files(join(dir, 'pids'), { 'pids.current': '1\n', 'pids.max': '50\n' });
  await files(join(dir, 'blkio'), {
    'blkio.io_service_bytes_recursive': 'Total 0\n', 'blkio.io_serviced_recursive': 'Total 0\n',
    'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n',
    'blkio.throttle.io_serviced_recursive': '8:0 Read 1\n8:0 Write 0\n8:0 Total 1\nTotal 1\n',
  });
  const v1 = new Map(['cpuacct', 'cpu', 'memory', 'pids', 'blkio'].map((c) => [c, join(dir, c)] as [string, string]));
  const s = await sampleAt({ v1, v2: null }, process.pid);
  assert.deepEqual(s.body.cpu_stats.cpu_usage, { total_usage: 3000, percpu_usage: [1000, 2000], usage_in_kernelmode: 10_000_000, usage_in_usermode: 40_000_000 });
  assert.deepEqual(s.body.cpu_stats.throttling_data, { periods: 5, throttled_periods: 1, throttled_time: 999 });
  assert.equal(s.body.memory_stats.usage, 2048);
  assert.equal(s.body.memory_stats.max_usage, 4096);
  assert.ok(s.body.memory_stats.limit! < 9223372036854771712, 'an unlimited cgroup reports the host memory');
  assert.deepEqual(s.body.pids_stats, { current: 1, limit: 50 });
  assert.deepEqual(s.body.blkio_stats.io_service_bytes_recursive!.map((e) => `${e.op}=${e.value}`), ['Read=4096', 'Write=0', 'Total=4096']);
  assert.equal(await oomKills({ dir: join(dir, 'memory'), v2: false }), 2);
  // the answer: precpu from the previous reading, name and id from the record
  const rec = { Name: '/x', ID: 'a'.repeat(64) } as Parameters<typeof statsJson>[0];
  const j = statsJson(rec, s, s);
  assert.equal(j.preread, j.read);
  assert.deepEqual(statsJson(rec, null, null).memory_stats, {});
});
