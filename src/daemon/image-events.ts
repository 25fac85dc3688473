/**
 * Image events (GET /events, Type "image") for the API's image verbs, as dockerd logs them: the backends the
 * routes call are wrapped here, in the composition root, so the image, archive and push modules stay unaware of
 * the event log. Attributes: the image's labels (while it still exists) and `name`.
 */
import type { ImageBackend } from '../api/backend.js';
import type { EventPublisher } from '../engine/events/index.js';
import type { ProgressSink } from '../lib/jsonmessage.js';
import { familiarName, familiarString, parseNormalizedNamed, withDefaultTag } from '../lib/reference.js';
import type { Readable } from 'node:stream';

type Resolve = (name: string) => Promise<{ id: string; config: { config?: { Labels?: Record<string, string> | null } } }>;

export class ImageEvents {
  constructor(private readonly events: EventPublisher, private readonly resolve: Resolve) {}

  /** dockerd's LogImageEvent(imageID, refName, action): `id` resolved for its labels when it still exists. */
  async log(id: string, name: string, action: string): Promise<void> {
    const labels = await this.resolve(id).then((img) => img.config.config?.Labels ?? {}, () => ({}));
    this.events.publish('image', action, id, { ...labels, name });
  }

  /** A tag made outside the image routes (the builder's -t): dockerd's "tag" event. */
  async tagged(id: string, ref: string): Promise<void> {
    await this.log(id, this.familiar(ref)[0], 'tag');
  }

  /** The ref's familiar forms: "busybox:latest" and "busybox" (the ref as given when it does not parse). */
  private familiar(ref: string): [string, string] {
    try {
      const r = withDefaultTag(parseNormalizedNamed(ref));
      return [familiarString(r), familiarName(r)];
    } catch { return [ref, ref]; }
  }

  images(b: ImageBackend): ImageBackend {
    const self = this;
    return Object.assign(Object.create(b) as ImageBackend, {
      async pull(ref: string, opts: Parameters<ImageBackend['pull']>[1], progress: ProgressSink) {
        await b.pull(ref, opts, progress);
        const [full, name] = self.familiar(ref);
        await self.log(full, name, 'pull');
      },
      async importImage(tar: Readable, opts: Parameters<ImageBackend['importImage']>[1], progress: ProgressSink) {
        const id = await b.importImage(tar, opts, progress);
        if (opts.repo) await self.log(id, self.familiar(opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo)[0], 'tag');
        await self.log(id, id, 'import');
        return id;
      },
      async tag(source: string, repo: string, tag: string | undefined) {
        await b.tag(source, repo, tag);
        const img = await self.resolve(source).catch(() => null);
        if (img) await self.log(img.id, self.familiar(tag ? `${repo}:${tag}` : repo)[0], 'tag');
      },
      async remove(name: string, opts: { force: boolean; noPrune: boolean }) {
        const img = await self.resolve(name).catch(() => null);
        // the answer's Deleted entries name images and layers alike: images are those listed before
        const images = new Set((await b.list({ all: true, filters: {} })).map((s) => s.Id));
        const items = await b.remove(name, opts);
        for (const it of items) {
          // dockerd logs the tags it removes, not the digest references that go with them
          if (it.Untagged && !it.Untagged.includes('@') && img) self.events.publish('image', 'untag', img.id, { ...(img.config.config?.Labels ?? {}), name: img.id });
          if (it.Deleted && images.has(it.Deleted)) self.events.publish('image', 'delete', it.Deleted, { name: it.Deleted });
        }
        return items;
      },
    });
  }

  archive<T extends { save(names: string[]): Promise<Readable>; load(input: Readable, progress: ProgressSink): Promise<void> }>(a: T): T {
    const self = this;
    return Object.assign(Object.create(a) as T, {
      async save(names: string[]) {
        const tar = await a.save(names);
        for (const n of names) {
          const img = await self.resolve(n).catch(() => null);
          if (img) await self.log(img.id, img.id, 'save');
        }
        return tar;
      },
      async load(input: Readable, progress: ProgressSink) {
        const loaded: string[] = [];
        await a.load(input, (m) => {
          const s = typeof m.stream === 'string' ? m.stream : '';
          const hit = /^Loaded image(?: ID)?: (\S+)/.exec(s);
          if (hit) loaded.push(hit[1]!);
          progress(m);
        });
        for (const n of loaded) {
          const img = await self.resolve(n).catch(() => null);
          if (img) await self.log(img.id, img.id, 'load');
        }
      },
    });
  }

  pusher<T extends { push(name: string, tag: string | undefined, opts: never, progress: ProgressSink): Promise<void> }>(p: T): T {
    const self = this;
    return Object.assign(Object.create(p) as T, {
      async push(name: string, tag: string | undefined, opts: never, progress: ProgressSink) {
        await p.push(name, tag, opts, progress);
        const [full, fam] = self.familiar(tag ? `${name}:${tag}` : name);
        await self.log(full, fam, 'push');
      },
    });
  }
}
