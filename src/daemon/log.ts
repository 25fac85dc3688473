/**
 * wharfd's logger, made once from the configuration: `-D` / daemon.json `"debug": true` means debug level (over
 * any --log-level, as in dockerd), else --log-level / `"log-level"` (default info). Lines go to stderr, which is
 * `<exec-root>/wharfd.log` when the CLI started the daemon. main.ts logs its own events on it and hands it to
 * the composition root (daemon.ts), which gives each engine service a child logger.
 */
import type { DaemonConfig } from '../engine/config.js';
import { createLogger, type LogLevel, type Logger } from '../lib/log.js';

export function effectiveLogLevel(cfg: Pick<DaemonConfig, 'debug' | 'logLevel'>): LogLevel {
  return cfg.debug ? 'debug' : cfg.logLevel;
}

export function daemonLogger(cfg: Pick<DaemonConfig, 'debug' | 'logLevel'>, write?: (line: string) => void): Logger {
  return createLogger({ level: effectiveLogLevel(cfg), ...(write ? { write } : {}) });
}
