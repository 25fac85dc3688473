/**
 * End to end: the modes of wharfd's data root are dockerd's, so an unprivileged host user (`nobody`, through
 * runuser) can neither list nor traverse into layers and container filesystems: a static setuid-root program
 * shipped in an image layer cannot be executed by its host path, neither in the layer's diff/ nor in the merged
 * directory of a running container (the CVE-2021-41091 class). The same probe on a 0755 control directory
 * succeeds (and prints euid=0), so the test probes our modes and nothing else: every directory leading to the
 * data root is made traversable for the test. A data root with the old, wider modes is repaired at start.
 * The API socket is 0660, container records 0600, and registry credentials never reach the daemon's log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { REGISTRY_PASSWORD, REGISTRY_USER, startRegistry, type Registry } from '../support/registry.js';
import { buildOciLayout, busyboxSpec, pushLayout } from '../support/oci-images.js';
import { run, show, type RunResult } from '../support/cli.js';

const execFileP = promisify(execFile);

let reg: Registry;
let d: Daemon;
let work: string;
let control: string;
let image: string;
/** Directories whose mode the test widened (o+x) to reach the data root, with their original mode. */
const widened: { path: string; mode: number }[] = [];

const asNobody = (args: string[]): Promise<RunResult> => run('runuser', ['-u', 'nobody', '--', ...args]);
const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;
const octal = (m: number): string => m.toString(8).padStart(4, '0');

/** The driver directory of the data root (overlay or vfs/dir) and the layer directories in it. */
async function driverRoot(): Promise<{ top: string; root: string; driver: 'overlay' | 'vfs' }> {
  const overlay = join(d.dataRoot, 'overlay');
  if (await stat(overlay).then(() => true, () => false)) return { top: overlay, root: overlay, driver: 'overlay' };
  return { top: join(d.dataRoot, 'vfs'), root: join(d.dataRoot, 'vfs', 'dir'), driver: 'vfs' };
}

/** Host paths of the setuid program inside the image's layers (diff/ for overlay, the layer copy for vfs). */
async function setuidInLayers(): Promise<string[]> {
  const { root, driver } = await driverRoot();
  const out: string[] = [];
  for (const name of await readdir(root)) {
    const p = driver === 'overlay' ? join(root, name, 'diff', 'bin', 'seuid') : join(root, name, 'bin', 'seuid');
    if (await stat(p).then(() => true, () => false)) out.push(p);
  }
  return out;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-perm-'));
  // a static program printing its real and effective uid: setuid root, it prints euid=0 wherever it may run
  await writeFile(join(work, 'seuid.c'), '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("uid=%d euid=%d\\n",(int)getuid(),(int)geteuid());return 0;}\n');
  await execFileP('gcc', ['-static', '-O2', '-o', join(work, 'seuid'), join(work, 'seuid.c')]);
  const seuid = await readFile(join(work, 'seuid'));

  [reg, d] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startDaemon({ extraArgs: ['--debug'] })]);
  const base = await busyboxSpec();
  await buildOciLayout(join(work, 'img'), {
    layers: [base.layers[0]!, { files: [{ path: 'bin/seuid', content: seuid, mode: 0o4755 }], createdBy: 'COPY seuid /bin/seuid' }],
    config: { Cmd: ['sh'] },
  });
  image = `${reg.host}/test/setuid:1`;
  await pushLayout(join(work, 'img'), reg.host, 'test/setuid:1', { creds: `${REGISTRY_USER}:${REGISTRY_PASSWORD}` });

  // every directory above the data root must be traversable by nobody, or the probes prove nothing
  for (let p = dirname(d.dataRoot); ; p = dirname(p)) {
    const m = await modeOf(p);
    if ((m & 0o001) === 0) {
      widened.push({ path: p, mode: m });
      await chmod(p, m | 0o001);
    }
    if (p === '/') break;
  }
  // the control: the same setuid program in a 0755 directory beside the data root
  control = join(d.dir, 'control');
  await mkdir(control, { mode: 0o755 });
  await chmod(control, 0o755);
  await copyFile(join(work, 'seuid'), join(control, 'seuid'));
  await chmod(join(control, 'seuid'), 0o4755);
});

