/**
 * The wharf CLI's container management commands against a real wharfd, compared line for line with the real
 * docker CLI on the same daemon: the tutorial's web-server story (ps, port, diff, commit, history, top, kill,
 * stop, rm), ps filters/format/-q/-l/-n, pause/unpause, rename, container prune, and errors per container.
 */
// wharf-test: alone
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';
import { freePort } from '../support/registry.js';

let d: Daemon;
before(async () => {
  d = await startDaemon();
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
});
after(async () => { await d?.stop(); });

/** The same command through both CLIs: equal exit status, stdout and stderr (with "wharf" for "docker"). */
async function same(args: string[], mask: (s: string) => string = (s) => s): Promise<RunResult> {
  const norm = (s: string) => mask(s.replace(/\bdocker\b/g, 'wharf'));
  let w = await d.wharf(args);
  let k = await d.docker(args);
  // Times ("1 second ago", "Up 2 seconds") are read by each CLI when it runs: two runs that straddle a second
  // boundary differ by one. Such a pair is taken again (twice at most); a real difference stays.
  for (let i = 0; i < 2 && (w.code !== k.code || norm(w.stdout) !== norm(k.stdout) || norm(w.stderr) !== norm(k.stderr)); i++) {
    w = await d.wharf(args);
    k = await d.docker(args);
  }
  assert.equal(w.code, k.code, `exit of ${args.join(' ')}\nwharf: ${show(w)}\ndocker: ${show(k)}`);
  assert.equal(norm(w.stdout), norm(k.stdout), `stdout of ${args.join(' ')}`);
  assert.equal(norm(w.stderr), norm(k.stderr), `stderr of ${args.join(' ')}`);
  return w;
}

/** GET with a few retries: the port proxy may reset a connection while the server inside starts or restarts. */
async function fetchPage(port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 20; i++) {
    try { return await get(port, '/'); } catch (e) { last = e; await new Promise((r) => setTimeout(r, 100)); }
  }
  throw last;
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => resolve(b));
    }).on('error', reject).end();
  });
}

