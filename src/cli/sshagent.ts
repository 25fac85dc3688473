/**
 * An SSH agent of the CLI's own, for `wharf build --ssh id=<key file>[,<key file>…]` (as docker buildx accepts key
 * files): the keys are read with the `ssh2` package's parser (OpenSSH, PEM and PuTTY formats) before the build
 * starts, and the agent protocol (draft-miller-ssh-agent) is served on each stream the daemon opens for a step:
 * list identities, and sign — ssh-ed25519, ssh-rsa (with the rsa-sha2-256/512 flags) and ecdsa-sha2-nistp256/384/521.
 * Everything else is answered SSH_AGENT_FAILURE (the agent is read-only: no adding, removing or locking).
 */
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';

const FAILURE = 5;
const REQUEST_IDENTITIES = 11;
const IDENTITIES_ANSWER = 12;
const SIGN_REQUEST = 13;
const SIGN_RESPONSE = 14;
const RSA_SHA2_256 = 2;
const RSA_SHA2_512 = 4;
/** An agent message above this is refused (OpenSSH's agent uses 256 KiB). */
const MAX_MESSAGE = 256 * 1024;

export interface AgentKey {
  /** The key's type as SSH names it (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256…). */
  type: string;
  /** The public key blob (SSH wire format). */
  blob: Buffer;
  comment: string;
  key: KeyObject;
}

const ECDSA_HASH: Record<string, string> = { 'ecdsa-sha2-nistp256': 'sha256', 'ecdsa-sha2-nistp384': 'sha384', 'ecdsa-sha2-nistp521': 'sha512' };
const SUPPORTED = new Set(['ssh-ed25519', 'ssh-rsa', ...Object.keys(ECDSA_HASH)]);

/** Reads private key files; a clear error (naming the file) for an encrypted, public-only, unsupported or unreadable one. */
export async function loadKeys(files: readonly string[]): Promise<AgentKey[]> {
  // (CommonJS: its exports are the default export's properties)
  const ssh2 = await import('ssh2');
  const utils = ((ssh2 as unknown as { default?: typeof ssh2 }).default ?? ssh2).utils;
  const out: AgentKey[] = [];
  for (const file of files) {
    let data: Buffer;
    try { data = readFileSync(file); } catch (e) { throw new Error(`failed to read ${file}: ${(e as Error).message}`); }
    const parsed = utils.parseKey(data) as ReturnType<typeof utils.parseKey> | ReturnType<typeof utils.parseKey>[];
    const keys = Array.isArray(parsed) ? parsed : [parsed];
    for (const k of keys) {
      if (k instanceof Error) {
        if (/passphrase|encrypted/i.test(k.message)) throw new Error(`${file} is encrypted: passphrase-protected keys are not supported (load the key into ssh-agent and pass --ssh <id>=$SSH_AUTH_SOCK)`);
        throw new Error(`${file} is not a private key file an SSH agent can use: ${k.message}`);
      }
      if (!k.isPrivateKey()) throw new Error(`${file} holds a public key: give the private key file`);
      if (!SUPPORTED.has(k.type)) throw new Error(`${file}: key type ${k.type} is not supported (ed25519, RSA and ECDSA are)`);
      const pem = k.getPrivatePEM();
      let key: KeyObject;
      try { key = createPrivateKey(pem); } catch (e) { throw new Error(`${file}: ${(e as Error).message}`); }
      out.push({ type: k.type, blob: Buffer.from(k.getPublicSSH()), comment: k.comment || file, key });
    }
  }
  return out;
}

const u32 = (n: number) => { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(n >>> 0, 0); return b; };
const str = (b: Buffer | string) => { const x = typeof b === 'string' ? Buffer.from(b) : b; return Buffer.concat([u32(x.length), x]); };
/** An unsigned big-endian integer as an SSH mpint (no superfluous zeros; a 0 byte before a high bit). */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  let x = b.subarray(i);
  if (x.length && x[0]! & 0x80) x = Buffer.concat([Buffer.from([0]), x]);
  return str(x);
}

/** A signature blob (SSH wire format: string algorithm, string signature) of `data` by `k`, per the request's flags. */
export function signWith(k: AgentKey, data: Buffer, flags: number): Buffer {
  if (k.type === 'ssh-ed25519') return Buffer.concat([str('ssh-ed25519'), str(cryptoSign(null, data, k.key))]);
  if (k.type === 'ssh-rsa') {
    const [alg, hash] = flags & RSA_SHA2_512 ? ['rsa-sha2-512', 'sha512'] : flags & RSA_SHA2_256 ? ['rsa-sha2-256', 'sha256'] : ['ssh-rsa', 'sha1'];
    return Buffer.concat([str(alg!), str(cryptoSign(hash!, data, k.key))]);
  }
  const hash = ECDSA_HASH[k.type];
  if (!hash) throw new Error(`key type ${k.type} is not supported`);
  const rs = cryptoSign(hash, data, { key: k.key, dsaEncoding: 'ieee-p1363' });
  const half = rs.length / 2;
  return Buffer.concat([str(k.type), str(Buffer.concat([mpint(rs.subarray(0, half)), mpint(rs.subarray(half))]))]);
}

/** The answer to one agent request (its type byte and contents). */
export function answer(keys: readonly AgentKey[], msg: Buffer): Buffer {
  const fail = Buffer.from([FAILURE]);
  if (msg.length < 1) return fail;
  switch (msg[0]) {
    case REQUEST_IDENTITIES:
      return Buffer.concat([Buffer.from([IDENTITIES_ANSWER]), u32(keys.length), ...keys.flatMap((k) => [str(k.blob), str(k.comment)])]);
    case SIGN_REQUEST: {
      let off = 1;
      const take = (): Buffer | null => {
        if (off + 4 > msg.length) return null;
        const n = msg.readUInt32BE(off);
        if (off + 4 + n > msg.length) return null;
        const b = msg.subarray(off + 4, off + 4 + n);
        off += 4 + n;
        return b;
      };
      const blob = take();
      const data = take();
      if (!blob || !data) return fail;
      const flags = off + 4 <= msg.length ? msg.readUInt32BE(off) : 0;
      const k = keys.find((x) => x.blob.equals(blob));
      if (!k) return fail;
      try {
        return Buffer.concat([Buffer.from([SIGN_RESPONSE]), str(signWith(k, data, flags))]);
      } catch {
        return fail;
      }
    }
    default:
      return fail;
  }
}

/** Serves the agent protocol on one connection until it ends. */
export function serveAgent(conn: Duplex, keys: readonly AgentKey[]): void {
  let buf: Buffer = Buffer.alloc(0);
  conn.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (n > MAX_MESSAGE) { conn.destroy(new Error(`agent message of ${n} bytes`)); return; }
      if (buf.length < 4 + n) return;
      const msg = buf.subarray(4, 4 + n);
      buf = buf.subarray(4 + n);
      conn.write(str(answer(keys, msg)));
    }
  });
  conn.on('end', () => conn.end());
  conn.on('error', () => conn.destroy());
}
