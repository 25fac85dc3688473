/**
 * The command context: output, a lazily created EngineClient (host from -H / WHARF_HOST / DOCKER_HOST /
 * the default socket, TLS from the flags or DOCKER_TLS_VERIFY + DOCKER_CERT_PATH), and auto-starting a
 * local wharfd when nothing answers on the default socket.
 */
import type * as FsNs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ConnectionError, EngineClient, type TLSOptions } from '../client/client.js';
import { DEFAULT_HOST, resolveHost } from '../client/host.js';
import { StatusError, type CliContext, type GlobalOptions } from './context.js';
import { mark } from './trace.js';
import { PROJECT_ROOT } from './build-info.js';

const require = createRequire(import.meta.url);
const fs = require('node:fs') as typeof FsNs;

const DEFAULT_EXEC_ROOT = '/run/wharf';

function tlsOptions(g: GlobalOptions): TLSOptions | undefined {
  if (!g.tls && !g.tlsverify) return undefined;
  const certPath = process.env.DOCKER_CERT_PATH || g.config;
  const read = (p: string | undefined, def: string): Buffer | undefined => {
    try { return fs.readFileSync(p ?? join(certPath, def)); } catch { return undefined; }
  };
  const o: TLSOptions = { verify: g.tlsverify };
  const ca = read(g.tlscacert, 'ca.pem');
  const cert = read(g.tlscert, 'cert.pem');
  const key = read(g.tlskey, 'key.pem');
  if (ca) o.ca = ca;
  if (cert) o.cert = cert;
  if (key) o.key = key;
  return o;
}

export interface AutoStartOptions {
  timeoutMs?: number;
  /** Where wharfd.log goes (the default exec root). */
  execRoot?: string;
  /** wharfd arguments (none: its defaults, which serve the default socket). */
  args?: string[];
  err?: (s: string) => void;
}

/** Starts bin/wharfd detached (log in <exec-root>/wharfd.log) and waits up to `timeoutMs` for /_ping. */
export async function autoStartDaemon(client: EngineClient, o: AutoStartOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const execRoot = o.execRoot ?? DEFAULT_EXEC_ROOT;
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  fs.mkdirSync(execRoot, { recursive: true });
  const logPath = join(execRoot, 'wharfd.log');
  const fd = fs.openSync(logPath, 'a');
  try {
    const child = spawn(join(PROJECT_ROOT, 'bin', 'wharfd'), o.args ?? [], { detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', () => { /* reported through the ping timeout */ });
    child.unref();
  } finally {
    fs.closeSync(fd);
  }
  if (process.env.WHARF_DEBUG) o.err?.(`started wharfd (log: ${logPath})\n`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.ping();
      return;
    } catch (e) {
      if (!(e instanceof ConnectionError) || Date.now() > deadline) {
        throw new StatusError(`${(e as Error).message}\nwharfd was started automatically but did not answer within ${timeoutMs / 1000}s; see ${logPath}`, 1);
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function makeContext(globals: GlobalOptions, io: { out: (s: string) => void; err: (s: string) => void }): CliContext {
  let client: Promise<EngineClient> | undefined;
  const connect = async (): Promise<EngineClient> => {
    const { host, explicit } = resolveHost(globals.host);
    const opts: ConstructorParameters<typeof EngineClient>[0] = { host };
    const tls = tlsOptions(globals);
    if (tls) opts.tls = tls;
    if (process.env.DOCKER_API_VERSION) opts.version = process.env.DOCKER_API_VERSION;
    let c: EngineClient;
    try {
      c = new EngineClient(opts);
    } catch (e) {
      throw new StatusError((e as Error).message, 1);
    }
    try {
      mark('ping-start');
      await c.apiVersion();
      mark('ping-done');
    } catch (e) {
      if (!(e instanceof ConnectionError) || explicit || host !== DEFAULT_HOST || process.env.WHARF_NO_AUTOSTART) throw e;
      await autoStartDaemon(c, { err: io.err });
      await c.apiVersion();
    }
    return c;
  };
  return {
    globals,
    out: io.out,
    err: io.err,
    isTerminal: process.stdout.isTTY === true,
    columns: process.stdout.isTTY ? (process.stdout.columns ?? 0) : 200,
    client: () => (client ??= connect()),
    // getters: process.stdin makes a stream (a socket for a pipe) when first read, which most commands never do
    stdio: {
      get stdin() { return process.stdin; },
      get stdout() { return process.stdout; },
      get stderr() { return process.stderr; },
    },
    readLine: () => new Promise((resolveLine) => {
      let buf = '';
      const onData = (d: Buffer) => {
        buf += d.toString();
        const i = buf.indexOf('\n');
        if (i >= 0) { done(); resolveLine(buf.slice(0, i)); }
      };
      const onEnd = () => { done(); resolveLine(buf); };
      const done = () => { process.stdin.off('data', onData); process.stdin.off('end', onEnd); process.stdin.pause(); };
      process.stdin.on('data', onData);
      process.stdin.on('end', onEnd);
    }),
  };
}
