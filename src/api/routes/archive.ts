/** GET /images/get, GET /images/{name}/get (docker save) and POST /images/load (docker load). */
import { pipeline } from 'node:stream/promises';
import type { ImageArchiveBackend } from '../backend.js';
import { JsonStream, requestBody, type Router } from '../router.js';

export function archiveRoutes(r: Router, archive: ImageArchiveBackend): void {
  const save = async (names: string[], res: import('node:http').ServerResponse) => {
    const tar = await archive.save(names);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      await pipeline(tar, res);
    } catch {
      res.destroy(); // mid-stream failure: the client sees a truncated archive, as with dockerd
    }
  };
  r.get('/images/get', async ({ res, query }) => save(query.getAll('names'), res));
  r.get('/images/{name*}/get', async ({ res, params }) => save([params.name!], res));
  r.post('/images/load', async ({ req, res }) => {
    const stream = new JsonStream(res);
    const body = requestBody(req);
    // dockerd answers 200 before it reads the archive: a bad archive is an errorDetail line (docker-py's
    // ImageLoadError), never an error status
    stream.open();
    try {
      await archive.load(body, stream.sink);
      stream.end();
    } catch (e) {
      stream.end(e);
    } finally {
      body.destroy();
    }
  });
}
