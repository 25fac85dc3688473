/** /images/…: create (pull, import), list, inspect, history, tag, remove, prune, and Wharf's bootstrap. */
import { Readable } from 'node:stream';
import { InvalidParameterError, UnavailableError } from '../../lib/errors.js';
import { get as httpGet, goNetError, type HttpResponse } from '../../lib/httpclient.js';
import type { ImageBackend } from '../backend.js';
import { JsonStream, type RequestContext, type Router, boolValue, decodeRegistryAuth, requestBody, sendEmpty, sendJson } from '../router.js';
import { parseFilters } from '../../lib/filters.js';

/** True when a docker reference string already names a tag or a digest ("busybox:1", "x@sha256:…"). */
export function hasTagOrDigest(ref: string): boolean {
  if (ref.includes('@')) return true;
  const lastSlash = ref.lastIndexOf('/');
  return ref.slice(lastSlash + 1).includes(':');
}

/** fromImage + tag → the reference to pull; tag may be a digest. */
export function pullReference(image: string, tag: string): string {
  if (tag === '') return image;
  return tag.startsWith('sha256:') ? `${image}@${tag}` : `${image}:${tag}`;
}

export function imageRoutes(r: Router, images: ImageBackend): void {
  // Literal paths first: the {name*} routes below would swallow them otherwise.
  r.post('/images/create', (ctx) => createImage(ctx, images));

  r.get('/images/json', async ({ res, query }) => {
    const list = await images.list({
      all: boolValue(query, 'all'),
      filters: parseFilters(query.get('filters')),
      sharedSize: boolValue(query, 'shared-size'),
    });
    sendJson(res, 200, list);
  });

  r.post('/images/prune', async ({ res, query }) => {
    sendJson(res, 200, await images.prune(parseFilters(query.get('filters'))));
  });

  r.post('/images/bootstrap', async ({ res, query }) => {
    const name = query.get('name') ?? '';
    if (name === '') throw new InvalidParameterError('name is required (busybox or debian:<suite>)');
    const stream = new JsonStream(res);
    try {
      const id = await images.bootstrap(name, stream.sink);
      stream.write({ aux: { ID: id } });
      stream.end();
    } catch (e) {
      stream.end(e);
    }
  });

  r.get('/images/{name*}/json', async ({ res, params }) => sendJson(res, 200, await images.inspect(params.name!)));
  r.get('/images/{name*}/history', async ({ res, params }) => sendJson(res, 200, await images.history(params.name!)));

  r.post('/images/{name*}/tag', async ({ res, params, query }) => {
    const repo = query.get('repo') ?? '';
    const tag = query.get('tag') ?? '';
    await images.tag(params.name!, repo, tag === '' ? undefined : tag);
    sendEmpty(res, 201);
  });

  r.delete('/images/{name*}', async ({ res, params, query }) => {
    const out = await images.remove(params.name!, { force: boolValue(query, 'force'), noPrune: boolValue(query, 'noprune') });
    sendJson(res, 200, out);
  });
}

async function createImage(ctx: RequestContext, images: ImageBackend): Promise<void> {
  const { req, res, query, signal } = ctx;
  const fromImage = query.get('fromImage') ?? '';
  const fromSrc = query.get('fromSrc') ?? '';
  const tag = query.get('tag') ?? '';
  const platform = query.get('platform') ?? '';

  if (fromImage !== '') {
    const auth = decodeRegistryAuth(req.headers['x-registry-auth']);
    const allTags = tag === '' && !hasTagOrDigest(fromImage);
    const stream = new JsonStream(res);
    try {
      await images.pull(
        pullReference(fromImage, tag),
        {
          ...(platform !== '' ? { platform } : {}),
          ...(allTags ? { allTags } : {}),
          ...(auth !== undefined ? { auth } : {}),
          signal,
        },
        stream.sink,
      );
      stream.end();
    } catch (e) {
      stream.end(e);
    }
    return;
  }

  if (fromSrc !== '') {
    const stream = new JsonStream(res);
    let tar: Readable | undefined;
    try {
      if (fromSrc === '-') {
        tar = requestBody(req);
      } else {
        let url: URL;
        try {
          url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(fromSrc) ? fromSrc : `http://${fromSrc}`);
        } catch {
          throw new InvalidParameterError(`invalid import source: ${fromSrc}`);
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          throw new InvalidParameterError(`unsupported import source: ${fromSrc}`);
        }
        let resp: HttpResponse;
        try {
          resp = await httpGet(url.href, { signal });
        } catch (e) {
          throw goNetError('GET', url.href, e);
        }
        if (resp.statusCode < 200 || resp.statusCode > 299) {
          resp.body.destroy();
          throw new UnavailableError(`Get "${url.href}": unexpected status ${resp.statusCode}`);
        }
        tar = resp.body;
      }
      const changes = query.getAll('changes').filter((c) => c !== '');
      const message = query.get('message') ?? '';
      const repo = query.get('repo') ?? '';
      // The backend reports the new ID itself ({"status":"sha256:…"}, as dockerd does).
      await images.importImage(
        tar,
        {
          source: fromSrc,
          ...(repo !== '' ? { repo } : {}),
          ...(tag !== '' ? { tag } : {}),
          ...(message !== '' ? { message } : {}),
          ...(changes.length > 0 ? { changes } : {}),
          ...(platform !== '' ? { platform } : {}),
        },
        stream.sink,
      );
      stream.end();
    } catch (e) {
      stream.end(e);
    } finally {
      tar?.destroy();
    }
    return;
  }

  throw new InvalidParameterError('fromImage or fromSrc is required');
}