test('the web-server story: ps, port, exec, diff, commit, history, top, kill, stop, rm', async () => {
  const port = await freePort();
  const c1 = await d.wharf(['create', '-it', '--name', 'c1', 'busybox']);
  assert.match(c1.stdout, /^[a-f0-9]{64}\n$/, show(c1));
  const st = await d.wharf(['start', 'c1']);
  assert.equal(st.stdout, 'c1\n');
  const web = await d.wharf(['run', '--name', 'webserver', '-d', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir -p /www && echo hi > /www/index.html && httpd -f -p 80 -h /www']);
  assert.equal(web.code, 0, show(web));
  const id = web.stdout.trim();
  let page = '';
  for (let i = 0; i < 50 && page !== 'hi\n'; i++) { page = await get(port, '/').catch(() => ''); if (page !== 'hi\n') await new Promise((r) => setTimeout(r, 100)); }
  assert.equal(page, 'hi\n');

  const ps = await same(['ps', '-a']);
  const lines = ps.stdout.split('\n');
  assert.match(lines[0]!, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
  assert.ok(lines.some((l) => l.startsWith(id.slice(0, 12)) && l.includes(`"sh -c 'mkdir -p /ww…"`) && l.includes(`0.0.0.0:${port}->80/tcp`) && l.endsWith('webserver')), ps.stdout);
  await same(['ps', '-q']);
  await same(['ps', '-a', '-l', '--format', '{{.Names}} {{.Image}} {{.Ports}}']);
  await same(['ps', '-a', '-n', '1', '-q', '--no-trunc']);
  await same(['ps', '-a', '--filter', 'name=c1', '--format', '{{.ID}}\t{{.Command}}\t{{.State}}']);
  await same(['ps', '--format', 'json'], (s) => s.replace(/"RunningFor":"[^"]*"/g, '').replace(/"Status":"[^"]*"/g, ''));
  await same(['port', 'webserver']);
  await same(['port', 'webserver', '80/tcp']);
  await same(['port', 'webserver', '81']);

  const ex = await d.wharf(['exec', 'webserver', 'sh', '-c', "echo '<h1>Hello, Docker!</h1>' > /www/index.html"]);
  assert.equal(ex.code, 0, show(ex));
  assert.equal(await fetchPage(port), '<h1>Hello, Docker!</h1>\n');
  const diff = await same(['diff', 'webserver']);
  assert.equal(diff.stdout, 'A /www\nA /www/index.html\n');
  const top = await same(['top', 'webserver'], (s) => s.replace(/\d+/g, 'N').replace(/ +/g, ' '));
  // the transcript's header line, byte for byte
  assert.equal(top.stdout.split('\n')[0], 'UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD');
  assert.match(top.stdout, /httpd -f -p 80 -h \/www/);

  const cm = await d.wharf(['commit', '--author', 'T <t@example.com>', '--message', 'changed page', 'webserver', 'nginx:v2']);
  assert.match(cm.stdout, /^sha256:[a-f0-9]{64}\n$/, show(cm));
  const hist = await d.wharf(['history', '--format', '{{.CreatedBy}}|{{.Comment}}', '--no-trunc', 'nginx:v2']);
  assert.equal(hist.stdout.split('\n')[0], `sh -c mkdir -p /www && echo hi > /www/index.html && httpd -f -p 80 -h /www|changed page`);
  const author = await d.wharf(['inspect', '--format', '{{.Author}}', 'nginx:v2']);
  assert.equal(author.stdout, 'T <t@example.com>\n');
  const port2 = await freePort();
  // (its own CMD would write "hi" again: serve the committed page as it is)
  const v2 = await d.wharf(['run', '-d', '--name', 'web2', '-p', `${port2}:80`, 'nginx:v2', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.equal(v2.code, 0, show(v2));
  let page2 = '';
  for (let i = 0; i < 50 && !page2.includes('Hello'); i++) { page2 = await get(port2, '/').catch(() => ''); if (!page2.includes('Hello')) await new Promise((r) => setTimeout(r, 100)); }
  assert.equal(page2, '<h1>Hello, Docker!</h1>\n', 'the committed image serves the edited page');

  const kill = await d.wharf(['kill', '--signal=SIGINT', 'webserver']);
  assert.deepEqual([kill.code, kill.stdout], [0, 'webserver\n'], show(kill));
  const stop = await d.wharf(['stop', '-t', '1', 'c1', 'web2']);
  assert.deepEqual([stop.code, stop.stdout], [0, 'c1\nweb2\n'], show(stop));
  const rmBad = await d.wharf(['rm', 'c1', 'no-such']);
  assert.deepEqual([rmBad.code, rmBad.stdout, rmBad.stderr], [1, 'c1\n', 'Error response from daemon: No such container: no-such\n'], show(rmBad));
  await same(['rm', 'no-such', 'nor-this']);
});

test('pause, unpause, rename, restart, rm -f, container prune', async () => {
  const r = await d.wharf(['run', '-d', '--name', 'p1', 'busybox', 'sleep', '60']);
  assert.equal(r.code, 0, show(r));
  assert.equal((await d.wharf(['pause', 'p1'])).stdout, 'p1\n');
  const st = await d.wharf(['ps', '--filter', 'name=p1', '--format', '{{.State}} {{.Status}}']);
  assert.match(st.stdout, /^paused Up .* \(Paused\)\n$/, show(st));
  assert.equal((await d.wharf(['unpause', 'p1'])).stdout, 'p1\n');
  const ren = await d.wharf(['rename', 'p1', 'p2']);
  assert.deepEqual([ren.code, ren.stdout], [0, ''], show(ren));
  const names = await d.wharf(['ps', '--format', '{{.Names}}']);
  assert.match(names.stdout, /^p2$/m);
  const rs = await d.wharf(['restart', '-t', '0', 'p2']);
  assert.deepEqual([rs.code, rs.stdout], [0, 'p2\n'], show(rs));
  const rmRunning = await d.wharf(['rm', 'p2']);
  assert.equal(rmRunning.code, 1);
  assert.match(rmRunning.stderr, /^Error response from daemon: You cannot remove a running container [a-f0-9]{64}\. Stop the container before attempting removal or force remove\n$/);
  assert.equal((await d.wharf(['rm', '-f', 'p2'])).stdout, 'p2\n');

  const ex = await d.wharf(['run', 'busybox', 'true']);
  assert.equal(ex.code, 0, show(ex));
  const all = await d.wharf(['ps', '-aq', '--no-trunc', '--filter', 'status=exited']);
  const exited = all.stdout.trim().split('\n').filter(Boolean);
  assert.ok(exited.length >= 1);
  const prune = await d.wharf(['container', 'prune', '-f']);
  assert.equal(prune.code, 0, show(prune));
  assert.match(prune.stdout, /^Deleted Containers:\n(?:[a-f0-9]{64}\n)+\nTotal reclaimed space: \S+\n$/, show(prune));
  for (const e of exited) assert.ok(prune.stdout.includes(e));
  const none = await d.wharf(['container', 'prune', '-f']);
  assert.equal(none.stdout, 'Total reclaimed space: 0B\n');
  const cancelled = await d.wharf(['container', 'prune'], { input: 'n\n' });
  assert.deepEqual([cancelled.code, cancelled.stdout], [0, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '], show(cancelled));
});
