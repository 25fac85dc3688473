/** Container routes: create, inspect, list, remove (and, once wired, the runtime ones). */
import { InvalidParameterError } from '../../lib/errors.js';
import { boolValue, intValue, parseFilters, readJsonBody, sendEmpty, sendJson, type Router } from '../router.js';
import type { ContainerService } from '../../engine/containers/service.js';

export function containerRoutes(r: Router, c: ContainerService): void {
  r.post('/containers/create', async ({ req, res, query }) => {
    const body = await readJsonBody(req);
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new InvalidParameterError('Config cannot be empty in order to create a container');
    }
    sendJson(res, 201, await c.create(query.get('name'), body as Record<string, unknown>));
  });
  r.get('/containers/json', ({ res, query }) => {
    sendJson(res, 200, c.list({ all: boolValue(query, 'all'), limit: intValue(query, 'limit', -1), filters: parseFilters(query.get('filters')) }));
  });
  r.get('/containers/{id}/json', ({ res, params }) => { sendJson(res, 200, c.inspect(params.id!)); });
  r.delete('/containers/{id}', async ({ res, params, query }) => {
    if (boolValue(query, 'v')) { /* no volumes yet: nothing to remove */ }
    await c.remove(params.id!, { force: boolValue(query, 'force') });
    sendEmpty(res, 204);
  });
}
