/**
 * docker stats and docker update (issue 14 item 4), and State.OOMKilled (item 3): real numbers read from the
 * container's cgroups and netns (`docker stats --no-stream`, the raw API's stream=false / one-shot, dockerode's
 * stream), resources changed live (`docker update`), the kernel's OOM kill seen in inspect.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';

let d: Daemon;
let docker: Docker;

before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.sock });
  await loadBusybox(d);
  // one container burning CPU, one idle
  for (const [name, cmd] of [['busy', 'while :; do :; done'], ['idle', 'sleep 1000']] as const) {
    const r = await d.docker(['run', '-d', '--name', name, 'busybox', 'sh', '-c', cmd]);
    assert.equal(r.code, 0, show(r));
  }
});
after(async () => {
  await d?.docker(['rm', '-f', 'busy', 'idle']).catch(() => {});
  await d?.stop();
});

/** Keys of dockerd 20.10's StatsJSON for a running container on a bridge (cgroup v1 here). */
const STATS_KEYS = ['read', 'preread', 'pids_stats', 'blkio_stats', 'num_procs', 'storage_stats', 'cpu_stats', 'precpu_stats', 'memory_stats', 'name', 'id', 'networks'];

test('docker stats --no-stream shows real numbers: CPU of a busy loop, memory, network, pids', async () => {
  const r = await d.docker(['stats', '--no-stream', '--format', '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.PIDs}}']);
  assert.equal(r.code, 0, show(r));
  const rows = Object.fromEntries(r.stdout.trim().split('\n').map((l) => { const f = l.split('|'); return [f[0], f.slice(1)]; }));
  assert.deepEqual(Object.keys(rows).sort(), ['busy', 'idle']);
  const [cpu, mem, net, pids] = rows.busy as string[];
  assert.ok(Number.parseFloat(cpu!) > 20, `busy CPU ${cpu}`);
  assert.ok(Number.parseFloat((rows.idle as string[])[0]!) < 20, `idle CPU ${(rows.idle as string[])[0]}`);
  assert.match(mem!, /^\d+(\.\d+)?(B|KiB|MiB) \/ \d+(\.\d+)?GiB$/);
  assert.match(net!, /^\d+(\.\d+)?(B|kB) \/ \d+(\.\d+)?(B|kB)$/);
  assert.equal(pids, '1'); // sh alone: the loop is a shell builtin
});

test('GET /containers/{id}/stats: dockerd\'s shape, precpu for stream=false, none for one-shot, a stream through dockerode', async () => {
  const r = await d.api('GET', '/containers/busy/stats?stream=false');
  assert.equal(r.status, 200, r.body);
  const s = JSON.parse(r.body);
  assert.deepEqual(Object.keys(s), STATS_KEYS);
  assert.equal(s.name, '/busy');
  // the inner shapes of dockerd 20.10's answer on this (cgroup v1) host
  assert.deepEqual(Object.keys(s.cpu_stats), ['cpu_usage', 'system_cpu_usage', 'online_cpus', 'throttling_data']);
  assert.deepEqual(Object.keys(s.cpu_stats.cpu_usage), ['total_usage', 'percpu_usage', 'usage_in_kernelmode', 'usage_in_usermode']);
  assert.deepEqual(Object.keys(s.memory_stats), ['usage', 'max_usage', 'stats', 'limit']);
  assert.ok('total_inactive_file' in s.memory_stats.stats && 'hierarchical_memory_limit' in s.memory_stats.stats, Object.keys(s.memory_stats.stats).join(','));
  assert.deepEqual(Object.keys(s.blkio_stats), ['io_service_bytes_recursive', 'io_serviced_recursive', 'io_queue_recursive', 'io_service_time_recursive', 'io_wait_time_recursive', 'io_merged_recursive', 'io_time_recursive', 'sectors_recursive']);
  assert.deepEqual(Object.keys(s.networks.eth0), ['rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped']);
  assert.deepEqual(s.pids_stats, { current: 1 }, 'no limit when pids.max is "max", as dockerd');
  assert.ok(s.cpu_stats.cpu_usage.total_usage > s.precpu_stats.cpu_usage.total_usage, 'CPU time grew between the samples');
  assert.ok(s.cpu_stats.system_cpu_usage > s.precpu_stats.system_cpu_usage);
  assert.ok(s.cpu_stats.online_cpus >= 1);
  assert.ok(s.memory_stats.usage > 0 && s.memory_stats.limit > s.memory_stats.usage);
  assert.ok('eth0' in s.networks, JSON.stringify(s.networks));
  assert.ok(s.pids_stats.current >= 1);
  const one = JSON.parse((await d.api('GET', '/containers/idle/stats?stream=false&one-shot=true')).body);
  assert.equal(one.preread, '0001-01-01T00:00:00Z');
  assert.equal(one.precpu_stats.cpu_usage.total_usage, 0);
  assert.notEqual(one.read, '0001-01-01T00:00:00Z');
  // in the host's netns (or none) there are no networks of the container's own, as dockerd reports it
  assert.equal((await d.docker(['run', '-d', '--name', 'hostnet', '--network', 'host', 'busybox', 'sleep', '100'])).code, 0);
  const hn = JSON.parse((await d.api('GET', '/containers/hostnet/stats?stream=false&one-shot=true')).body);
  assert.equal('networks' in hn, false, JSON.stringify(hn.networks));
  assert.ok(hn.memory_stats.usage > 0);
  await d.docker(['rm', '-f', 'hostnet']);
  // a stopped container answers zeros; an unknown one 404
  assert.equal((await d.docker(['create', '--name', 'stopped', 'busybox'])).code, 0);
  const z = JSON.parse((await d.api('GET', '/containers/stopped/stats?stream=false')).body);
  assert.deepEqual([z.read, z.name, z.memory_stats, z.cpu_stats.cpu_usage.total_usage], ['0001-01-01T00:00:00Z', '/stopped', {}, 0]);
  assert.equal((await d.api('GET', '/containers/nope/stats?stream=false')).status, 404);
  await d.docker(['rm', 'stopped']);
  // dockerode streams one answer a second; the second has the first as precpu
  const stream = await docker.getContainer('busy').stats({ stream: true }) as unknown as NodeJS.ReadableStream & { destroy(): void };
  const got: any[] = [];
  let buf = '';
  await new Promise<void>((res, rej) => {
    stream.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { got.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
      if (got.length >= 2) res();
    });
    stream.on('error', rej);
  });
  stream.destroy();
  assert.equal(got[0].preread, '0001-01-01T00:00:00Z');
  assert.equal(got[1].preread, got[0].read);
  assert.equal(got[1].precpu_stats.cpu_usage.total_usage, got[0].cpu_stats.cpu_usage.total_usage);
});

