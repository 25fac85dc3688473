/** push, save, load, export, import, login, logout, search. */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';

const pushFlags: FlagSpec[] = [
  { long: 'all-tags', short: 'a', usage: 'Push all tags of an image to the repository' },
  { long: 'disable-content-trust', usage: 'Skip image signing', def: true, defaultTrue: true },
  { long: 'quiet', short: 'q', usage: 'Suppress verbose output' },
];
const saveFlags: FlagSpec[] = [{ long: 'output', short: 'o', type: 'string', usage: 'Write to a file, instead of STDOUT' }];
const loadFlags: FlagSpec[] = [
  { long: 'input', short: 'i', type: 'string', usage: 'Read from tar archive file, instead of STDIN' },
  { long: 'quiet', short: 'q', usage: 'Suppress the load output' },
];
const importFlags: FlagSpec[] = [
  { long: 'change', short: 'c', type: 'list', usage: 'Apply Dockerfile instruction to the created image', repeatable: true },
  { long: 'message', short: 'm', type: 'string', usage: 'Set commit message for imported image' },
  { long: 'platform', type: 'string', usage: 'Set platform if server is multi-platform capable' },
];
const loginFlags: FlagSpec[] = [
  { long: 'password', short: 'p', type: 'string', usage: 'Password' },
  { long: 'password-stdin', usage: 'Take the password from stdin' },
  { long: 'username', short: 'u', type: 'string', usage: 'Username' },
];
const searchFlags: FlagSpec[] = [
  { long: 'filter', short: 'f', type: 'filter', usage: 'Filter output based on conditions provided', repeatable: true },
  { long: 'format', type: 'string', usage: 'Pretty-print search using a Go template' },
  { long: 'limit', type: 'int', usage: 'Max number of search results' },
  { long: 'no-trunc', usage: "Don't truncate output" },
];

export const DISTRIBUTION_COMMANDS: CommandSpec[] = [
  { path: ['push'], use: '[OPTIONS] NAME[:TAG]', short: 'Upload an image to a registry', aliases: ['image push', 'push'], flags: pushFlags, args: { kind: 'exact', n: 1 }, impl: ['distribution', 'runPush'], group: 'common' },
  { path: ['image', 'push'], use: '[OPTIONS] NAME[:TAG]', short: 'Upload an image to a registry', aliases: ['image push', 'push'], flags: pushFlags, args: { kind: 'exact', n: 1 }, impl: ['distribution', 'runPush'] },
  { path: ['save'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Save one or more images to a tar archive (streamed to STDOUT by default)', aliases: ['image save', 'save'], flags: saveFlags, args: { kind: 'min', n: 1 }, impl: ['distribution', 'runSave'], group: 'commands' },
  { path: ['image', 'save'], use: '[OPTIONS] IMAGE [IMAGE...]', short: 'Save one or more images to a tar archive (streamed to STDOUT by default)', aliases: ['image save', 'save'], flags: saveFlags, args: { kind: 'min', n: 1 }, impl: ['distribution', 'runSave'] },
  { path: ['load'], use: '[OPTIONS]', short: 'Load an image from a tar archive or STDIN', aliases: ['image load', 'load'], flags: loadFlags, args: { kind: 'none' }, impl: ['distribution', 'runLoad'], group: 'commands' },
  { path: ['image', 'load'], use: '[OPTIONS]', short: 'Load an image from a tar archive or STDIN', aliases: ['image load', 'load'], flags: loadFlags, args: { kind: 'none' }, impl: ['distribution', 'runLoad'] },
  { path: ['import'], use: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]', short: 'Import the contents from a tarball to create a filesystem image', aliases: ['image import', 'import'], flags: importFlags, args: { kind: 'min', n: 1 }, impl: ['distribution', 'runImport'], group: 'commands' },
  { path: ['image', 'import'], use: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]', short: 'Import the contents from a tarball to create a filesystem image', aliases: ['image import', 'import'], flags: importFlags, args: { kind: 'min', n: 1 }, impl: ['distribution', 'runImport'] },
  { path: ['export'], use: '[OPTIONS] CONTAINER', short: "Export a container's filesystem as a tar archive", aliases: ['container export', 'export'], flags: saveFlags, args: { kind: 'exact', n: 1 }, impl: ['distribution', 'runExport'], group: 'commands' },
  { path: ['container', 'export'], use: '[OPTIONS] CONTAINER', short: "Export a container's filesystem as a tar archive", aliases: ['container export', 'export'], flags: saveFlags, args: { kind: 'exact', n: 1 }, impl: ['distribution', 'runExport'] },
  { path: ['login'], use: '[OPTIONS] [SERVER]', short: 'Authenticate to a registry', flags: loginFlags, args: { kind: 'max', n: 1 }, impl: ['distribution', 'runLogin'], group: 'common' },
  { path: ['logout'], use: '[SERVER]', short: 'Log out from a registry', flags: [], args: { kind: 'max', n: 1 }, impl: ['distribution', 'runLogout'], group: 'common' },
  { path: ['search'], use: '[OPTIONS] TERM', short: 'Search Docker Hub for images', flags: searchFlags, args: { kind: 'exact', n: 1 }, impl: ['distribution', 'runSearch'], group: 'common' },
];

/** `registry` is handled before the specs (app.ts runs src/registry/main.js with the arguments as they are). */
export const DISTRIBUTION_GROUPS: GroupSpec[] = [{ path: ['registry'], short: 'Run an OCI distribution registry (serve, gc)', group: 'management' }];
