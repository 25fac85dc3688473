/**
 * The wharf CLI: flag parsing, help layout and docker's error messages through main(); then bin/wharf as a
 * process against a fake Engine API on a temporary socket (-H unix://…) for images, tag, rmi and inspect.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { main } from '../../src/cli/main.js';
import { flagUsages, wrapText } from '../../src/cli/spec.js';
import { indentJSON } from '../../src/cli/commands/inspect.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

test('images --help: docker layout (usage, aliases, wrapped options)', async () => {
  const r = await cli(['images', '--help']);
  assert.equal(r.code, 0);
  assert.equal(r.out, `Usage:  wharf images [OPTIONS] [REPOSITORY[:TAG]]

List images

Aliases:
  wharf image ls, wharf image list, wharf images

Options:
  -a, --all             Show all images (default hides intermediate images)
      --digests         Show digests
  -f, --filter filter   Filter output based on conditions provided
      --format string   Format output using a custom template:
                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`);
});

test('history --help wraps (default true) like pflag', async () => {
  const r = await cli(['image', 'history', '--help']);
  assert.match(r.out, /\n {2}-H, --human {11}Print sizes and dates in human readable format\n {24}\(default true\)\n/);
  assert.match(r.out, /^Usage: {2}wharf image history \[OPTIONS\] IMAGE\n/);
});

test('root and group help', async () => {
  const r = await cli(['--help']);
  assert.match(r.out, /^Usage: {2}wharf \[OPTIONS\] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n {2}run {9}Create and run a new container from an image\n {2}exec {8}Execute a command in a running container\n/);
  // docker's order of the common commands, whichever of them exist
  const common = r.out.split('Common Commands:\n')[1]!.split('\n\n')[0]!.split('\n').map((l) => l.trim().split(/\s+/)[0]);
  const order = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'search', 'version', 'info'];
  assert.deepEqual(common, order.filter((c) => common.includes(c)));
  assert.ok(common.includes('pull') && common.includes('images'));
  assert.match(r.out, /\nManagement Commands:\n(?: {2}\S+ +.+\n)* {2}image {7}Manage images\n(?: {2}\S+ +.+\n)* {2}system {6}Manage Wharf\n/);
  assert.match(r.out, /\nGlobal Options:\n {6}--config string {6}Location of client config files \(default\n/);
  assert.match(r.out, /\n {2}-H, --host list {10}Daemon socket to connect to\n/);
  // docker wraps at the terminal width minus one (79 off a terminal): the break falls after "info",
  assert.match(r.out, /\n {2}-l, --log-level string {3}Set the logging level \("debug", "info",\n {27}"warn", "error", "fatal"\) \(default "info"\)\n/);
  const g = await cli(['image']);
  assert.equal(g.code, 0);
  assert.match(g.out, /^Usage: {2}wharf image COMMAND\n\nManage images\n\nCommands:\n {2}bootstrap {3}/);
  assert.match(g.out, /\n {2}ls {10}List images\n/);
  assert.match(g.out, /\nRun 'wharf image COMMAND --help' for more information on a command\.\n$/);
});

test('flag errors: exit 125 with docker messages', async () => {
  let r = await cli(['images', '--x']);
  assert.equal(r.code, 125);
  assert.equal(r.err, "unknown flag: --x\n\nUsage:  wharf images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'wharf images --help' for more information\n");
  r = await cli(['images', '-x']);
  assert.equal(r.err.split('\n')[0], "unknown shorthand flag: 'x' in -x");
  r = await cli(['images', '-f']);
  assert.equal(r.code, 125);
  assert.equal(r.err.split('\n')[0], "flag needs an argument: 'f' in -f");
  r = await cli(['images', '--filter']);
  assert.equal(r.err.split('\n')[0], 'flag needs an argument: --filter');
  r = await cli(['-H']);
  assert.equal(r.err, "flag needs an argument: 'H' in -H\n\nUsage:  wharf [OPTIONS] COMMAND [ARG...]\n\nRun 'wharf --help' for more information\n");
  r = await cli(['images', '-ax']);
  assert.equal(r.err.split('\n')[0], "unknown shorthand flag: 'x' in -x");
  r = await cli(['history', '-H=maybe', 'x']);
  assert.equal(r.code, 125);
  assert.equal(r.err.split('\n')[0], 'invalid argument "maybe" for "-H, --human" flag: strconv.ParseBool: parsing "maybe": invalid syntax');
  r = await cli(['images', '-f', 'foo']);
  assert.equal(r.code, 125);
  assert.equal(r.err.split('\n')[0], 'invalid argument "foo" for "-f, --filter" flag: bad format of filter (expected name=value)');
});

test('argument count and unknown commands: exit 1 with docker messages', async () => {
  let r = await cli(['rmi']);
  assert.equal(r.code, 1);
  assert.equal(r.err, "wharf: 'wharf rmi' requires at least 1 argument\n\nUsage:  wharf rmi [OPTIONS] IMAGE [IMAGE...]\n\nSee 'wharf rmi --help' for more information\n");
  r = await cli(['tag', 'a']);
  assert.equal(r.err.split('\n')[0], "wharf: 'wharf tag' requires 2 arguments");
  r = await cli(['image', 'prune', 'x']);
  assert.equal(r.err.split('\n')[0], "wharf: 'wharf image prune' accepts no arguments");
  r = await cli(['images', 'a', 'b']);
  assert.match(r.err, /requires at most 1 argument\n\nUsage: {2}wharf images \[OPTIONS\] \[REPOSITORY\[:TAG\]\]\n\nSRun 'wharf images --help'/);
  r = await cli(['foo']);
  assert.deepEqual([r.code, r.err], [1, "wharf: unknown command: wharf foo\n\nRun 'wharf --help' for more information\n"]);
  r = await cli(['image', 'foo']);
  assert.equal(r.err, "wharf: unknown command: wharf image foo\n\nUsage:  wharf image\n\nRun 'wharf image --help' for more information\n");
});

test('-v / --version', async () => {
  const r = await cli(['-v']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^Wharf version 0\.1\.0, build [0-9a-f]{7}|unknown\n$/);
});

test('pflag wrapping and Go json.Indent', () => {
  assert.equal(wrapText(10, 40, 'aaaa bbbb cccc dddd eeee ffff gggg hhhh'), 'aaaa bbbb cccc dddd eeee\n          ffff gggg hhhh');
  assert.equal(flagUsages([{ long: 'x', short: 'x', usage: 'X' }, { long: 'def', type: 'string', usage: 'D', def: 'v' }]),
    '      --def string   D (default "v")\n  -x, --x            X\n');
  assert.equal(indentJSON('[{"a":[],"b":{},"c":[1,"x\\"]"],"d":{"e":null}}]'),
    '[\n    {\n        "a": [],\n        "b": {},\n        "c": [\n            1,\n            "x\\"]"\n        ],\n        "d": {\n            "e": null\n        }\n    }\n]');
});

// ---------------------------------------------------------------------------------------------
// bin/wharf against a fake API server
// ---------------------------------------------------------------------------------------------

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const IMG = {
  Containers: -1, Created: 1795536071, Id: 'sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837', Labels: null,
  ParentId: '', RepoDigests: ['localhost:5002/library/busybox@sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a'],
  RepoTags: ['busybox:latest', 'localhost:5002/library/busybox:latest'], SharedSize: -1, Size: 1984234, VirtualSize: 1984234,
};
let dir: string;
let sock: string;
let server: Server;
const requests: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-cli-test-'));
  sock = join(dir, 'api.sock');
  server = createServer((req, res) => {
    const url = decodeURIComponent(req.url!);
    requests.push(`${req.method} ${url}`);
    const json = (status: number, body: unknown) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
    if (url === '/_ping') { res.writeHead(200, { 'Api-Version': '1.41', 'Content-Length': 0 }); res.end(); return; }
    const path = url.replace(/^\/v1\.41/, '');
    if (req.method === 'GET' && path.startsWith('/images/json')) return json(200, [IMG]);
    if (req.method === 'POST' && path.startsWith('/images/busybox/tag?')) return json(201, null);
    if (req.method === 'DELETE' && path === '/images/bb2:x') return json(200, [{ Untagged: 'bb2:x' }]);
    if (req.method === 'DELETE' && path === '/images/nginx:v2') {
      return json(200, [{ Untagged: 'nginx:v2' }, { Deleted: 'sha256:616c4c1db139ae8a61a8303614bce4ae0b86cd5db9a0dffdad3f327649109e63' }]);
    }
    if (req.method === 'DELETE' && path === '/images/busy') return json(409, { message: 'conflict: unable to remove repository reference "busy" (must force)' });
    if (req.method === 'GET' && path === '/images/busybox/json') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"Id":"sha256:a4de","RepoTags":["busybox:latest"],"Config":{"Hostname":"","Env":["A=\\u003cb\\u003e"],"Cmd":["sh"],"Labels":null},"RootFS":{"Type":"layers","Layers":["sha256:47bf"]}}\n');
      return;
    }
    return json(404, { message: `No such image: ${path.split('/')[2]}` });
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function wharf(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    const env: Record<string, string | undefined> = { ...process.env, DOCKER_CONFIG: dir };
    delete env.DOCKER_HOST;
    delete env.WHARF_HOST;
    const child = spawn(join(ROOT, 'bin', 'wharf'), ['-H', `unix://${sock}`, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.on('close', (code) => res({ code: code ?? -1, out, err }));
  });
}

test('bin/wharf images / images REPO / images -q against the fake API', async () => {
  let r = await wharf(['images']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.match(lines[0]!, /^REPOSITORY {23}TAG {7}IMAGE ID {7}CREATED {3,}SIZE$/);
  assert.match(lines[1]!, /^busybox {26}latest {4}a4dea7034236 {3}\S.* ago {3}1\.98MB$/);
  assert.match(lines[2]!, /^localhost:5002\/library\/busybox {3}latest {4}a4dea7034236 /);
  r = await wharf(['images', '-a', '-f', 'dangling=false', 'busybox']);
  assert.equal(requests.at(-1), 'GET /v1.41/images/json?all=1&filters={"dangling":{"false":true},"reference":{"busybox":true}}');
  r = await wharf(['images', '-af', 'dangling=false', 'busybox']);
  assert.equal(requests.at(-1), 'GET /v1.41/images/json?all=1&filters={"dangling":{"false":true},"reference":{"busybox":true}}');
  r = await wharf(['images', '-fdangling=true', '-f=label=a=b']);
  assert.equal(requests.at(-1), 'GET /v1.41/images/json?filters={"dangling":{"true":true},"label":{"a=b":true}}');
  r = await wharf(['image', 'ls', '-q']);
  assert.equal(r.out, 'a4dea7034236\na4dea7034236\n');
});

test('bin/wharf images: imagesFormat from the config file is the default format', async () => {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ imagesFormat: '{{.Repository}}={{.Tag}}' }));
  try {
    assert.equal((await wharf(['images'])).out, 'busybox=latest\nlocalhost:5002/library/busybox=latest\n');
    assert.equal((await wharf(['images', '-q'])).out, 'a4dea7034236\na4dea7034236\n');
    assert.equal((await wharf(['images', '--format', '{{.Tag}}'])).out, 'latest\nlatest\n');
  } finally {
    rmSync(join(dir, 'config.json'));
  }
});

test('bin/wharf tag sends the normalized repository and tag', async () => {
  const r = await wharf(['tag', 'busybox', 'bb2:x']);
  assert.deepEqual([r.code, r.out, r.err], [0, '', '']);
  assert.equal(requests.at(-1), 'POST /v1.41/images/busybox/tag?repo=docker.io/library/bb2&tag=x');
  const bad = await wharf(['tag', 'busybox', 'UPPER']);
  assert.equal(bad.code, 1);
  assert.equal(bad.err, 'Error parsing reference: "UPPER" is not a valid repository/tag: invalid reference format: repository name (library/UPPER) must be lowercase\n');
});

test('bin/wharf rmi: Untagged/Deleted lines, keeps going past errors, exit 1 with daemon errors', async () => {
  const r = await wharf(['rmi', 'bb2:x', 'busy', 'nginx:v2', 'nosuch']);
  assert.equal(r.code, 1);
  assert.equal(r.out, 'Untagged: bb2:x\nUntagged: nginx:v2\nDeleted: sha256:616c4c1db139ae8a61a8303614bce4ae0b86cd5db9a0dffdad3f327649109e63\n');
  assert.equal(r.err, 'Error response from daemon: conflict: unable to remove repository reference "busy" (must force)\nError response from daemon: No such image: nosuch\n');
  assert.ok(requests.includes('DELETE /v1.41/images/nginx:v2'));
});

test('bin/wharf image inspect: raw JSON indented 4 spaces, [] and errors for missing ones', async () => {
  let r = await wharf(['image', 'inspect', 'busybox']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, '[\n    {\n        "Id": "sha256:a4de",\n        "RepoTags": [\n            "busybox:latest"\n        ],\n        "Config": {\n            "Hostname": "",\n            "Env": [\n                "A=\\u003cb\\u003e"\n            ],\n            "Cmd": [\n                "sh"\n            ],\n            "Labels": null\n        },\n        "RootFS": {\n            "Type": "layers",\n            "Layers": [\n                "sha256:47bf"\n            ]\n        }\n    }\n]\n');
  r = await wharf(['image', 'inspect', 'nosuch']);
  assert.deepEqual([r.code, r.out, r.err], [1, '[]\n', 'Error response from daemon: No such image: nosuch\n']);
  r = await wharf(['inspect', '--format', '{{.Id}} {{.RootFS.Layers}} {{json .Config}}', 'busybox']);
  assert.deepEqual([r.code, r.out], [0, 'sha256:a4de [sha256:47bf] {"Env":["A=<b>"],"Cmd":["sh"]}\n']);
  r = await wharf(['inspect', 'nosuch']);
  assert.deepEqual([r.code, r.out, r.err], [1, '[]\n', 'Error: No such object: nosuch\n']);
});

test('bin/wharf: nothing at an explicit -H is an error, not an auto-start', async () => {
  const env = { ...process.env };
  const child = spawn(join(ROOT, 'bin', 'wharf'), ['-H', `unix://${join(dir, 'none.sock')}`, 'images'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d; });
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 1);
  assert.equal(err, `Cannot connect to the Wharf daemon at unix://${join(dir, 'none.sock')}. Is the wharf daemon running?\n`);
});
