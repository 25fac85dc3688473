/**
 * busybox without Docker Hub: a rootfs made of the host's static busybox (Debian's busybox-static), one symlink
 * per applet in /bin (as the busybox image in the reference transcript has: bin/[ -> busybox), the users and
 * groups of the official image, and the usual empty directories. Deterministic: every timestamp is the
 * busybox binary's mtime, entries are sorted, owners numeric, so two bootstraps give the same layer and image.
 */
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import type { Digest } from '../../lib/digest.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { entry, imageFromTar, type BootstrapDeps } from './common.js';
import { rfc3339 } from '../../lib/go.js';
import { execChecked } from '../../lib/exec.js';

const run = execChecked;

export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/lib/initramfs-tools/bin/busybox'];

export const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'sync:x:4:100:sync:/bin:/bin/sync',
  'mail:x:8:8:mail:/var/spool/mail:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'operator:x:37:37:Operator:/var:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
].join('\n') + '\n';

export const GROUP = [
  'root:x:0:', 'daemon:x:1:', 'bin:x:2:', 'sys:x:3:', 'adm:x:4:', 'tty:x:5:', 'disk:x:6:', 'lp:x:7:', 'mail:x:8:',
  'kmem:x:9:', 'wheel:x:10:root', 'cdrom:x:11:', 'dialout:x:18:', 'floppy:x:19:', 'video:x:28:', 'audio:x:29:',
  'tape:x:32:', 'www-data:x:33:', 'operator:x:37:', 'utmp:x:43:', 'plugdev:x:46:', 'staff:x:50:', 'lock:x:54:',
  'netdev:x:82:', 'users:x:100:', 'nogroup:x:65534:',
].join('\n') + '\n';

export const SHADOW = [
  'root:*::::::', 'daemon:*::::::', 'bin:*::::::', 'sys:*::::::', 'sync:*::::::', 'mail:*::::::',
  'www-data:*::::::', 'operator:*::::::', 'nobody:*::::::',
].join('\n') + '\n';

/** Directories of the rootfs, with modes. */
const DIRS: [string, number][] = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o755], ['root', 0o700],
  ['sys', 0o755], ['tmp', 0o1777], ['usr', 0o755], ['usr/sbin', 0o755], ['var', 0o755], ['var/spool', 0o755],
  ['var/spool/mail', 0o755], ['var/www', 0o755],
];

/** Whether an ELF file has a PT_INTERP program header (is dynamically linked). */
export function isDynamicElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new InvalidParameterError('not an ELF binary');
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const phoff = is64 ? Number(le ? buf.readBigUInt64LE(32) : buf.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) break;
    if (u32(off) === 3) return true; // PT_INTERP
  }
  return false;
}

/** Finds the host's static busybox. */
export async function findBusybox(candidates = BUSYBOX_CANDIDATES): Promise<{ path: string; binary: Buffer; mtime: Date }> {
  for (const path of candidates) {
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      const binary = await readFile(path);
      if (isDynamicElf(binary)) continue;
      return { path, binary, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000) };
    } catch {
      /* try the next */
    }
  }
  throw new NotFoundError('no static busybox found on this host (install the busybox-static package)');
}

/** The applet names of a busybox binary (`busybox --list-full`, basenames). */
export async function appletsOf(path: string): Promise<string[]> {
  const { stdout } = await run(path, ['--list-full'], { maxBuffer: 1 << 20 });
  const names = new Set<string>();
  for (const line of stdout.split('\n')) {
    const full = line.trim();
    if (!full || !full.includes('/')) continue; // "linuxrc" lives at the root; not wanted in an image
    const base = full.slice(full.lastIndexOf('/') + 1);
    if (base && base !== 'busybox') names.add(base);
  }
  return [...names].sort();
}

/** The busybox rootfs as a tar stream. */
export function busyboxTar(binary: Buffer, applets: string[], mtime: Date): Readable {
  const pack = tarStream.pack();
  // No user/group names: the layer store regenerates layer tars (push, save) without them, and the bytes must match.
  const base = { uid: 0, gid: 0, mtime };
  (async () => {
    const files = new Map<string, { data: Buffer; mode: number }>([
      ['bin/busybox', { data: binary, mode: 0o755 }],
      ['etc/group', { data: Buffer.from(GROUP), mode: 0o644 }],
      ['etc/passwd', { data: Buffer.from(PASSWD), mode: 0o644 }],
      ['etc/shadow', { data: Buffer.from(SHADOW), mode: 0o640 }],
    ]);
    const links = applets.map((a) => `bin/${a}`);
    const all = [...DIRS.map(([d]) => d), ...files.keys(), ...links].sort();
    const dirModes = new Map(DIRS);
    for (const name of all) {
      if (dirModes.has(name)) await entry(pack, { ...base, name: `${name}/`, type: 'directory', mode: dirModes.get(name)! });
      else if (files.has(name)) {
        const f = files.get(name)!;
        await entry(pack, { ...base, name, type: 'file', mode: f.mode, size: f.data.length }, f.data);
      } else await entry(pack, { ...base, name, type: 'symlink', mode: 0o777, linkname: 'busybox' });
    }
    pack.finalize();
  })().catch((e) => pack.destroy(e as Error));
  return Readable.from(pack);
}

/** Bootstraps busybox[:tag]. Returns the image ID. */
export async function bootstrapBusybox(deps: BootstrapDeps, ref: string, progress: ProgressSink): Promise<Digest> {
  const bb = await findBusybox();
  const applets = await appletsOf(bb.path);
  const version = (await run(bb.path, [], { maxBuffer: 1 << 20 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout.split('\n')[0] ?? '';
  progress({ status: `Bootstrapping ${ref} from ${bb.path}${version ? ` (${version.replace(/ multi-call binary\.?$/, '')})` : ''}` });
  progress({ status: `Packing busybox and ${applets.length} applet links` });
  return imageFromTar(deps, busyboxTar(bb.binary, applets, bb.mtime), { cmd: ['sh'], created: rfc3339(bb.mtime), ref }, progress);
}
