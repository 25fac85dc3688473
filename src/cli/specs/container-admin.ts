/** Container management commands (ps, stop, kill, rm, prune, top, port, rename, diff, commit, cp, …). */
import type { CommandSpec, GroupSpec } from '../spec.js';

export const CONTAINER_ADMIN_COMMANDS: CommandSpec[] = [];

export const CONTAINER_ADMIN_GROUPS: GroupSpec[] = [];
