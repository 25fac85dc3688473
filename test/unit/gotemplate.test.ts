import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileTemplate, isTableFormat, stripTablePrefix, headerFor, preFormat, sprintf, goJSON, formatValue, isTrue,
  formatList,
} from '../../src/lib/gotemplate.js';
import { TabWriter } from '../../src/lib/tabwriter.js';
import { InvalidParameterError } from '../../src/lib/errors.js';

const run = (src: string, data: unknown, funcs?: Record<string, (...a: unknown[]) => unknown>) => compileTemplate(src, funcs)(data);
const raw = (src: string, data: unknown) => compileTemplate(src, undefined, { raw: true })(data);

function imageRow(repo: string, tag: string) {
  return {
    Containers: 'N/A', CreatedAt: '2026-11-24 16:01:11 +0000 UTC', CreatedSince: 'About a minute ago',
    Digest: '<none>', ID: 'a4dea7034236', Repository: repo, SharedSize: 'N/A', Size: '1.98MB', Tag: tag,
    UniqueSize: 'N/A', VirtualSize: '1.984MB',
  };
}

test('transcript: docker images --format {{json .}} (HTML-escaped <none>)', () => {
  assert.equal(run('{{json .}}', imageRow('busybox', 'latest')),
    '{"Containers":"N/A","CreatedAt":"2026-11-24 16:01:11 +0000 UTC","CreatedSince":"About a minute ago","Digest":"\\u003cnone\\u003e","ID":"a4dea7034236","Repository":"busybox","SharedSize":"N/A","Size":"1.98MB","Tag":"latest","UniqueSize":"N/A","VirtualSize":"1.984MB"}');
});

test('transcript: docker images --format "{{.ID}}: {{.Repository}}"', () => {
  assert.equal(run('{{.ID}}: {{.Repository}}', imageRow('localhost:5002/library/busybox', 'latest')),
    'a4dea7034236: localhost:5002/library/busybox');
});

