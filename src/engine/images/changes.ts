/**
 * `docker import --change` / `docker commit --change`: Dockerfile instructions applied to a container config
 * (dockerd's BuildFromConfig). Parsed with the build's Dockerfile parser; variables expand with the config's Env.
 */
import { InvalidParameterError } from '../../lib/errors.js';
import { parseInstructions } from '../build/dockerfile/instructions.js';
import { expandWord, expandWords } from '../build/dockerfile/shell-lex.js';
import type { ContainerConfig } from './types.js';

const ALLOWED = new Set(['cmd', 'entrypoint', 'healthcheck', 'env', 'expose', 'label', 'onbuild', 'user', 'volume', 'workdir', 'stopsignal']);

function envMap(env: string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

/** Applies `changes` (one instruction per entry; an entry may hold several lines) to a copy of `base`. */
export function applyChanges(base: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const cfg: ContainerConfig = structuredClone(base);
  const lines = changes.filter((c) => c.trim() !== '');
  if (!lines.length) return cfg;
  for (const c of lines) {
    const word = c.trim().split(/\s+/)[0]!.toLowerCase();
    if (!ALLOWED.has(word)) throw new InvalidParameterError(`${word} is not a valid change command`);
  }
  const df = parseInstructions(`FROM scratch\n${lines.join('\n')}\n`);
  const shell = () => cfg.Shell && cfg.Shell.length ? cfg.Shell : ['/bin/sh', '-c'];
  for (const ins of df.stages[0]!.commands) {
    const env = envMap(cfg.Env);
    switch (ins.kind) {
      case 'cmd':
        cfg.Cmd = ins.shellForm ? [...shell(), ins.args.join(' ')] : [...ins.args];
        if (ins.shellForm) cfg.ArgsEscaped = true;
        break;
      case 'entrypoint':
        cfg.Entrypoint = ins.shellForm ? (ins.args.join(' ') === '' ? null : [...shell(), ins.args.join(' ')]) : [...ins.args];
        if (ins.shellForm) cfg.ArgsEscaped = true;
        break;
      case 'env': {
        const list = [...(cfg.Env ?? [])];
        for (const pair of ins.pairs) {
          const kv = expandWord(pair, env);
          const eq = kv.indexOf('=');
          const key = eq < 0 ? kv : kv.slice(0, eq);
          const value = eq < 0 ? '' : kv.slice(eq + 1);
          const idx = list.findIndex((e) => e.split('=')[0] === key);
          if (idx >= 0) list[idx] = `${key}=${value}`;
          else list.push(`${key}=${value}`);
          env[key] = value;
        }
        cfg.Env = list;
        break;
      }
      case 'label': {
        const labels = { ...(cfg.Labels ?? {}) };
        for (const pair of ins.pairs) {
          const kv = expandWord(pair, env);
          const eq = kv.indexOf('=');
          if (eq < 0) throw new InvalidParameterError('LABEL requires key=value pairs');
          labels[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        cfg.Labels = labels;
        break;
      }
      case 'expose': {
        const ports: Record<string, object> = { ...(cfg.ExposedPorts ?? {}) };
        for (const w of ins.words.flatMap((x) => expandWords(x, env))) {
          const p = w.includes('/') ? w.toLowerCase() : `${w}/tcp`;
          if (!/^\d+(-\d+)?\/(tcp|udp|sctp)$/.test(p)) throw new InvalidParameterError(`invalid containerPort: ${w}`);
          ports[p] = {};
        }
        cfg.ExposedPorts = ports;
        break;
      }
      case 'volume': {
        const vols: Record<string, object> = { ...(cfg.Volumes ?? {}) };
        const words = ins.node.json ? ins.words : ins.words.flatMap((x) => expandWords(x, env));
        for (const v of words) {
          if (!v.trim()) throw new InvalidParameterError('VOLUME specified can not be an empty string');
          vols[v] = {};
        }
        cfg.Volumes = vols;
        break;
      }
      case 'user':
        cfg.User = expandWord(ins.value, env);
        break;
      case 'workdir': {
        const w = expandWord(ins.value, env);
        cfg.WorkingDir = w.startsWith('/') ? w : `${(cfg.WorkingDir || '/').replace(/\/$/, '')}/${w}`;
        break;
      }
      case 'stopsignal':
        cfg.StopSignal = expandWord(ins.value, env);
        break;
      case 'onbuild':
        cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.expression];
        break;
      case 'healthcheck':
        if (ins.test[0] === 'NONE') cfg.Healthcheck = { Test: ['NONE'] };
        else {
          const test = ins.node.json ? ['CMD', ...ins.test.slice(ins.test[0] === 'CMD' ? 1 : 0)] : ['CMD-SHELL', ins.test.join(' ')];
          const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: test };
          if (ins.interval !== undefined) h.Interval = ins.interval;
          if (ins.timeout !== undefined) h.Timeout = ins.timeout;
          if (ins.startPeriod !== undefined) h.StartPeriod = ins.startPeriod;
          if (ins.retries !== undefined) h.Retries = ins.retries;
          cfg.Healthcheck = h;
        }
        break;
      default:
        throw new InvalidParameterError(`${ins.kind} is not a valid change command`);
    }
  }
  return cfg;
}