after(async () => {
  await d?.stop();
  await reg?.stop();
  for (const w of widened.reverse()) await chmod(w.path, w.mode).catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
});

test('login, authenticated pull and push: the password never appears in the daemon log (--debug)', { timeout: 180_000 }, async () => {
  // a private client config: the login must not touch root's ~/.docker
  const env = { DOCKER_CONFIG: join(d.dir, 'docker-config') };
  const login = await d.wharf(['login', '-u', REGISTRY_USER, '--password-stdin', reg.host], { input: `${REGISTRY_PASSWORD}\n`, env });
  assert.equal(login.code, 0, show(login));
  const pull = await d.wharf(['pull', image], { env });
  assert.equal(pull.code, 0, show(pull));
  const tag = await d.wharf(['tag', image, `${reg.host}/test/setuid:copy`]);
  assert.equal(tag.code, 0, show(tag));
  const push = await d.wharf(['push', `${reg.host}/test/setuid:copy`], { env });
  assert.equal(push.code, 0, show(push));
  const log = d.log();
  assert.ok(log.length > 0, 'the daemon logged nothing: the check would prove nothing');
  assert.ok(!log.includes(REGISTRY_PASSWORD), 'the registry password is in the daemon log');
  assert.ok(!log.includes(Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')), 'the Basic credentials are in the daemon log');
});

test('the data root, its stores and state files have dockerd\'s modes; the socket is 0660', { timeout: 60_000 }, async () => {
  const { top, driver } = await driverRoot();
  const expect: [string, number][] = [
    [d.dataRoot, 0o711], [join(d.dataRoot, 'containers'), 0o710], [top, 0o710], [join(d.dataRoot, 'layers'), 0o700],
    [join(d.dataRoot, 'image'), 0o700], [join(d.dataRoot, 'volumes'), 0o701],
    [join(d.dataRoot, 'tmp'), 0o700], [d.execRoot, 0o700],
  ];
  if (driver === 'vfs') expect.push([join(d.dataRoot, 'vfs', 'dir'), 0o710]);
  else if (await stat(join(top, 'l')).then(() => true, () => false)) expect.push([join(top, 'l'), 0o700]);
  for (const [p, m] of expect) assert.equal(octal(await modeOf(p)), octal(m), p);
  assert.equal(await stat(join(d.dataRoot, 'content')).then(() => true, () => false), false, 'no content store any more');
  if (driver === 'overlay') {
    const layers = (await readdir(top)).filter((n) => n !== 'l');
    assert.ok(layers.length >= 2, `layers: ${layers.join(' ')}`);
    for (const n of layers) assert.equal(octal(await modeOf(join(top, n))), '0710', n);
  }
  const sock = await stat(d.sock);
  assert.equal(octal(sock.mode & 0o777), '0660');
  assert.equal(sock.uid, 0);
  const c = await d.wharf(['create', '--name', 'rec', image, 'true']);
  assert.equal(c.code, 0, show(c));
  const id = c.stdout.trim();
  assert.equal(octal(await modeOf(join(d.dataRoot, 'containers', id))), '0710');
  assert.equal(octal(await modeOf(join(d.dataRoot, 'containers', id, 'config.v2.json'))), '0600');
  const rmc = await d.wharf(['rm', 'rec']);
  assert.equal(rmc.code, 0, show(rmc));
});

test('as nobody: the data root cannot be listed, layers cannot be entered, the setuid program cannot run', { timeout: 120_000 }, async () => {
  // the control proves the probe: the same program, setuid root, in a 0755 directory on the same path
  const ok = await asNobody([join(control, 'seuid')]);
  assert.equal(ok.code, 0, show(ok));
  assert.match(ok.stdout, /uid=65534 euid=0/);
  const okList = await asNobody(['ls', control]);
  assert.equal(okList.code, 0, show(okList));

  const inLayers = await setuidInLayers();
  assert.equal(inLayers.length, 1, inLayers.join(' '));
  assert.equal(octal(await modeOf(inLayers[0]!)), '4755', 'the layer keeps the setuid bit (else the probe proves nothing)');
  const { top } = await driverRoot();
  for (const dir of [d.dataRoot, top, join(d.dataRoot, 'containers'), join(d.dataRoot, 'layers')]) {
    const ls = await asNobody(['ls', dir]);
    assert.notEqual(ls.code, 0, `nobody listed ${dir}: ${show(ls)}`);
    assert.match(ls.stderr, /Permission denied/, show(ls));
  }
  const st = await asNobody(['stat', inLayers[0]!]);
  assert.notEqual(st.code, 0, show(st));
  assert.match(st.stderr, /Permission denied/, show(st));
  const ex = await asNobody([inLayers[0]!]);
  assert.notEqual(ex.code, 0, show(ex));
  assert.doesNotMatch(ex.stdout, /euid=0/);
  assert.match(ex.stderr, /Permission denied/, show(ex));

  // the merged directory of a running container
  const r = await d.wharf(['run', '-d', '--name', 'runner', image, 'sleep', '300']);
  assert.equal(r.code, 0, show(r));
  try {
    // the container's RW layer is named by its ID: overlay/<id>/merged, or vfs/dir/<id>
    const id = r.stdout.trim();
    const { root, driver } = await driverRoot();
    const merged = driver === 'overlay' ? join(root, id, 'merged') : join(root, id);
    const inMerged = join(merged, 'bin', 'seuid');
    assert.equal(octal(await modeOf(inMerged)), '4755', `${inMerged} (as root)`);
    const exm = await asNobody([inMerged]);
    assert.notEqual(exm.code, 0, show(exm));
    assert.doesNotMatch(exm.stdout, /euid=0/);
    assert.match(exm.stderr, /Permission denied/, show(exm));
  } finally {
    await d.wharf(['rm', '-f', 'runner']);
  }
});

test('a data root with wider modes (an older wharfd\'s) is repaired at start', { timeout: 120_000 }, async () => {
  const { top, driver } = await driverRoot();
  const c = await d.wharf(['create', '--name', 'old', image, 'true']);
  assert.equal(c.code, 0, show(c));
  const id = c.stdout.trim();
  const layer = driver === 'overlay' ? (await readdir(top)).find((n) => n !== 'l')! : '';
  await d.kill('SIGTERM');
  // what the data root looked like before: 0755 everywhere below a 0711 root
  for (const p of [d.dataRoot, top, join(d.dataRoot, 'containers'), join(d.dataRoot, 'layers'), join(d.dataRoot, 'containers', id)]) await chmod(p, 0o755);
  await chmod(join(d.dataRoot, 'containers', id, 'config.v2.json'), 0o644);
  if (layer) await chmod(join(top, layer), 0o755);
  const before = await asNobody(['ls', top]);
  assert.equal(before.code, 0, `the widened data root must be listable by nobody before the repair: ${show(before)}`);
  await d.restart();
  assert.equal(octal(await modeOf(d.dataRoot)), '0711');
  assert.equal(octal(await modeOf(top)), '0710');
  assert.equal(octal(await modeOf(join(d.dataRoot, 'containers'))), '0710');
  assert.equal(octal(await modeOf(join(d.dataRoot, 'layers'))), '0700');
  assert.equal(octal(await modeOf(join(d.dataRoot, 'containers', id))), '0710');
  assert.equal(octal(await modeOf(join(d.dataRoot, 'containers', id, 'config.v2.json'))), '0600');
  if (layer) assert.equal(octal(await modeOf(join(top, layer))), '0710');
  const after = await asNobody(['ls', top]);
  assert.notEqual(after.code, 0, show(after));
  const ex = await asNobody([(await setuidInLayers())[0]!]);
  assert.notEqual(ex.code, 0, show(ex));
  assert.match(ex.stderr, /Permission denied/, show(ex));
  await d.wharf(['rm', 'old']);
});
