/**
 * Registry credentials for X-Registry-Auth, from the docker config file (~/.docker/config.json or
 * $DOCKER_CONFIG/config.json): the `auths` map, keyed by registry host (docker.io's key is
 * "https://index.docker.io/v1/").
 */
import type * as FsNs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

// require(): an ESM import of node:fs/node:os costs start-up time (all lazy exports get loaded).
const require = createRequire(import.meta.url);
const readFileSync: typeof FsNs.readFileSync = (require('node:fs') as typeof FsNs).readFileSync;
const homedir = (): string => process.env.HOME || (require('node:os') as typeof import('node:os')).homedir();

import type { AuthConfig } from '../wire/index.js';
import { DEFAULT_DOMAIN, INDEX_SERVER, LEGACY_DEFAULT_DOMAIN, isDockerHub } from '../lib/reference.js';

export type { AuthConfig };

export { INDEX_SERVER };

/** The directory of the client config: --config, then $DOCKER_CONFIG, then ~/.docker. */
export function configDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env.DOCKER_CONFIG || join(homedir(), '.docker');
}

interface ConfigFile { imagesFormat?: string; credsStore?: string; credHelpers?: Record<string, string>; auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }> }

function readConfig(dir: string): ConfigFile {
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as ConfigFile;
  } catch {
    return {};
  }
}

/** The config file's "imagesFormat" (docker images' default --format), '' when unset. */
export function imagesFormatFromConfig(dir: string): string {
  const f = readConfig(dir).imagesFormat;
  return typeof f === 'string' ? f : '';
}

/** Strips scheme and path from an auths key: "https://index.docker.io/v1/" → "index.docker.io". */
function hostOfKey(k: string): string {
  return k.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

/** The credentials stored for a registry domain ("docker.io", "localhost:5000"); {} when none. */
export function credentialsFor(domain: string, dir: string): AuthConfig {
  const auths = readConfig(dir).auths ?? {};
  const isHub = isDockerHub(domain);
  let entry = isHub ? auths[INDEX_SERVER] : undefined;
  let key = isHub ? INDEX_SERVER : domain;
  if (entry === undefined) {
    for (const [k, v] of Object.entries(auths)) {
      const h = hostOfKey(k);
      if (h === domain || (isHub && (h === LEGACY_DEFAULT_DOMAIN || h === DEFAULT_DOMAIN))) { entry = v; key = k; break; }
    }
  }
  const cfg = readConfig(dir);
  const helperName = cfg.credHelpers?.[isHub ? INDEX_SERVER : domain] ?? cfg.credHelpers?.[domain] ?? (cfg.credsStore || undefined);
  if (helperName && !(entry?.auth || entry?.password || entry?.identitytoken)) {
    // a credential helper keeps the secret; the config file has at most an empty entry
    const { helperGet } = require('./credentials.js') as typeof import('./credentials.js');
    let got: { username: string; password: string } | null = null;
    try { got = helperGet(helperName, isHub ? INDEX_SERVER : key); } catch { got = null; }
    if (!got) return {};
    const out: AuthConfig = { serveraddress: isHub ? INDEX_SERVER : key };
    if (got.username === '<token>') out.identitytoken = got.password;
    else { out.username = got.username; out.password = got.password; }
    return out;
  }
  if (entry === undefined) return {};
  const out: AuthConfig = {};
  let { username, password } = entry;
  if (entry.auth) {
    const dec = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) { username = dec.slice(0, i); password = dec.slice(i + 1); }
  }
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  out.serveraddress = isHub ? INDEX_SERVER : key;
  if (entry.identitytoken) out.identitytoken = entry.identitytoken;
  if (entry.registrytoken) out.registrytoken = entry.registrytoken;
  return out;
}

/** X-Registry-Auth: base64url of the JSON ({} → "e30="), as the docker CLI sends it. */
export function encodeAuthHeader(a: AuthConfig): string {
  return Buffer.from(JSON.stringify(a)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}
