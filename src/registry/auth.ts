/**
 * Access control of the registry server: htpasswd (bcrypt) basic auth, and bearer tokens (JWT) either issued
 * by the server itself (HS256, users from the htpasswd file) or by an external token server whose signing key
 * or certificate is given (RS256/ES256/…).
 */
import { readFile } from 'node:fs/promises';
import { createHash, createHmac, createPublicKey, randomBytes, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { RegistryError } from './errors.js';

/** One access a request needs: `repository:<name>:pull,push` or `registry:catalog:*`. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export function scopeString(a: Access): string {
  return `${a.type}:${a.name}:${a.actions.join(',')}`;
}

/** Parses "repository:foo/bar:pull,push" (names may contain ':' only before a port, never here). */
export function parseScope(s: string): Access | null {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

export class Htpasswd {
  private users = new Map<string, string>();
  /** sha256(user:password) of credentials bcrypt already accepted: bcrypt costs ~ms per check. */
  private verified = new Set<string>();

  static async load(path: string): Promise<Htpasswd> {
    const h = new Htpasswd();
    const text = await readFile(path, 'utf8');
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const i = line.indexOf(':');
      if (i <= 0) continue;
      h.users.set(line.slice(0, i), line.slice(i + 1));
    }
    return h;
  }

  async check(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined || !/^\$2[aby]?\$/.test(hash)) return false;
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    if (this.verified.has(key)) return true;
    const ok = await bcrypt.compare(password, hash);
    if (ok) this.verified.add(key);
    return ok;
  }
}

/** Decodes "Basic base64(user:pass)"; null when absent or malformed. */
export function parseBasic(header: string | undefined): { user: string; password: string } | null {
  if (!header) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return null;
  const s = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = s.indexOf(':');
  if (i < 0) return null;
  return { user: s.slice(0, i), password: s.slice(i + 1) };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export interface TokenOptions {
  /** URL clients fetch tokens from; default: the server's own /auth/token. */
  realm?: string;
  /** The `service` (audience) tokens must name; default "wharf-registry". */
  service?: string;
  /** The `iss` tokens must carry; default "wharf-registry". */
  issuer?: string;
  /** HMAC secret for HS256 tokens (also used to issue tokens); random per process when absent. */
  secret?: Buffer;
  /** PEM public key or certificate of an external token server (RS256/RS384/RS512/ES256/ES384/ES512/EdDSA). */
  publicKeyPem?: string;
  /** Serve GET /auth/token (users from htpasswd). Default: true unless a public key is given. */
  issue?: boolean;
  /** Token lifetime in seconds (default 300). */
  ttl?: number;
}

interface Claims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  access?: Access[];
}

export class TokenAuth {
  readonly realm: string | undefined;
  readonly service: string;
  readonly issuer: string;
  readonly secret: Buffer;
  readonly publicKey: KeyObject | undefined;
  readonly issue: boolean;
  readonly ttl: number;

  constructor(opts: TokenOptions) {
    this.realm = opts.realm;
    this.service = opts.service ?? 'wharf-registry';
    this.issuer = opts.issuer ?? 'wharf-registry';
    this.secret = opts.secret ?? randomBytes(32);
    this.publicKey = opts.publicKeyPem ? createPublicKey(opts.publicKeyPem) : undefined;
    this.issue = opts.issue ?? !opts.publicKeyPem;
    this.ttl = opts.ttl ?? 300;
  }

