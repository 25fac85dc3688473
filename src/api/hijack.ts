/**
 * Taking over a request's connection the way dockerd hijacks it (attach, exec start, the build session): the
 * answer is `101` with `Connection: Upgrade`, `Upgrade: tcp`, and from then on the socket carries raw bytes both
 * ways, off the HTTP parser. The one place that knows how to detach a Node HTTP server's socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Answers 101 and calls `detached(socket)` once the HTTP server no longer reads the socket (on the next turn of
 * the event loop): from then on the caller reads it (resume or pipe it). Writes may start at once.
 */
export function upgradeConnection(req: IncomingMessage, res: ServerResponse, detached: (sock: Socket) => void, contentType = 'application/vnd.docker.raw-stream'): Socket {
  const sock = req.socket;
  // the client may half-close (after its stdin); the HTTP server must not end the socket for it
  sock.removeAllListeners('end');
  sock.removeAllListeners('timeout');
  sock.setTimeout(0);
  res.writeHead(101, { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' });
  res.flushHeaders();
  // What the client sends from now on is not HTTP: take the socket off the parser as node does for its own
  // 'upgrade' event. Not from inside the parser's callback (that is ignored), hence setImmediate.
  setImmediate(() => {
    const p = (sock as unknown as { parser?: { _consumed?: boolean; unconsume?: () => void } }).parser;
    if (p?._consumed && p.unconsume) { p.unconsume(); p._consumed = false; }
    for (const ev of ['data', 'pause', 'resume', 'end']) sock.removeAllListeners(ev);
    detached(sock);
  });
  return sock;
}
