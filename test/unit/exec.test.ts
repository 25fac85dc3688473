/**
 * lib/exec.ts: the daemon's one way to start a process (posix_spawn through koffi, reaped on SIGCHLD).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { openSync, closeSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { execChecked, execCollect, spawnChild } from '../../src/lib/exec.js';

test('execCollect: status, stdout, stderr and stdin of a program', async () => {
  const r = await execCollect('/bin/sh', ['-c', 'read x; echo "out $x"; echo err >&2; exit 3'], { input: 'hello\n' });
  assert.deepEqual(r, { code: 3, stdout: 'out hello\n', stderr: 'err\n' });
  const ok = await execCollect('sh', ['-c', 'echo $FOO'], { env: { FOO: 'bar', PATH: '/usr/bin:/bin' } });
  assert.deepEqual(ok, { code: 0, stdout: 'bar\n', stderr: '' });
});

test('execChecked rejects with the output on a non-zero status', async () => {
  await assert.rejects(execChecked('/bin/sh', ['-c', 'echo no >&2; exit 2']), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2);
    assert.equal(e.stderr, 'no\n');
    return true;
  });
  assert.equal((await execChecked('/bin/echo', ['a', 'b c'])).stdout, 'a b c\n');
});

test('a program that cannot be started throws at once (no hang)', async () => {
  assert.throws(() => spawnChild('/nonexistent/wharf-prog', []), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  assert.throws(() => spawnChild('wharf-no-such-program-in-path', []), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  await assert.rejects(execCollect('/etc/passwd', []), (e: NodeJS.ErrnoException) => e.code === 'EACCES');
});

test('exit by a signal, and kill()', async () => {
  const c = spawnChild('/bin/sh', ['-c', 'kill -TERM $$'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const [code, sig] = await once(c, 'exit');
  assert.equal(code, null);
  assert.equal(sig, 'SIGTERM');
  const s = spawnChild('/bin/sleep', ['100'], { stdio: ['ignore', 'ignore', 'ignore'] });
  assert.equal(s.kill('SIGKILL'), true);
  assert.deepEqual(await s.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(s.kill('SIGKILL'), false, 'a reaped child is not signalled (its pid may be reused)');
});

test('descriptors: only the listed ones reach the child, even one without close-on-exec', async () => {
  const koffi = createRequire(import.meta.url)('koffi') as { load(n: string): { func(d: string): (...a: unknown[]) => number } };
  const fcntl = koffi.load('libc.so.6').func('int fcntl(int fd, int cmd, int arg)');
  const fd = openSync('/dev/null', 'r');
  try {
    assert.equal(fcntl(fd, 2 /* F_SETFD */, 0), 0); // an inheritable descriptor in the daemon
    const r = await execCollect('/bin/sh', ['-c', `test -e /proc/self/fd/${fd} && echo leaked || echo closed`]);
    assert.equal(r.stdout, 'closed\n');
    // node's own spawn lets it through: the check above can fail
    const n = spawn('/bin/sh', ['-c', `test -e /proc/self/fd/${fd} && echo leaked || echo closed`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    n.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await once(n, 'close');
    assert.equal(out, 'leaked\n');
  } finally { closeSync(fd); }
  // an extra pipe on fd 3 works both ways
  const c = spawnChild('/bin/sh', ['-c', 'read x <&3; echo "got $x" >&3'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const p = c.stdio[3]!;
  let got = '';
  p.on('data', (d: Buffer) => { got += d.toString(); });
  p.write('ping\n');
  await once(c, 'close');
  assert.equal(got, 'got ping\n');
});

test('signals, session and working directory of the child', async () => {
  // the daemon ignores SIGPIPE: the child must not inherit that
  const ign = await execCollect('/bin/sh', ['-c', 'grep -E "^Sig(Ign|Blk)" /proc/self/status']);
  assert.match(ign.stdout, /SigBlk:\s+0+\n/);
  assert.match(ign.stdout, /SigIgn:\s+0+\n/);
  const sess = spawnChild('/bin/sh', ['-c', 'echo $$ $(cut -d" " -f6 /proc/$$/stat)'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  let out = '';
  sess.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await once(sess, 'close');
  const [pid, sid] = out.trim().split(' ');
  assert.equal(pid, sid, 'detached: a session of its own');
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'wharf-exec-')));
  try {
    assert.equal((await execCollect('/bin/pwd', [], { cwd: dir })).stdout, `${dir}\n`);
    assert.throws(() => spawnChild('/bin/pwd', [], { cwd: join(dir, 'gone') }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('many children at once are all reaped with their own status', async () => {
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => execCollect('/bin/sh', ['-c', `echo ${i}; exit ${i % 7}`])));
  rs.forEach((r, i) => assert.deepEqual(r, { code: i % 7, stdout: `${i}\n`, stderr: '' }));
});
