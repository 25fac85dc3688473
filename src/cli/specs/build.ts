/** `build` (and `image build`, `builder build`) with the classic builder's flags. */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';

const buildFlags: FlagSpec[] = [
  { long: 'add-host', type: 'list', usage: 'Add a custom host-to-IP mapping (host:ip)', repeatable: true },
  { long: 'build-arg', type: 'list', usage: 'Set build-time variables', repeatable: true },
  { long: 'cache-from', type: 'strings', usage: 'Images to consider as cache sources', repeatable: true },
  { long: 'file', short: 'f', type: 'string', usage: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
  { long: 'force-rm', usage: 'Always remove intermediate containers' },
  { long: 'iidfile', type: 'string', usage: 'Write the image ID to the file' },
  { long: 'label', type: 'list', usage: 'Set metadata for an image', repeatable: true },
  { long: 'network', type: 'string', usage: 'Set the networking mode for the RUN instructions during build', def: 'default' },
  { long: 'no-cache', usage: 'Do not use cache when building the image' },
  { long: 'platform', type: 'string', usage: 'Set platform if server is multi-platform capable' },
  { long: 'pull', usage: 'Always attempt to pull a newer version of the image' },
  { long: 'quiet', short: 'q', usage: 'Suppress the build output and print image ID on success' },
  { long: 'secret', type: 'list', usage: 'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=mysecret,env=VAR")', repeatable: true },
  { long: 'ssh', type: 'list', usage: 'SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")', repeatable: true },
  { long: 'rm', usage: 'Remove intermediate containers after a successful build', def: true, defaultTrue: true },
  { long: 'tag', short: 't', type: 'list', usage: 'Name and optionally a tag in the "name:tag" format', repeatable: true },
  { long: 'target', type: 'string', usage: 'Set the target build stage to build.' },
];

const spec = { use: '[OPTIONS] PATH | URL | -', short: 'Build an image from a Dockerfile', aliases: ['image build', 'build', 'builder build'], flags: buildFlags, args: { kind: 'exact' as const, n: 1 }, impl: ['build', 'runBuild'] as [string, string] };

export const BUILD_COMMANDS: CommandSpec[] = [
  { ...spec, path: ['build'], group: 'common' },
  { ...spec, path: ['image', 'build'] },
  { ...spec, path: ['builder', 'build'] },
  {
    path: ['builder', 'prune'], use: '[OPTIONS]', short: 'Remove build cache',
    flags: [
      { long: 'all', short: 'a', usage: 'Remove all unused build cache, not just dangling ones' },
      { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "until=24h")', repeatable: true },
      { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
      { long: 'keep-storage', type: 'string', usage: 'Amount of disk space to keep for cache' },
    ],
    args: { kind: 'none' }, impl: ['build', 'runBuilderPrune'],
  },
];

export const BUILD_GROUPS: GroupSpec[] = [{ path: ['builder'], short: 'Manage builds', group: 'management' }];