test('transcript: table format, header row and tabwriter', () => {
  const fmt = 'table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}';
  assert.equal(isTableFormat(fmt), true);
  const headers = { ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG' };
  const tmpl = compileTemplate(fmt);
  const w = new TabWriter();
  w.write(headerFor(fmt, headers) + '\n');
  for (const [r, t] of [['busybox', 'latest'], ['busybox', 'test'], ['localhost:5002/library/busybox', 'latest']] as const) {
    w.write(tmpl(imageRow(r, t)) + '\n');
  }
  assert.equal(w.flush(), [
    'IMAGE ID       REPOSITORY                       TAG',
    'a4dea7034236   busybox                          latest',
    'a4dea7034236   busybox                          test',
    'a4dea7034236   localhost:5002/library/busybox   latest',
    '',
  ].join('\n'));
});

test('transcript: docker inspect --format "{{.Id}} {{.RootFS.Layers}}" (slices print as [a b])', () => {
  const img = {
    Id: 'sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837',
    RootFS: { Type: 'layers', Layers: ['sha256:47bff5f504d5fce83c7dbc76cfc838e99a7522dc37a9297493e99e88d3809d25'] },
  };
  assert.equal(raw('{{.Id}} {{.RootFS.Layers}}', img),
    'sha256:a4dea70342362f9f332f34934583df9612e556157058446f4e0bccb5a3a13837 [sha256:47bff5f504d5fce83c7dbc76cfc838e99a7522dc37a9297493e99e88d3809d25]');
  assert.equal(raw('{{.RootFS}}', img), `map[Layers:[${img.RootFS.Layers[0]}] Type:layers]`);
});

test('transcript: docker inspect --format {{json .Config}} keeps key order; escaping is an option', () => {
  const config = {
    User: 'nobody', ExposedPorts: { '443/tcp': {}, '80/tcp': {} },
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP_HOME=/app', 'NAME=Happy Feet', 'DEBUG=on'],
    Entrypoint: ['sh', '-c'], Cmd: ['cat /app/info'], Volumes: { '/data': {} }, WorkingDir: '/app',
    Labels: { 'com.example.version': '0.1', maintainer: 't@example.com' }, StopSignal: 'SIGTERM',
    Healthcheck: { Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'], Interval: 5000000000, Timeout: 3000000000 },
    OnBuild: ['RUN echo child-build > /onbuild'],
  };
  const inspect = compileTemplate('{{json .Config}}', undefined, { raw: true, jsonEscapeHTML: false });
  assert.equal(inspect({ Config: config }),
    '{"User":"nobody","ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_HOME=/app","NAME=Happy Feet","DEBUG=on"],"Entrypoint":["sh","-c"],"Cmd":["cat /app/info"],"Volumes":{"/data":{}},"WorkingDir":"/app","Labels":{"com.example.version":"0.1","maintainer":"t@example.com"},"StopSignal":"SIGTERM","Healthcheck":{"Test":["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"],"Interval":5000000000,"Timeout":3000000000},"OnBuild":["RUN echo child-build \\u003e /onbuild"]}'
      .replace('\\u003e', '>'));
  assert.equal(run('{{json .}}', { a: '<b>&' }), '{"a":"\\u003cb\\u003e\\u0026"}');
  assert.equal(compileTemplate('{{json .}}', undefined, { jsonEscapeHTML: false })({ a: '<b>&' }), '{"a":"<b>&"}');
  assert.equal(goJSON(new Map([['b', 1], ['a', 2]])), '{"a":2,"b":1}');
  assert.equal(goJSON('\u2028'), '"\\u2028"');
  assert.equal(run('{{json .Missing}}', {}), 'null');
  assert.equal(run('{{json .}}', [1, 'x', null, true]), '[1,"x",null,true]');
});

test('table directive helpers', () => {
  assert.equal(isTableFormat('table {{.ID}}'), true);
  assert.equal(isTableFormat('table'), true);
  assert.equal(isTableFormat('{{.ID}} table'), false);
  assert.equal(stripTablePrefix('table {{.ID}}\t{{.Tag}}  '), '{{.ID}}\t{{.Tag}}');
  assert.equal(stripTablePrefix('{{.ID}}'), '{{.ID}}');
  assert.equal(preFormat('table {{.ID}}\\t{{.Tag}}\\n'), '{{.ID}}\t{{.Tag}}\n');
  assert.equal(preFormat('  {{.ID}}  '), '{{.ID}}');
  assert.equal(run('table {{.ID}}', { ID: 'x' }), 'x');
  assert.equal(run('{{.A}}\\t{{.B}}', { A: 1, B: 2 }), '1\t2');
  assert.equal(raw('{{.A}}\\t{{.B}}', { A: 1, B: 2 }), '1\\t2');
});

test('headerFor: headers, unknown fields, header functions are identities', () => {
  const h = { ID: 'CONTAINER ID', Image: 'IMAGE', Names: 'NAMES', Size: 'SIZE' };
  assert.equal(headerFor('table {{.ID}}\\t{{.Image}}\\t{{.Names}}', h), 'CONTAINER ID\tIMAGE\tNAMES');
  assert.equal(headerFor('table {{.ID}}: {{.Status}}', h), 'CONTAINER ID: STATUS');
  assert.equal(headerFor('table {{.Names | lower}}\\t{{upper .Image}}\\t{{json .Size}}\\t{{truncate .ID 3}}', h), 'NAMES\tIMAGE\tSIZE\tCONTAINER ID');
  assert.equal(headerFor('table {{pad .Image 1 1}}', h), ' IMAGE ');
});

test('fields, maps, missing keys, methods', () => {
  assert.equal(run('{{.A.B.C}}', { A: { B: { C: 'deep' } } }), 'deep');
  assert.equal(run('{{.}}', 'dot'), 'dot');
  assert.equal(run('{{.Missing}}', { A: 1 }), '<no value>');
  assert.equal(run('{{.A.Missing.Deeper}}', { A: {} }), '<no value>');
  assert.equal(run('{{.N}}', { N: null }), '<nil>');
  assert.equal(run('{{.M}}', { M: { b: 2, a: [1, 'x'] } }), 'map[a:[1 x] b:2]');
  assert.equal(run('{{.E}}|{{.O}}', { E: [], O: {} }), '[]|map[]');
  assert.equal(run('{{.F}} {{.I}} {{.B}}', { F: 1.5, I: 1984234, B: false }), '1.5 1984234 false');
  assert.equal(run('{{.F}}', { F: 0.000001 }), '1e-06');
  class Ctx {
    constructor(private readonly id: string) {}
    ID(): string { return this.id.slice(0, 4); }
    Label(k: unknown): string { return `label:${String(k)}`; }
    get Upper(): string { return this.id.toUpperCase(); }
  }
  assert.equal(run('{{.ID}} {{.Label "x"}} {{.Upper}}', new Ctx('abcdefgh')), 'abcd label:x ABCDEFGH');
  assert.equal(run('{{"y" | .Label}}', new Ctx('a')), 'label:y');
  assert.equal(run('{{.Fn}}', { Fn: () => 'called' }), 'called');
  assert.equal(run('{{.Labels.k}} {{index .Labels "k"}} [{{index .Labels "nope"}}] {{.Labels.nope}}', { Labels: { k: 'v' } }),
    'v v [] <no value>');
  assert.equal(run('{{index .L 1}} {{index .M "a" 0}}', { L: ['x', 'y'], M: { a: ['z'] } }), 'y z');
  assert.equal(run('{{.M.k}}', { M: new Map([['k', 'mapval']]) }), 'mapval');
});

test('pipelines and functions', () => {
  assert.equal(run('{{.X | upper}}', { X: 'abc' }), 'ABC');
  assert.equal(run('{{.X | lower | printf "%s!"}}', { X: 'ABC' }), 'abc!');
  assert.equal(run('{{join .RepoTags ","}}', { RepoTags: ['busybox:latest', 'busybox:test'] }), 'busybox:latest,busybox:test');
  assert.equal(run('{{split .S ":"}}', { S: 'a:b:c' }), '[a b c]');
  assert.equal(run('{{join (split .S ":") "-"}}', { S: 'a:b:c' }), 'a-b-c');
  assert.equal(run('{{title .S}}', { S: 'hello world-foo bar_baz' }), 'Hello World-Foo Bar_baz');
  assert.equal(run('[{{pad .S 2 1}}][{{pad "" 2 2}}]', { S: 'x' }), '[  x ][]');
  assert.equal(run('{{truncate .S 3}}|{{truncate "ab" 3}}', { S: 'abcdef' }), 'abc|ab');
  assert.equal(run('{{len .L}} {{len .S}} {{len .M}}', { L: [1, 2, 3], S: 'héllo', M: { a: 1 } }), '3 6 1');
  assert.equal(run('{{slice "abcdef" 1 3}} {{slice .L 1}}', { L: [1, 2, 3] }), 'bc [2 3]');
  assert.equal(run('{{print 1 2 "a" 3 "b" "c"}}', {}), '1 2a3bc');
  assert.equal(run('{{println 1 "a"}}', {}), '1 a\n');
  assert.equal(run('{{html "<a href=\'x\'>&</a>"}}', {}), '&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;');
  assert.equal(run('{{urlquery "a b&c"}}', {}), 'a+b%26c');
  assert.equal(run('{{shout .X}}', { X: 'hi' }, { shout: (s) => `${String(s)}!!` }), 'hi!!');
  assert.equal(run('{{upper .X}}', { X: 'hi' }, { upper: (s) => `custom ${String(s)}` }), 'custom hi');
  assert.equal(run('{{(index .L 0).Name}}', { L: [{ Name: 'first' }] }), 'first');
});

test('comparisons and logic', () => {
  assert.equal(run('{{eq .A "x"}} {{eq .A "y" "x"}} {{ne .A "x"}} {{eq 1 1}}', { A: 'x' }), 'true true false true');
  assert.equal(run('{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}} {{lt "a" "b"}} {{gt "b" "a"}}', {}), 'true true false true true true');
  assert.equal(run('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "x"}} {{or 0 ""}} {{not 0}} {{not "a"}}', {}), '0 2 x  true false');
  // and / or stop at the deciding argument: the erroring call is never made
  assert.equal(run('{{or .A (index .L 9)}}', { A: 'set', L: [] }), 'set');
  assert.equal(run('{{and .A (index .L 9)}}', { A: '', L: [] }), '');
  assert.equal(run('{{if and .A (not .B)}}ok{{end}}', { A: 1, B: 0 }), 'ok');
  assert.throws(() => run('{{eq 1 "a"}}', {}), /error calling eq: incompatible types for comparison/);
  assert.throws(() => run('{{lt true false}}', {}), /error calling lt: invalid type for comparison/);
});

test('if / else if / else, with, truthiness', () => {
  const t = compileTemplate('{{if eq .A "x"}}X{{else if eq .A "y"}}Y{{else}}other{{end}}');
  assert.equal(t({ A: 'x' }), 'X');
  assert.equal(t({ A: 'y' }), 'Y');
  assert.equal(t({ A: 'z' }), 'other');
  assert.equal(run('{{with .A}}<{{.}}>{{else}}none{{end}}', { A: 'v' }), '<v>');
  assert.equal(run('{{with .A}}<{{.}}>{{else}}none{{end}}', { A: '' }), 'none');
  assert.equal(run('{{with .A}}a{{else with .B}}b={{.}}{{end}}', { A: 0, B: 'bee' }), 'b=bee');
  for (const falsy of [false, 0, '', [], {}, null, undefined]) {
    assert.equal(run('{{if .V}}T{{else}}F{{end}}', { V: falsy }), 'F', String(falsy));
  }
  for (const truthy of [true, 1, -1, 'x', [0], { a: 1 }]) {
    assert.equal(run('{{if .V}}T{{else}}F{{end}}', { V: truthy }), 'T', String(truthy));
  }
  assert.equal(isTrue(new Map()), false);
});

test('range: slices, maps (sorted keys), ints, else, break/continue, $', () => {
  assert.equal(run('{{range .L}}[{{.}}]{{end}}', { L: ['a', 'b'] }), '[a][b]');
  assert.equal(run('{{range $i, $v := .L}}{{$i}}={{$v}} {{end}}', { L: ['a', 'b'] }), '0=a 1=b ');
  assert.equal(run('{{range $v := .L}}{{$v}}{{end}}', { L: ['a', 'b'] }), 'ab');
  assert.equal(run('{{range $k, $v := .M}}{{$k}}:{{$v}};{{end}}', { M: { z: 1, a: 2, m: 3 } }), 'a:2;m:3;z:1;');
  assert.equal(run('{{range .E}}x{{else}}empty{{end}}', { E: [] }), 'empty');
  assert.equal(run('{{range .Missing}}x{{else}}none{{end}}', {}), 'none');
  assert.equal(run('{{range 3}}{{.}}{{end}}', {}), '012');
  assert.equal(run('{{range $i, $e := .L}}{{if eq $i 2}}{{break}}{{end}}{{$e}}{{end}}', { L: ['a', 'b', 'c', 'd'] }), 'ab');
  assert.equal(run('{{range .L}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}', { L: ['a', 'b', 'c'] }), 'ac');
  assert.equal(run('{{range .L}}{{$.Name}}:{{.}} {{end}}', { Name: 'n', L: [1, 2] }), 'n:1 n:2 ');
  assert.equal(run('{{range .Outer}}{{range .}}{{.}}{{end}};{{end}}', { Outer: [[1, 2], [3]] }), '12;3;');
  assert.throws(() => run('{{range .S}}{{end}}', { S: 'str' }), /range can't iterate over str/);
});

test('variables: declare, assign, scope', () => {
  assert.equal(run('{{$x := "a"}}{{$x}}{{$x = "b"}}{{$x}}', {}), 'ab');
  assert.equal(run('{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}', {}), '21');
  assert.equal(run('{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}', {}), '2');
  assert.equal(run('{{with $v := .A}}{{$v}}{{end}}', { A: 'w' }), 'w');
  assert.equal(run('{{$n := len .L}}{{$n}}', { L: [1, 2] }), '2');
  assert.equal(run('{{$.A}}', { A: 'root' }), 'root');
  assert.equal(run('{{$m := .M}}{{$m.k}}', { M: { k: 'v' } }), 'v');
});

test('whitespace trimming and comments', () => {
  assert.equal(run('a  {{- .X -}}  b', { X: 1 }), 'a1b');
  assert.equal(run('a\n\t{{- .X}}\n b', { X: 1 }), 'a1\n b');
  assert.equal(run('{{.X -}}\n\n  b', { X: 1 }), '1b');
  assert.equal(run('a{{/* comment */}}b', {}), 'ab');
  assert.equal(run('a {{- /* comment */ -}} b', {}), 'ab');
  assert.equal(run('{{-3}}', {}), '-3'); // a negative number, not a trim marker
});

test('literals: strings with Go escapes, raw strings, numbers, chars, nil/bool', () => {
  assert.equal(raw('{{"a\\tb\\u00e9\\x41\\101\\"q\\""}}', {}), 'a\tbéAA"q"');
  assert.equal(raw('{{`raw\\t{{x}}`}}', {}), 'raw\\t{{x}}');
  assert.equal(run('{{0x1F}} {{1e3}} {{1.5}} {{0o17}} {{1_000}} {{.5}}', {}), '31 1000 1.5 15 1000 0.5');
  assert.equal(run("{{'a'}} {{printf \"%c\" 'x'}}", {}), '97 x');
  assert.equal(run('{{true}} {{false}}', {}), 'true false');
});

test('printf verbs', () => {
  assert.equal(sprintf('%s|%-10s|%10s|%.2s', 'a', 'left', 'right', 'xyz'), 'a|left      |     right|xy');
  assert.equal(sprintf('%d|%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%#x', 42, 42, 42, -42, 7, 255, 255, 8, 5, 255),
    '42|   42|42   |-0042|+7|ff|FF|10|101|0xff');
  assert.equal(sprintf('%v|%v|%v|%v|%v', 'str', 1.5, [1, 2], { b: 1, a: 'x' }, null), 'str|1.5|[1 2]|map[a:x b:1]|<nil>');
  assert.equal(sprintf('%q|%q|%x|%X|%#x', 'a"b\n', 'é', 'hi', 'hi', 'hi'), '"a\\"b\\n"|"é"|6869|6869|0x6869');
  assert.equal(sprintf('%f|%.2f|%8.3f|%e|%g|%g|%.3g', 3.14159, 3.14159, 3.14159, 1234.5678, 1234.5678, 1e21, 1984234 / 1e6),
    '3.141590|3.14|   3.142|1.234568e+03|1234.5678|1e+21|1.98');
  assert.equal(sprintf('%t|%%|%c|%U', true, 65, 0x1f600), 'true|%|A|U+1F600');
  assert.equal(sprintf('%d|%s', 'x', 5), '%!d(string=x)|%!s(int=5)');
  assert.equal(sprintf('%d %d', 1), '1 %!d(MISSING)');
  assert.equal(sprintf('%d', 1, 'extra'), '1%!(EXTRA string=extra)');
  assert.equal(sprintf('%*d|%-*d|', 5, 1, 3, 2), '    1|2  |');
  assert.equal(sprintf('%s', ['a', 'b']), '[a b]');
  assert.equal(sprintf('%d', 1.5), '%!d(float64=1.5)');
  assert.equal(run('{{printf "%-12s%5d" .Name .N}}', { Name: 'web', N: 80 }), 'web            80');
  assert.equal(formatValue([null, 'a', [true]]), '[<nil> a [true]]');
});

test('parse errors: Go-like messages as InvalidParameterError', () => {
  const cases: Array<[string, string]> = [
    ['{{.X}', 'template: :1: unexpected "}" in operand'],
    ['{{.X', 'template: :1: unclosed action'],
    ['{{}}', 'template: :1: missing value for command'],
    ['{{end}}', 'template: :1: unexpected {{end}}'],
    ['{{else}}', 'template: :1: unexpected {{else}}'],
    ['{{if}}x{{end}}', 'template: :1: missing value for if'],
    ['{{if .A}}', 'template: :1: unexpected EOF'],
    ['{{range .A}}x{{else}}y{{else}}z{{end}}', 'template: :1: expected end; found {{else}}'],
    ['{{nope .A}}', 'template: :1: function "nope" not defined'],
    ['{{$x}}', 'template: :1: undefined variable "$x"'],
    ['{{"abc}}', 'template: :1: unterminated quoted string'],
    ['{{.A | "b"}}', 'template: :1: non executable command in pipeline stage 2'],
    ['{{break}}', 'template: :1: {{break}} outside {{range}}'],
    ['line1\n{{.A}}\n{{.B', 'template: :3: unclosed action'],
    ['{{(.A}}', 'template: :1: unclosed left paren'],
    ['{{.A)}}', 'template: :1: unexpected right paren'],
    ['{{3.A}}', 'template: :1: bad number syntax: "3.A"'],
  ];
  for (const [src, msg] of cases) {
    assert.throws(() => compileTemplate(src, undefined, { raw: true }), (e: unknown) => {
      assert.ok(e instanceof InvalidParameterError, `${src}: ${String(e)}`);
      assert.equal(e.message, msg, src);
      return true;
    });
  }
});

test('execution errors: position and context', () => {
  const check = (src: string, data: unknown, msg: string) => {
    const t = compileTemplate(src, undefined, { raw: true });
    assert.throws(() => t(data), (e: unknown) => {
      assert.ok(e instanceof InvalidParameterError);
      assert.equal(e.message, msg, src);
      return true;
    });
  };
  check('{{.A.B}}', { A: 'str' }, 'template: :1:2: executing "" at <.A.B>: can\'t evaluate field B in type string');
  check('x\n {{index .L 5}}', { L: [1] }, 'template: :2:3: executing "" at <index .L 5>: error calling index: index out of range: 5');
  check('{{len .Missing}}', {}, 'template: :1:2: executing "" at <len .Missing>: error calling len: len of untyped nil');
  check('{{.X 1}}', { X: 'v' }, 'template: :1:2: executing "" at <.X>: X is not a method but has arguments');
  check('{{"a" 1}}', {}, 'template: :1:2: executing "" at <"a">: can\'t give argument to non-function "a"');
  check('{{upper 1}}', {}, 'template: :1:2: executing "" at <upper 1>: error calling upper: wrong type for value; expected string; got int');
  check('{{join "a"}}', {}, 'template: :1:2: executing "" at <join>: wrong number of args for join: want 2 got 1');
});

test('spaces inside actions, trimmed else, else-if chains', () => {
  assert.equal(run('{{ .A }}|{{ if .A }}y{{ else }}n{{ end }}', { A: 1 }), '1|y');
  assert.equal(run('{{if .A -}} y {{- else -}} n {{- end}}', { A: 0 }), 'n');
  const chain = compileTemplate('{{if eq .A 1}}one{{else if eq .A 2}}two{{else if eq .A 3}}three{{else}}many{{end}}');
  assert.deepEqual([1, 2, 3, 9].map((A) => chain({ A })), ['one', 'two', 'three', 'many']);
  assert.equal(run('{{ range .L }}{{ . }}{{ end }}', { L: [1, 2] }), '12');
  assert.equal(run('{{.A | printf "%s-%s" "p"}}', { A: 'x' }), 'p-x');
  assert.throws(() => compileTemplate('{{range $i, $v := .L}}{{end}}{{$i}}'), /undefined variable "\$i"/);
});

test('formatList: docker formatter output for lists', () => {
  const headers = { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE' };
  const fmt = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
  // docker images -f dangling=true with no match: only the header
  assert.equal(formatList(fmt, [], headers), 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
  assert.equal(formatList(fmt, [imageRow('busybox', 'latest'), imageRow('busybox', 'test')], headers), [
    'REPOSITORY   TAG       IMAGE ID       CREATED              SIZE',
    'busybox      latest    a4dea7034236   About a minute ago   1.98MB',
    'busybox      test      a4dea7034236   About a minute ago   1.98MB',
    '',
  ].join('\n'));
  // not a table: one line per row, tabs left alone, no header
  assert.equal(formatList('{{.ID}}\\t{{.Tag}}', [imageRow('busybox', 'latest')], headers), 'a4dea7034236\tlatest\n');
  assert.equal(formatList('{{.ID}}', [], headers), '');
  assert.throws(() => formatList('{{.ID', [], headers), /^InvalidParameterError: template parsing error: template: :1: unclosed action$/);
  assert.throws(() => formatList('{{.ID.X}}', [imageRow('a', 'b')], headers),
    /template parsing error: template: :1:2: executing "" at <.ID.X>: can't evaluate field X in type string/);
});
