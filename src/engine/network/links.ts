/**
 * Legacy links on the default bridge (`--link name[:alias]`), as dockerd 20.10 makes them: environment variables
 * describing the linked container (its exposed ports, its name, its environment) and an /etc/hosts line naming it
 * by alias, hostname and name.
 */

export interface LinkedContainer {
  /** The link's alias (the part after ':' in --link, or the name). */
  alias: string;
  /** The linking container's name, without '/'. */
  parentName: string;
  /** The linked container's name, hostname, address, environment and exposed ports ("80/tcp"). */
  name: string;
  hostname: string;
  ip: string;
  env: string[];
  exposedPorts: string[];
}

/** "db", "db:alias", "/db:/web/alias" → the linked container's name and the alias. */
export function parseLink(spec: string): { name: string; alias: string } {
  const i = spec.indexOf(':');
  const name = (i < 0 ? spec : spec.slice(0, i)).replace(/^\//, '');
  const alias = i < 0 ? name : spec.slice(i + 1).split('/').pop()!;
  return { name, alias };
}

/** dockerd's link environment variables, in its order. */
export function linkEnv(l: LinkedContainer): string[] {
  const alias = l.alias.toUpperCase().replace(/-/g, '_');
  const ports = l.exposedPorts.map((p) => {
    const [n, proto = 'tcp'] = p.split('/') as [string, string | undefined];
    return { n: Number(n), proto: proto.toLowerCase() };
  }).filter((p) => Number.isInteger(p.n)).sort((a, b) => a.n - b.n || (a.proto === 'tcp' ? -1 : b.proto === 'tcp' ? 1 : 0));
  const env: string[] = [];
  if (ports[0]) env.push(`${alias}_PORT=${ports[0].proto}://${l.ip}:${ports[0].n}`);
  for (const p of ports) {
    const prefix = `${alias}_PORT_${p.n}_${p.proto.toUpperCase()}`;
    env.push(`${prefix}=${p.proto}://${l.ip}:${p.n}`, `${prefix}_ADDR=${l.ip}`, `${prefix}_PORT=${p.n}`, `${prefix}_PROTO=${p.proto}`);
  }
  env.push(`${alias}_NAME=/${l.parentName}/${l.alias}`);
  for (const e of l.env) {
    const i = e.indexOf('=');
    if (i < 0) continue;
    const k = e.slice(0, i);
    if (k === 'HOME' || k === 'PATH') continue;
    env.push(`${alias}_ENV_${k}=${e.slice(i + 1)}`);
  }
  return env;
}

/** The /etc/hosts entry ("names:ip", as --add-host) naming a linked container by alias, hostname and name. */
export function linkHost(l: LinkedContainer): string {
  return `${l.alias} ${l.hostname}${l.alias !== l.name ? ` ${l.name}` : ''}:${l.ip}`;
}
