/** Container commands that run and stream (run, create, start, attach, exec, logs, wait). */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';

/** Flags shared by run and create (docker's container options, the ones Wharf honours). */
const containerFlags: FlagSpec[] = [
  { long: 'add-host', type: 'list', usage: 'Add a custom host-to-IP mapping (host:ip)', repeatable: true },
  { long: 'attach', short: 'a', type: 'list', usage: 'Attach to STDIN, STDOUT or STDERR', repeatable: true },
  { long: 'cap-add', type: 'list', usage: 'Add Linux capabilities', repeatable: true },
  { long: 'cap-drop', type: 'list', usage: 'Drop Linux capabilities', repeatable: true },
  { long: 'cidfile', type: 'string', usage: 'Write the container ID to the file' },
  { long: 'cpu-shares', short: 'c', type: 'int', usage: 'CPU shares (relative weight)' },
  { long: 'cpus', type: 'decimal', usage: 'Number of CPUs' },
  { long: 'cpuset-cpus', type: 'string', usage: 'CPUs in which to allow execution (0-3, 0,1)' },
  { long: 'cpuset-mems', type: 'string', usage: 'MEMs in which to allow execution (0-3, 0,1)' },
  { long: 'device', type: 'list', usage: 'Add a host device to the container', repeatable: true },
  { long: 'device-cgroup-rule', type: 'list', usage: 'Add a rule to the cgroup allowed devices list', repeatable: true },
  { long: 'dns', type: 'list', usage: 'Set custom DNS servers', repeatable: true },
  { long: 'dns-option', type: 'list', usage: 'Set DNS options', repeatable: true },
  { long: 'dns-search', type: 'list', usage: 'Set custom DNS search domains', repeatable: true },
  { long: 'domainname', type: 'string', usage: 'Container NIS domain name' },
  { long: 'entrypoint', type: 'string', usage: 'Overwrite the default ENTRYPOINT of the image' },
  { long: 'env', short: 'e', type: 'list', usage: 'Set environment variables', repeatable: true },
  { long: 'env-file', type: 'list', usage: 'Read in a file of environment variables', repeatable: true },
  { long: 'expose', type: 'list', usage: 'Expose a port or a range of ports', repeatable: true },
  { long: 'group-add', type: 'list', usage: 'Add additional groups to join', repeatable: true },
  { long: 'hostname', short: 'h', type: 'string', usage: 'Container host name' },
  { long: 'ip', type: 'string', usage: 'IPv4 address (e.g., 172.30.100.104)' },
  { long: 'init', usage: 'Run an init inside the container that forwards signals and reaps processes' },
  { long: 'interactive', short: 'i', usage: 'Keep STDIN open even if not attached' },
  { long: 'ipc', type: 'string', usage: 'IPC mode to use' },
  { long: 'label', short: 'l', type: 'list', usage: 'Set meta data on a container', repeatable: true },
  { long: 'log-driver', type: 'string', usage: 'Logging driver for the container' },
  { long: 'log-opt', type: 'list', usage: 'Log driver options', repeatable: true },
  { long: 'link', type: 'list', usage: 'Add link to another container', repeatable: true },
  { long: 'mac-address', type: 'string', usage: 'Container MAC address (e.g., 92:d0:c6:0a:29:33)' },
  { long: 'memory', short: 'm', type: 'bytes', usage: 'Memory limit' },
  { long: 'memory-reservation', type: 'bytes', usage: 'Memory soft limit' },
  { long: 'memory-swap', type: 'bytes', usage: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { long: 'mount', type: 'list', usage: 'Attach a filesystem mount to the container', repeatable: true },
  { long: 'name', type: 'string', usage: 'Assign a name to the container' },
  { long: 'network', type: 'network', usage: 'Connect a container to a network' },
  { long: 'network-alias', type: 'list', usage: 'Add network-scoped alias for the container', repeatable: true },
  { long: 'oom-kill-disable', usage: 'Disable OOM Killer' },
  { long: 'oom-score-adj', type: 'int', usage: "Tune host's OOM preferences (-1000 to 1000)" },
  { long: 'pid', type: 'string', usage: 'PID namespace to use' },
  { long: 'pids-limit', type: 'int', usage: 'Tune container pids limit (set -1 for unlimited)' },
  { long: 'platform', type: 'string', usage: 'Set platform if server is multi-platform capable' },
  { long: 'privileged', usage: 'Give extended privileges to this container' },
  { long: 'publish', short: 'p', type: 'list', usage: "Publish a container's port(s) to the host", repeatable: true },
  { long: 'publish-all', short: 'P', usage: 'Publish all exposed ports to random ports' },
  { long: 'pull', type: 'string', usage: 'Pull image before running ("always", "missing", "never")', def: 'missing' },
  { long: 'quiet', short: 'q', usage: 'Suppress the pull output' },
  { long: 'read-only', usage: "Mount the container's root filesystem as read only" },
  { long: 'restart', type: 'string', usage: 'Restart policy to apply when a container exits', def: 'no' },
  { long: 'runtime', type: 'string', usage: 'Runtime to use for this container' },
  { long: 'rm', usage: 'Automatically remove the container and its associated anonymous volumes when it exits' },
  { long: 'security-opt', type: 'list', usage: 'Security Options', repeatable: true },
  { long: 'shm-size', type: 'bytes', usage: 'Size of /dev/shm' },
  { long: 'stop-signal', type: 'string', usage: 'Signal to stop the container' },
  { long: 'storage-opt', type: 'list', usage: 'Storage driver options for the container', repeatable: true },
  { long: 'stop-timeout', type: 'int', usage: 'Timeout (in seconds) to stop a container' },
  { long: 'sysctl', type: 'map', usage: 'Sysctl options', repeatable: true },
  { long: 'tmpfs', type: 'list', usage: 'Mount a tmpfs directory', repeatable: true },
  { long: 'tty', short: 't', usage: 'Allocate a pseudo-TTY' },
  { long: 'ulimit', type: 'ulimit', usage: 'Ulimit options', repeatable: true },
  { long: 'uts', type: 'string', usage: 'UTS namespace to use' },
  { long: 'user', short: 'u', type: 'string', usage: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { long: 'userns', type: 'string', usage: 'User namespace to use' },
  { long: 'volume', short: 'v', type: 'list', usage: 'Bind mount a volume', repeatable: true },
  { long: 'volumes-from', type: 'list', usage: 'Mount volumes from the specified container(s)', repeatable: true },
  { long: 'workdir', short: 'w', type: 'string', usage: 'Working directory inside the container' },
];

const runFlags: FlagSpec[] = [
  ...containerFlags,
  { long: 'detach', short: 'd', usage: 'Run container in background and print container ID' },
  { long: 'detach-keys', type: 'string', usage: 'Override the key sequence for detaching a container' },
  { long: 'sig-proxy', usage: 'Proxy received signals to the process', def: true, defaultTrue: true },
].sort((a, b) => (a.long < b.long ? -1 : 1));

const startFlags: FlagSpec[] = [
  { long: 'attach', short: 'a', usage: 'Attach STDOUT/STDERR and forward signals' },
  { long: 'detach-keys', type: 'string', usage: 'Override the key sequence for detaching a container' },
  { long: 'interactive', short: 'i', usage: "Attach container's STDIN" },
];
const attachFlags: FlagSpec[] = [
  { long: 'detach-keys', type: 'string', usage: 'Override the key sequence for detaching a container' },
  { long: 'no-stdin', usage: 'Do not attach STDIN' },
  { long: 'sig-proxy', usage: 'Proxy all received signals to the process', def: true, defaultTrue: true },
];
const execFlags: FlagSpec[] = [
  { long: 'detach', short: 'd', usage: 'Detached mode: run command in the background' },
  { long: 'detach-keys', type: 'string', usage: 'Override the key sequence for detaching a container' },
  { long: 'env', short: 'e', type: 'list', usage: 'Set environment variables', repeatable: true },
  { long: 'env-file', type: 'list', usage: 'Read in a file of environment variables', repeatable: true },
  { long: 'interactive', short: 'i', usage: 'Keep STDIN open even if not attached' },
  { long: 'privileged', usage: 'Give extended privileges to the command' },
  { long: 'tty', short: 't', usage: 'Allocate a pseudo-TTY' },
  { long: 'uts', type: 'string', usage: 'UTS namespace to use' },
  { long: 'user', short: 'u', type: 'string', usage: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
  { long: 'workdir', short: 'w', type: 'string', usage: 'Working directory inside the container' },
];
const logsFlags: FlagSpec[] = [
  { long: 'details', usage: 'Show extra details provided to logs' },
  { long: 'follow', short: 'f', usage: 'Follow log output' },
  { long: 'since', type: 'string', usage: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
  { long: 'tail', short: 'n', type: 'string', usage: 'Number of lines to show from the end of the logs', def: 'all' },
  { long: 'timestamps', short: 't', usage: 'Show timestamps' },
  { long: 'until', type: 'string', usage: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
];

function both(path: string, spec: Omit<CommandSpec, 'path' | 'group'>, group: CommandSpec['group']): CommandSpec[] {
  return [
    { ...spec, path: [path], group },
    { ...spec, path: ['container', path] },
  ];
}

export const CONTAINER_COMMANDS: CommandSpec[] = [
  ...both('run', { use: '[OPTIONS] IMAGE [COMMAND] [ARG...]', short: 'Create and run a new container from an image', aliases: ['container run', 'run'], flags: runFlags, args: { kind: 'min', n: 1 }, impl: ['run', 'runRun'], interspersed: false }, 'common'),
  ...both('create', { use: '[OPTIONS] IMAGE [COMMAND] [ARG...]', short: 'Create a new container', aliases: ['container create', 'create'], flags: containerFlags, args: { kind: 'min', n: 1 }, impl: ['run', 'runCreate'], interspersed: false }, 'commands'),
  ...both('start', { use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Start one or more stopped containers', aliases: ['container start', 'start'], flags: startFlags, args: { kind: 'min', n: 1 }, impl: ['run', 'runStart'] }, 'commands'),
  ...both('attach', { use: '[OPTIONS] CONTAINER', short: "Attach local standard input, output, and error streams to a running container", aliases: ['container attach', 'attach'], flags: attachFlags, args: { kind: 'exact', n: 1 }, impl: ['run', 'runAttach'] }, 'commands'),
  ...both('exec', { use: '[OPTIONS] CONTAINER COMMAND [ARG...]', short: 'Execute a command in a running container', aliases: ['container exec', 'exec'], flags: execFlags, args: { kind: 'min', n: 2 }, impl: ['run', 'runExec'], interspersed: false }, 'common'),
  ...both('logs', { use: '[OPTIONS] CONTAINER', short: 'Fetch the logs of a container', aliases: ['container logs', 'logs'], flags: logsFlags, args: { kind: 'exact', n: 1 }, impl: ['run', 'runLogs'] }, 'commands'),
  ...both('wait', { use: 'CONTAINER [CONTAINER...]', short: 'Block until one or more containers stop, then print their exit codes', aliases: ['container wait', 'wait'], flags: [], args: { kind: 'min', n: 1 }, impl: ['run', 'runWait'] }, 'commands'),
];

export const CONTAINER_GROUPS: GroupSpec[] = [];
