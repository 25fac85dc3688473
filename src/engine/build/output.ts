import type { JSONMessage, ProgressSink } from '../../lib/jsonmessage.js';

/** Orders output of concurrently built stages: the earliest unfinished stage streams live, later ones buffer. */
export class StageOutput {
  private head = 0;
  private readonly bufs: JSONMessage[][];
  private readonly done: boolean[];
  constructor(private readonly n: number, private readonly sink: ProgressSink) {
    this.bufs = Array.from({ length: n }, () => []);
    this.done = Array.from({ length: n }, () => false);
  }
  /** After a stage failed: later stages' output is dropped (they were stopped). */
  limit = Infinity;
  emit(i: number, m: JSONMessage): void {
    if (i > this.limit) return;
    if (i === this.head) this.sink(m);
    else this.bufs[i]!.push(m);
  }
  /** Releases everything still buffered, in stage order. */
  flushAll(upTo = this.n - 1): void {
    for (let i = this.head + 1; i <= upTo; i++) { for (const m of this.bufs[i]!) this.sink(m); this.bufs[i] = []; }
    this.head = this.n;
  }
  finish(i: number): void {
    this.done[i] = true;
    while (this.head < this.n && this.done[this.head]) {
      this.head++;
      if (this.head < this.n && this.head <= this.limit) { for (const m of this.bufs[this.head]!) this.sink(m); this.bufs[this.head] = []; }
    }
  }
}
