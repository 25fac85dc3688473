/**
 * Lifecycle semantics as dockerd's (issue 14 item 3), through the docker CLI, the raw API and dockerode:
 * `kill` (SIGKILL) returns once the container is no longer running, so `kill && rm` works every time; `wait`
 * returns on an exit even when a restart policy restarts the container (not-running and next-exit), and on
 * removal; `commit` (paused by default) of a container that is exiting meanwhile succeeds; an exec's output is
 * framed by the Tty of its *start* request.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { sleep, waitFor } from '../support/wait.js';

let d: Daemon;
let docker: Docker;

before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.sock });
  await loadBusybox(d);
});
after(async () => {
  await d?.stop();
});

test('kill (SIGKILL) returns after the container stopped: `docker kill X && docker rm X` works 5 times out of 5', async () => {
  for (let i = 0; i < 5; i++) {
    const name = `k${i}`;
    const r = await d.docker(['run', '-d', '--name', name, 'busybox', 'sleep', '1000']);
    assert.equal(r.code, 0, show(r));
    const k = await d.docker(['kill', name]);
    assert.equal(k.code, 0, show(k));
    const rm = await d.docker(['rm', name]);
    assert.equal(rm.code, 0, `round ${i}: ${show(rm)}`);
  }
  // dockerode's kill, then remove without force
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '1000'] });
  await c.start();
  await c.kill();
  assert.equal((await c.inspect()).State.Running, false);
  await c.remove();
  // a paused container is killed too (the runtime thaws it), and can be removed right after
  assert.equal((await d.docker(['run', '-d', '--name', 'pk', 'busybox', 'sleep', '1000'])).code, 0);
  assert.equal((await d.docker(['pause', 'pk'])).code, 0);
  const pk = await d.docker(['kill', 'pk']);
  assert.equal(pk.code, 0, show(pk));
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'pk'])).stdout, 'exited 137\n');
  assert.equal((await d.docker(['rm', 'pk'])).code, 0);
  // another signal returns at once (the container traps it and keeps running); a bad one is a 400
  const t = await d.docker(['run', '-d', '--name', 'trap', 'busybox', 'sh', '-c', 'trap "echo got" USR1; while :; do sleep 0.1; done']);
  assert.equal(t.code, 0, show(t));
  assert.equal((await d.docker(['kill', '-s', 'USR1', 'trap'])).code, 0);
  await waitFor(async () => (await d.docker(['logs', 'trap'])).stdout === 'got\n', { message: 'the trap ran' });
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Running}}', 'trap'])).stdout, 'true\n');
  const bad = await d.api('POST', '/containers/trap/kill?signal=NOPE');
  assert.deepEqual([bad.status, JSON.parse(bad.body).message], [400, 'Invalid signal: NOPE']);
  assert.equal((await d.docker(['rm', '-f', 'trap'])).code, 0);
});

test('wait returns on an exit under a restart policy (not-running, next-exit), and on removal', async () => {
  const r = await d.docker(['run', '-d', '--name', 'rs', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.5; exit 3']);
  assert.equal(r.code, 0, show(r));
  const t0 = Date.now();
  const w = await d.docker(['wait', 'rs']);
  assert.equal(w.code, 0, show(w));
  assert.equal(w.stdout, '3\n');
  assert.ok(Date.now() - t0 < 10_000, `wait took ${Date.now() - t0} ms`);
  // dockerode: next-exit sees the exit after the restart
  const c = docker.getContainer('rs');
  const res = await c.wait({ condition: 'next-exit' }) as { StatusCode: number };
  assert.equal(res.StatusCode, 3);
  assert.ok(((await c.inspect()).RestartCount ?? 0) >= 1, 'the container was restarted in between');
  // condition=removed resolves when the container goes
  const removed = c.wait({ condition: 'removed' }) as Promise<{ StatusCode: number }>;
  assert.equal((await d.docker(['rm', '-f', 'rs'])).code, 0);
  assert.equal(typeof (await removed).StatusCode, 'number');
  const bad = await d.api('POST', '/containers/nope/wait?condition=removed');
  assert.equal(bad.status, 404);
});

test('stop and kill of a container waiting to be restarted cancel the restart', async () => {
  for (const verb of ['stop', 'kill']) {
    const name = `back-${verb}`;
    const r = await d.docker(['run', '-d', '--name', name, '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1']);
    assert.equal(r.code, 0, show(r));
    // the back-off after the exit that left RestartCount at n lasts 100 ms × 2^n; then the policy's start raises the
    // count to n + 1 while the state still reads `restarting` (as dockerd's) and FinishedAt is 100 ms × 2^n old. So
    // "less than 100 ms × 2^(count-1) − 500 ms since the exit" holds only early in a back-off, never during a start,
    // and leaves at least 2.1 s of back-off (count ≥ 5) for the command below to land in
    await waitFor(async () => {
      const [restarting, count, finished] = (await d.docker(['inspect', '-f', '{{.State.Restarting}} {{.RestartCount}} {{.State.FinishedAt}}', name])).stdout.trim().split(' ');
      return restarting === 'true' && Number(count) >= 5 && Date.now() - Date.parse(finished!) < 100 * 2 ** (Number(count) - 1) - 500;
    }, { message: `${name} early in a restart back-off`, timeout: 60_000 });
    // a wait taken during the back-off ends when the restart is cancelled
    const waiting = d.docker(['wait', name]);
    if (verb === 'stop') assert.match((await d.docker(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Status}}'])).stdout, /^(Restarting \(1\) .* ago|Up .*)\n$/);
    const s = await d.docker([verb, name]);
    assert.equal(s.code, 0, show(s));
    const w = await waiting;
    assert.equal(w.code, 0, show(w));
    assert.equal(w.stdout, '1\n');
    const count = (await d.docker(['inspect', '-f', '{{.RestartCount}}', name])).stdout;
    await sleep(2500); // longer than the back-off it was in: no restart comes
    assert.equal((await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.Restarting}} {{.RestartCount}}', name])).stdout, `exited false ${count}`);
    assert.equal((await d.docker(['rm', name])).code, 0);
  }
});

test('a stop at any moment of a restart loop leaves the container stopped (also while the restart is starting it)', async () => {
  // the container exits at once and is restarted after 100, 200, 400 ms...: stops land in the back-off, in the
  // start of the restart, or while it runs; each must end the loop (a stop during the start once answered
  // "already stopped" and the start went on, restarting for ever)
  const left: string[] = [];
  for (let i = 0; i < 8; i++) {
    const name = `loop${i}`;
    const r = await d.docker(['run', '-d', '--name', name, '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1']);
    assert.equal(r.code, 0, show(r));
    await sleep(150 + 120 * i);
    const s = await d.docker(['stop', '-t', '1', name]);
    assert.equal(s.code, 0, show(s));
    await sleep(1500); // longer than the back-offs of the first restarts
    const st = (await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.State.Restarting}}', name])).stdout;
    if (st !== 'exited false false\n') left.push(`${name} (stopped after ${150 + 120 * i} ms): ${st.trim()}`);
    assert.equal((await d.docker(['rm', '-f', name])).code, 0);
  }
  assert.deepEqual(left, []);
});

test('a container in a restart loop reads restarting or running, never exited, until it is stopped (also while the policy starts it)', async () => {
  // the policy's start takes tens of ms: dockerd's state stays `restarting` through it; wharfd once cleared
  // Restarting when the back-off ended, so inspect and `ps` showed "Exited" for the length of each start
  const r = await d.docker(['run', '-d', '--name', 'loopstate', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1']);
  assert.equal(r.code, 0, show(r));
  const c = docker.getContainer('loopstate');
  const seen = new Map<string, number>();
  // through four restarts (0.1 + 0.2 + 0.4 + 0.8 s of back-off and four starts; longer on a loaded machine)
  const until = Date.now() + 60_000;
  let restarts = 0;
  while (restarts < 4 && Date.now() < until) {
    const info = await c.inspect();
    const st = info.State;
    const k = `${st.Status} running=${st.Running} restarting=${st.Restarting}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
    restarts = info.RestartCount;
  }
  assert.equal((await d.docker(['rm', '-f', 'loopstate'])).code, 0);
  assert.ok(restarts >= 4, `restarted ${restarts} times in 60 s`);
  const states = [...seen.keys()];
  assert.ok(states.some((k) => k.startsWith('restarting')), `a restarting state was seen: ${states.join(', ')}`);
  assert.deepEqual(states.filter((k) => !/^(restarting running=false restarting=true|running running=true restarting=false)$/.test(k)), [],
    `states seen (with counts): ${[...seen].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
});

test('commit (paused by default) of a container that is exiting meanwhile succeeds', async () => {
  const failures: string[] = [];
  for (let i = 0; i < 8; i++) {
    const name = `cx${i}`;
    const r = await d.docker(['run', '-d', '--name', name, 'busybox', 'sh', '-c', `echo ${i} > /marker`]);
    assert.equal(r.code, 0, show(r));
    const c = await d.api('POST', `/commit?container=${name}&repo=exiting&tag=${i}`);
    if (c.status !== 201) failures.push(`${i}: ${c.status} ${c.body}`);
    await d.docker(['wait', name]);
    await d.docker(['rm', name]);
  }
  assert.deepEqual(failures, []);
  // the image of a commit taken after the exit holds the change
  const r = await d.docker(['run', '--name', 'after', 'busybox', 'sh', '-c', 'echo done > /marker']);
  assert.equal(r.code, 0, show(r));
  assert.equal((await d.docker(['commit', 'after', 'exiting:after'])).code, 0);
  const out = await d.docker(['run', '--rm', 'exiting:after', 'cat', '/marker']);
  assert.equal(out.stdout, 'done\n');
  await d.docker(['rm', 'after']);
});

/** The bytes an exec's hijacked start sends, through dockerode. */
async function execOutput(c: Docker.Container, createTty: boolean, startTty: boolean): Promise<Buffer> {
  const e = await c.exec({ Cmd: ['echo', 'hello'], AttachStdout: true, AttachStderr: true, Tty: createTty });
  const s = await e.start({ hijack: true, stdin: false, Tty: startTty });
  const chunks: Buffer[] = [];
  s.on('data', (b: Buffer) => chunks.push(b));
  await new Promise<void>((res, rej) => { s.on('end', () => res()); s.on('close', () => res()); s.on('error', rej); });
  return Buffer.concat(chunks);
}

