import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInstructions, parseGoDuration } from '../../src/engine/build/dockerfile/instructions.js';
import { parseDockerfile } from '../../src/engine/build/dockerfile/parser.js';
import { expandWord, expandWords } from '../../src/engine/build/dockerfile/shell-lex.js';

// The multi-stage Dockerfile of ../shared/reference/docker-transcript.txt ("docker build -f Dockerfile.full").
const FULL = `FROM busybox AS base
LABEL com.example.version=0.1 maintainer="t@example.com"
ARG VERSION=1.0
ENV APP_HOME=/app NAME="Happy Feet" \\
    DEBUG=on
WORKDIR $APP_HOME
COPY hom* ./
COPY ["f 1.txt", "./spaced/"]
ADD ctx.tar.gz /extracted/
RUN echo "version=$VERSION name=$NAME" > /app/info && cd /tmp && echo gone > lost
RUN ["sh", "-c", "echo exec form > /app/exec"]
USER nobody
EXPOSE 80 443/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s CMD wget -q -O- http://localhost/ || exit 1
STOPSIGNAL SIGTERM
ONBUILD RUN echo child-build > /onbuild
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/info"]

FROM busybox
COPY --from=base /app /app
COPY --from=0 /app/exec /exec2
CMD ["cat", "/app/info"]
`;

