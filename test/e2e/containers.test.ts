/**
 * Containers through the real docker CLI against wharfd: create / inspect / ps / rm (store and API shapes),
 * then the runtime (run, exit codes, logs, stop).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { sleep } from '../support/wait.js';

let d: Daemon;
before(async () => {
  d = await startDaemon();
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => { await d?.stop(); });

test('create, inspect, ps -a, name conflict, rm', async () => {
  const c = await d.docker(['create', '--name', 'c1', '-e', 'FOO=bar', 'busybox', 'sleep', '30']);
  assert.equal(c.code, 0, show(c));
  const id = c.stdout.trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  const rec = JSON.parse(await readFile(join(d.dataRoot, 'containers', id, 'config.v2.json'), 'utf8'));
  assert.equal(rec.Name, '/c1');

  const ins = await d.docker(['inspect', '--format', '{{.Name}} {{.State.Status}} {{.Path}} {{json .Args}} {{.Config.Hostname}}', 'c1']);
  assert.equal(ins.code, 0, show(ins));
  assert.equal(ins.stdout.trim(), `/c1 created sleep ["30"] ${id.slice(0, 12)}`);
  const env = await d.docker(['inspect', '--format', '{{json .Config.Env}}', id.slice(0, 10)]);
  assert.ok(JSON.parse(env.stdout).includes('FOO=bar'), show(env));

  const dup = await d.docker(['create', '--name', 'c1', 'busybox']);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, new RegExp(`Conflict\\. The container name "/c1" is already in use by container "${id}"\\. You have to remove \\(or rename\\) that container to be able to reuse that name\\.`));

  const ps = await d.docker(['ps', '--format', '{{.Names}}|{{.Status}}']);
  assert.equal(ps.code, 0, show(ps));
  assert.doesNotMatch(ps.stdout, /c1/);
  const psa = await d.docker(['ps', '-a', '--format', '{{.Names}}|{{.Status}}|{{.Command}}']);
  assert.match(psa.stdout, /^c1\|Created\|"sleep 30"$/m, show(psa));
  const byName = await d.docker(['ps', '-a', '-q', '--no-trunc', '--filter', 'name=c1', '--filter', 'status=created']);
  assert.equal(byName.stdout.trim(), id);
  const none = await d.docker(['ps', '-a', '-q', '--filter', 'status=exited']);
  assert.doesNotMatch(none.stdout, new RegExp(id.slice(0, 12)));

  const anon = await d.docker(['create', 'busybox']);
  assert.equal(anon.code, 0, show(anon));
  const anonName = (await d.docker(['inspect', '--format', '{{.Name}}', anon.stdout.trim()])).stdout.trim();
  assert.match(anonName, /^\/[a-z]+_[a-z]+\d?$/);

  const img = await d.docker(['rmi', 'busybox']);
  assert.notEqual(img.code, 0);
  assert.match(img.stderr, /container [a-f0-9]{12} is using its referenced image/);

  const rm = await d.docker(['rm', 'c1', anon.stdout.trim()]);
  assert.equal(rm.code, 0, show(rm));
  const gone = await d.docker(['inspect', 'c1']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /No such object: c1|No such container: c1/);
  const rm2 = await d.docker(['rm', 'c1']);
  assert.match(rm2.stderr, /No such container: c1/);
});

test('create of an image that is not there: 404 No such image', async () => {
  const r = await d.api('POST', '/containers/create', JSON.stringify({ Image: 'nosuch/thing' }));
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.body).message, 'No such image: nosuch/thing:latest');
});

test('records survive a daemon restart', async () => {
  const c = await d.docker(['create', '--name', 'keep', 'busybox', 'true']);
  assert.equal(c.code, 0, show(c));
  await d.restart();
  const ins = await d.docker(['inspect', '--format', '{{.Id}} {{.State.Status}}', 'keep']);
  assert.equal(ins.stdout.trim(), `${c.stdout.trim()} created`, show(ins));
  const rm = await d.docker(['rm', 'keep']);
  assert.equal(rm.code, 0, show(rm));
});

test('docker run --rm busybox echo hello: output, exit 0, container removed', async () => {
  const t0 = Date.now();
  const r = await d.docker(['run', '--rm', 'busybox', 'echo', 'hello']);
  const ms = Date.now() - t0;
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.stderr, '');
  const ps = await d.docker(['ps', '-aq']);
  assert.equal(ps.stdout.trim(), '', show(ps));
  const t1 = Date.now();
  const tr = await d.docker(['run', '--rm', 'busybox', 'true']);
  assert.equal(tr.code, 0, show(tr));
  console.log(`# docker run --rm busybox echo hello: ${ms} ms; docker run --rm busybox true: ${Date.now() - t1} ms`);
});

test('exit codes, stdout and stderr separated, missing command exits 127', async () => {
  const r = await d.docker(['run', '--name', 'three', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  const ins = await d.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'three']);
  assert.equal(ins.stdout.trim(), 'exited 3');
  const ps = await d.docker(['ps', '-a', '--filter', 'name=three', '--format', '{{.Status}}']);
  assert.match(ps.stdout.trim(), /^Exited \(3\) (Less than a second|\d+ seconds?) ago$/);
  const logs = await d.docker(['logs', 'three']);
  assert.equal(logs.stdout, 'out\n');
  assert.equal(logs.stderr, 'err\n');
  assert.equal((await d.docker(['rm', 'three'])).code, 0);

  const miss = await d.docker(['run', '--rm', 'busybox', 'nonexistent-cmd']);
  assert.equal(miss.code, 127, show(miss));
  assert.match(miss.stderr, /executable file not found in \$PATH/);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});

test('run -d, ps, logs, stop, rm', async () => {
  const r = await d.docker(['run', '-d', '--name', 'bg', 'busybox', 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  const ps = await d.docker(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} bg Up (Less than a second|\\d+ seconds?)$`, 'm'), show(ps));
  let logs = '';
  for (let i = 0; i < 50 && !logs.includes('started'); i++) {
    logs = (await d.docker(['logs', 'bg'])).stdout;
    if (!logs.includes('started')) await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(logs, 'started\n');
  const top = await d.docker(['top', 'bg']);
  assert.equal(top.code, 0, show(top));
  assert.match(top.stdout.split('\n')[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
  assert.match(top.stdout, /sh -c echo started; trap/);
  assert.doesNotMatch(top.stdout, /wharfd|conmon|node/);
  const rmRunning = await d.docker(['rm', 'bg']);
  assert.notEqual(rmRunning.code, 0);
  assert.match(rmRunning.stderr, /You cannot remove a running container/);
  const st = await d.docker(['stop', 'bg']);
  assert.equal(st.code, 0, show(st));
  const ins = await d.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'bg']);
  assert.equal(ins.stdout.trim(), 'exited 0');
  assert.equal((await d.docker(['logs', 'bg'])).stdout, 'started\nbye\n');
  const rm = await d.docker(['rm', 'bg']);
  assert.equal(rm.code, 0, show(rm));
});

test('kill and rm -f of a running container', async () => {
  const r = await d.docker(['run', '-d', 'busybox', 'sleep', '60']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  const k = await d.docker(['kill', id]);
  assert.equal(k.code, 0, show(k));
  const w = await d.docker(['wait', id]);
  assert.equal(w.stdout.trim(), '137');
  const r2 = await d.docker(['run', '-d', 'busybox', 'sleep', '60']);
  const f = await d.docker(['rm', '-f', r2.stdout.trim()]);
  assert.equal(f.code, 0, show(f));
  await d.docker(['rm', id]);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});

test('run -i: stdin reaches the container and its end closes it', async () => {
  const r = await d.docker(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'while read l; do echo "got $l"; done; echo done >&2'], { input: 'one\ntwo\n' });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'got one\ngot two\n');
  assert.equal(r.stderr, 'done\n');
});

test('run -t: a terminal inside, output raw (no stdcopy framing)', async () => {
  const r = await d.docker(['run', '--rm', '-t', 'busybox', 'sh', '-c', 'tty; echo err >&2']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, '/dev/pts/0\r\nerr\r\n');
});

test('diff lists the RW layer changes', async () => {
  const r = await d.docker(['run', '--name', 'ch', 'busybox', 'sh', '-c', 'echo x > /tmp/new; rm /etc/group']);
  assert.equal(r.code, 0, show(r));
  const df = await d.docker(['diff', 'ch']);
  assert.equal(df.code, 0, show(df));
  const lines = df.stdout.trim().split('\n');
  for (const want of ['C /etc', 'D /etc/group', 'C /tmp', 'A /tmp/new']) assert.ok(lines.includes(want), show(df));
  assert.ok(!lines.some((l) => /hosts|hostname|resolv/.test(l)), show(df));
  assert.equal((await d.docker(['rm', 'ch'])).code, 0);
});

test('a running container survives a daemon restart and can be stopped after it', async () => {
  const r = await d.docker(['run', '-d', '--name', 'live', 'busybox', 'sleep', '60']);
  assert.equal(r.code, 0, show(r));
  await d.restart();
  const ins = await d.docker(['inspect', '--format', '{{.State.Status}}', 'live']);
  assert.equal(ins.stdout.trim(), 'running', show(ins));
  const st = await d.docker(['stop', '-t', '1', 'live']);
  assert.equal(st.code, 0, show(st));
  const after = await d.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'live']);
  assert.equal(after.stdout.trim(), 'exited 137');
  assert.equal((await d.docker(['rm', 'live'])).code, 0);
});

test('exec: output, stdin, exit code, a missing command', async () => {
  const r = await d.docker(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '60']);
  assert.equal(r.code, 0, show(r));
  const e = await d.docker(['exec', 'ex', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
  assert.equal(e.code, 5, show(e));
  assert.equal(e.stdout, 'out\n');
  assert.equal(e.stderr, 'err\n');
  const i = await d.docker(['exec', '-i', 'ex', 'cat'], { input: 'piped\n' });
  assert.equal(i.code, 0, show(i));
  assert.equal(i.stdout, 'piped\n');
  const w = await d.docker(['exec', 'ex', 'sh', '-c', 'echo made > /tmp/f']);
  assert.equal(w.code, 0, show(w));
  const df = await d.docker(['diff', 'ex']);
  assert.match(df.stdout, /^A \/tmp\/f$/m, show(df));
  const m = await d.docker(['exec', 'ex', 'nonexistent-cmd']);
  assert.equal(m.code, 126, show(m));
  assert.match(m.stdout + m.stderr, /executable file not found in \$PATH/);
  assert.equal((await d.docker(['rm', '-f', 'ex'])).code, 0);
});

test('commit: the RW layer and the changed config become an image that runs', async () => {
  const r = await d.docker(['run', '--name', 'tocommit', 'busybox', 'sh', '-c', 'echo committed > /greeting']);
  assert.equal(r.code, 0, show(r));
  const c = await d.docker(['commit', '-m', 'add greeting', '-c', 'CMD ["cat", "/greeting"]', 'tocommit', 'mine/greet:v1']);
  assert.equal(c.code, 0, show(c));
  assert.match(c.stdout.trim(), /^sha256:[a-f0-9]{64}$/);
  const run = await d.docker(['run', '--rm', 'mine/greet:v1']);
  assert.equal(run.code, 0, show(run));
  assert.equal(run.stdout, 'committed\n');
  const h = await d.docker(['history', '--format', '{{.Comment}}|{{.CreatedBy}}', 'mine/greet:v1']);
  assert.match(h.stdout.split('\n')[0]!, /^add greeting\|sh -c echo committed > \/greeting$/, show(h));
  const base = JSON.parse((await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'busybox'])).stdout);
  const mine = JSON.parse((await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'mine/greet:v1'])).stdout);
  assert.deepEqual(mine.slice(0, -1), base);
  assert.equal(mine.length, base.length + 1);
  assert.equal((await d.docker(['rm', 'tocommit'])).code, 0);
});

test('bridge network: own IP and netns, published port reachable from the host', async () => {
  const ip = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']);
  assert.equal(ip.code, 0, show(ip));
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(ip.stdout);
  assert.ok(m, show(ip));
  assert.match(m![1]!, /^172\.30\./, 'an address on the wharf0 bridge (172.30.0.0/16), not the host\'s');
  const r = await d.docker(['run', '-d', '--name', 'web', '-p', '127.0.0.1::80', 'busybox', 'sh', '-c', 'mkdir /www && echo served > /www/index.html && httpd -f -p 80 -h /www']);
  assert.equal(r.code, 0, show(r));
  const port = await d.docker(['port', 'web', '80']);
  const pm = /^127\.0\.0\.1:(\d+)$/m.exec(port.stdout);
  assert.ok(pm, show(port));
  const addr = (await d.docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
  assert.match(addr, /^\d+\.\d+\.\d+\.\d+$/);
  let body = '';
  for (let i = 0; i < 40 && body !== 'served\n'; i++) {
    body = await fetch(`http://127.0.0.1:${pm[1]}/`).then((x) => x.text()).catch(() => '');
    if (body !== 'served\n') await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(body, 'served\n');
  assert.equal((await d.docker(['rm', '-f', 'web'])).code, 0);
});

test('pause/unpause, restart, rename, prune', async () => {
  const r = await d.docker(['run', '-d', '--name', 'pz', 'busybox', 'sh', '-c', 'echo run; sleep 60']);
  assert.equal(r.code, 0, show(r));
  assert.equal((await d.docker(['pause', 'pz'])).code, 0);
  const st = await d.docker(['ps', '--filter', 'name=pz', '--format', '{{.Status}}']);
  assert.match(st.stdout.trim(), /^Up .* \(Paused\)$/, show(st));
  assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', 'pz'])).stdout.trim(), 'paused');
  const pzRm = await d.docker(['run', '-d', 'busybox', 'sleep', '60']);
  assert.equal((await d.docker(['pause', pzRm.stdout.trim()])).code, 0);
  const rmPaused = await d.docker(['rm', '-f', pzRm.stdout.trim()]);
  assert.equal(rmPaused.code, 0, show(rmPaused));
  assert.equal((await d.docker(['unpause', 'pz'])).code, 0);
  assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', 'pz'])).stdout.trim(), 'running');
  const rn = await d.docker(['rename', 'pz', 'pz2']);
  assert.equal(rn.code, 0, show(rn));
  assert.equal((await d.docker(['inspect', '--format', '{{.Name}}', r.stdout.trim()])).stdout.trim(), '/pz2');
  const rs = await d.docker(['restart', '-t', '0', 'pz2']);
  assert.equal(rs.code, 0, show(rs));
  assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', 'pz2'])).stdout.trim(), 'running');
  let logs = '';
  for (let i = 0; i < 40 && logs !== 'run\nrun\n'; i++) {
    logs = (await d.docker(['logs', 'pz2'])).stdout;
    if (logs !== 'run\nrun\n') await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(logs, 'run\nrun\n');
  const stopped = await d.docker(['create', 'busybox', 'true']);
  const pr = await d.docker(['container', 'prune', '-f']);
  assert.equal(pr.code, 0, show(pr));
  assert.match(pr.stdout, new RegExp(stopped.stdout.trim()));
  assert.equal((await d.docker(['ps', '-aq', '--no-trunc'])).stdout.trim(), r.stdout.trim());
  assert.equal((await d.docker(['rm', '-f', 'pz2'])).code, 0);
});

test('bind mounts: -v host:ctr read-write and :ro, shown in inspect', async () => {
  const host = join(d.dir, 'bind-src');
  const r = await d.docker(['run', '--name', 'bm', '-v', `${host}:/data`, '-v', `${host}:/ro:ro`, 'busybox', 'sh', '-c', 'echo written > /data/f; cat /ro/f; echo x > /ro/g || echo refused']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'written\nrefused\n');
  assert.equal(await readFile(join(host, 'f'), 'utf8'), 'written\n');
  const m = JSON.parse((await d.docker(['inspect', '--format', '{{json .Mounts}}', 'bm'])).stdout);
  // dockerd lists Mounts in map order (unordered): compare them sorted by destination.
  const rows = m.map((x: { Source: string; Destination: string; RW: boolean }) => [x.Source, x.Destination, x.RW])
    .sort((a: [string, string], b: [string, string]) => a[1].localeCompare(b[1]));
  assert.deepEqual(rows, [[host, '/data', true], [host, '/ro', false]]);
  assert.equal((await d.docker(['rm', 'bm'])).code, 0);
});

test('logs -f follows a running container to its end', async () => {
  const r = await d.docker(['run', '-d', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo $i; sleep 0.1; done']);
  assert.equal(r.code, 0, show(r));
  const f = await d.docker(['logs', '-f', r.stdout.trim()], { timeoutMs: 10000 });
  assert.equal(f.code, 0, show(f));
  assert.equal(f.stdout, '1\n2\n3\n');
  assert.equal((await d.docker(['rm', r.stdout.trim()])).code, 0);
});

test('restart policies: on-failure:2 retries twice; always comes back after a daemon restart, not after stop', async () => {
  const r = await d.docker(['run', '-d', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo x; exit 1']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  let st = '';
  for (let i = 0; i < 100 && st !== 'exited 2 1'; i++) {
    st = (await d.docker(['inspect', '--format', '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}', id])).stdout.trim();
    if (st !== 'exited 2 1') await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(st, 'exited 2 1');
  assert.equal((await d.docker(['logs', id])).stdout, 'x\nx\nx\n');
  assert.equal((await d.docker(['rm', id])).code, 0);

  const a = await d.docker(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sleep', '60']);
  assert.equal(a.code, 0, show(a));
  assert.equal((await d.docker(['stop', '-t', '0', 'always'])).code, 0);
  // the point: a while after a manual stop, `always` has not restarted it
  await sleep(300);
  assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', 'always'])).stdout.trim(), 'exited');
  await d.restart();
  assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', 'always'])).stdout.trim(), 'running');
  assert.equal((await d.docker(['rm', '-f', 'always'])).code, 0);
});

test('cp out of a container: a file, a directory, symlinks stay inside the container', async () => {
  const r = await d.docker(['run', '--name', 'cpsrc', 'busybox', 'sh', '-c', 'mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && ln -s /etc/passwd /out/link']);
  assert.equal(r.code, 0, show(r));
  const dest = join(d.dir, 'cp-dest');
  await import('node:fs/promises').then((fs) => fs.mkdir(dest, { recursive: true }));
  const f = await d.docker(['cp', 'cpsrc:/out/a', join(dest, 'a.txt')]);
  assert.equal(f.code, 0, show(f));
  assert.equal(await readFile(join(dest, 'a.txt'), 'utf8'), 'one\n');
  const dir = await d.docker(['cp', 'cpsrc:/out', dest]);
  assert.equal(dir.code, 0, show(dir));
  assert.equal(await readFile(join(dest, 'out', 'sub', 'b'), 'utf8'), 'two\n');
  const { readlink } = await import('node:fs/promises');
  assert.equal(await readlink(join(dest, 'out', 'link')), '/etc/passwd');
  const follow = await d.docker(['cp', '-L', 'cpsrc:/out/link', join(dest, 'passwd')]);
  assert.equal(follow.code, 0, show(follow));
  assert.match(await readFile(join(dest, 'passwd'), 'utf8'), /^root:x:0:0:/);
  assert.equal(await readFile(join(dest, 'passwd'), 'utf8'), (await d.docker(['run', '--rm', 'busybox', 'cat', '/etc/passwd'])).stdout);
  const miss = await d.docker(['cp', 'cpsrc:/nope', dest]);
  assert.notEqual(miss.code, 0);
  assert.match(miss.stderr, /Could not find the file \/nope in container cpsrc/);
  assert.equal((await d.docker(['rm', 'cpsrc'])).code, 0);
});

test('--default-runtime: a path to runc runs containers; crun is used when chosen (or names itself when the host refuses it)', async () => {
  const byPath = await startDaemon({ extraArgs: ['--default-runtime', '/usr/sbin/runc'] });
  try {
    assert.equal((await byPath.wharf(['image', 'bootstrap', 'busybox'])).code, 0);
    const info = await byPath.docker(['info', '--format', '{{.DefaultRuntime}} {{json .Runtimes}}']);
    assert.equal(info.stdout, 'runc {"runc":{"path":"/usr/sbin/runc"}}\n');
    const r = await byPath.docker(['run', '--rm', 'busybox', 'echo', 'via path']);
    assert.equal(r.stdout, 'via path\n', show(r));
  } finally {
    await byPath.stop();
  }
  const crun = await startDaemon({ extraArgs: ['--default-runtime', 'crun'] });
  try {
    assert.equal((await crun.wharf(['image', 'bootstrap', 'busybox'])).code, 0);
    assert.equal((await crun.docker(['info', '--format', '{{.DefaultRuntime}}'])).stdout, 'crun\n');
    const r = await crun.docker(['run', '--rm', 'busybox', 'echo', 'via crun']);
    // crun refuses hosts with cgroup v1 + hybrid v2 controllers ("cgroups in hybrid mode not supported"):
    // then the error must be crun's own, proving crun (not runc) was asked
    if (r.code === 0) assert.equal(r.stdout, 'via crun\n');
    else {
      assert.equal(r.code, 125, show(r));
      assert.match(r.stderr, /OCI runtime create failed: crun create failed: /);
      assert.equal((await crun.docker(['ps', '-aq'])).stdout, '', 'a failed start leaves no container behind with --rm');
    }
  } finally {
    await crun.stop();
  }
});
