/**
 * Go's text/tabwriter as docker uses it: tab-terminated cells, column widths computed per block of
 * adjacent lines that have a cell in that column. Docker's tables use
 * NewWriter(out, 10, 1, 3, ' ', 0): minWidth 10, tabWidth 1, padding 3, padChar ' ' (the defaults here).
 */

export interface TabWriterOptions {
  /** Minimal cell width including any padding. Default 10. */
  minWidth?: number;
  /** Width of a tab character when padChar is '\t'. Default 1. */
  tabWidth?: number;
  /** Padding added to a cell before computing its width. Default 3. */
  padding?: number;
  /** Padding character. Default ' '. */
  padChar?: string;
  /** Right-align cell contents (Go's AlignRight). */
  alignRight?: boolean;
  /** Columns whose cells are all empty and soft ('\v'-terminated) take no width (Go's DiscardEmptyColumns). */
  discardEmptyColumns?: boolean;
  /** Print '|' between columns (Go's Debug). */
  debug?: boolean;
}

interface Cell {
  text: string;
  /** Width in runes (code points), as Go counts. */
  width: number;
  /** Terminated by '\t' (true) or '\v' (false); the last cell of a line is unterminated. */
  htab: boolean;
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export class TabWriter {
  private readonly minWidth: number;
  private readonly tabWidth: number;
  private readonly padding: number;
  private readonly padChar: string;
  private readonly alignRight: boolean;
  private readonly discardEmpty: boolean;
  private readonly debug: boolean;
  private buf = '';

  constructor(opts: TabWriterOptions = {}) {
    this.minWidth = opts.minWidth ?? 10;
    this.tabWidth = opts.tabWidth ?? 1;
    this.padding = opts.padding ?? 3;
    this.padChar = opts.padChar ?? ' ';
    this.alignRight = opts.alignRight ?? false;
    this.discardEmpty = opts.discardEmptyColumns ?? false;
    this.debug = opts.debug ?? false;
    if (this.padChar.length !== 1) throw new RangeError('padChar must be one character');
  }

  /** Buffers text; nothing is output until flush(). */
  write(text: string): void {
    this.buf += text;
  }

  /** Formats everything written so far and returns it; the writer is then empty. */
  flush(): string {
    const text = this.buf;
    this.buf = '';
    return this.format(text);
  }

  private format(text: string): string {
    // Split into lines of cells.
    const lines: Cell[][] = [[]];
    let cell = '';
    for (const ch of text) {
      if (ch === '\t' || ch === '\v') {
        lines[lines.length - 1]!.push({ text: cell, width: runeCount(cell), htab: ch === '\t' });
        cell = '';
      } else if (ch === '\n' || ch === '\f') {
        lines[lines.length - 1]!.push({ text: cell, width: runeCount(cell), htab: false });
        cell = '';
        lines.push([]);
      } else {
        cell += ch;
      }
    }
    // The trailing, unterminated text (possibly empty) is the last line's last cell.
    lines[lines.length - 1]!.push({ text: cell, width: runeCount(cell), htab: false });

    const out: string[] = [];
    const widths: number[] = [];

    const writePadding = (textw: number, cellw: number): void => {
      if (this.padChar === '\t') {
        // padding with tabs: make cellw the smallest multiple of tabWidth
        if (this.tabWidth === 0) return;
        cellw = Math.ceil(cellw / this.tabWidth) * this.tabWidth;
        const n = cellw - textw;
        if (n > 0) out.push('\t'.repeat(Math.ceil(n / this.tabWidth)));
        return;
      }
      if (cellw > textw) out.push(this.padChar.repeat(cellw - textw));
    };

    const writeLines = (line0: number, line1: number): void => {
      for (let i = line0; i < line1; i++) {
        const line = lines[i]!;
        for (let j = 0; j < line.length; j++) {
          const c = line[j]!;
          if (j > 0 && this.debug) out.push('|');
          if (c.text.length === 0) {
            if (j < widths.length) writePadding(c.width, widths[j]!);
          } else if (this.alignRight) {
            if (j < widths.length) writePadding(c.width, widths[j]!);
            out.push(c.text);
          } else {
            out.push(c.text);
            if (j < widths.length) writePadding(c.width, widths[j]!);
          }
        }
        if (i + 1 < lines.length) out.push('\n');
      }
    };

    const formatBlock = (line0: number, line1: number): void => {
      const column = widths.length;
      for (let cur = line0; cur < line1; cur++) {
        if (column >= lines[cur]!.length - 1) continue;
        // A cell exists in this column: print the lines before the block, then size the block.
        writeLines(line0, cur);
        line0 = cur;
        let width = this.minWidth;
        let discardable = true;
        for (; cur < line1; cur++) {
          const line = lines[cur]!;
          if (column >= line.length - 1) break;
          const c = line[column]!;
          const w = c.width + this.padding;
          if (w > width) width = w;
          if (c.width > 0 || c.htab) discardable = false;
        }
        if (discardable && this.discardEmpty) width = 0;
        widths.push(width);
        formatBlock(line0, cur);
        widths.pop();
        line0 = cur; // line `cur` has no cell in this column: the loop's increment may skip it, as Go does
      }
      writeLines(line0, line1);
    };

    formatBlock(0, lines.length);
    return out.join('');
  }
}

/** Formats a whole table at once with docker's table settings (or the given options). */
export function tabulate(text: string, opts?: TabWriterOptions): string {
  const w = new TabWriter(opts);
  w.write(text);
  return w.flush();
}
