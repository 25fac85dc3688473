/**
 * The pieces of `wharf build --ssh`: the stream multiplexer both ends run (lib/mux.ts), the CLI's own agent over
 * key files (cli/sshagent.ts: spoken to by OpenSSH's ssh-add and ssh-keygen -Y sign, checked by ssh-keygen -Y
 * verify), the daemon's agent socket for a step (step-mounts.ts serveAgent) and the session look-up of the route.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { Mux, MuxResetError, type MuxStream } from '../../src/lib/mux.js';
import { answer, loadKeys, serveAgent, signWith, type AgentKey } from '../../src/cli/sshagent.js';
import { readSsh } from '../../src/cli/build-session.js';
import { prepareMounts } from '../../src/engine/build/step-mounts.js';
import { parseRunMount } from '../../src/engine/build/dockerfile/run-mounts.js';
import { BuildSessions, MAX_SECRET_SIZE } from '../../src/engine/build/sessions.js';

const run = promisify(execFile);

/** Two Duplexes wired to each other (what one writes the other reads). */
function pipePair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  const mk = (rd: PassThrough, wr: PassThrough) => new Duplex({
    read() { rd.resume(); },
    write(c, _e, cb) { wr.write(c, cb); },
    final(cb) { wr.end(); cb(); },
  });
  const a = mk(ba, ab);
  const b = mk(ab, ba);
  ab.on('data', (c) => { if (!b.push(c)) ab.pause(); });
  ab.on('end', () => b.push(null));
  ba.on('data', (c) => { if (!a.push(c)) ba.pause(); });
  ba.on('end', () => a.push(null));
  return [a, b];
}

const readAll = (s: NodeJS.ReadableStream) => new Promise<Buffer>((res, rej) => {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('end', () => res(Buffer.concat(chunks)));
  s.on('error', rej);
});

test('mux: streams opened from either end carry data both ways, half-close, and big writes in order', async () => {
  const [a, b] = pipePair();
  const labels: string[] = [];
  // the server end echoes what it gets, upper-cased, and ends when the other side ends
  const server = new Mux(b, {
    client: false,
    onStream: (s, label) => {
      labels.push(label);
      s.on('data', (c: Buffer) => s.write(Buffer.from(c.toString('latin1').toUpperCase(), 'latin1')));
      s.on('end', () => s.end());
    },
  });
  const got: string[] = [];
  const client = new Mux(a, { client: true, onStream: (s, label) => { got.push(label); void readAll(s).then((d) => { got.push(d.toString()); s.end(); }); } });
  const s1 = client.open('ssh:default');
  const s2 = client.open('ssh:other');
  const big = Buffer.alloc(300_000, 'x');
  const r1 = readAll(s1);
  const r2 = readAll(s2);
  s1.end('hello');
  s2.end(big);
  assert.equal((await r1).toString(), 'HELLO');
  assert.equal((await r2).toString(), 'X'.repeat(big.length));
  assert.deepEqual(labels, ['ssh:default', 'ssh:other']);
  assert.equal([s1.id, s2.id].every((i) => i % 2 === 1), true);
  // the other way: the server opens, the client reads to the end and ends
  const back = server.open('from-server');
  assert.equal(back.id % 2, 0);
  back.end('data from the server');
  await new Promise<void>((r) => back.on('end', () => r()).resume());
  assert.deepEqual(got, ['from-server', 'data from the server']);
  client.close();
  assert.equal(await server.done(), null);
  assert.equal(server.closed, true);
});

test('mux: a refused or reset stream errors with the peer\'s reason; the session\'s end resets open streams', async () => {
  const [a, b] = pipePair();
  const server = new Mux(b, {
    client: false,
    onStream: (s, label) => { s.on('error', () => {}); if (label === 'no') s.destroy(new Error('no such agent here: no')); },
  });
  const client = new Mux(a, { client: true });
  const refused = client.open('no');
  const err = await new Promise<Error>((r) => refused.on('error', r));
  assert.ok(err instanceof MuxResetError);
  assert.equal(err.message, 'no such agent here: no');
  // an end without a handler refuses every OPEN
  const back = server.open('anything');
  assert.match((await new Promise<Error>((r) => back.on('error', r))).message, /nothing is served here \(anything\)/);
  // open streams end with the session
  const open = client.open('yes');
  const ended = new Promise<Error>((r) => open.on('error', r));
  server.close();
  assert.match((await ended).message, /session closed/);
  await client.done();
  assert.throws(() => client.open('late'), /the session is closed/);
});

