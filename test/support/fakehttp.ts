/**
 * A fake HTTP server on loopback for client tests (the registry transport, lib/httpclient): every request is
 * recorded in `seen` and answered by the current `handler` (404 until a test sets one).
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface Fake {
  server: Server;
  /** 127.0.0.1:<port> */
  host: string;
  port: number;
  /** http://127.0.0.1:<port> */
  base: string;
  seen: { method: string; path: string; headers: IncomingMessage['headers'] }[];
  handler: Handler;
}

export async function fakeServer(): Promise<Fake> {
  const f = { seen: [], handler: ((_q, r) => { r.writeHead(404).end(); }) as Handler } as unknown as Fake;
  f.server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    f.seen.push({ method: req.method!, path: url.pathname + url.search, headers: req.headers });
    f.handler(req, res, url);
  });
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
  f.port = (f.server.address() as { port: number }).port;
  f.host = `127.0.0.1:${f.port}`;
  f.base = `http://${f.host}`;
  return f;
}
