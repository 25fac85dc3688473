/** /_ping, /version, /info, /system/df. */
import type { SystemBackend } from '../backend.js';
import { type Router, sendJson } from '../router.js';

export function systemRoutes(r: Router, system: SystemBackend): void {
  const ping = ({ req, res }: { req: { method?: string }; res: import('node:http').ServerResponse }) => {
    res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
    res.setHeader('Pragma', 'no-cache');
    // "1": the classic builder (POST /build); Wharf has no BuildKit.
    res.setHeader('Builder-Version', '1');
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 });
    res.end('OK');
  };
  r.get('/_ping', ping);
  r.head('/_ping', ping);

  r.get('/version', async ({ res }) => sendJson(res, 200, await system.version()));
  r.get('/info', async ({ res }) => sendJson(res, 200, await system.info()));
  r.get('/system/df', async ({ res }) => sendJson(res, 200, await system.df()));
}
