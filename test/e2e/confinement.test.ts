/**
 * Confinement as dockerd's default profile, and bad container values refused at create (issue 12, items 4
 * and 5), with real containers: /proc/self/status inside (capability sets, NoNewPrivs, Seccomp), a static
 * probe compiled here (gcc -static) that calls clone(CLONE_NEWUSER), clone3, unshare(CLONE_NEWUSER) and
 * mount, every confinement option of `docker run` shown effective inside the container (cgroup files,
 * ulimits, /dev/shm, groups, mounts, sysctls, devices), and a table of bad create bodies through the API and
 * the CLIs (status and dockerd's message), plus a little fuzzing of the create body (no 500 that shows
 * JavaScript internals or host paths).
 *
 * WHARF_E2E_DAEMON=dockerd runs the same expectations against Debian's dockerd 20.10 (its busybox loaded
 * from a wharfd that bootstraps it); where dockerd 20.10 differs (a few 500s the issue asks to be 400s,
 * --privileged failing on a host whose daemon lacks CAP_SYS_RESOURCE) the test says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';

const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
let d: Daemon;
let work: string;

/** The daemon's bounding set is complete (dockerd's --privileged fails "unable to apply caps" otherwise). */
const fullBounding = (() => {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(execFileSync('cat', ['/proc/self/status'], { encoding: 'utf8' }));
  const last = Number(execFileSync('cat', ['/proc/sys/kernel/cap_last_cap'], { encoding: 'utf8' }).trim());
  return m ? BigInt(`0x${m[1]}`) === (1n << BigInt(last + 1)) - 1n : false;
})();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-confine-'));
  d = await startDaemon();
  await loadBusybox(d);
  // the probe: each call's result as name=ok|EPERM|ENOSYS|…
  await writeFile(join(work, 'probe.c'), `#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *res(long r) {
  if (r >= 0) return "ok";
  switch (errno) { case EPERM: return "EPERM"; case ENOSYS: return "ENOSYS"; case EACCES: return "EACCES"; case EINVAL: return "EINVAL"; default: return strerror(errno); }
}
static long reap(long r) { if (r == 0) _exit(0); if (r > 0) waitpid((pid_t)r, NULL, __WALL); return r; }
struct clone_args0 { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };
int main(void) {
  printf("clone_newuser=%s\\n", res(reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))));
  printf("clone=%s\\n", res(reap(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0))));
  struct clone_args0 a; memset(&a, 0, sizeof a); a.exit_signal = SIGCHLD;
  printf("clone3=%s\\n", res(reap(syscall(435, &a, sizeof a))));
  pid_t p = fork();
  if (p == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
  int st = 0; waitpid(p, &st, 0); errno = WEXITSTATUS(st);
  printf("unshare_newuser=%s\\n", res(errno ? -1 : 0));
  mkdir("/tmp/probe-mnt", 0755);
  long r = mount("probe", "/tmp/probe-mnt", "tmpfs", 0, NULL);
  printf("mount=%s\\n", res(r));
  if (r == 0) umount("/tmp/probe-mnt");
  return 0;
}
`);
  execFileSync('gcc', ['-static', '-O1', '-o', join(work, 'probe'), join(work, 'probe.c')]);
});

after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

type Cli = 'docker' | 'wharf';
const cli = (c: Cli, args: string[]): Promise<RunResult> => (c === 'docker' ? d.docker(args) : d.wharf(args));
const runIn = (c: Cli, flags: string[], cmd: string[]) => cli(c, ['run', '--rm', ...flags, 'busybox', ...cmd]);

