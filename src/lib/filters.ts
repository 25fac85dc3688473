/**
 * docker's `filters` query parameter (api/types/filters in moby): a map from filter name to values.
 * On the wire: {"name":{"value":true}}, or the legacy {"name":["value"]}.
 */
import { InvalidParameterError } from './errors.js';
import { tryParseGoDuration } from './go.js';

export type Filters = Record<string, string[]>;

/**
 * The error dockerd 20.10 returns for an unknown filter name ("Invalid filter 'x'") or a bad value
 * ("Invalid filter 'dangling=[maybe]'": Go formats the value list with %s).
 */
export function invalidFilterError(name: string, values?: readonly string[]): InvalidParameterError {
  const v = values === undefined ? '' : `=[${values.join(' ')}]`;
  return new InvalidParameterError(`Invalid filter '${name}${v}'`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses the `filters` query parameter. Empty / missing → {}. Bad JSON → InvalidParameterError. */
export function parseFilters(json: string | undefined | null): Filters {
  const out: Filters = Object.create(null) as Filters;
  if (json === undefined || json === null || json === '') return out;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new InvalidParameterError(`invalid filter: ${(err as Error).message}`, { cause: err });
  }
  if (raw === null) return out; // Go unmarshals null into an empty map
  if (!isPlainObject(raw)) {
    throw new InvalidParameterError(`invalid filter: json: cannot unmarshal ${goJsonKind(raw)} into Go value of type map[string]map[string]bool`);
  }
  // Either every value is an object of booleans (current form) or every value is a string list (legacy).
  const modern = Object.values(raw).every((v) => v === null || (isPlainObject(v) && Object.values(v).every((b) => typeof b === 'boolean')));
  const legacy = !modern && Object.values(raw).every((v) => v === null || (Array.isArray(v) && v.every((s) => typeof s === 'string')));
  if (!modern && !legacy) {
    const bad = Object.values(raw).find((v) => !(v === null || isPlainObject(v)));
    const kind = bad === undefined ? 'object' : goJsonKind(bad);
    throw new InvalidParameterError(`invalid filter: json: cannot unmarshal ${kind} into Go value of type map[string]bool`);
  }
  for (const [k, v] of Object.entries(raw)) {
    const list: string[] = [];
    if (Array.isArray(v)) {
      for (const s of v as string[]) if (!list.includes(s)) list.push(s);
    } else if (isPlainObject(v)) {
      list.push(...Object.keys(v));
    }
    out[k] = list;
  }
  return out;
}

function goJsonKind(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

/**
 * The {"name":{"value":true}} form the docker CLI sends: names and values sorted (Go marshals maps
 * sorted). Empty filters encode to "" (the CLI then omits the parameter), like filters.ToJSON.
 */
export function encodeFilters(f: Filters): string {
  const names = Object.keys(f).sort();
  if (names.length === 0) return '';
  const obj: Record<string, Record<string, boolean>> = {};
  for (const n of names) {
    const inner: Record<string, boolean> = {};
    for (const v of [...(f[n] ?? [])].sort()) inner[v] = true;
    obj[n] = inner;
  }
  return JSON.stringify(obj);
}

/** `-f key=value` flags → Filters (the CLI's FilterOpt: name lower-cased and trimmed, value trimmed). */
export function filtersFromArgs(args: readonly string[]): Filters {
  const out: Filters = Object.create(null) as Filters;
  for (const arg of args) {
    if (arg === '') continue;
    const eq = arg.indexOf('=');
    if (eq < 0) throw new InvalidParameterError('bad format of filter (expected name=value)');
    const name = arg.slice(0, eq).trim().toLowerCase();
    const value = arg.slice(eq + 1).trim();
    const list = (out[name] ??= []);
    if (!list.includes(value)) list.push(value);
  }
  return out;
}

/** Throws docker's error for the first filter name not in `allowed`. */
export function validateFilters(f: Filters, allowed: readonly string[]): void {
  for (const name of Object.keys(f)) {
    if (!allowed.includes(name)) throw invalidFilterError(name);
  }
}

/** The values of one filter ([] when absent). */
export function filterValues(f: Filters, name: string): string[] {
  return f[name] ?? [];
}

/** Whether the filter is present (even with no values). */
export function hasFilter(f: Filters, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(f, name);
}

/** Args.ExactMatch: true when the filter has no values or one equals `source`. */
export function exactMatch(f: Filters, name: string, source: string): boolean {
  const vals = f[name];
  if (!vals || vals.length === 0) return true;
  return vals.includes(source);
}

/** Args.FuzzyMatch: true when the filter has no values, one equals `source`, or one is a prefix of it. */
export function fuzzyMatch(f: Filters, name: string, source: string): boolean {
  if (exactMatch(f, name, source)) return true;
  return (f[name] ?? []).some((v) => source.startsWith(v));
}

/** Args.Match: exact match, or any value as an (unanchored) regular expression matching `source`. */
export function matchFilter(f: Filters, name: string, source: string): boolean {
  if (exactMatch(f, name, source)) return true;
  for (const v of f[name] ?? []) {
    try {
      if (new RegExp(v).test(source)) return true;
    } catch {
      // an invalid pattern never matches (Go skips it)
    }
  }
  return false;
}

/**
 * Args.MatchKVList, used for `label=`: every value ("key" or "key=value") must be satisfied by `sources`.
 */
export function matchKVList(f: Filters, name: string, sources: Record<string, string> | null | undefined): boolean {
  const vals = f[name];
  if (!vals || vals.length === 0) return true;
  if (!sources || Object.keys(sources).length === 0) return false;
  for (const v of vals) {
    const eq = v.indexOf('=');
    const k = eq < 0 ? v : v.slice(0, eq);
    if (!Object.prototype.hasOwnProperty.call(sources, k)) return false;
    if (eq >= 0 && sources[k] !== v.slice(eq + 1)) return false;
  }
  return true;
}

/** Args.GetBoolOrDefault: "1"/"true" → true, "0"/"false" → false; anything else is an invalid filter. */
export function getBoolOrDefault(f: Filters, name: string, def: boolean): boolean {
  if (!hasFilter(f, name)) return def;
  const vals = f[name]!;
  if (vals.length === 0) throw invalidFilterError(name);
  const isFalse = vals.includes('0') || vals.includes('false');
  const isTrue = vals.includes('1') || vals.includes('true');
  if (isFalse === isTrue) throw invalidFilterError(name, vals);
  return isTrue;
}

/** docker's timestamp filter values ("until="): durations back from now, unix seconds, RFC 3339 dates. */
export function parseTimestamp(value: string, now = Date.now()): number {
  if (value === '') return now;
  const dur = tryParseGoDuration(value);
  if (dur !== null && value !== '0') return now - dur / 1e6;
  if (/^-?\d+(\.\d+)?$/.test(value)) return parseFloat(value) * 1000;
  let v = value;
  if (/^\d{4}-\d\d-\d\d$/.test(v)) v += 'T00:00:00';
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(v) && v.includes('T');
  const ms = Date.parse(hasZone ? v : v); // a date without zone is local time, as Go's ParseInLocation(Local)
  if (Number.isNaN(ms)) throw new InvalidParameterError(`invalid value for 'until' filter: failed to parse value as time or duration: "${value}"`);
  return ms;
}

/**
 * The prune filters' `until` (dockerd's getUntilFromPruneFilters): null when absent, else the time in unix ms;
 * more than one value is refused.
 */
export function pruneUntil(f: Filters): number | null {
  if (!hasFilter(f, 'until')) return null;
  const vals = f.until!;
  if (vals.length === 0) return null;
  if (vals.length > 1) throw new InvalidParameterError('more than one until filter specified');
  return parseTimestamp(vals[0] ?? '');
}

/** The prune filters' `label` and `label!` (dockerd's matchLabels): whether an object with these labels is pruned. */
export function pruneLabelsMatch(f: Filters, labels: Record<string, string> | null | undefined): boolean {
  if (!matchKVList(f, 'label', labels)) return false;
  if (hasFilter(f, 'label!') && matchKVList(f, 'label!', labels)) return false;
  return true;
}
