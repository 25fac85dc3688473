/**
 * Networks (issue 15): docker's network objects and the containers' endpoints on them.
 *
 * - The predefined networks: `bridge` (the default bridge, BridgeNetwork in bridge.ts: wharf0, veths and the
 *   userland port proxy, as before), `host` and `none`. Their IDs are made once and kept.
 * - User-defined bridge networks: a record per network under <dataRoot>/network/networks/<id>.json, a subnet
 *   from docker's default pools (172.17-31.0.0/16, then 192.168.0.0/16 in /20s) that no host route, no network
 *   of this daemon and no network of another wharfd on the host (host-wide claims under /run/wharf-ipam) holds,
 *   addresses from Wharf's Ipam (one table per network). Each network its own bridge `br-<id[:12]>` and its
 *   iptables rules (firewall.ts: isolated from other user networks and the default bridge, NAT unless
 *   `internal`), made at create; per container only a veth pair per network (bridge.ts `plugVeths`: one `ip`
 *   process for all of a start's networks, the host ends enslaved over rtnetlink by the daemon) and its names for aardvark-dns (aardvark.ts: container name,
 *   aliases and short ID, answered on the gateway).
 * - A container's endpoints on user networks live in <dataRoot>/network/endpoints/<id>.json (addresses, host veth
 *   names, DNS names), so a restarted daemon tears down what the previous one set up. Published ports go through
 *   the same userland proxy as on the default bridge, to the address on the container's first network.
 *
 * Containers are reached through `ContainerDirectory` (the container service, structurally): this module never
 * imports engine/containers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execCollect } from '../../lib/exec.js';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { randomHex } from '../../lib/random.js';
import { ConflictError, ForbiddenError, InvalidParameterError, NotFoundError, NotImplementedError, SystemError } from '../../lib/errors.js';
import { exactMatch, matchFilter, matchKVList, parseTimestamp, validateFilters, type Filters } from '../../lib/filters.js';
import { rfc3339NanoFixed } from '../../lib/go.js';
import { KeyedMutex, Mutex } from '../../lib/sync.js';
import { discardLogger, type Logger } from '../../lib/log.js';
import type { EndpointResource, EndpointSettings, IpamPoolConfig, NetworkCreateRequest, NetworkPruneReport, NetworkResource } from '../../wire/networks.js';
import { macForIp, pinBridgeMac, plugVeths, userVethName, type BridgeNetwork, type Endpoint, type VethPlug } from './bridge.js';
import { deleteLinks } from './netlink.js';
import { HostClaims, Ipam, intToIp, ipToInt, poolBounds } from './ipam.js';
import { parseLink } from './links.js';
import { Aardvark, type DnsEntry } from './aardvark.js';
import { installNetworkRules, removeNetworkRules } from './firewall.js';
import type { BoundPort, PortMapping } from './portproxy.js';

/** What this module needs of a container (ContainerService's records fit). */
export interface NetContainer {
  ID: string;
  Name: string;
  State: { Running: boolean };
  HostConfig: Record<string, unknown>;
  Config: Record<string, unknown>;
  /** NetworkSettings.Networks of a container on user-defined networks, keyed by network name. */
  Networks?: Record<string, EndpointSettings>;
  /** The default bridge endpoint while running. */
  Net?: { Mode: string; IPAddress: string; IPPrefixLen: number; MacAddress: string; Gateway?: string; Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> };
  /** A container of the default bridge disconnected from it (`network disconnect bridge`): it starts without it. */
  BridgeLeft?: boolean;
}

export interface ContainerDirectory {
  get(ref: string): NetContainer;
  all(): NetContainer[];
  save(c: NetContainer): Promise<void>;
  /** The container's directory, where its resolv.conf (bind-mounted into it) lives. */
  dir(id: string): string;
}

/** Hook for the events module: called after create/connect/disconnect/destroy (docker's network events). */
export type NetworkEventHook = (action: 'create' | 'connect' | 'disconnect' | 'destroy', network: { id: string; name: string; type: string }, container?: string) => void;

interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Driver: 'bridge' | 'host' | 'null';
  Internal: boolean;
  Attachable: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamPoolConfig[] };
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** user-defined bridges: the Linux bridge, subnet and gateway. */
  Bridge?: string;
  Subnet?: string;
  Gateway?: string;
  /** The subnet was given by the user (static addresses are allowed only then, as in docker). */
  UserSubnet?: boolean;
}

interface UserEndpoint {
  netId: string;
  iface: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  endpointId: string;
  /** the host end of the veth pair, on the network's bridge */
  hostVeth: string;
  /** what aardvark-dns answers for it: the container's name, its aliases and short ID */
  names: string[];
  /** the container's --dns: aardvark's upstream servers for its questions */
  dns: string[];
}

/** A container's endpoints on user networks, persisted. */
interface EndpointState {
  netns: string;
  /** the netns was made here (a container whose first network is a user network). */
  own: boolean;
  nets: UserEndpoint[];
  /** A default-bridge container joined to user networks while running: its resolv.conf's name servers before. */
  dnsBefore?: string[];
}

const sh = (bin: string, args: string[], input?: string) => execCollect(bin, args, input === undefined ? {} : { input });
const PREDEFINED = ['bridge', 'host', 'none'] as const;
const SHORT = 12;


