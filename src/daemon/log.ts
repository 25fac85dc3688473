/** wharfd's log lines, in dockerd's (logrus text) shape: time="…" level=info msg="…". */
export type Level = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  (level: Level, msg: string): void;
  debugEnabled: boolean;
}

export function createLogger(debug: boolean, out: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = debug ? ORDER.debug : ORDER.info;
  const log = ((level: Level, msg: string) => {
    if (ORDER[level] < min) return;
    const lvl = level === 'warn' ? 'warning' : level;
    out(`time="${new Date().toISOString()}" level=${lvl} msg=${JSON.stringify(msg)}\n`);
  }) as Logger;
  log.debugEnabled = debug;
  return log;
}
