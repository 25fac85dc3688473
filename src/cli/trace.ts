/**
 * Start-up trace of the CLI (bench/cli.ts): with WHARF_CLI_TRACE set, `mark()` records the time since the
 * process started (performance.now()) at each phase, and the marks go to stderr as one JSON line at exit.
 * Without the variable a mark costs one property test.
 */
const marks: [string, number][] | undefined = process.env.WHARF_CLI_TRACE ? [] : undefined;
if (marks) {
  // the launcher's own marks (launch.ts), when the CLI runs bundled
  marks.push(...((globalThis as { WHARF_LAUNCH_MARKS?: [string, number][] }).WHARF_LAUNCH_MARKS ?? []));
  process.on('exit', () => {
    marks.push(['exit', performance.now()]);
    process.stderr.write(`WHARF_CLI_TRACE ${JSON.stringify(Object.fromEntries(marks.map(([k, v]) => [k, Math.round(v * 100) / 100])))}\n`);
  });
}

export function mark(name: string): void {
  if (marks) marks.push([name, performance.now()]);
}
