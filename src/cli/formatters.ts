/**
 * docker's cli/command/formatter contexts for images, history and system df: the rows, their fields
 * (the placeholders --format can use, and the key set of {{json .}}), the table headers and defaults.
 * Pure functions of API data and the clock, for golden tests.
 */
import { parseNormalizedNamed, familiarName } from '../lib/reference.js';
import { humanDuration, humanSize, humanSizeWithPrecision, formatDockerTime, ellipsis } from '../lib/units.js';
import { formatList } from '../lib/gotemplate.js';
import type { BuildCacheRecord, ContainerSummary, DiskUsage, HistoryItem, ImageSummary, VolumeSummary } from '../client/types.js';
import { rfc3339 } from '../lib/go.js';

export const TABLE_FORMAT_KEY = 'table';
export const JSON_FORMAT_KEY = 'json';

/** stringid.TruncateID: drops "algo:" and keeps 12 characters. */
export function truncateId(id: string): string {
  const i = id.indexOf(':');
  const s = i >= 0 ? id.slice(i + 1) : id;
  return s.length > 12 ? s.slice(0, 12) : s;
}

/** "About a minute ago" for a Unix time in seconds. */
export function createdSince(unixSeconds: number, now: number): string {
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

/** "json" → {{json .}}; anything else as given. */
export function normalizeFormat(f: string): string {
  return f === JSON_FORMAT_KEY ? '{{json .}}' : f;
}

// ---------------------------------------------------------------------------------------------
// images
// ---------------------------------------------------------------------------------------------

export interface ImageRowSource { repo: string; tag: string; digest: string; image: ImageSummary }

export function isDangling(img: ImageSummary): boolean {
  const tags = img.RepoTags ?? [];
  const digests = img.RepoDigests ?? [];
  if (tags.length === 0 && digests.length === 0) return true;
  return tags.length === 1 && tags[0] === '<none>:<none>' && digests.length === 1 && digests[0] === '<none>@<none>';
}

/** docker's imageFormat: one row per repository:tag (per digest with --digests), <none> rows. */
export function imageRowSources(images: readonly ImageSummary[], showDigests: boolean): ImageRowSource[] {
  const rows: ImageRowSource[] = [];
  for (const img of images) {
    if (isDangling(img)) {
      rows.push({ repo: '<none>', tag: '<none>', digest: '<none>', image: img });
      continue;
    }
    const repoTags = new Map<string, string[]>();
    const repoDigests = new Map<string, string[]>();
    for (const s of img.RepoTags ?? []) {
      try {
        const r = parseNormalizedNamed(s);
        if (r.tag === undefined) continue;
        const n = familiarName(r);
        repoTags.set(n, [...(repoTags.get(n) ?? []), r.tag]);
      } catch { /* skipped, as docker does */ }
    }
    for (const s of img.RepoDigests ?? []) {
      try {
        const r = parseNormalizedNamed(s);
        if (r.digest === undefined) continue;
        const n = familiarName(r);
        repoDigests.set(n, [...(repoDigests.get(n) ?? []), r.digest]);
      } catch { /* skipped */ }
    }
    for (const [repo, tags] of repoTags) {
      let digests = repoDigests.get(repo) ?? [];
      repoDigests.delete(repo);
      if (!showDigests) digests = [];
      for (const tag of tags) {
        if (digests.length === 0) { rows.push({ repo, tag, digest: '<none>', image: img }); continue; }
        for (const d of digests) rows.push({ repo, tag, digest: d, image: img });
      }
    }
    for (const [repo, digests] of repoDigests) {
      if (showDigests) for (const d of digests) rows.push({ repo, tag: '<none>', digest: d, image: img });
      else rows.push({ repo, tag: '<none>', digest: '', image: img });
    }
  }
  return rows;
}

/** The fields of one images row, keys in the order {{json .}} prints them (sorted, like Go). */
export function imageRow(src: ImageRowSource, trunc: boolean, now: number): Record<string, string> {
  const i = src.image;
  const shared = i.SharedSize;
  return {
    Containers: i.Containers === -1 ? 'N/A' : String(i.Containers),
    CreatedAt: formatDockerTime(i.Created * 1000),
    CreatedSince: createdSince(i.Created, now),
    Digest: src.digest,
    ID: trunc ? truncateId(i.Id) : i.Id,
    Repository: src.repo,
    SharedSize: shared === -1 ? 'N/A' : humanSize(shared),
    Size: humanSizeWithPrecision(i.Size, 3),
    Tag: src.tag,
    UniqueSize: i.Size === -1 || shared === -1 ? 'N/A' : humanSize(i.Size - shared),
    VirtualSize: humanSize(i.VirtualSize ?? i.Size),
  };
}

export const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT',
  Size: 'SIZE', Containers: 'CONTAINERS', VirtualSize: 'VIRTUAL SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE',
};

