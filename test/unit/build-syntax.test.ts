/**
 * The BuildKit-era Dockerfile syntax, as pure functions: RUN --mount parsing (each type's defaults, refused keys
 * and values, naming the line), --chmod octal and symbolic, the automatic platform ARGs, `# syntax=` checks,
 * --target refusing a stage that uses a later one, the cache-mount directories' sharing modes and prune.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunMount, splitCsv } from '../../src/engine/build/dockerfile/run-mounts.js';
import { parseInstructions } from '../../src/engine/build/dockerfile/instructions.js';
import { parseChmod } from '../../src/engine/build/sources.js';
import { checkSyntax, platformArgs } from '../../src/engine/build/builder.js';
import { planStages } from '../../src/engine/build/plan.js';
import { CacheMounts } from '../../src/engine/build/cache-mounts.js';
import { mountTarget } from '../../src/engine/build/step-mounts.js';
import { decodeBuildSession } from '../../src/api/routes/build.js';
import { readSecrets } from '../../src/cli/commands/build.js';

test('RUN --mount: each type with its defaults', () => {
  assert.deepEqual(parseRunMount('type=cache,target=/root/.cache'), { type: 'cache', target: '/root/.cache', readonly: false, sharing: 'shared', required: false });
  const c = parseRunMount('type=cache,id=gomod,dst=/go/pkg/mod,sharing=locked,mode=0700,uid=1000,gid=1000,ro');
  assert.deepEqual([c.id, c.target, c.sharing, c.mode, c.uid, c.gid, c.readonly], ['gomod', '/go/pkg/mod', 'locked', 0o700, 1000, 1000, true]);
  // bind is the default type and read-only unless rw
  assert.deepEqual(parseRunMount('target=/src'), { type: 'bind', target: '/src', readonly: true, sharing: 'shared', required: false });
  assert.equal(parseRunMount('type=bind,source=.,target=/src,rw').readonly, false);
  assert.equal(parseRunMount('type=bind,from=build,src=/out,target=/o,readwrite=true').from, 'build');
  assert.equal(parseRunMount('type=tmpfs,target=/t,size=64m').size, 64 << 20);
  // secret: id from the target, target from the id, mode 0400
  const s1 = parseRunMount('type=secret,id=npmrc');
  assert.deepEqual([s1.id, s1.target, s1.mode, s1.required], ['npmrc', '/run/secrets/npmrc', 0o400, false]);
  const s2 = parseRunMount('type=secret,target=/root/.aws/credentials,required');
  assert.deepEqual([s2.id, s2.required], ['credentials', true]);
  const s3 = parseRunMount('type=secret,id=tok,env=TOKEN');
  assert.deepEqual([s3.target, s3.env], ['', 'TOKEN']);
  const ssh = parseRunMount('type=ssh');
  assert.deepEqual([ssh.id, ssh.target, ssh.mode], ['default', '/run/buildkit/ssh_agent.0', 0o600]);
  // quoted CSV fields (Go's encoding/csv)
  assert.deepEqual(splitCsv('type=bind,"source=a,b",target=/x'), ['type=bind', 'source=a,b', 'target=/x']);
  // a relative target is under the working directory
  assert.equal(mountTarget(parseRunMount('type=cache,target=node_modules/.cache'), '/app'), '/app/node_modules/.cache');
});

test('RUN --mount: bad input is refused at parse time, naming the line', () => {
  const bad: [string, RegExp][] = [
    ['type=nfs,target=/x', /unsupported mount type "nfs"/],
    ['type=cache,target=/x,size=1m', /unexpected key 'size' for mount type 'cache'/],
    ['type=tmpfs,target=/x,from=a', /unexpected key 'from' for mount type 'tmpfs'/],
    ['type=cache', /mount type cache requires a target/],
    ['type=cache,target=/c,sharing=sometimes', /unsupported sharing value "sometimes"/],
    ['type=cache,target=/c,mode=rwx', /invalid value for mode: rwx/],
    ['type=cache,target=/c,uid=-1', /invalid value for uid: -1/],
    ['type=secret', /secret ID missing/],
    ['type=bind,target=/c,readonly=maybe', /invalid value for readonly: maybe/],
  ];
  for (const [m, re] of bad) {
    assert.throws(() => parseRunMount(m), re, m);
    assert.throws(() => parseInstructions(`FROM busybox\nRUN true\nRUN --mount=${m} true\n`), (e: Error) => /^dockerfile parse error line 3: invalid --mount=/.test(e.message) && re.test(e.message), m);
  }
  // a variable is checked once substituted
  assert.doesNotThrow(() => parseInstructions('FROM busybox\nARG M=0755\nRUN --mount=type=cache,target=/c,mode=$M true\n'));
  assert.throws(() => parseInstructions('FROM busybox\nRUN --network=bridge2 true\n'), /line 2: unsupported network mode "bridge2"/);
  assert.throws(() => parseInstructions('FROM busybox\nRUN --security=insecure true\n'), /line 2: RUN --security=insecure needs the security\.insecure entitlement/);
  assert.throws(() => parseInstructions('FROM busybox\nCMD --mount=type=cache,target=/c true\n'), /line 2: Unknown flag: mount/);
  const ok = parseInstructions('FROM busybox\nRUN --network=none --security=sandbox --mount=type=tmpfs,target=/t true\n').stages[0]!.commands[0]!;
  assert.ok(ok.kind === 'run' && ok.network === 'none' && ok.security === 'sandbox' && ok.mounts.length === 1);
});

test('--chmod: octal, and symbolic applied to each file\'s own mode', () => {
  assert.equal(parseChmod('755')(0o644, false), 0o755);
  assert.equal(parseChmod('0640')(0o777, true), 0o640);
  assert.equal(parseChmod('u=rwx,go=rx')(0o600, false), 0o755);
  assert.equal(parseChmod('+x')(0o644, false), 0o755);
  assert.equal(parseChmod('go-rwx')(0o755, false), 0o700);
  assert.equal(parseChmod('a+X')(0o644, false), 0o644);
  assert.equal(parseChmod('a+X')(0o644, true), 0o755);
  assert.equal(parseChmod('g+X')(0o744, false), 0o754);
  assert.equal(parseChmod('u+s,o=')(0o755, false), 0o4750);
  for (const v of ['9', '12345', 'u~x', 'z=r', 'rwx']) assert.throws(() => parseChmod(v), /invalid chmod parameter/, v);
});

test('automatic platform ARGs; # syntax=; a --target using a later stage', () => {
  const a = platformArgs('amd64');
  assert.deepEqual(Object.fromEntries(a), {
    TARGETPLATFORM: 'linux/amd64', TARGETOS: 'linux', TARGETARCH: 'amd64', TARGETVARIANT: '',
    BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '',
  });
  const x = platformArgs('amd64', 'linux/arm/v6');
  assert.deepEqual([x.get('TARGETPLATFORM'), x.get('TARGETARCH'), x.get('TARGETVARIANT'), x.get('BUILDPLATFORM')], ['linux/arm/v6', 'arm', 'v6', 'linux/amd64']);
  assert.equal(platformArgs('arm').get('BUILDVARIANT'), 'v7');

  for (const s of ['docker/dockerfile:1', 'docker/dockerfile:1.7', 'docker.io/docker/dockerfile:1.4.3', 'docker/dockerfile:1-labs', 'docker/dockerfile-upstream:1.7', `docker/dockerfile:1@sha256:${'a'.repeat(64)}`, 'docker/dockerfile']) {
    assert.doesNotThrow(() => checkSyntax(parseInstructions(`# syntax=${s}\nFROM busybox\n`)), s);
  }
  for (const s of ['docker/dockerfile:0.9', 'example.com/frontend:1', 'tonistiigi/dockerfile:runmount']) {
    assert.throws(() => checkSyntax(parseInstructions(`# syntax=${s}\nFROM busybox\n`)), new RegExp(`unsupported syntax "${s.replace(/[.]/g, '\\.')}"`), s);
  }
  assert.doesNotThrow(() => checkSyntax(parseInstructions('# check=skip=all;error=true\nFROM busybox\n')));

  const df = parseInstructions('FROM busybox AS app\nRUN --mount=type=bind,from=tools,target=/t true\nFROM busybox AS tools\n');
  assert.throws(() => planStages(df, { target: 'app', metaEnv: new Map() }), /line 2: RUN --mount from= uses stage "tools", which is defined later \(line 3\)/);
  const df2 = parseInstructions('FROM busybox AS tools\nRUN true\nFROM busybox AS app\nRUN --mount=type=bind,from=tools,target=/t true\n');
  assert.deepEqual(planStages(df2, { target: 'app', metaEnv: new Map() }).order, [0, 1]);
});

test('cache mounts: kept by id, locked waits, private gets its own, prune empties the idle ones', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-cachemounts-'));
  try {
    const c = new CacheMounts(root);
    const req = { id: 'pip', sharing: 'shared' as const, mode: 0o755, uid: 0, gid: 0 };
    const a = await c.acquire(req);
    await writeFile(join(a.path, 'wheel'), 'w'.repeat(100));
    const b = await c.acquire(req);
    assert.equal(b.path, a.path); // shared: the same directory at once
    a.release(); b.release();
    const again = await c.acquire(req);
    assert.deepEqual(await readdir(again.path), ['wheel']);
    // private while busy: an instance of its own
    const p = await c.acquire({ ...req, sharing: 'private' });
    assert.notEqual(p.path, again.path);
    p.release(); again.release();
    // locked: the second waits until the first lets go
    const l1 = await c.acquire({ ...req, sharing: 'locked' });
    let second = false;
    const l2p = c.acquire({ ...req, sharing: 'locked' }).then((h) => { second = true; return h; });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(second, false);
    l1.release();
    const l2 = await l2p;
    assert.equal(l2.path, l1.path);
    // prune: a held cache stays, the others go with their size reported
    const held = await c.acquire({ ...req, id: 'held' });
    await writeFile(join(held.path, 'x'), 'xx');
    l2.release();
    const r = await c.prune();
    assert.equal(r.SpaceReclaimed, 100);
    assert.equal(r.CachesDeleted.length, 2);
    assert.deepEqual((await c.list()).map((x) => x.id), ['held']);
    held.release();
    assert.equal((await c.prune()).SpaceReclaimed, 2);
    assert.deepEqual(await c.list(), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('wharf build --secret: values read by the CLI (file, env, refusals); the request names only the session and the ids', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-secrets-'));
  try {
    await writeFile(join(dir, 'tok'), Buffer.from([0, 1, 2, 255]));
    const m = readSecrets([`id=tok,src=${join(dir, 'tok')}`, 'id=api,env=MY_API', 'id=PLAIN'], { MY_API: 'v=1,2', PLAIN: 'from-env-by-id' })!;
    assert.deepEqual([...m.keys()], ['tok', 'api', 'PLAIN']);
    assert.deepEqual([...m.get('tok')!], [0, 1, 2, 255]);
    assert.equal(m.get('api')!.toString(), 'v=1,2');
    assert.equal(m.get('PLAIN')!.toString(), 'from-env-by-id');
    assert.throws(() => readSecrets(['src=/x'], {}), /id is required/);
    assert.throws(() => readSecrets(['id=a,colour=red'], {}), /unexpected key 'colour'/);
    assert.throws(() => readSecrets(['id=a,env=NOPE'], {}), /environment variable NOPE is not set/);
    assert.throws(() => readSecrets(['id=a'], {}), /give src=<file> or env=<VAR>/);
    assert.throws(() => readSecrets(['id=a/b,env=X'], { X: '1' }), /invalid id "a\/b"/);
    assert.throws(() => readSecrets(['id=a,env=X', 'id=a,env=X'], { X: '1' }), /id "a" given twice/);
    assert.throws(() => readSecrets([`id=big,src=${join(dir, 'big')}`], {}), /failed to read/);
    await writeFile(join(dir, 'big'), Buffer.alloc(500 * 1024 + 1));
    assert.throws(() => readSecrets([`id=big,src=${join(dir, 'big')}`], {}), /secret big: too big \(512001 bytes, at most 512000\)/);
    // the daemon's side: ids only, carried by a session (never a value, never a path)
    const sid = 'f'.repeat(32);
    assert.equal(decodeBuildSession({}), undefined);
    assert.equal(decodeBuildSession({ 'x-wharf-build-session': sid }), undefined);
    assert.deepEqual(decodeBuildSession({ 'x-wharf-build-session': sid, 'x-wharf-build-secret-ids': 'tok, api', 'x-wharf-build-ssh-ids': 'default' }),
      { id: sid, secrets: ['tok', 'api'], ssh: ['default'] });
    assert.throws(() => decodeBuildSession({ 'x-wharf-build-ssh-ids': 'default' }), /need the X-Wharf-Build-Session/);
    assert.throws(() => decodeBuildSession({ 'x-wharf-build-secret-ids': 'tok' }), /need the X-Wharf-Build-Session/);
    assert.throws(() => decodeBuildSession({ 'x-wharf-build-session': 'short', 'x-wharf-build-secret-ids': 'tok' }), /invalid X-Wharf-Build-Session/);
    assert.throws(() => decodeBuildSession({ 'x-wharf-build-session': sid, 'x-wharf-build-secret-ids': 'a/b' }), /invalid secret id/);
    // the old header of values is refused, not silently dropped
    assert.throws(() => decodeBuildSession({ 'x-wharf-build-secrets': 'e30=' }), /X-Wharf-Build-Secrets is not supported/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
