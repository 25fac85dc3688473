/**
 * `RUN --mount=…` as the Dockerfile 1.x frontend defines it: a CSV of `key=value` fields (and bare `ro`, `rw`,
 * `readonly`, `required`…), one of the types bind, cache, tmpfs, secret, ssh, with that type's defaults. Parsed
 * at parse time (every bad key or value is refused before anything runs) and again at build time after the
 * stage's variables are substituted.
 */
import { parseBytes } from '../../../lib/units.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

export interface RunMount {
  type: MountType;
  /** Absolute path in the step's container (secret/ssh: their default when not given). */
  target: string;
  /** bind/cache: a path inside `from` (default: its root). */
  source?: string;
  /** bind/cache: a stage name or index, or an image (bind: default the context; cache: an empty directory). */
  from?: string;
  /** cache: the cache's identity (default the target); secret/ssh: which one (default: from the target / "default"). */
  id?: string;
  readonly: boolean;
  sharing: CacheSharing;
  /** File mode of a cache's root, a secret file or the ssh socket. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs: size in bytes. */
  size?: number;
  /** secret/ssh: a missing one fails the step (default: the mount is skipped). */
  required: boolean;
  /** secret: the variable that gets the secret's value. */
  env?: string;
}

const TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const KEYS: Record<MountType, readonly string[]> = {
  bind: ['target', 'source', 'from', 'readonly', 'rw'],
  cache: ['target', 'source', 'from', 'readonly', 'rw', 'id', 'sharing', 'mode', 'uid', 'gid'],
  tmpfs: ['target', 'size'],
  secret: ['target', 'id', 'required', 'mode', 'uid', 'gid', 'env'],
  ssh: ['target', 'id', 'required', 'mode', 'uid', 'gid'],
};
const ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly', readwrite: 'rw' };

/** Splits a CSV line (fields may be double-quoted, `""` an escaped quote), as Go's encoding/csv. */
export function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  let quotedField = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (q) {
      if (ch === '"' && s[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') q = false; else cur += ch;
    } else if (ch === '"' && cur === '' && !quotedField) { q = true; quotedField = true; } else if (ch === ',') { out.push(cur); cur = ''; quotedField = false; } else cur += ch;
  }
  if (q) throw new Error(`extraneous or missing " in quoted-field`);
  out.push(cur);
  return out;
}

function bool(key: string, v: string | undefined): boolean {
  if (v === undefined) return true;
  if (/^(1|t|true|T|TRUE|True)$/.test(v)) return true;
  if (/^(0|f|false|F|FALSE|False)$/.test(v)) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

function int(key: string, v: string, radix: 8 | 10): number {
  const re = radix === 8 ? /^0?[0-7]{1,4}$/ : /^\d+$/;
  if (!re.test(v)) throw new Error(`invalid value for ${key}: ${v}`);
  return parseInt(v, radix);
}

/**
 * One `--mount` value. Throws an Error whose message the caller prefixes with the line. With `deferVars`, values
 * holding a `$` pass unchecked (parse time); they are checked once substituted (build time).
 */
export function parseRunMount(value: string, opts: { deferVars?: boolean } = {}): RunMount {
  const fields = splitCsv(value);
  let type: MountType = 'bind';
  const kv: [string, string | undefined][] = [];
  for (const f of fields) {
    if (f === '') continue;
    const eq = f.indexOf('=');
    const key0 = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase();
    const key = ALIASES[key0] ?? key0;
    const v = eq < 0 ? undefined : f.slice(eq + 1);
    if (key === 'type') {
      if (!TYPES.includes(v as MountType)) throw new Error(`unsupported mount type "${v ?? ''}"`);
      type = v as MountType;
      continue;
    }
    kv.push([key, v]);
  }
  const m: RunMount = { type, target: '', readonly: type === 'bind', sharing: 'shared', required: false };
  const later = (v: string | undefined) => opts.deferVars === true && v !== undefined && v.includes('$');
  for (const [key, v] of kv) {
    if (!KEYS[type].includes(key)) throw new Error(`unexpected key '${key}' for mount type '${type}'`);
    const need = (): string => {
      if (v === undefined || v === '') throw new Error(`invalid value for ${key}: a value is required`);
      return v;
    };
    if (later(v)) continue;
    switch (key) {
      case 'target': m.target = need(); break;
      case 'source': m.source = v ?? ''; break;
      case 'from': m.from = need(); break;
      case 'id': m.id = need(); break;
      case 'env': m.env = need(); break;
      case 'readonly': m.readonly = bool(key, v); break;
      case 'rw': m.readonly = !bool(key, v); break;
      case 'required': m.required = bool(key, v); break;
      case 'sharing': {
        const s = need();
        if (s !== 'shared' && s !== 'private' && s !== 'locked') throw new Error(`unsupported sharing value "${s}"`);
        m.sharing = s;
        break;
      }
      case 'mode': m.mode = int(key, need(), 8); break;
      case 'uid': m.uid = int(key, need(), 10); break;
      case 'gid': m.gid = int(key, need(), 10); break;
      case 'size':
        try { m.size = parseBytes(need()); } catch { throw new Error(`invalid value for size: ${v}`); }
        break;
    }
  }
  const deferredTarget = kv.some(([k, v]) => k === 'target' && later(v));
  if (type === 'secret') {
    if (!m.id && m.target) m.id = m.target.split('/').filter(Boolean).pop();
    if (!m.id && !deferredTarget && !kv.some(([k]) => k === 'id')) throw new Error('secret ID missing from mount options');
    if (!m.target && !m.env && m.id) m.target = `/run/secrets/${m.id}`;
    if (m.mode === undefined) m.mode = 0o400;
  } else if (type === 'ssh') {
    m.id ??= 'default';
    if (!m.target) m.target = '/run/buildkit/ssh_agent.0';
    if (m.mode === undefined) m.mode = 0o600;
  } else if (!m.target && !deferredTarget) {
    throw new Error(`mount type ${type} requires a target`);
  }
  // a relative target is resolved against the working directory by the builder (as BuildKit); a cache's id
  // defaults to that resolved target
  return m;
}
