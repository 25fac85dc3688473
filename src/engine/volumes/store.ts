/**
 * Volumes, as docker's `local` driver keeps them: `<data-root>/volumes/<name>/_data` holds the content and
 * `<data-root>/volumes/<name>/opts.json` the metadata (written atomically: a volume exists once its metadata
 * does). Containers take references on the volumes they mount; a volume in use cannot be removed. Anonymous
 * volumes (random 64-hex names, the `com.docker.volume.anonymous` label) belong to the container that made
 * them and go with it on `rm -v` and `--rm`.
 *
 * The local driver's mount options (`--opt type=tmpfs|none|… --opt device=… --opt o=…`, dockerd's
 * `mount -t TYPE -o O DEVICE _data`): such a volume is mounted while a container holds it and unmounted when
 * the last one lets go (a tmpfs volume starts empty for each new user, as with dockerd); its directory is never
 * removed while something is mounted on it.
 */
import { readFileSync } from 'node:fs';
import type { EventPublisher } from '../events/types.js';
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { execChecked } from '../../lib/exec.js';
import { ConflictError, InvalidParameterError, NotFoundError } from '../../lib/errors.js';
import type { Filters } from '../../lib/filters.js';
import { rfc3339 } from '../../lib/go.js';
import { dirSize, isENOENT, isMissing, missingAs } from '../../lib/fsutil.js';
import { discardLogger, type Logger } from '../../lib/log.js';

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export type { Volume } from '../../wire/index.js';
import type { Volume, VolumePruneReport } from '../../wire/index.js';
import type { Volumes } from './types.js';

interface Meta { Name: string; CreatedAt: string; Labels: Record<string, string>; Options: Record<string, string> }

export class VolumeStore implements Volumes {
  private readonly root: string;
  private readonly vols = new Map<string, Meta>();
  /** volume name → IDs of the containers that mount it */
  private readonly users = new Map<string, Set<string>>();
  /** volume name → its last mount or unmount (they run one after another) */
  private readonly mountOps = new Map<string, Promise<void>>();

  constructor(dataRoot: string, private readonly log: Logger = discardLogger) {
    this.root = join(dataRoot, 'volumes');
  }

  async open(): Promise<this> {
    await mkdir(this.root, { recursive: true, mode: 0o701 });
    for (const name of await readdir(this.root)) {
      try {
        const m = JSON.parse(await readFile(join(this.root, name, 'opts.json'), 'utf8')) as Meta;
        this.vols.set(m.Name, m);
      } catch (e) {
        // metadata that exists but cannot be read: the volume and its data are kept for a person to look at
        if (!isENOENT(e)) { this.log.error('volume metadata unreadable: not loaded, left in place', { volume: name, error: e }); continue; }
        // no metadata: a create that never finished
        await rm(join(this.root, name), { recursive: true, force: true }).catch(this.log.onError('removing a half-created volume', { volume: name }));
      }
    }
    return this;
  }

  mountpoint(name: string): string {
    return join(this.root, name, '_data');
  }

  private view(m: Meta): Volume {
    return {
      CreatedAt: m.CreatedAt, Driver: 'local', Labels: Object.keys(m.Labels).length ? m.Labels : null,
      Mountpoint: this.mountpoint(m.Name), Name: m.Name, Options: Object.keys(m.Options).length ? m.Options : null, Scope: 'local',
    };
  }

  has(name: string): boolean {
    return this.vols.has(name);
  }

  isAnonymous(name: string): boolean {
    return this.vols.get(name)?.Labels[ANONYMOUS_LABEL] !== undefined;
  }

  /** Where volume events go (create, destroy; mount and unmount come from the container lifecycle). */
  events?: EventPublisher;

