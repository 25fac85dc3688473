/**
 * Linux signals as docker names them (moby's pkg/signal SignalMap for linux): docker's signal.ParseSignal, used for
 * STOPSIGNAL (build, commit --change, create) and `kill -s`.
 */
import { InvalidParameterError } from './errors.js';

const NAMED: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13,
  ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24,
  XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31, RTMIN: 34, RTMAX: 64,
};
for (let i = 1; i <= 15; i++) NAMED[`RTMIN+${i}`] = 34 + i;
for (let i = 1; i <= 14; i++) NAMED[`RTMAX-${i}`] = 64 - i;

/**
 * docker's signal.ParseSignal: a non-zero number (taken as it is), or a name with or without "SIG" in any case →
 * its number; anything else is dockerd's 400 "Invalid signal: X".
 */
export function parseSignal(raw: string): number {
  if (/^[+-]?\d+$/.test(raw)) {
    const n = Number(raw);
    if (n !== 0) return n;
  } else {
    const n = NAMED[raw.toUpperCase().replace(/^SIG/, '')];
    if (n !== undefined) return n;
  }
  throw new InvalidParameterError(`Invalid signal: ${raw}`);
}

export const SIGKILL = 9;
