/** GET /containers/{id}/stats (docker stats) and POST /containers/{id}/update (docker update). */
import { InvalidParameterError } from '../../lib/errors.js';
import type { ContainerResourcesBackend, ContainerUpdate } from '../backend.js';
import { boolValueOrDefault, boolValue, sendJson, type Router } from '../router.js';
import { readBody } from '../decode.js';
import { CONTAINER_UPDATE } from '../../wire/schema.js';

export function containerResourceRoutes(r: Router, b: ContainerResourcesBackend): void {
  r.get('/containers/{id}/stats', async ({ res, params, query, signal }) => {
    const stream = boolValueOrDefault(query, 'stream', true);
    const oneShot = boolValue(query, 'one-shot');
    if (oneShot && stream) throw new InvalidParameterError('cannot have stream=true and one-shot=true');
    const it = b.stats(params.id!, { stream, oneShot, signal })[Symbol.asyncIterator]();
    // the first answer before the headers: an unknown container is still a 404
    const first = await it.next();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (!first.done) res.write(JSON.stringify(first.value) + '\n');
    if (stream) {
      res.flushHeaders();
      for (let n = await it.next(); !n.done && !signal.aborted; n = await it.next()) res.write(JSON.stringify(n.value) + '\n');
    }
    await it.return?.();
    res.end();
  });
  r.post('/containers/{id}/update', async ({ req, res, params }) => {
    // read as Go reads container.UpdateConfig (api/decode.ts): keys case-insensitively, a wrong type a 400
    const body = await readBody<ContainerUpdate>(req, CONTAINER_UPDATE);
    sendJson(res, 200, await b.update(params.id!, body ?? {}));
  });
}
