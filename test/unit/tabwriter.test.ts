import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TabWriter, tabulate } from '../../src/lib/tabwriter.js';

/** Rows of cells → tab-terminated text, each cell followed by '\t' except the last of a row. */
function rows(...rs: string[][]): string {
  return rs.map((r) => r.join('\t') + '\n').join('');
}

test('docker images table (transcript, verbatim)', () => {
  const w = new TabWriter();
  w.write(rows(
    ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
    ['busybox', 'latest', 'a4dea7034236', 'About a minute ago', '1.98MB'],
    ['busybox', 'test', 'a4dea7034236', 'About a minute ago', '1.98MB'],
    ['localhost:5002/library/busybox', 'latest', 'a4dea7034236', 'About a minute ago', '1.98MB'],
  ));
  assert.equal(w.flush(), [
    'REPOSITORY                       TAG       IMAGE ID       CREATED              SIZE',
    'busybox                          latest    a4dea7034236   About a minute ago   1.98MB',
    'busybox                          test      a4dea7034236   About a minute ago   1.98MB',
    'localhost:5002/library/busybox   latest    a4dea7034236   About a minute ago   1.98MB',
    '',
  ].join('\n'));
  // the writer is empty after a flush
  assert.equal(w.flush(), '');
});

test('empty docker images table: only the header, minimum width 10', () => {
  assert.equal(tabulate(rows(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'])),
    'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
});

test('docker images --digests (long cells widen their column)', () => {
  const d = 'sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a';
  assert.equal(tabulate(rows(
    ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'],
    ['busybox', 'latest', '<none>', 'a4dea7034236', 'About a minute ago', '1.98MB'],
    ['localhost:5002/library/busybox', 'latest', d, 'a4dea7034236', 'About a minute ago', '1.98MB'],
  )), [
    'REPOSITORY                       TAG       DIGEST                                                                    IMAGE ID       CREATED              SIZE',
    'busybox                          latest    <none>                                                                    a4dea7034236   About a minute ago   1.98MB',
    `localhost:5002/library/busybox   latest    ${d}   a4dea7034236   About a minute ago   1.98MB`,
    '',
  ].join('\n'));
});

test('docker history: empty last cell leaves the SIZE padding as trailing spaces; … counts as one rune', () => {
  const out = tabulate(rows(
    ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
    ['616c4c1db139', '1 second ago', 'sh -c mkdir -p /www && echo hi > /www/index.…', '24B', 'changed page'],
    ['a4dea7034236', 'About a minute ago', '/bin/sh -c #(nop)  CMD ["sh"]', '0B', ''],
    ['3386094372c5', 'About a minute ago', '/bin/sh -c #(nop) ADD file:d7bac1946deb35713…', '1.98MB', ''],
  ));
  assert.equal(out, [
    'IMAGE          CREATED              CREATED BY                                      SIZE      COMMENT',
    '616c4c1db139   1 second ago         sh -c mkdir -p /www && echo hi > /www/index.…   24B       changed page',
    'a4dea7034236   About a minute ago   /bin/sh -c #(nop)  CMD ["sh"]                   0B        ',
    '3386094372c5   About a minute ago   /bin/sh -c #(nop) ADD file:d7bac1946deb35713…   1.98MB    ',
    '',
  ].join('\n'));
});

test('docker history of an imported image: an empty middle column', () => {
  assert.equal(tabulate(rows(
    ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
    ['782f9f5dbc9f', '1 second ago', '', '1.98MB', 'Imported from -'],
  )), [
    'IMAGE          CREATED        CREATED BY   SIZE      COMMENT',
    '782f9f5dbc9f   1 second ago                1.98MB    Imported from -',
    '',
  ].join('\n'));
});

test('docker ps: empty PORTS cell', () => {
  assert.equal(tabulate(rows(
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    ['c71da92c7dd6', 'busybox', '"sh"', '2 seconds ago', 'Up Less than a second', '', 'c1'],
  )), [
    'CONTAINER ID   IMAGE     COMMAND   CREATED         STATUS                  PORTS     NAMES',
    'c71da92c7dd6   busybox   "sh"      2 seconds ago   Up Less than a second             c1',
    '',
  ].join('\n'));
});

test('docker system df -v: blank lines split column blocks', () => {
  const text =
    'Images space usage:\n\n' +
    rows(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
      ['busybox', 'latest', 'a4dea7034236', 'About a minute ago', '1.98MB', '0B', '1.984MB', '0']) +
    '\nContainers space usage:\n\n' +
    rows(['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES']) +
    '\nLocal Volumes space usage:\n\n' +
    rows(['VOLUME NAME', 'LINKS', 'SIZE']) +
    '\nBuild cache usage: 0B\n\n' +
    rows(['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED']);
  assert.equal(tabulate(text), [
    'Images space usage:',
    '',
    'REPOSITORY   TAG       IMAGE ID       CREATED              SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS',
    'busybox      latest    a4dea7034236   About a minute ago   1.98MB    0B            1.984MB       0',
    '',
    'Containers space usage:',
    '',
    'CONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES',
    '',
    'Local Volumes space usage:',
    '',
    'VOLUME NAME   LINKS     SIZE',
    '',
    'Build cache usage: 0B',
    '',
    'CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED',
    '',
  ].join('\n'));
});

test('docker system df: summary table', () => {
  assert.equal(tabulate(rows(
    ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
    ['Images', '1', '0', '1.984MB', '1.984MB (100%)'],
    ['Containers', '0', '0', '0B', '0B'],
    ['Local Volumes', '0', '0', '0B', '0B'],
    ['Build Cache', '0', '0', '0B', '0B'],
  )), [
    'TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE',
    'Images          1         0         1.984MB   1.984MB (100%)',
    'Containers      0         0         0B        0B',
    'Local Volumes   0         0         0B        0B',
    'Build Cache     0         0         0B        0B',
    '',
  ].join('\n'));
});

test('docker top: minWidth 20', () => {
  assert.equal(tabulate(rows(
    ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
    ['root', '13024', '13004', '0', '16:02', '?', '00:00:00', 'httpd -f -p 80 -h /www'],
  ), { minWidth: 20 }), [
    'UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD',
    'root                13024               13004               0                   16:02               ?                   00:00:00            httpd -f -p 80 -h /www',
    '',
  ].join('\n'));
});

test('docker version: minWidth 20, padding 1, blocks broken by section lines, trailing spaces on empty values', () => {
  const text = 'Server:\n Engine:\n  Version:\t20.10.24+dfsg1\n  API version:\t1.41 (minimum version 1.12)\n' +
    ' docker-init:\n  Version:\t0.19.0\n  GitCommit:\t\n';
  assert.equal(tabulate(text, { minWidth: 20, padding: 1 }), [
    'Server:',
    ' Engine:',
    '  Version:          20.10.24+dfsg1',
    '  API version:      1.41 (minimum version 1.12)',
    ' docker-init:',
    '  Version:          0.19.0',
    '  GitCommit:        ',
    '',
  ].join('\n'));
});

test('column blocks are per run of adjacent lines (Go semantics)', () => {
  // line 2 has no tab: it ends the block, so column 0 of lines 1 and 3 are sized independently
  const text = 'a\tb\nno tabs here\nlonger-cell-text\tc\n';
  assert.equal(tabulate(text, { minWidth: 0, padding: 1 }),
    'a b\nno tabs here\nlonger-cell-text c\n');
  // a line with fewer cells ends the block for the columns it lacks
  const t2 = 'x\ty\tz\nxx\tlast\nxxx\tyyyy\tz\n';
  assert.equal(tabulate(t2, { minWidth: 0, padding: 1 }),
    'x   y z\nxx  last\nxxx yyyy z\n');
});

test('options: padChar, alignRight, debug, discardEmptyColumns, no trailing newline', () => {
  assert.equal(tabulate('a\tbb\tc\naaa\tb\tc', { minWidth: 0, padding: 1, padChar: '.' }), 'a...bb.c\naaa.b..c');
  assert.equal(tabulate('a\tbb\t\naaa\tb\t\n', { minWidth: 0, padding: 1, alignRight: true }), '   a bb\n aaa  b\n');
  assert.equal(tabulate('a\tb\tc\n', { minWidth: 0, padding: 1, debug: true }), 'a |b |c\n');
  assert.equal(tabulate('a\v\vc\n', { minWidth: 0, padding: 1, discardEmptyColumns: true }), 'a c\n');
  assert.equal(tabulate('a\v\vc\n', { minWidth: 0, padding: 1 }), 'a  c\n');
  assert.equal(tabulate('ab\tc\nd\te\n', { minWidth: 0, tabWidth: 8, padding: 1, padChar: '\t' }), 'ab\tc\nd\te\n');
  assert.equal(tabulate('', {}), '');
  assert.equal(tabulate('plain text\nmore', {}), 'plain text\nmore');
});

test('incremental writes are buffered until flush', () => {
  const w = new TabWriter({ minWidth: 0, padding: 2 });
  w.write('NAME\t');
  w.write('VALUE\nlong-name\tv');
  w.write('\n');
  assert.equal(w.flush(), 'NAME       VALUE\nlong-name  v\n');
});
