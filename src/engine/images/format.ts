/** How dockerd formats image data: Go's GOARCH, RFC 3339 times, container.Config JSON, path.Match, filter times. */
import type { ContainerConfig } from './types.js';

/** The Docker version written into configs this engine creates (import, bootstrap). */
export const DOCKER_VERSION = '20.10.24';

export const ZERO_TIME = '0001-01-01T00:00:00Z';
const ZERO_UNIX = -62135596800;

const TIME_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i;

/** A config time as Go's time.Format(RFC3339Nano) prints it after parsing ("" / absent → zero time). */
export function goTimeString(s: string | undefined): string {
  if (!s) return ZERO_TIME;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_TIME;
  const frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[3]!.toUpperCase() === 'Z' || m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]!;
  return `${m[1]}${frac ? '.' + frac : ''}${zone}`;
}

/** Unix seconds of a config time (Go's Time.Unix()); absent → the zero time's. */
export function goUnix(s: string | undefined): number {
  if (!s) return ZERO_UNIX;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_UNIX;
  const ms = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`);
  return Number.isNaN(ms) ? ZERO_UNIX : Math.floor(ms / 1000);
}

/** Sortable time of a config: [unix ms, nanos within the ms]. */
export function timeKey(s: string | undefined): number {
  if (!s) return ZERO_UNIX * 1000;
  const m = TIME_RE.exec(s);
  if (!m) return ZERO_UNIX * 1000;
  const base = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`);
  const frac = Number(`0.${m[2] ?? '0'}`);
  return base + frac * 1000;
}

/** container.Config as Go marshals it (field order, nulls, omitempty). */
export function goContainerConfig(c: ContainerConfig | undefined | null): Record<string, unknown> {
  const x = c ?? {};
  const o: Record<string, unknown> = {
    Hostname: x.Hostname ?? '',
    Domainname: x.Domainname ?? '',
    User: x.User ?? '',
    AttachStdin: x.AttachStdin ?? false,
    AttachStdout: x.AttachStdout ?? false,
    AttachStderr: x.AttachStderr ?? false,
  };
  if (x.ExposedPorts && Object.keys(x.ExposedPorts).length) o.ExposedPorts = x.ExposedPorts;
  o.Tty = x.Tty ?? false;
  o.OpenStdin = x.OpenStdin ?? false;
  o.StdinOnce = x.StdinOnce ?? false;
  o.Env = x.Env ?? null;
  o.Cmd = x.Cmd ?? null;
  if (x.Healthcheck) o.Healthcheck = x.Healthcheck;
  if (x.ArgsEscaped) o.ArgsEscaped = true;
  o.Image = x.Image ?? '';
  o.Volumes = x.Volumes ?? null;
  o.WorkingDir = x.WorkingDir ?? '';
  o.Entrypoint = x.Entrypoint ?? null;
  if (x.NetworkDisabled) o.NetworkDisabled = true;
  const mac = (x as Record<string, unknown>).MacAddress;
  if (typeof mac === 'string' && mac) o.MacAddress = mac;
  o.OnBuild = x.OnBuild ?? null;
  o.Labels = x.Labels ?? null;
  if (x.StopSignal) o.StopSignal = x.StopSignal;
  const st = (x as Record<string, unknown>).StopTimeout;
  if (typeof st === 'number') o.StopTimeout = st;
  if (x.Shell && x.Shell.length) o.Shell = x.Shell;
  return o;
}

