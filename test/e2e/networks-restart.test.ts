/**
 * User-defined networks survive `kill -9` of wharfd: after a restart the network, its running containers, their
 * addresses and names (aardvark-dns outlives the daemon) are all found again, a published port answers again (the
 * userland proxy is bound by the new daemon), and stopping the containers afterwards tears down what the killed
 * daemon set up, leaving nothing on the host.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { loadBusybox, startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

let d: Daemon;
const tag = `r${process.pid.toString(36)}`;
const n = (s: string): string => `${tag}-${s}`;

before(async () => {
  d = await startDaemon();
  await loadBusybox(d);
});
after(async () => {
  await d?.docker(['rm', '-f', n('web'), n('cli')]).catch(() => {});
  await d?.docker(['network', 'rm', n('net')]).catch(() => {});
  await d?.stop();
});

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 3000 }, (res) => {
      let s = '';
      res.on('data', (c: Buffer) => { s += c.toString(); });
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

test('kill -9 of wharfd: names still resolve, ports answer again, and the later teardown is complete', { skip: process.env.WHARF_E2E_DAEMON === 'dockerd' && 'wharfd\'s containers outlive a kill -9 of the daemon (conmon); dockerd\'s, without live-restore, do not' }, async () => {
  assert.equal((await d.docker(['network', 'create', n('net')])).code, 0);
  const subnet = (await d.docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', n('net')])).stdout.trim();
  const web = await d.docker(['run', '-d', '--name', n('web'), '--network', n('net'), '--network-alias', 'site', '-p', '127.0.0.1::8080',
    'busybox', 'sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www']);
  assert.equal(web.code, 0, show(web));
  const cli = await d.docker(['run', '-d', '--name', n('cli'), '--network', n('net'), 'busybox', 'sleep', '300']);
  assert.equal(cli.code, 0, show(cli));
  const port = Number((await d.docker(['port', n('web'), '8080'])).stdout.trim().split(':').pop());
  assert.ok(port > 0);
  let lastErr: unknown = null;
  const fetchWeb = (): Promise<string | null> => get(port).catch((e: unknown) => { lastErr = e; return null; });
  assert.equal(await waitFor(fetchWeb).catch((e: Error) => { throw new Error(`${e.message}; port ${port}: ${String(lastErr)}`); }), 'hello-from-web\n');
  const ip = (await d.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${n('net')}").IPAddress}}`, n('web')])).stdout.trim();

  await d.kill('SIGKILL');
  await d.restart();

  const ls = await d.docker(['network', 'ls', '--filter', `name=${tag}`, '--format', '{{.Name}}']);
  assert.equal(ls.stdout, `${n('net')}\n`);
  const members = await d.docker(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}', n('net')]);
  assert.match(members.stdout, new RegExp(`${n('web')}=${ip.replace(/\./g, '\\.')}/`), show(members));
  const look = await d.docker(['exec', n('cli'), 'sh', '-c', `nslookup ${n('web')}; nslookup site`]);
  assert.match(look.stdout, new RegExp(`Name:\\s+${n('web')}\\nAddress: ${ip.replace(/\./g, '\\.')}`), show(look));
  assert.match(look.stdout, new RegExp(`Name:\\s+site\\nAddress: ${ip.replace(/\./g, '\\.')}`));
  assert.equal(await waitFor(fetchWeb).catch((e: Error) => { throw new Error(`${e.message}; port ${port}: ${String(lastErr)}`); }), 'hello-from-web\n', 'the published port answers again');

  assert.equal((await d.docker(['rm', '-f', n('web'), n('cli')])).code, 0);
  assert.equal((await d.docker(['network', 'rm', n('net')])).code, 0);
  const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(subnet));
  assert.deepEqual(rules, [], 'no iptables rule of the network');
  assert.deepEqual(await readdir(join(d.dataRoot, 'network', 'endpoints')), []);
  assert.deepEqual(await readdir(join(d.execRoot, 'netns')).catch(() => [] as string[]), []);
});
