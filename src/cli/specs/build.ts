/** `build` and the `builder` group. */
import type { CommandSpec, GroupSpec } from '../spec.js';

export const BUILD_COMMANDS: CommandSpec[] = [];

export const BUILD_GROUPS: GroupSpec[] = [];
