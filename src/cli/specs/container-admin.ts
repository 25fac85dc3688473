/** Container management commands (ps, stop, kill, rm, prune, top, port, rename, diff, commit, …) and the group. */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';
import { FORMAT_PLAIN, FORMAT_TABLE } from './common.js';

const psFlags: FlagSpec[] = [
  { long: 'all', short: 'a', usage: 'Show all containers (default shows just running)' },
  { long: 'filter', short: 'f', type: 'filter', usage: 'Filter output based on conditions provided', repeatable: true },
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'last', short: 'n', type: 'int', usage: 'Show n last created containers (includes all states)', def: '-1' },
  { long: 'latest', short: 'l', usage: 'Show the latest created container (includes all states)' },
  { long: 'no-trunc', usage: "Don't truncate output" },
  { long: 'quiet', short: 'q', usage: 'Only display container IDs' },
  { long: 'size', short: 's', usage: 'Display total file sizes' },
];
const stopFlags: FlagSpec[] = [
  { long: 'signal', short: 's', type: 'string', usage: 'Signal to send to the container' },
  { long: 'time', short: 't', type: 'int', usage: 'Seconds to wait before killing the container' },
];
const killFlags: FlagSpec[] = [{ long: 'signal', short: 's', type: 'string', usage: 'Signal to send to the container' }];
const rmFlags: FlagSpec[] = [
  { long: 'force', short: 'f', usage: 'Force the removal of a running container (uses SIGKILL)' },
  { long: 'link', short: 'l', usage: 'Remove the specified link' },
  { long: 'volumes', short: 'v', usage: 'Remove anonymous volumes associated with the container' },
];
const pruneFlags: FlagSpec[] = [
  { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "until=<timestamp>")', repeatable: true },
  { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
];
const commitFlags: FlagSpec[] = [
  { long: 'author', short: 'a', type: 'string', usage: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
  { long: 'change', short: 'c', type: 'list', usage: 'Apply Dockerfile instruction to the created image', repeatable: true },
  { long: 'message', short: 'm', type: 'string', usage: 'Commit message' },
  { long: 'pause', short: 'p', usage: 'Pause container during commit', def: true, defaultTrue: true },
];
const inspectFlags: FlagSpec[] = [
  { long: 'format', short: 'f', type: 'string', usage: FORMAT_PLAIN },
  { long: 'size', short: 's', usage: 'Display total file sizes' },
];

function both(path: string, spec: Omit<CommandSpec, 'path' | 'group'>, alsoGroup = true): CommandSpec[] {
  const out: CommandSpec[] = [{ ...spec, path: [path], group: 'commands' }];
  if (alsoGroup) out.push({ ...spec, path: ['container', path] });
  return out;
}

const psSpec = { use: '[OPTIONS]', short: 'List containers', aliases: ['container ls', 'container list', 'container ps', 'ps'], flags: psFlags, args: { kind: 'none' as const }, impl: ['containers', 'runPs'] as [string, string] };

export const CONTAINER_ADMIN_COMMANDS: CommandSpec[] = [
  { ...psSpec, path: ['ps'], group: 'common' },
  { ...psSpec, path: ['container', 'ls'] },
  { ...psSpec, path: ['container', 'list'], alias: true },
  { ...psSpec, path: ['container', 'ps'], alias: true },
  ...both('stop', { use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Stop one or more running containers', aliases: ['container stop', 'stop'], flags: stopFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runStop'] }),
  ...both('restart', { use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Restart one or more containers', aliases: ['container restart', 'restart'], flags: stopFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runRestart'] }),
  ...both('kill', { use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Kill one or more running containers', aliases: ['container kill', 'kill'], flags: killFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runKill'] }),
  ...both('pause', { use: 'CONTAINER [CONTAINER...]', short: 'Pause all processes within one or more containers', aliases: ['container pause', 'pause'], flags: [], args: { kind: 'min', n: 1 }, impl: ['containers', 'runPause'] }),
  ...both('unpause', { use: 'CONTAINER [CONTAINER...]', short: 'Unpause all processes within one or more containers', aliases: ['container unpause', 'unpause'], flags: [], args: { kind: 'min', n: 1 }, impl: ['containers', 'runUnpause'] }),
  ...both('rm', { use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Remove one or more containers', aliases: ['container rm', 'container remove', 'rm'], flags: rmFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runRm'] }),
  { path: ['container', 'remove'], alias: true, use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Remove one or more containers', aliases: ['container rm', 'container remove', 'rm'], flags: rmFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runRm'] },
  { path: ['container', 'prune'], use: '[OPTIONS]', short: 'Remove all stopped containers', flags: pruneFlags, args: { kind: 'none' }, impl: ['containers', 'runContainerPrune'] },
  ...both('top', { use: 'CONTAINER [ps OPTIONS]', short: 'Display the running processes of a container', aliases: ['container top', 'top'], flags: [], args: { kind: 'min', n: 1 }, impl: ['containers', 'runTop'], interspersed: false }),
  ...both('port', { use: 'CONTAINER [PRIVATE_PORT[/PROTO]]', short: 'List port mappings or a specific mapping for the container', aliases: ['container port', 'port'], flags: [], args: { kind: 'min', n: 1 }, impl: ['containers', 'runPort'] }),
  ...both('rename', { use: 'CONTAINER NEW_NAME', short: 'Rename a container', aliases: ['container rename', 'rename'], flags: [], args: { kind: 'exact', n: 2 }, impl: ['containers', 'runRename'] }),
  ...both('diff', { use: 'CONTAINER', short: "Inspect changes to files or directories on a container's filesystem", aliases: ['container diff', 'diff'], flags: [], args: { kind: 'exact', n: 1 }, impl: ['containers', 'runDiff'] }),
  ...both('commit', { use: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]', short: "Create a new image from a container's changes", aliases: ['container commit', 'commit'], flags: commitFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runCommit'] }),
  ...both('cp', {
    use: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\twharf cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    short: 'Copy files/folders between a container and the local filesystem', aliases: ['container cp', 'cp'],
    flags: [
      { long: 'archive', short: 'a', usage: 'Archive mode (copy all uid/gid information)' },
      { long: 'follow-link', short: 'L', usage: 'Always follow symbol link in SRC_PATH' },
      { long: 'quiet', short: 'q', usage: 'Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached' },
    ],
    args: { kind: 'exact', n: 2 }, impl: ['cp', 'runCp'],
  }),
  { path: ['container', 'inspect'], use: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Display detailed information on one or more containers', flags: inspectFlags, args: { kind: 'min', n: 1 }, impl: ['containers', 'runContainerInspect'] },
];

export const CONTAINER_ADMIN_GROUPS: GroupSpec[] = [
  { path: ['container'], short: 'Manage containers', group: 'management' },
];
