/**
 * A git repository for remote-context tests: `files` committed under `sub/` on branch `main` with a second branch
 * `rel`, cloned bare to `<root>/srv/repo.git` and prepared for dumb HTTP (`git update-server-info`), so that any
 * static file server over `<root>/srv` serves it as `/repo.git`. Returns the working tree's path.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function gitContextRepo(root: string, files: Record<string, string>): Promise<string> {
  const work = join(root, 'work');
  await mkdir(join(work, 'sub'), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(work, 'sub', name), content);
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...a], { cwd: work, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-qm', 'x');
  git('branch', 'rel');
  execFileSync('git', ['clone', '-q', '--bare', work, join(root, 'srv', 'repo.git')], { stdio: 'pipe' });
  execFileSync('git', ['update-server-info'], { cwd: join(root, 'srv', 'repo.git'), stdio: 'pipe' });
  return work;
}
