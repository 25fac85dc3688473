/**
 * A real, local Docker registry for tests and benchmarks.
 *
 *   const reg = await startRegistry();                 // or startRegistry({ auth: 'htpasswd' })
 *   reg.url   // "http://127.0.0.1:PORT"
 *   reg.host  // "127.0.0.1:PORT" (use in image references: `${reg.host}/library/busybox:latest`)
 *   reg.dir   // temp dir: config.yml, htpasswd, storage/ (blobs under storage/docker/registry/v2/blobs)
 *   await reg.stop();                                  // kills the process and removes `dir`
 *
 * Runs Debian's `docker-registry serve config.yml` (distribution 2.8) with filesystem storage in a temp dir,
 * listening on 127.0.0.1 at a free port, and resolves once `GET /v2/` answers (200, or 401 with auth).
 * With `auth: 'htpasswd'` the registry requires HTTP Basic credentials `REGISTRY_USER`/`REGISTRY_PASSWORD`
 * (exported below; the bcrypt file is made with `htpasswd -B` from apache2-utils).
 * Loopback registries are "insecure" for docker and wharf alike, so plain http works without configuration.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const REGISTRY_USER = 'wharf';
export const REGISTRY_PASSWORD = 'wharf-secret';

export interface Registry {
  url: string;
  host: string;
  dir: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: { auth?: 'htpasswd' } = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-registry-'));
  const storage = join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  let authBlock = '';
  if (opts.auth === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    await execFileP('htpasswd', ['-Bbc', file, REGISTRY_USER, REGISTRY_PASSWORD]);
    authBlock = `auth:\n  htpasswd:\n    realm: wharf-test\n    path: ${file}\n`;
  }
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const config = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      authBlock,
    ].join('\n');
    await writeFile(join(dir, 'config.yml'), config);
    const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(url, child, () => stderr);
      return {
        url, host: `127.0.0.1:${port}`, dir,
        async stop() {
          await killChild(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
      await killChild(child);
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastErr;
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer at ${url}/v2/: ${stderr()}`);
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL'); }, 3000).unref();
  });
}