const DEFAULT_IMAGE_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const DEFAULT_IMAGE_TABLE_DIGEST = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';

/** formatter.NewImageFormat */
export function imageFormat(source: string, quiet: boolean, digest: boolean): string {
  if (source === TABLE_FORMAT_KEY) {
    if (quiet) return '{{.ID}}';
    return digest ? DEFAULT_IMAGE_TABLE_DIGEST : DEFAULT_IMAGE_TABLE;
  }
  if (source === 'raw') {
    if (quiet) return 'image_id: {{.ID}}';
    if (digest) return 'repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
    return 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
  }
  const f = normalizeFormat(source);
  if (f.startsWith(TABLE_FORMAT_KEY) && digest && !f.includes('{{.Digest}}')) {
    // docker inserts the digest column after the tag column
    return f.replace('{{.Tag}}', '{{.Tag}}\t{{.Digest}}');
  }
  return f;
}

export interface ImagesOptions { format?: string; quiet?: boolean; digests?: boolean; noTrunc?: boolean }

/** The whole output of `images`. */
export function renderImages(images: readonly ImageSummary[], o: ImagesOptions, now: number): string {
  const format = imageFormat(o.format || TABLE_FORMAT_KEY, o.quiet === true, o.digests === true);
  const rows = imageRowSources(images, o.digests === true).map((s) => imageRow(s, !o.noTrunc, now));
  return formatList(format, rows, IMAGE_HEADERS);
}

// ---------------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------------

export const HISTORY_HEADERS: Record<string, string> = {
  ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT',
};

export interface HistoryOptions { format?: string; quiet?: boolean; human?: boolean; noTrunc?: boolean }

export function historyRow(h: HistoryItem, human: boolean, trunc: boolean, now: number): Record<string, string> {
  const createdAt = rfc3339(new Date(h.Created * 1000));
  const createdBy = h.CreatedBy.replace(/\t/g, ' ');
  return {
    Comment: h.Comment,
    CreatedAt: createdAt,
    CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
    CreatedSince: human ? createdSince(h.Created, now) : createdAt,
    ID: trunc ? truncateId(h.Id) : h.Id,
    Size: human ? humanSizeWithPrecision(h.Size, 3) : String(h.Size),
  };
}

export function historyFormat(source: string, quiet: boolean, human: boolean): string {
  if (source === TABLE_FORMAT_KEY) {
    if (quiet) return '{{.ID}}';
    return human
      ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'
      : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
  }
  return normalizeFormat(source);
}

export function renderHistory(items: readonly HistoryItem[], o: HistoryOptions, now: number): string {
  const human = o.human !== false;
  const format = historyFormat(o.format || TABLE_FORMAT_KEY, o.quiet === true, human);
  return formatList(format, items.map((h) => historyRow(h, human, !o.noTrunc, now)), HISTORY_HEADERS);
}

// ---------------------------------------------------------------------------------------------
// system df
// ---------------------------------------------------------------------------------------------

export const DF_HEADERS: Record<string, string> = { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' };
const DEFAULT_DF_TABLE = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}';

function isActiveContainer(c: ContainerSummary): boolean {
  const s = c.State ?? '';
  return s.includes('running') || s.includes('paused') || s.includes('restarting');
}

function withPercent(reclaimable: number, total: number): string {
  return total > 0 ? `${humanSize(reclaimable)} (${Math.trunc((reclaimable * 100) / total)}%)` : humanSize(reclaimable);
}

/** The four summary rows (Type, TotalCount, Active, Size, Reclaimable). */
export function dfRows(du: DiskUsage): Record<string, string>[] {
  const images = du.Images ?? [];
  const containers = du.Containers ?? [];
  const volumes = du.Volumes ?? [];
  const cache = du.BuildCache ?? [];
  const total = du.LayersSize;
  let used = 0;
  for (const i of images) {
    if (i.Containers !== 0) {
      if (i.Size === -1 || i.SharedSize === -1) continue;
      used += i.Size - i.SharedSize;
    }
  }
  const cSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const cRecl = containers.filter((c) => !isActiveContainer(c)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const vSize = volumes.reduce((a, v) => a + (v.UsageData && v.UsageData.Size !== -1 ? v.UsageData.Size : 0), 0);
  const vRecl = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + (v.UsageData && v.UsageData.Size !== -1 ? v.UsageData.Size : 0), 0);
  const bSize = cache.filter((b) => !b.Shared).reduce((a, b) => a + b.Size, 0);
  const bRecl = cache.filter((b) => !b.Shared && !b.InUse).reduce((a, b) => a + b.Size, 0);
  const row = (Type: string, TotalCount: number, Active: number, Size: string, Reclaimable: string) =>
    ({ Active: String(Active), Reclaimable, Size, TotalCount: String(TotalCount), Type });
  return [
    row('Images', images.length, images.filter((i) => i.Containers > 0).length, humanSize(total), withPercent(total - used, total)),
    row('Containers', containers.length, containers.filter(isActiveContainer).length, humanSize(cSize), withPercent(cRecl, cSize)),
    row('Local Volumes', volumes.length, volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length, humanSize(vSize), withPercent(vRecl, vSize)),
    row('Build Cache', cache.length, cache.filter((b) => b.InUse).length, humanSize(bSize), humanSize(bRecl)),
  ];
}

