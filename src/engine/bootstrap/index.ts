/**
 * Base images without a registry (POST /images/bootstrap?name=…): `busybox[:tag]` from the host's static busybox,
 * `debian:<suite>` from debootstrap.
 */
import type { Digest } from '../../lib/digest.js';
import { InvalidParameterError } from '../../lib/errors.js';
import type { ProgressSink } from '../../lib/jsonmessage.js';
import { bootstrapBusybox } from './busybox.js';
import { bootstrapDebian } from './debian.js';
import type { BootstrapDeps } from './common.js';

export type { BootstrapDeps } from './common.js';
export { bootstrapBusybox } from './busybox.js';
export { bootstrapDebian } from './debian.js';

export async function bootstrapImage(name: string, deps: BootstrapDeps, progress: ProgressSink): Promise<Digest> {
  const m = /^(busybox|debian)(?::([\w][\w.-]{0,127}))?$/.exec(name.trim());
  if (!m) throw new InvalidParameterError(`cannot bootstrap ${JSON.stringify(name)}: supported are busybox[:tag] and debian:<suite>`);
  if (m[1] === 'busybox') return bootstrapBusybox(deps, `busybox:${m[2] ?? 'latest'}`, progress);
  return bootstrapDebian(deps, m[2] ?? 'bookworm', progress);
}
