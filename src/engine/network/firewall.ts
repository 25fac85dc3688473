/**
 * The iptables rules of user-defined networks, per network and never per container (as dockerd's bridge driver
 * without published ports): installed at `network create` (and again when a daemon opens its networks), removed
 * with the network, each change one `iptables-save` and one `iptables-restore --noflush` whatever the number of
 * rules. (netavark, used before, ran ~30 `iptables` processes per container setup and ~20 per teardown, each
 * taking the xtables lock: most of a user-network start's cost; ARCHITECTURE.md "Networks".)
 *
 * Every rule carries the comment `wharf:<bridge>`; re-installing a network first deletes whatever carries its tag,
 * so the install is idempotent. The rules, in chains shared by every wharfd on the host (they stay when the last
 * network goes, like dockerd's DOCKER-* chains):
 * - filter `WHARF-ISOLATION` (jumped to first in FORWARD): no traffic between the network and the default bridge,
 *   either way; `-i <br> ! -o <br>` goes through `WHARF-ISOLATION-2`, where `-o <br>` is dropped for every user
 *   network (docker's two-stage isolation: no traffic between two user networks); an internal network drops
 *   everything that enters or leaves it through another interface.
 * - filter `WHARF-FORWARD` (jumped to from FORWARD): replies to the network accepted, its own traffic accepted.
 * - nat `POSTROUTING`: MASQUERADE of the subnet leaving by another interface (not for an internal network).
 */
import { execCollect } from '../../lib/exec.js';
import { SystemError } from '../../lib/errors.js';

const ISO1 = 'WHARF-ISOLATION';
const ISO2 = 'WHARF-ISOLATION-2';
const FWD = 'WHARF-FORWARD';

export interface NetworkRules {
  bridge: string;
  subnet: string;
  internal: boolean;
}

interface Saved {
  /** table → chain names */
  chains: Map<string, Set<string>>;
  /** table → `-A …` lines in order */
  rules: Map<string, string[]>;
}

async function save(): Promise<Saved> {
  const r = await execCollect('iptables-save', []);
  if (r.code !== 0) throw new SystemError(`iptables-save: ${r.stderr.trim() || `exit ${r.code}`}`);
  const chains = new Map<string, Set<string>>();
  const rules = new Map<string, string[]>();
  let table = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      chains.set(table, new Set());
      rules.set(table, []);
    } else if (line.startsWith(':')) chains.get(table)?.add(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ')) rules.get(table)?.push(line);
  }
  return { chains, rules };
}

async function restore(text: string): Promise<void> {
  const r = await execCollect('iptables-restore', ['-w', '--noflush'], { input: text });
  if (r.code !== 0) throw new SystemError(`iptables-restore: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** The lines of `rules` tagged for `bridge` (the comment as iptables-save prints it, quoted or not). */
function tagged(rules: string[], bridge: string): string[] {
  const re = new RegExp(`--comment "?wharf:${bridge.replace(/[.]/g, '\\.')}"?( |$)`);
  return rules.filter((l) => re.test(l));
}

/**
 * The shared chains, made with `iptables -N` when missing (never declared in a restore: `--noflush` flushes a
 * declared chain, which would drop another daemon's rules).
 */
async function ensureChains(s: Saved): Promise<boolean> {
  let made = false;
  for (const c of [ISO1, ISO2, FWD]) {
    if (s.chains.get('filter')?.has(c)) continue;
    await execCollect('iptables', ['-w', '-N', c]); // another daemon may make it meanwhile: the error is no matter
    made = true;
  }
  return made;
}

/** The jumps from FORWARD: WHARF-ISOLATION first (others insert at the top: moved back), WHARF-FORWARD present. */
function jumps(rules: string[]): string[] {
  const fwd = rules.filter((l) => l.startsWith('-A FORWARD '));
  const out: string[] = [];
  const iso = `-A FORWARD -j ${ISO1}`;
  if (fwd[0] !== iso) {
    for (const l of fwd) if (l === iso) out.push(`-D FORWARD -j ${ISO1}`);
    out.push(`-I FORWARD 1 -j ${ISO1}`);
  }
  if (!fwd.includes(`-A FORWARD -j ${FWD}`)) out.push(`-I FORWARD 2 -j ${FWD}`);
  return out;
}

function wanted(n: NetworkRules, defaultBridge: string): { filter: string[]; nat: string[] } {
  const br = n.bridge;
  const tag = `-m comment --comment wharf:${br}`;
  const filter = [
    `-A ${ISO1} -i ${defaultBridge} -o ${br} ${tag} -j DROP`,
    `-A ${ISO1} -i ${br} -o ${defaultBridge} ${tag} -j DROP`,
    ...(n.internal ? [`-A ${ISO1} -i ${br} ! -o ${br} ${tag} -j DROP`, `-A ${ISO1} ! -i ${br} -o ${br} ${tag} -j DROP`] : []),
    `-A ${ISO1} -i ${br} ! -o ${br} ${tag} -j ${ISO2}`,
    `-A ${ISO2} -o ${br} ${tag} -j DROP`,
    ...(n.internal
      ? [`-A ${FWD} -i ${br} -o ${br} ${tag} -j ACCEPT`]
      : [`-A ${FWD} -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`, `-A ${FWD} -i ${br} ${tag} -j ACCEPT`]),
  ];
  const nat = n.internal ? [] : [`-A POSTROUTING -s ${n.subnet} ! -o ${br} ${tag} -j MASQUERADE`];
  return { filter, nat };
}

function document(filter: string[], nat: string[]): string {
  const out: string[] = [];
  if (filter.length) out.push('*filter', ...filter, 'COMMIT');
  if (nat.length) out.push('*nat', ...nat, 'COMMIT');
  return out.join('\n') + '\n';
}

/** Installs (or re-installs) a network's rules: one save, one restore (and the shared chains once per host). */
export async function installNetworkRules(n: NetworkRules, defaultBridge: string): Promise<void> {
  let s = await save();
  if (await ensureChains(s)) s = await save();
  const del = (t: string) => tagged(s.rules.get(t) ?? [], n.bridge).map((l) => `-D${l.slice(2)}`);
  const w = wanted(n, defaultBridge);
  await restore(document([...del('filter'), ...jumps(s.rules.get('filter') ?? []), ...w.filter], [...del('nat'), ...w.nat]));
}

/** Removes every rule tagged for the network's bridge (the shared chains and their jumps stay). */
export async function removeNetworkRules(bridge: string): Promise<void> {
  const s = await save();
  const del = (t: string) => tagged(s.rules.get(t) ?? [], bridge).map((l) => `-D${l.slice(2)}`);
  const filter = del('filter'), nat = del('nat');
  if (filter.length || nat.length) await restore(document(filter, nat));
}
