/**
 * Platforms ("os/arch[/variant]"): the host's, parsing, and choosing one manifest out of a manifest list /
 * OCI index the way dockerd (containerd's platform matcher) does.
 */
import { InvalidParameterError, NotFoundError } from '../errors.js';
import type { PlatformSpec } from './manifest.js';
import { goArch } from '../go.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Normalizes architecture aliases and default variants (arm64 v8 → none, arm → v7, amd64 v1 → none). */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (architecture) {
    case 'x86_64': case 'x86-64': case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64': case 'arm64':
      architecture = 'arm64';
      if (variant === 'v8' || variant === '8') variant = undefined;
      break;
    case 'armhf': architecture = 'arm'; variant = 'v7'; break;
    case 'armel': architecture = 'arm'; variant = 'v6'; break;
    case 'arm':
      if (!variant) variant = 'v7';
      else if (/^\d+$/.test(variant)) variant = `v${variant}`;
      break;
    case 'i386': case 'i686': architecture = '386'; break;
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The host platform: linux/<arch>[/<variant>]. */
export function hostPlatform(): Platform {
  const architecture = goArch();
  if (architecture === 'arm') return { os: 'linux', architecture, variant: 'v7' };
  return { os: 'linux', architecture };
}

/** Parses "os/arch[/variant]" (also just "arch" or "os"), normalized. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length > 3 || parts.some((x) => x === '' || !/^[A-Za-z0-9_.-]+$/.test(x))) {
    throw new InvalidParameterError(`"${s}": unknown operating system or architecture: invalid argument`);
  }
  if (parts.length === 1) {
    const known = ['linux', 'windows', 'darwin', 'freebsd'];
    if (known.includes(parts[0]!.toLowerCase())) return normalizePlatform({ os: parts[0]!, architecture: hostPlatform().architecture });
    return normalizePlatform({ os: 'linux', architecture: parts[0]! });
  }
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
}

/** "linux/arm64", "linux/arm/v7". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Variants a requested arm variant accepts, best first (v7 runs v6 and v5 binaries). */
function acceptedVariants(p: Platform): (string | undefined)[] {
  if (p.architecture === 'arm') {
    const n = Number((p.variant ?? 'v7').slice(1));
    const out: string[] = [];
    for (let v = n; v >= 5; v--) out.push(`v${v}`);
    return out;
  }
  return [p.variant];
}

export interface PlatformEntry {
  platform?: PlatformSpec;
}

/**
 * Chooses the entry of a manifest list / index for `want`: same OS and architecture; for arm the exact
 * variant first, then older variants; for other architectures an entry without variant matches a request
 * without one, and a request without variant accepts any variant (first wins). Entries with no platform
 * (attestations, "unknown/unknown") never match. NotFoundError with docker's wording when nothing matches.
 */
export function selectPlatform<T extends PlatformEntry>(entries: readonly T[], want: Platform): T {
  const w = normalizePlatform(want);
  const candidates = entries.filter((e) => {
    if (!e.platform?.os || !e.platform.architecture) return false;
    const p = normalizePlatform({ os: e.platform.os, architecture: e.platform.architecture, variant: e.platform.variant });
    return p.os === w.os && p.architecture === w.architecture;
  });
  const variantOf = (e: T) => normalizePlatform({ os: e.platform!.os!, architecture: e.platform!.architecture!, variant: e.platform!.variant }).variant;
  for (const v of acceptedVariants(w)) {
    const hit = candidates.find((e) => variantOf(e) === v);
    if (hit) return hit;
  }
  if (w.architecture !== 'arm' && !w.variant && candidates.length > 0) return candidates[0]!;
  throw new NotFoundError(`no matching manifest for ${formatPlatform(w)} in the manifest list entries`);
}

/** Whether an image config's platform satisfies a requested one (for single-platform manifests). */
export function platformMatches(config: { os?: string; architecture?: string; variant?: string }, want: Platform): boolean {
  if (!config.os || !config.architecture) return true;
  const c = normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
  const w = normalizePlatform(want);
  if (c.os !== w.os || c.architecture !== w.architecture) return false;
  if (!w.variant || !c.variant) return true;
  return acceptedVariants(w).includes(c.variant);
}
