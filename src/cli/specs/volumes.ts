/** Volume commands and the `volume` group. */
import type { CommandSpec, GroupSpec } from '../spec.js';

export const VOLUME_COMMANDS: CommandSpec[] = [];

export const VOLUME_GROUPS: GroupSpec[] = [];
