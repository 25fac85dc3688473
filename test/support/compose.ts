/**
 * A small Compose project for the e2e tests (test/e2e/networks-compose*.test.ts): a service built from a Dockerfile
 * serving HTTP, a client reaching it by service name, a named volume, environment, a published port, depends_on;
 * and its life under Debian's docker-compose 1.29 on one daemon, as text to assert on and to compare.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from './daemon.js';
import { run, show, type RunResult } from './cli.js';

export const COMPOSE = `version: "3.8"
services:
  web:
    build: ./web
    environment:
      GREETING: hello-from-compose
    volumes:
      - data:/data
    ports:
      - "127.0.0.1::8080"
  client:
    image: busybox
    depends_on:
      - web
    command: ["sh", "-c", "while true; do sleep 1; done"]
volumes:
  data:
`;
export const DOCKERFILE = `FROM busybox
CMD ["sh", "-c", "mkdir -p /www && echo $GREETING > /www/index.html && hostname >> /data/starts && echo started && exec httpd -f -p 8080 -h /www"]
`;

/** From a client: the web service's page by service name (retried while httpd starts: depends_on does not wait). */
const FETCH_WEB = 'for i in 1 2 3 4 5 6 7 8 9 10; do r=$(printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 web 8080 | tail -1); [ -n "$r" ] && break; sleep 0.5; done; echo "$r"';

/** Writes the project into `dir`. */
export async function writeProject(dir: string): Promise<void> {
  await mkdir(join(dir, 'web'), { recursive: true });
  await writeFile(join(dir, 'docker-compose.yml'), COMPOSE);
  await writeFile(join(dir, 'web', 'Dockerfile'), DOCKERFILE);
}

export function compose(d: Daemon, dir: string, project: string, args: string[]): Promise<RunResult> {
  return run('docker-compose', ['-p', project, ...args], { cwd: dir, env: { DOCKER_HOST: d.host, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' } });
}

/** The project's life on one daemon: what it printed and answered, for comparison. */
export async function lifecycle(d: Daemon, dir: string, project: string, full = true): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const up = await compose(d, dir, project, ['up', '-d']);
  assert.equal(up.code, 0, show(up));
  const ps = await compose(d, dir, project, ['ps']);
  out.ps = ps.stdout.replace(/127\.0\.0\.1:\d+->/g, '127.0.0.1:<port>->').replace(/ \((healthy|health: starting)\)/g, '');
  const get = await compose(d, dir, project, ['exec', '-T', 'client', 'sh', '-c', `${FETCH_WEB}`]);
  out.get = get.stdout;
  const logs = await compose(d, dir, project, ['logs', '--no-color', 'web']);
  out.logs = logs.stdout.replace(/\r/g, '');
  if (full) {
    assert.equal((await compose(d, dir, project, ['restart', 'web'])).code, 0);
    const scale = await compose(d, dir, project, ['up', '-d', '--scale', 'client=2']);
    assert.equal(scale.code, 0, show(scale));
    const again = await compose(d, dir, project, ['exec', '-T', '--index=2', 'client', 'sh', '-c', `${FETCH_WEB}; nslookup client | grep -c "^Address: " `]);
    out.scaled = again.stdout;
    out.starts = (await compose(d, dir, project, ['exec', '-T', 'web', 'sh', '-c', 'wc -l < /data/starts'])).stdout.trim();
  }
  const down = await compose(d, dir, project, ['down', '-v']);
  assert.equal(down.code, 0, show(down));
  out.left = [
    (await d.docker(['ps', '-aq', '--filter', `name=${project}`])).stdout,
    (await d.docker(['network', 'ls', '-q', '--filter', `name=${project}`])).stdout,
    (await d.docker(['volume', 'ls', '-q', '--filter', `name=${project}`])).stdout,
  ].join('|');
  return out;
}

