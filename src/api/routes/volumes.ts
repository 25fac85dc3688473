/** Volume routes: list, create, inspect, remove, prune (API 1.41 shapes). */
import { InvalidParameterError } from '../../lib/errors.js';
import type { VolumeCreateRequest } from '../../wire/index.js';
import { VOLUME_CREATE } from '../../wire/schema.js';
import type { VolumeBackend } from '../backend.js';
import { readBody } from '../decode.js';
import { boolValue, sendEmpty, sendJson, type Router } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

const LIST_FILTERS = ['dangling', 'driver', 'label', 'name'];
const PRUNE_FILTERS = ['label', 'label!'];

export function volumeRoutes(r: Router, v: VolumeBackend): void {
  r.get('/volumes', async ({ res, query }) => {
    const f = parseFilters(query.get('filters'));
    for (const k of Object.keys(f)) if (!LIST_FILTERS.includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    sendJson(res, 200, { Volumes: await v.list(f), Warnings: null });
  });
  r.post('/volumes/create', async ({ req, res }) => {
    sendJson(res, 201, await v.create((await readBody<VolumeCreateRequest>(req, VOLUME_CREATE)) ?? {}));
  });
  r.post('/volumes/prune', async ({ res, query }) => {
    const f = parseFilters(query.get('filters'));
    for (const k of Object.keys(f)) if (!PRUNE_FILTERS.includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    sendJson(res, 200, await v.prune(f));
  });
  r.get('/volumes/{name}', async ({ res, params }) => sendJson(res, 200, v.get(params.name!)));
  r.delete('/volumes/{name}', async ({ res, params, query }) => {
    await v.remove(params.name!, boolValue(query, 'force'));
    sendEmpty(res, 204);
  });
}
