/**
 * Waiting in tests: `waitFor(condition)` polls until the condition holds (or throws with the last value seen when
 * the timeout passes), instead of a fixed sleep that is too short on a loaded machine and wasted time otherwise.
 * `sleep(ms)` is for the waits that are the point of a test (a time gap for `since`, letting a process run a
 * while); say why next to each.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeout?: number;
  /** Pause between tries (default 20 ms). */
  interval?: number;
  /** Names what was awaited in the timeout error. */
  message?: string;
}

/**
 * Calls `condition` until it returns a truthy value (which is returned) or the timeout passes; a throwing condition
 * counts as not yet true. The timeout error names `message`, the last value and the last error.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 10_000, interval = opts.interval ?? 20;
  const deadline = Date.now() + timeout;
  let last: unknown, lastErr: unknown;
  for (;;) {
    try {
      last = await condition();
      lastErr = undefined;
      if (last) return last as NonNullable<T>;
    } catch (e) { lastErr = e; }
    if (Date.now() >= deadline) {
      const why = lastErr ? `; last error: ${(lastErr as Error).message ?? lastErr}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${opts.message ?? 'a condition'}${why}`);
    }
    await delay(interval);
  }
}

/** A deliberate pause (the test needs time to pass, not a condition to hold). */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
