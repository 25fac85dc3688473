/**
 * Storing and erasing registry credentials the way the docker CLI does: in the config file's `auths` map
 * (base64 "user:password", file mode 0600, written atomically), or through a credential helper
 * (`credsStore`, or `credHelpers[<registry>]`) speaking the docker-credential-* protocol
 * (`store` reads {ServerURL, Username, Secret} on stdin, `get` reads the server URL and prints
 * {Username, Secret}, `erase` reads the server URL). Secrets never reach stdout, stderr or logs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

type Config = Record<string, unknown> & {
  auths?: Record<string, Record<string, string>>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
};

export function configPath(dir: string): string {
  return join(dir, 'config.json');
}

export function readConfigFile(dir: string): Config {
  try {
    return JSON.parse(readFileSync(configPath(dir), 'utf8')) as Config;
  } catch {
    return {};
  }
}

function writeConfigFile(dir: string, cfg: Config): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.json.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, configPath(dir));
}

/** The credential helper for a registry (credHelpers first, then credsStore), or undefined. */
export function helperFor(cfg: Config, server: string): string | undefined {
  const host = server.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return cfg.credHelpers?.[server] ?? cfg.credHelpers?.[host] ?? (cfg.credsStore || undefined);
}

function helper(name: string, verb: 'get' | 'store' | 'erase', input: string): string {
  try {
    return execFileSync(`docker-credential-${name}`, [verb], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; message: string; code?: string };
    if (err.code === 'ENOENT') throw new Error(`error getting credentials - err: exec: "docker-credential-${name}": executable file not found in $PATH, out: \`\``);
    throw new Error(`error ${verb === 'get' ? 'getting' : verb === 'store' ? 'storing' : 'erasing'} credentials - err: ${err.message.split('\n')[0]}, out: \`${(err.stdout ?? '').trim()}\``);
  }
}

/** Credentials from a helper, or null when it has none for the server. */
export function helperGet(name: string, server: string): { username: string; password: string } | null {
  let out: string;
  try {
    out = helper(name, 'get', server);
  } catch (e) {
    if (/credentials not found/i.test((e as Error).message)) return null;
    throw e;
  }
  const j = JSON.parse(out) as { Username?: string; Secret?: string };
  if (!j.Secret) return null;
  return { username: j.Username ?? '', password: j.Secret };
}

/** Saves credentials; returns where they went ('file' means the config file, unencrypted). */
export function storeCredentials(dir: string, server: string, username: string, password: string): { store: 'file' | 'helper'; path: string } {
  const cfg = readConfigFile(dir);
  const h = helperFor(cfg, server);
  if (h) {
    helper(h, 'store', JSON.stringify({ ServerURL: server, Username: username, Secret: password }));
    // docker keeps an empty entry in auths so that the registry is listed
    cfg.auths = { ...(cfg.auths ?? {}), [server]: {} };
    writeConfigFile(dir, cfg);
    return { store: 'helper', path: configPath(dir) };
  }
  cfg.auths = { ...(cfg.auths ?? {}), [server]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  writeConfigFile(dir, cfg);
  return { store: 'file', path: configPath(dir) };
}

/** Removes credentials; false when there were none. */
export function eraseCredentials(dir: string, server: string): boolean {
  const cfg = readConfigFile(dir);
  const had = cfg.auths !== undefined && Object.prototype.hasOwnProperty.call(cfg.auths, server);
  const h = helperFor(cfg, server);
  if (h) {
    try { helper(h, 'erase', server); } catch { /* nothing stored there */ }
  }
  if (!had && !h) return false;
  if (cfg.auths) delete cfg.auths[server];
  writeConfigFile(dir, cfg);
  return had || h !== undefined;
}
