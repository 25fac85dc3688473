/**
 * The one config evaluator (build/config-eval.ts) and commit/import -c through it (build/changes.ts): the rules
 * of dockerd 20.10's dispatchers that the builder and `-c` used to apply differently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConfigInstruction, checkSignal, normalizeWorkdir, withDefaultPath, DEFAULT_PATH } from '../../src/engine/build/config-eval.js';
import { parseInstructions } from '../../src/engine/build/dockerfile/instructions.js';
import { applyChanges } from '../../src/engine/build/changes.js';

function one(line: string) {
  const ins = parseInstructions(`FROM scratch\n${line}\n`).stages[0]!.commands[0]!;
  return ins as Parameters<typeof applyConfigInstruction>[1];
}

test('EXPOSE ranges expand to one port each, for the builder and for -c alike', () => {
  const r = applyConfigInstruction({}, one('EXPOSE 8000-8002/UDP 80'), { vars: new Map(), cmdSet: false });
  assert.deepEqual(Object.keys(r.config.ExposedPorts!).sort(), ['80/tcp', '8000/udp', '8001/udp', '8002/udp']);
  assert.equal(r.history, 'EXPOSE 80 8000-8002/UDP');
  const c = applyChanges({}, ['EXPOSE 7000-7001']);
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['7000/tcp', '7001/tcp']);
});

test('WORKDIR: absolute kept as written (trailing slash too), relative joined and cleaned', () => {
  assert.equal(normalizeWorkdir('/x', '/root/'), '/root/');
  assert.equal(normalizeWorkdir('/root/', 'sub/'), '/root/sub');
  assert.equal(normalizeWorkdir('', 'a/../b'), '/b');
  assert.throws(() => normalizeWorkdir('/', ''), /cannot normalize nothing/);
  assert.equal(applyChanges({ WorkingDir: '/srv' }, ['WORKDIR app/']).WorkingDir, '/srv/app');
  assert.equal(applyChanges({}, ['WORKDIR /root/']).WorkingDir, '/root/');
});

test('STOPSIGNAL is checked as dockerd\'s ParseSignal, in both paths', () => {
  for (const ok of ['SIGQUIT', 'quit', 'SIGRTMIN+3', '9']) assert.doesNotThrow(() => checkSignal(ok), ok);
  for (const bad of ['SIGFOO', '0', 'SIG', '']) assert.throws(() => checkSignal(bad), /Invalid signal/, bad);
  assert.throws(() => applyChanges({}, ['STOPSIGNAL SIGNOPE']), /Invalid signal: SIGNOPE/);
  assert.equal(applyChanges({}, ['STOPSIGNAL SIGUSR1']).StopSignal, 'SIGUSR1');
});

test('words expand with the config\'s Env as it stands before each change; ENV then LABEL', () => {
  const c = applyChanges({ Env: ['A=1'] }, ['ENV B=$A-x', 'LABEL l=$B']);
  assert.deepEqual(c.Env, ['A=1', 'B=1-x']);
  assert.deepEqual(c.Labels, { l: '1-x' });
});

test('CMD/ENTRYPOINT: shell form through the config\'s shell, ENTRYPOINT drops an inherited CMD', () => {
  const c = applyChanges({ Cmd: ['sh'], ArgsEscaped: true, Shell: ['/bin/bash', '-c'] }, ['ENTRYPOINT run me']);
  assert.deepEqual(c.Entrypoint, ['/bin/bash', '-c', 'run me']);
  assert.equal(c.Cmd, null);
  assert.equal(c.ArgsEscaped, undefined);
  const kept = applyChanges({}, ['CMD ["a"]', 'ENTRYPOINT ["b"]']);
  assert.deepEqual(kept.Cmd, ['a']);
  assert.deepEqual(kept.Entrypoint, ['b']);
});

test('HEALTHCHECK: the shell form is CMD-SHELL with its command once; history as docker prints it', () => {
  const c = applyChanges({}, ['HEALTHCHECK --interval=5s CMD curl -f http://x/']);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'curl -f http://x/'], Interval: 5_000_000_000 });
  const r = applyConfigInstruction(c, one('HEALTHCHECK NONE'), { vars: new Map(), cmdSet: false });
  assert.deepEqual(r.config.Healthcheck, { Test: ['NONE'] });
  assert.match(r.note ?? '', /overriding previous HEALTHCHECK: \[CMD-SHELL curl -f http:\/\/x\/\]/);
});

test('the input config is not changed; the default PATH only when none is set', () => {
  const base = { Env: ['A=1'] };
  applyChanges(base, ['ENV A=2']);
  assert.deepEqual(base.Env, ['A=1']);
  assert.deepEqual(withDefaultPath(['A=1']), ['A=1', `PATH=${DEFAULT_PATH}`]);
  assert.deepEqual(withDefaultPath(['PATH=/x']), ['PATH=/x']);
  assert.throws(() => applyChanges({}, ['RUN true']), /run is not a valid change command/);
});
