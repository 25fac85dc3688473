import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IdleTrimmer, sampleSelf, trimMalloc, type SelfSample } from '../../src/daemon/memory.js';
import { discardLogger } from '../../src/lib/log.js';

const MB = 1 << 20;

/** A trimmer over scripted samples: each tick reads the next one. */
function scripted(samples: SelfSample[]) {
  let i = 0;
  let trims = 0;
  let collects = 0;
  const t = new IdleTrimmer(discardLogger, () => samples[Math.min(i++, samples.length - 1)]!, () => { trims++; return true; }, 2000, () => { collects++; });
  return { t, trims: () => trims, collects: () => collects };
}

const s = (cpuMs: number, rssMb: number, threads = 11): SelfSample => ({ cpuUs: cpuMs * 1000, rss: rssMb * MB, threads });

/** Each step: tick `ticks` times, then the trims so far must be `trims` (`why` names the step). */
function expectTrims(x: ReturnType<typeof scripted>, steps: [ticks: number, trims: number, why?: string][]): void {
  for (const [ticks, want, why] of steps) {
    for (let i = 0; i < ticks; i++) x.t.tick();
    assert.equal(x.trims(), want, why);
  }
}

test('trims once quiet after work, not while busy, and not again without new work', () => {
  // constructor sample, then: busy tick (1 s of CPU in 2 s), quiet tick after it, quiet tick with nothing new
  // (the trim gives back 160 MB, so one follow-up trim comes, which gives back nothing)
  expectTrims(scripted([s(100, 80), s(1100, 250), s(1105, 250), /* after trim */ s(1106, 90), s(1108, 90), /* after */ s(1109, 90),
    s(1110, 90), s(1111, 90)]), [
    [1, 0, 'a busy tick does not trim'],
    [1, 1, 'the first quiet tick after work trims'],
    [1, 2, 'a follow-up after a trim that gave back much'],
    [2, 2, 'quiet ticks with no work since the trim do nothing'],
  ]);
});

test('threads ending or memory growing without CPU make another trim worth it', () => {
  // (each trim gives back less than the follow-up threshold, 1 MB)
  expectTrims(scripted([s(0, 80, 14), s(1, 80, 14), s(2, 80, 11), /* after trim */ s(3, 79.5, 11), s(4, 90, 11), /* after trim */ s(5, 89.5, 11), s(6, 89.5, 11)]), [
    [1, 0, 'no change since start: nothing to do'],
    [1, 1, 'extraction threads ended'],
    [1, 2, 'RSS grew by more than 8 MB'],
    [1, 2],
  ]);
});

test('sampleSelf reads this process', () => {
  const x = sampleSelf();
  assert.ok(x.rss > 10 * MB && x.threads >= 1 && x.cpuUs > 0, JSON.stringify(x));
});

test('trimMalloc gives back freed memory that malloc kept between live allocations', () => {
  // 1 MiB blocks with small live blocks between them: once the big ones are freed, glibc cannot shrink its heap
  // past the small ones and keeps the holes (the dynamic mmap threshold puts 1 MiB blocks in the heap after the
  // first is freed); the trim must give the holes' pages back
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // one mmapped 1 MiB block freed: glibc raises its mmap threshold above 1 MiB
  let warm: Buffer | null = Buffer.allocUnsafeSlow(1 << 20).fill(1);
  assert.equal(warm.length, 1 << 20);
  warm = null;
  gc();
  const big: (Buffer | null)[] = [];
  const small: Buffer[] = [];
  for (let i = 0; i < 160; i++) {
    const b = Buffer.allocUnsafeSlow(1 << 20);
    b.fill(i);
    big.push(b);
    small.push(Buffer.allocUnsafeSlow(4096).fill(i));
  }
  big.length = 0;
  gc();
  gc();
  const before = process.memoryUsage.rss();
  const released = trimMalloc();
  const after = process.memoryUsage.rss();
  assert.equal(small.length, 160);
  assert.ok(released, 'glibc released memory');
  assert.ok(before - after > 64 * MB, `RSS ${before >> 20} MB before the trim, ${after >> 20} MB after`);
});

test('afterStart collects start-up garbage without a malloc trim, and start-up alone makes no tick trim', () => {
  // constructor sample before start-up; afterStart's sample once start-up is done (2 s of CPU, 60 MB); then quiet ticks
  const { t, trims, collects } = scripted([s(10, 40), s(2010, 60), s(2011, 60), s(2012, 60)]);
  t.afterStart();
  assert.equal(collects(), 1, 'a full collection right after start-up');
  assert.equal(trims(), 0, 'no malloc_trim (it would load koffi)');
  t.tick();
  t.tick();
  assert.equal(trims(), 0, 'start-up\'s CPU time is not work to trim after');
});

test('a trim that gave back much is followed by another at the next quiet tick, until one gives back little', () => {
  // constructor; busy; quiet → trim (200 → 120: much); quiet → follow-up (118 → 100: much); quiet → follow-up (100 → 99.5: little); quiet: nothing
  expectTrims(scripted([s(0, 80), s(1000, 200), s(1001, 200), /* after */ s(1002, 120), s(1003, 118), /* after */ s(1004, 100),
    s(1005, 100), /* after */ s(1006, 99.5), s(1007, 99.5), s(1008, 99.5)]), [
    [2, 1],
    [1, 2, 'the first trim gave back 80 MB: another follows without new work'],
    [1, 3, 'the second gave back 18 MB'],
    [2, 3, 'the third gave back 0.5 MB: settled'],
  ]);
});

test('follow-up trims stop after a bounded number even when each gives back something', () => {
  // a trim after work, then every follow-up gives back 2 MB
  const seq = [s(0, 80), s(1000, 300), s(1001, 300)];
  for (let k = 0; k < 20; k++) seq.push(s(1002 + 2 * k, 200 - 2 * k), s(1003 + 2 * k, 200 - 2 * k));
  const { t, trims } = scripted(seq);
  for (let k = 0; k < 20; k++) t.tick();
  assert.equal(trims(), 13, 'the trim work called for, and twelve follow-ups');
});