function status(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(l);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const DEFAULT_CAPS = '00000000a80425fb';

test('/proc/self/status: no inheritable capabilities, docker\'s default sets, NoNewPrivs, Seccomp filter mode', async () => {
  const cases: { flags: string[]; want: Record<string, string> }[] = [
    { flags: [], want: { CapInh: '0000000000000000', CapPrm: DEFAULT_CAPS, CapEff: DEFAULT_CAPS, CapBnd: DEFAULT_CAPS, CapAmb: '0000000000000000', NoNewPrivs: '0', Seccomp: '2' } },
    { flags: ['--cap-add', 'SYS_ADMIN', '--cap-drop', 'CHOWN'], want: { CapInh: '0000000000000000', CapEff: '00000000a82425fa', CapBnd: '00000000a82425fa', Seccomp: '2' } },
    { flags: ['--cap-drop', 'ALL', '--cap-add', 'CHOWN'], want: { CapInh: '0000000000000000', CapEff: '0000000000000001', CapBnd: '0000000000000001' } },
    { flags: ['--cap-drop', 'ALL'], want: { CapEff: '0000000000000000', CapBnd: '0000000000000000', Seccomp: '2' } },
    { flags: ['--security-opt', 'no-new-privileges'], want: { NoNewPrivs: '1', Seccomp: '2', CapEff: DEFAULT_CAPS } },
    { flags: ['--security-opt', 'no-new-privileges=false'], want: { NoNewPrivs: '0' } },
    { flags: ['--security-opt', 'seccomp=unconfined'], want: { Seccomp: '0', CapEff: DEFAULT_CAPS, CapInh: '0000000000000000' } },
  ];
  for (const c of ['docker', 'wharf'] as Cli[]) {
    for (const k of cases) {
      const r = await runIn(c, k.flags, ['cat', '/proc/self/status']);
      assert.equal(r.code, 0, `${c} ${k.flags.join(' ')}: ${show(r)}`);
      const s = status(r.stdout);
      for (const [f, v] of Object.entries(k.want)) assert.equal(s[f], v, `${c} ${k.flags.join(' ')}: ${f}`);
    }
  }
  if (!reference || fullBounding) {
    // --privileged: no seccomp, every capability the daemon holds, still nothing inheritable
    const r = await runIn('docker', ['--privileged'], ['cat', '/proc/self/status']);
    assert.equal(r.code, 0, show(r));
    const s = status(r.stdout);
    assert.equal(s.Seccomp, '0');
    assert.equal(s.CapInh, '0000000000000000');
    const own = status(await readFile('/proc/self/status', 'utf8'));
    assert.equal(s.CapEff, own.CapBnd, 'privileged: the daemon\'s whole bounding set');
  }
});

test('syscalls: clone(CLONE_NEWUSER), clone3, unshare(CLONE_NEWUSER) and mount refused by default, allowed with CAP_SYS_ADMIN, unconfined as docker', async () => {
  const probe = ['-v', `${work}:/p:ro`];
  const cases: { flags: string[]; want: string }[] = [
    { flags: [], want: 'clone_newuser=EPERM clone=ok clone3=ENOSYS unshare_newuser=EPERM mount=EPERM' },
    { flags: ['--cap-drop', 'ALL'], want: 'clone_newuser=EPERM clone=ok clone3=ENOSYS unshare_newuser=EPERM mount=EPERM' },
    { flags: ['--cap-add', 'SYS_ADMIN'], want: 'clone_newuser=ok clone=ok clone3=ok unshare_newuser=ok mount=ok' },
    // seccomp off: the kernel lets anyone make a user namespace, but mount still needs CAP_SYS_ADMIN
    { flags: ['--security-opt', 'seccomp=unconfined'], want: 'clone_newuser=ok clone=ok clone3=ok unshare_newuser=ok mount=EPERM' },
  ];
  if (!reference || fullBounding) cases.push({ flags: ['--privileged'], want: 'clone_newuser=ok clone=ok clone3=ok unshare_newuser=ok mount=ok' });
  for (const c of ['docker', 'wharf'] as Cli[]) {
    for (const k of cases) {
      const r = await runIn(c, [...probe, ...k.flags], ['/p/probe']);
      assert.equal(r.code, 0, `${c} ${k.flags.join(' ')}: ${show(r)}`);
      assert.equal(r.stdout.trim().split('\n').join(' '), k.want, `${c} ${k.flags.join(' ')}`);
    }
  }
});

test('--security-opt seccomp=FILE: the CLIs send the file\'s JSON and the daemon applies it; a bad profile is refused', async () => {
  const profile = join(work, 'no-mkdir.json');
  await writeFile(profile, JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  }, null, 2));
  for (const c of ['docker', 'wharf'] as Cli[]) {
    const r = await runIn(c, ['--security-opt', `seccomp=${profile}`], ['sh', '-c', 'mkdir /made; echo rc=$?; grep ^Seccomp: /proc/self/status']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /rc=1\nSeccomp:\t2\n$/, `${c}: mkdir refused by the profile`);
    assert.match(r.stderr, /Operation not permitted/);
    const missing = await runIn(c, ['--security-opt', `seccomp=${join(work, 'nope.json')}`], ['true']);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, new RegExp(`opening seccomp profile \\(${join(work, 'nope.json')}\\) failed: open ${join(work, 'nope.json')}: no such file or directory`));
  }
  const bad = await d.api('POST', '/v1.41/containers/create', JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { SecurityOpt: ['seccomp={bad'] } }));
  if (reference) assert.equal(bad.status, 201, 'dockerd 20.10 only fails at start');
  else {
    assert.equal(bad.status, 400, bad.body);
    assert.match(JSON.parse(bad.body).message, /^Decoding seccomp profile failed: /);
  }
});

