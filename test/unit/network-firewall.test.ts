/**
 * firewall.ts against the host's real iptables (root): a user network's rules installed in one restore, installed
 * again without doubling, isolation jump first in FORWARD, and nothing tagged for the network after removal. The
 * bridge named here does not exist: iptables rules may name any interface.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { installNetworkRules, removeNetworkRules } from '../../src/engine/network/firewall.js';

const BR = `wft${process.pid.toString(36)}`.slice(0, 15);
const SUBNET = '10.251.37.0/24';
const mine = (): string[] => execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`wharf:${BR}`));

test('a network\'s rules: installed once however often, isolation first in FORWARD, all gone after removal', async () => {
  try {
    await installNetworkRules({ bridge: BR, subnet: SUBNET, internal: false }, 'wharf0');
    const first = mine();
    assert.ok(first.some((l) => l.includes(`-A POSTROUTING -s ${SUBNET} ! -o ${BR}`) && l.endsWith('-j MASQUERADE')), first.join('\n'));
    assert.ok(first.some((l) => l.startsWith(`-A WHARF-ISOLATION -i ${BR} ! -o ${BR}`) && l.endsWith('-j WHARF-ISOLATION-2')), first.join('\n'));
    assert.ok(first.some((l) => l.startsWith(`-A WHARF-ISOLATION-2 -o ${BR}`) && l.endsWith('-j DROP')), first.join('\n'));
    assert.ok(first.some((l) => l.startsWith(`-A WHARF-ISOLATION -i wharf0 -o ${BR}`)), first.join('\n'));
    assert.ok(first.some((l) => l.startsWith(`-A WHARF-FORWARD -i ${BR}`) && l.endsWith('-j ACCEPT')), first.join('\n'));
    assert.equal(execFileSync('iptables', ['-w', '-S', 'FORWARD', '1'], { encoding: 'utf8' }).trim(), '-A FORWARD -j WHARF-ISOLATION');

    await installNetworkRules({ bridge: BR, subnet: SUBNET, internal: false }, 'wharf0');
    assert.deepEqual(mine(), first, 'a second install changes nothing');

    // internal: no NAT, nothing in or out by another interface
    await installNetworkRules({ bridge: BR, subnet: SUBNET, internal: true }, 'wharf0');
    const internal = mine();
    assert.ok(!internal.some((l) => l.includes('MASQUERADE')), internal.join('\n'));
    assert.ok(internal.some((l) => l.startsWith(`-A WHARF-ISOLATION -i ${BR} ! -o ${BR}`) && l.endsWith('-j DROP')), internal.join('\n'));
    assert.ok(internal.some((l) => l.startsWith(`-A WHARF-ISOLATION ! -i ${BR} -o ${BR}`) && l.endsWith('-j DROP')), internal.join('\n'));
  } finally {
    await removeNetworkRules(BR);
  }
  assert.deepEqual(mine(), []);
});
