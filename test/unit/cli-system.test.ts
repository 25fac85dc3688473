/** wharf version / info rendering against the reference trace's answers and the transcript's output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runVersion, renderServerInfo, ansic } from '../../src/cli/commands/system.js';
import type { CliContext } from '../../src/cli/context.js';
import type { EngineClient } from '../../src/client/client.js';

const VERSION = {"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2026-05-07T21:09:36.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8","KernelVersion":"6.18.44-fc-v669","MinAPIVersion":"1.12","Os":"linux"}},{"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}},{"Name":"runc","Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}},{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.18.44-fc-v669","BuildTime":"2026-05-07T21:09:36.000000000+00:00"};

function fakeContext(client: Partial<EngineClient>): { ctx: CliContext; out: () => string } {
  let out = '';
  const ctx: CliContext = {
    globals: { debug: false, logLevel: 'info', config: '/nonexistent', tls: false, tlsverify: false },
    out: (s) => { out += s; },
    err: () => {},
    isTerminal: false,
    columns: 200,
    client: async () => client as EngineClient,
    readLine: async () => '',
    stdio: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  };
  return { ctx, out: () => out };
}

test('version: client section, then the server components (transcript layout)', async () => {
  const { ctx, out } = fakeContext({ apiVersion: async () => '1.40', version: async () => structuredClone(VERSION) as never });
  await runVersion(ctx, [], {});
  const lines = out().split('\n');
  assert.equal(lines[0], 'Client:');
  assert.equal(lines[1], ' Version:           0.1.0');
  assert.equal(lines[2], ' API version:       1.40 (downgraded from 1.41)');
  assert.match(lines[3]!, /^ Go version: {8}node\d+/);
  assert.equal(lines[7], ' Context:           default');
  assert.equal(lines.slice(8).join('\n'), `
Server:
 Engine:
  Version:          20.10.24+dfsg1
  API version:      1.41 (minimum version 1.12)
  Go version:       go1.19.8
  Git commit:       5d6db84
  Built:            Thu May  7 21:09:36 2026
  OS/Arch:          linux/amd64
  Experimental:     false
 containerd:
  Version:          1.6.20~ds1
  GitCommit:        1.6.20~ds1-1+deb12u3
 runc:
  Version:          1.1.5+ds1
  GitCommit:        1.1.5+ds1-1+deb12u1
 docker-init:
  Version:          0.19.0
  GitCommit:        
`);
});

test('version --format', async () => {
  const { ctx, out } = fakeContext({ apiVersion: async () => '1.41', version: async () => structuredClone(VERSION) as never });
  await runVersion(ctx, [], { format: '{{.Server.APIVersion}} {{.Client.Version}}' });
  assert.equal(out(), '1.41 0.1.0\n');
});

test('info: the server section as docker prints it (transcript), Wharf root wording', () => {
  const info = {
    ID: 'FNJI:DI6Y:4ONJ:VKGY:T4PB:P2NP:3ZQ6:NQEY:K5DW:IJ4Q:PWRX:AJL5', Containers: 0, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: 2,
    Driver: 'overlay2', DriverStatus: [['Backing Filesystem', 'extfs'], ['Supports d_type', 'true'], ['Native Overlay Diff', 'true'], ['userxattr', 'false']],
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'ipvlan', 'macvlan', 'null', 'overlay'], Authorization: null, Log: ['awslogs', 'fluentd', 'gcplogs', 'gelf', 'journald', 'json-file', 'local', 'logentries', 'splunk', 'syslog'] },
    Debug: false, LoggingDriver: 'json-file', CgroupDriver: 'cgroupfs', CgroupVersion: '1', KernelVersion: '6.18.44-fc-v669',
    OperatingSystem: 'Debian GNU/Linux 12 (bookworm)', OSType: 'linux', Architecture: 'x86_64', NCPU: 2, MemTotal: 25276502016, Name: 'vm',
    DockerRootDir: '/var/lib/docker', ServerVersion: '20.10.24+dfsg1', ExperimentalBuild: false, LiveRestoreEnabled: false,
    RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: { 'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true } }, Mirrors: [] },
    Runtimes: { 'io.containerd.runtime.v1.linux': {}, runc: {}, 'io.containerd.runc.v2': {} }, DefaultRuntime: 'runc', Swarm: { LocalNodeState: 'inactive' },
    InitBinary: 'docker-init', ContainerdCommit: { ID: '1.6.20~ds1-1+deb12u3', Expected: '1.6.20~ds1-1+deb12u3' },
    RuncCommit: { ID: '1.1.5+ds1-1+deb12u1', Expected: '1.1.5+ds1-1+deb12u1' }, InitCommit: { ID: '', Expected: '' },
    SecurityOptions: ['name=seccomp,profile=default'], Warnings: ['WARNING: x'],
  };
  const r = renderServerInfo(info, false);
  assert.deepEqual(r.warnings, ['WARNING: x']);
  assert.equal(r.out, ` Containers: 0
  Running: 0
  Paused: 0
  Stopped: 0
 Images: 2
 Server Version: 20.10.24+dfsg1
 Storage Driver: overlay2
  Backing Filesystem: extfs
  Supports d_type: true
  Native Overlay Diff: true
  userxattr: false
 Logging Driver: json-file
 Cgroup Driver: cgroupfs
 Cgroup Version: 1
 Plugins:
  Volume: local
  Network: bridge host ipvlan macvlan null overlay
  Log: awslogs fluentd gcplogs gelf journald json-file local logentries splunk syslog
 Swarm: inactive
 Runtimes: io.containerd.runtime.v1.linux runc io.containerd.runc.v2
 Default Runtime: runc
 Init Binary: docker-init
 containerd version: 1.6.20~ds1-1+deb12u3
 runc version: 1.1.5+ds1-1+deb12u1
 init version: 
 Security Options:
  seccomp
   Profile: default
 Kernel Version: 6.18.44-fc-v669
 Operating System: Debian GNU/Linux 12 (bookworm)
 OSType: linux
 Architecture: x86_64
 CPUs: 2
 Total Memory: 23.54GiB
 Name: vm
 ID: FNJI:DI6Y:4ONJ:VKGY:T4PB:P2NP:3ZQ6:NQEY:K5DW:IJ4Q:PWRX:AJL5
 Wharf Root Dir: /var/lib/docker
 Debug Mode: false
 Experimental: false
 Insecure Registries:
  127.0.0.0/8
 Live Restore Enabled: false

`);
});

test('ansic: Go time.ANSIC with a space-padded day', () => {
  assert.equal(ansic('2026-05-07T21:09:36.000000000+00:00'), 'Thu May  7 21:09:36 2026');
  assert.equal(ansic('2026-11-24T18:34:17Z'), 'Tue Nov 24 18:34:17 2026');
});