test('each confinement option of docker run is effective inside the container (the same through both CLIs)', async () => {
  const flags = [
    '--pids-limit', '42', '--cpu-shares', '512', '--cpuset-cpus', '0', '--cpuset-mems', '0',
    '-m', '64m', '--memory-swap', '128m', '--memory-reservation', '32m', '--oom-kill-disable', '--oom-score-adj', '123',
    '--ulimit', 'nproc=10:20', '--ulimit', 'nofile=100:200', '--shm-size', '2m', '--group-add', '1234', '--group-add', 'audio',
    '--tmpfs', '/t:size=1m,mode=1700', '--read-only', '--sysctl', 'kernel.shmmax=12345', '--sysctl', 'net.ipv4.ip_forward=1',
    '--device', '/dev/null:/dev/mynull', '--device-cgroup-rule', 'c 42:* r', '--userns', 'host', '--cap-drop', 'ALL', '--cap-add', 'CHOWN',
  ];
  const script = [
    'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems',
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes',
    'cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo no-swap-accounting',
    'grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control; cat /proc/self/oom_score_adj',
    'ulimit -u; ulimit -Hu; ulimit -n; ulimit -Hn',
    "df -k /dev/shm | awk 'NR==2{print $2}'; id -G",
    "grep ' /t ' /proc/mounts | cut -d' ' -f3,4; ls -ld /t | cut -c1-10",
    'touch /x 2>&1 | grep -o "Read-only file system"',
    'cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward',
    "ls -l /dev/mynull | awk '{print $1, $5, $6}'; grep -c '^c 42:\\* r$' /sys/fs/cgroup/devices/devices.list",
    'grep ^CapEff: /proc/self/status',
  ].join('; ');
  const want = [
    '42', '512', '0', '0', String(64 << 20), String(32 << 20), String(128 << 20), 'oom_kill_disable 1', '123',
    '10', '20', '100', '200', '2048', '0 10 29 1234', 'tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1700', 'drwx-----T',
    'Read-only file system', '12345', '1', 'crw-rw-rw- 1, 3', '1', 'CapEff:\t0000000000000001',
  ];
  const outs: Record<string, string> = {};
  for (const c of ['docker', 'wharf'] as Cli[]) {
    const r = await runIn(c, flags, ['sh', '-c', script]);
    assert.equal(r.code, 0, `${c}: ${show(r)}`);
    const got = r.stdout.trim().split('\n');
    if (got[6] === 'no-swap-accounting') want[6] = 'no-swap-accounting';
    assert.deepEqual(got, want, c);
    outs[c] = r.stdout;
  }
  assert.equal(outs.wharf, outs.docker);
});

