import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type DaemonConfig } from '../../src/engine/config.js';
import { SystemService, newEngineId, readOsRelease } from '../../src/engine/system/system.js';
import { goArch } from '../../src/lib/go.js';
import type { ImageSummary } from '../../src/api/backend.js';

function summary(id: string, size: number): ImageSummary {
  return { Id: id, ParentId: '', RepoTags: ['x:1'], RepoDigests: [], Created: 1, Size: size, SharedSize: 0, Labels: null, Containers: 0 };
}

async function withService(cfg: Partial<DaemonConfig>, fn: (s: SystemService, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-system-'));
  try {
    const config: DaemonConfig = { ...DEFAULT_CONFIG, dataRoot: join(dir, 'data'), ...cfg };
    let dfCalls = 0;
    const s = new SystemService({
      config, version: '9.8.7', driverName: 'vfs',
      countImages: async () => 3,
      imagesDiskUsage: async () => { dfCalls++; return { LayersSize: 1234 + dfCalls, Images: [summary('sha256:a', 10)] }; },
    });
    await fn(s, config.dataRoot);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('version: docker shape with Engine component', async () => {
  await withService({}, async (s) => {
    const v = await s.version();
    assert.equal(v['Version'], '9.8.7');
    assert.equal(v['ApiVersion'], '1.41');
    assert.equal(v['MinAPIVersion'], '1.24');
    assert.equal(v['Os'], 'linux');
    assert.equal(v['Arch'], goArch());
    assert.match(String(v['GoVersion']), /^node\d+\.\d+\.\d+$/);
    const comps = v['Components'] as { Name: string; Version: string; Details: Record<string, string> }[];
    assert.equal(comps.length, 1);
    assert.equal(comps[0]!.Name, 'Engine');
    assert.equal(comps[0]!.Version, '9.8.7');
    assert.equal(comps[0]!.Details['ApiVersion'], '1.41');
    assert.equal(comps[0]!.Details['Experimental'], 'false');
    assert.ok(!Number.isNaN(Date.parse(String(v['BuildTime']))), 'BuildTime parses as a time');
    assert.equal(typeof (v['Platform'] as { Name: string }).Name, 'string');
  });
  assert.equal(goArch('x64'), 'amd64');
  assert.equal(goArch('arm64'), 'arm64');
});

test('info: fields docker info reads, registry config, persistent engine ID', async () => {
  await withService({ insecureRegistries: ['localhost:5002', '10.1.0.0/16'], registryMirrors: ['https://mirror.example'], debug: true }, async (s, dataRoot) => {
    const i = await s.info();
    assert.match(String(i['ID']), /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.equal((await readFile(join(dataRoot, 'engine-id'), 'utf8')).trim(), i['ID']);
    assert.equal((await s.info())['ID'], i['ID']);
    assert.equal(i['Images'], 3);
    assert.equal(i['Containers'], 0);
    assert.equal(i['Driver'], 'vfs');
    assert.ok(Array.isArray(i['DriverStatus']));
    assert.equal(i['Debug'], true);
    assert.equal(i['DockerRootDir'], dataRoot);
    assert.equal(i['ServerVersion'], '9.8.7');
    assert.equal(i['OSType'], 'linux');
    assert.equal(i['CgroupDriver'], 'cgroupfs');
    assert.match(String(i['CgroupVersion']), /^[12]$/);
    assert.equal(i['DefaultRuntime'], 'runc');
    assert.ok(Number(i['NCPU']) >= 1);
    assert.ok(Number(i['MemTotal']) > 0);
    assert.equal((i['Swarm'] as { LocalNodeState: string }).LocalNodeState, 'inactive');
    const rc = i['RegistryConfig'] as { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, { Secure: boolean; Mirrors: string[] }>; Mirrors: string[] };
    assert.deepEqual(rc.InsecureRegistryCIDRs, ['127.0.0.0/8', '10.1.0.0/16']);
    assert.equal(rc.IndexConfigs['localhost:5002']!.Secure, false);
    assert.equal(rc.IndexConfigs['docker.io']!.Secure, true);
    assert.deepEqual(rc.IndexConfigs['docker.io']!.Mirrors, ['https://mirror.example']);
    assert.deepEqual(rc.Mirrors, ['https://mirror.example']);
    assert.ok(Array.isArray(i['Warnings']));
    assert.ok(Array.isArray(i['SecurityOptions']));
  });
});

test('df: images from the disk-usage function, empty containers/volumes/build cache', async () => {
  await withService({}, async (s) => {
    const df = await s.df();
    assert.equal(df['LayersSize'], 1235);
    assert.deepEqual(df['Images'], [summary('sha256:a', 10)]);
    assert.deepEqual(df['Containers'], []);
    assert.deepEqual(df['Volumes'], []);
    assert.deepEqual(df['BuildCache'], []);
    assert.equal((await s.df())['LayersSize'], 1236);
  });
});

test('engine IDs and os-release parsing', async () => {
  const a = newEngineId();
  assert.notEqual(a, newEngineId());
  const dir = await mkdtemp(join(tmpdir(), 'wharf-osr-'));
  try {
    const p = join(dir, 'os-release');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(p, 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n# comment\n');
    assert.deepEqual(readOsRelease(p), { PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', VERSION_ID: '12', ID: 'debian' });
    assert.deepEqual(readOsRelease(join(dir, 'missing')), {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('info: container counts by state come from the container side', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-system-'));
  try {
    const s = new SystemService({
      config: { ...DEFAULT_CONFIG, dataRoot: join(dir, 'data') }, version: '1', driverName: 'vfs',
      countImages: async () => 0, imagesDiskUsage: async () => ({ LayersSize: 0, Images: [] }),
      containerCounts: () => ({ running: 2, paused: 1, stopped: 4 }),
    });
    const i = await s.info();
    assert.deepEqual([i.Containers, i.ContainersRunning, i.ContainersPaused, i.ContainersStopped], [7, 2, 1, 4]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
