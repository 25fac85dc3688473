/**
 * The chrooted tree worker: `node child.js`, started by `worker.ts` ahead of need. It loads all its code and
 * binds its libc functions first, then waits for one JSON request line on stdin, mounts the request's mounts
 * (volumes, binds) over the root in a private mount namespace of its own when there are any (`view.ts`),
 * chroots into the request's root, chdirs to "/", drops every capability but file ownership/permission overrides (no CAP_SYS_CHROOT,
 * CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE…), sets no_new_privs, and only then does the work: tar or JSON
 * on stdout (or a tar read from the rest of stdin), control messages as JSON lines on fd 3. One request per
 * process. After the chroot nothing is imported, required or dlopened: the root may be a hostile container's.
 */
import { writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, chroot, dropCapabilities, growPipe, libc } from './native.js';
import { exportRoot, extractTar, packPath, type Request } from './ops.js';
import { mountView, poolStarted } from './view.js';

const CTL = 3;

function send(msg: Record<string, unknown>): void {
  const b = Buffer.from(JSON.stringify(msg) + '\n');
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(CTL, b, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

function fail(e: unknown): never {
  const err = e as Error & { statusCode?: number; code?: string };
  const kind = err.statusCode === 404 || err.code === 'ENOENT' ? 'notfound' : err.statusCode === 400 ? 'invalid' : err.statusCode === 403 ? 'forbidden' : 'system';
  try { send({ error: { kind, message: err.message ?? String(e) } }); } catch { /* parent gone */ }
  process.exit(1);
}

/** Reads stdin up to the first newline; what follows is handed back as the body stream. */
function readRequest(): Promise<{ req: Request; body: PassThrough }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let body: PassThrough | null = null;
    process.stdin.on('data', (chunk: Buffer) => {
      if (body) {
        if (!body.write(chunk)) { process.stdin.pause(); body.once('drain', () => process.stdin.resume()); }
        return;
      }
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      body = new PassThrough({ highWaterMark: 1 << 20 });
      const rest = head.subarray(nl + 1);
      if (rest.length) body.write(rest);
      try {
        resolve({ req: JSON.parse(head.subarray(0, nl).toString()) as Request, body });
      } catch (e) {
        reject(e);
      }
    });
    process.stdin.on('end', () => {
      if (body) body.end(); else reject(new Error('no request'));
    });
    process.stdin.on('error', reject);
  });
}

function endStdout(): Promise<void> {
  return new Promise((resolve) => process.stdout.end(resolve));
}

async function main(): Promise<void> {
  libc(); // every libc function bound, koffi and libgcc_s loaded: nothing of that is looked up after the chroot
  growPipe(0);
  growPipe(1);
  const { req, body } = await readRequest();
  const mounts = (req.op === 'pack' || req.op === 'extract' || req.op === 'selftest') ? req.mounts ?? [] : [];
  // Nothing so far used libuv's thread pool (checked here, while /proc is still the host's): it starts with the
  // first asynchronous fs call after the confinement below, and its threads, made by this one, inherit its root,
  // mount namespace, capabilities and no_new_privs (all per-thread state: a pool started earlier would keep full
  // capabilities and, with mounts, the host's namespace and root).
  if (poolStarted()) throw new Error('the thread pool started before the confinement');
  // the container's view: its mounts over the root, in a mount namespace of this thread's own
  if (mounts.length) mountView(req.root, mounts);
  chroot(req.root);
  process.chdir('/');
  dropCapabilities([CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID]);
  switch (req.op) {
    case 'pack':
      await packPath(req.path, req.label, process.stdout, (stat, owner) => send({ stat, owner }));
      await endStdout();
      break;
    case 'export':
      send({ started: true });
      await exportRoot(process.stdout);
      await endStdout();
      break;
    case 'extract':
      await extractTar(body, req);
      break;
    case 'selftest': {
      // for the tests: what the worker sees once confined, and whether it could chroot again (it must not)
      let chrootAgain = 'allowed';
      try { chroot('/'); } catch (e) { chrootAgain = (e as NodeJS.ErrnoException).code ?? 'error'; }
      send({ entries: (await readdir('/')).sort(), chrootAgain });
      // the thread pool now runs (readdir above): the test looks at its threads' state while this one waits
      await new Promise((r) => setTimeout(r, 500));
      break;
    }
  }
  send({ done: true });
  process.exit(0);
}


main().catch(fail);
