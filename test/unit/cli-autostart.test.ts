/** Auto-start: nothing answers, the CLI spawns bin/wharfd detached and waits for /_ping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient, ConnectionError } from '../../src/client/client.js';
import { autoStartDaemon } from '../../src/cli/runtime.js';
import { waitFor } from '../support/wait.js';

test('autoStartDaemon starts wharfd detached, logs to the exec root, and returns once it answers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-autostart-'));
  const sock = join(dir, 'wharf.sock');
  const pidfile = join(dir, 'wharfd.pid');
  const client = new EngineClient({ host: `unix://${sock}` });
  await assert.rejects(client.ping(), ConnectionError);
  try {
    await autoStartDaemon(client, {
      execRoot: dir,
      timeoutMs: 20_000,
      args: ['-H', `unix://${sock}`, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', pidfile],
    });
    const p = await client.ping();
    assert.equal(p.apiVersion, '1.41');
    assert.ok(existsSync(join(dir, 'wharfd.log')));
    assert.deepEqual(await client.imageList(), []);
  } finally {
    client.close();
    if (existsSync(pidfile)) {
      const pid = Number(readFileSync(pidfile, 'utf8').trim());
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, { timeout: 5000, interval: 50 }).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('autoStartDaemon gives up with the log path when the daemon never answers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-autostart-'));
  const client = new EngineClient({ host: `unix://${join(dir, 'never.sock')}` });
  try {
    // a bad flag: wharfd exits at once
    await assert.rejects(autoStartDaemon(client, { execRoot: dir, timeoutMs: 1500, args: ['--no-such-flag'] }),
      (e: Error) => e.message.includes(join(dir, 'wharfd.log')) && e.message.includes('did not answer'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
