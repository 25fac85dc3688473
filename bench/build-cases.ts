/**
 * Build contexts the build benchmarks share. Issue 17's case: a small two-stage project (ARG before FROM, ARG, ENV,
 * WORKDIR, COPY with a wildcard, ADD of a .tar.gz, RUN; then WORKDIR, COPY --from twice, COPY of a directory, CMD)
 * in a context of ~20 files, with a .dockerignore leaving out a log, two directories and the vendored sources.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileP } from './support.js';

/** Writes issue 17's project at `proj` (made) and returns it. */
export async function writeIssue17Project(proj: string): Promise<string> {
  for (const d of ['src', 'config', 'vendor', 'tmp', 'docs']) await mkdir(join(proj, d), { recursive: true });
  for (let i = 0; i < 10; i++) await writeFile(join(proj, 'src', `part${i}.txt`), `part ${i}\n`.repeat(50 + i));
  await writeFile(join(proj, 'src', 'README.md'), 'not copied (the wildcard takes *.txt)\n');
  for (const f of ['app.conf', 'log.conf', 'env.conf']) await writeFile(join(proj, 'config', f), `${f}=1\n`);
  for (let i = 0; i < 8; i++) await writeFile(join(proj, 'vendor', `lib${i}.js`), `module.exports = ${i};\n`.repeat(200));
  await execFileP('tar', ['-czf', join(proj, 'vendor.tar.gz'), '-C', join(proj, 'vendor'), '.']);
  await writeFile(join(proj, 'build.log'), 'ignored\n');
  await writeFile(join(proj, 'tmp', 'scratch'), 'ignored\n');
  await writeFile(join(proj, 'docs', 'notes.md'), 'ignored\n');
  await writeFile(join(proj, '.dockerignore'), ['*.log', 'tmp', 'docs', 'vendor'].join('\n') + '\n');
  await writeFile(join(proj, 'Dockerfile'), [
    'ARG BASE=busybox',
    'FROM ${BASE} AS builder',
    'ARG VERSION=1.0',
    'ENV APP_HOME=/app VERSION=${VERSION}',
    'WORKDIR /app',
    'COPY src/*.txt ./src/',
    'ADD vendor.tar.gz /opt/vendor/',
    'RUN cat src/*.txt > /app/all.txt && ls /opt/vendor > /app/vendor.list',
    'FROM busybox',
    'WORKDIR /app',
    'COPY --from=builder /app/all.txt ./',
    'COPY --from=builder /app/vendor.list ./',
    'COPY config/ ./config/',
    'CMD ["cat", "/app/all.txt"]',
  ].join('\n') + '\n');
  return proj;
}