test('exec output framing follows the Tty of the start request, not of the create', async () => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '1000'], name: 'ex' });
  await c.start();
  try {
    // multiplexed: an 8-byte stdcopy header (stream 1, big-endian length) before the payload
    const muxed = await execOutput(c, true, false);
    assert.equal(muxed[0], 1, `header expected: ${JSON.stringify(muxed.toString('latin1'))}`);
    assert.equal(muxed.readUInt32BE(4), muxed.length - 8);
    assert.equal(muxed.subarray(8).toString(), 'hello\r\n'); // the process still has its terminal
    const raw = await execOutput(c, false, true);
    assert.equal(raw.toString(), 'hello\n');
    const plain = await execOutput(c, false, false);
    assert.equal(plain[0], 1);
    assert.equal(plain.subarray(8).toString(), 'hello\n');
  } finally {
    await c.remove({ force: true });
  }
});

test('start path: an --rm container runs on a volatile overlay, a kept one not (also when started again); a start from the daemon runs the process once', async () => {
  const wharf = process.env.WHARF_E2E_DAEMON !== 'dockerd'; // dockerd never mounts volatile
  const root = 'grep "^overlay / " /proc/mounts';
  const rm = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', root]);
  assert.equal(rm.code, 0, show(rm));
  assert.match(rm.stdout, /^overlay \/ overlay /);
  // the option as the kernel lists it: ",volatile" (5.10 on), "fsync=volatile" (6.x)
  if (wharf) assert.match(rm.stdout, /[,=]volatile[, ]/, 'the throwaway layer is volatile');
  const kept = await d.docker(['run', '--name', 'kept', 'busybox', 'sh', '-c', `echo ran >> /count; ${root}`]);
  assert.equal(kept.code, 0, show(kept));
  assert.doesNotMatch(kept.stdout, /volatile/);
  const again = await d.docker(['start', '-a', 'kept']);
  assert.equal(again.code, 0, show(again));
  assert.doesNotMatch(again.stdout, /volatile/);
  // each start ran the process exactly once, and the layer kept what the first run wrote
  const cp = await d.docker(['cp', 'kept:/count', '-']);
  assert.equal(cp.code, 0, show(cp));
  assert.equal((cp.stdout.match(/ran\n/g) ?? []).length, 2, cp.stdout);
  assert.equal((await d.docker(['rm', 'kept'])).code, 0);
  // a detached one is running for docker right after its start, and a TERM it traps reaches it
  const t = await d.docker(['run', '-d', '--name', 'termed', 'busybox', 'sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done']);
  assert.equal(t.code, 0, show(t));
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Status}}', 'termed'])).stdout, 'running\n');
  const st = await d.docker(['stop', 'termed']);
  assert.equal(st.code, 0, show(st));
  assert.equal((await d.docker(['inspect', '-f', '{{.State.ExitCode}}', 'termed'])).stdout, '7\n');
  assert.equal((await d.docker(['rm', 'termed'])).code, 0);
});
