/**
 * The stage plan: which stages a build needs (the target, `--target` or the last, and what it depends on through
 * FROM <stage> and COPY --from), in what order, and the step numbers docker prints ("Step n/total").
 */
import { InvalidParameterError } from '../../lib/errors.js';
import type { Dockerfile, Stage } from './dockerfile/instructions.js';
import { expandWord } from './dockerfile/shell-lex.js';
import { parseRunMount } from './dockerfile/run-mounts.js';

export interface StagePlan {
  /** Index of the stage whose image the build answers with. */
  target: number;
  /** Needed stages, by index, ascending (stages not in it are skipped). */
  order: number[];
  /** Steps in all: meta ARGs, then each needed stage's FROM and commands. */
  total: number;
  /** Per needed stage: the step number before its FROM. */
  firstStep: Map<number, number>;
}

export function planStages(df: Dockerfile, o: { target?: string; metaEnv: ReadonlyMap<string, string> }): StagePlan {
  let target = df.stages.length - 1;
  if (o.target) {
    const t = df.stages.find((s) => s.name === o.target!.toLowerCase());
    if (!t) throw new InvalidParameterError(`failed to reach build target ${o.target} in Dockerfile`);
    target = t.index;
  }
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const dep of stageDependencies(df, df.stages[i]!, o.metaEnv)) visit(dep);
  };
  visit(target);
  const order = [...needed].sort((a, b) => a - b);
  const firstStep = new Map<number, number>();
  let step = df.metaArgs.length;
  for (const i of order) { firstStep.set(i, step); step += 1 + df.stages[i]!.commands.length; }
  return { target, order, total: step, firstStep };
}

/** Earlier stages a stage needs (FROM <stage>, COPY --from=<stage|index>, RUN --mount=from=…; a from with a variable: all of them). */
export function stageDependencies(df: Dockerfile, stage: Stage, metaEnv: ReadonlyMap<string, string>): number[] {
  const out: number[] = [];
  const byRef = (ref: string): number | null => {
    const s = df.stages.find((x) => x.name === ref.toLowerCase() && x.index < stage.index);
    if (s) return s.index;
    if (/^\d+$/.test(ref) && Number(ref) < stage.index) return Number(ref);
    return null;
  };
  // a stage named further down is refused (BuildKit would build it first; the classic builder would take the
  // name for an image and try to pull it)
  const later = (ref: string, line: number, what: string) => {
    const l = df.stages.find((x) => x.name === ref.toLowerCase() && x.index > stage.index);
    if (l && !df.stages.some((x) => x.name === ref.toLowerCase() && x.index < stage.index)) {
      throw new InvalidParameterError(`dockerfile parse error line ${line}: ${what} uses stage "${l.name}", which is defined later (line ${l.from.node.startLine}): a stage can only use the stages before it`);
    }
  };
  let fromRef = stage.from.image;
  try { fromRef = expandWord(fromRef, metaEnv, df.directives.escape); } catch { /* unresolved */ }
  later(fromRef, stage.from.node.startLine, 'FROM');
  const f = df.stages.find((x) => x.name === fromRef.toLowerCase() && x.index < stage.index);
  if (f) out.push(f.index);
  const refs: { ref: string; line: number; what: string }[] = [];
  for (const c of stage.commands) {
    if (c.kind === 'copy' && c.from !== undefined) refs.push({ ref: c.from, line: c.node.startLine, what: 'COPY --from' });
    // RUN --mount=…,from=<stage>: a bind or a cache seeded from that stage
    if (c.kind === 'run') {
      for (const m of c.mounts) {
        const from = parseRunMount(m, { deferVars: true }).from;
        if (from !== undefined) refs.push({ ref: from, line: c.node.startLine, what: 'RUN --mount from=' });
      }
    }
  }
  for (const { ref, line, what } of refs) {
    if (ref.includes('$')) { for (let i = 0; i < stage.index; i++) out.push(i); continue; }
    later(ref, line, what);
    const i = byRef(ref);
    if (i !== null) out.push(i);
  }
  return out;
}
