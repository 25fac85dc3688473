/**
 * Entry point of the wharf CLI (bin/wharf). It turns on Node's on-disk compile cache before anything
 * else is loaded (commander and the CLI modules then start from cached bytecode), then runs app.ts.
 */
import * as nodeModule from 'node:module';
import type * as FsNs from 'node:fs';
import { mark } from './trace.js';

/** Runs the CLI with `argv` (without node and script); resolves with the exit status. */
export async function main(argv: string[], io?: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  mark('main');
  const app = await import('./app.js');
  mark('loaded');
  return io ? app.main(argv, io) : app.main(argv);
}

const require = nodeModule.createRequire(import.meta.url);
const isMain = process.argv[1] !== undefined && import.meta.filename === (require('node:fs') as typeof FsNs).realpathSync(process.argv[1]);
if (isMain) {
  try { nodeModule.enableCompileCache?.(); } catch { /* no cache: slower start only */ }
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