test('mux: a malformed frame ends the session with a protocol error', async () => {
  const [a, b] = pipePair();
  const server = new Mux(b, { client: false });
  // type 9 does not exist
  a.write(Buffer.from([9, 0, 0, 0, 1, 0, 0, 0, 0]));
  const e = await server.done();
  assert.match(String(e?.message), /protocol error: unexpected frame type 9/);
  // an OPEN with the opener's own parity is refused too
  const [c, d] = pipePair();
  const s2 = new Mux(d, { client: false, onStream: () => assert.fail('not a stream') });
  c.write(Buffer.from([1, 0, 0, 0, 2, 0, 0, 0, 1, 0x61]));
  assert.match(String((await s2.done())?.message), /unexpected OPEN of stream 2/);
});

async function keygen(dir: string, name: string, args: string[]): Promise<string> {
  const f = join(dir, name);
  await run('ssh-keygen', ['-q', '-N', '', '-C', `${name}-comment`, '-f', f, ...args]);
  return f;
}

/** Serves the CLI's agent on a unix socket, as a session stream would get it. */
async function agentSocket(dir: string, keys: AgentKey[]): Promise<{ path: string; server: Server }> {
  const path = join(dir, 'agent.sock');
  const server = createServer((c) => serveAgent(c, keys));
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server };
}

