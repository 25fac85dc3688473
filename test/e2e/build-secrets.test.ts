/**
 * Build secrets: `wharf build --secret id=…,src=file|env=VAR` and `RUN --mount=type=secret`. As the Dockerfile
 * reference says of BuildKit (docs.docker.com/reference/dockerfile/#run---mounttypesecret): the secret is a file
 * at /run/secrets/<id> (or `target`), or a variable (`env`), for that step only; mode 0400 unless `mode`; a
 * missing secret skips the mount unless `required`. The value is then searched for everywhere the build could
 * leave it: every layer and config of `docker save`, `docker history --no-trunc`, `docker inspect`, the build
 * output, wharfd's debug log and every file under the daemon's data root. It must be absent.
 * SSH: `RUN --mount=type=ssh` gets an agent socket and SSH_AUTH_SOCK naming it (Dockerfile reference, "RUN
 * --mount=type=ssh"); its connections reach, through the CLI's build session, a real ssh-agent the CLI was given
 * (also over TCP+TLS from a private mount namespace the daemon cannot see into) or the CLI's own agent over key
 * files (as buildx accepts them). The step runs the host's own OpenSSH tools (copied into an image with their
 * libraries): `ssh-add -L` lists the keys, `ssh-keygen -Y sign` signs through the agent, and the host's
 * `ssh-keygen -Y verify` accepts the signatures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { NODE, WHARF_CLI, run, show, type RunResult, ok } from '../support/cli.js';
import { freePort } from '../support/registry.js';
import { makeCerts } from '../support/tls.js';

/** WHARF_E2E_DAEMON=dockerd: dockerd 20.10's classic builder has none of this (BuildKit is the reference here). */
const reference = process.env.WHARF_E2E_DAEMON === 'dockerd';
const only = { skip: reference && 'BuildKit-era syntax: dockerd 20.10\'s classic builder refuses it' };
let d: Daemon;
let work: string;
/** The daemon's TCP+TLS address and the client's TLS flags. */
let tlsFlags: string[] = [];
before(async () => {
  if (reference) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-secrets-'));
  const certs = join(work, 'certs');
  await mkdir(certs);
  assert.ok(await makeCerts(certs), 'openssl made the TLS certificates');
  const port = await freePort();
  d = await startDaemon({
    extraArgs: ['--debug', '-H', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', join(certs, 'ca.pem'),
      '--tlscert', join(certs, 'cert.pem'), '--tlskey', join(certs, 'key.pem')],
  });
  tlsFlags = ['-H', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', join(certs, 'ca.pem'), '--tlscert', join(certs, 'client-cert.pem'),
    '--tlskey', join(certs, 'client-key.pem')];
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Whether `needle` occurs in any file under `dir` (binary-safe, every file). */
function foundUnder(dir: string, needle: string): string[] {
  try {
    return execFileSync('grep', ['-rlaF', '--', needle, dir], { maxBuffer: 1 << 26 }).toString().trim().split('\n').filter(Boolean);
  } catch (e) {
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
}

test('a secret from a file and one from the environment reach their steps and nothing else', only, async () => {
  const fileValue = `s3cr3t-file-${randomBytes(12).toString('hex')}`;
  const envValue = `s3cr3t-env-${randomBytes(12).toString('hex')}`;
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  const secretFile = join(work, 'token.txt');
  await writeFile(secretFile, fileValue);
  await writeFile(join(ctx, 'Dockerfile'), `# syntax=docker/dockerfile:1
FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sum && stat -c '%a %u' /run/secrets/tok > /tok.stat
RUN --mount=type=secret,id=api,env=API_KEY,target=/etc/api.key,mode=0440,uid=1000 echo "\${#API_KEY} $(stat -c '%a %u' /etc/api.key) $(wc -c < /etc/api.key)" > /api.info
RUN --mount=type=secret,id=absent ls /run/secrets/absent > /absent.txt 2>&1; echo done >> /absent.txt
RUN --mount=type=secret,id=api,env=ONLY_ENV echo "\${#ONLY_ENV} $(ls /run/secrets 2>/dev/null | wc -l)" > /envonly.txt
`);
  const env = { ...process.env, API_VALUE: envValue };
  const r = await d.wharf(['build', '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=api,env=API_VALUE', '-t', 'sec:1', ctx], { env });
  const out = ok(r);
  const cat = (f: string) => d.docker(['run', '--rm', 'sec:1', 'cat', f]).then(ok);
  assert.equal(await cat('/tok.sum'), `${createHash('sha256').update(fileValue).digest('hex')}\n`);
  assert.equal(await cat('/tok.stat'), '400 0\n');
  assert.equal(await cat('/api.info'), `${envValue.length} 440 1000 ${envValue.length}\n`);
  // env= alone: the variable, no file
  assert.equal(await cat('/envonly.txt'), `${envValue.length} 0\n`);
  // a secret not given: the mount is skipped (not required)
  assert.match(await cat('/absent.txt'), /No such file or directory\ndone\n/);
  // the files are not left in the image either
  // not even as empty mount points (BuildKit removes its mount stubs); /etc existed, so it stays
  const ls = ok(await d.docker(['run', '--rm', 'sec:1', 'sh', '-c', 'ls -d /run /run/secrets /run/secrets/tok /etc/api.key 2>&1; test -d /etc && echo etc']));
  assert.equal(ls.replace(/ls: /g, '').split('\n').filter((l) => !/No such file/.test(l)).join('\n'), 'etc\n');

  // the value is nowhere: layers and configs (save), history, inspect, build output, daemon log, data root
  const tar = join(work, 'sec.tar');
  ok(await d.docker(['save', '-o', tar, 'sec:1']));
  const x = join(work, 'sec-x');
  await mkdir(x);
  execFileSync('tar', ['-xf', tar, '-C', x]);
  for (const l of execFileSync('find', [x, '-name', '*.tar']).toString().trim().split('\n').filter(Boolean)) {
    const into = `${l}.d`;
    await mkdir(into);
    execFileSync('tar', ['-xf', l, '-C', into]);
  }
  const history = ok(await d.docker(['history', '--no-trunc', 'sec:1']));
  const inspect = ok(await d.docker(['inspect', 'sec:1']));
  assert.match(history, /--mount=type=secret,id=tok/); // the step is there, its value is not
  for (const v of [fileValue, envValue]) {
    assert.deepEqual(foundUnder(x, v), [], 'in the saved image');
    assert.ok(!history.includes(v) && !inspect.includes(v), 'in history or inspect');
    assert.ok(!out.includes(v) && !r.stderr.includes(v), 'in the build output');
    assert.ok(!d.log().includes(v), 'in the daemon log');
    assert.deepEqual(foundUnder(d.dataRoot, v), [], 'under the data root');
  }
  assert.match(d.log(), /POST/); // the debug log did record the requests

  // a secret is not part of the cache key: another value, same steps, all from the cache (BuildKit's rule)
  await writeFile(secretFile, 'another value');
  const again = ok(await d.wharf(['build', '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=api,env=API_VALUE', '-t', 'sec:1', ctx], { env }));
  assert.equal((again.match(/Using cache/g) ?? []).length, 4, again);
});

test('--rm=false: the kept step container\'s record (config.v2.json, inspect) holds no secret variable', only, async () => {
  const envValue = `s3cr3t-kept-${randomBytes(12).toString('hex')}`;
  const ctx = join(work, 'kept');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nENV VISIBLE=yes\nRUN --mount=type=secret,id=api,env=API_KEY echo "${#API_KEY} $VISIBLE" > /kept.txt\n');
  const before = new Set(ok(await d.docker(['ps', '-aq', '--no-trunc'])).trim().split('\n').filter(Boolean));
  const r = await d.wharf(['build', '--rm=false', '--secret', 'id=api,env=API_VALUE', '-t', 'sec:kept', ctx], { env: { ...process.env, API_VALUE: envValue } });
  const out = ok(r);
  // the variable did reach the step
  assert.equal(ok(await d.docker(['run', '--rm', 'sec:kept', 'cat', '/kept.txt'])), `${envValue.length} yes\n`);
  const kept = ok(await d.docker(['ps', '-aq', '--no-trunc'])).trim().split('\n').filter((id) => id && !before.has(id));
  assert.ok(kept.length >= 1, 'the RUN step\'s container is kept');
  try {
    const inspect = ok(await d.docker(['inspect', ...kept]));
    const envs = (JSON.parse(inspect) as { Config: { Env: string[] } }[]).map((c) => c.Config.Env);
    assert.ok(envs.some((e) => e.includes('VISIBLE=yes')), inspect); // the step's own environment is there
    assert.ok(envs.every((e) => !e.some((v) => v.startsWith('API_KEY='))), inspect);
    assert.ok(!inspect.includes(envValue), 'in the kept container\'s inspect');
    assert.ok(!ok(await d.docker(['history', '--no-trunc', 'sec:kept'])).includes(envValue), 'in the history');
    for (const id of kept) assert.ok(!ok(await d.docker(['logs', id])).includes(envValue), 'in the step\'s logs');
    assert.ok(!out.includes(envValue) && !r.stderr.includes(envValue), 'in the build output');
    assert.ok(!d.log().includes(envValue), 'in the daemon log');
    assert.deepEqual(foundUnder(d.dataRoot, envValue), [], 'under the data root (config.v2.json)');
  } finally {
    await d.docker(['rm', '-f', ...kept]);
  }
});

test('a required secret missing, and a bad --secret flag, fail clearly', only, async () => {
  const ctx = join(work, 'req');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n');
  const r = await d.wharf(['build', ctx]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /Dockerfile line 2: secret npmrc: not found/);
  const bad = await d.wharf(['build', '--secret', 'src=/nonexistent', ctx]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /id is required/);
  const missing = await d.wharf(['build', '--secret', 'id=npmrc,src=/nonexistent/file', ctx]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /secret npmrc: failed to read \/nonexistent\/file/);
});

test('wharf build --ssh: the step reaches the agent through SSH_AUTH_SOCK; required and missing fails', only, async () => {
  const sock = join(work, 'agent.sock');
  const agent = execFileSync('ssh-agent', ['-a', sock, '-s']).toString();
  const pid = /SSH_AGENT_PID=(\d+)/.exec(agent)![1]!;
  try {
    const ctx = join(work, 'ssh');
    await mkdir(ctx);
    // (busybox has no unix-socket client to talk to the agent: the socket's presence and type are what is checked)
    await writeFile(join(ctx, 'Dockerfile'), `FROM busybox
RUN --mount=type=ssh echo "sock=$SSH_AUTH_SOCK" && test -S "$SSH_AUTH_SOCK" && echo is-a-socket
RUN --mount=type=ssh,id=other echo "optional other=[$SSH_AUTH_SOCK]"
`);
    const r = await d.wharf(['build', '--no-cache', '--ssh', `default=${sock}`, ctx]);
    const out = ok(r);
    assert.match(out, /\nsock=\/run\/buildkit\/ssh_agent\.0\n/);
    assert.match(out, /\nis-a-socket\n/);
    assert.match(out, /\noptional other=\[\]\n/);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true true\n');
    const miss = await d.wharf(['build', ctx]);
    assert.equal(miss.code, 1, show(miss));
    assert.match(miss.stderr, /Dockerfile line 2: no SSH agent "deploy" forwarded for RUN --mount=type=ssh/);
    // neither a socket nor a key: refused before the build starts
    const notSock = await d.wharf(['build', '--ssh', `deploy=${join(ctx, 'Dockerfile')}`, ctx]);
    assert.equal(notSock.code, 1, show(notSock));
    assert.match(notSock.stderr, /--ssh deploy=.*Dockerfile is not a private key file an SSH agent can use/);
    assert.doesNotMatch(notSock.stdout, /Sending build context/);
  } finally {
    process.kill(Number(pid));
  }
});

let sshTools: Promise<void> | undefined;
/**
 * An image `sshtools` with the host's ssh-add and ssh-keygen and the libraries ldd names for them (busybox has no
 * SSH client; the tests build no Debian image), built once.
 */
function sshToolsImage(): Promise<void> {
  sshTools ??= (async () => {
    const ctx = join(work, 'sshtools');
    const files = new Set<string>();
    for (const bin of ['/usr/bin/ssh-add', '/usr/bin/ssh-keygen']) {
      files.add(bin);
      for (const m of execFileSync('ldd', [bin]).toString().matchAll(/(\/\S+) \(0x/g)) files.add(m[1]!);
    }
    for (const f of files) {
      await mkdir(join(ctx, 'root', dirname(f)), { recursive: true });
      await copyFile(f, join(ctx, 'root', f)); // (the target's content: symlinks followed)
    }
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY root/ /\n');
    ok(await d.wharf(['build', '-q', '-t', 'sshtools', ctx]));
  })();
  return sshTools;
}

const pubKey = async (f: string) => (await readFile(`${f}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');

test('wharf build --ssh over TCP+TLS: the agent socket lives where the daemon cannot see it; the step lists its keys', only, async () => {
  await sshToolsImage();
  const key = join(work, 'tls-key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'through-the-session', '-f', key]);
  const ctx = join(work, 'ssh-tls');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM sshtools\nRUN --mount=type=ssh ssh-add -L && ssh-add -l\n');
  // a private tmpfs in a mount namespace of the CLI's own: the agent's socket is there, and only there
  const priv = join(work, 'private');
  await mkdir(priv);
  const sock = join(priv, 'agent.sock');
  const script = `mount -t tmpfs wharf-e2e-ssh "${priv}" || exit 99
eval "$(ssh-agent -a "${sock}" -s)" >/dev/null || exit 98
ssh-add -q "${key}" && "${NODE}" "${WHARF_CLI}" "$@"; rc=$?
kill "$SSH_AGENT_PID"; exit $rc`;
  const r = await run('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', ...tlsFlags, 'build', '--no-cache', '--ssh', `default=${sock}`, ctx],
    { env: { ...process.env, DOCKER_HOST: '' } });
  assert.equal(existsSync(sock), false, 'the agent socket is out of the daemon\'s (and this process\'s) sight');
  const out = ok(r);
  assert.ok(out.includes(`\n${await pubKey(key)} through-the-session\n`), out);
  assert.match(out, /\n256 SHA256:\S+ through-the-session \(ED25519\)\n/);
  // the keys came through a session the CLI opened on the TLS connection
  assert.match(d.log(), /Calling POST \/v1\.\d+\/build\/session/);
});

test('wharf build --ssh id=<key files>: the CLI\'s own agent lists and signs (ed25519, RSA); ssh-keygen -Y verify accepts; bad keys fail first', only, async () => {
  await sshToolsImage();
  const ctx = join(work, 'ssh-keys');
  await mkdir(ctx);
  const ed = join(work, 'key-ed25519');
  const rsa = join(work, 'key-rsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ed-file', '-f', ed]);
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'rsa-file', '-f', rsa]);
  await copyFile(`${ed}.pub`, join(ctx, 'ed.pub'));
  await copyFile(`${rsa}.pub`, join(ctx, 'rsa.pub'));
  const message = `signed in a build step ${randomBytes(8).toString('hex')}\n`;
  await writeFile(join(ctx, 'message'), message);
  await writeFile(join(ctx, 'Dockerfile'), `FROM sshtools
COPY ed.pub rsa.pub message /s/
RUN --mount=type=ssh,id=deploy cd /s && ssh-add -L && for k in ed rsa; do ssh-keygen -Y sign -f $k.pub -n wharf-e2e message && mv message.sig $k.sig || exit 1; done
`);
  const r = await d.wharf(['build', '--no-cache', '--ssh', `deploy=${ed},${rsa}`, '-t', 'sshsig:1', ctx]);
  const out = ok(r);
  assert.ok(out.includes(`\n${await pubKey(ed)} ed-file\n${await pubKey(rsa)} rsa-file\n`), out);
  for (const [k, f] of [['ed', ed], ['rsa', rsa]] as const) {
    const sig = join(work, `${k}.sig`);
    await writeFile(sig, ok(await d.docker(['run', '--rm', 'sshsig:1', 'cat', `/s/${k}.sig`])));
    const allowed = join(work, `${k}.allowed`);
    await writeFile(allowed, `e2e ${(await readFile(`${f}.pub`, 'utf8')).trim()}\n`);
    const msgFile = join(work, 'message');
    await writeFile(msgFile, message);
    const v = await run('/bin/sh', ['-c', `ssh-keygen -Y verify -f "${allowed}" -I e2e -n wharf-e2e -s "${sig}" < "${msgFile}"`]);
    assert.equal(v.code, 0, show(v));
    assert.match(v.stdout, /Good "wharf-e2e" signature for e2e with (ED25519|RSA) key/);
    // and a signature of something else does not verify (the check can fail)
    await writeFile(msgFile, 'another message\n');
    const bad = await run('/bin/sh', ['-c', `ssh-keygen -Y verify -f "${allowed}" -I e2e -n wharf-e2e -s "${sig}" < "${msgFile}"`]);
    assert.notEqual(bad.code, 0, show(bad));
  }
  // a passphrase-protected key: refused before anything is sent
  const enc = join(work, 'key-enc');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret words', '-f', enc]);
  const e = await d.wharf(['build', '--ssh', `deploy=${enc}`, ctx]);
  assert.equal(e.code, 1, show(e));
  assert.match(e.stderr, /--ssh deploy=.*key-enc is encrypted: passphrase-protected keys are not supported/);
  assert.doesNotMatch(e.stdout, /Sending build context/);
});

test('wharf build --ssh: a step whose agent\'s session has gone fails, naming it', only, async () => {
  // a build that names a session nobody holds (what a CLI that died would leave): the step fails clearly
  const ctx = join(work, 'ssh-gone');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=ssh true\n');
  const tar = execFileSync('tar', ['-c', '-C', ctx, 'Dockerfile']);
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({
      socketPath: d.sock, method: 'POST', path: '/v1.41/build',
      headers: { 'Content-Type': 'application/x-tar', 'X-Wharf-Build-Session': 'f'.repeat(32), 'X-Wharf-Build-Ssh-Ids': 'default' },
    }, (r) => { let b = ''; r.on('data', (c: Buffer) => { b += c.toString(); }); r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b })); });
    req.on('error', reject);
    req.end(tar);
  });
  assert.equal(res.status, 200);
  assert.match(res.body, /SSH agent \\"default\\" for RUN --mount=type=ssh: the client's build session f{32} is closed/);
});
