/**
 * The same commands on wharfd and on the reference dockerd log the same events: type, action, attribute names and
 * values (IDs and times aside) — network events left out (the networks module publishes those).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { sleep } from '../support/wait.js';
import { startRegistry, type Registry } from '../support/registry.js';

let haveDockerd = true;
try { execFileSync('which', ['dockerd'], { stdio: 'ignore' }); } catch { haveDockerd = false; }

let w: Daemon;
let r: Daemon;
let reg: Registry;

before(async () => {
  if (!haveDockerd) return;
  [w, r, reg] = await Promise.all([startDaemon(), startDaemon({ engine: 'dockerd', startTimeoutMs: 60_000 }), startRegistry()]);
  const b = await w.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  const tar = `${w.dir}/busybox.tar`;
  assert.equal((await w.docker(['save', '-o', tar, 'busybox'])).code, 0);
  const l = await r.docker(['load', '-i', tar]);
  assert.equal(l.code, 0, show(l));
});
after(async () => {
  await Promise.all([w?.stop(), r?.stop(), reg?.stop()]);
});

const STEPS: string[][] = [
  ['create', '--name', 'e1', '--label', 'tier=web', 'busybox', 'sleep', '100'], ['start', 'e1'], ['exec', 'e1', 'echo', 'hi'],
  ['pause', 'e1'], ['unpause', 'e1'], ['rename', 'e1', 'e2'], ['kill', '-s', 'USR1', 'e2'], ['restart', '-t', '0', 'e2'],
  ['stop', '-t', '1', 'e2'], ['rm', 'e2'], ['volume', 'create', 'ev1'], ['run', '--rm', '--name', 'evrun', '-v', 'ev1:/data', 'busybox', 'true'],
  ['volume', 'rm', 'ev1'], ['tag', 'busybox', 'evtag:1'], ['rmi', 'evtag:1'], ['save', '-o', '{dir}/bb.tar', 'busybox'],
  ['load', '-i', '{dir}/bb.tar'], ['create', '--name', 'ex', 'busybox'], ['export', '-o', '{dir}/fs.tar', 'ex'], ['rm', 'ex'],
  ['import', '{dir}/fs.tar', 'evimp:1'], ['rmi', 'evimp:1'],
  ['tag', 'busybox', '{reg}/ev/bb:1'], ['push', '{reg}/ev/bb:1'], ['rmi', '{reg}/ev/bb:1'], ['pull', '{reg}/ev/bb:1'], ['rmi', '{reg}/ev/bb:1'],
];

/** The events of the steps, as comparable lines: IDs, container IDs and exec IDs replaced by placeholders. */
async function eventsOf(d: Daemon): Promise<string[]> {
  const since = (Date.now() / 1000).toFixed(3);
  await sleep(20); // the first event strictly after `since`
  for (const step of STEPS) {
    const s = step.map((x) => x.replace('{dir}', d.dir).replace('{reg}', reg.host));
    const res = await d.docker(s);
    assert.equal(res.code, 0, `${d.pid ? 'wharfd' : 'dockerd'} ${s.join(' ')}: ${show(res)}`);
  }
  const until = (Date.now() / 1000 + 0.2).toFixed(3);
  await sleep(300);
  const out = await d.docker(['events', '--since', since, '--until', until, '--filter', 'type=container', '--filter', 'type=image', '--filter', 'type=volume', '--format', '{{json .}}']);
  assert.equal(out.code, 0, show(out));
  return out.stdout.split('\n').filter(Boolean).map((l) => {
    const e = JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } };
    const attrs = Object.entries(e.Actor.Attributes).sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${/^(sha256:)?[0-9a-f]{64}$/.test(v) ? '<id>' : v}`).join(',');
    return `${e.Type} ${e.Action} ${/^(sha256:)?[0-9a-f]{64}$/.test(e.Actor.ID) ? '<id>' : e.Actor.ID} ${attrs}`;
  });
}

test('wharfd logs the events dockerd logs for the same commands', { skip: !haveDockerd }, async () => {
  const [a, b] = [await eventsOf(w), await eventsOf(r)];
  assert.deepEqual(a, b);
});

test('a failing healthcheck: the same State.Health, ps status and health events as dockerd\'s', { skip: !haveDockerd }, async () => {
  const view = async (d: Daemon) => {
    const since = (Date.now() / 1000).toFixed(3);
    const run = await d.docker(['run', '-d', '--name', 'hc', '--health-cmd', 'echo probe; exit 3', '--health-interval', '300ms', '--health-retries', '2', 'busybox', 'sleep', '100']);
    assert.equal(run.code, 0, show(run));
    let h: { Status: string; FailingStreak: number; Log: Record<string, unknown>[] } | undefined;
    for (let i = 0; i < 100 && h?.Status !== 'unhealthy'; i++) {
      await sleep(100);
      h = JSON.parse((await d.docker(['inspect', '-f', '{{json .State.Health}}', 'hc'])).stdout);
    }
    const ps = (await d.docker(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}} {{.Status}}'])).stdout.replace(/Up .* \(/, 'Up … (');
    const ev = await d.docker(['events', '--since', since, '--until', (Date.now() / 1000).toFixed(3), '--filter', 'event=health_status', '--format', '{{.Action}}']);
    await d.docker(['rm', '-f', 'hc']);
    return {
      status: h!.Status, streakAtLeast2: h!.FailingStreak >= 2, keys: Object.keys(h!), logKeys: Object.keys(h!.Log[0]!),
      first: [h!.Log[0]!.ExitCode, h!.Log[0]!.Output], ps, events: ev.stdout,
    };
  };
  const [a, b] = [await view(w), await view(r)];
  assert.deepEqual(a, b);
  assert.equal(a.status, 'unhealthy');
});
