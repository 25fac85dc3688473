/**
 * network/netlink.ts: the host side of veths over rtnetlink from the daemon (enslave + up, delete). Needs root; makes
 * a bridge and veth pairs of its own (random names) and removes them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { deleteLinks, enslaveUp } from '../../src/engine/network/netlink.js';

const tag = randomBytes(3).toString('hex');
const br = `wtbr${tag}`;
const veths = [`wtva${tag}`, `wtvb${tag}`];
const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const exists = (dev: string) => existsSync(`/sys/class/net/${dev}`);
const isUp = (dev: string) => (Number(readFileSync(`/sys/class/net/${dev}/flags`, 'utf8').trim()) & 1) === 1;

after(() => {
  for (const d of [br, ...veths]) if (exists(d)) ip('link', 'del', d);
});

test('enslaveUp puts host ends on their bridge, up; deleteLinks removes them, a gone one is no error', async () => {
  ip('link', 'add', br, 'type', 'bridge');
  for (const v of veths) ip('link', 'add', v, 'type', 'veth', 'peer', 'name', `${v}p`);
  for (const v of veths) {
    assert.equal(exists(`/sys/class/net/${v}/master`), false);
    assert.equal(isUp(v), false);
  }
  await enslaveUp(veths.map((dev) => ({ dev, master: br })));
  for (const v of veths) {
    assert.equal(basename(readlinkSync(`/sys/class/net/${v}/master`)), br);
    assert.equal(isUp(v), true);
  }
  await deleteLinks([...veths, `wtgone${tag}`]);
  for (const v of veths) {
    assert.equal(exists(v), false);
    assert.equal(exists(`${v}p`), false, 'the peer goes with it');
  }
});

test('failures are errors naming the link: a missing device or bridge, a bad name', async () => {
  ip('link', 'add', veths[0]!, 'type', 'veth', 'peer', 'name', `${veths[0]}p`);
  await assert.rejects(enslaveUp([{ dev: veths[0]!, master: `wtnobr${tag}` }]), /wtnobr/);
  await assert.rejects(enslaveUp([{ dev: `wtgone${tag}`, master: br }]), new RegExp(`link set wtgone${tag} master ${br} up: ENODEV`));
  await assert.rejects(deleteLinks(['a'.repeat(16)]), /bad interface name/);
  await assert.rejects(deleteLinks([`${br}\0x`]), /bad interface name/, 'a NUL would cut the name short: another link');
  await assert.rejects(enslaveUp([{ dev: veths[0]!, master: `${br}\0` }]), /bad interface name/);
  await deleteLinks(['../x']); // no such link: nothing to do
  await deleteLinks([veths[0]!]);
  assert.equal(exists(veths[0]!), false);
});
