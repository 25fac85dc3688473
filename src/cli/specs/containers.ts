/** Container commands (run, exec, ps, logs, …) and the `container` group. */
import type { CommandSpec, GroupSpec } from '../spec.js';

export const CONTAINER_COMMANDS: CommandSpec[] = [];

export const CONTAINER_GROUPS: GroupSpec[] = [];