test('--pid=host and --uts=host share the host\'s namespaces; PidMode container:<missing> is a 400', async () => {
  const hostPid = execFileSync('readlink', ['/proc/self/ns/pid'], { encoding: 'utf8' }).trim();
  const hostUts = execFileSync('readlink', ['/proc/self/ns/uts'], { encoding: 'utf8' }).trim();
  for (const c of ['docker', 'wharf'] as Cli[]) {
    const r = await runIn(c, ['--pid', 'host', '--uts', 'host'], ['sh', '-c', 'readlink /proc/self/ns/pid; readlink /proc/self/ns/uts; hostname']);
    assert.equal(r.code, 0, `${c}: ${show(r)}`);
    assert.equal(r.stdout, `${hostPid}\n${hostUts}\n${execFileSync('hostname', { encoding: 'utf8' })}`, c);
    const own = await runIn(c, [], ['readlink', '/proc/self/ns/pid']);
    assert.equal(own.code, 0, show(own));
    assert.notEqual(own.stdout.trim(), hostPid, `${c}: a container has its own pid namespace by default`);
  }
  if (!reference) {
    const r = await d.api('POST', '/v1.41/containers/create', JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { PidMode: 'container:x' } }));
    assert.equal(r.status, 400, r.body);
    assert.match(JSON.parse(r.body).message, /^No such container: x/);
  }
});

test('options refused with docker\'s messages: by the CLI before sending, by the daemon at create', async () => {
  const cases: { flags: string[]; msg: RegExp; cliSide: boolean }[] = [
    { flags: ['--security-opt', 'x'], msg: /Invalid --security-opt: "x"/, cliSide: true },
    { flags: ['--sysctl', 'vm.swappiness=1'], msg: /invalid argument "vm\.swappiness=1" for "--sysctl" flag: sysctl 'vm\.swappiness=1' is not allowed/, cliSide: true },
    { flags: ['--userns', 'foo'], msg: /--userns: invalid USER mode/, cliSide: true },
    { flags: ['--ulimit', 'bogus=1'], msg: /invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus/, cliSide: true },
    { flags: ['--cap-add', 'foo'], msg: /Error response from daemon: invalid CapAdd: unknown capability: "CAP_FOO"/, cliSide: false },
    { flags: ['--cap-drop', 'foo'], msg: /Error response from daemon: invalid CapDrop: unknown capability: "CAP_FOO"/, cliSide: false },
    { flags: ['--oom-score-adj', '2000'], msg: /Error response from daemon: Invalid value 2000, range for oom score adj is \[-1000, 1000\]/, cliSide: false },
    { flags: ['--cpuset-cpus', '4096'], msg: /Error response from daemon: Requested CPUs are not available - requested 4096, available: /, cliSide: false },
    { flags: ['-m', '1k'], msg: /Error response from daemon: Minimum memory limit allowed is 6MB/, cliSide: false },
    { flags: ['--restart', 'always', '--rm'], msg: /([Cc]onflicting options: cannot specify both --restart and --rm|can't create 'AutoRemove' container with restart policy)/, cliSide: true },
  ];
  for (const c of ['docker', 'wharf'] as Cli[]) {
    const ps0 = (await d.docker(['ps', '-aq'])).stdout;
    for (const k of cases) {
      const r = await runIn(c, k.flags, ['true']);
      assert.equal(r.code, 125, `${c} ${k.flags.join(' ')}: ${show(r)}`);
      assert.match(r.stderr, k.msg, `${c} ${k.flags.join(' ')}`);
    }
    assert.equal((await d.docker(['ps', '-aq'])).stdout, ps0, `${c}: no container was left by a refused create`);
  }
});

/** Bad create bodies: dockerd's message; status 400 (dockerd 20.10 still answers 500 for the ones marked). */
const BAD: { hc?: Record<string, unknown>; cfg?: Record<string, unknown>; msg: string; dockerd500?: boolean }[] = [
  { hc: { Memory: -1 }, msg: 'Minimum memory limit allowed is 6MB' },
  { hc: { Memory: -5_000_000_000 }, msg: 'Minimum memory limit allowed is 6MB' },
  { hc: { Memory: 'abc' }, msg: 'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64', dockerd500: true },
  { hc: { PortBindings: { '70000/tcp': [{ HostPort: '80' }] } }, msg: 'invalid port specification: "70000"' },
  { hc: { PortBindings: { '80/tcp': [{ HostPort: '70000' }] } }, msg: 'invalid port specification: "70000"' },
  { hc: { PortBindings: { '80/tcp': [{ HostPort: '90-80' }] } }, msg: 'invalid port specification: "90-80"' },
  { hc: { PortBindings: { '-1/tcp': [{ HostPort: '80' }] } }, msg: 'invalid port specification: "-1"' },
  { hc: { Binds: [':/x'] }, msg: "invalid volume specification: ':/x'", dockerd500: true },
  { hc: { Binds: ['a:b:c:d'] }, msg: "invalid volume specification: 'a:b:c:d'", dockerd500: true },
  { hc: { Binds: ['/tmp:/x:zz'] }, msg: 'invalid mode: zz', dockerd500: true },
  { hc: { RestartPolicy: { Name: 'sometimes' } }, msg: "invalid restart policy 'sometimes'" },
  { hc: { RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } }, msg: "maximum retry count cannot be used with restart policy 'always'" },
  { hc: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: -3 } }, msg: 'maximum retry count cannot be negative' },
  { hc: { SecurityOpt: ['x'] }, msg: 'invalid --security-opt 1: "x"', dockerd500: true },
  { hc: { SecurityOpt: ['foo=bar'] }, msg: 'invalid --security-opt 2: "foo=bar"', dockerd500: true },
  { hc: { MemorySwap: 50_000_000 }, msg: 'You should always set the Memory limit when using Memoryswap limit, see usage' },
  { hc: { OomScoreAdj: 2000 }, msg: 'Invalid value 2000, range for oom score adj is [-1000, 1000]' },
  { hc: { ShmSize: -1 }, msg: 'SHM size can not be less than 0' },
  { hc: { CpusetCpus: 'a-b' }, msg: 'Invalid value a-b for cpuset cpus: invalid format: a-b' },
  { hc: { Tmpfs: { rel: '' } }, msg: "invalid mount path: 'rel' mount path must be absolute" },
  { cfg: { Env: 'A=b' }, msg: 'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string', dockerd500: true },
  { cfg: { Env: [1] }, msg: 'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Env of type string', dockerd500: true },
  { cfg: { Cmd: [1] }, msg: 'json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string', dockerd500: true },
  { cfg: { Image: 'a'.repeat(5000) }, msg: 'repository name must not be more than 255 characters' },
];

