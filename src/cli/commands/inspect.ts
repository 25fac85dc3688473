/** wharf image inspect, wharf inspect: docker's inspect package (indented raw JSON, or a template per object). */
import { compileTemplate } from '../../lib/gotemplate.js';
import { isDaemonError, type EngineClient } from '../../client/client.js';
import { StatusError, type CliContext, type Opts } from '../context.js';

/** Go's json.Indent(dst, src, "", "    "): re-indents JSON text, copying strings and numbers verbatim. */
export function indentJSON(src: string, indent = '    '): string {
  let out = '';
  let depth = 0;
  let needIndent = false;
  const nl = () => '\n' + indent.repeat(depth);
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') continue;
    if (needIndent && c !== ']' && c !== '}') {
      needIndent = false;
      depth++;
      out += nl();
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j;
      continue;
    }
    switch (c) {
      case '{': case '[':
        out += c;
        needIndent = true;
        break;
      case ',':
        out += c + nl();
        break;
      case ':':
        out += ': ';
        break;
      case '}': case ']':
        if (needIndent) needIndent = false; // empty: "{}" / "[]"
        else { depth--; out += nl(); }
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

type Getter = (ref: string) => Promise<{ typed: unknown; raw: string }>;

/** The OCI image config (docker 28's image.InspectResponse.Config): fields in struct order, empty ones omitted. */
function ociConfig(c: unknown): unknown {
  if (c === null || typeof c !== 'object') return c;
  const src = c as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const empty = (v: unknown) => v === undefined || v === null || v === '' || v === false || v === 0
    || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
  for (const k of ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell']) {
    if (!empty(src[k])) out[k] = src[k];
  }
  return out;
}

/** The image as the docker CLI's typed struct would marshal it (for templates such as {{json .Config}}). */
export function typedImage(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const omitEmpty = new Set(['Container', 'ContainerConfig', 'Variant', 'OsVersion', 'VirtualSize', 'Descriptor', 'Manifests']);
  for (const [k, v] of Object.entries(raw)) {
    if (omitEmpty.has(k) && (v === undefined || v === null || v === '' || v === 0)) continue;
    out[k] = k === 'Config' ? ociConfig(v) : v;
  }
  return out;
}

function errText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return isDaemonError(e) ? `Error response from daemon: ${m}` : m;
}

/** inspect.Inspect: prints every object found, collects errors (exit 1 with them joined). */
async function inspectAll(ctx: CliContext, refs: string[], format: string, get: Getter): Promise<void> {
  let tmpl: ((data: unknown) => string) | undefined;
  if (format !== '' && format !== 'json') {
    try {
      tmpl = compileTemplate(format, undefined, { raw: true, jsonEscapeHTML: false });
    } catch (e) {
      throw new StatusError(`template parsing error: ${(e as Error).message}`, 64);
    }
  }
  const errs: string[] = [];
  const raws: string[] = [];
  let text = '';
  for (const ref of refs) {
    let got: { typed: unknown; raw: string };
    try {
      got = await get(ref);
    } catch (e) {
      errs.push(errText(e));
      continue;
    }
    if (tmpl === undefined) { raws.push(got.raw); continue; }
    try {
      text += tmpl(got.typed) + '\n';
    } catch {
      try {
        text += tmpl(JSON.parse(got.raw)) + '\n';
      } catch (e2) {
        errs.push(`template parsing error: ${(e2 as Error).message}`);
      }
    }
  }
  if (tmpl === undefined) {
    if (format === 'json') ctx.out(raws.length === 0 ? '[]\n' : `[${raws.map((r) => r.trim()).join(',')}]\n`);
    else ctx.out(raws.length === 0 ? '[]\n' : `${indentJSON(`[${raws.map((r) => r.trim()).join(',')}]`)}\n`);
  } else {
    ctx.out(text);
  }
  if (errs.length > 0) throw new StatusError(errs.join('\n'), 1);
}

async function rawGet(client: EngineClient, path: string): Promise<string> {
  const { readBody } = await import('../../client/client.js');
  return readBody(await client.request('GET', path));
}

const enc = (s: string) => encodeURI(s).replace(/\?/g, '%3F').replace(/#/g, '%23');

function imageGetter(client: EngineClient): Getter {
  return async (ref) => {
    const raw = await rawGet(client, `/images/${enc(ref)}/json`);
    return { typed: typedImage(JSON.parse(raw) as Record<string, unknown>), raw };
  };
}

export async function runImageInspect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const client = await ctx.client();
  await inspectAll(ctx, args, (o.format as string | undefined) ?? '', imageGetter(client));
}

export async function runInspect(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const type = (o.type as string | undefined) ?? '';
  const known = ['container', 'image', 'network', 'volume', 'plugin', 'config', 'node', 'secret', 'service', 'task'];
  if (type !== '' && !known.includes(type)) {
    throw new StatusError(`unknown type: ${JSON.stringify(type)}: must be one of ${[...known].sort().map((k) => JSON.stringify(k)).join(', ')}`, 1);
  }
  const client = await ctx.client();
  const img = imageGetter(client);
  const plain = (prefix: string): Getter => async (ref) => {
    const raw = await rawGet(client, `${prefix}/${enc(ref)}${prefix === '/volumes' || prefix === '/networks' ? '' : '/json'}`);
    return { typed: JSON.parse(raw), raw };
  };
  const kinds: [string, Getter][] = [
    ['container', plain('/containers')], ['image', img], ['network', plain('/networks')], ['volume', plain('/volumes')], ['plugin', plain('/plugins')],
  ];
  const get: Getter = async (ref) => {
    for (const [k, g] of kinds) {
      if (type !== '' && k !== type) continue;
      try {
        return await g(ref);
      } catch (e) {
        const m = e instanceof Error ? e.message : '';
        const skippable = (e as { statusCode?: number }).statusCode === 404 || m.includes('not supported') || m.includes('invalid reference format');
        if (type === '' && skippable) continue;
        throw e;
      }
    }
    throw new Error(`Error: No such object: ${ref}`);
  };
  await inspectAll(ctx, args, (o.format as string | undefined) ?? '', get);
}
