/**
 * Container behaviours the tutorials rely on, each through the wharf CLI and the real docker CLI against one
 * wharfd: the image's STOPSIGNAL for `stop`, --env-file, -P, --hostname, `ps -f ancestor=`, containers reaching
 * each other by IP on the bridge, --network none, a host port already in use, `logs -t`, the sandbox inside
 * (seccomp filter, read-only /proc/sys, managed /etc/hosts and resolv.conf), and outbound traffic through the
 * bridge's NAT with the host's DNS (this one needs the Debian mirror and is skipped when it does not answer).
 */
// wharf-test: alone
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show, type RunResult } from '../support/cli.js';
import { freePort } from '../support/registry.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
let work: string;
type Cli = 'wharf' | 'docker';
const CLIS: Cli[] = ['wharf', 'docker'];
const cli = (c: Cli, args: string[]): Promise<RunResult> => (c === 'wharf' ? d.wharf(args) : d.docker(args));

before(async () => {
  d = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-ctrmore-'));
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  // an image whose STOPSIGNAL is trapped by its command: stop must send SIGUSR1, not SIGTERM
  const ctx = join(work, 'sig');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), [
    'FROM busybox',
    'EXPOSE 80 8080/udp',
    'LABEL from.image=yes',
    'STOPSIGNAL SIGUSR1',
    'CMD ["sh", "-c", "trap \\"echo got USR1; exit 3\\" USR1; httpd -p 80 -h /etc; while :; do sleep 0.1; done"]',
  ].join('\n') + '\n');
  const bl = await d.docker(['build', '-q', '-t', 'sig:1', ctx]);
  assert.equal(bl.code, 0, show(bl));
});
after(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('stop sends the image\'s STOPSIGNAL (the container exits through its trap, not SIGKILL); labels and exposed ports merge with the image\'s', async () => {
  for (const c of CLIS) {
    const name = `sig-${c}`;
    const r = await cli(c, ['run', '-d', '--name', name, '--label', 'from.run=yes', '--expose', '9000', 'sig:1']);
    assert.equal(r.code, 0, show(r));
    const cfg = await d.docker(['inspect', '--format', '{{.Config.StopSignal}} {{json .Config.Labels}} {{json .Config.ExposedPorts}}', name]);
    assert.equal(cfg.stdout, 'SIGUSR1 {"from.image":"yes","from.run":"yes"} {"80/tcp":{},"8080/udp":{},"9000/tcp":{}}\n');
    await waitFor(async () => /httpd/.test((await d.docker(['exec', name, 'ps'])).stdout), { interval: 100 });
    const t0 = Date.now();
    const s = await cli(c, ['stop', name]);
    assert.equal(s.code, 0, show(s));
    assert.ok(Date.now() - t0 < 8000, `stop took ${Date.now() - t0} ms: the signal was not the image's`);
    assert.equal((await d.docker(['inspect', '--format', '{{.State.ExitCode}}', name])).stdout, '3\n');
    assert.equal((await d.docker(['logs', name])).stdout, 'got USR1\n');
    await d.docker(['rm', name]);
  }
});

test('--env-file, --hostname, -P, and ps -f ancestor= (which matches images built on the ancestor)', async () => {
  const envFile = join(work, 'env.list');
  await writeFile(envFile, '# a comment\nA=1\nB=two words\n\nFROM_HOST\n');
  for (const c of CLIS) {
    const r = await cli(c, ['run', '--rm', '--env-file', envFile, '--hostname', 'myhost', 'busybox', 'sh', '-c', 'echo "$A|$B|${FROM_HOST:-unset}|$(hostname)"']);
    assert.equal(r.code, 0, show(r));
    // a bare name in an env file takes the value from the CLI's environment when it is set there
    assert.equal(r.stdout, '1|two words|unset|myhost\n');

    const name = `pub-${c}`;
    const p = await cli(c, ['run', '-d', '--name', name, '-P', 'sig:1']);
    assert.equal(p.code, 0, show(p));
    const port = await cli(c, ['port', name, '80/tcp']);
    const m = /^0\.0\.0\.0:(\d+)$/m.exec(port.stdout);
    assert.ok(m, show(port));
    const udp = await cli(c, ['port', name, '8080/udp']);
    assert.match(udp.stdout, /^0\.0\.0\.0:\d+$/m, 'every exposed port is published, udp too');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${m![1]}/hostname`).catch(() => null))?.status === 200, { interval: 100 });
    const res = await fetch(`http://127.0.0.1:${m![1]}/hostname`);
    const id = (await d.docker(['inspect', '--format', '{{.Id}}', name])).stdout.trim();
    assert.equal((await res.text()).trim(), id.slice(0, 12));

    const anc = await cli(c, ['ps', '-f', 'ancestor=busybox', '--format', '{{.Names}}']);
    assert.ok(anc.stdout.split('\n').includes(name), `sig:1 is built FROM busybox: ${show(anc)}`);
    const none = await cli(c, ['ps', '-a', '-f', 'ancestor=sig:1', '-f', 'name=nothing-like-this', '-q']);
    assert.equal(none.stdout, '');
    await d.docker(['rm', '-f', name]);
  }
});

test('containers reach each other by IP on the bridge; --network none has only loopback', async () => {
  const w = await d.docker(['run', '-d', '--name', 'peer-web', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  assert.equal(w.code, 0, show(w));
  try {
    const ip = (await d.docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'peer-web'])).stdout.trim();
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    for (const c of CLIS) {
      let r: RunResult = { code: -1, stdout: '', stderr: '' };
      await waitFor(async () => (r = await cli(c, ['run', '--rm', 'busybox', 'wget', '-q', '-O-', `http://${ip}/hostname`])).code === 0, { interval: 100, message: `${c} run wget http://${ip}/` })
        .catch((e: Error) => assert.fail(`${e.message}: ${show(r)}`));
      assert.equal(r.stdout.trim(), (await d.docker(['inspect', '--format', '{{.Config.Hostname}}', 'peer-web'])).stdout.trim(), show(r));
      const n = await cli(c, ['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net; wget -q -T 2 -O- http://' + ip + '/hostname || echo unreachable']);
      assert.equal(n.stdout, 'lo\nunreachable\n', show(n));
    }
  } finally {
    await d.docker(['rm', '-f', 'peer-web']);
  }
});

test('a host port already in use: docker\'s message, exit 125, the container left Created (as docker leaves it)', async () => {
  const port = await freePort();
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(port, '0.0.0.0', () => r()));
  try {
    for (const c of CLIS) {
      const name = `busy-${c}`;
      const r = await cli(c, ['run', '-d', '--name', name, '-p', `${port}:80`, 'busybox', 'httpd', '-f', '-p', '80']);
      assert.equal(r.code, 125, show(r));
      assert.match(r.stderr, new RegExp(`Error response from daemon: driver failed programming external connectivity on endpoint ${name} \\([a-f0-9]{64}\\): Error starting userland proxy: listen tcp4 0\\.0\\.0\\.0:${port}: bind: address already in use`));
      assert.equal((await d.docker(['ps', '-a', '-f', `name=^/${name}$`, '--format', '{{.Status}}'])).stdout, 'Created\n');
      await d.docker(['rm', name]);
    }
  } finally {
    srv.close();
  }
});