const DU_IMAGE_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}';
const DU_CONTAINER_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}';
const DU_VOLUME_TABLE = 'table {{.Name}}\t{{.Links}}\t{{.Size}}';
const DU_CACHE_TABLE = 'table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}';
const CONTAINER_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', LocalVolumes: 'LOCAL VOLUMES', Size: 'SIZE', RunningFor: 'CREATED', Status: 'STATUS', Names: 'NAMES',
};
const VOLUME_HEADERS: Record<string, string> = { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' };
const CACHE_HEADERS: Record<string, string> = {
  ID: 'CACHE ID', CacheType: 'CACHE TYPE', Size: 'SIZE', CreatedSince: 'CREATED', LastUsedSince: 'LAST USED', UsageCount: 'USAGE', Shared: 'SHARED',
};

function duImageRows(images: readonly ImageSummary[], now: number): Record<string, string>[] {
  return images.map((i) => {
    let repo = '<none>';
    let tag = '<none>';
    if ((i.RepoTags ?? []).length > 0 && !isDangling(i)) {
      try {
        const r = parseNormalizedNamed(i.RepoTags![0]!);
        if (r.tag !== undefined) { repo = familiarName(r); tag = r.tag; }
      } catch { /* keep <none> */ }
    }
    return imageRow({ repo, tag, digest: '<none>', image: i }, true, now);
  });
}

function duContainerRows(cs: readonly ContainerSummary[], now: number): Record<string, string>[] {
  return cs.map((c) => {
    let cmd = c.Command ?? '';
    cmd = `"${ellipsis(cmd, 20)}"`;
    return {
      Command: cmd,
      ID: truncateId(c.Id),
      Image: c.Image ?? '',
      LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === 'volume').length),
      Names: (c.Names ?? []).map((n) => n.replace(/^\//, '')).join(','),
      RunningFor: c.Created ? createdSince(c.Created, now) : '',
      Size: humanSizeWithPrecision(c.SizeRw ?? 0, 3),
      Status: c.Status ?? '',
    };
  });
}

function duVolumeRows(vs: readonly VolumeSummary[]): Record<string, string>[] {
  return vs.map((v) => ({
    Links: v.UsageData ? String(v.UsageData.RefCount) : 'N/A',
    Name: v.Name,
    Size: v.UsageData && v.UsageData.Size !== -1 ? humanSizeWithPrecision(v.UsageData.Size, 3) : 'N/A',
  }));
}

function duCacheRows(bs: readonly BuildCacheRecord[], now: number): Record<string, string>[] {
  return bs.map((b) => ({
    CacheType: b.Type ?? '',
    CreatedSince: b.CreatedAt ? `${humanDuration(now - Date.parse(b.CreatedAt))} ago` : '',
    ID: b.ID.slice(0, 12),
    LastUsedSince: b.LastUsedAt ? `${humanDuration(now - Date.parse(b.LastUsedAt))} ago` : '',
    Shared: String(b.Shared === true),
    Size: humanSizeWithPrecision(b.Size, 3),
    UsageCount: String(b.UsageCount ?? 0),
  }));
}

export function renderDf(du: DiskUsage, o: { format?: string; verbose?: boolean }, now: number): string {
  if (o.verbose && (o.format ?? '') === '') {
    let out = 'Images space usage:\n\n';
    out += formatList(DU_IMAGE_TABLE, duImageRows(du.Images ?? [], now), IMAGE_HEADERS);
    out += '\nContainers space usage:\n\n';
    out += formatList(DU_CONTAINER_TABLE, duContainerRows(du.Containers ?? [], now), CONTAINER_HEADERS);
    out += '\nLocal Volumes space usage:\n\n';
    out += formatList(DU_VOLUME_TABLE, duVolumeRows(du.Volumes ?? []), VOLUME_HEADERS);
    const bsize = (du.BuildCache ?? []).filter((b) => !b.Shared).reduce((a, b) => a + b.Size, 0);
    out += `\nBuild cache usage: ${humanSize(bsize)}\n\n`;
    out += formatList(DU_CACHE_TABLE, duCacheRows(du.BuildCache ?? [], now), CACHE_HEADERS);
    return out;
  }
  const f = o.format || TABLE_FORMAT_KEY;
  return formatList(f === TABLE_FORMAT_KEY ? DEFAULT_DF_TABLE : normalizeFormat(f), dfRows(du), DF_HEADERS);
}
