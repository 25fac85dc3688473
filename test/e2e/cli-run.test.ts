/**
 * The wharf CLI's streaming container commands against a real wharfd and real busybox containers, side by
 * side with the docker CLI on the same daemon: run (exit codes, stdout/stderr kept apart, -e/-w/-u, -d, --rm,
 * a missing command, an image pulled on demand), logs (-f, --tail), exec, start -a, wait, and a terminal
 * session through a pseudo-terminal (raw mode, exit status, detaching with Ctrl-P Ctrl-Q).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { NODE, WHARF_CLI, run, show } from '../support/cli.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { underPty } from '../support/pty.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
let work: string;
before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-clirun-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function containers(): Promise<{ Id: string; Names: string[]; State: string }[]> {
  const r = await d.api('GET', '/containers/json?all=1');
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

test('run: output, exit codes and stream separation are docker\'s', async () => {
  for (const cli of ['wharf', 'docker'] as const) {
    const x = (args: string[], input?: string) => (cli === 'wharf' ? d.wharf(args, input === undefined ? {} : { input }) : d.docker(args, input === undefined ? {} : { input }));
    const hello = await x(['run', '--rm', 'busybox', 'echo', 'hello']);
    assert.deepEqual([hello.code, hello.stdout, hello.stderr], [0, 'hello\n', ''], `${cli}: ${show(hello)}`);
    const env = await x(['run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', '1000', 'busybox', 'sh', '-c', 'echo $FOO; pwd; id -u']);
    assert.equal(env.stdout, 'bar\n/tmp\n1000\n', `${cli}: ${show(env)}`);
    const three = await x(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3']);
    assert.equal(three.code, 3, `${cli}: ${show(three)}`);
    const split = await x(['run', '--rm', 'busybox', 'sh', '-c', 'echo to-out; echo to-err >&2']);
    assert.equal(split.stdout, 'to-out\n', `${cli}: ${show(split)}`);
    assert.equal(split.stderr, 'to-err\n', `${cli}: ${show(split)}`);
    // flags after the image belong to the command (docker's non-interspersed flags)
    const flags = await x(['run', '--rm', 'busybox', 'printf', '%s|%s\n', '-e', '--rm']);
    assert.equal(flags.stdout, '-e|--rm\n', `${cli}: ${show(flags)}`);
    const piped = await x(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'read a; echo got:$a'], 'line one\n');
    assert.equal(piped.stdout, 'got:line one\n', `${cli}: ${show(piped)}`);
    const missing = await x(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(missing.code, 127, `${cli}: ${show(missing)}`);
    assert.match(missing.stderr, /executable file not found in \$PATH/);
  }
  // wharf's own lines, word for word with docker's layout
  const missing = await d.wharf(['run', '--rm', 'busybox', 'no-such-command']);
  assert.match(missing.stderr, /^wharf: Error response from daemon: .*exec: "no-such-command": executable file not found in \$PATH.*\n\nRun 'wharf run --help' for more information\n$/s);
  const left = (await containers()).filter((c) => c.State !== 'running');
  assert.deepEqual(left.map((c) => c.Names[0]), [], '--rm removed every container, even after a failed start');
  const bad = await d.wharf(['run', '--memory', 'lots', 'busybox', 'true']);
  assert.equal(bad.code, 125, show(bad));
});

test('run -d, logs (--tail, -f), exec, wait, start -a', async () => {
  const r = await d.wharf(['run', '-d', '--name', 'bg', 'busybox', 'sh', '-c', 'echo one; echo two; echo err >&2; sleep 1; echo three']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  const follow = await d.wharf(['logs', '-f', 'bg']);
  assert.equal(follow.stdout, 'one\ntwo\nthree\n', show(follow));
  assert.equal(follow.stderr, 'err\n');
  const tail = await d.wharf(['logs', '--tail', '1', 'bg']);
  const dtail = await d.docker(['logs', '--tail', '1', 'bg']);
  assert.deepEqual([tail.stdout, tail.stderr], [dtail.stdout, dtail.stderr]);
  const w = await d.wharf(['wait', 'bg']);
  assert.equal(w.stdout, '0\n', show(w));

  const srv = await d.wharf(['run', '-d', '--name', 'srv', 'busybox', 'sleep', '60']);
  assert.equal(srv.code, 0, show(srv));
  const ex = await d.wharf(['exec', '-e', 'X=1', '-w', '/etc', 'srv', 'sh', '-c', 'echo $X $(pwd); echo e >&2; exit 4']);
  assert.deepEqual([ex.code, ex.stdout, ex.stderr], [4, '1 /etc\n', 'e\n'], show(ex));
  const exi = await d.wharf(['exec', '-i', 'srv', 'cat'], { input: 'through stdin\n' });
  assert.equal(exi.stdout, 'through stdin\n', show(exi));
  const exd = await d.wharf(['exec', '-d', 'srv', 'sh', '-c', 'echo detached > /tmp/mark']);
  assert.equal(exd.code, 0, show(exd));
  await waitFor(async () => (await d.wharf(['exec', 'srv', 'test', '-f', '/tmp/mark'])).code === 0, { interval: 100, message: 'the detached exec\'s mark' }).catch(() => {});
  const mark = await d.wharf(['exec', 'srv', 'cat', '/tmp/mark']);
  assert.equal(mark.stdout, 'detached\n', show(mark));

  const c = await d.wharf(['create', '--name', 'later', 'busybox', 'sh', '-c', 'echo from-start; exit 2']);
  assert.match(c.stdout, /^[a-f0-9]{64}\n$/, show(c));
  const sa = await d.wharf(['start', '-a', 'later']);
  assert.deepEqual([sa.code, sa.stdout], [2, 'from-start\n'], show(sa));
  const again = await d.wharf(['start', 'later']);
  assert.deepEqual([again.code, again.stdout], [0, 'later\n'], show(again));
  const nope = await d.wharf(['logs', 'no-such-container']);
  assert.equal(nope.code, 1);
  assert.equal(nope.stderr, 'Error response from daemon: No such container: no-such-container\n');
  await d.api('DELETE', '/containers/srv?force=1');
});

test('run pulls an image it does not have, as docker does', async () => {
  let reg: Registry | undefined;
  try {
    reg = await startRegistry();
    const ref = `${reg.host}/lib/bb:v1`;
    assert.equal((await d.wharf(['tag', 'busybox', ref])).code, 0);
    const push = await d.docker(['push', ref]);
    assert.equal(push.code, 0, show(push));
    assert.equal((await d.wharf(['rmi', ref])).code, 0);
    const r = await d.wharf(['run', '--rm', ref, 'echo', 'pulled']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'pulled\n');
    assert.match(r.stderr, new RegExp(`^Unable to find image '${ref}' locally\\n`));
    assert.match(r.stderr, /Status: Downloaded newer image for /);
    const none = await d.wharf(['run', '--rm', `${reg.host}/lib/absent:v1`, 'true']);
    assert.equal(none.code, 125, show(none));
    assert.match(none.stderr, /Unable to find image .*absent:v1' locally\n/);
  } finally {
    await reg?.stop();
  }
});

test('run -it: a real terminal session, its exit status, and Ctrl-P Ctrl-Q detaching', async () => {
  const s = await underPty(d.host, work, [NODE, WHARF_CLI, 'run', '-it', '--rm', 'busybox', 'sh'], ['echo typed-$((6*7))\r', 'exit 5\r']);
  assert.equal(s.code, 5, s.out);
  assert.match(s.out, /typed-42\r\n/, 'the shell ran in a terminal and its output came back');
  assert.doesNotMatch(s.out, /\r\r\n/, 'no second carriage return: our side of the terminal is raw');
  const det = await underPty(d.host, work, [NODE, WHARF_CLI, 'run', '-it', '--name', 'keep', 'busybox', 'sh'], ['echo still-here\r', '\x10\x11']);
  assert.equal(det.code, 0, det.out);
  assert.match(det.out, /still-here/);
  const st = await d.wharf(['inspect', '--format', '{{.State.Status}}', 'keep']);
  assert.equal(st.stdout.trim(), 'running', 'detaching left the container running');
  const ex = await d.wharf(['exec', 'keep', 'echo', 'alive']);
  assert.equal(ex.stdout, 'alive\n');
  await d.api('DELETE', '/containers/keep?force=1');
});

test('the terminal\'s size: set from the start for run -it and exec -it, and followed on resize', async () => {
  const r = await underPty(d.host, work, [NODE, WHARF_CLI, 'run', '--rm', '-it', 'busybox', 'stty', 'size'], []);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.trim(), '33 101');
  assert.equal((await d.wharf(['run', '-d', '--name', 'sized', 'busybox', 'sleep', '60'])).code, 0);
  const e = await underPty(d.host, work, [NODE, WHARF_CLI, 'exec', '-it', 'sized', 'stty', 'size'], []);
  assert.equal(e.out.trim(), '33 101', e.out);
  const s = await underPty(d.host, work, [NODE, WHARF_CLI, 'exec', '-it', 'sized', 'sh'], ['stty size\r', 'RESIZE', 'stty size\r', 'exit\r']);
  assert.match(s.out, /33 101\r\n[\s\S]*40 120\r\n/, s.out);
  await d.api('DELETE', '/containers/sized?force=1');
});

test('an idle daemon lets its spare attach relay go, and the next attach starts one itself', async () => {
  const { readdir, readFile } = await import('node:fs/promises');
  const perlChildren = async (): Promise<number> => {
    let n = 0;
    for (const p of await readdir('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
      const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
      if (m && m[1] === 'perl' && Number(m[2]) === d.pid) n++;
    }
    return n;
  };
  const first = await d.wharf(['run', '--rm', 'busybox', 'echo', 'one']);
  assert.equal(first.code, 0, show(first));
  // the attach took the spare (or started a relay): a new spare follows it, then goes when nothing attaches
  await waitFor(async () => (await perlChildren()) === 1, { timeout: 10_000, message: 'a spare relay after the attach' });
  await waitFor(async () => (await perlChildren()) === 0, { timeout: 20_000, message: 'the idle spare relay let go' });
  const second = await d.wharf(['run', '--rm', 'busybox', 'echo', 'two']);
  assert.equal(second.code, 0, show(second));
  assert.equal(second.stdout, 'two\n');
});
