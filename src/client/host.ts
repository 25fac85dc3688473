/**
 * Where the CLI connects: -H flag, then DOCKER_HOST / WHARF_HOST, then the default socket.
 * Accepts docker's forms: unix:///path, unix://path, tcp://host:port, host:port, https://…, fd:// is refused.
 */
export const DEFAULT_HOST = 'unix:///run/wharf/wharf.sock';
export const DEFAULT_DOCKER_TCP_PORT = 2375;
export const DEFAULT_DOCKER_TLS_PORT = 2376;

export type Endpoint =
  | { kind: 'unix'; socketPath: string; url: string }
  | { kind: 'tcp'; host: string; port: number; tls: boolean; url: string };

export class HostError extends Error {}

/** Parses a docker host string ("unix:///run/x.sock", "tcp://1.2.3.4:2375", ":2375", "localhost"). */
export function parseHost(raw: string, tls = false): Endpoint {
  let s = raw.trim();
  if (s === '') s = DEFAULT_HOST;
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(s);
  let proto = m ? m[1]!.toLowerCase() : 'tcp';
  let rest = m ? m[2]! : s;
  if (proto === 'unix') {
    if (rest === '') rest = '/run/wharf/wharf.sock';
    return { kind: 'unix', socketPath: rest, url: `unix://${rest}` };
  }
  if (proto === 'http') proto = 'tcp';
  if (proto === 'https') { proto = 'tcp'; tls = true; }
  if (proto !== 'tcp') throw new HostError(`Invalid bind address format: ${raw}`);
  rest = rest.replace(/\/.*$/, '');
  let host = rest;
  let portStr = '';
  const v6 = /^\[([^\]]*)\](?::(\d*))?$/.exec(rest);
  if (v6) { host = v6[1]!; portStr = v6[2] ?? ''; } else {
    const i = rest.lastIndexOf(':');
    if (i >= 0) { host = rest.slice(0, i); portStr = rest.slice(i + 1); }
  }
  if (host === '') host = '127.0.0.1';
  const port = portStr === '' ? (tls ? DEFAULT_DOCKER_TLS_PORT : DEFAULT_DOCKER_TCP_PORT) : Number(portStr);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new HostError(`Invalid bind address format: ${raw}`);
  const h = host.includes(':') ? `[${host}]` : host;
  return { kind: 'tcp', host, port, tls, url: `tcp://${h}:${port}` };
}

/** The host to use and whether it was chosen explicitly (flag or environment) rather than defaulted. */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): { host: string; explicit: boolean } {
  if (flag !== undefined && flag !== '') return { host: flag, explicit: true };
  const e = env.WHARF_HOST || env.DOCKER_HOST;
  if (e) return { host: e, explicit: true };
  return { host: DEFAULT_HOST, explicit: false };
}