/** "a.b.c.d/n" strictly (docker: `invalid CIDR address: x`); returns the network address and prefix. */
export function parseSubnet(cidr: string, maxPrefix = 30): { network: number; prefix: number; size: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) > 32) throw new InvalidParameterError(`invalid CIDR address: ${cidr}`);
  const prefix = Number(m[5]);
  if (prefix > maxPrefix) throw new InvalidParameterError(`invalid subnet ${cidr}: too small for a network`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`) & mask) >>> 0, prefix, size: 2 ** (32 - prefix) };
}

function overlaps(a: { network: number; size: number }, b: { network: number; size: number }): boolean {
  return a.network < b.network + b.size && b.network < a.network + a.size;
}

/** docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut in /20s. */
function* defaultPools(): Generator<string> {
  for (let i = 17; i <= 31; i++) yield `172.${i}.0.0/16`;
  for (let i = 0; i < 256; i += 16) yield `192.168.${i}.0/20`;
}

export interface NetworkServiceDeps {
  dataRoot: string;
  execRoot: string;
  bridge: BridgeNetwork;
  /** aardvark-dns's config directory (a file per network); default <execRoot>/netavark/aardvark-dns. */
  dnsDir?: string;
  /** Host-wide subnet claims shared by every wharfd (default /run/wharf-ipam/pools.json). */
  poolClaims?: string;
  log?: Logger;
}

export class NetworkService {
  private readonly dir: string;
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly ipams = new Map<string, Ipam>();
  private readonly states = new Map<string, EndpointState>();
  /** network create/remove/prune, one at a time */
  private readonly lock = new Mutex();
  /** a container's endpoints change one at a time (start, stop, live connect/disconnect); containers in parallel */
  private readonly ctrLock = new KeyedMutex();
  private readonly claims: HostClaims;
  private readonly dns: Aardvark;
  private containers: ContainerDirectory | null = null;
  /** Set by the composition root when an events module exists. */
  onEvent: NetworkEventHook | null = null;

  private readonly log: Logger;

  constructor(private readonly d: NetworkServiceDeps) {
    this.log = d.log ?? discardLogger;
    this.dir = join(d.dataRoot, 'network');
    this.dns = new Aardvark(d.dnsDir ?? join(d.execRoot, 'netavark', 'aardvark-dns'));
    this.claims = new HostClaims(d.poolClaims ?? '/run/wharf-ipam/pools.json', d.dataRoot, (id) => join(this.dir, 'networks', `${id}.json`));
  }

  setContainers(c: ContainerDirectory): void { this.containers = c; }

  private get ctrs(): ContainerDirectory {
    if (!this.containers) throw new SystemError('network service: no container directory');
    return this.containers;
  }

  async open(): Promise<this> {
    await mkdir(join(this.dir, 'networks'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.dir, 'endpoints'), { recursive: true, mode: 0o700 });
    let ids: Record<string, string> = {};
    try { ids = JSON.parse(await readFile(join(this.dir, 'predefined.json'), 'utf8')) as Record<string, string>; } catch { /* first start */ }
    let changed = false;
    for (const n of PREDEFINED) if (!ids[n]) { ids[n] = randomHex(32); changed = true; } // not node:crypto at start-up (lib/random.ts)
    if (changed) await writeJsonAtomic(join(this.dir, 'predefined.json'), ids, 0o600);
    const created = rfc3339NanoFixed(new Date());
    const b = this.d.bridge;
    this.nets.set(ids.bridge!, {
      Name: 'bridge', Id: ids.bridge!, Created: created, Driver: 'bridge', Internal: false, Attachable: false,
      IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: b.subnet, Gateway: b.gateway }] },
      Options: {
        'com.docker.network.bridge.default_bridge': 'true', 'com.docker.network.bridge.enable_icc': 'true',
        'com.docker.network.bridge.enable_ip_masquerade': 'true', 'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
        'com.docker.network.bridge.name': b.bridge, 'com.docker.network.driver.mtu': '1500',
      },
      Labels: {},
    });
    this.nets.set(ids.host!, { Name: 'host', Id: ids.host!, Created: created, Driver: 'host', Internal: false, Attachable: false, IPAM: { Driver: 'default', Options: null, Config: [] }, Options: {}, Labels: {} });
    this.nets.set(ids.none!, { Name: 'none', Id: ids.none!, Created: created, Driver: 'null', Internal: false, Attachable: false, IPAM: { Driver: 'default', Options: null, Config: [] }, Options: {}, Labels: {} });
    for (const f of await readdir(join(this.dir, 'endpoints'))) {
      if (!f.endsWith('.json')) continue;
      try { this.states.set(f.slice(0, -5), JSON.parse(await readFile(join(this.dir, 'endpoints', f), 'utf8')) as EndpointState); } catch { /* skip */ }
    }
    for (const f of await readdir(join(this.dir, 'networks'))) {
      if (!f.endsWith('.json')) continue;
      let rec: NetworkRecord;
      try { rec = JSON.parse(await readFile(join(this.dir, 'networks', f), 'utf8')) as NetworkRecord; } catch { continue; } // a torn file cannot exist (atomic writes); skip garbage
      this.nets.set(rec.Id, rec);
      // a restarted daemon claims its subnets again (another daemon may have started meanwhile)
      await this.claims.pick(rec.Id, [rec.Subnet!]).catch(this.log.onError('claiming a network\'s subnet again at start', { network: rec.Id }));
      await this.ensureBridge(rec).catch(this.log.onError('making a network\'s bridge again at start', { network: rec.Id }));
      if (this.endpointsOn(rec).length) await this.syncDns(rec).catch(this.log.onError('writing a network\'s names for aardvark-dns at start', { network: rec.Id }));
    }
    return this;
  }

  private ipamOf(n: NetworkRecord): Ipam {
    let i = this.ipams.get(n.Id);
    if (!i) {
      i = new Ipam(join(this.dir, `${n.Id}.ipam.json`), n.Subnet!, n.Gateway, undefined, n.IPAM.Config[0]?.IPRange);
      this.ipams.set(n.Id, i);
    }
    return i;
  }

  private predefined(n: NetworkRecord): boolean { return (PREDEFINED as readonly string[]).includes(n.Name) && !n.Bridge; }

  /** docker's lookup: full ID, exact name, then a unique ID prefix. */
  find(ref: string): NetworkRecord {
    const all = [...this.nets.values()];
    const byId = this.nets.get(ref);
    if (byId) return byId;
    const byName = all.find((n) => n.Name === ref);
    if (byName) return byName;
    const byPrefix = ref ? all.filter((n) => n.Id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0]!;
    if (byPrefix.length > 1) throw new InvalidParameterError(`network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
    throw new NotFoundError(`network ${ref} not found`);
  }

  /** Whether `mode` (HostConfig.NetworkMode) names a user-defined network. */
  isUserNetwork(mode: string): boolean {
    if (['', 'default', 'bridge', 'host', 'none'].includes(mode) || mode.startsWith('container:')) return false;
    try { return !!this.find(mode).Bridge; } catch { return true; }
  }

  // ---------------------------------------------------------------- API: list / inspect / create / remove / prune

  private containersOf(n: NetworkRecord): Record<string, EndpointResource> {
    const out: Record<string, EndpointResource> = {};
    if (!this.containers) return out;
    for (const c of this.containers.all()) {
      if (!c.State.Running) continue;
      if (n.Bridge) {
        const ep = this.states.get(c.ID)?.nets.find((e) => e.netId === n.Id);
        if (ep) out[c.ID] = { Name: c.Name.replace(/^\//, ''), EndpointID: ep.endpointId, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${ep.prefixLen}`, IPv6Address: '' };
      } else if (n.Name === 'bridge' && c.Net && c.Net.IPAddress && !this.isUserNetwork(String(c.HostConfig.NetworkMode ?? 'default'))) {
        out[c.ID] = { Name: c.Name.replace(/^\//, ''), EndpointID: bridgeEndpointId(c.ID), MacAddress: c.Net.MacAddress, IPv4Address: `${c.Net.IPAddress}/${c.Net.IPPrefixLen}`, IPv6Address: '' };
      } else if (n.Name === 'bridge' && c.Networks?.bridge?.IPAddress) {
        const e = c.Networks.bridge;
        out[c.ID] = { Name: c.Name.replace(/^\//, ''), EndpointID: e.EndpointID, MacAddress: e.MacAddress, IPv4Address: `${e.IPAddress}/${e.IPPrefixLen}`, IPv6Address: '' };
      } else if (n.Name === 'host' || n.Name === 'none') {
        const mode = String(c.HostConfig.NetworkMode ?? '');
        if (mode === n.Name) out[c.ID] = { Name: c.Name.replace(/^\//, ''), EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' };
      }
    }
    return out;
  }

  private resource(n: NetworkRecord, withContainers: boolean): NetworkResource {
    return {
      Name: n.Name, Id: n.Id, Created: n.Created, Scope: 'local', Driver: n.Driver, EnableIPv6: false,
      IPAM: { Driver: n.IPAM.Driver, Options: n.IPAM.Options, Config: n.IPAM.Config },
      Internal: n.Internal, Attachable: n.Attachable, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
      Containers: withContainers ? this.containersOf(n) : {}, Options: n.Options, Labels: n.Labels,
    };
  }

  list(filters: Filters): NetworkResource[] {
    validateFilters(filters, ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type']);
    for (const t of filters.type ?? []) if (t !== 'custom' && t !== 'builtin') throw new InvalidParameterError(`invalid filter: 'type'='${t}'`);
    let dangling: boolean | null = null;
    if (filters.dangling?.length) {
      const v = filters.dangling[0]!.toLowerCase();
      if (!['true', 'false', '1', '0'].includes(v)) throw new InvalidParameterError(`invalid filter: 'dangling'='${filters.dangling[0]}'`);
      dangling = v === 'true' || v === '1';
    }
    const out: NetworkResource[] = [];
    for (const n of this.nets.values()) {
      if (!matchFilter(filters, 'driver', n.Driver) && !exactMatch(filters, 'driver', n.Driver)) continue;
      if (filters.id?.length && !filters.id.some((p) => n.Id.startsWith(p))) continue;
      if (!matchFilter(filters, 'name', n.Name)) continue;
      if (!exactMatch(filters, 'scope', 'local')) continue;
      if (!matchKVList(filters, 'label', n.Labels)) continue;
      if (filters.type?.length && !filters.type.includes(this.predefined(n) ? 'builtin' : 'custom')) continue;
      if (dangling !== null) {
        const unused = !this.predefined(n) && Object.keys(this.containersOf(n)).length === 0;
        if (unused !== dangling) continue;
      }
      out.push(this.resource(n, true));
    }
    return out;
  }

  inspect(ref: string): NetworkResource {
    return this.resource(this.find(ref), true);
  }

  /** POST /networks/create: the record, the subnet claimed host-wide, and the bridge with its gateway address. */
  create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.lock.run(async () => {
      const name = req.Name ?? '';
      if (name === '') throw new InvalidParameterError('network name must not be empty');
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new InvalidParameterError(`invalid network name "${name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if ((PREDEFINED as readonly string[]).includes(name)) throw new ForbiddenError(`operation is not permitted on predefined ${name} network`);
      if ([...this.nets.values()].some((n) => n.Name === name)) throw new ConflictError(`network with name ${name} already exists`);
      const driver = req.Driver || 'bridge';
      if (driver !== 'bridge') {
        if (['host', 'null', 'none'].includes(driver)) throw new ForbiddenError(`only one instance of "${driver}" network is allowed`);
        if (['overlay', 'macvlan', 'ipvlan'].includes(driver)) throw new NotImplementedError(`the ${driver} driver is not supported by wharf`);
        throw new NotFoundError(`plugin "${driver}" not found`);
      }
      if (req.EnableIPv6) throw new NotImplementedError('IPv6 networks are not supported by wharf');
      if (req.Ingress) throw new ForbiddenError('ingress network can only be created in swarm mode');
      if (req.ConfigOnly || (req.ConfigFrom && req.ConfigFrom.Network)) throw new NotImplementedError('config-only networks are not supported by wharf');
      const ipamDriver = req.IPAM?.Driver || 'default';
      if (ipamDriver !== 'default') throw new NotFoundError(`plugin "${ipamDriver}" not found`);
      const pools = req.IPAM?.Config ?? [];
      if (pools.length > 1) throw new NotImplementedError('wharf networks have one IPv4 pool');
      const opts = { ...(req.Options ?? {}) };
      const id = randomBytes(32).toString('hex');
      const bridge = opts['com.docker.network.bridge.name'] || `br-${id.slice(0, SHORT)}`;
      if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(bridge)) throw new InvalidParameterError(`invalid bridge name: ${bridge}`);
      if ([...this.nets.values()].some((n) => n.Bridge === bridge || n.Options['com.docker.network.bridge.name'] === bridge)) {
        throw new ConflictError(`bridge name ${bridge} is already used by another network`);
      }
      // an existing device is never adopted (and so never deleted with the network): docker0, wharf0, another's
      if ((await sh('ip', ['-o', 'link', 'show', 'dev', bridge])).code === 0) throw new ConflictError(`bridge name ${bridge} is already in use on the host`);
      const hostRoutes = await this.hostRoutes();
      const ours = [...this.nets.values()].filter((n) => n.IPAM.Config[0]?.Subnet).map((n) => ({ cidr: n.IPAM.Config[0]!.Subnet!, ...parseSubnet(n.IPAM.Config[0]!.Subnet!) }));
      let subnet: string;
      let gateway: string;
      const p = pools[0];
      if (p && p.Subnet) {
        let s: ReturnType<typeof parseSubnet>;
        try { s = parseSubnet(p.Subnet); } catch (e) { throw new InvalidParameterError(`Invalid subnet ${p.Subnet} : ${(e as Error).message}`); }
        subnet = `${intToIp(s.network)}/${s.prefix}`;
        if (ours.some((o) => overlaps(o, s))) throw new ForbiddenError('Pool overlaps with other one on this address space');
        if (p.IPRange) {
          const r = parseSubnet(p.IPRange, 32);
          if (!overlaps(r, s) || r.network < s.network || r.network + r.size > s.network + s.size) throw new InvalidParameterError(`Invalid range ${p.IPRange} for subnet ${p.Subnet}`);
        }
        if (p.Gateway) {
          const g = ipToIntChecked(p.Gateway);
          if (g < s.network || g >= s.network + s.size) throw new ForbiddenError(`Invalid address ${p.Gateway}: It does not belong to any of this network's subnets`);
          gateway = p.Gateway;
        } else {
          // dockerd asks its IPAM for the gateway as for any address: the first of the range, if any (poolBounds)
          gateway = intToIp(poolBounds(subnet, p.IPRange).first);
        }
        if ((await this.claims.pick(id, [subnet])) === null) throw new ForbiddenError('Pool overlaps with other one on this address space');
      } else {
        if (p && (p.Gateway || p.IPRange)) throw new InvalidParameterError('an IP range or gateway needs a subnet');
        const candidates = [...defaultPools()].filter((c) => {
          const s = parseSubnet(c);
          return !ours.some((o) => overlaps(o, s)) && !hostRoutes.some((r) => overlaps(r, s));
        });
        const got = await this.claims.pick(id, candidates);
        if (!got) throw new ForbiddenError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        subnet = got;
        gateway = intToIp(parseSubnet(got).network + 1);
      }
      const rec: NetworkRecord = {
        Name: name, Id: id, Created: rfc3339NanoFixed(new Date()), Driver: 'bridge', Internal: !!req.Internal,
        Attachable: !!req.Attachable,
        // dockerd shows the gateway it chose only for a pool it chose; a given subnet keeps the user's fields
        IPAM: { Driver: 'default', Options: req.IPAM?.Options ?? {}, Config: [{ Subnet: subnet, ...(p?.IPRange ? { IPRange: p.IPRange } : {}), ...(!p?.Subnet || p.Gateway ? { Gateway: gateway } : {}) }] },
        Options: opts, Labels: { ...(req.Labels ?? {}) }, Bridge: bridge, Subnet: subnet, Gateway: gateway, UserSubnet: !!p?.Subnet,
      };
      try {
        await this.ensureBridge(rec, true);
        await writeJsonAtomic(join(this.dir, 'networks', `${id}.json`), rec, 0o600);
      } catch (e) {
        await sh('ip', ['link', 'del', bridge]).catch(this.log.onError('removing the bridge of a network that could not be created', { bridge }));
        await removeNetworkRules(bridge).catch(this.log.onError('removing the iptables rules of a network that could not be created', { bridge }));
        await this.claims.release(id).catch(this.log.onError('releasing the subnet of a network that could not be created', { network: id }));
        throw e;
      }
      this.nets.set(id, rec);
      this.onEvent?.('create', { id, name, type: 'bridge' });
      return { Id: id, Warning: '' };
    });
  }

  private async hostRoutes(): Promise<{ network: number; size: number }[]> {
    const r = await sh('ip', ['-4', '-o', 'route', 'show', 'table', 'all']);
    const out: { network: number; size: number }[] = [];
    for (const line of r.stdout.split('\n')) {
      const f = line.trim().split(/\s+/);
      let dst = f[0];
      if (dst === 'local' || dst === 'broadcast' || dst === 'unicast') dst = f[1];
      if (!dst || dst === 'default' || /table local/.test(line)) continue;
      try { out.push(parseSubnet(dst.includes('/') ? dst : `${dst}/30`)); } catch { /* /31, /32 */ }
    }
    return out;
  }

  /**
   * The network's bridge with its gateway address and its iptables rules (firewall.ts), made at create (as dockerd
   * does) and again when the daemon opens its networks. The bridge lives as long as the network: its route is what
   * tells every other engine on the host (dockerd, another wharfd) that the subnet is taken, and aardvark-dns binds
   * its gateway.
   */
  private async ensureBridge(n: NetworkRecord, absent = false): Promise<void> {
    if (!n.Bridge) return;
    // a MAC of its own: a bridge without one takes its ports' lowest, which changes when a port leaves, and the
    // containers' ARP entries for the gateway then point nowhere (seen: DNS dead for 20 s after a disconnect).
    // A bridge that exists already (an older wharfd's) gets it too.
    if (!absent && (await sh('ip', ['-o', 'link', 'show', 'dev', n.Bridge])).code === 0) {
      await pinBridgeMac(n.Bridge, n.Gateway!);
    } else {
      const r = await sh('ip', ['-b', '-'], [
        `link add name ${n.Bridge} address ${macForIp(n.Gateway!)} type bridge`,
        ...(n.Options['com.docker.network.driver.mtu'] ? [`link set ${n.Bridge} mtu ${Number(n.Options['com.docker.network.driver.mtu'])}`] : []),
        `addr add ${n.Gateway}/${parseSubnet(n.Subnet!).prefix} dev ${n.Bridge}`,
        `link set ${n.Bridge} up`, '',
      ].join('\n'));
      if (r.code !== 0) {
        await sh('ip', ['link', 'del', n.Bridge]);
        throw new SystemError(`creating bridge ${n.Bridge}: ${r.stderr.trim()}`);
      }
      await pinBridgeMac(n.Bridge, n.Gateway!);
    }
    await installNetworkRules({ bridge: n.Bridge, subnet: n.Subnet!, internal: n.Internal }, this.d.bridge.bridge);
  }

  /** The network's names for aardvark-dns: every container with an endpoint on it. */
  private syncDns(n: NetworkRecord): Promise<void> {
    const entries: DnsEntry[] = [];
    for (const [id, st] of this.states) {
      for (const e of st.nets) if (e.netId === n.Id && e.names) entries.push({ id, ip: e.ip, names: e.names, dns: e.dns ?? [] });
    }
    return this.dns.update(n.Id, n.Gateway!, entries);
  }

  private endpointsOn(n: NetworkRecord): string[] {
    const ids: string[] = [];
    for (const [cid, st] of this.states) if (st.nets.some((e) => e.netId === n.Id)) ids.push(cid);
    return ids;
  }

  /** DELETE /networks/{id}: refused for predefined networks and while containers run on it. */
  remove(ref: string): Promise<void> {
    return this.lock.run(async () => {
      const n = this.find(ref);
      if (this.predefined(n)) throw new ForbiddenError(`${n.Name} is a pre-defined network and cannot be removed`);
      if (this.endpointsOn(n).length) throw new ForbiddenError(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
      await this.removeRecord(n);
    });
  }

  private async removeRecord(n: NetworkRecord): Promise<void> {
    this.nets.delete(n.Id); // at once, after the caller saw no endpoint: a join from now on fails (join checks)
    await rm(join(this.dir, 'networks', `${n.Id}.json`), { force: true });
    this.ipams.delete(n.Id);
    await rm(join(this.dir, `${n.Id}.ipam.json`), { force: true });
    await this.claims.release(n.Id).catch(this.log.onError('releasing a removed network\'s subnet', { network: n.Id }));
    if (n.Bridge) {
      await Promise.all([
        this.dns.drop(n.Id).catch(this.log.onError('removing a removed network\'s names from aardvark-dns', { network: n.Id })),
        sh('ip', ['link', 'del', n.Bridge]),
        removeNetworkRules(n.Bridge).catch(this.log.onError('removing a removed network\'s iptables rules', { network: n.Id })),
      ]);
    }
    this.onEvent?.('destroy', { id: n.Id, name: n.Name, type: 'bridge' });
  }

  /** POST /networks/prune: user-defined networks no running container uses (filters until, label, label!). */
  prune(filters: Filters): Promise<NetworkPruneReport> {
    validateFilters(filters, ['until', 'label', 'label!']);
    let until: number | null = null;
    if (filters.until?.length) {
      if (filters.until.length > 1) throw new InvalidParameterError('more than one until filter specified');
      until = parseTimestamp(filters.until[0]!);
    }
    return this.lock.run(async () => {
      const deleted: string[] = [];
      for (const n of [...this.nets.values()]) {
        if (this.predefined(n) || this.endpointsOn(n).length) continue;
        if (until !== null && Date.parse(n.Created) > until) continue;
        if (!matchKVList(filters, 'label', n.Labels)) continue;
        if (filters['label!']?.length && !filters['label!'].every((l) => !matchKVList({ label: [l] }, 'label', n.Labels))) continue;
        await this.removeRecord(n);
        deleted.push(n.Name);
      }
      return { NetworksDeleted: deleted.length ? deleted : null };
    });
  }

  // ---------------------------------------------------------------- containers

  /**
   * A container's NetworkSettings.Networks, as inspect and list show it: the predefined network of its NetworkMode
   * (the default bridge with its live address) and its user-defined networks.
   */
  networksOf(c: NetContainer): Record<string, EndpointSettings> {
    const mode = String(c.HostConfig.NetworkMode ?? 'default');
    if (c.Networks && this.isUserNetwork(mode)) return c.Networks;
    const name = mode === 'default' ? 'bridge' : mode;
    if (name === 'bridge' && c.BridgeLeft) return { ...(c.Networks ?? {}) };
    const n = [...this.nets.values()].find((x) => x.Name === name && !x.Bridge);
    const live = c.State.Running && c.Net?.Mode === 'bridge' && c.Net.IPAddress ? c.Net : null;
    const ep: EndpointSettings = {
      IPAMConfig: null, Links: null, Aliases: null, NetworkID: live ? n?.Id ?? '' : '', EndpointID: live ? bridgeEndpointId(c.ID) : '',
      Gateway: live?.Gateway ?? '', IPAddress: live?.IPAddress ?? '', IPPrefixLen: live?.IPPrefixLen ?? 0, IPv6Gateway: '',
      GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: live?.MacAddress ?? '', DriverOpts: null,
    };
    return { [name]: ep, ...(c.Networks ?? {}) };
  }

  /**
   * POST /containers/create: the container's NetworkSettings.Networks for a user-defined NetworkMode, from
   * NetworkingConfig.EndpointsConfig (aliases, static address, MAC). Undefined for the predefined modes.
   */
  endpointsForCreate(mode: string, endpoints: Record<string, Partial<EndpointSettings> | null> | undefined, links?: unknown): Record<string, EndpointSettings> | undefined {
    const cfgs = endpoints ?? {};
    for (const l of Array.isArray(links) ? (links as string[]) : []) {
      const { name } = parseLink(String(l));
      try { this.ctrs.get(name); } catch (e) {
        // dockerd: an invalid parameter, not "not found" (the CLI would go and pull the image)
        if (e instanceof NotFoundError) throw new InvalidParameterError(`could not get container for ${name}: ${e.message}`);
        throw e;
      }
    }
    if (!this.isUserNetwork(mode)) {
      const extra = Object.keys(cfgs).filter((k) => k !== mode && !(k === 'bridge' && mode === 'default'));
      if (extra.length) throw new InvalidParameterError('Container cannot be connected to network endpoints: ' + [mode, ...extra].join(', '));
      for (const [k, c] of Object.entries(cfgs)) {
        if (c?.Aliases?.length && ['bridge', 'default', 'host', 'none'].includes(k)) throw new InvalidParameterError('network-scoped alias is supported only for containers in user defined networks');
      }
      return undefined;
    }
    const names = Object.keys(cfgs);
    if (names.length > 1) throw new InvalidParameterError('Container cannot be connected to network endpoints: ' + names.join(', '));
    let n: NetworkRecord;
    try { n = this.find(mode); } catch (e) {
      // as dockerd: a network that does not exist fails the start ("network x not found"), not the create
      if (e instanceof NotFoundError) return { [mode]: this.unresolved(cfgs[mode]) };
      throw e;
    }
    const c = cfgs[mode] ?? cfgs[n.Name] ?? cfgs[n.Id] ?? null;
    return { [n.Name]: this.settingsFor(n, c) };
  }

  private unresolved(c: Partial<EndpointSettings> | null | undefined): EndpointSettings {
    return {
      IPAMConfig: c?.IPAMConfig ?? null, Links: c?.Links ?? null, Aliases: c?.Aliases ?? null, NetworkID: '', EndpointID: '',
      Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      MacAddress: c?.MacAddress ?? '', DriverOpts: c?.DriverOpts ?? null,
    };
  }

  private settingsFor(n: NetworkRecord, c: Partial<EndpointSettings> | null | undefined): EndpointSettings {
    const want = c?.IPAMConfig?.IPv4Address;
    if (want) {
      if (!n.UserSubnet) throw new ForbiddenError('user specified IP address is supported only when connecting to networks with user configured subnets');
      const ip = ipToIntChecked(want);
      const s = parseSubnet(n.Subnet!);
      if (ip < s.network || ip >= s.network + s.size) throw new ForbiddenError(`no configured subnet or ip-range contain the IP address ${want}`);
    }
    if (c?.IPAMConfig?.IPv6Address) throw new NotImplementedError('IPv6 addresses are not supported by wharf');
    return {
      IPAMConfig: c?.IPAMConfig && (want) ? { IPv4Address: want } : null,
      Links: c?.Links?.length ? [...c.Links] : null,
      Aliases: c?.Aliases?.length ? [...c.Aliases] : null,
      NetworkID: n.Id, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0, MacAddress: c?.MacAddress ?? '', DriverOpts: c?.DriverOpts ?? null,
    };
  }

  private stateFile(id: string): string { return join(this.dir, 'endpoints', `${id}.json`); }

  private async saveState(id: string): Promise<void> {
    const st = this.states.get(id);
    if (!st || st.nets.length === 0) {
      this.states.delete(id);
      await rm(this.stateFile(id), { force: true });
    } else await writeFileAtomic(this.stateFile(id), JSON.stringify(st), 0o600, { durable: false }); // endpoints end with the boot: not synced
  }

  /** The first ethN the container does not use yet (its user networks' interfaces and the default bridge's). */
  private nextIface(id: string, st: EndpointState): string {
    const used = new Set(st.nets.map((e) => e.iface));
    const b = this.d.bridge.ifaceOf(id);
    if (b) used.add(b);
    let k = 0;
    while (used.has(`eth${k}`)) k++;
    return `eth${k}`;
  }

  /** The default bridge as one more interface of a running container (in its netns); its EndpointSettings. */
  private async joinBridge(c: NetContainer, st: EndpointState): Promise<EndpointSettings> {
    return (await this.joinBridgeEp(c, st)).settings;
  }

  private async joinBridgeEp(c: NetContainer, st: EndpointState): Promise<{ ep: Endpoint; settings: EndpointSettings }> {
    const b = this.d.bridge;
    const ep = await b.connect(c.ID, 'bridge', { name: c.Name.replace(/^\//, ''), join: { iface: this.nextIface(c.ID, st) } });
    return { ep, settings: {
      IPAMConfig: {}, Links: null, Aliases: [], NetworkID: this.find('bridge').Id, EndpointID: bridgeEndpointId(c.ID), Gateway: ep.gateway!,
      IPAddress: ep.ip!, IPPrefixLen: ep.prefixLen!, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: ep.mac!, DriverOpts: {},
    } as EndpointSettings };
  }

  /**
   * Endpoints on user networks, made in one go: addresses, the records (written before the links, so a daemon
   * killed meanwhile still finds what to remove), the veth pairs (plugVeths: one process for any number of
   * networks; `fresh`: the netns is made by the same process), then each network's names for aardvark-dns. The
   * first network gets the default route (the first that is not internal), as dockerd gives a container one
   * gateway. On failure nothing of these endpoints stays.
   */
  private async join(c: NetContainer, wanted: { n: NetworkRecord; s: EndpointSettings; mac?: string }[], st: EndpointState, fresh: boolean): Promise<UserEndpoint[]> {
    const name = c.Name.replace(/^\//, '');
    const dns = Array.isArray(c.HostConfig.Dns) ? (c.HostConfig.Dns as string[]) : [];
    const eps: UserEndpoint[] = [];
    const plugs: VethPlug[] = [];
    let routed = st.nets.length > 0 || !st.own;
    try {
      for (const { n, s, mac: macWanted } of wanted) {
        const iface = this.nextIface(c.ID, st);
        const ip = await this.ipamOf(n).allocate(c.ID, s.IPAMConfig?.IPv4Address || undefined);
        const mac = macWanted || s.MacAddress || macForIp(ip);
        const ep: UserEndpoint = {
          netId: n.Id, iface, ip, prefixLen: parseSubnet(n.Subnet!).prefix, gateway: n.Gateway!, mac,
          endpointId: randomBytes(32).toString('hex'), hostVeth: userVethName(c.ID, n.Id),
          names: [...new Set([name, ...(s.Aliases ?? []), c.ID.slice(0, SHORT)])], dns,
        };
        const route = !routed && !n.Internal;
        if (route) routed = true;
        const mtu = Number(n.Options['com.docker.network.driver.mtu'] || 1500);
        plugs.push({ iface, mac, ip, prefixLen: ep.prefixLen, mtu, hostEnd: ep.hostVeth, master: n.Bridge!, ...(route ? { gateway: n.Gateway!, metric: 100 } : {}) });
        st.nets.push(ep);
        eps.push(ep);
        if (!this.nets.has(n.Id)) throw new NotFoundError(`network ${n.Name} not found`); // removed meanwhile
      }
      this.states.set(c.ID, st);
      await this.saveState(c.ID);
      await plugVeths(st.netns, fresh, plugs);
    } catch (e) {
      await deleteLinks(eps.map((ep) => ep.hostVeth)).catch(this.log.onError('removing the veths of a failed join', { container: c.ID }));
      st.nets = st.nets.filter((x) => !eps.includes(x));
      await this.saveState(c.ID);
      for (const { n } of wanted) await this.ipamOf(n).release(c.ID);
      throw e;
    }
    await Promise.all(wanted.map(({ n }) => this.syncDns(n))).catch(this.log.onError('adding a container\'s names to aardvark-dns', { container: c.ID }));
    return eps;
  }

  /**
   * Endpoints leave their networks: the records, addresses and names go; `unplug` deletes their veths (not needed
   * when the netns goes with them: the caller removes the veths with it).
   */
  private async leave(id: string, st: EndpointState, eps: UserEndpoint[], unplug: boolean): Promise<void> {
    if (unplug) await deleteLinks(eps.map((ep) => ep.hostVeth)).catch(this.log.onError('removing the veths of endpoints that leave', { container: id }));
    st.nets = st.nets.filter((x) => !eps.includes(x));
    await this.saveState(id);
    await Promise.all(eps.map(async (ep) => {
      const n = this.nets.get(ep.netId);
      if (!n) return;
      await this.ipamOf(n).release(id);
      await this.syncDns(n).catch(this.log.onError('removing a container\'s names from aardvark-dns', { container: id }));
    }));
  }

  private settingsOf(ep: UserEndpoint, base: EndpointSettings | undefined, c: NetContainer): EndpointSettings {
    return {
      IPAMConfig: base?.IPAMConfig ?? null, Links: base?.Links ?? null,
      Aliases: [...new Set([...(base?.Aliases ?? []), c.ID.slice(0, SHORT)])],
      NetworkID: ep.netId, EndpointID: ep.endpointId, Gateway: ep.gateway, IPAddress: ep.ip, IPPrefixLen: ep.prefixLen,
      IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: ep.mac, DriverOpts: base?.DriverOpts ?? null,
    };
  }

  /**
   * Container start: the default bridge (BridgeNetwork) or, for a user NetworkMode, a netns of our own; then every
   * user network in `c.Networks` joined (`join`: one pair of processes for all of them). Returns the first
   * endpoint (the one ports and /etc/hosts use) with the name servers for resolv.conf (the gateways, where
   * aardvark-dns answers). On failure nothing stays. `c.Networks` gets each endpoint's addresses.
   */
  connect(c: NetContainer, mode: 'bridge' | 'user'): Promise<Endpoint & { nameservers?: string[] }> {
    return this.ctrLock.run(c.ID, async () => {
      const b = this.d.bridge;
      let primary: Endpoint;
      let st: EndpointState;
      let fresh = false;
      if (mode === 'bridge' && !c.BridgeLeft) {
        const mac = typeof c.Config.MacAddress === 'string' && c.Config.MacAddress ? { mac: c.Config.MacAddress } : {};
        primary = await b.connect(c.ID, 'bridge', { name: c.Name.replace(/^\//, ''), ...mac });
        st = { netns: primary.netnsPath!, own: false, nets: [] };
      } else {
        const ns = b.netnsPath(c.ID);
        await mkdir(join(this.d.execRoot, 'netns'), { recursive: true });
        await writeFile(ns, '');
        primary = { id: c.ID, mode: 'bridge', netnsPath: ns, ports: [] };
        st = { netns: ns, own: true, nets: [] };
        fresh = true;
      }
      const modeName = String(c.HostConfig.NetworkMode ?? '');
      try {
        const named = Object.entries(c.Networks ?? {}).filter(([name]) => name !== 'bridge');
        // the NetworkMode network first: it is eth0
        named.sort(([a, x], [bb, y]) => Number(bb === modeName || y.NetworkID === modeName) - Number(a === modeName || x.NetworkID === modeName));
        const wanted = named.map(([name, s], k) => {
          let n: NetworkRecord;
          try { n = this.find(s.NetworkID || name); } catch { n = this.find(name); }
          const mac = k === 0 && st.own && typeof c.Config.MacAddress === 'string' && c.Config.MacAddress ? c.Config.MacAddress : undefined;
          return { name, n, s, ...(mac ? { mac } : {}) };
        });
        if (mode === 'user' && !wanted.length) throw new NotFoundError(`network ${modeName} not found`);
        if (wanted.length) {
          const eps = await this.join(c, wanted, st, fresh);
          fresh = false;
          wanted.forEach((w, k) => { c.Networks![w.name] = this.settingsOf(eps[k]!, w.s, c); });
          const ep = eps[0]!;
          if (mode === 'user') Object.assign(primary, { ip: ep.ip, prefixLen: ep.prefixLen, gateway: ep.gateway, mac: ep.mac, endpointId: `${c.Name.replace(/^\//, '')} (${ep.endpointId})` });
        } else if (fresh) {
          await plugVeths(st.netns, true, []);
          fresh = false;
        }
        // a container of a user network connected to the default bridge too (`network connect bridge`)
        if (mode === 'user' && c.Networks?.bridge) c.Networks.bridge = await this.joinBridge(c, st);
      } catch (e) {
        await this.teardown(c.ID).catch(this.log.onError('disconnecting after a failed connect', { container: c.ID }));
        throw e;
      }
      const nameservers = st.nets.map((e) => e.gateway);
      if (mode === 'user') return { ...primary, nameservers };
      // as dockerd's embedded DNS for a default-bridge container on user networks too
      if (nameservers.length) primary.dns = nameservers;
      return primary;
    });
  }

  /** Publishes ports to the container's first address (the userland proxy, as on the default bridge). */
  publish(ep: Endpoint, mappings: PortMapping[]): Promise<BoundPort[]> {
    return this.d.bridge.publish(ep, mappings);
  }

  /** Container stop: every endpoint torn down, the netns removed, addresses released. Idempotent. */
  disconnect(id: string): Promise<void> {
    return this.ctrLock.run(id, () => this.teardown(id));
  }

  private async teardown(id: string): Promise<void> {
    const st = this.states.get(id);
    const eps = st ? [...st.nets] : [];
    // the veths go with the netns, in the process that removes the default bridge's (BridgeNetwork.disconnect)
    await Promise.all([
      st && eps.length ? this.leave(id, st, eps, false) : Promise.resolve(),
      this.d.bridge.disconnect(id, eps.map((e) => e.hostVeth).filter((v) => !!v)),
    ]);
    try {
      const c = this.ctrs.get(id);
      for (const s of Object.values(c.Networks ?? {})) Object.assign(s, { EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: (s.IPAMConfig ? s.MacAddress : '') });
    } catch { /* removed */ }
  }

  /** Daemon restart: the endpoint of a container still running (its netns and links outlived the daemon). */
  async restore(id: string): Promise<Endpoint | null> {
    const ep = await this.d.bridge.restore(id);
    const st = this.states.get(id);
    const first = st?.nets[0];
    if (!st || !st.own || !first) return ep;
    return { id, mode: 'bridge', netnsPath: st.netns, ip: first.ip, prefixLen: first.prefixLen, gateway: first.gateway, mac: first.mac, ports: [], nameservers: st.nets.map((e) => e.gateway) };
  }

  /** POST /networks/{id}/connect: recorded for a stopped container, joined live for a running one. */
  connectContainer(netRef: string, ctrRef: string, cfg: Partial<EndpointSettings> | null | undefined): Promise<void> {
    const c = this.ctrs.get(ctrRef);
    let n: NetworkRecord;
    try { n = this.find(netRef); } catch (e) {
      // dockerd records a stopped container's connection to a network it does not know (the start fails later)
      if (!(e instanceof NotFoundError) || c.State.Running) throw e;
      (c.Networks ??= {})[netRef] = this.unresolved(cfg);
      return this.ctrs.save(c);
    }
    const mode = String(c.HostConfig.NetworkMode ?? 'default');
    if (mode === 'host' || n.Name === 'host') throw new ForbiddenError('container cannot be disconnected from host network or connected to host network');
    if (mode === 'none' || n.Name === 'none') throw new ForbiddenError('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    if (mode.startsWith('container:')) throw new ForbiddenError('container sharing network namespace with another container or host cannot be connected to any other network');
    if (!n.Bridge) return this.connectBridge(c, n);
    if (c.Networks?.[n.Name] && c.State.Running) throw new ForbiddenError(`endpoint with name ${c.Name.replace(/^\//, '')} already exists in network ${n.Name}`);
    const s = this.settingsFor(n, cfg);
    return (async () => {
      if (c.State.Running) {
        const st = this.states.get(c.ID) ?? { netns: this.d.bridge.netnsPath(c.ID), own: !(mode === 'default' || mode === 'bridge'), nets: [] };
        const [ep] = await this.ctrLock.run(c.ID, () => this.join(c, [{ n, s }], st, false));
        if (!ep) throw new SystemError('network connect: no endpoint');
        (c.Networks ??= {})[n.Name] = this.settingsOf(ep, s, c);
        await this.rewriteResolvConf(c.ID, st).catch(this.log.onError('pointing resolv.conf at the networks\' name servers', { container: c.ID }));
        await this.hostsLine(c, ep.ip).catch(this.log.onError('adding the new address to /etc/hosts', { container: c.ID }));
      } else (c.Networks ??= {})[n.Name] = s;
      await this.ctrs.save(c);
      this.onEvent?.('connect', { id: n.Id, name: n.Name, type: 'bridge' }, c.ID);
    })();
  }

  /**
   * A running container's resolv.conf after a live connect or disconnect, as dockerd switches a container to its
   * embedded DNS when it joins a user network: the name servers become the gateways of its user networks (where
   * aardvark-dns answers their names and forwards the rest to the container's --dns or the host's servers). A
   * default-bridge container gets its earlier name servers back when it leaves the last one. The file is rewritten
   * in place: it is bind-mounted into the container, a new inode would not be seen.
   */
  private async rewriteResolvConf(id: string, st: EndpointState): Promise<void> {
    const file = join(this.ctrs.dir(id), 'resolv.conf');
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    const isNs = (l: string) => /^\s*nameserver\s/.test(l);
    const current = lines.filter(isNs).map((l) => l.trim().split(/\s+/)[1]!);
    let servers: string[];
    if (st.nets.length) {
      if (!st.own && !st.dnsBefore) st.dnsBefore = current;
      servers = st.nets.map((e) => e.gateway);
    } else {
      servers = st.dnsBefore ?? (await this.defaultNameservers(id));
      delete st.dnsBefore;
    }
    if (st.nets.length) await this.saveState(id);
    const at = lines.findIndex(isNs);
    const kept = lines.filter((l) => !isNs(l));
    const ns = servers.map((x) => `nameserver ${x}`);
    if (at < 0) kept.splice(kept.length && kept[kept.length - 1] === '' ? kept.length - 1 : kept.length, 0, ...ns);
    else kept.splice(at, 0, ...ns);
    const next = kept.join('\n');
    if (next !== text) await writeFile(file, next);
  }

  /**
   * A running container's /etc/hosts after a live connect: a line for its new address, with the names of its own
   * line (hostname, with the domain when set). dockerd leaves the line after a disconnect (measured), so does this.
   * Rewritten in place (bind-mounted).
   */
  private async hostsLine(c: NetContainer, ip: string): Promise<void> {
    const file = join(this.ctrs.dir(c.ID), 'hosts');
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n').filter((l) => !l.startsWith(`${ip}\t`));
    const hostname = String(c.Config.Hostname || c.ID.slice(0, SHORT));
    const own = [...lines].reverse().find((l) => !l.startsWith('#') && (l.split('\t')[1] ?? '').split(' ').includes(hostname));
    const line = `${ip}\t${own?.split('\t')[1] ?? hostname}`;
    if (lines[lines.length - 1] === '') lines.splice(lines.length - 1, 0, line); else lines.push(line);
    const next = lines.join('\n');
    if (next !== text) await writeFile(file, next);
  }

  /**
   * The name servers a default-bridge container had before its user networks, when they were not seen (it started
   * on them): its --dns, else the host's without localhost ones, else docker's fallback (runtime/spec.ts's rule).
   */
  private async defaultNameservers(id: string): Promise<string[]> {
    const dns = this.ctrs.get(id).HostConfig.Dns;
    if (Array.isArray(dns) && dns.length) return dns as string[];
    const host = (await readFile('/etc/resolv.conf', 'utf8').catch(() => '')).split('\n')
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((a): a is string => !!a && !a.startsWith('127.') && a !== '::1' && !a.startsWith('fe80:'));
    return host.length ? host : ['8.8.8.8', '8.8.4.4'];
  }

  /**
   * `network connect bridge X`, as dockerd: a running container gets one more interface on the default bridge
   * (and its default route, as dockerd gives it); a stopped one is recorded and joins at its next start.
   */
  private async connectBridge(c: NetContainer, n: NetworkRecord): Promise<void> {
    const mode = String(c.HostConfig.NetworkMode ?? 'default');
    const own = mode === 'default' || mode === 'bridge';
    if (own ? !c.BridgeLeft : !!c.Networks?.bridge) throw new ForbiddenError(`endpoint with name ${c.Name.replace(/^\//, '')} already exists in network bridge`);
    if (c.State.Running) {
      const st = this.states.get(c.ID) ?? { netns: this.d.bridge.netnsPath(c.ID), own: true, nets: [] };
      const { ep, settings: s } = await this.ctrLock.run(c.ID, () => this.joinBridgeEp(c, st));
      // a default-bridge container that left the bridge gets its published ports back (dockerd's bridge driver
      // binds them per endpoint), on the host ports it had
      if (own) await this.d.bridge.publish(ep, boundPorts(c.Net?.Ports)).catch(this.log.onError('publishing ports again at connect', { container: c.ID }));
      // dockerd shows the default bridge's endpoint in the top-level NetworkSettings fields, whatever the mode
      if (c.Net) Object.assign(c.Net, { IPAddress: s.IPAddress, IPPrefixLen: s.IPPrefixLen, Gateway: s.Gateway, MacAddress: s.MacAddress });
      if (!own) (c.Networks ??= {}).bridge = s;
      await this.hostsLine(c, s.IPAddress).catch(this.log.onError('adding the new address to /etc/hosts', { container: c.ID }));
    } else if (!own) {
      (c.Networks ??= {}).bridge = { ...this.unresolved(null), IPAMConfig: {}, Aliases: [], DriverOpts: {} } as EndpointSettings;
    }
    delete c.BridgeLeft;
    await this.ctrs.save(c);
    this.onEvent?.('connect', { id: n.Id, name: n.Name, type: 'bridge' }, c.ID);
  }

  /** `network disconnect bridge X`: the interface goes (the netns and the other networks stay); kept for later starts. */
  private async disconnectBridge(c: NetContainer, n: NetworkRecord): Promise<void> {
    const mode = String(c.HostConfig.NetworkMode ?? 'default');
    const own = mode === 'default' || mode === 'bridge';
    if (own ? c.BridgeLeft : !c.Networks?.bridge) throw new ForbiddenError(`container ${c.ID} is not connected to network bridge`);
    if (c.State.Running) await this.ctrLock.run(c.ID, () => this.d.bridge.leave(c.ID));
    if (c.Net) Object.assign(c.Net, { IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '' });
    if (own) c.BridgeLeft = true;
    else delete c.Networks!.bridge;
    await this.ctrs.save(c);
    this.onEvent?.('disconnect', { id: n.Id, name: n.Name, type: 'bridge' }, c.ID);
  }

  /** POST /networks/{id}/disconnect. */
  async disconnectContainer(netRef: string, ctrRef: string, force: boolean): Promise<void> {
    let n: NetworkRecord | null = null;
    try { n = this.find(netRef); } catch (e) { if (!force) throw e; }
    const c = this.ctrs.get(ctrRef);
    const name = n?.Name ?? netRef;
    if (n && !n.Bridge) {
      if (n.Name === 'host' || n.Name === 'none') throw new ForbiddenError('container cannot be disconnected from host network or connected to host network');
      return this.disconnectBridge(c, n);
    }
    if (!c.Networks?.[name]) throw new ForbiddenError(`container ${c.ID} is not connected to the network ${netRef}`);
    const st = this.states.get(c.ID);
    const ep = st?.nets.find((e) => e.netId === n?.Id);
    if (st && ep) {
      await this.ctrLock.run(c.ID, () => this.leave(c.ID, st, [ep], true));
      if (c.State.Running) await this.rewriteResolvConf(c.ID, st).catch(this.log.onError('pointing resolv.conf at the networks\' name servers', { container: c.ID }));
    }
    delete c.Networks[name];
    await this.ctrs.save(c);
    if (n) this.onEvent?.('disconnect', { id: n.Id, name: n.Name, type: 'bridge' }, c.ID);
  }
}

/** The host ports a container had bound (its NetworkSettings.Ports) as mappings to bind again. */
export function boundPorts(ports: Record<string, { HostIp: string; HostPort: string }[] | null> | undefined): PortMapping[] {
  const out: PortMapping[] = [];
  for (const [k, bs] of Object.entries(ports ?? {})) {
    const [port, proto = 'tcp'] = k.split('/') as [string, string | undefined];
    for (const b of bs ?? []) out.push({ hostIp: b.HostIp === '0.0.0.0' ? '' : b.HostIp, hostPort: Number(b.HostPort), containerPort: Number(port), proto: proto === 'udp' ? 'udp' : 'tcp' });
  }
  return out;
}

/** The default bridge's endpoint ID of a container (bridge.ts names its endpoints with the same hash). */
function bridgeEndpointId(id: string): string {
  return createHash('sha256').update(`ep:${id}`).digest('hex');
}

function ipToIntChecked(ip: string): number {
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip)) throw new InvalidParameterError(`invalid IP address: ${ip}`);
  return ipToInt(ip);
}

