/** Running a helper program (no shell) and collecting what it said. */
import { execFile } from 'node:child_process';

export interface ExecResult {
  /** The exit status (1 when the program was ended by a signal or its output overflowed). */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin` with `args`, writes `input` to its stdin (when given), and resolves with its exit status and output
 * whatever the status; rejects only when the program cannot be started (ENOENT, EACCES…).
 */
export function execCollect(
  bin: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const c = execFile(bin, args, { maxBuffer: opts.maxBuffer ?? 16 << 20, ...(opts.env ? { env: opts.env } : {}) }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: c.exitCode ?? (err ? 1 : 0), stdout, stderr });
    });
    if (opts.input !== undefined) c.stdin!.end(opts.input);
  });
}
