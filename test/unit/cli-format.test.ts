/**
 * Golden tests of the images / history / system df renderers: API answers from the reference trace,
 * expected lines from the reference transcript (docker 28 against dockerd 20.10).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderImages, renderHistory, renderDf, imageRowSources, truncateId } from '../../src/cli/formatters.js';
import type { ImageSummary, HistoryItem, DiskUsage } from '../../src/client/types.js';

const CREATED = 1795536071; // 2026-11-24 16:01:11 UTC
const NOW = (CREATED + 90) * 1000; // "About a minute ago"

const busybox: ImageSummary = {
  Containers: -1, Created: CREATED, Id: 'sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837', Labels: null,
  ParentId: 'sha256:3386094372c5f0311bde9083f48b9eadfa60f7c2896241b16f22fc822f419a43',
  RepoDigests: ['localhost:5002/library/busybox@sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a'],
  RepoTags: ['busybox:latest', 'busybox:test', 'localhost:5002/library/busybox:latest'], SharedSize: -1, Size: 1984234, VirtualSize: 1984234,
};
const dangling: ImageSummary = {
  Containers: -1, Created: CREATED, Id: 'sha256:3386094372c5f0311bde9083f48b9eadfa60f7c2896241b16f22fc822f419a43', Labels: null, ParentId: '',
  RepoDigests: ['<none>@<none>'], RepoTags: ['<none>:<none>'], SharedSize: -1, Size: 1984234, VirtualSize: 1984234,
};

test('images: default table (transcript)', () => {
  assert.equal(renderImages([busybox], {}, NOW), [
    'REPOSITORY                       TAG       IMAGE ID       CREATED              SIZE',
    'busybox                          latest    a4dea7034236   About a minute ago   1.98MB',
    'busybox                          test      a4dea7034236   About a minute ago   1.98MB',
    'localhost:5002/library/busybox   latest    a4dea7034236   About a minute ago   1.98MB',
    '',
  ].join('\n'));
});

test('images -a: dangling rows as <none>', () => {
  assert.equal(renderImages([dangling, busybox], {}, NOW).split('\n')[1],
    '<none>                           <none>    3386094372c5   About a minute ago   1.98MB');
});

test('images --digests: digest per repository, <none> for others', () => {
  assert.equal(renderImages([busybox], { digests: true }, NOW), [
    'REPOSITORY                       TAG       DIGEST                                                                    IMAGE ID       CREATED              SIZE',
    'busybox                          latest    <none>                                                                    a4dea7034236   About a minute ago   1.98MB',
    'busybox                          test      <none>                                                                    a4dea7034236   About a minute ago   1.98MB',
    'localhost:5002/library/busybox   latest    sha256:84f4bb29f561687555dd4f92c1038c9c627c4cf33b51015f4b2eff88fbd4d98a   a4dea7034236   About a minute ago   1.98MB',
    '',
  ].join('\n'));
});

test('images --no-trunc, -q, empty table header', () => {
  assert.match(renderImages([busybox], { noTrunc: true }, NOW), /^busybox {26}latest {4}sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837 {3}About a minute ago {3}1\.98MB$/m);
  assert.equal(renderImages([busybox], { quiet: true }, NOW), 'a4dea7034236\na4dea7034236\na4dea7034236\n');
  assert.equal(renderImages([], {}, NOW), 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
});

test('images --format: plain, table and {{json .}} (key set and escaping as docker)', () => {
  assert.equal(renderImages([busybox], { format: '{{.ID}}: {{.Repository}}' }, NOW),
    'a4dea7034236: busybox\na4dea7034236: busybox\na4dea7034236: localhost:5002/library/busybox\n');
  assert.equal(renderImages([busybox], { format: 'table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}' }, NOW), [
    'IMAGE ID       REPOSITORY                       TAG',
    'a4dea7034236   busybox                          latest',
    'a4dea7034236   busybox                          test',
    'a4dea7034236   localhost:5002/library/busybox   latest',
    '',
  ].join('\n'));
  const json = renderImages([busybox], { format: '{{json .}}' }, NOW).split('\n')[0];
  assert.equal(json, '{"Containers":"N/A","CreatedAt":"2026-11-24 16:01:11 +0000 UTC","CreatedSince":"About a minute ago","Digest":"\\u003cnone\\u003e","ID":"a4dea7034236","Repository":"busybox","SharedSize":"N/A","Size":"1.98MB","Tag":"latest","UniqueSize":"N/A","VirtualSize":"1.984MB"}');
  assert.equal(renderImages([busybox], { format: 'json' }, NOW).split('\n')[0], json);
});

test('images: digest-only references become <none>-tag rows', () => {
  const img: ImageSummary = { ...busybox, RepoTags: null };
  const rows = imageRowSources([img], false);
  assert.deepEqual(rows.map((r) => [r.repo, r.tag, r.digest]), [['localhost:5002/library/busybox', '<none>', '']]);
  assert.equal(truncateId('sha256:a4dea70342362f9f'), 'a4dea7034236');
});

const history: HistoryItem[] = [
  { Comment: '', Created: CREATED, CreatedBy: '/bin/sh -c #(nop)  CMD ["sh"]', Id: busybox.Id, Size: 0, Tags: ['busybox:latest'] },
  { Comment: '', Created: CREATED, CreatedBy: '/bin/sh -c #(nop) ADD file:d7bac1946deb357137d7fa759cf8115a865db93695d8598aa59d1724ad58d12b in / ', Id: dangling.Id, Size: 1984234, Tags: null },
];

test('history: truncated CREATED BY with an ellipsis, trailing padding (transcript)', () => {
  assert.equal(renderHistory(history, {}, NOW), [
    'IMAGE          CREATED              CREATED BY                                      SIZE      COMMENT',
    'a4dea7034236   About a minute ago   /bin/sh -c #(nop)  CMD ["sh"]                   0B        ',
    '3386094372c5   About a minute ago   /bin/sh -c #(nop) ADD file:d7bac1946deb35713…   1.98MB    ',
    '',
  ].join('\n'));
});

test('history --no-trunc (transcript), -q, --human=false', () => {
  assert.equal(renderHistory(history, { noTrunc: true }, NOW), [
    'IMAGE                                                                     CREATED              CREATED BY                                                                                          SIZE      COMMENT',
    'sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837   About a minute ago   /bin/sh -c #(nop)  CMD ["sh"]                                                                       0B        ',
    'sha256:3386094372c5f0311bde9083f48b9eadfa60f7c2896241b16f22fc822f419a43   About a minute ago   /bin/sh -c #(nop) ADD file:d7bac1946deb357137d7fa759cf8115a865db93695d8598aa59d1724ad58d12b in /    1.98MB    ',
    '',
  ].join('\n'));
  assert.equal(renderHistory(history, { quiet: true }, NOW), 'a4dea7034236\n3386094372c5\n');
  const plain = renderHistory(history, { human: false }, NOW).split('\n');
  assert.equal(plain[0], 'IMAGE          CREATED AT             CREATED BY                                      SIZE      COMMENT');
  assert.match(plain[2]!, /^3386094372c5   2026-11-24T16:01:11Z   .*1984234 {3}$/);
});

const du: DiskUsage = {
  LayersSize: 1984234,
  Images: [{ ...busybox, Containers: 0, SharedSize: 0, RepoTags: ['busybox:latest'] }],
  Containers: [], Volumes: [], BuildCache: [],
};

test('system df (transcript)', () => {
  assert.equal(renderDf(du, {}, NOW), [
    'TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE',
    'Images          1         0         1.984MB   1.984MB (100%)',
    'Containers      0         0         0B        0B',
    'Local Volumes   0         0         0B        0B',
    'Build Cache     0         0         0B        0B',
    '',
  ].join('\n'));
});

test('system df -v (transcript)', () => {
  assert.equal(renderDf(du, { verbose: true }, NOW), [
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

test('system df: an image in use is not reclaimable', () => {
  const used: DiskUsage = { ...du, Images: [{ ...du.Images![0]!, Containers: 1 }] };
  assert.equal(renderDf(used, {}, NOW).split('\n')[1], 'Images          1         1         1.984MB   0B (0%)');
  assert.equal(renderDf(du, { format: '{{.Type}}={{.Reclaimable}}' }, NOW).split('\n')[0], 'Images=1.984MB (100%)');
});
