/**
 * Request bodies read as Go's encoding/json reads them into dockerd's structs: object keys are matched to the
 * struct's field names exactly or, failing that, case-insensitively (docker-py sends `detachKeys`,
 * `CPURealtimePeriod`); unknown keys are ignored; null leaves a field at its zero value (the key is left out: nil
 * and absent are one thing in Go; in a map[string]string a null value is ""); a value of the wrong type is a 400 with Go's message, naming the field:
 * `json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64` (the innermost
 * struct's name, then the path of JSON keys from the body's top; map keys and slice indexes are not part of it).
 * The result holds canonical keys only, in the schema's types (strslice fields as lists).
 */
import type { IncomingMessage } from 'node:http';
import { InvalidParameterError } from '../lib/errors.js';
import type { GoType } from '../wire/schema.js';
import { readJsonBody } from './router.js';

/** Go's name for a JSON value's kind in "cannot unmarshal X into …". */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // string, number, object
}

/**
 * A value of the wrong type, on its way up to decodeGo: each struct it passes through puts its field's name in
 * front of the path (and the innermost one its name), so a body that decodes well builds no paths at all.
 */
class Mismatch {
  struct: string | undefined;
  readonly path: string[] = [];
  constructor(readonly v: unknown, readonly t: GoType, readonly literal: boolean) {}
}

function typeError(v: unknown, t: GoType, literal = false): Mismatch {
  return new Mismatch(v, t, literal);
}

function goError(m: Mismatch): InvalidParameterError {
  const what = m.literal && typeof m.v === 'number' ? `number ${JSON.stringify(m.v)}` : jsonKind(m.v);
  const where = m.path.length ? `Go struct field ${m.struct}.${m.path.join('.')}` : 'Go value';
  return new InvalidParameterError(`json: cannot unmarshal ${what} into ${where} of type ${m.t.go}`);
}

/** Field lookup of a struct: exact name first, then Go's case-insensitive match. */
function fieldOf(fields: Record<string, GoType>, key: string): string | undefined {
  if (Object.hasOwn(fields, key)) return key;
  const k = key.toLowerCase();
  for (const name of Object.keys(fields)) if (name.toLowerCase() === k) return name;
  return undefined;
}

function decodeValue(v: unknown, t: GoType): unknown {
  if (v === null) return null;
  switch (t.kind) {
    case 'string':
      if (typeof v !== 'string') throw typeError(v, t);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw typeError(v, t);
      return v;
    case 'int':
      if (typeof v !== 'number') throw typeError(v, t);
      if (!Number.isInteger(v) || v < t.min || v > t.max) throw typeError(v, t, true);
      return v;
    case 'strslice':
      // docker's StrSlice: a list of strings first, else one string (Go reports the string attempt's failure)
      if (typeof v === 'string') return [v];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(v, { kind: 'string', go: 'string' });
      return v;
    case 'slice':
      if (!Array.isArray(v)) throw typeError(v, t);
      return v.map((x) => decodeValue(x, t.elem));
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) throw typeError(v, t);
      const out: Record<string, unknown> = {};
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        const x = (v as Record<string, unknown>)[k];
        // defined, not assigned: a key such as "__proto__" is data (a label), never the object's prototype
        Object.defineProperty(out, k, {
          value: x === null && t.elem.kind === 'string' ? '' : decodeValue(x, t.elem), enumerable: true, writable: true, configurable: true,
        });
      }
      return out;
    }
    case 'empty':
      if (typeof v !== 'object' || Array.isArray(v)) throw typeError(v, t);
      return {};
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) throw typeError(v, t);
      const out: Record<string, unknown> = {};
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        const name = fieldOf(t.fields, k);
        if (name === undefined) continue;
        let d: unknown;
        try {
          d = decodeValue((v as Record<string, unknown>)[k], t.fields[name]!);
        } catch (e) {
          if (e instanceof Mismatch) { e.path.unshift(name); e.struct ??= t.name; }
          throw e;
        }
        // null leaves Go's zero value (a later duplicate key resets an earlier one's value the same way)
        if (d === null) delete out[name];
        else out[name] = d;
      }
      return out;
    }
  }
}

/** Decodes a parsed JSON value into the Go type `t` (a struct, for request bodies). */
export function decodeGo<T>(v: unknown, t: GoType): T {
  try {
    return decodeValue(v, t) as T;
  } catch (e) {
    if (e instanceof Mismatch) throw goError(e);
    throw e;
  }
}

/**
 * Reads a request body and decodes it into the struct `t`. An empty body (or `null`) gives undefined: each route
 * says what that means (dockerd: create's "Config cannot be empty", an empty exec start, an unnamed volume).
 */
export async function readBody<T>(req: IncomingMessage, t: GoType): Promise<T | undefined> {
  const raw = await readJsonBody(req);
  if (raw === undefined || raw === null) return undefined;
  return decodeGo<T>(raw, t);
}