test('the CLI\'s agent over key files: ssh-add lists them, ssh-keygen -Y signs through it and verifies, RSA honours the SHA-2 flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-agent-'));
  try {
    const ed = await keygen(dir, 'ed', ['-t', 'ed25519']);
    const rsa = await keygen(dir, 'rsa', ['-t', 'rsa', '-b', '2048']);
    const ec = await keygen(dir, 'ec', ['-t', 'ecdsa', '-b', '384']);
    const pem = await keygen(dir, 'pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']);
    const keys = await loadKeys([ed, rsa, ec, pem]);
    assert.deepEqual(keys.map((k) => k.type), ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp384', 'ssh-rsa']);
    // an old PEM file has no comment: its path stands in (as ssh-add does)
    assert.deepEqual(keys.map((k) => k.comment), ['ed-comment', 'rsa-comment', 'ec-comment', pem]);
    const { path, server } = await agentSocket(dir, keys);
    try {
      const env = { ...process.env, SSH_AUTH_SOCK: path };
      const listed = (await run('ssh-add', ['-L'], { env })).stdout.trim().split('\n');
      const pubs = await Promise.all([ed, rsa, ec, pem].map(async (f) => (await readFile(`${f}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ')));
      assert.deepEqual(listed.map((l) => l.split(' ').slice(0, 2).join(' ')), pubs);
      // ssh-keygen -Y sign with a public key asks the agent for the signature; -Y verify checks it
      const msg = join(dir, 'message');
      await writeFile(msg, 'signed through the agent\n');
      for (const f of [ed, rsa, ec]) {
        await run('ssh-keygen', ['-Y', 'sign', '-f', `${f}.pub`, '-n', 'file', msg], { env });
        const allowed = join(dir, 'allowed');
        await writeFile(allowed, `signer ${(await readFile(`${f}.pub`, 'utf8')).trim()}\n`);
        const v = await run('/bin/sh', ['-c', `ssh-keygen -Y verify -f "${allowed}" -I signer -n file -s "${msg}.sig" < "${msg}"`]);
        assert.match(v.stdout, /Good "file" signature for signer/);
        await rm(`${msg}.sig`);
      }
      // a key the agent does not hold, and requests it does not serve: SSH_AGENT_FAILURE
      const other = await loadKeys([await keygen(dir, 'other', ['-t', 'ed25519'])]);
      const req = Buffer.concat([Buffer.from([13]), lenPrefixed(other[0]!.blob), lenPrefixed(Buffer.from('x')), Buffer.alloc(4)]);
      assert.deepEqual([...answer(keys, req)], [5]);
      assert.deepEqual([...answer(keys, Buffer.from([17]))], [5]);
      assert.deepEqual([...answer(keys, Buffer.from([13, 0, 0]))], [5]);
    } finally {
      server.close();
    }
    // RSA: flag 2 → rsa-sha2-256, 4 → rsa-sha2-512, none → ssh-rsa (SHA-1); each verifies with its hash
    const pub = createPublicKey(keys[1]!.key);
    const data = Buffer.from('data to sign');
    for (const [flags, alg, hash] of [[2, 'rsa-sha2-256', 'sha256'], [4, 'rsa-sha2-512', 'sha512'], [0, 'ssh-rsa', 'sha1']] as const) {
      const [name, sig] = splitStrings(signWith(keys[1]!, data, flags));
      assert.equal(name!.toString(), alg);
      assert.ok(cryptoVerify(hash, data, pub, sig!), alg);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--ssh: sockets, key files and their errors, before anything is sent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ssh-spec-'));
  try {
    const ed = await keygen(dir, 'ed', ['-t', 'ed25519']);
    const rsa = await keygen(dir, 'rsa', ['-t', 'rsa', '-b', '2048']);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', join(dir, 'enc')]);
    await writeFile(join(dir, 'junk'), 'not a key\n');
    const { path, server } = await agentSocket(dir, []);
    try {
      const m = await readSsh(['default', `keys=${ed},${rsa}`, `sock=${path}`], { SSH_AUTH_SOCK: path });
      assert.deepEqual([...m.entries()].map(([id, s]) => [id, s.kind, s.kind === 'keys' ? s.keys.length : s.path]), [
        ['default', 'socket', path], ['keys', 'keys', 2], ['sock', 'socket', path],
      ]);
      await assert.rejects(readSsh(['default'], {}), /SSH_AUTH_SOCK is not set/);
      await assert.rejects(readSsh([`x=${join(dir, 'enc')}`]), /--ssh x=.*enc: .*enc is encrypted: passphrase-protected keys are not supported/);
      await assert.rejects(readSsh([`x=${join(dir, 'junk')}`]), /junk is not a private key file an SSH agent can use/);
      await assert.rejects(readSsh([`x=${ed}.pub`]), /holds a public key: give the private key file/);
      await assert.rejects(readSsh([`x=${join(dir, 'missing')}`]), /ENOENT/);
      await assert.rejects(readSsh([`x=${path},${ed}`]), /give one agent socket, or key files only/);
      await assert.rejects(readSsh(['bad/id']), /invalid id "bad\/id"/);
      await assert.rejects(readSsh([`a=${ed}`, `a=${rsa}`]), /id "a" given twice/);
    } finally {
      server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a step\'s agent socket: each connection is a stream to the agent; mode and owner as the mount says; long paths work', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-step-agent-'));
  try {
    let opened = 0;
    const source = {
      unavailable: () => null,
      connect: (): Duplex => {
        opened++;
        return new Duplex({ read() {}, write(c, _e, cb) { this.push(Buffer.from(`echo:${c.toString()}`)); cb(); }, final(cb) { this.push(null); cb(); } });
      },
    };
    // a scratch path longer than sun_path's 108 bytes
    const scratchDir = join(dir, 'd'.repeat(60), 'e'.repeat(60));
    const mount = parseRunMount('type=ssh,id=deploy,mode=0640,uid=1000,gid=1001');
    const prepared = await prepareMounts([mount], '/', {
      ctxDir: dir, mountFrom: () => assert.fail('no from='), caches: {} as never, secrets: new Map(),
      ssh: new Map([['deploy', source]]), scratchDir, signal: new AbortController().signal,
    });
    try {
      assert.equal(prepared.binds.length, 1);
      const { source: sock, target, readonly } = prepared.binds[0]!;
      assert.deepEqual([target, readonly, prepared.env], ['/run/buildkit/ssh_agent.0', false, ['SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0']]);
      const st = await stat(sock);
      assert.ok(st.isSocket());
      assert.deepEqual([st.mode & 0o777, st.uid, st.gid], [0o640, 1000, 1001]);
      assert.ok(Buffer.byteLength(sock) > 108, sock);
      const short = join(dir, 's');
      await symlink(sock, short);
      for (const word of ['one', 'two']) {
        const c = connect(short);
        const got = readAll(c);
        c.end(word);
        assert.equal((await got).toString(), `echo:${word}`);
      }
      assert.equal(opened, 2);
    } finally {
      await prepared.release();
    }
    await assert.rejects(stat(scratchDir), /ENOENT/);
    // an agent offered through a session that has gone: the step fails, naming it
    const gone = { unavailable: () => 'the client\'s build session x is closed', connect: () => assert.fail('not connected') };
    await assert.rejects(prepareMounts([mount], '/', {
      ctxDir: dir, mountFrom: () => assert.fail('no from='), caches: {} as never, secrets: new Map(),
      ssh: new Map([['deploy', gone]]), scratchDir, signal: new AbortController().signal,
    }), /SSH agent "deploy" for RUN --mount=type=ssh: the client's build session x is closed/);
    // not offered: skipped, or refused when required
    const skipped = await prepareMounts([mount], '/', { ctxDir: dir, mountFrom: () => assert.fail('no'), caches: {} as never, secrets: new Map(), ssh: new Map(), scratchDir, signal: new AbortController().signal });
    assert.deepEqual(skipped.binds, []);
    await assert.rejects(prepareMounts([parseRunMount('type=ssh,required=true')], '/', { ctxDir: dir, mountFrom: () => assert.fail('no'), caches: {} as never, secrets: new Map(), ssh: new Map(), scratchDir, signal: new AbortController().signal }),
      /no SSH agent "default" forwarded/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('build sessions: agents and secrets are named by id through a session; a closed or unknown session is reported, not connected', async () => {
  const sessions = new BuildSessions();
  const id = 'a'.repeat(32);
  const { ssh: agents, secrets } = sessions.sources({ id, ssh: ['default', 'deploy'], secrets: ['tok', 'big', 'gone'] });
  assert.deepEqual([...agents.keys()], ['default', 'deploy']);
  assert.deepEqual([...secrets.keys()], ['tok', 'big', 'gone']);
  // no session of that id yet
  assert.match(String(agents.get('default')!.unavailable()), /build session a{32} is closed/);
  assert.throws(() => agents.get('default')!.connect(), /is closed/);
  await assert.rejects(secrets.get('tok')!.read(), /secret tok: the client's build session a{32} is closed/);
  const [a, b] = pipePair();
  const labels: string[] = [];
  const values = new Map([['tok', Buffer.from([0, 1, 2, 255])], ['big', Buffer.alloc(MAX_SECRET_SIZE + 1, 7)]]);
  const client = new Mux(a, {
    client: true,
    onStream: (s: MuxStream, label) => {
      labels.push(label);
      s.on('error', () => {});
      if (label.startsWith('secret:')) {
        const v = values.get(label.slice(7));
        if (v) s.end(v); else s.destroy(new Error(`no such secret here: ${label}`));
        s.resume();
        return;
      }
      s.end('agent answer');
      s.resume();
    },
  });
  const mux = new Mux(b, { client: false });
  sessions.add(id, mux);
  assert.equal(agents.get('deploy')!.unavailable(), null);
  const s = agents.get('deploy')!.connect();
  assert.equal((await readAll(s)).toString(), 'agent answer');
  // a secret's value, fetched at each use; more than BuildKit's 500 KiB refused; one the client lacks reported
  assert.deepEqual([...await secrets.get('tok')!.read()], [0, 1, 2, 255]);
  assert.deepEqual([...await secrets.get('tok')!.read()], [0, 1, 2, 255]);
  await assert.rejects(secrets.get('big')!.read(), /secret big: too big/);
  await assert.rejects(secrets.get('gone')!.read(), /secret gone: the client did not send it: no such secret here: secret:gone/);
  const ac = new AbortController();
  ac.abort(new Error('the build was cancelled'));
  await assert.rejects(secrets.get('tok')!.read(ac.signal), /the build was cancelled/);
  assert.deepEqual(labels.slice(0, 5), ['ssh:deploy', 'secret:tok', 'secret:tok', 'secret:big', 'secret:gone']);
  // the session still works after all that
  assert.deepEqual([...await secrets.get('tok')!.read()], [0, 1, 2, 255]);
  client.close();
  await mux.done();
  assert.match(String(agents.get('deploy')!.unavailable()), /is closed/);
  await assert.rejects(secrets.get('tok')!.read(), /is closed/);
  assert.equal(sessions.has(id), false);
});

function lenPrefixed(b: Buffer): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
}

function splitStrings(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < b.length) {
    const n = b.readUInt32BE(off);
    out.push(b.subarray(off + 4, off + 4 + n));
    off += 4 + n;
  }
  return out;
}
