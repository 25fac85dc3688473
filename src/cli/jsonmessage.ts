/**
 * Rendering docker's JSON message streams the way the docker CLI's pkg/jsonmessage does
 * (DisplayJSONMessagesStream): on a terminal each id keeps its own line, updated in place with
 * ANSI cursor movement and a progress bar; otherwise only lines without progress details are printed.
 */
import type { JSONMessage } from '../lib/jsonmessage.js';
import { humanSize } from '../lib/units.js';
import { goDuration } from '../lib/go.js';
import { StreamError } from '../client/client.js';

interface Progress { current?: number; total?: number; start?: number; units?: string; hidecounts?: boolean }

export interface RenderOptions {
  /** stdout is a terminal: progress bars and in-place updates. */
  isTerminal: boolean;
  /** Terminal width for the progress bar (docker: the window width, 200 when unknown). */
  width?: number;
  /** Called for messages with "aux" (not displayed). */
  onAux?: (m: JSONMessage) => void;
  /** Clock for the time-left estimate (ms). */
  now?: () => number;
}

/** JSONProgress.String(): "[=====>      ]  1.2MB/3.4MB 2s". */
export function progressString(p: Progress, width: number, now: number = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) {
    if (!p.units) return humanSize(current).padStart(8);
    return `${current} ${p.units}`;
  }
  let percentage = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (percentage > 50) percentage = 50;
  let pbBox = '';
  let numbersBox = '';
  let timeLeftBox = '';
  if (width > 110) {
    const numSpaces = 50 - percentage > 0 ? 50 - percentage : 0;
    pbBox = `[${'='.repeat(percentage)}>${' '.repeat(numSpaces)}] `;
  }
  if (p.hidecounts) {
    // nothing
  } else if (!p.units) {
    const c = humanSize(current);
    numbersBox = current > total ? c.padStart(8) : `${c.padStart(8)}/${humanSize(total)}`;
  } else {
    numbersBox = current > total ? `${current} ${p.units}` : `${current}/${total} ${p.units}`;
  }
  if (current > 0 && (p.start ?? 0) > 0 && percentage < 50) {
    const fromStartNs = (now - p.start! * 1000) * 1e6;
    const perEntry = Math.trunc(fromStartNs / current);
    const leftNs = (total - current) * perEntry;
    if (width > 50) timeLeftBox = ` ${goDuration(Math.trunc(leftNs / 1e9) * 1e9)}`;
  }
  return pbBox + numbersBox + timeLeftBox;
}

const ESC = '\x1b[';
const clearLine = `${ESC}2K`;
const up = (n: number) => (n > 0 ? `${ESC}${n}A` : '');
const down = (n: number) => (n > 0 ? `${ESC}${n}B` : '');

/** Renders a stream of messages; write() receives the output. Throws the first error message as StreamError. */
export class JSONMessageRenderer {
  private ids = new Map<string, number>();
  constructor(private readonly write: (s: string) => void, private readonly opts: RenderOptions) {}

  /** One message. */
  display(m: JSONMessage): void {
    if (m.aux !== undefined) {
      this.opts.onAux?.(m);
      return;
    }
    const tty = this.opts.isTerminal;
    const progress = m.progressDetail as Progress | undefined;
    const progressMessage = m.progress ?? '';
    let diff = 0;
    if (m.id !== undefined && m.id !== '' && (progress !== undefined || progressMessage !== '')) {
      let line = this.ids.get(m.id);
      if (line === undefined) {
        line = this.ids.size;
        this.ids.set(m.id, line);
        if (tty) this.write('\n');
      }
      diff = this.ids.size - line;
      if (tty) this.write(up(diff));
    } else {
      this.ids = new Map();
    }
    try {
      this.show(m, progress, progressMessage);
    } finally {
      if (m.id !== undefined && m.id !== '' && tty) this.write(down(diff));
    }
  }

  private show(m: JSONMessage, progress: Progress | undefined, progressMessage: string): void {
    if (m.error !== undefined || m.errorDetail !== undefined) {
      const code = m.errorDetail?.code;
      if (code === 401) throw new StreamError('authentication is required', 401);
      throw new StreamError(m.errorDetail?.message ?? m.error ?? '', code);
    }
    const tty = this.opts.isTerminal;
    const width = this.opts.width ?? 200;
    const now = (this.opts.now ?? Date.now)();
    let endl = '';
    let out = '';
    if (tty && (m.stream ?? '') === '' && progress !== undefined) {
      out += clearLine;
      endl = '\r';
      out += endl;
    } else if (progress !== undefined && progressString(progress, width, now) !== '') {
      return; // no progress bars off a terminal
    }
    if (m.id !== undefined && m.id !== '') out += `${m.id}: `;
    const from = (m as { from?: string }).from;
    if (from) out += `(from ${from}) `;
    const status = m.status ?? '';
    if (progress !== undefined && tty) out += `${status} ${progressString(progress, width, now)}${endl}`;
    else if (progressMessage !== '') out += `${status} ${progressMessage}${endl}`;
    else if ((m.stream ?? '') !== '') out += `${m.stream}${endl}`;
    else out += `${status}${endl}\n`;
    this.write(out);
  }
}

/** Renders a whole stream; resolves when it ends, rejects with the first error message. */
export async function displayJSONMessages(
  stream: AsyncIterable<JSONMessage>,
  write: (s: string) => void,
  opts: RenderOptions,
): Promise<void> {
  const r = new JSONMessageRenderer(write, opts);
  for await (const m of stream) r.display(m);
}
