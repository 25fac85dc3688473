/**
 * rtnetlink from the daemon for the host side of a container's veths: enslaving host ends to their bridge (and
 * setting them up) and deleting them, without an `ip` process each (35–50 ms of process creation on the VM, on a
 * start's and an exit's path). A request is sent on a libuv pool thread (koffi async): the kernel does the work inside
 * sendto(2) — under the rtnl lock, a veth delete waits for RCU — so the event loop never waits for it; the acks are
 * queued by the time sendto returns and read without blocking.
 *
 * What has to happen inside a new netns (creating it, its lo, eth0's address and route) stays in one `unshare … ip -b`
 * process (bridge.ts `plugVeths`).
 */
import { errnoName, koffi, libcHandle } from '../../lib/libc.js';
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { SystemError } from '../../lib/errors.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const MSG_DONTWAIT = 0x40;
const NLMSG_ERROR = 2;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const IFLA_IFNAME = 3;
const IFLA_MASTER = 10;
const IFF_UP = 1;
const IFNAMSIZ = 16;

type Fn<A extends unknown[]> = ((...a: A) => number) & { async: (...a: [...A, (err: unknown, r: number) => void]) => void };

interface Native {
  socket: (domain: number, type: number, proto: number) => number;
  sendto: Fn<[number, Buffer, number, number, null, number]>;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  close: (fd: number) => number;
  errno: () => number;
}

let native: Native | null = null;

function lib(): Native {
  if (native) return native;
  const c = libcHandle();
  native = {
    socket: c.func('int socket(int domain, int type, int protocol)') as Native['socket'],
    sendto: c.func('long sendto(int fd, void *buf, size_t len, int flags, void *addr, unsigned int addrlen)') as Native['sendto'],
    recv: c.func('long recv(int fd, void *buf, size_t len, int flags)') as Native['recv'],
    close: c.func('int close(int fd)') as Native['close'],
    errno: () => koffi().errno(),
  };
  return native;
}


let seq = 0;

/** One RTM_*LINK message: ifinfomsg by name (index 0), flags, and u32 / string attributes. */
function linkMessage(type: number, name: string, opts: { up?: boolean; master?: number } = {}): { msg: Buffer; seq: number } {
  if (!name || Buffer.byteLength(name) >= IFNAMSIZ || name.includes('\0')) throw new SystemError(`netlink: bad interface name ${JSON.stringify(name)}`);
  const attrs: Buffer[] = [];
  const attr = (t: number, data: Buffer) => {
    const len = 4 + data.length;
    const b = Buffer.alloc((len + 3) & ~3);
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(t, 2);
    data.copy(b, 4);
    attrs.push(b);
  };
  attr(IFLA_IFNAME, Buffer.from(`${name}\0`));
  if (opts.master !== undefined) { const v = Buffer.alloc(4); v.writeUInt32LE(opts.master); attr(IFLA_MASTER, v); }
  const body = Buffer.alloc(16); // ifinfomsg: family, pad, type, index 0 (by name), flags, change
  if (opts.up) { body.writeUInt32LE(IFF_UP, 8); body.writeUInt32LE(IFF_UP, 12); }
  const hdr = Buffer.alloc(16);
  const s = (seq = (seq + 1) >>> 0);
  const len = 16 + body.length + attrs.reduce((n, a) => n + a.length, 0);
  hdr.writeUInt32LE(len, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  hdr.writeUInt32LE(s, 8);
  return { msg: Buffer.concat([hdr, body, ...attrs]), seq: s };
}

/**
 * Sends the messages (one sendto each, on a pool thread) and returns each one's status: 0 or an errno (ENODEV…).
 */
async function request(msgs: { msg: Buffer; seq: number; what: string }[]): Promise<number[]> {
  const n = lib();
  const fd = n.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw new SystemError(`netlink socket: ${errnoName(n.errno())}`);
  try {
    const status = new Map<number, number>();
    const buf = Buffer.alloc(8192);
    for (const m of msgs) {
      const sent = await new Promise<number>((resolve, reject) => {
        n.sendto.async(fd, m.msg, m.msg.length, 0, null, 0, (err, r) => (err ? reject(err as Error) : resolve(r)));
      });
      if (sent < 0) throw new SystemError(`netlink ${m.what}: sendto ${errnoName(n.errno())}`);
      // the kernel answered inside sendto: its ack is queued
      while (!status.has(m.seq)) {
        const got = n.recv(fd, buf, buf.length, MSG_DONTWAIT);
        if (got < 0) throw new SystemError(`netlink ${m.what}: no answer (${errnoName(n.errno())})`);
        for (let off = 0; off + 16 <= got;) {
          const len = buf.readUInt32LE(off);
          if (len < 16) break;
          if (buf.readUInt16LE(off + 4) === NLMSG_ERROR && off + 20 <= got) status.set(buf.readUInt32LE(off + 8), -buf.readInt32LE(off + 16));
          off += (len + 3) & ~3;
        }
      }
    }
    return msgs.map((m) => status.get(m.seq)!);
  } finally {
    n.close(fd);
  }
}

function fail(what: string, errno: number): SystemError {
  return new SystemError(`${what}: ${errnoName(errno)}`);
}

async function ifindex(dev: string): Promise<number> {
  if (!dev || dev.includes('/') || dev.includes('\0') || Buffer.byteLength(dev) >= IFNAMSIZ || dev === '.' || dev === '..') {
    throw new SystemError(`netlink: bad interface name ${JSON.stringify(dev)}`);
  }
  const v = Number((await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8')).trim());
  if (!Number.isInteger(v) || v <= 0) throw new SystemError(`no interface index for ${dev}`);
  return v;
}

/** `ip link set <dev> master <master> up` for each pair, in the daemon's network namespace. */
export async function enslaveUp(pairs: { dev: string; master: string }[]): Promise<void> {
  if (!pairs.length) return;
  const masters = new Map<string, number>();
  for (const p of pairs) if (!masters.has(p.master)) masters.set(p.master, await ifindex(p.master));
  const msgs = pairs.map((p) => ({ ...linkMessage(RTM_NEWLINK, p.dev, { up: true, master: masters.get(p.master)! }), what: `link set ${p.dev} master ${p.master} up` }));
  const st = await request(msgs);
  st.forEach((e, i) => { if (e !== 0) throw fail(msgs[i]!.what, e); });
}

/** `ip -force link del <dev>` for each name: one that is gone already is no error; any other failure throws. */
export async function deleteLinks(devs: string[]): Promise<void> {
  if (!devs.length) return;
  const msgs = devs.map((d) => ({ ...linkMessage(RTM_DELLINK, d), what: `link del ${d}` }));
  const st = await request(msgs);
  const bad = st.map((e, i) => [e, i] as const).filter(([e]) => e !== 0 && e !== osConstants.errno.ENODEV);
  if (bad.length) throw fail(msgs[bad[0]![1]]!.what, bad[0]![0]);
}
