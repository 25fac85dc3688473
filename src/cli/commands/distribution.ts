/**
 * push, save, load, import, export, login, logout, search — images travelling through registries and
 * archives, with the docker CLI's flags, messages and exit statuses.
 */
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { credentialsFor, INDEX_SERVER } from '../../client/auth.js';
import { eraseCredentials, storeCredentials } from '../../client/credentials.js';
import { decodeJSONMessages } from '../../client/jsonstream.js';
import { DEFAULT_DOMAIN, DEFAULT_REGISTRY_HOST, familiarName, normalizedName, parseNormalizedNamed, referenceString, withDefaultTag } from '../../lib/reference.js';
import { formatList } from '../../lib/gotemplate.js';
import { ellipsis } from '../../lib/units.js';
import { encodeFilters } from '../../lib/filters.js';
import { displayJSONMessages } from '../jsonmessage.js';
import { normalizeFormat, TABLE_FORMAT_KEY } from '../formatters.js';
import { parseFilterFlag } from './images.js';
import { StatusError, type CliContext, type Opts } from '../context.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function authHeader(domain: string, ctx: CliContext): string {
  const a = credentialsFor(domain, ctx.globals.config);
  return Buffer.from(JSON.stringify(a)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

// ------------------------------------------------------------------------------------------ push

export async function runPush(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  let ref = parseNormalizedNamed(args[0]!);
  const all = o.allTags === true;
  if (all && (ref.tag !== undefined || ref.digest !== undefined)) throw new StatusError("tag can't be used with --all-tags/-a", 1);
  if (!all && ref.tag === undefined && ref.digest === undefined) {
    ref = withDefaultTag(ref);
    if (o.quiet !== true) ctx.out(`Using default tag: ${ref.tag}\n`);
  }
  const client = await ctx.client();
  const stream = await client.stream('POST', `/images/${encodeURI(normalizedName(ref))}/push`, {
    query: { tag: all ? undefined : ref.tag },
    headers: { 'X-Registry-Auth': authHeader(ref.domain, ctx) },
  });
  const quiet = o.quiet === true;
  await displayJSONMessages(stream, quiet ? () => {} : ctx.out, { isTerminal: ctx.isTerminal && !quiet, width: ctx.columns });
  if (quiet) ctx.out(`${all ? familiarName(ref) : referenceString(ref).replace(/^docker\.io\/(library\/)?/, '')}\n`);
}

// ------------------------------------------------------------------------------------------ save / load

/** Writes a response body to `file` through a temporary file beside it (renamed at the end, like docker). */
async function copyToFile(body: Readable, file: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    await pipeline(body, createWriteStream(tmp, { mode: 0o600 }));
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export async function runSave(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const output = str(o.output);
  if (!output && ctx.stdio.stdout.isTTY) throw new StatusError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 1);
  if (output) {
    const dir = dirname(output);
    if (!existsSync(dir)) throw new StatusError(`failed to save image: invalid output path: directory ${JSON.stringify(dir)} does not exist`, 1);
  }
  const client = await ctx.client();
  const res = await client.request('GET', '/images/get', { query: { names: args } });
  try {
    if (output) await copyToFile(res, output);
    else await pipeline(res, ctx.stdio.stdout, { end: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw new StatusError(`Error: failed to save image: ${(e as Error).message === 'aborted' ? 'unexpected EOF' : (e as Error).message}`, 1);
  }
}

async function showStreamOrCopy(ctx: CliContext, res: IncomingMessage): Promise<void> {
  if ((res.headers['content-type'] ?? '').includes('application/json')) {
    await displayJSONMessages(decodeJSONMessages(res), ctx.out, { isTerminal: ctx.isTerminal, width: ctx.columns });
  } else {
    await pipeline(res, ctx.stdio.stdout, { end: false });
  }
}

export async function runLoad(ctx: CliContext, _args: string[], o: Opts): Promise<void> {
  const input = str(o.input);
  let body: Readable;
  if (input) {
    try { statSync(input); } catch { throw new StatusError(`open ${input}: no such file or directory`, 1); }
    body = createReadStream(input);
  } else {
    if (ctx.stdio.stdin.isTTY) throw new StatusError('requested load from stdin, but stdin is empty', 1);
    body = ctx.stdio.stdin;
  }
  const client = await ctx.client();
  const res = await client.request('POST', '/images/load', {
    query: { quiet: o.quiet === true || !ctx.isTerminal },
    headers: { 'Content-Type': 'application/x-tar' },
    bodyStream: body,
  });
  await showStreamOrCopy(ctx, res);
}

// ------------------------------------------------------------------------------------------ import / export

export async function runImport(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const src = args[0]!;
  let fromSrc = '-';
  let body: Readable | undefined;
  if (src === '-') body = ctx.stdio.stdin;
  else if (/^(https?):\/\//.test(src)) fromSrc = src;
  else {
    try { statSync(src); } catch { throw new StatusError(`open ${src}: no such file or directory`, 1); }
    body = createReadStream(src);
  }
  let repo = '';
  let tag = '';
  if (args[1] !== undefined) {
    const r = parseNormalizedNamed(args[1]);
    repo = normalizedName(r);
    tag = r.tag ?? '';
  }
  const client = await ctx.client();
  const res = await client.request('POST', '/images/create', {
    query: { fromSrc, repo, tag, message: str(o.message), changes: list(o.change), platform: str(o.platform) },
    ...(body ? { bodyStream: body, headers: { 'Content-Type': 'application/x-tar' } } : {}),
  });
  await displayJSONMessages(decodeJSONMessages(res), ctx.out, { isTerminal: ctx.isTerminal, width: ctx.columns });
}

export async function runExport(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const output = str(o.output);
  if (!output && ctx.stdio.stdout.isTTY) throw new StatusError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 1);
  const client = await ctx.client();
  const res = await client.request('GET', `/containers/${encodeURIComponent(args[0]!)}/export`);
  try {
    if (output) await copyToFile(res, output);
    else await pipeline(res, ctx.stdio.stdout, { end: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return; // the reader went away (| head)
    throw new StatusError(`Error: failed to export container: ${(e as Error).message}`, 1);
  }
}

// ------------------------------------------------------------------------------------------ login / logout

function serverKey(arg: string | undefined): string {
  if (arg === undefined || arg === '' || /^(https?:\/\/)?(index\.)?docker\.io(\/.*)?$/.test(arg) || arg === DEFAULT_REGISTRY_HOST) return INDEX_SERVER;
  return arg.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

export async function runLogin(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const server = serverKey(args[0]);
  let username = str(o.username)?.trim();
  let password = str(o.password);
  if (password !== undefined) ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (o.passwordStdin === true) {
    if (password !== undefined) throw new StatusError('--password and --password-stdin are mutually exclusive', 1);
    if (!username) throw new StatusError('Must provide --username with --password-stdin', 1);
    const chunks: Buffer[] = [];
    for await (const c of ctx.stdio.stdin) chunks.push(c as Buffer);
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (!username || password === undefined) {
    if (!ctx.stdio.stdin.isTTY) throw new StatusError('Error: Cannot perform an interactive login from a non TTY device', 1);
    if (!username) { ctx.out('Username: '); username = (await ctx.readLine()).trim(); }
    if (password === undefined) {
      ctx.out('Password: ');
      ctx.stdio.stdin.setRawMode?.(true);
      try { password = (await ctx.readLine()).replace(/\r$/, ''); } finally { ctx.stdio.stdin.setRawMode?.(false); ctx.out('\n'); }
    }
  }
  if (!username) throw new StatusError('Error: Non-null Username Required', 1);
  if (!password) throw new StatusError('Error: Password Required', 1);
  const client = await ctx.client();
  const res = await client.json<{ Status?: string; IdentityToken?: string }>('POST', '/auth', {
    body: { username, password, serveraddress: server },
  });
  const stored = res.IdentityToken ? storeCredentials(ctx.globals.config, server, '<token>', res.IdentityToken) : storeCredentials(ctx.globals.config, server, username, password);
  if (stored.store === 'file') {
    ctx.err(`WARNING! Your credentials are stored unencrypted in '${stored.path}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n`);
  }
  ctx.out(`${res.Status || 'Login Succeeded'}\n`);
}

export async function runLogout(ctx: CliContext, args: string[], _o: Opts): Promise<void> {
  const server = serverKey(args[0]);
  if (!eraseCredentials(ctx.globals.config, server)) {
    ctx.out(`Not logged in to ${server}\n`);
    return;
  }
  ctx.out(`Removing login credentials for ${server}\n`);
}

// ------------------------------------------------------------------------------------------ search

interface SearchResult { name: string; description: string; star_count: number; is_official: boolean; is_automated?: boolean }

export async function runSearch(ctx: CliContext, args: string[], o: Opts): Promise<void> {
  const filters = parseFilterFlag(list(o.filter), '-f, --filter', ['search']);
  const limitRaw = str(o.limit);
  const limit = limitRaw !== undefined ? Number(limitRaw) : undefined;
  if (limitRaw !== undefined && !Number.isInteger(limit)) throw new StatusError(`invalid argument "${limitRaw}" for "--limit" flag: strconv.ParseInt: parsing ${JSON.stringify(limitRaw)}: invalid syntax`, 125);
  const term = args[0]!;
  const domain = term.includes('/') && /[.:]|^localhost$/.test(term.split('/')[0]!) ? term.split('/')[0]! : DEFAULT_DOMAIN;
  const client = await ctx.client();
  const results = await client.json<SearchResult[]>('GET', '/images/search', {
    query: { term, limit, filters: encodeFilters(filters) },
    headers: { 'X-Registry-Auth': authHeader(domain, ctx) },
  });
  const trunc = o.noTrunc !== true;
  const rows = results.map((r) => ({
    Name: r.name,
    Description: trunc ? ellipsis(r.description.replace(/\n/g, ' '), 45) : r.description,
    StarCount: String(r.star_count),
    IsOfficial: r.is_official ? '[OK]' : '',
    IsAutomated: r.is_automated ? '[OK]' : '',
  }));
  const fmt = str(o.format);
  const format = !fmt || fmt === TABLE_FORMAT_KEY ? 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}' : normalizeFormat(fmt);
  ctx.out(formatList(format, rows, { Name: 'NAME', Description: 'DESCRIPTION', StarCount: 'STARS', IsOfficial: 'OFFICIAL', IsAutomated: 'AUTOMATED' }));
}
