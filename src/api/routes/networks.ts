/** Network routes (API 1.41): list, inspect, create, remove, connect, disconnect, prune. */
import { InvalidParameterError } from '../../lib/errors.js';
import type { NetworkBackend } from '../backend.js';
import type { NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest } from '../../wire/index.js';
import { readJsonBody, sendEmpty, sendJson, type Router } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

function object<T>(v: unknown, what: string): T {
  if (v === undefined || v === null) return {} as T;
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidParameterError(`invalid ${what} body: expected a JSON object`);
  return v as T;
}

export function networkRoutes(r: Router, n: NetworkBackend): void {
  r.get('/networks', ({ res, query }) => sendJson(res, 200, n.list(parseFilters(query.get('filters')))));
  r.post('/networks/create', async ({ req, res }) => {
    const body = object<NetworkCreateRequest>(await readJsonBody(req), 'network create');
    sendJson(res, 201, await n.create(body));
  });
  r.post('/networks/prune', async ({ res, query }) => sendJson(res, 200, await n.prune(parseFilters(query.get('filters')))));
  r.get('/networks/{id}', ({ res, params }) => sendJson(res, 200, n.inspect(params.id!)));
  r.delete('/networks/{id}', async ({ res, params }) => {
    await n.remove(params.id!);
    sendEmpty(res, 204);
  });
  r.post('/networks/{id}/connect', async ({ req, res, params }) => {
    const body = object<NetworkConnectRequest>(await readJsonBody(req), 'network connect');
    if (!body.Container) throw new InvalidParameterError('no container specified');
    await n.connectContainer(params.id!, body.Container, body.EndpointConfig);
    sendEmpty(res, 200);
  });
  r.post('/networks/{id}/disconnect', async ({ req, res, params }) => {
    const body = object<NetworkDisconnectRequest>(await readJsonBody(req), 'network disconnect');
    if (!body.Container) throw new InvalidParameterError('no container specified');
    await n.disconnectContainer(params.id!, body.Container, !!body.Force);
    sendEmpty(res, 200);
  });
}
