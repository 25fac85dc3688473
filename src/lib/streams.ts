/** Stream helpers. */
import { Readable } from 'node:stream';

/**
 * Reads the first `n` bytes of a fresh (paused) stream without losing them, to look at magic numbers. Returns at
 * least `n` bytes (fewer only when the stream ends first) and the stream to read from instead, which starts at byte
 * 0: `input` itself with the bytes put back, or, when `input` ended meanwhile, a stream of those bytes.
 */
export async function peek(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = input.read() as Buffer | string | null;
    if (c !== null) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      chunks.push(b);
      len += b.length;
      continue;
    }
    if (input.readableEnded || input.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => { cleanup(); resolve(); };
      const fail = (e: Error) => { cleanup(); reject(e); };
      const cleanup = () => {
        input.off('readable', done); input.off('end', done); input.off('close', done); input.off('error', fail);
      };
      input.on('readable', done);
      input.on('end', done);
      input.on('close', done);
      input.on('error', fail);
    });
    const err = (input as Readable & { errored?: Error | null }).errored;
    if (err) throw err;
  }
  const head = Buffer.concat(chunks);
  if (input.readableEnded || input.destroyed) return { head, stream: Readable.from(head.length ? [head] : []) };
  if (head.length) input.unshift(head);
  return { head, stream: input };
}