  /** POST /volumes/create: an existing name is returned as it is (docker's behaviour). */
  async create(opts: { Name?: string; Driver?: string; Labels?: Record<string, string> | null; DriverOpts?: Record<string, string> | null; anonymous?: boolean } = {}): Promise<Volume> {
    const driver = opts.Driver || 'local';
    if (driver !== 'local') throw new NotFoundError(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    let name = opts.Name ?? '';
    const labels = { ...(opts.Labels ?? {}) };
    if (name === '') {
      name = randomBytes(32).toString('hex');
      if (opts.anonymous !== false) labels[ANONYMOUS_LABEL] = '';
    } else if (!NAME_RE.test(name)) {
      throw new InvalidParameterError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const existing = this.vols.get(name);
    if (existing) { this.events?.publish('volume', 'create', name, { driver: 'local' }); return this.view(existing); }
    const options = { ...(opts.DriverOpts ?? {}) };
    for (const k of Object.keys(options)) {
      if (!['type', 'device', 'o'].includes(k)) throw new InvalidParameterError(`create ${name}: invalid option: ${JSON.stringify(k)}`);
    }
    if (Object.keys(options).length && (!options.type || !options.device)) {
      throw new InvalidParameterError(`create ${name}: missing required option: "${options.device ? 'type' : 'device'}"`);
    }
    const m: Meta = { Name: name, CreatedAt: rfc3339(new Date()), Labels: labels, Options: options };
    await mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
    await writeJsonAtomic(join(this.root, name, 'opts.json'), m);
    this.vols.set(name, m);
    this.events?.publish('volume', 'create', name, { driver: 'local' });
    return this.view(m);
  }

  get(name: string): Volume {
    const m = this.vols.get(name);
    if (!m) throw new NotFoundError(`get ${name}: no such volume`);
    return this.view(m);
  }

  usersOf(name: string): string[] {
    return [...(this.users.get(name) ?? [])];
  }

  /**
   * A container mounts the volume (at create, or when the daemon loads its record). A volume with mount options
   * is mounted for its first user: `whenMounted` says when (or why not).
   */
  retain(name: string, containerId: string): void {
    let s = this.users.get(name);
    if (!s) this.users.set(name, (s = new Set()));
    s.add(containerId);
    const m = this.vols.get(name);
    if (m?.Options.type && s.size === 1) this.queue(name, () => this.mountNow(m));
  }

  release(name: string, containerId: string): void {
    const s = this.users.get(name);
    if (!s?.delete(containerId)) return;
    const m = this.vols.get(name);
    if (m?.Options.type && s.size === 0) this.queue(name, () => this.unmountNow(name).catch(() => {}));
  }

  /** Resolves once a volume with mount options is mounted; rejects with the mount's error. */
  async whenMounted(name: string): Promise<void> {
    await this.mountOps.get(name);
  }

  private queue(name: string, op: () => Promise<void>): void {
    const prev = this.mountOps.get(name) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(op);
    next.catch(() => {});
    this.mountOps.set(name, next);
  }

  private async mountNow(m: Meta): Promise<void> {
    const mp = this.mountpoint(m.Name);
    if (isMountPoint(mp)) return; // still mounted from before a daemon restart
    const { type, device, o } = m.Options;
    const args = ['-t', type!, ...(o ? ['-o', o] : []), device!, mp];
    try {
      await execChecked('mount', args);
    } catch (e) {
      const err = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim().replace(/^mount: (\S+: )?/, '');
      throw new InvalidParameterError(`error while mounting volume '${mp}': failed to mount local volume: mount ${device}:${mp}${o ? `, data: ${o}` : ''}: ${err}`);
    }
  }

  private async unmountNow(name: string): Promise<void> {
    const mp = this.mountpoint(name);
    if (isMountPoint(mp)) await execChecked('umount', [mp]);
  }

  async list(filters: Filters = {}): Promise<Volume[]> {
    const out: Volume[] = [];
    for (const m of this.vols.values()) {
      if (filters.name?.length && !filters.name.some((n) => m.Name.includes(n))) continue;
      if (filters.driver?.length && !filters.driver.includes('local')) continue;
      if (filters.dangling?.length) {
        const want = ['true', '1'].includes(filters.dangling[0]!.toLowerCase());
        if ((this.usersOf(m.Name).length === 0) !== want) continue;
      }
      if (filters.label?.length && !filters.label.every((l) => labelMatches(m.Labels, l))) continue;
      out.push(this.view(m));
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }

  async remove(name: string, force = false): Promise<void> {
    const m = this.vols.get(name);
    if (!m) {
      if (force) return;
      throw new NotFoundError(`get ${name}: no such volume`);
    }
    const users = this.usersOf(name);
    if (users.length) throw new ConflictError(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    // never a recursive removal through a mount (a bind-mounted host directory would go with it)
    await this.mountOps.get(name)?.catch(() => {});
    if (isMountPoint(this.mountpoint(name))) {
      await execChecked('umount', [this.mountpoint(name)]).catch(() => {});
      if (isMountPoint(this.mountpoint(name))) throw new ConflictError(`remove ${name}: the volume is still mounted`);
    }
    this.vols.delete(name);
    // metadata first: a crash between the two leaves content without metadata, which open() collects
    await rm(join(this.root, name, 'opts.json'), { force: true });
    await rm(join(this.root, name), { recursive: true, force: true });
    this.events?.publish('volume', 'destroy', name, { driver: 'local' });
  }

  /** POST /volumes/prune (API 1.41: every unused local volume; `label` filters). */
  async prune(filters: Filters = {}): Promise<VolumePruneReport> {
    const deleted: string[] = [];
    let space = 0;
    for (const m of [...this.vols.values()]) {
      if (this.usersOf(m.Name).length) continue;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(m.Labels, l))) continue;
      if (filters['label!']?.length && filters['label!'].some((l) => labelMatches(m.Labels, l))) continue;
      const size = await dirSize(this.mountpoint(m.Name));
      try { await this.remove(m.Name); deleted.push(m.Name); space += size; } catch (e) { if (!(e instanceof ConflictError)) this.log.unlessGone('pruning a volume', { volume: m.Name })(e); /* in use meanwhile */ }
    }
    return { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: space };
  }

  /** For system df: every volume with its size and reference count. */
  async usage(): Promise<Volume[]> {
    const out: Volume[] = [];
    for (const m of this.vols.values()) {
      out.push({ ...this.view(m), UsageData: { Size: await dirSize(this.mountpoint(m.Name)), RefCount: this.usersOf(m.Name).length } });
    }
    return out;
  }
}


/** Whether something is mounted at `path` (from /proc/self/mountinfo). */
function isMountPoint(path: string): boolean {
  let text = '';
  try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return false; }
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && mp.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))) === path) return true;
  }
  return false;
}

function labelMatches(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf('=');
  if (i < 0) return Object.prototype.hasOwnProperty.call(labels, f);
  return labels[f.slice(0, i)] === f.slice(i + 1);
}
