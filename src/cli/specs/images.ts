/** Image and system commands. */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';
import { FORMAT_PLAIN, FORMAT_TABLE } from './common.js';

const imagesFlags: FlagSpec[] = [
  { long: 'all', short: 'a', usage: 'Show all images (default hides intermediate images)' },
  { long: 'digests', usage: 'Show digests' },
  { long: 'filter', short: 'f', type: 'filter', usage: 'Filter output based on conditions provided', repeatable: true },
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'no-trunc', usage: "Don't truncate output" },
  { long: 'quiet', short: 'q', usage: 'Only show image IDs' },
];
const pullFlags: FlagSpec[] = [
  { long: 'all-tags', short: 'a', usage: 'Download all tagged images in the repository' },
  { long: 'disable-content-trust', usage: 'Skip image verification', def: true, defaultTrue: true },
  { long: 'platform', type: 'string', usage: 'Set platform if server is multi-platform capable' },
  { long: 'quiet', short: 'q', usage: 'Suppress verbose output' },
];
const historyFlags: FlagSpec[] = [
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'human', short: 'H', usage: 'Print sizes and dates in human readable format', def: true, defaultTrue: true },
  { long: 'no-trunc', usage: "Don't truncate output" },
  { long: 'quiet', short: 'q', usage: 'Only show image IDs' },
];
const rmiFlags: FlagSpec[] = [
  { long: 'force', short: 'f', usage: 'Force removal of the image' },
  { long: 'no-prune', usage: 'Do not delete untagged parents' },
];
const imageInspectFlags: FlagSpec[] = [{ long: 'format', short: 'f', type: 'string', usage: FORMAT_PLAIN }];
const pruneFlags: FlagSpec[] = [
  { long: 'all', short: 'a', usage: 'Remove all unused images, not just dangling ones' },
  { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "until=<timestamp>")', repeatable: true },
  { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
];

export const IMAGE_COMMANDS: CommandSpec[] = [
  { path: ['pull'], use: '[OPTIONS] NAME[:TAG|@DIGEST]', short: 'Download an image from a registry', aliases: ['image pull', 'pull'], flags: pullFlags, args: { kind: 'exact', n: 1 }, impl: ['pull', 'runPull'], group: 'common' },
  { path: ['image', 'pull'], use: '[OPTIONS] NAME[:TAG|@DIGEST]', short: 'Download an image from a registry', aliases: ['image pull', 'pull'], flags: pullFlags, args: { kind: 'exact', n: 1 }, impl: ['pull', 'runPull'] },
  { path: ['images'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'], group: 'common' },
  { path: ['image', 'ls'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'] },
  { path: ['image', 'list'], use: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', aliases: ['image ls', 'image list', 'images'], flags: imagesFlags, args: { kind: 'max', n: 1 }, impl: ['images', 'runImages'] },
  { path: ['version'], use: '[OPTIONS]', short: 'Show the Wharf version information', flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runVersion'], group: 'common' },
  { path: ['info'], use: '[OPTIONS]', short: 'Display system-wide information', aliases: ['system info', 'info'], flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runInfo'], group: 'common' },
  { path: ['system', 'info'], use: '[OPTIONS]', short: 'Display system-wide information', aliases: ['system info', 'info'], flags: imageInspectFlags, args: { kind: 'none' }, impl: ['system', 'runInfo'] },
  { path: ['history'], use: '[OPTIONS] IMAGE', short: 'Show the history of an image', aliases: ['image history', 'history'], flags: historyFlags, args: { kind: 'exact', n: 1 }, impl: ['history', 'runHistory'], group: 'commands' },
  { path: ['image', 'history'], use: '[OPTIONS] IMAGE', short: 'Show the history of an image', aliases: ['image history', 'history'], flags: historyFlags, args: { kind: 'exact', n: 1 }, impl: ['history', 'runHistory'] },
  {
    path: ['inspect'], use: '[OPTIONS] NAME|ID [NAME|ID...]', short: 'Return low-level information on Wharf objects',
    flags: [
      imageInspectFlags[0]!,
      { long: 'size', short: 's', usage: 'Display total file sizes if the type is container' },
      { long: 'type', type: 'string', usage: 'Only inspect objects of the given type' },
    ],
    args: { kind: 'min', n: 1 }, impl: ['inspect', 'runInspect'], group: 'commands',
  },
  { path: ['image', 'inspect'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Display detailed information on one or more images', flags: imageInspectFlags, args: { kind: 'min', n: 1 }, impl: ['inspect', 'runImageInspect'] },
  { path: ['rmi'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'], group: 'commands' },
  { path: ['image', 'rm'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'] },
  { path: ['image', 'remove'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', aliases: ['image rm', 'image remove', 'rmi'], flags: rmiFlags, args: { kind: 'min', n: 1 }, impl: ['rmi', 'runRmi'] },
  { path: ['tag'], use: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', aliases: ['image tag', 'tag'], flags: [], args: { kind: 'exact', n: 2 }, impl: ['rmi', 'runTag'], group: 'commands' },
  { path: ['image', 'tag'], use: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', aliases: ['image tag', 'tag'], flags: [], args: { kind: 'exact', n: 2 }, impl: ['rmi', 'runTag'] },
  { path: ['image', 'prune'], use: '[OPTIONS]', short: 'Remove unused images', flags: pruneFlags, args: { kind: 'none' }, impl: ['rmi', 'runPrune'] },
  { path: ['image', 'bootstrap'], use: 'NAME', short: 'Create busybox or debian:<suite> from the host, without a registry', flags: [], args: { kind: 'exact', n: 1 }, impl: ['pull', 'runBootstrap'] },
  {
    path: ['system', 'df'], use: '[OPTIONS]', short: 'Show wharf disk usage',
    flags: [{ long: 'format', type: 'string', usage: FORMAT_TABLE }, { long: 'verbose', short: 'v', usage: 'Show detailed information on space usage' }],
    args: { kind: 'none' }, impl: ['system', 'runDf'],
  },
];

export const IMAGE_GROUPS: GroupSpec[] = [
  { path: ['image'], short: 'Manage images', group: 'management' },
  { path: ['system'], short: 'Manage Wharf', group: 'management' },
];

