/**
 * The default bridge network (docker's "bridge" driver, simplified): a Linux bridge (wharf0,
 * 172.30.0.1/16 unless configured), IPAM persisted under <dataRoot>/network, a network namespace per
 * container, a veth pair per container (host end `veth<7 hex>` enslaved to the bridge, container end `eth0`
 * with the IP, a MAC derived from it as docker does, and a default route via the bridge), lo up, NAT for
 * outbound traffic (iptables MASQUERADE for the subnet, FORWARD accepted to/from the bridge, ip_forward=1),
 * and published ports through the in-daemon userland proxy (portproxy.ts).
 *
 * Namespaces: each container's netns is created *before* the runtime runs, as a file bind mount at
 * <execRoot>/netns/<id> (`unshare --net=FILE`, what `ip netns add` does), and the OCI spec joins it by path.
 * So the network exists before the process starts (no race with the container's first packet), and
 * teardown does not depend on the container being alive. Modes: bridge (that), none (the runtime creates an
 * empty netns; runc brings lo up), host (no netns).
 *
 * Teardown (`disconnect`) deletes the host veth (which deletes its peer), unmounts and removes the netns file,
 * closes the proxies and releases the IP. `removeBridge` (tests, or a custom bridge being dropped) deletes the
 * iptables rules and the bridge itself. Every iptables rule carries a comment "wharf:<bridge>" so it can be found.
 */
import { execCollect } from '../../lib/exec.js';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostClaims, Ipam, intToIp, ipToInt, parseCidr } from './ipam.js';
import { publishPort, type BoundPort, type PortMapping } from './portproxy.js';
import { unmountFs } from '../fsroot/index.js';
import { deleteLinks, enslaveUp } from './netlink.js';
import { InvalidParameterError, SystemError } from '../../lib/errors.js';
import { discardLogger } from '../../lib/log.js';
import type { Logger } from '../../lib/log.js';

export interface BridgeConfig {
  dataRoot: string;
  execRoot: string;
  /** Where the host-wide address claims of each bridge live (default /run/wharf-ipam). */
  claimsDir?: string;
  /** Bridge device name (default wharf0). */
  bridge?: string;
  /** Subnet (default 172.30.0.0/16). */
  subnet?: string;
  /** Gateway = bridge address (default first address of the subnet). */
  gateway?: string;
  mtu?: number;
  log?: Logger;
}

export type NetworkModeName = 'bridge' | 'none' | 'host';

export interface Endpoint {
  /** user networks: the name servers for resolv.conf (aardvark-dns on each network's gateway). */
  nameservers?: string[];
  /** a default-bridge endpoint of a container also on user networks: their name servers, for resolv.conf. */
  dns?: string[];
  id: string;
  mode: NetworkModeName;
  /** bridge mode: the netns file the OCI spec joins. */
  netnsPath?: string;
  ip?: string;
  prefixLen?: number;
  gateway?: string;
  mac?: string;
  hostVeth?: string;
  /** The interface inside the container (eth0 unless the container joined the bridge later). */
  iface?: string;
  /** The netns was there before (a live `network connect bridge`): leaving the bridge keeps it. */
  sharedNs?: boolean;
  /** "name (endpointID)" for docker-style errors. */
  endpointId?: string;
  ports: BoundPort[];
}

const sh = (bin: string, args: string[], input?: string) => execCollect(bin, args, input === undefined ? {} : { input });

/** Runs a helper program; its failure is a SystemError naming the command and what it printed. */
export async function must(bin: string, args: string[], input?: string): Promise<string> {
  const r = await sh(bin, args, input);
  if (r.code !== 0) throw new SystemError(`${bin} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** docker's MAC for an IPv4 address: 02:42 followed by the four bytes of the address. */
export function macForIp(ip: string): string {
  const n = ipToInt(ip);
  return ['02', '42', ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Gives a bridge the fixed MAC of its gateway address (docker's 02:42 + the address) unless one was set already,
 * and turns on `arp_notify`. A Linux bridge without a MAC set takes the lowest of its ports' MACs, so it changes
 * whenever the container owning that port leaves; the other containers' ARP entries for the gateway then point
 * at a MAC nobody answers to, and their TCP to the host or outside stalls until the entry expires (UDP DNS
 * retries hid it). With `arp_notify` a change of address (this one, on a bridge that had none) is announced by a
 * gratuitous ARP, which updates the entries the containers already hold.
 */
export async function pinBridgeMac(bridge: string, gateway: string): Promise<void> {
  await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/arp_notify`, '1');
  const assign = (await readFile(`/sys/class/net/${bridge}/addr_assign_type`, 'utf8')).trim();
  if (assign === ADDR_SET) return;
  await must('ip', ['link', 'set', 'dev', bridge, 'address', macForIp(gateway)]);
}