test('logs -t prefixes RFC 3339 nanosecond timestamps; --tail keeps the last lines', async () => {
  const r = await d.docker(['run', '--name', 'stamped', 'busybox', 'sh', '-c', 'echo one; echo two; echo three >&2']);
  assert.equal(r.code, 0, show(r));
  try {
    for (const c of CLIS) {
      const l = await cli(c, ['logs', '-t', 'stamped']);
      assert.match(l.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z one\n\S+Z two\n$/, "RFC 3339 with nanoseconds, trailing zeros trimmed as Go does");
      assert.match(l.stderr, /^\S+Z three\n$/);
      const t = await cli(c, ['logs', '--tail', '1', 'stamped']);
      assert.equal(t.stdout + t.stderr, 'three\n');
    }
  } finally {
    await d.docker(['rm', 'stamped']);
  }
});

test('inside: a seccomp filter, read-only /proc/sys, /etc/hosts with the container\'s name and IP, the host\'s resolv.conf', async () => {
  const hostResolv = await readFile('/etc/resolv.conf', 'utf8');
  const ns = hostResolv.split('\n').filter((l) => /^nameserver\s/.test(l) && !/\b127\.|::1/.test(l));
  for (const c of CLIS) {
    const r = await cli(c, ['run', '--rm', '--hostname', 'inside', 'busybox', 'sh', '-c',
      'grep ^Seccomp: /proc/self/status; grep " /proc/sys " /proc/self/mountinfo | grep -c " ro,"; ' +
      'echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo read-only; ' +
      'ip -4 -o addr show eth0 | awk \'{print $4}\'; grep inside /etc/hosts; grep ^nameserver /etc/resolv.conf']);
    assert.equal(r.code, 0, show(r));
    const out = r.stdout.split('\n');
    assert.equal(out[0], 'Seccomp:\t2', 'a seccomp filter is in place');
    assert.equal(out[1], '1', '/proc/sys is mounted read-only');
    assert.equal(out[2], 'read-only');
    const ip = out[3]!.split('/')[0];
    assert.equal(out[4], `${ip}\tinside`);
    if (ns.length) assert.deepEqual(out.slice(5).filter(Boolean), ns.map((l) => l.trim().replace(/\s+/, ' ')), 'nameservers from the host');
  }
});

