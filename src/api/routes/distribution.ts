/** POST /images/{name}/push (dockerd's postImagesPush): streams the push's JSON messages. */
import type { PushBackend } from '../backend.js';
import { JsonStream, type Router, decodeRegistryAuth } from '../router.js';

export function distributionRoutes(r: Router, pusher: PushBackend): void {
  r.post('/images/{name*}/push', async ({ req, res, params, query, signal }) => {
    const auth = decodeRegistryAuth(req.headers['x-registry-auth']);
    const tag = query.get('tag') ?? '';
    const stream = new JsonStream(res);
    try {
      await pusher.push(params.name!, tag === '' ? undefined : tag, { ...(auth ? { auth } : {}), signal }, stream.sink);
      stream.end();
    } catch (e) {
      stream.end(e);
    }
  });
}