/** /sys/class/net/<dev>/addr_assign_type of an address set by a user (NET_ADDR_SET). */
const ADDR_SET = '3';

export interface VethPlug {
  /** the interface inside the netns (eth0…) and its address */
  iface: string;
  mac: string;
  ip: string;
  prefixLen: number;
  mtu: number;
  /** the host end's name and the bridge it joins */
  hostEnd: string;
  master: string;
  /** a default route through this gateway: `add`, or `replace` (over one of the same metric) */
  gateway?: string;
  route?: 'add' | 'replace';
  /** the default route's metric (user networks: 100, below the default bridge's 0 when a container is on both) */
  metric?: number;
}

/**
 * Veth pairs into a netns, in one process whatever their number: it creates the netns when `fresh` (bound at
 * `ns`, what `ip netns add` does) or enters it, and configures it from inside (lo up, each pair made there with
 * its host end sent to our namespace, address, link up, default route); then the daemon enslaves the host ends to
 * their bridges and sets them up over rtnetlink (`netlink.ts`). The one copy of this for the default bridge and
 * user-defined networks.
 */
export async function plugVeths(ns: string, fresh: boolean, plugs: VethPlug[]): Promise<void> {
  await must(fresh ? 'unshare' : 'nsenter', [`--net=${ns}`, 'ip', '-b', '-'], [
    ...(fresh ? ['link set lo up'] : []),
    ...plugs.flatMap((p) => [
      `link add name ${p.iface} mtu ${p.mtu} address ${p.mac} type veth peer name ${p.hostEnd} mtu ${p.mtu} netns /proc/${process.pid}/ns/net`,
      `addr add ${p.ip}/${p.prefixLen} dev ${p.iface}`,
      `link set ${p.iface} up`,
      ...(p.gateway ? [`route ${p.route ?? 'add'} default via ${p.gateway} dev ${p.iface}${p.metric ? ` metric ${p.metric}` : ''}`] : []),
    ]), '',
  ].join('\n'));
  await enslaveUp(plugs.map((p) => ({ dev: p.hostEnd, master: p.master })));
}

export function vethName(id: string): string {
  return `veth${createHash('sha256').update(id).digest('hex').slice(0, 7)}`;
}

/** The host end of a container's veth on a user-defined network: `vn` and 13 hex digits (15 characters, IFNAMSIZ). */
export function userVethName(id: string, netId: string): string {
  return `vn${createHash('sha256').update(`${id}:${netId}`).digest('hex').slice(0, 13)}`;
}

export class BridgeNetwork {
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly prefixLen: number;
  readonly ipam: Ipam;
  private readonly netnsDir: string;
  private readonly mtu: number;
  private ready: Promise<void> | null = null;
  private readonly endpoints = new Map<string, Endpoint>();

  constructor(private readonly cfg: BridgeConfig) {
    this.bridge = cfg.bridge ?? 'wharf0';
    this.subnet = cfg.subnet ?? '172.30.0.0/16';
    const c = parseCidr(this.subnet);
    this.prefixLen = c.prefix;
    this.gateway = cfg.gateway ?? intToIp(c.network + 1);
    this.netnsDir = join(cfg.execRoot, 'netns');
    // other daemons may use the same bridge: addresses are also claimed host-wide (see HostClaims)
    const claims = new HostClaims(join(cfg.claimsDir ?? '/run/wharf-ipam', `${this.bridge}.json`), cfg.dataRoot, (id) => this.netnsPath(id));
    this.ipam = new Ipam(join(cfg.dataRoot, 'network', `${this.bridge}.ipam.json`), this.subnet, this.gateway, claims);
    this.mtu = cfg.mtu ?? 1500;
  }

