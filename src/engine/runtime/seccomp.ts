/**
 * Seccomp: docker's default confinement and docker-format profiles turned into the OCI `linux.seccomp` that
 * runc loads.
 *
 * A docker-format profile (what `--security-opt seccomp=<json>` carries, and what our default is written
 * in) has `defaultAction`, `defaultErrnoRet`, an `archMap` (or plain `architectures`) and rules whose
 * `includes`/`excludes` name capabilities, architectures and a minimum kernel. dockerd resolves those
 * conditions against the container when it writes the runtime spec; `toOciSeccomp` does the same here.
 *
 * The default profile has the effect of moby's `profiles/seccomp/default.json`: everything not listed fails
 * with EPERM; the ordinary syscalls are allowed; the namespace, mount, module, clock, tracing, … calls only
 * with the capability that makes them meaningful (CAP_SYS_ADMIN for mount/umount2/unshare/setns/clone with
 * namespace flags, CAP_SYS_PTRACE for kcmp/process_vm_readv/writev and pidfd_getfd, …); without CAP_SYS_ADMIN `clone` is
 * allowed only when no CLONE_NEW* flag is set and `clone3` fails with ENOSYS (so libc falls back to clone,
 * whose flags can be inspected); `socket(AF_VSOCK)` and unusual `personality` values are refused.
 */
import { readFileSync } from 'node:fs';
import { InvalidParameterError } from '../../lib/errors.js';
import { goArch } from '../../lib/go.js';

export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }

export interface DockerSeccompRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[]; minKernel?: string };
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[] | null;
  syscalls?: DockerSeccompRule[] | null;
  listenerPath?: string;
  flags?: string[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[];
  flags?: string[];
}

const EPERM = 1;
const ENOSYS = 38;

/** seccomp's native architecture for a GOARCH, as the archMap names it. */
const NATIVE: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', s390x: 'SCMP_ARCH_S390X',
  ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64', mips64le: 'SCMP_ARCH_MIPSEL64',
};
/** Arch names profile rules use for an SCMP_ARCH (a rule for "x86" applies when that arch is in the filter). */
const ARCH_ALIASES: Record<string, string> = {
  SCMP_ARCH_X86_64: 'amd64', SCMP_ARCH_X86: 'x86', SCMP_ARCH_X32: 'x32', SCMP_ARCH_AARCH64: 'arm64', SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_S390X: 's390x', SCMP_ARCH_S390: 's390', SCMP_ARCH_PPC64LE: 'ppc64le', SCMP_ARCH_RISCV64: 'riscv64',
};