test('outbound traffic from a bridged container reaches the host\'s Debian mirror through NAT, names resolved by the host\'s DNS (needs the mirror)', async (t) => {
  const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => readFile('/etc/apt/sources.list', 'utf8').catch(() => ''));
  const mirror = (/^URIs:\s*(\S+)/m.exec(sources) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(sources))?.[1]?.replace(/^https:/, 'http:').replace(/\/$/, '');
  if (!mirror) return t.skip('no Debian mirror configured on this host');
  const probe = await fetch(`${mirror}/dists/`, { method: 'HEAD', signal: AbortSignal.timeout(5000) }).catch(() => null);
  if (!probe || probe.status >= 500) return t.skip(`the Debian mirror ${mirror} does not answer`);
  const u = new URL(mirror);
  // the name is resolved inside the container (busybox nslookup asks the nameservers of the host's resolv.conf,
  // through the bridge's NAT), then a plain HTTP/1.1 request goes out by nc (the host's static busybox wget
  // cannot resolve names: glibc's NSS is not in the image)
  const script = `ip=$(nslookup ${u.hostname} | awk '/^Address: /{print $2}' | tail -n 1); echo "resolved $ip"; ` +
    `(printf 'GET ${u.pathname}/dists/bookworm/Release HTTP/1.1\\r\\nHost: ${u.host}\\r\\nConnection: close\\r\\n\\r\\n'; sleep 4) | nc -w 10 "$ip" ${u.port || 80} | head -n 20`;
  for (const c of CLIS) {
    const r = await cli(c, ['run', '--rm', 'busybox', 'sh', '-c', script]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^resolved \d+\.\d+\.\d+\.\d+$/m, show(r));
    assert.match(r.stdout, /^HTTP\/1\.[01] 200/m, show(r));
    assert.match(r.stdout, /^(Origin|Label): Debian\r?$/m, show(r));
  }
});


test('commit pauses a running container while it reads its changes (the default), not with --pause=false', async () => {
  for (const c of CLIS) {
    const name = `busy-writer-${c}`;
    // thousands of files make the read of the changes long enough to see the pause from outside
    const r = await cli(c, ['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'mkdir /many && cd /many && seq 1 2500 | xargs touch && seq 1 500 | sed s/^/d/ | xargs mkdir && touch /done && sleep 600']);
    assert.equal(r.code, 0, show(r));
    try {
      await waitFor(async () => (await d.docker(['exec', name, 'ls', '/done'])).code === 0, { timeout: 60_000, interval: 100 });
      for (const [flags, expectPause] of [[[] as string[], true], [['--pause=false'], false]] as const) {
        let seen = false;
        let committing = true;
        const watch = (async () => {
          while (committing) {
            const s = await d.api('GET', `/containers/${name}/json`);
            if (s.status === 200 && (JSON.parse(s.body) as { State: { Paused: boolean } }).State.Paused) seen = true;
            await new Promise((res) => setTimeout(res, 25));
          }
        })();
        const cm = await cli(c, ['commit', ...flags, name, `paused-${c}:${expectPause}`]);
        committing = false;
        await watch;
        assert.equal(cm.code, 0, show(cm));
        assert.equal(seen, expectPause, `paused during commit ${flags.join(' ') || '(default)'}`);
        assert.equal((await d.docker(['inspect', '--format', '{{.State.Status}}', name])).stdout, 'running\n', 'running again after the commit');
      }
    } finally {
      await d.docker(['rm', '-f', name]);
    }
  }
});
