/**
 * Standalone entry of the registry server (the `wharf registry serve` subcommand calls the same functions):
 *
 *   node dist/src/registry/main.js serve --addr 127.0.0.1:5000 --root /var/lib/wharf-registry \
 *        [--htpasswd FILE] [--realm R] [--tls-cert F --tls-key F] \
 *        [--token-auth] [--token-realm URL] [--token-service S] [--token-issuer I] [--token-secret-file F] [--token-public-key F]
 *        [--storage s3 --s3-bucket B [--s3-region R] [--s3-endpoint URL] [--s3-force-path-style] [--s3-root-directory P]] [--redirect]
 *        [--blob-cache DIR [--blob-cache-size 10g]]
 *   node dist/src/registry/main.js gc --root DIR [--dry-run] [--min-age SECONDS] [--delete-untagged] [--storage s3 …]
 *
 * `serve` is the default command. It prints "listening on <url>" once ready and stops on SIGINT/SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Socket } from 'node:net';
import { Command } from 'commander';
import { setFlagsFromString } from 'node:v8';
import { resolve as resolvePath } from 'node:path';
import { parseBytes } from '../lib/units.js';
import { startRegistryServer, type RegistryServerOptions } from './server.js';
import { collectGarbage, type GcResult } from './storage.js';
import type { TokenOptions } from './auth.js';
import type { StorageDriver } from './driver.js';
import { S3Driver, type S3Options } from './s3-driver.js';

const SECRET_ENV = 'WHARF_REGISTRY_TOKEN_SECRET';

/** Where the registry keeps its data: `--storage filesystem --root DIR` (default) or `--storage s3 --s3-…`. */
export interface StorageFlags {
  root: string;
  storage?: string;
  s3Bucket?: string;
  s3Region?: string;
  s3Endpoint?: string;
  s3ForcePathStyle?: boolean;
  s3RootDirectory?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  s3ChunkSize?: string;
}

export interface ServeFlags extends StorageFlags {
  addr: string;
  redirect?: boolean;
  blobCache?: string;
  blobCacheSize?: string;
  htpasswd?: string;
  realm?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenAuth?: boolean;
  tokenRealm?: string;
  tokenService?: string;
  tokenIssuer?: string;
  tokenSecretFile?: string;
  tokenPublicKey?: string;
  log?: boolean;
}

/**
 * The storage driver the flags name, null for the filesystem (`root`). The s3 parameters are distribution's s3
 * driver's, from flags or from distribution's environment variables (REGISTRY_STORAGE_S3_BUCKET, _REGION,
 * _REGIONENDPOINT, _FORCEPATHSTYLE, _ROOTDIRECTORY, _ACCESSKEY, _SECRETKEY, _CHUNKSIZE); without an access key
 * the AWS SDK's chain finds credentials (AWS_ACCESS_KEY_ID…, the shared credentials/config files).
 */
export function storageDriver(f: StorageFlags): StorageDriver | null {
  const env = (k: string) => process.env[`REGISTRY_STORAGE_S3_${k}`] || undefined;
  const kind = f.storage ?? process.env.REGISTRY_STORAGE ?? 'filesystem';
  if (kind === 'filesystem') return null;
  if (kind !== 's3') throw new Error(`unknown --storage ${JSON.stringify(kind)} (filesystem or s3)`);
  const bucket = f.s3Bucket ?? env('BUCKET');
  if (!bucket) throw new Error('--storage s3 needs --s3-bucket (or REGISTRY_STORAGE_S3_BUCKET)');
  const o: S3Options = { bucket };
  const region = f.s3Region ?? env('REGION');
  const endpoint = f.s3Endpoint ?? env('REGIONENDPOINT');
  const root = f.s3RootDirectory ?? env('ROOTDIRECTORY');
  const ak = f.s3AccessKey ?? env('ACCESSKEY');
  const sk = f.s3SecretKey ?? env('SECRETKEY');
  const chunk = f.s3ChunkSize ?? env('CHUNKSIZE');
  if (region) o.region = region;
  if (endpoint) o.endpoint = endpoint;
  if (f.s3ForcePathStyle || env('FORCEPATHSTYLE') === 'true') o.forcePathStyle = true;
  if (root) o.rootDirectory = root;
  if ((ak && !sk) || (!ak && sk)) throw new Error('--s3-access-key and --s3-secret-key go together');
  if (ak && sk) { o.accessKey = ak; o.secretKey = sk; }
  if (chunk) {
    const n = Number(chunk);
    if (!Number.isInteger(n) || n < 5 * 1024 * 1024) throw new Error(`invalid --s3-chunk-size ${chunk} (bytes, at least 5 MiB)`);
    o.chunkSize = n;
  }
  return new S3Driver(o);
}

