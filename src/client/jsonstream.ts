/**
 * Decoding docker's streaming JSON (pull, push, build, load): a sequence of JSON values, usually one per
 * line (\n or \r\n), but the decoder does not depend on the line breaks, like Go's json.Decoder.
 */
import type { JSONMessage } from '../lib/jsonmessage.js';

/** Splits a text stream into complete top-level JSON values. */
export class JSONValueSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escape = false;
  private start = -1;
  private pos = 0;

  /** Feeds text; returns the complete values found so far (as their source text). */
  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    const b = this.buf;
    for (let i = this.pos; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 92 /* \ */) this.escape = true;
        else if (c === 34 /* " */) {
          this.inString = false;
          if (this.depth === 0) { out.push(b.slice(this.start, i + 1)); this.start = -1; }
        }
        continue;
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) {
        if (this.depth === 0 && this.start >= 0) { out.push(b.slice(this.start, i)); this.start = -1; }
        continue;
      }
      if (this.start < 0) this.start = i;
      if (c === 34) this.inString = true;
      else if (c === 123 || c === 91) this.depth++;
      else if (c === 125 || c === 93) {
        this.depth--;
        if (this.depth === 0) { out.push(b.slice(this.start, i + 1)); this.start = -1; }
      }
    }
    // keep only the unfinished value
    if (this.start >= 0) { this.buf = b.slice(this.start); this.pos = this.buf.length; this.start = 0; } else { this.buf = ''; this.pos = 0; }
    return out;
  }

  /** The end of input: a trailing scalar value (no delimiter) or an error for an unfinished one. */
  end(): string[] {
    if (this.buf.trim() === '') return [];
    if (this.depth === 0 && !this.inString) { const v = this.buf.trim(); this.buf = ''; return [v]; }
    throw new SyntaxError('unexpected EOF');
  }
}

/** Decodes a byte stream of JSON messages. */
export async function* decodeJSONMessages(stream: AsyncIterable<Buffer | string>): AsyncGenerator<JSONMessage> {
  const sp = new JSONValueSplitter();
  const dec = new TextDecoder();
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : dec.decode(chunk, { stream: true });
    for (const v of sp.push(text)) yield JSON.parse(v) as JSONMessage;
  }
  for (const v of sp.push(dec.decode())) yield JSON.parse(v) as JSONMessage;
  for (const v of sp.end()) yield JSON.parse(v) as JSONMessage;
}
