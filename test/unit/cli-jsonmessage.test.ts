/** The jsonmessage renderer: plain (piped) and terminal modes with fixed input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JSONMessageRenderer, displayJSONMessages, progressString } from '../../src/cli/jsonmessage.js';
import type { JSONMessage } from '../../src/lib/jsonmessage.js';
import { StreamError } from '../../src/client/client.js';

const PULL: JSONMessage[] = [
  { status: 'Pulling from library/busybox', id: 'latest' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Downloading', progressDetail: { current: 1000, total: 2000 }, progress: '[=====>   ]  1kB/2kB', id: 'aaaaaaaaaaaa' },
  { status: 'Download complete', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Extracting', progressDetail: { current: 2000, total: 2000 }, progress: '[==>]', id: 'aaaaaaaaaaaa' },
  { status: 'Pull complete', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Already exists', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Digest: sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a' },
  { status: 'Status: Downloaded newer image for localhost:5002/library/busybox:latest' },
];

async function* gen(ms: JSONMessage[]): AsyncGenerator<JSONMessage> { for (const m of ms) yield m; }

test('plain mode: status lines only, no progress bars', async () => {
  let out = '';
  await displayJSONMessages(gen(PULL), (s) => { out += s; }, { isTerminal: false });
  assert.equal(out, [
    'latest: Pulling from library/busybox',
    'aaaaaaaaaaaa: Pulling fs layer',
    'bbbbbbbbbbbb: Pulling fs layer',
    'aaaaaaaaaaaa: Download complete',
    'aaaaaaaaaaaa: Pull complete',
    'bbbbbbbbbbbb: Already exists',
    'Digest: sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a',
    'Status: Downloaded newer image for localhost:5002/library/busybox:latest',
    '',
  ].join('\n'));
});

test('terminal mode: one line per id, updated in place with cursor movement', () => {
  let out = '';
  const r = new JSONMessageRenderer((s) => { out += s; }, { isTerminal: true, width: 80 });
  for (const m of PULL.slice(0, 4)) r.display(m);
  assert.equal(out,
    'latest: Pulling from library/busybox\n'
    + '\n\x1b[1A\x1b[2K\raaaaaaaaaaaa: Pulling fs layer \r\x1b[1B'
    + '\n\x1b[1A\x1b[2K\rbbbbbbbbbbbb: Pulling fs layer \r\x1b[1B'
    + '\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading      1kB/2kB\r\x1b[2B');
});

test('progress bar as docker draws it (wide terminal)', () => {
  assert.equal(progressString({ current: 1000, total: 2000 }, 200), '[=========================>                         ]      1kB/2kB');
  assert.equal(progressString({ current: 3000, total: 2000 }, 80), '     3kB');
  assert.equal(progressString({}, 200), '');
  assert.equal(progressString({ current: 512 }, 200), '    512B');
});

test('an error message stops rendering with its text; 401 is "authentication is required"', async () => {
  await assert.rejects(displayJSONMessages(gen([{ status: 'x' }, { error: 'boom', errorDetail: { message: 'boom detail' } }]), () => {}, { isTerminal: false }),
    (e: unknown) => e instanceof StreamError && e.message === 'boom detail');
  await assert.rejects(displayJSONMessages(gen([{ errorDetail: { code: 401, message: 'nope' } }]), () => {}, { isTerminal: false }),
    /authentication is required/);
});

test('aux messages go to the callback, not the output', async () => {
  let out = '';
  const aux: unknown[] = [];
  await displayJSONMessages(gen([{ aux: { ID: 'sha256:x' } }, { status: 'done' }]), (s) => { out += s; }, { isTerminal: false, onAux: (m) => aux.push(m.aux) });
  assert.equal(out, 'done\n');
  assert.deepEqual(aux, [{ ID: 'sha256:x' }]);
});