test('docker update changes limits live and in the record; dockerd\'s refusals', async () => {
  const u = await d.docker(['update', '--memory', '64m', '--memory-swap', '-1', '--pids-limit', '50', '--cpus', '0.5', '--restart', 'on-failure:3', 'idle']);
  assert.equal(u.code, 0, show(u));
  assert.equal(u.stdout, 'idle\n');
  const hc = JSON.parse((await d.docker(['inspect', '-f', '{{json .HostConfig}}', 'idle'])).stdout);
  assert.deepEqual([hc.Memory, hc.MemorySwap, hc.PidsLimit, hc.NanoCpus, hc.RestartPolicy], [67108864, -1, 50, 500000000, { Name: 'on-failure', MaximumRetryCount: 3 }]);
  // live: the cgroup reports the new limits
  const s = JSON.parse((await d.api('GET', '/containers/idle/stats?stream=false&one-shot=true')).body);
  assert.equal(s.memory_stats.limit, 67108864);
  assert.equal(s.pids_stats.limit, 50);
  // dockerode's update, then a value create refuses too
  await docker.getContainer('idle').update({ CpuShares: 512 });
  assert.equal((await d.docker(['inspect', '-f', '{{.HostConfig.CpuShares}}', 'idle'])).stdout, '512\n');
  const bad = await d.api('POST', '/containers/idle/update', JSON.stringify({ Memory: 1024 }));
  assert.equal(bad.status, 400, bad.body);
  // dockerd checks the request's own values first and words their refusal as create does, without "Cannot update…"
  assert.equal(JSON.parse(bad.body).message, 'Minimum memory limit allowed is 6MB');
  // a value of the wrong type is refused, the record untouched
  const typed = await d.api('POST', '/containers/idle/update', JSON.stringify({ Memory: 'lots', PidsLimit: 7 }));
  assert.equal(typed.status, 400, typed.body);
  assert.equal((await d.docker(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', 'idle'])).stdout, '67108864 50\n');
  const rm = await d.docker(['run', '-d', '--rm', '--name', 'auto', 'busybox', 'sleep', '100']);
  assert.equal(rm.code, 0, show(rm));
  const ar = await d.api('POST', '/containers/auto/update', JSON.stringify({ RestartPolicy: { Name: 'always' } }));
  assert.deepEqual([ar.status, JSON.parse(ar.body).message], [400, 'Restart policy cannot be updated because AutoRemove is enabled for the container']);
  await d.docker(['rm', '-f', 'auto']);
});

test('State.OOMKilled is set when the kernel kills the container for memory', async () => {
  const r = await d.docker(['run', '--name', 'oom', '-m', '8m', '--memory-swap', '8m', 'busybox', 'sh', '-c', 'x=$(head -c 50m /dev/zero | tr "\\0" a); echo ${#x}']);
  assert.equal(r.code, 137, show(r) + (await d.docker(['inspect', '-f', '{{json .State}} {{json .HostConfig}}', 'oom'])).stdout);
  assert.equal((await d.docker(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', 'oom'])).stdout, 'true 137\n');
  // a second run is killed again (the flag is reset at each start); a container exiting by itself has none
  const again = await d.docker(['start', '-a', 'oom']);
  assert.equal(again.code, 137, show(again));
  const ok = await d.docker(['run', '--name', 'nooom', '-m', '8m', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(ok.code, 3, show(ok));
  assert.equal((await d.docker(['inspect', '-f', '{{.State.OOMKilled}}', 'nooom'])).stdout, 'false\n');
  await d.docker(['rm', 'oom', 'nooom']);
});
