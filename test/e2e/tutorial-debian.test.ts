/**
 * The Docker tutorial's web-server story on a real Debian: a debootstrapped debian:bookworm pushed to a local
 * registry and pulled back, `RUN apt-get update && apt-get install nginx` in a classic build (the step's
 * container reaches the host's Debian mirror through the bridge's NAT), then run -d -p, exec -it bash at a
 * terminal, an edit, diff, commit --author --message, history, and the new image on another port.
 *
 * Needs the Debian mirror of the host's APT sources (debootstrap and apt-get): skipped when it does not answer.
 */
// wharf-test: slow
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { NODE, WHARF_CLI, show } from '../support/cli.js';
import { freePort, startRegistry, type Registry } from '../support/registry.js';
import { underPty } from '../support/pty.js';

let d: Daemon | undefined;
let reg: Registry | undefined;
let work: string;
let skip: string | false = false;
let debian = '';

async function mirrorAnswers(): Promise<string | false> {
  const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => readFile('/etc/apt/sources.list', 'utf8').catch(() => ''));
  const m = (/^URIs:\s*(\S+)/m.exec(sources) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(sources))?.[1];
  if (!m) return 'no Debian mirror in the host\'s APT sources';
  const res = await fetch(`${m.replace(/\/$/, '')}/dists/bookworm/Release`, { method: 'HEAD', signal: AbortSignal.timeout(5000) }).catch(() => null);
  return res && res.status < 400 ? false : `the Debian mirror ${m} does not answer`;
}

before(async () => {
  skip = await mirrorAnswers();
  if (!skip && !existsSync('/usr/sbin/debootstrap')) skip = 'debootstrap is not installed';
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-e2e-tutorial-'));
  [d, reg] = await Promise.all([startDaemon(), startRegistry()]);
  const b = await d.wharf(['image', 'bootstrap', 'debian:bookworm']);
  assert.equal(b.code, 0, show(b));
  // through the local registry, as a user would get it
  debian = `${reg.host}/library/debian:bookworm`;
  assert.equal((await d.docker(['tag', 'debian:bookworm', debian])).code, 0);
  const p = await d.docker(['push', debian]);
  assert.equal(p.code, 0, show(p));
  assert.equal((await d.docker(['rmi', debian, 'debian:bookworm'])).code, 0);
  const pl = await d.docker(['pull', debian]);
  assert.equal(pl.code, 0, show(pl));
  assert.match(pl.stdout, /Status: Downloaded newer image for /);
});
after(async () => {
  await d?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('RUN apt-get update && apt-get install nginx in a classic build, through the bridge\'s NAT to the host\'s mirror', { timeout: 600_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const ctx = join(work, 'nginx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), [
    `FROM ${debian}`,
    'RUN apt-get update && apt-get install -y --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*',
    'RUN echo "<h1>served by wharf</h1>" > /var/www/html/index.html',
    'EXPOSE 80',
    'CMD ["nginx", "-g", "daemon off;"]',
  ].join('\n') + '\n');
  const r = await d!.docker(['build', '-t', 'nginx:v1', ctx]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Setting up nginx-light/);
  assert.match(r.stdout, /Successfully tagged nginx:v1\n/);
});

test('the web server: run -d -p, exec -it bash at a terminal, diff, commit --author --message, history, the new image on another port', { timeout: 300_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const [p1, p2] = [await freePort(), await freePort()];
  const r = await d!.docker(['run', '--name', 'webserver', '-d', '-p', `${p1}:80`, 'nginx:v1']);
  assert.equal(r.code, 0, show(r));
  try {
    assert.match(await get(`http://127.0.0.1:${p1}/`), /served by wharf/);
    // a person at a terminal: exec -it webserver bash, edit the page, exit
    const s = await underPty(d!.host, work, [NODE, WHARF_CLI, 'exec', '-it', 'webserver', 'bash'], [
      'echo "<h1>Hello, wharf tutorial</h1>" > /usr/share/nginx/html/index.html; cp /usr/share/nginx/html/index.html /var/www/html/index.html; echo edited-$((40+2))\r',
      'exit\r',
    ]);
    assert.equal(s.code, 0, s.out);
    assert.match(s.out, /root@[0-9a-f]{12}:\/# /, 'bash prompt of the container');
    assert.match(s.out, /edited-42/);
    assert.match(await get(`http://127.0.0.1:${p1}/`), /Hello, wharf tutorial/);

    const diff = await d!.docker(['diff', 'webserver']);
    assert.equal(diff.code, 0, show(diff));
    for (const line of ['C /var/www/html/index.html', 'C /usr/share/nginx/html/index.html', 'C /root', 'A /root/.bash_history']) {
      assert.ok(diff.stdout.split('\n').includes(line), `${line} in:\n${diff.stdout}`);
    }
    const c = await d!.docker(['commit', '--author', 'Wharf Tester <t@example.com>', '--message', 'hello page', 'webserver', 'nginx:v2']);
    assert.equal(c.code, 0, show(c));
    const h = await d!.docker(['history', '--format', '{{.CreatedBy}}|{{.Comment}}', '--no-trunc', 'nginx:v2']);
    assert.equal(h.stdout.split('\n')[0], 'nginx -g daemon off;|hello page');
    assert.equal((await d!.docker(['inspect', '--format', '{{.Author}}', 'nginx:v2'])).stdout, 'Wharf Tester <t@example.com>\n');
    const layers = async (img: string) => JSON.parse((await d!.docker(['inspect', '--format', '{{json .RootFS.Layers}}', img])).stdout) as string[];
    assert.equal((await layers('nginx:v2')).length, (await layers('nginx:v1')).length + 1, 'commit adds exactly one layer');

    const r2 = await d!.docker(['run', '--name', 'webserver2', '-d', '-p', `${p2}:80`, 'nginx:v2']);
    assert.equal(r2.code, 0, show(r2));
    assert.match(await get(`http://127.0.0.1:${p2}/`), /Hello, wharf tutorial/);
    const rmi = await d!.docker(['rmi', 'nginx:v2']);
    assert.equal(rmi.code, 1);
    assert.match(rmi.stderr, /conflict: unable to remove repository reference "nginx:v2" \(must force\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}/);
  } finally {
    await d!.docker(['rm', '-f', 'webserver', 'webserver2']);
  }
});

async function get(url: string): Promise<string> {
  const end = Date.now() + 20_000;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      if (res.status === 200) return await res.text();
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer: ${String(last)}`);
}