test('bad create bodies through the API: dockerd\'s message, 400, nothing created', async () => {
  const list0 = (await d.api('GET', '/v1.41/containers/json?all=1')).body;
  for (const b of BAD) {
    const body = { Image: 'busybox', Cmd: ['true'], ...(b.cfg ?? {}), HostConfig: b.hc ?? {} };
    const r = await d.api('POST', '/v1.41/containers/create', JSON.stringify(body));
    const label = JSON.stringify(b.hc ?? b.cfg).slice(0, 100);
    assert.equal(r.status, reference && b.dockerd500 ? 500 : 400, `${label}: ${r.body.slice(0, 300)}`);
    const msg = JSON.parse(r.body).message as string;
    assert.equal(msg, b.msg, label);
  }
  assert.equal((await d.api('GET', '/v1.41/containers/json?all=1')).body, list0);
});

test('fuzzing the create body: no 500 carries JavaScript internals or host paths', { skip: reference && 'dockerd 20.10 answers 500 to JSON type errors' }, async () => {
  const long = 'x'.repeat(5000);
  const values: unknown[] = [null, 1, -1, 1.5, 'str', '', long, [], [1], ['a'], {}, { a: 1 }, true, 2 ** 70];
  const fields: [where: 'cfg' | 'hc', key: string][] = [
    ['cfg', 'Env'], ['cfg', 'Cmd'], ['cfg', 'Entrypoint'], ['cfg', 'User'], ['cfg', 'WorkingDir'], ['cfg', 'Labels'],
    ['cfg', 'ExposedPorts'], ['cfg', 'Volumes'], ['cfg', 'Hostname'], ['cfg', 'Healthcheck'], ['cfg', 'StopTimeout'], ['cfg', 'Tty'],
    ['hc', 'Binds'], ['hc', 'PortBindings'], ['hc', 'RestartPolicy'], ['hc', 'Memory'], ['hc', 'CapAdd'], ['hc', 'SecurityOpt'],
    ['hc', 'Sysctls'], ['hc', 'Ulimits'], ['hc', 'Tmpfs'], ['hc', 'Devices'], ['hc', 'Mounts'], ['hc', 'GroupAdd'], ['hc', 'Dns'],
    ['hc', 'ExtraHosts'], ['hc', 'NetworkMode'], ['hc', 'PidsLimit'], ['hc', 'CpusetCpus'], ['hc', 'LogConfig'],
  ];
  const extra: Record<string, unknown>[] = [
    { HostConfig: { Binds: [`${long}:/x`] } }, { HostConfig: { Binds: [`/tmp/${long}:/x`] } }, { Volumes: { [`/${long}`]: {} } },
    { HostConfig: { PortBindings: { [`${long}/tcp`]: [] } } }, { HostConfig: { Mounts: [{ Type: 'volume', Source: long, Target: '/x' }] } },
    { HostConfig: { Mounts: [{ Type: 'bind', Source: `/${long}`, Target: '/x' }] } }, { HostConfig: [] }, { HostConfig: 'x' },
    { Healthcheck: { Test: 5 } }, { ExposedPorts: { [long]: {} } },
  ];
  const bodies: { q: string; body: Record<string, unknown> }[] = [];
  for (const [where, key] of fields) {
    for (const v of values) {
      const body: Record<string, unknown> = { Image: 'busybox', Cmd: ['true'], HostConfig: {} };
      if (where === 'cfg') body[key] = v; else (body.HostConfig as Record<string, unknown>)[key] = v;
      bodies.push({ q: '', body });
    }
  }
  for (const e of extra) bodies.push({ q: '', body: { Image: 'busybox', Cmd: ['true'], ...e } });
  bodies.push({ q: `?name=${long}`, body: { Image: 'busybox', Cmd: ['true'] } });
  const leaks = /is not a function|Cannot read propert|undefined|\[object Object\]|TypeError|ReferenceError|ENAMETOOLONG|ENOENT|EACCES|at .*\.js:\d+/;
  const created: string[] = [];
  for (const { q, body } of bodies) {
    const r = await d.api('POST', `/v1.41/containers/create${q}`, JSON.stringify(body));
    const label = JSON.stringify(body).slice(0, 160);
    assert.notEqual(r.status, 500, `${label}: ${r.body.slice(0, 300)}`);
    assert.ok([201, 400, 404, 409].includes(r.status), `${label}: ${r.status} ${r.body.slice(0, 300)}`);
    const msg = r.status === 201 ? '' : String(JSON.parse(r.body).message);
    assert.doesNotMatch(msg, leaks, label);
    assert.ok(!msg.includes(d.dir) && !msg.includes(tmpdir()), `${label}: a host path in "${msg.slice(0, 300)}"`);
    if (r.status === 201) created.push(JSON.parse(r.body).Id);
  }
  for (const id of created) await d.api('DELETE', `/v1.41/containers/${id}?force=1&v=1`);
});

