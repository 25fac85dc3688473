/**
 * Create-body validation (engine/containers/hostconfig.ts), docker's default seccomp profile resolved per
 * container (engine/runtime/seccomp.ts), capabilities and the confinement fields of the runtime spec, and
 * wharfd refusing userns-remap. Pure: no daemon, no containers (test/e2e/confinement.test.ts runs them).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateCreateBody, parseBind, parseSecurityOpts, specOptionsOf, namespaceOptionsOf, type NamespaceDonor } from '../../src/engine/containers/hostconfig.js';
import { defaultProfile, toOciSeccomp, CLONE_NAMESPACE_FLAGS, parseSeccompJson } from '../../src/engine/runtime/seccomp.js';
import { buildSpec, capabilitiesOf, DEFAULT_CAPABILITIES, ALL_CAPS } from '../../src/engine/runtime/spec.js';
import { ConfigError, parseDaemonArgs } from '../../src/daemon/config.js';
import { InvalidParameterError } from '../../src/lib/errors.js';
import { decodeGo } from '../../src/api/decode.js';
import { CONTAINER_CREATE } from '../../src/wire/schema.js';
import type { ContainerCreateRequest } from '../../src/wire/index.js';

const body = (hc: Record<string, unknown> = {}, cfg: Record<string, unknown> = {}) => ({ Image: 'busybox', Cmd: ['true'], ...cfg, HostConfig: hc });

/** Asserts a 400 (InvalidParameterError) with exactly this message: the body decoded as the API does, then checked. */
function refused(b: Record<string, unknown>, message: string | RegExp): void {
  assert.throws(() => validateCreateBody(decodeGo<ContainerCreateRequest>(b, CONTAINER_CREATE)), (e: Error) => {
    assert.ok(e instanceof InvalidParameterError, `${e.constructor.name}: ${e.message}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('create body validation (dockerd messages, 400)', () => {
  test('JSON types: Go unmarshal messages; strslice fields take a string', () => {
    refused(body({}, { Env: 'A=b' }), 'json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string');
    refused(body({}, { Env: [1] }), 'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Env of type string');
    refused(body({}, { Env: { a: 1 } }), 'json: cannot unmarshal object into Go struct field ContainerConfigWrapper.Env of type []string');
    refused(body({}, { Cmd: [1] }), 'json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string');
    refused(body({ Memory: 'abc' }), 'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64');
    refused(body({ Binds: 'x' }), 'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Binds of type []string');
    refused(body({}, { Labels: { a: 1 } }), 'json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Labels of type string');
    const b = decodeGo<ContainerCreateRequest>(body({ CapAdd: 'SYS_ADMIN' }, { Cmd: 'true', Entrypoint: 'sh' }), CONTAINER_CREATE);
    assert.deepEqual(validateCreateBody(b), { warnings: [] });
    assert.deepEqual(b.Cmd, ['true']);
    assert.deepEqual(b.Entrypoint, ['sh']);
    assert.deepEqual(b.HostConfig?.CapAdd, ['SYS_ADMIN']);
  });

  test('memory, cpu, cpuset, oom score, shm', () => {
    refused(body({ Memory: -1 }), 'Minimum memory limit allowed is 6MB');
    refused(body({ Memory: 1000 }), 'Minimum memory limit allowed is 6MB');
    refused(body({ Memory: 10_000_000, MemorySwap: 5_000_000 }), 'Minimum memoryswap limit should be larger than memory limit, see usage');
    refused(body({ MemorySwap: 50_000_000 }), 'You should always set the Memory limit when using Memoryswap limit, see usage');
    refused(body({ MemoryReservation: 100 }), 'Minimum memory reservation allowed is 6MB');
    refused(body({ Memory: 10_000_000, MemoryReservation: 20_000_000 }), 'Minimum memory limit can not be less than memory reservation limit, see usage');
    refused(body({ CpusetCpus: 'a-b' }), 'Invalid value a-b for cpuset cpus: invalid format: a-b');
    refused(body({ CpusetCpus: '4096' }), /^Requested CPUs are not available - requested 4096, available: /);
  });

  test('ports, binds, restart policies', () => {
    refused(body({ PortBindings: { '70000/tcp': [{ HostPort: '80' }] } }), 'invalid port specification: "70000"');
    refused(body({ PortBindings: { '-1/tcp': [{ HostPort: '80' }] } }), 'invalid port specification: "-1"');
    refused(body({ PortBindings: { '80/tcp': [{ HostPort: '90-80' }] } }), 'invalid port specification: "90-80"');
    refused(body({ PortBindings: { '80/tcp': [{ HostPort: '70000' }] } }), 'invalid port specification: "70000"');
    refused(body({ Binds: [':/x'] }), "invalid volume specification: ':/x'");
    refused(body({ Binds: ['a:b:c:d'] }), "invalid volume specification: 'a:b:c:d'");
    refused(body({ Binds: ['/tmp:/x:zz'] }), 'invalid mode: zz');
    refused(body({ Binds: ['/tmp:/x:ro,rw'] }), 'invalid mode: ro,rw');
    refused(body({ Binds: ['/tmp:x'] }), `invalid volume specification: '/tmp:x': invalid mount config for type "bind": invalid mount path: 'x' mount path must be absolute`);
    refused(body({ RestartPolicy: { Name: 'sometimes' } }), "invalid restart policy 'sometimes'");
    refused(body({ RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } }), "maximum retry count cannot be used with restart policy 'always'");
    refused(body({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: -3 } }), 'maximum retry count cannot be negative');
    assert.deepEqual(parseBind('/a:/b:ro,rshared'), { source: '/a', destination: '/b', mode: 'ro,rshared', rw: false, propagation: 'rshared', volume: false });
    assert.deepEqual(parseBind('vol:/data/'), { source: 'vol', destination: '/data', mode: '', rw: true, volume: true });
  });

  test('security options, capabilities, sysctls, ulimits, userns, devices', () => {
    refused(body({ SecurityOpt: ['x'] }), 'invalid --security-opt 1: "x"');
    refused(body({ SecurityOpt: ['foo=bar'] }), 'invalid --security-opt 2: "foo=bar"');
    refused(body({ SecurityOpt: ['no-new-privileges=maybe'] }), 'invalid --security-opt 2: "no-new-privileges=maybe"');
    refused(body({ SecurityOpt: ['seccomp={bad'] }), /^Decoding seccomp profile failed: /);
    refused(body({ CapAdd: ['foo'] }), 'invalid CapAdd: unknown capability: "CAP_FOO"');
    refused(body({ CapDrop: ['bar'] }), 'invalid CapDrop: unknown capability: "CAP_BAR"');
    refused(body({ Sysctls: { 'vm.swappiness': '1' } }), 'sysctl "vm.swappiness" is not in a separate kernel namespace');
    refused(body({ NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } }), 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace');
    refused(body({ Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 2 }] }), 'invalid ulimit type: bogus');
    refused(body({ Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 5 }] }), 'ulimit soft limit must be less than or equal to hard limit: 10 > 5');
    refused(body({ UsernsMode: 'foo' }), 'invalid UsernsMode "foo": wharfd does not remap users, only "host" is supported');
    refused(body({ DeviceCgroupRules: ['x 1:2 r'] }), "invalid device cgroup format 'x 1:2 r'");
    refused(body({ Tmpfs: { rel: '' } }), "invalid mount path: 'rel' mount path must be absolute");
    refused(body({ Devices: [{ PathOnHost: '/nonexistent-dev', PathInContainer: '/dev/x', CgroupPermissions: 'rwm' }] }),
      'error gathering device information while adding custom device "/nonexistent-dev": no such file or directory');
    refused(body({ OomScoreAdj: 2000 }), 'Invalid value 2000, range for oom score adj is [-1000, 1000]');
    refused(body({ ShmSize: -1 }), 'SHM size can not be less than 0');
    refused(body({ PidMode: 'bogus' }), 'PidMode "bogus" is not supported by wharfd (--pid accepts "host")');
    refused(body({ IpcMode: 'bogus' }), 'Invalid IPC mode: bogus');
    refused(body({ Runtime: 'nosuch' }), 'Unknown runtime specified nosuch');
    refused(body({ StorageOpt: { size: '1G' } }), "--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
    assert.deepEqual(validateCreateBody(body({ PidMode: 'container:abc', IpcMode: 'container:abc' })).warnings, []);
    assert.deepEqual(specOptionsOf({ IpcMode: 'host' }).hostNamespaces, ['ipc']);
    assert.equal(specOptionsOf({ IpcMode: 'host' }).shmDir, '/dev/shm');
    assert.equal(specOptionsOf({ IpcMode: 'none' }).shmDir, '');
    assert.deepEqual(specOptionsOf({ Mounts: [{ Type: 'tmpfs', Target: '/t', ReadOnly: true, TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1770 } }] }).tmpfs, { '/t': 'size=1048576,mode=1770,ro' });
    const donor = (state: Partial<NamespaceDonor>) => () => ({ id: 'd1', running: true, pid: 42, ipcMode: 'shareable', dir: '/c/d1', ...state });
    assert.deepEqual(namespaceOptionsOf({ PidMode: 'container:x', IpcMode: 'container:x' }, '/c/me', donor({})),
      { joinNamespaces: [{ type: 'pid', path: '/proc/42/ns/pid' }, { type: 'ipc', path: '/proc/42/ns/ipc' }], shmDir: '/c/d1/shm' });
    assert.deepEqual(namespaceOptionsOf({ IpcMode: 'shareable' }, '/c/me', donor({})), { shmDir: '/c/me/shm' });
    assert.throws(() => namespaceOptionsOf({ PidMode: 'container:x' }, '/c/me', donor({ running: false })), /^ConflictError: container d1 is not running$|container d1 is not running/);
    assert.throws(() => namespaceOptionsOf({ IpcMode: 'container:x' }, '/c/me', donor({ ipcMode: 'private' })), /can't join IPC of container d1: non-shareable IPC \(hint: use IpcMode:shareable for the donor container\)/);
    refused(body({ UTSMode: 'host', Sysctls: { 'kernel.domainname': 'x' } }), 'sysctl "kernel.domainname" not allowed in host UTS namespace');
    assert.deepEqual(specOptionsOf({ PidMode: 'host', UTSMode: 'host' }).hostNamespaces, ['pid', 'uts']);
    for (const ok of [['no-new-privileges'], ['no-new-privileges:true'], ['no-new-privileges=false'], ['seccomp=unconfined'], ['label=disable']]) {
      assert.deepEqual(validateCreateBody(body({ SecurityOpt: ok })).warnings, [], ok.join());
    }
    assert.equal(parseSecurityOpts(['no-new-privileges=false']).noNewPrivileges, false);
    assert.equal(parseSecurityOpts(['no-new-privileges']).noNewPrivileges, true);
    const prof = parseSecurityOpts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}']).seccomp;
    assert.deepEqual(prof, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] });
  });

  test('AppArmor and SELinux options: accepted with a warning where the host has neither (as dockerd ignores them), refused where it has', () => {
    const hasAppArmor = (() => { try { return require_('/sys/module/apparmor'); } catch { return false; } })();
    if (hasAppArmor) {
      assert.throws(() => validateCreateBody(body({ SecurityOpt: ['apparmor=foo'] })), /does not load AppArmor profiles/);
    } else {
      assert.deepEqual(validateCreateBody(body({ SecurityOpt: ['apparmor=foo'] })).warnings, ['AppArmor is not enabled on this host: the apparmor profile "foo" is not applied.']);
    }
    assert.match(validateCreateBody(body({ SecurityOpt: ['label=user:x'] })).warnings[0] ?? '', /SELinux is not enabled on this host|^$/);
    assert.deepEqual(validateCreateBody(body({ OomKillDisable: true })).warnings,
      ['OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.']);
  });

  test('HostConfig → spec options: every confinement field carried', () => {
    const o = specOptionsOf({
      PidsLimit: 42, Ulimits: [{ Name: 'nproc', Soft: 10, Hard: 20 }], CpuShares: 512, CpusetCpus: '0', CpusetMems: '0',
      ShmSize: 1 << 20, Memory: 64 << 20, MemorySwap: -1, MemoryReservation: 32 << 20, OomScoreAdj: 5, OomKillDisable: true,
      GroupAdd: ['audio', '1234'], Tmpfs: { '/t': 'size=1m' }, DeviceCgroupRules: ['c 42:* r'], Sysctls: { 'kernel.shmmax': '1' },
      SecurityOpt: ['no-new-privileges', 'seccomp=unconfined'], CapAdd: ['SYS_ADMIN'], CapDrop: ['CHOWN'], Privileged: false,
      ReadonlyRootfs: true, MaskedPaths: [], ReadonlyPaths: [],
    });
    assert.deepEqual(o, {
      readonlyRootfs: true, capAdd: ['SYS_ADMIN'], capDrop: ['CHOWN'], memory: 64 << 20, memorySwap: -1, memoryReservation: 32 << 20,
      oomKillDisable: true, cpuShares: 512, cpusetCpus: '0', cpusetMems: '0', pidsLimit: 42, shmSize: 1 << 20, oomScoreAdj: 5,
      groupAdd: ['audio', '1234'], tmpfs: { '/t': 'size=1m' }, deviceCgroupRules: ['c 42:* r'], sysctl: { 'kernel.shmmax': '1' },
      rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 20 }], maskedPaths: [], readonlyPaths: [], noNewPrivileges: true, seccomp: 'unconfined',
    });
  });
});

// a CommonJS-free existence check (the test file is ESM)
import { existsSync } from 'node:fs';
function require_(p: string): boolean { return existsSync(p); }

describe('default seccomp profile', () => {
  const names = (p: ReturnType<typeof toOciSeccomp>, action = 'SCMP_ACT_ALLOW') =>
    new Set(p.syscalls.filter((s) => s.action === action && !s.args).flatMap((s) => s.names));

  test('allow-list: EPERM by default, x86_64 with its 32-bit sub-architectures', () => {
    const p = toOciSeccomp(defaultProfile(), { caps: DEFAULT_CAPABILITIES, arch: 'x64', kernel: [6, 1] });
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const allowed = names(p);
    for (const s of ['read', 'write', 'openat', 'execve', 'futex', 'arch_prctl', 'modify_ldt', 'ptrace', 'chroot', 'io_uring_setup']) assert.ok(allowed.has(s), s);
    for (const s of ['mount', 'umount2', 'unshare', 'setns', 'bpf', 'kexec_load', 'init_module', 'reboot', 'clock_settime', 'keyctl', 'add_key', 'userfaultfd', 'open_by_handle_at', 'cacheflush', 's390_runtime_instr', 'kcmp', 'syslog', 'acct', 'swapon']) {
      assert.ok(!allowed.has(s), `${s} must not be allowed by default`);
    }
    assert.ok(allowed.size > 300, `only ${allowed.size} syscalls allowed`);
  });

  test('without CAP_SYS_ADMIN: clone only without namespace flags, clone3 ENOSYS; with it: all of them', () => {
    const p = toOciSeccomp(defaultProfile(), { caps: DEFAULT_CAPABILITIES, arch: 'x64', kernel: [6, 1] });
    const clone = p.syscalls.filter((s) => s.names.includes('clone'));
    assert.deepEqual(clone, [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    assert.equal(CLONE_NAMESPACE_FLAGS, 2114060288);
    assert.deepEqual(p.syscalls.filter((s) => s.names.includes('clone3')), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    const admin = toOciSeccomp(defaultProfile(), { caps: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], arch: 'x64', kernel: [6, 1] });
    const a = names(admin);
    for (const s of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'sethostname']) assert.ok(a.has(s), s);
    assert.equal(admin.syscalls.filter((s) => s.names.includes('clone3') && s.action !== 'SCMP_ACT_ALLOW').length, 0);
    const ptrace = names(toOciSeccomp(defaultProfile(), { caps: ['CAP_SYS_PTRACE'], arch: 'x64', kernel: [6, 1] }));
    assert.ok(ptrace.has('kcmp') && ptrace.has('pidfd_getfd'));
    // ptrace for everyone only from kernel 4.8
    assert.ok(!names(toOciSeccomp(defaultProfile(), { caps: [], arch: 'x64', kernel: [4, 4] })).has('ptrace'));
  });

  test('other architectures: arm64 gets its own calls and not x86 ones; s390x checks clone flags in argument 1', () => {
    const arm = toOciSeccomp(defaultProfile(), { caps: [], arch: 'arm64', kernel: [6, 1] });
    assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.ok(names(arm).has('cacheflush') && !names(arm).has('arch_prctl'));
    const s390 = toOciSeccomp(defaultProfile(), { caps: [], arch: 's390x', kernel: [6, 1] });
    assert.deepEqual(s390.syscalls.filter((s) => s.names.includes('clone')).map((s) => s.args?.[0]?.index), [1]);
  });

  test('a docker-format profile from --security-opt seccomp=<json>: conditions resolved, errors as dockerd', () => {
    const p = parseSeccompJson(JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }, { names: ['chmod'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_SYS_ADMIN'] } }],
    }));
    assert.deepEqual(toOciSeccomp(p, { caps: [] }), {
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }],
    });
    assert.throws(() => parseSeccompJson('{bad'), /Decoding seccomp profile failed: /);
    assert.throws(() => toOciSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x'], archMap: [{ architecture: 'x', subArchitectures: null }] }, { caps: [] }),
      /'architectures' and 'archMap' were specified in the seccomp profile/);
  });
});

describe('capabilities and the spec', () => {
  let fs = '';
  before(async () => {
    fs = await mkdtemp(join(tmpdir(), 'wharf-hostconfig-'));
    await mkdir(join(fs, 'etc'), { recursive: true });
    await writeFile(join(fs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(fs, 'etc/group'), 'root:x:0:\naudio:x:29:\n');
  });
  after(async () => { if (fs) await rm(fs, { recursive: true, force: true }); });

  test('CapAdd/CapDrop as dockerd (ALL on either side); never more than the daemon holds', () => {
    assert.deepEqual(capabilitiesOf({}), DEFAULT_CAPABILITIES);
    assert.deepEqual(capabilitiesOf({ capDrop: ['ALL'], capAdd: ['chown'] }), ['CAP_CHOWN']);
    assert.deepEqual(capabilitiesOf({ capDrop: ['NET_RAW'], capAdd: ['sys_admin'] }), [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_NET_RAW'), 'CAP_SYS_ADMIN']);
    const all = capabilitiesOf({ capAdd: ['ALL'], capDrop: ['CHOWN'] });
    assert.ok(!all.includes('CAP_CHOWN') && all.includes('CAP_SYS_ADMIN'));
    assert.ok(all.every((c) => ALL_CAPS.includes(c)));
    assert.deepEqual(capabilitiesOf({ capAdd: ['ALL'], capDrop: ['ALL'] }).length, capabilitiesOf({ privileged: true }).length);
    assert.throws(() => capabilitiesOf({ capAdd: ['nope'] }), /invalid CapAdd: unknown capability: "CAP_NOPE"/);
  });

  test('no inheritable capabilities; seccomp from the container\'s capabilities; confinement fields in config.json', async () => {
    const s = await buildSpec({
      id: 'a'.repeat(64), rootfs: fs, containerDir: join(fs, 'ctr'), args: ['sh'], hostResolvConf: join(fs, 'none'),
      capAdd: ['SYS_ADMIN'], noNewPrivileges: true, groupAdd: ['audio', '1234'], tmpfs: { '/t': 'size=1m,exec' },
      cpusetCpus: '0', cpuShares: 512, memory: 64 << 20, memoryReservation: 32 << 20, memorySwap: -1, oomKillDisable: true,
      deviceCgroupRules: ['c 42:* r'], pidsLimit: 7,
    });
    assert.deepEqual(s.process.capabilities!.inheritable, []);
    assert.ok(s.process.capabilities!.bounding.includes('CAP_SYS_ADMIN'));
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual(s.process.user.additionalGids, [29, 1234]);
    assert.deepEqual(s.mounts.find((m) => m.destination === '/t'), { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'exec'] });
    const r = s.linux.resources as Record<string, any>;
    assert.deepEqual(r.cpu, { shares: 512, cpus: '0' });
    assert.deepEqual(r.memory, { limit: 64 << 20, swap: -1, reservation: 32 << 20, disableOOMKiller: true });
    assert.deepEqual(r.pids, { limit: 7 });
    assert.deepEqual(r.devices.at(-1), { allow: true, type: 'c', access: 'r', major: 42 });
    const sc = s.linux.seccomp as { defaultAction: string; syscalls: { names: string[]; action: string; args?: unknown[] }[] };
    assert.equal(sc.defaultAction, 'SCMP_ACT_ERRNO');
    assert.ok(sc.syscalls.some((x) => x.names.includes('mount') && x.action === 'SCMP_ACT_ALLOW'), 'CAP_SYS_ADMIN allows mount');
    const plain = await buildSpec({ id: 'b'.repeat(64), rootfs: fs, containerDir: join(fs, 'ctr2'), args: ['sh'], hostResolvConf: join(fs, 'none') });
    const sc2 = plain.linux.seccomp as typeof sc;
    assert.ok(!sc2.syscalls.some((x) => x.names.includes('mount')), 'no mount without CAP_SYS_ADMIN');
    assert.equal(plain.process.noNewPrivileges, false);
    const priv = await buildSpec({ id: 'c'.repeat(64), rootfs: fs, containerDir: join(fs, 'ctr3'), args: ['sh'], hostResolvConf: join(fs, 'none'), privileged: true });
    assert.equal(priv.linux.seccomp, undefined);
    assert.deepEqual(priv.process.capabilities!.inheritable, []);
    await assert.rejects(buildSpec({ id: 'd'.repeat(64), rootfs: fs, containerDir: join(fs, 'ctr4'), args: ['sh'], hostResolvConf: join(fs, 'none'), groupAdd: ['nogroup-here'] }),
      /Unable to find group nogroup-here: no matching entries in group file/);
  });
});

describe('wharfd configuration', () => {
  test('userns-remap is refused at start (daemon.json and flag), with a clear message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-userns-'));
    try {
      const cf = join(dir, 'daemon.json');
      await writeFile(cf, JSON.stringify({ 'userns-remap': 'default' }));
      assert.throws(() => parseDaemonArgs(['--config-file', cf]), (e: Error) => e instanceof ConfigError && /userns-remap "default": user namespace remapping is not supported by wharfd/.test(e.message));
      const empty = join(dir, 'empty.json');
      await writeFile(empty, '{}');
      assert.throws(() => parseDaemonArgs(['--config-file', empty, '--userns-remap', 'default']), /user namespace remapping is not supported by wharfd/);
      await writeFile(cf, JSON.stringify({ 'userns-remap': '' }));
      assert.doesNotThrow(() => parseDaemonArgs(['--config-file', cf]));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
