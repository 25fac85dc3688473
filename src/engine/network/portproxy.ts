/**
 * Published ports through a userland proxy inside the daemon (docker's docker-proxy, in-process):
 * TCP via net.createServer → net.connect(containerIP:port) with half-close passed through; UDP via one
 * dgram socket on the host port and one connected socket per client address (idle ones closed after 60 s).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { SystemError } from '../../lib/errors.js';

export interface PortMapping {
  /** "" or "0.0.0.0" for all addresses. */
  hostIp?: string;
  /** 0 = pick a free port (docker's -P). */
  hostPort: number;
  containerPort: number;
  proto?: 'tcp' | 'udp';
}

export interface BoundPort extends Required<PortMapping> {
  close(): Promise<void>;
}

/** Our own allocations, keyed "proto/port" → the host IPs bound (docker's port allocator). */
const allocated = new Map<string, Set<string>>();

function clash(proto: string, ip: string, port: number): boolean {
  const s = allocated.get(`${proto}/${port}`);
  if (!s) return false;
  return ip === '0.0.0.0' || s.has('0.0.0.0') || s.has(ip);
}

export class PortAllocatedError extends SystemError {}

function failure(endpoint: string, ip: string, port: number, proto: string, err: NodeJS.ErrnoException | null): PortAllocatedError {
  const detail = err
    ? `Error starting userland proxy: listen ${proto}4 ${ip}:${port}: bind: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`
    : `Bind for ${ip}:${port} failed: port is already allocated`;
  return new PortAllocatedError(`driver failed programming external connectivity on endpoint ${endpoint}: ${detail}`);
}

/**
 * Starts one proxy. `endpoint` is docker's "name (endpointID)" label for errors. Rejects with docker's
 * "driver failed programming external connectivity … port is already allocated" when the port is taken.
 */
export async function publishPort(endpoint: string, containerIp: string, m: PortMapping): Promise<BoundPort> {
  const proto = m.proto ?? 'tcp';
  const hostIp = !m.hostIp ? '0.0.0.0' : m.hostIp;
  if (m.hostPort && clash(proto, hostIp, m.hostPort)) throw failure(endpoint, hostIp, m.hostPort, proto, null);
  const bound = proto === 'tcp' ? await tcpProxy(hostIp, m.hostPort, containerIp, m.containerPort).catch((e) => { throw failure(endpoint, hostIp, m.hostPort, proto, e); })
    : await udpProxy(hostIp, m.hostPort, containerIp, m.containerPort).catch((e) => { throw failure(endpoint, hostIp, m.hostPort, proto, e); });
  const key = `${proto}/${bound.port}`;
  if (!allocated.has(key)) allocated.set(key, new Set());
  allocated.get(key)!.add(hostIp);
  let closed = false;
  return {
    hostIp, hostPort: bound.port, containerPort: m.containerPort, proto,
    close: async () => {
      if (closed) return;
      closed = true;
      allocated.get(key)?.delete(hostIp);
      if (allocated.get(key)?.size === 0) allocated.delete(key);
      await bound.close();
    },
  };
}

function tcpProxy(hostIp: string, hostPort: number, ip: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const conns = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: ip, port, allowHalfOpen: true });
    conns.add(client); conns.add(upstream);
    const end = () => { client.destroy(); upstream.destroy(); conns.delete(client); conns.delete(upstream); };
    client.on('error', end); upstream.on('error', end);
    client.on('close', () => { if (upstream.writableEnded || upstream.destroyed) end(); });
    upstream.on('close', () => { if (client.writableEnded || client.destroyed) end(); });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: hostIp, port: hostPort, exclusive: true }, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as { port: number }).port,
        close: () => new Promise<void>((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }),
      });
    });
  });
}

function udpProxy(hostIp: string, hostPort: number, ip: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sock = createSocket('udp4');
  const peers = new Map<string, { s: UdpSocket; timer: NodeJS.Timeout }>();
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const k = `${rinfo.address}:${rinfo.port}`;
    let p = peers.get(k);
    if (!p) {
      const s = createSocket('udp4');
      s.on('message', (reply) => sock.send(reply, rinfo.port, rinfo.address));
      s.on('error', () => { s.close(); peers.delete(k); });
      s.connect(port, ip);
      p = { s, timer: setTimeout(() => {}, 0) };
      peers.set(k, p);
    }
    clearTimeout(p.timer);
    const entry = p;
    p.timer = setTimeout(() => { entry.s.close(); peers.delete(k); }, 60000);
    p.timer.unref();
    const send = () => entry.s.send(msg);
    try { send(); } catch { entry.s.once('connect', send); }
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: hostIp, port: hostPort, exclusive: true }, () => {
      sock.off('error', reject);
      resolve({
        port: sock.address().port,
        close: async () => {
          for (const p of peers.values()) { clearTimeout(p.timer); p.s.close(); }
          peers.clear();
          await new Promise<void>((r) => sock.close(() => r()));
        },
      });
    });
  });
}
