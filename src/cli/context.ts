/** What a command implementation gets: output streams, global options and a lazily connected client. */
import type { EngineClient } from '../client/client.js';

export interface GlobalOptions {
  host?: string;
  debug: boolean;
  logLevel: string;
  config: string;
  tls: boolean;
  tlsverify: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

export interface CliContext {
  globals: GlobalOptions;
  out: (s: string) => void;
  err: (s: string) => void;
  /** stdout is a terminal. */
  isTerminal: boolean;
  /** Terminal columns (200 when unknown, as docker's progress bar assumes). */
  columns: number;
  /** Connects (negotiating the API version; auto-starting wharfd on the default socket). */
  client(): Promise<EngineClient>;
  /** Reads one line from stdin (for confirmation prompts). */
  readLine(): Promise<string>;
  /**
   * The process's raw standard streams, for commands that stream bytes (attach/run/exec/logs, cp, save,
   * load, export, import, build contexts). Text output should still go through out/err.
   */
  stdio: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream };
}

/** An error with docker's exit status; `message` is printed as is (when non-empty). */
export class StatusError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'StatusError';
  }
}

export type Opts = Record<string, unknown>;
export type CommandFn = (ctx: CliContext, args: string[], opts: Opts) => Promise<void>;

/** The user declined a prompt: docker exits 0 without printing more. */
export class CancelledError extends Error {}

/**
 * docker's PromptForConfirmation (prune commands without `-f`): `message [y/N] ` on stdout, then one line of stdin;
 * only `y` or `Y` (spaces around it ignored) goes on, anything else stops the command with a CancelledError.
 */
export async function confirmOrCancel(ctx: Pick<CliContext, 'out' | 'readLine'>, message: string, cancelled?: string): Promise<void> {
  ctx.out(`${message} [y/N] `);
  if ((await ctx.readLine()).trim().toLowerCase() !== 'y') throw new CancelledError(cancelled);
}