test('the transcript\'s Dockerfile.full: 22 steps in 2 stages, originals as docker prints them', () => {
  const df = parseInstructions(FULL);
  assert.equal(df.all.length, 22);
  assert.equal(df.stages.length, 2);
  assert.equal(df.stages[0]!.name, 'base');
  assert.equal(df.stages[1]!.name, undefined);
  assert.equal(df.all[3]!.node.original, 'ENV APP_HOME=/app NAME="Happy Feet"     DEBUG=on');
  assert.equal(df.all[13]!.node.original, 'HEALTHCHECK --interval=5s --timeout=3s CMD wget -q -O- http://localhost/ || exit 1');
  assert.equal(df.all[1]!.node.original, 'LABEL com.example.version=0.1 maintainer="t@example.com"');
  const env = df.all[3]!;
  assert.equal(env.kind, 'env');
  if (env.kind === 'env') assert.deepEqual(env.pairs, ['APP_HOME=/app', 'NAME="Happy Feet"', 'DEBUG=on']);
  const hc = df.all[13]!;
  assert.equal(hc.kind, 'healthcheck');
  if (hc.kind === 'healthcheck') {
    assert.deepEqual(hc.test, ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1']);
    assert.equal(hc.interval, 5e9);
    assert.equal(hc.timeout, 3e9);
  }
  const copy = df.all[6]!;
  assert.equal(copy.kind, 'copy');
  if (copy.kind === 'copy') { assert.deepEqual(copy.sources, ['f 1.txt']); assert.equal(copy.dest, './spaced/'); }
  const from2 = df.stages[1]!.commands[0]!;
  assert.equal(from2.kind, 'copy');
  if (from2.kind === 'copy') assert.equal(from2.from, 'base');
  const run = df.all[8]!;
  assert.ok(run.kind === 'run' && run.shellForm && run.args.length === 1);
  const runExec = df.all[9]!;
  assert.ok(runExec.kind === 'run' && !runExec.shellForm);
  if (runExec.kind === 'run') assert.deepEqual(runExec.args, ['sh', '-c', 'echo exec form > /app/exec']);
  const ob = df.all[15]!;
  assert.ok(ob.kind === 'onbuild' && ob.expression === 'RUN echo child-build > /onbuild');
});

test('unknown instruction names its line as docker does', () => {
  assert.throws(() => parseInstructions('FROM busybox\nRUNN echo hi\n'), { message: 'dockerfile parse error line 2: unknown instruction: RUNN' });
  assert.throws(() => parseInstructions('# comment\n\nFROM busybox\nRUN true \\\n  && true\nfrob x\n'), { message: 'dockerfile parse error line 6: unknown instruction: FROB' });
});

test('instructions are case-insensitive; comments and empty lines inside continuations are skipped', () => {
  const df = parseInstructions('from busybox\nrun echo a \\\n# inner comment\n  echo b\n');
  assert.equal(df.all[1]!.kind, 'run');
  assert.equal(df.all[1]!.node.original, 'run echo a   echo b');
  assert.equal(df.all[1]!.node.startLine, 2);
  assert.equal(df.all[1]!.node.endLine, 4);
});

test('escape directive switches the continuation character', () => {
  const df = parseInstructions('# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY c:\\dir\\ d\n');
  assert.equal(df.directives.escape, '`');
  assert.equal(df.all[1]!.node.original, 'RUN echo a   b');
  const c = df.all[2]!;
  assert.ok(c.kind === 'copy' && c.sources[0] === 'c:\\dir\\' && c.dest === 'd');
});

test('a directive after an instruction is just a comment; duplicate directives fail', () => {
  const df = parseInstructions('FROM busybox\n# escape=`\nRUN echo a \\\n b\n');
  assert.equal(df.directives.escape, '\\');
  assert.throws(() => parseInstructions('# escape=`\n# escape=\\\nFROM x\n'), /only one escape parser directive/);
});

test('heredocs on RUN and COPY, with <<- tab stripping and quoted delimiters', () => {
  const df = parseDockerfile('FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-"END" /dest\n\thello $X\n\tEND\nCMD ["sh"]\n');
  assert.equal(df.nodes.length, 4);
  const run = df.nodes[1]!;
  assert.equal(run.heredocs[0]!.content, 'echo one\necho two\n');
  assert.equal(run.heredocs[0]!.quoted, false);
  const copy = df.nodes[2]!;
  assert.equal(copy.heredocs[0]!.content, 'hello $X\n');
  assert.equal(copy.heredocs[0]!.quoted, true);
  assert.deepEqual(copy.args, ['<<-"END"', '/dest']);
  assert.equal(df.nodes[3]!.startLine, 9);
  assert.throws(() => parseDockerfile('FROM x\nRUN <<EOF\necho\n'), /line 2: unterminated heredoc EOF/);
});

test('argument errors name the line', () => {
  assert.throws(() => parseInstructions('FROM a b\n'), { message: 'dockerfile parse error line 1: FROM requires either one or three arguments' });
  assert.throws(() => parseInstructions('FROM a\nENV\n'), /line 2: ENV must have two arguments/);
  assert.throws(() => parseInstructions('FROM a\nENV A=1 B\n'), /line 2: Syntax error - can't find = in "B"/);
  assert.throws(() => parseInstructions('FROM a\nCOPY onlyone\n'), /line 2: COPY requires at least two arguments/);
  assert.throws(() => parseInstructions('FROM a\nCOPY --frm=x a b\n'), /line 2: Unknown flag: frm/);
  assert.throws(() => parseInstructions('RUN x\n'), /line 1: no build stage in current context/);
  assert.throws(() => parseInstructions('\n# only comments\n'), /file with no instructions/);
  assert.throws(() => parseInstructions('FROM a\nONBUILD ONBUILD RUN x\n'), /ONBUILD ONBUILD/);
  assert.throws(() => parseInstructions('FROM a\nHEALTHCHECK --retries=0 CMD true\n'), /--retries cannot be less than 1/);
});

test('meta ARGs before FROM, legacy ENV form, ARG without default', () => {
  const df = parseInstructions('ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS Build\nENV PATH /usr/bin:/bin\nARG X\n');
  assert.equal(df.metaArgs.length, 2);
  assert.deepEqual(df.metaArgs[0]!.args, [{ key: 'BASE', value: 'busybox' }]);
  assert.deepEqual(df.metaArgs[1]!.args, [{ key: 'TAG' }]);
  assert.equal(df.stages[0]!.name, 'build');
  const env = df.stages[0]!.commands[0]!;
  assert.ok(env.kind === 'env' && env.pairs[0] === 'PATH=/usr/bin:/bin');
  const from = df.stages[0]!.from;
  assert.equal(expandWord(from.image, { BASE: 'busybox' }), 'busybox:latest');
});

test('shell lexer: substitutions, quotes, escapes', () => {
  const env = { A: 'x', EMPTY: '', SP: 'a b' };
  assert.equal(expandWord('$A', env), 'x');
  assert.equal(expandWord('${A}y', env), 'xy');
  assert.equal(expandWord('${NOPE:-def}', env), 'def');
  assert.equal(expandWord('${EMPTY:-def}', env), 'def');
  assert.equal(expandWord('${EMPTY-def}', env), '');
  assert.equal(expandWord('${A:+set}', env), 'set');
  assert.equal(expandWord('${NOPE:+set}', env), '');
  assert.equal(expandWord("'$A'", env), '$A');
  assert.equal(expandWord('"$A $SP"', env), 'x a b');
  assert.equal(expandWord('\\$A', env), '$A');
  assert.equal(expandWord('"Happy Feet"', env), 'Happy Feet');
  assert.equal(expandWord('a$', env), 'a$');
  assert.deepEqual(expandWords('80 "443/tcp" $SP', env), ['80', '443/tcp', 'a', 'b']);
  assert.throws(() => expandWord('${NOPE:?must be set}', env), /NOPE: must be set/);
  assert.throws(() => expandWord('"open', env), /double-quote/);
});

test('Go durations', () => {
  assert.equal(parseGoDuration('5s'), 5e9);
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('100ms'), 1e8);
  assert.throws(() => parseGoDuration('5x'), /time: unknown unit "x" in duration "5x"/);
  assert.throws(() => parseGoDuration('5'), /time: missing unit in duration "5"/);
  assert.throws(() => parseGoDuration('s'), /time: invalid duration "s"/);
  assert.equal(parseGoDuration('-1.5h'), -5400e9);
  assert.equal(parseGoDuration('.5s'), 5e8);
});