  sign(subject: string, access: Access[]): { token: string; expiresIn: number; issuedAt: string } {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const claims: Claims & { jti: string } = {
      iss: this.issuer, sub: subject, aud: this.service, iat: now, nbf: now - 1, exp: now + this.ttl,
      jti: randomBytes(12).toString('hex'), access,
    };
    const body = b64url(JSON.stringify(claims));
    const sig = createHmac('sha256', this.secret).update(`${header}.${body}`).digest();
    return { token: `${header}.${body}.${b64url(sig)}`, expiresIn: this.ttl, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Verifies signature, issuer, audience and times; returns the claims or null. */
  verify(token: string): Claims | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [h, p, s] = parts as [string, string, string];
    let header: { alg?: string };
    let claims: Claims;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Claims;
    } catch {
      return null;
    }
    const signed = Buffer.from(`${h}.${p}`);
    const sig = Buffer.from(s, 'base64url');
    const alg = header.alg ?? '';
    let ok = false;
    if (alg === 'HS256') {
      const want = createHmac('sha256', this.secret).update(signed).digest();
      ok = want.length === sig.length && timingSafeEqual(want, sig);
    } else if (this.publicKey) {
      try {
        if (/^RS(256|384|512)$/.test(alg)) ok = cryptoVerify(`sha${alg.slice(2)}`, signed, this.publicKey, sig);
        else if (/^PS(256|384|512)$/.test(alg)) {
          ok = cryptoVerify(`sha${alg.slice(2)}`, signed, { key: this.publicKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -1 }, sig);
        } else if (/^ES(256|384|512)$/.test(alg)) {
          ok = cryptoVerify(`sha${alg.slice(2)}`, signed, { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, sig);
        } else if (alg === 'EdDSA') ok = cryptoVerify(null, signed, this.publicKey, sig);
      } catch {
        ok = false;
      }
    }
    if (!ok) return null;
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== this.issuer) return null;
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(this.service)) return null;
    if (typeof claims.exp !== 'number' || claims.exp < now - 30) return null;
    if (typeof claims.nbf === 'number' && claims.nbf > now + 30) return null;
    return claims;
  }
}

/** True when the token's access claims grant every action of `need`. */
export function grants(claims: Claims, need: Access): boolean {
  for (const want of need.actions) {
    const ok = (claims.access ?? []).some((a) =>
      a.type === need.type && a.name === need.name && Array.isArray(a.actions) && (a.actions.includes(want) || a.actions.includes('*')));
    if (!ok) return false;
  }
  return true;
}

export interface AuthConfig {
  htpasswd?: Htpasswd;
  realm: string;
  token?: TokenAuth;
}

export type AuthResult = { ok: true; user?: string; claims?: Claims } | { ok: false; error: RegistryError; wwwAuthenticate: string };

/**
 * Decides whether a request with `authorization` may do `need` (null: only authenticated, as for GET /v2/).
 * `realmUrl` is the token realm when the server issues tokens itself.
 */
export async function authorize(cfg: AuthConfig, authorization: string | undefined, need: Access[], realmUrl: string): Promise<AuthResult> {
  if (cfg.token) {
    const t = cfg.token;
    const scope = need.map(scopeString).join(' ');
    const challenge = (extra: string) =>
      `Bearer realm="${t.realm ?? realmUrl}",service="${t.service}"${scope ? `,scope="${scope}"` : ''}${extra}`;
    const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!m) return { ok: false, error: new RegistryError('UNAUTHORIZED', 'authentication required', need.map((n) => ({ Type: n.type, Name: n.name, Action: n.actions.join(',') }))), wwwAuthenticate: challenge('') };
    const claims = t.verify(m[1]!);
    if (!claims) return { ok: false, error: new RegistryError('UNAUTHORIZED', 'invalid token'), wwwAuthenticate: challenge(',error="invalid_token"') };
    for (const n of need) {
      if (!grants(claims, n)) {
        return {
          ok: false,
          error: new RegistryError('UNAUTHORIZED', 'authentication required', [{ Type: n.type, Name: n.name, Action: n.actions.join(',') }]),
          wwwAuthenticate: challenge(',error="insufficient_scope"'),
        };
      }
    }
    return { ok: true, user: claims.sub, claims };
  }
  if (cfg.htpasswd) {
    const challenge = `Basic realm="${cfg.realm}"`;
    const creds = parseBasic(authorization);
    if (!creds) return { ok: false, error: new RegistryError('UNAUTHORIZED', 'authentication required'), wwwAuthenticate: challenge };
    if (!(await cfg.htpasswd.check(creds.user, creds.password))) {
      return { ok: false, error: new RegistryError('UNAUTHORIZED', 'invalid username or password'), wwwAuthenticate: challenge };
    }
    return { ok: true, user: creds.user };
  }
  return { ok: true };
}
