/**
 * Docker's progress rendering (pkg/jsonmessage JSONProgress.String as dockerd, with no terminal, sends it:
 * width 200, so the bar is always drawn; the daemon sets no start time, so there is no time-left box).
 */

import { humanSize } from '../../lib/units.js';

export { humanSize };

/** JSONProgress.String(): "[====>     ]  1.2MB/2.3MB"; "" when nothing is known. */
export function progressBar(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  let pct = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  if (pct < 0) pct = 0;
  const bar = `[${'='.repeat(pct)}>${' '.repeat(50 - pct)}] `;
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}
