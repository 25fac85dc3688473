/**
 * A corpus of hostile layer tars, built by the tests themselves, and canaries to prove nothing outside was touched.
 *
 *   const out = await makeCanaries(join(tmp, 'outside'));   // files, a directory, a fifo, a hard-linked file
 *   const before = await snapshot(out);
 *   for (const c of hostileCorpus(out)) { const tar = await corpusTar(c); … feed it …; }
 *   assert.deepEqual(await snapshot(out), before);          // content, mode, owner, link count, no new names
 *
 * Each case says what a confined engine does with it: 'refused' (the extraction fails, naming `mention`), or
 * 'confined' (a legal layer whose tricks only rearrange its own tree: it may be accepted, and nothing outside
 * changes). `accepted` cases of the second kind carry a `check` of the extracted tree where that matters.
 */
import { lstat, mkdir, readdir, readFile, writeFile, link, chmod } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { buildTar, type TarEntry } from './tar.js';

export type Entry = TarEntry;

export interface HostileCase {
  id: string;
  entries: Entry[];
  expect: 'refused' | 'confined';
  /** For refused cases: a string the error names (the offending entry). */
  mention?: string;
  /** For confined cases: checks of the extracted layer directory (throw to fail). */
  check?: (layerDir: string) => Promise<void>;
}


/** Canary files outside any data root: a file, a directory with a file, a fifo, a file with two links. */
export async function makeCanaries(dir: string): Promise<string> {
  await mkdir(join(dir, 'canary-dir'), { recursive: true });
  await writeFile(join(dir, 'canary'), 'canary\n', { mode: 0o640 });
  await chmod(join(dir, 'canary'), 0o640);
  await writeFile(join(dir, 'canary-dir', 'inner'), 'inner\n');
  await chmod(join(dir, 'canary-dir'), 0o750);
  await writeFile(join(dir, 'linked'), 'linked\n');
  await link(join(dir, 'linked'), join(dir, 'linked-2'));
  execFileSync('mkfifo', ['-m', '0600', join(dir, 'canary-fifo')]);
  return dir;
}

/** Every name under `dir` (and `dir` itself) with its type, mode, owner, link count, size and content hash. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (p: string, rel: string) => {
    const st = await lstat(p);
    let sum = '';
    if (st.isFile()) sum = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16);
    out[rel || '.'] = `${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink} ${st.size} ${sum}`;
    if (st.isDirectory()) for (const n of (await readdir(p)).sort()) await walk(join(p, n), rel ? `${rel}/${n}` : n);
  };
  await walk(dir, '');
  return out;
}

async function must(cond: boolean, what: string): Promise<void> {
  if (!cond) throw new Error(`layer check failed: ${what}`);
}

async function kind(p: string): Promise<string> {
  const st = await lstat(p).catch(() => null);
  if (!st) return 'missing';
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo'
    : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
}

/**
 * The corpus. `outside` is the canary directory (absolute): symlinks and names aim at it.
 */
