/**
 * End to end: what a freshly started wharfd holds. It starts no process and maps no native addon (koffi, through
 * which every process the daemon starts goes) until work asks for one: the overlay driver is chosen from the
 * kernel's own answers when they are plain (src/engine/layers/drivers/overlay.ts), and start-up's garbage is
 * collected without a malloc trim (src/daemon/memory.ts). Then a container runs on that driver's mount options,
 * and koffi is there. bench/memory.ts measures what this is worth.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { show } from '../support/cli.js';
import { overlayVerdict, readOverlayFacts } from '../../src/engine/layers/drivers/overlay.js';

let d: Daemon | undefined;
after(async () => { await d?.stop(); });

const mapped = (pid: number, what: string): boolean => readFileSync(`/proc/${pid}/maps`, 'utf8').includes(what);

test('a fresh daemon has started no process and loaded no koffi; a container run then works on overlay', async (t) => {
  d = await startDaemon();
  const facts = await readOverlayFacts(d.dataRoot);
  if (!facts || overlayVerdict(facts) === null) {
    t.skip('the kernel\'s answers do not settle overlayfs under this data root: the daemon probes with a mount at start');
    return;
  }
  const pid = d.pid!;
  const info = await d.docker(['info', '--format', '{{.Driver}}']);
  assert.equal(info.code, 0, show(info));
  assert.equal(info.stdout.trim(), 'overlay2');
  assert.equal(mapped(pid, 'koffi'), false, 'koffi is not mapped by a daemon that has started nothing');
  const b = await d.wharf(['image', 'bootstrap', 'busybox']);
  assert.equal(b.code, 0, show(b));
  const r = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo hi > /f && cat /f && grep " / " /proc/mounts | cut -d" " -f3']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'hi\noverlay\n');
  assert.equal(mapped(pid, 'koffi'), true, 'the run started processes through koffi');
});
