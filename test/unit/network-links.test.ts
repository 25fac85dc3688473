// engine/network pure parts: docker's link environment and hosts line (links.ts), subnet parsing (service.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkEnv, linkHost, parseLink, parseSubnet } from '../../src/engine/network/index.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

test('parseLink: "db", "db:alias", and the stored "/db:/web/alias"', () => {
  assert.deepEqual(parseLink('db'), { name: 'db', alias: 'db' });
  assert.deepEqual(parseLink('db:data'), { name: 'db', alias: 'data' });
  assert.deepEqual(parseLink('/db:/web/data'), { name: 'db', alias: 'data' });
});

test('linkEnv: ports sorted (tcp first on a tie), the first as ALIAS_PORT, name, environment without HOME/PATH', () => {
  const env = linkEnv({
    alias: 'my-db', parentName: 'web', name: 'db', hostname: 'abc', ip: '172.30.0.5',
    env: ['PATH=/bin', 'HOME=/root', 'PASSWORD=x=y', 'BROKEN'], exposedPorts: ['5432/tcp', '53/udp', '53/tcp'],
  });
  assert.deepEqual(env, [
    'MY_DB_PORT=tcp://172.30.0.5:53',
    'MY_DB_PORT_53_TCP=tcp://172.30.0.5:53', 'MY_DB_PORT_53_TCP_ADDR=172.30.0.5', 'MY_DB_PORT_53_TCP_PORT=53', 'MY_DB_PORT_53_TCP_PROTO=tcp',
    'MY_DB_PORT_53_UDP=udp://172.30.0.5:53', 'MY_DB_PORT_53_UDP_ADDR=172.30.0.5', 'MY_DB_PORT_53_UDP_PORT=53', 'MY_DB_PORT_53_UDP_PROTO=udp',
    'MY_DB_PORT_5432_TCP=tcp://172.30.0.5:5432', 'MY_DB_PORT_5432_TCP_ADDR=172.30.0.5', 'MY_DB_PORT_5432_TCP_PORT=5432', 'MY_DB_PORT_5432_TCP_PROTO=tcp',
    'MY_DB_NAME=/web/my-db', 'MY_DB_ENV_PASSWORD=x=y',
  ]);
  assert.deepEqual(linkEnv({ alias: 'db', parentName: 'w', name: 'db', hostname: 'h', ip: '1.2.3.4', env: [], exposedPorts: [] }), ['DB_NAME=/w/db']);
});

test('linkHost: alias, hostname, and the name when it differs from the alias', () => {
  const base = { parentName: 'web', hostname: 'abc123', ip: '172.30.0.5', env: [], exposedPorts: [] };
  assert.equal(linkHost({ ...base, alias: 'data', name: 'db' }), 'data abc123 db:172.30.0.5');
  assert.equal(linkHost({ ...base, alias: 'db', name: 'db' }), 'db abc123:172.30.0.5');
});

test('parseSubnet: network address and prefix; docker\'s "invalid CIDR address" otherwise', () => {
  assert.deepEqual(parseSubnet('10.1.2.3/24'), { network: (10 << 24 | 1 << 16 | 2 << 8) >>> 0, prefix: 24, size: 256 });
  for (const bad of ['notacidr', '10.0.0.0', '10.0.0.256/24', '10.0.0.0/33']) {
    assert.throws(() => parseSubnet(bad), (e: Error) => e instanceof InvalidParameterError && e.message === `invalid CIDR address: ${bad}`, bad);
  }
  assert.throws(() => parseSubnet('10.0.0.0/31'), /too small/);
});