  private rules(): { table: string; chain: string; rule: string[] }[] {
    const tag = ['-m', 'comment', '--comment', `wharf:${this.bridge}`];
    return [
      { table: 'nat', chain: 'POSTROUTING', rule: ['-s', this.subnet, '!', '-o', this.bridge, ...tag, '-j', 'MASQUERADE'] },
      { table: 'filter', chain: 'FORWARD', rule: ['-i', this.bridge, ...tag, '-j', 'ACCEPT'] },
      { table: 'filter', chain: 'FORWARD', rule: ['-o', this.bridge, ...tag, '-j', 'ACCEPT'] },
    ];
  }

  /** Creates the bridge, its address, NAT and forwarding (idempotent; checks the subnet is free on the host). */
  ensure(): Promise<void> {
    this.ready ??= this.setup().catch((e) => { this.ready = null; throw e; });
    return this.ready;
  }

  private async setup(): Promise<void> {
    const exists = (await sh('ip', ['-o', 'link', 'show', 'dev', this.bridge])).code === 0;
    if (!exists) {
      // refuse a subnet the host already routes elsewhere
      const routes = await must('ip', ['-4', '-o', 'route', 'show']);
      const mine = parseCidr(this.subnet);
      for (const line of routes.split('\n')) {
        const dst = line.split(' ')[0];
        if (!dst || dst === 'default') continue;
        const c = parseCidr(dst.includes('/') ? dst : `${dst}/30`);
        const overlap = c.network < mine.network + mine.size && mine.network < c.network + c.size;
        if (overlap && !line.includes(`dev ${this.bridge} `)) {
          throw new InvalidParameterError(`subnet ${this.subnet} overlaps with the host route "${line.trim()}"`);
        }
      }
      await must('ip', ['-b', '-'], [
        `link add name ${this.bridge} address ${macForIp(this.gateway)} type bridge`,
        `link set ${this.bridge} mtu ${this.mtu}`,
        `addr add ${this.gateway}/${this.prefixLen} dev ${this.bridge}`,
        `link set ${this.bridge} up`, '',
      ].join('\n'));
    }
    // a bridge made by an older wharfd (or by hand) has no MAC of its own: give it the fixed one now
    await pinBridgeMac(this.bridge, this.gateway);
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1').catch((this.cfg.log ?? discardLogger).onError('enabling IP forwarding: containers may not reach other networks'));
    for (const r of this.rules()) {
      const chk = await sh('iptables', ['-w', '-t', r.table, '-C', r.chain, ...r.rule]);
      if (chk.code !== 0) await must('iptables', ['-w', '-t', r.table, '-I', r.chain, ...r.rule]);
    }
    await mkdir(this.netnsDir, { recursive: true });
  }

  /** Removes the iptables rules and the bridge (nothing of this network left on the host). */
  async removeBridge(): Promise<void> {
    for (const r of this.rules()) {
      while ((await sh('iptables', ['-w', '-t', r.table, '-C', r.chain, ...r.rule])).code === 0) {
        await must('iptables', ['-w', '-t', r.table, '-D', r.chain, ...r.rule]);
      }
    }
    await sh('ip', ['link', 'del', this.bridge]);
    this.ready = null;
  }

  netnsPath(id: string): string { return join(this.netnsDir, id); }

  /**
   * Prepares a container's network. bridge: netns + veth + IP (optionally `ip`), returns the netns path for the
   * OCI spec. none/host: nothing to prepare (the spec asks the runtime for an empty netns / none).
   */
  async connect(id: string, mode: NetworkModeName, opts: { ip?: string; name?: string; mac?: string; join?: { iface: string } } = {}): Promise<Endpoint> {
    if (mode !== 'bridge') {
      const ep: Endpoint = { id, mode, ports: [] };
      this.endpoints.set(id, ep);
      return ep;
    }
    await this.ensure();
    const ns = this.netnsPath(id);
    const veth = vethName(id);
    // `join`: the container runs already (in a netns of its own, at the same path): the bridge is one more interface
    const shared = !!opts.join;
    const iface = opts.join?.iface ?? 'eth0';
    let ip: string;
    try {
      [ip] = await Promise.all([this.ipam.allocate(id, opts.ip), shared ? Promise.resolve() : writeFile(ns, '')]);
    } catch (e) {
      if (!shared) await rm(ns, { force: true });
      await this.ipam.release(id);
      throw e;
    }
    const mac = opts.mac || macForIp(ip);
    try {
      await plugVeths(ns, !shared, [{ iface, mac, ip, prefixLen: this.prefixLen, mtu: this.mtu, hostEnd: veth, master: this.bridge, gateway: this.gateway, route: shared ? 'replace' : 'add' }]);
    } catch (e) {
      const undo = shared ? sh('ip', ['link', 'del', veth]) : this.teardownNs(id);
      await undo.catch((this.cfg.log ?? discardLogger).onError('tearing down a network namespace after a failed connect', { container: id }));
      await this.ipam.release(id);
      throw e;
    }
    const ep: Endpoint = {
      id, mode, netnsPath: ns, ip, prefixLen: this.prefixLen, gateway: this.gateway, mac, hostVeth: veth, iface, ...(shared ? { sharedNs: true } : {}),
      endpointId: `${opts.name ?? id} (${createHash('sha256').update(`ep:${id}`).digest('hex')})`, ports: [],
    };
    this.endpoints.set(id, ep);
    await writeFile(join(this.netnsDir, `${id}.json`), JSON.stringify({ ...ep, ports: [] })).catch((this.cfg.log ?? discardLogger).onError('recording an endpoint: a restarted daemon will not find it', { container: id }, 'error'));
    return ep;
  }