export function hostileCorpus(outside: string): HostileCase[] {
  const rel = '../'.repeat(40) + outside.slice(1);
  const D = (name: string, mode = 0o755): Entry => ({ name, type: 'directory', mode });
  const F = (name: string, content = 'x', mode = 0o644): Entry => ({ name, content, mode });
  const S = (name: string, linkname: string): Entry => ({ name, type: 'symlink', linkname });
  const H = (name: string, linkname: string): Entry => ({ name, type: 'link', linkname });
  const P = (name: string): Entry => ({ name, type: 'fifo', mode: 0o644 });
  const C = (name: string, major: number, minor: number): Entry => ({ name, type: 'character-device', devmajor: major, devminor: minor, mode: 0o666 });
  const deep = Array.from({ length: 300 }, () => 'a').join('/');
  const tooLong = Array.from({ length: 25 }, (_, i) => `${i}`.padEnd(200, 'x')).join('/');
  return [
    // deferred work (nodes, hard links to them) meeting a parent swapped for a symlink
    {
      id: 'deferred-link-to-fifo-then-parent-swapped', expect: 'confined',
      // x would become a hard link to the host's canary: d/canary is linked at the end, through d -> outside
      entries: [D('d/'), P('d/canary'), H('x', 'd/canary'), P('other-fifo'), S('d', outside)],
      check: async (l) => { await must(await kind(join(l, 'x')) === 'fifo', 'x is the fifo'); await must(await kind(join(l, 'd')) === 'symlink', 'd is a symlink'); },
    },
    {
      id: 'deferred-link-to-device-then-parent-swapped', expect: 'confined',
      entries: [D('d/'), C('d/inner', 1, 3), H('x', 'd/inner'), P('other-fifo'), S('d', outside + '/canary-dir')],
      check: async (l) => { await must(await kind(join(l, 'x')) === 'char', 'x is the device'); await must(await kind(join(l, 'other-fifo')) === 'fifo', 'other fifo'); },
    },
    {
      id: 'deferred-link-planted-then-both-parents-swapped', expect: 'confined',
      // at the end, link(d/payload, e/planted) would resolve to link(./payload, <outside>/planted): a host file
      entries: [D('d/'), P('d/payload'), D('e/'), H('e/planted', 'd/payload'), S('d', '.'), S('e', outside), F('payload', 'PAYLOAD\n', 0o4755)],
      check: async (l) => { await must(await kind(join(l, 'e')) === 'symlink', 'e is a symlink'); await must(await kind(join(l, 'planted')) === 'missing', 'nothing at /planted'); },
    },
    {
      id: 'link-to-file-planted-then-both-parents-swapped', expect: 'confined',
      entries: [D('d/'), F('d/payload', 'PAYLOAD\n', 0o4755), D('e/'), H('e/planted', 'd/payload'), S('d', '.'), S('e', outside)],
    },
    {
      id: 'deferred-whiteout-opaque-dirattrs-then-parent-swapped', expect: 'confined',
      entries: [D('d/', 0o777), { name: 'd/', type: 'directory', mode: 0o700, uid: 4242, gid: 4242 }, F('d/.wh.x', ''), F('d/.wh..wh..opq', ''), D('d/sub/', 0o777), S('d', outside)],
    },
    {
      id: 'deferred-link-then-target-replaced-by-file', expect: 'confined',
      entries: [P('p'), H('x', 'p'), F('p', 'new\n')],
      check: async (l) => { await must(await kind(join(l, 'x')) === 'fifo', 'x keeps the fifo'); await must(await kind(join(l, 'p')) === 'file', 'p is the new file'); },
    },
    // hard links that try to name something outside or through a symlink
    { id: 'hardlink-through-parent-symlink', expect: 'refused', mention: 'y', entries: [D('d/'), F('d/f'), H('x', 'd/f'), S('d', outside), H('y', 'd/canary')] },
    { id: 'hardlink-dotdot', expect: 'refused', mention: 'x', entries: [H('x', rel + '/canary')] },
    { id: 'hardlink-absolute', expect: 'refused', mention: 'x', entries: [H('x', outside + '/canary')] },
    { id: 'hardlink-via-inlayer-symlink', expect: 'refused', mention: 'x', entries: [S('s', outside), H('x', 's/canary')] },
    { id: 'hardlink-via-relative-symlink', expect: 'refused', mention: 'x', entries: [D('real/'), F('real/f'), S('s', 'real'), H('x', 's/f')] },
    { id: 'hardlink-to-escaping-symlink', expect: 'confined', entries: [S('s', outside + '/canary'), H('x', 's')] },
    // names
    { id: 'dotdot-name', expect: 'refused', mention: '../evil', entries: [F('../evil')] },
    { id: 'dotdot-inner-name', expect: 'refused', mention: 'a/../../evil', entries: [D('a/'), F('a/../../evil')] },
    {
      id: 'absolute-names', expect: 'confined', entries: [F('/abs-file'), F(outside + '/pwned')],
      check: async (l) => { await must(await kind(join(l, 'abs-file')) === 'file', '/abs-file inside'); await must(await kind(join(l, outside, 'pwned')) === 'file', 'absolute name kept inside'); },
    },
    // symlinks written through
    { id: 'absolute-symlink-write-through', expect: 'refused', mention: 'l/pwned', entries: [S('l', outside), F('l/pwned')] },
    { id: 'relative-symlink-write-through', expect: 'refused', mention: 'l/pwned', entries: [S('l', rel), F('l/pwned')] },
    { id: 'symlink-chain-write-through', expect: 'refused', mention: 'a/pwned', entries: [S('a', 'b'), S('b', outside), F('a/pwned')] },
    { id: 'dir-swapped-for-symlink-then-write', expect: 'refused', mention: 'd/g', entries: [D('d/'), F('d/f'), S('d', outside), F('d/g')] },
    { id: 'symlink-dir-then-mkdir-through', expect: 'refused', mention: 'l/sub/', entries: [S('l', outside), D('l/sub/')] },
    { id: 'symlink-then-node-through', expect: 'refused', mention: 'l/fifo', entries: [S('l', outside), P('l/fifo')] },
    { id: 'symlink-then-hardlink-through', expect: 'refused', mention: 'l/hl', entries: [F('f'), S('l', outside), H('l/hl', 'f')] },
    { id: 'symlink-then-symlink-through', expect: 'refused', mention: 'l/sl', entries: [S('l', outside), S('l/sl', '/etc/passwd')] },
    {
      id: 'symlink-replaced-by-dir-with-mode', expect: 'confined', entries: [S('l', outside), { name: 'l/', type: 'directory', mode: 0o777, uid: 4242 }],
      check: async (l) => { await must(await kind(join(l, 'l')) === 'dir', 'l became a directory'); },
    },
    { id: 'symlink-replaced-by-hardlink', expect: 'confined', entries: [F('f'), S('l', outside + '/canary'), H('l', 'f')] },
    { id: 'symlink-replaced-by-file', expect: 'confined', entries: [S('l', outside + '/canary'), F('l', 'overwrite\n', 0o777)] },
    // device nodes
    {
      id: 'device-nodes', expect: 'confined', entries: [D('dev/'), C('dev/mem', 1, 1), { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 }, P('dev/fifo')],
      check: async (l) => { await must(await kind(join(l, 'dev/mem')) === 'char', 'char device inside'); await must(await kind(join(l, 'dev/sda')) === 'block', 'block device inside'); },
    },
    // whiteouts
    { id: 'whiteout-dotdot', expect: 'refused', mention: '.wh...', entries: [F('.wh...', '')] },
    { id: 'whiteout-inner-dotdot', expect: 'refused', mention: 'a/.wh...', entries: [D('a/'), F('a/.wh...', '')] },
    { id: 'whiteout-empty-name', expect: 'refused', mention: '.wh.', entries: [F('.wh.', '')] },
    { id: 'whiteout-escaping-parent', expect: 'refused', mention: '../.wh.canary', entries: [F('../.wh.canary', '')] },
    { id: 'whiteout-through-symlink', expect: 'refused', mention: 'l/.wh.canary', entries: [S('l', outside), F('l/.wh.canary', '')] },
    // opaque markers in odd places
    { id: 'opaque-through-symlink', expect: 'refused', mention: 'l/.wh..wh..opq', entries: [S('l', outside), F('l/.wh..wh..opq', '')] },
    { id: 'opaque-under-file', expect: 'refused', mention: 'f/.wh..wh..opq', entries: [F('f'), F('f/.wh..wh..opq', '')] },
    { id: 'opaque-at-root', expect: 'confined', entries: [F('.wh..wh..opq', ''), F('ok')] },
    // long names
    { id: 'deep-300-components', expect: 'confined', entries: [F(`${deep}/leaf`, 'deep\n')] },
    { id: 'path-beyond-PATH_MAX', expect: 'refused', entries: [F(`${tooLong}/leaf`, 'long\n')] },
    { id: 'component-beyond-NAME_MAX', expect: 'refused', entries: [F('n'.repeat(300), 'x')] },
    // extended attributes
    {
      id: 'xattrs', expect: 'confined',
      entries: [
        { name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.test': 'hello', 'SCHILY.xattr.security.capability': '\u0001\u0000\u0000\u0002', 'SCHILY.xattr.trusted.wharf-test': 'yes' } },
        { name: 'o/', type: 'directory', mode: 0o755, pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
        { name: 'l', type: 'symlink', linkname: outside, pax: { 'SCHILY.xattr.user.pwn': 'pwned' } },
      ],
      check: async (l) => {
        const get = (p: string) => { try { return execFileSync('getfattr', ['-h', '--absolute-names', '-d', '-m', '-', p], { encoding: 'utf8' }); } catch { return ''; } };
        await must(get(join(l, 'f')).includes('user.test="hello"'), 'user.* kept');
        await must(!get(join(l, 'o')).includes('trusted.overlay'), 'trusted.overlay.* dropped');
      },
    },
  ];
}

/* ------------------------------------------------------------------ images around raw layer tars */

export interface RawImage {
  config: Buffer;
  configDigest: string;
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
}

function sha(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** An image config over `layers` (uncompressed tars) as they are, whatever they hold. */
export function rawImage(layers: Buffer[], marker = 'hostile'): RawImage {
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'], Labels: { marker } },
    rootfs: { type: 'layers', diff_ids: layers.map(sha) },
    history: layers.map(() => ({ created: '2020-09-13T12:26:40Z', created_by: marker })),
  }));
  return { config, configDigest: sha(config), layers };
}

