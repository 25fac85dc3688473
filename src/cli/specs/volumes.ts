/** Volume commands and the `volume` group. */
import type { CommandSpec, GroupSpec } from '../spec.js';
import { FORMAT_PLAIN, FORMAT_TABLE } from './common.js';

export const VOLUME_COMMANDS: CommandSpec[] = [
  {
    path: ['volume', 'create'], use: '[OPTIONS] [VOLUME]', short: 'Create a volume',
    flags: [
      { long: 'driver', short: 'd', type: 'string', usage: 'Specify volume driver name', def: 'local' },
      { long: 'label', type: 'list', usage: 'Set metadata for a volume', repeatable: true },
      { long: 'name', type: 'string', usage: 'Specify volume name', hidden: true },
      { long: 'opt', short: 'o', type: 'map', usage: 'Set driver specific options', repeatable: true },
    ],
    args: { kind: 'max', n: 1 }, impl: ['volume', 'runVolumeCreate'],
  },
  {
    path: ['volume', 'ls'], use: '[OPTIONS]', short: 'List volumes', aliases: ['volume ls', 'volume list'],
    flags: [
      { long: 'filter', short: 'f', type: 'filter', usage: "Provide filter values (e.g. 'dangling=true')", repeatable: true },
      { long: 'format', type: 'string', usage: FORMAT_TABLE },
      { long: 'quiet', short: 'q', usage: 'Only display volume names' },
    ],
    args: { kind: 'none' }, impl: ['volume', 'runVolumeLs'],
  },
  {
    path: ['volume', 'list'], alias: true, use: '[OPTIONS]', short: 'List volumes', aliases: ['volume ls', 'volume list'],
    flags: [
      { long: 'filter', short: 'f', type: 'filter', usage: "Provide filter values (e.g. 'dangling=true')", repeatable: true },
      { long: 'format', type: 'string', usage: FORMAT_TABLE },
      { long: 'quiet', short: 'q', usage: 'Only display volume names' },
    ],
    args: { kind: 'none' }, impl: ['volume', 'runVolumeLs'],
  },
  {
    path: ['volume', 'inspect'], use: '[OPTIONS] VOLUME [VOLUME...]', short: 'Display detailed information on one or more volumes',
    flags: [{ long: 'format', short: 'f', type: 'string', usage: FORMAT_PLAIN }], args: { kind: 'min', n: 1 }, impl: ['volume', 'runVolumeInspect'],
  },
  {
    path: ['volume', 'rm'], use: '[OPTIONS] VOLUME [VOLUME...]', short: 'Remove one or more volumes', aliases: ['volume rm', 'volume remove'],
    flags: [{ long: 'force', short: 'f', usage: 'Force the removal of one or more volumes' }], args: { kind: 'min', n: 1 }, impl: ['volume', 'runVolumeRm'],
  },
  {
    path: ['volume', 'remove'], alias: true, use: '[OPTIONS] VOLUME [VOLUME...]', short: 'Remove one or more volumes', aliases: ['volume rm', 'volume remove'],
    flags: [{ long: 'force', short: 'f', usage: 'Force the removal of one or more volumes' }], args: { kind: 'min', n: 1 }, impl: ['volume', 'runVolumeRm'],
  },
  {
    path: ['volume', 'prune'], use: '[OPTIONS]', short: 'Remove unused local volumes',
    flags: [
      { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "label=<label>")', repeatable: true },
      { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
    ],
    args: { kind: 'none' }, impl: ['volume', 'runVolumePrune'],
  },
];

export const VOLUME_GROUPS: GroupSpec[] = [{ path: ['volume'], short: 'Manage volumes', group: 'management' }];
