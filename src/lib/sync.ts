/** Concurrency primitives for async code. */

/** Runs async work one at a time, in call order (a failed run does not stop the next). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => {});
    return p;
  }
}

/** A Mutex per key (created on first use, dropped when idle): work on one key runs in call order, keys in parallel. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const p = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = p.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return p;
  }
  /** Keys with work queued or running (for tests and diagnostics). */
  get size(): number { return this.tails.size; }
}

/**
 * A counting semaphore: at most `max` holders at once, waiters served in order. A released slot passes straight
 * to the next waiter, so a newcomer cannot take it in between.
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly max: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.active--;
  }
  /** `fn` while holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
  /** Holders now (for tests and diagnostics). */
  get holders(): number { return this.active; }
}