/** Turns parsed flags into server options (reads the token key files). */
export async function serveOptions(f: ServeFlags): Promise<RegistryServerOptions> {
  if ((f.tlsCert && !f.tlsKey) || (!f.tlsCert && f.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  const driver = storageDriver(f);
  const opts: RegistryServerOptions = driver ? { driver, addr: f.addr } : { root: f.root, addr: f.addr };
  if (f.redirect) opts.redirect = true;
  if (f.blobCacheSize && !f.blobCache) throw new Error('--blob-cache-size needs --blob-cache');
  if (f.blobCache) {
    let maxBytes = 10 * 1024 ** 3;
    if (f.blobCacheSize) {
      try {
        maxBytes = parseBytes(f.blobCacheSize);
      } catch {
        maxBytes = NaN;
      }
      if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new Error(`invalid --blob-cache-size ${JSON.stringify(f.blobCacheSize)} (e.g. 10g)`);
    }
    opts.blobCache = { dir: resolvePath(f.blobCache), maxBytes };
  }
  if (f.htpasswd) opts.htpasswd = f.htpasswd;
  if (f.realm) opts.realm = f.realm;
  if (f.tlsCert && f.tlsKey) { opts.tlsCert = f.tlsCert; opts.tlsKey = f.tlsKey; }
  if (f.tokenAuth || f.tokenRealm || f.tokenPublicKey || f.tokenSecretFile) {
    const t: TokenOptions = {};
    if (f.tokenRealm) t.realm = f.tokenRealm;
    if (f.tokenService) t.service = f.tokenService;
    if (f.tokenIssuer) t.issuer = f.tokenIssuer;
    if (f.tokenSecretFile) t.secret = Buffer.from((await readFile(f.tokenSecretFile, 'utf8')).trim());
    // Workers must share one secret: the primary makes it and hands it down in the environment.
    else if (process.env[SECRET_ENV]) t.secret = Buffer.from(process.env[SECRET_ENV]!, 'hex');
    if (f.tokenPublicKey) t.publicKeyPem = await readFile(f.tokenPublicKey, 'utf8');
    opts.token = t;
  }
  if (f.log) opts.log = (line) => process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${line}\n`);
  return opts;
}

export interface ServeHandle {
  url: string;
  /** The address as bound (see RegistryServer.listenUrl) and the operator's warning, if any. */
  listenUrl: string;
  warning?: string;
  /** Stops the server (all workers). */
  close(): Promise<void>;
}

const WORKER_ENV = 'WHARF_REGISTRY_WORKER_FLAGS';

/**
 * `wharf registry serve`: starts the server from CLI flags and resolves once it listens. With more than one
 * worker (default: the number of CPUs, at most 4) this process becomes a cluster primary that forks workers
 * running this module (whatever program called it), restarts a worker that dies, and forwards close().
 */
export async function serveRegistry(f: ServeFlags & { workers?: string | number }): Promise<ServeHandle> {
  const workers = f.workers !== undefined ? Number(f.workers) : Math.min(4, availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`invalid --workers ${f.workers}`);
  if (workers === 1) {
    const srv = await startRegistryServer(await serveOptions(f));
    return { url: srv.url, listenUrl: srv.listenUrl, ...(srv.warning ? { warning: srv.warning } : {}), close: () => srv.close() };
  }
  return servePrimary(workers, f);
}

/** `wharf registry gc`: prints what it deleted (or would delete) and a summary line. */
export async function gcRegistry(f: StorageFlags & { dryRun?: boolean; minAge?: string | number; deleteUntagged?: boolean }, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<GcResult> {
  const driver = storageDriver(f);
  // With replicas (s3) pushes may run during GC: a grace period of an hour unless told otherwise.
  const minAge = Number(f.minAge ?? (driver ? 3600 : 0));
  if (!Number.isFinite(minAge) || minAge < 0) throw new Error(`invalid --min-age ${f.minAge}`);
  let r: GcResult;
  try {
    await driver?.check?.();
    r = await collectGarbage(driver ?? f.root, { dryRun: Boolean(f.dryRun), minAgeMs: minAge * 1000, deleteUntagged: Boolean(f.deleteUntagged) });
  } finally {
    await driver?.close();
  }
  const verb = f.dryRun ? 'would delete' : 'deleted';
  for (const m of r.untagged) out(`${verb} manifest ${m}\n`);
  for (const d of r.deleted) out(`${verb} ${d}\n`);
  out(`${r.marked} blobs marked, ${r.deleted.length} blobs ${f.dryRun ? 'eligible for deletion' : 'deleted'}, ${r.freedBytes} bytes${r.kept ? `, ${r.kept} unreferenced kept (grace period)` : ''}${r.swept ? `, ${r.swept} incomplete uploads aborted` : ''}\n`);
  return r;
}

/** The `registry` command tree (serve, gc) for commander-based front ends and this module's own main. */
export function registryCommand(): Command {
  const cmd = new Command('wharf registry').description('Run a registry server (OCI distribution spec)');
  const serve = cmd.command('serve', { isDefault: true })
    .description('Serve the registry API')
    .option('--addr <host:port>', 'address to listen on', '127.0.0.1:5000')
    .option('--root <dir>', 'storage root directory', '/var/lib/wharf-registry')
    .option('--redirect', 'answer blob GETs with a redirect to a presigned URL of the store (s3)')
    .option('--blob-cache <dir>', 'keep a local copy of the blobs pushed and served through this process, in front of the store (s3)')
    .option('--blob-cache-size <size>', 'bound of the blob cache, least recently used blobs go first (default 10g)')
    .option('--htpasswd <file>', 'htpasswd file (bcrypt) for basic auth')
    .option('--realm <realm>', 'basic auth realm', 'wharf-registry')
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS key (PEM)')
    .option('--token-auth', 'bearer token auth; the server issues tokens at /auth/token (users from --htpasswd)')
    .option('--token-realm <url>', 'token server URL announced to clients')
    .option('--token-service <name>', 'token service (audience)')
    .option('--token-issuer <name>', 'token issuer')
    .option('--token-secret-file <file>', 'HMAC secret for HS256 tokens')
    .option('--token-public-key <file>', "external token server's public key or certificate (PEM)")
    .option('--log', 'access log on stderr')
    .option('--workers <n>', 'server processes sharing the port and the storage (default: number of CPUs, at most 4)');
  storageOptions(serve);
  serve
    .action(async (f: ServeFlags & { workers?: string }) => {
      const h = await serveRegistry(f);
      if (h.warning) process.stderr.write(`${h.warning}\n`);
      process.stdout.write(`listening on ${h.listenUrl}\n`);
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        // workers that do not stop within close()'s grace are killed by it; never linger past that
        setTimeout(() => process.exit(0), 7000).unref();
        void h.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      watchParent(stop);
    });
  const gc = cmd.command('gc')
    .description('Delete blobs no manifest references')
    .option('--root <dir>', 'storage root directory', '/var/lib/wharf-registry')
    .option('--dry-run', 'only print what would be deleted')
    .option('--min-age <seconds>', 'grace period: keep blobs younger than this, or linked by a push within it (default 0; 3600 with s3)')
    .option('--delete-untagged', 'also delete manifests no tag reaches')
    .action(async (f: StorageFlags & { dryRun?: boolean; minAge?: string; deleteUntagged?: boolean }) => {
      await gcRegistry(f);
    });
  storageOptions(gc);
  return cmd;
}

/** The storage flags serve and gc share (distribution's s3 driver parameters). */
function storageOptions(c: Command): void {
  c.option('--storage <driver>', 'storage driver: filesystem (--root) or s3')
    .option('--s3-bucket <name>', 's3: bucket')
    .option('--s3-region <region>', 's3: region (default AWS_REGION, else us-east-1)')
    .option('--s3-endpoint <url>', 's3: endpoint of an S3-compatible store (regionendpoint)')
    .option('--s3-force-path-style', 's3: path-style addressing')
    .option('--s3-root-directory <prefix>', 's3: key prefix in the bucket')
    .option('--s3-access-key <key>', 's3: access key (default: the AWS SDK chain: environment, shared credentials file)')
    .option('--s3-secret-key <key>', 's3: secret key')
    .option('--s3-chunk-size <bytes>', 's3: multipart part size (default 8 MiB)');
}

const PARENT_FD_ENV = 'WHARF_REGISTRY_PARENT_FD';

/**
 * Started by `wharf registry serve` (the CLI front process), the server gets the read end of a pipe whose other end
 * only the front holds (fd named by WHARF_REGISTRY_PARENT_FD): the pipe ends when the front dies, however it dies
 * (SIGKILL included), and the server stops with it, so no orphan keeps the port. Cluster workers need no such pipe:
 * a worker exits when its IPC channel to the primary closes. Run directly (no variable), the server is on its own.
 */
function watchParent(stop: () => void): void {
  const fd = Number(process.env[PARENT_FD_ENV]);
  delete process.env[PARENT_FD_ENV]; // not for the workers
  if (!Number.isInteger(fd) || fd < 3) return;
  let s: Socket;
  try {
    s = new Socket({ fd, readable: true, writable: false });
  } catch {
    return;
  }
  s.on('data', () => {});
  s.once('end', stop);
  s.once('close', stop);
  s.once('error', stop);
  s.unref();
}

/**
 * Several processes serve one root: upload sessions are on disk and every write is an atomic rename, so any
 * worker can take any request. The primary only forks them (Node's cluster shares the listening socket),
 * restarts one that dies, and stops them on close().
 */
function servePrimary(n: number, flags: ServeFlags): Promise<ServeHandle> {
  if (!process.env[SECRET_ENV]) process.env[SECRET_ENV] = randomBytes(32).toString('hex');
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: [] });
  let stopping = false;
  let url: string | undefined;
  return new Promise<ServeHandle>((resolve, reject) => {
    const fork = () => {
      const w = cluster.fork({ [WORKER_ENV]: JSON.stringify(flags) });
      w.on('message', (m: { listening?: string; listenUrl?: string; warning?: string }) => {
        if (m.listening && url === undefined) {
          url = m.listening;
          resolve({ url, listenUrl: m.listenUrl ?? url, ...(m.warning ? { warning: m.warning } : {}), close });
        }
      });
    };
    const close = () => new Promise<void>((done) => {
      stopping = true;
      const live = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
      if (live.length === 0) return done();
      let left = live.length;
      for (const w of live) {
        w!.once('exit', () => { if (--left === 0) done(); });
        w!.process.kill('SIGTERM');
      }
      setTimeout(() => { for (const w of live) if (!w!.isDead()) w!.process.kill('SIGKILL'); }, 5000).unref();
    });
    cluster.on('exit', (w, code, signal) => {
      if (stopping) return;
      if (url === undefined) {
        stopping = true;
        for (const o of Object.values(cluster.workers ?? {})) o?.process.kill('SIGTERM');
        reject(new Error(`registry worker exited (${code ?? signal}) before listening`));
        return;
      }
      process.stderr.write(`wharf registry: worker ${w.process.pid} exited (${code ?? signal}); restarting it\n`);
      fork();
    });
    for (let i = 0; i < n; i++) fork();
  });
}

/** A cluster worker: serves with the primary's flags, says when it listens, stops on SIGTERM. */
async function runWorker(flags: ServeFlags): Promise<void> {
  const srv = await startRegistryServer(await serveOptions(flags));
  process.send!({ listening: srv.url, listenUrl: srv.listenUrl, ...(srv.warning ? { warning: srv.warning } : {}) });
  const stop = () => { void srv.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/**
 * The server process's garbage collection: every socket read of a body it relays (a push to the store, a blob
 * proxied from it) is a fresh ArrayBuffer, and V8 started a full mark-compact for each ~15 MB of them by its
 * separate external-memory limit. Counted in the heap's global limit instead, a 200 MB relay made half the
 * mark-compacts and cost about half the CPU (bench/README.md "registry on S3").
 */
function tuneGc(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}

if (cluster.isWorker && process.env[WORKER_ENV]) {
  tuneGc();
  runWorker(JSON.parse(process.env[WORKER_ENV]!) as ServeFlags).catch((e: unknown) => {
    process.stderr.write(`wharf registry: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  });
} else if (isMain()) {
  tuneGc();
  registryCommand().parseAsync(process.argv).catch((e: unknown) => {
    process.stderr.write(`wharf registry: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  });
}