  /** Publishes ports of a bridge endpoint; on any failure the ones already bound are closed. */
  async publish(ep: Endpoint, mappings: PortMapping[]): Promise<BoundPort[]> {
    if (ep.mode !== 'bridge' || !ep.ip) return [];
    const bound: BoundPort[] = [];
    try {
      for (const m of mappings) bound.push(await publishPort(ep.endpointId ?? ep.id, ep.ip, m));
    } catch (e) {
      await Promise.all(bound.map((b) => b.close()));
      throw e;
    }
    ep.ports.push(...bound);
    return bound;
  }

  /** `hostEnds`: the container's veths on user-defined networks, deleted with the same netlink socket. */
  private async teardownNs(id: string, hostEnds: string[] = []): Promise<void> {
    const ns = this.netnsPath(id);
    // deleting the host end removes its peer; the netns goes when its last reference (the bind mount) does
    await Promise.all([
      deleteLinks([vethName(id), ...hostEnds]).catch((this.cfg.log ?? discardLogger).onError('removing a container\'s veths', { container: id })),
      // umount2(2) in the daemon, not an umount(8) process: the netns itself is freed by the kernel afterwards
      Promise.resolve().then(() => { unmountFs(ns, { detach: true }); }).catch(() => sh('umount', ['-l', ns])).then(() => rm(ns, { force: true })),
      rm(join(this.netnsDir, `${id}.json`), { force: true }),
    ]);
  }

  /**
   * Undoes `connect` (and `publish`): proxies closed, veth and netns removed, IP released. Idempotent.
   * `hostEnds`: the container's veths on user-defined networks (it is in that netns), removed in the same process.
   */
  async disconnect(id: string, hostEnds: string[] = []): Promise<void> {
    const ep = this.endpoints.get(id);
    this.endpoints.delete(id);
    if (ep) await Promise.all(ep.ports.map((p) => p.close()));
    if (!ep || ep.mode === 'bridge') await Promise.all([this.teardownNs(id, hostEnds), this.ipam.release(id)]);
  }

  /** A running container leaves the bridge (`network disconnect bridge`): its netns and other interfaces stay. */
  async leave(id: string): Promise<void> {
    const ep = this.endpoints.get(id);
    this.endpoints.delete(id);
    if (ep) await Promise.all(ep.ports.map((p) => p.close()));
    await Promise.all([sh('ip', ['link', 'del', vethName(id)]), rm(join(this.netnsDir, `${id}.json`), { force: true }), this.ipam.release(id)]);
  }

  /** The container's interface on the bridge, if it is on it. */
  ifaceOf(id: string): string | undefined {
    const ep = this.endpoints.get(id);
    return ep?.mode === 'bridge' && ep.ip ? (ep.iface ?? 'eth0') : undefined;
  }

  /** The endpoint of a bridge container saved at connect time (for a restarted daemon: re-publish its ports). */
  async restore(id: string): Promise<Endpoint | null> {
    try {
      const ep = JSON.parse(await readFile(join(this.netnsDir, `${id}.json`), 'utf8')) as Endpoint;
      ep.ports = [];
      this.endpoints.set(id, ep);
      return ep;
    } catch { return null; }
  }
}
