/**
 * `docker import --change` / `docker commit --change`: Dockerfile instructions applied to a container config
 * (dockerd's BuildFromConfig), through the builder's config evaluator. Parsed with the build's Dockerfile parser;
 * words expand with the config's Env as it stands before each instruction. The images and containers modules
 * get it from the composition root as their `ChangeApplier` (images/types.ts), so they never import the builder.
 */
import { InvalidParameterError } from '../../lib/errors.js';
import { parseInstructions } from './dockerfile/instructions.js';
import { applyConfigInstruction, envVars, isConfigInstruction } from './config-eval.js';
import type { ChangeApplier, ContainerConfig } from '../images/types.js';

const ALLOWED = new Set(['cmd', 'entrypoint', 'healthcheck', 'env', 'expose', 'label', 'onbuild', 'user', 'volume', 'workdir', 'stopsignal']);

/** Applies `changes` (one instruction per entry; an entry may hold several lines) to a copy of `base`. */
export const applyChanges: ChangeApplier = (base: ContainerConfig, changes: readonly string[]): ContainerConfig => {
  let cfg: ContainerConfig = structuredClone(base);
  const lines = changes.filter((c) => c.trim() !== '');
  if (!lines.length) return cfg;
  for (const c of lines) {
    const word = c.trim().split(/\s+/)[0]!.toLowerCase();
    if (!ALLOWED.has(word)) throw new InvalidParameterError(`${word} is not a valid change command`);
  }
  const df = parseInstructions(`FROM scratch\n${lines.join('\n')}\n`);
  let cmdSet = false;
  for (const ins of df.stages[0]!.commands) {
    if (!isConfigInstruction(ins)) throw new InvalidParameterError(`${ins.kind} is not a valid change command`);
    const r = applyConfigInstruction(cfg, ins, { vars: envVars(cfg.Env), escape: df.directives.escape, cmdSet });
    cfg = r.config;
    cmdSet = r.cmdSet;
  }
  return cfg;
};