/** The syscalls every container may make (the default profile's unconditional allow-list). */
const ALWAYS = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime clock_adjtime64
clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close
close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr
_llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock
munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
write writev`.trim().split(/\s+/);

/** Allowed only when the container holds the capability. */
const BY_CAPABILITY: [cap: string, names: string][] = [
  ['CAP_DAC_READ_SEARCH', 'open_by_handle_at'],
  ['CAP_SYS_ADMIN', 'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare'],
  ['CAP_SYS_BOOT', 'reboot'],
  ['CAP_SYS_CHROOT', 'chroot'],
  ['CAP_SYS_MODULE', 'delete_module init_module finit_module'],
  ['CAP_SYS_PACCT', 'acct'],
  ['CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'],
  ['CAP_SYS_RAWIO', 'iopl ioperm'],
  ['CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'],
  ['CAP_SYS_TTY_CONFIG', 'vhangup'],
  ['CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'],
  ['CAP_SYSLOG', 'syslog'],
  ['CAP_BPF', 'bpf'],
  ['CAP_PERFMON', 'perf_event_open'],
];

/** Only on these architectures. */
const BY_ARCH: [arches: string[], names: string][] = [
  [['ppc64le'], 'sync_file_range2 swapcontext'],
  [['arm', 'arm64'], 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'],
  [['amd64', 'x32'], 'arch_prctl'],
  [['amd64', 'x32', 'x86'], 'modify_ldt'],
  [['s390', 's390x'], 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr'],
  [['riscv64'], 'riscv_flush_icache'],
];

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
const AF_VSOCK = 40;
/** personality(2) values the default profile lets through: PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE (alone or with UNAME26), and the query 0xffffffff. */
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];

const words = (s: string) => s.split(' ');

/** Docker's default profile, as a docker-format profile (its conditions resolved by toOciSeccomp). */
export function defaultProfile(): DockerSeccompProfile {
  const rules: DockerSeccompRule[] = [
    { names: ALWAYS, action: 'SCMP_ACT_ALLOW' },
    // tracing one's own children is harmless since 4.8 (seccomp is checked after ptrace)
    { names: words('process_vm_readv process_vm_writev ptrace'), action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
    ...PERSONALITIES.map((p): DockerSeccompRule => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] })),
    ...BY_ARCH.map(([arches, names]): DockerSeccompRule => ({ names: words(names), action: 'SCMP_ACT_ALLOW', includes: { arches } })),
    ...BY_CAPABILITY.map(([cap, names]): DockerSeccompRule => ({ names: words(names), action: 'SCMP_ACT_ALLOW', includes: { caps: [cap] } })),
    // without CAP_SYS_ADMIN: clone only without namespace flags (s390 has flags as the second argument)
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], includes: { arches: ['s390', 's390x'] }, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    // clone3's flags live in memory seccomp cannot read: ENOSYS makes libc fall back to clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  ];
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
      { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
      { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
    ],
    syscalls: rules,
  };
}

let hostKernel: [number, number] | null = null;
function kernelVersion(): [number, number] {
  if (hostKernel) return hostKernel;
  let rel = '0.0';
  try { rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8'); } catch { /* keep 0.0 */ }
  const m = /^(\d+)\.(\d+)/.exec(rel);
  hostKernel = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return hostKernel;
}

function kernelAtLeast(v: string, kernel: [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(v);
  if (!m) throw new InvalidParameterError(`Invalid minKernel: ${v}`);
  const want = [Number(m[1]), Number(m[2])] as const;
  return kernel[0] > want[0] || (kernel[0] === want[0] && kernel[1] >= want[1]);
}

export interface SeccompContext {
  /** The container's effective capabilities ("CAP_…"). */
  caps: string[];
  /** Node's process.arch (default: this host's). */
  arch?: string;
  /** Kernel major.minor (default: this host's). */
  kernel?: [number, number];
}

/**
 * A docker-format profile resolved for one container: the native architecture and its sub-architectures
 * from the archMap, and only the rules whose includes hold and whose excludes do not.
 */
export function toOciSeccomp(p: DockerSeccompProfile, ctx: SeccompContext): OciSeccomp {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new InvalidParameterError('Decoding seccomp profile failed: not a JSON object');
  if (p.architectures?.length && p.archMap?.length) throw new InvalidParameterError("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'");
  const goarch = goArch(ctx.arch ?? process.arch);
  const kernel = ctx.kernel ?? kernelVersion();
  let architectures: string[] = [];
  if (p.architectures?.length) architectures = [...p.architectures];
  else {
    const native = NATIVE[goarch];
    for (const a of p.archMap ?? []) {
      if (a.architecture === native) architectures = [a.architecture, ...(a.subArchitectures ?? [])];
    }
  }
  const archNames = new Set<string>([goarch, ...architectures.map((a) => ARCH_ALIASES[a]).filter((x): x is string => !!x)]);
  const caps = new Set(ctx.caps);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const r of p.syscalls ?? []) {
    if (r.name && r.names?.length) throw new InvalidParameterError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches?.length && !inc.arches.some((a) => archNames.has(a))) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernel)) continue;
    if (exc.arches?.length && exc.arches.some((a) => archNames.has(a))) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(c))) continue;
    if (exc.minKernel && kernelAtLeast(exc.minKernel, kernel)) continue;
    const names = r.names?.length ? r.names : r.name ? [r.name] : [];
    if (!names.length) continue;
    syscalls.push({
      names, action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args?.length ? { args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) } : {}),
    });
  }
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    ...(architectures.length ? { architectures } : {}),
    syscalls,
    ...(p.flags?.length ? { flags: p.flags } : {}),
  };
}

/** Parses the JSON of `--security-opt seccomp=<json>` (docker's CLI sends the file's content) with dockerd's message. */
export function parseSeccompJson(text: string): DockerSeccompProfile {
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) {
    throw new InvalidParameterError(`Decoding seccomp profile failed: ${(e as Error).message}`, { cause: e });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidParameterError('Decoding seccomp profile failed: not a JSON object');
  const p = v as DockerSeccompProfile;
  if (typeof p.defaultAction !== 'string') throw new InvalidParameterError('Decoding seccomp profile failed: defaultAction is missing');
  if (p.syscalls !== undefined && p.syscalls !== null && !Array.isArray(p.syscalls)) throw new InvalidParameterError('Decoding seccomp profile failed: syscalls must be a list');
  return p;
}
