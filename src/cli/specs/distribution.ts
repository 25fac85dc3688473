/** push, save, load, export, import, login, logout, search and `registry`. */
import type { CommandSpec, GroupSpec } from '../spec.js';

export const DISTRIBUTION_COMMANDS: CommandSpec[] = [];

export const DISTRIBUTION_GROUPS: GroupSpec[] = [];