/** A docker-archive tar (`docker load` input): manifest.json, the config, one `<n>/layer.tar` per layer. */
export async function dockerArchive(img: RawImage, repoTag: string): Promise<Buffer> {
  const cfgName = `${img.configDigest.slice(7)}.json`;
  const manifest = [{ Config: cfgName, RepoTags: [repoTag], Layers: img.layers.map((_, i) => `${i}/layer.tar`) }];
  return buildTar([
    { name: cfgName, content: img.config },
    ...img.layers.map((l, i) => ({ name: `${i}/layer.tar`, content: l })),
    { name: 'manifest.json', content: JSON.stringify(manifest) },
  ]);
}

/**
 * Pushes an image to a docker-registry as it is, layers gzip-compressed (or as given), with an OCI manifest:
 * monolithic uploads (POST, then PUT ?digest=), then the manifest. Returns the manifest digest.
 */
export async function pushRaw(registryUrl: string, repo: string, tag: string, img: RawImage, blobs?: Buffer[]): Promise<string> {
  const { gzipSync } = await import('node:zlib');
  const layerBlobs = blobs ?? img.layers.map((l) => gzipSync(l, { level: 1 }));
  const put = async (b: Buffer) => {
    const digest = sha(b);
    const head = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    if (head.status === 200) return digest;
    const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
    const loc = new URL(start.headers.get('location')!, registryUrl);
    loc.searchParams.set('digest', digest);
    const done = await fetch(loc, { method: 'PUT', body: b, headers: { 'Content-Type': 'application/octet-stream' } });
    await done.arrayBuffer();
    if (done.status !== 201) throw new Error(`upload of ${digest}: ${done.status}`);
    return digest;
  };
  await put(img.config);
  const layers = [];
  for (const b of layerBlobs) layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(b), size: b.length });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.configDigest, size: img.config.length },
    layers,
  }));
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest put: ${res.status}`);
  return sha(manifest);
}