test('--ulimit above the daemon\'s own hard limit: clamped to it (runc could not raise it: no CAP_SYS_RESOURCE)', { skip: reference && 'dockerd fails at start: "error setting rlimits for ready process"' }, async () => {
  const limits = await readFile(`/proc/${d.pid}/limits`, 'utf8');
  const hard = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(limits)![1]);
  const r = await runIn('docker', ['--ulimit', 'nofile=99999999:99999999'], ['sh', '-c', 'ulimit -n; ulimit -Hn']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, `${hard}\n${hard}\n`);
});

test('exec: no inheritable capabilities and the container\'s seccomp filter', async () => {
  const name = 'confine-exec';
  const r = await d.docker(['run', '-d', '--name', name, 'busybox', 'sleep', '60']);
  assert.equal(r.code, 0, show(r));
  try {
    const e = await d.docker(['exec', name, 'cat', '/proc/self/status']);
    assert.equal(e.code, 0, show(e));
    const s = status(e.stdout);
    assert.equal(s.CapInh, '0000000000000000');
    assert.equal(s.CapEff, DEFAULT_CAPS);
    assert.equal(s.Seccomp, '2');
  } finally {
    await d.docker(['rm', '-f', name]);
  }
});

test('userns-remap: wharfd refuses to start with it, naming the option', { skip: reference && 'dockerd supports userns-remap' }, async () => {
  await assert.rejects(startDaemon({ extraArgs: ['--userns-remap', 'default'] }), /userns-remap "default": user namespace remapping is not supported by wharfd/);
});
