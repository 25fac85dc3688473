/**
 * Swarm and plugin endpoints of a daemon that is not in a swarm and has no plugins, answering as dockerd 20.10
 * does in that state (checked against the reference daemon): the swarm resources (swarm, nodes, services,
 * tasks, secrets, configs) are 503 "not a swarm manager", `swarm leave` 503 "not part of a swarm", the request
 * checks that come first (ListenAddr, version, log streams) with their own errors; GET /plugins is an empty list
 * and any named plugin is 404 `plugin "x" not found`. Creating a swarm is not something Wharf does: 501.
 */
import { InvalidParameterError, NotFoundError, NotImplementedError, SystemError, ServiceUnavailableError } from '../../lib/errors.js';
import { boolValue, readJsonBody, sendJson, type Router } from '../router.js';

export const NOT_A_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const NOT_IN_SWARM = 'This node is not part of a swarm';

const notManager = () => { throw new ServiceUnavailableError(NOT_A_MANAGER); };

/** Go's strconv errors, as dockerd returns them for bad numbers in a query. */
const strconvSyntax = (fn: string, v: string) => `strconv.${fn}: parsing ${JSON.stringify(v)}: invalid syntax`;

export function swarmRoutes(r: Router): void {
  r.get('/swarm', notManager);
  r.get('/swarm/unlockkey', notManager);
  r.post('/swarm/unlock', notManager);
  r.post('/swarm/leave', () => { throw new ServiceUnavailableError(NOT_IN_SWARM); });
  const initOrJoin = async ({ req }: { req: import('node:http').IncomingMessage }) => {
    const body = ((await readJsonBody(req)) ?? {}) as { ListenAddr?: unknown };
    const addr = typeof body.ListenAddr === 'string' ? body.ListenAddr : '';
    if (addr === '') throw new InvalidParameterError('invalid ListenAddr "": invalid empty address');
    throw new NotImplementedError('swarm mode is not supported by wharfd');
  };
  r.post('/swarm/init', initOrJoin);
  r.post('/swarm/join', initOrJoin);
  r.post('/swarm/update', ({ query }) => {
    const v = query.get('version') ?? '';
    if (!/^\d+$/.test(v)) throw new InvalidParameterError(`invalid swarm version '${v}': ${strconvSyntax('ParseUint', v)}`);
    notManager();
  });
  for (const kind of ['nodes', 'services', 'tasks', 'secrets', 'configs']) {
    r.get(`/${kind}`, notManager);
    r.get(`/${kind}/{id}`, notManager);
    if (kind !== 'tasks') {
      r.delete(`/${kind}/{id}`, notManager);
      r.post(`/${kind}/{id}/update`, notManager);
    }
    if (kind === 'services' || kind === 'secrets' || kind === 'configs') r.post(`/${kind}/create`, notManager);
    if (kind === 'services' || kind === 'tasks') {
      r.get(`/${kind}/{id}/logs`, ({ query }) => {
        // dockerd checks the streams before it looks for a swarm (and answers 500 for it)
        if (!boolValue(query, 'stdout') && !boolValue(query, 'stderr')) throw new SystemError('Bad parameters: you must choose at least one stream');
        notManager();
      });
    }
  }
}

export function pluginRoutes(r: Router): void {
  const notFound = (name: string) => new NotFoundError(`plugin ${JSON.stringify(name)} not found`);
  r.get('/plugins', ({ res }) => sendJson(res, 200, []));
  r.get('/plugins/{name*}/json', ({ params }) => { throw notFound(params.name!); });
  r.delete('/plugins/{name*}', ({ params }) => { throw notFound(params.name!); });
  r.post('/plugins/{name*}/enable', ({ params, query }) => {
    const t = query.get('timeout') ?? '';
    if (!/^[+-]?\d+$/.test(t)) throw new SystemError(strconvSyntax('Atoi', t));
    throw notFound(params.name!);
  });
  for (const verb of ['disable', 'push', 'set', 'upgrade']) r.post(`/plugins/{name*}/${verb}`, ({ params }) => { throw notFound(params.name!); });
  r.post('/plugins/pull', () => { throw new NotImplementedError('plugins are not supported by wharfd'); });
  r.post('/plugins/create', () => { throw new NotImplementedError('plugins are not supported by wharfd'); });
}
