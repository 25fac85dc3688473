/**
 * The classic builder (dockerd 20.10's builder/dockerfile): stages resolved from the parsed Dockerfile, each
 * instruction dispatched in order on a per-stage state (image ID + runConfig), every step committed as an image
 * whose parent is the previous one (config-only steps: empty_layer history), docker's build cache (a child of the
 * same parent whose container_config — the instruction as a "#(nop)" command, with effective build args and, for
 * COPY/ADD, a content hash — matches), and docker's output lines. Needed stages build concurrently; their output
 * is released in stage order.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink, stat, mkdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { hexOf, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, NotFoundError, WharfError } from '../../lib/errors.js';
import type { JSONMessage, ProgressSink } from '../../lib/jsonmessage.js';
import type { BuildRequest } from '../../api/backend.js';
import type { ContainerConfig, HistoryEntry, Image, ImageConfig, ImageStore } from '../images/types.js';
import type { ExtractedLayer, LayerStore } from '../layers/types.js';
import { parseInstructions, type CommandInstruction, type CopyInstruction, type Dockerfile, type Instruction, type Stage } from './dockerfile/instructions.js';
import { expandWord, expandWords } from './dockerfile/shell-lex.js';
import { openContext, decompress, peekStream, looksLikeTar } from './context.js';
import { goMatch, hasWildcards } from '../../lib/dockerignore.js';
import { goHealthcheck, goQuote, goQuoteList } from './format.js';
import type { RunExecutor } from './types.js';
import { mergedLstat, resolveInLayers, resolveInRoot } from '../fsroot/lexical.js';
import { dirHash, downloadSum, lazySum, multiHash } from './srchash.js';
import { parse as parseContentDisposition } from 'content-disposition';
import { formatPlatform, parsePlatform, platformMatches, type Platform } from '../distribution/platform.js';

export const EMPTY_TAR_DIGEST = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
export const MAX_LAYERS = 127;
const DEFAULT_SHELL = ['/bin/sh', '-c'];
const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** A failing RUN: the stream's errorDetail carries the exit code. */
export class BuildRunError extends WharfError {
  readonly status = 500;
  constructor(message: string, readonly exitCode: number) { super(message); }
}

export interface BuilderDeps {
  images: ImageStore;
  layers: LayerStore;
  /** Image by name or ID (NotFoundError when missing). */
  resolveImage(name: string): Promise<Image>;
  /**
   * Pulls a base image; `auth` is the request's X-Registry-Config (credentials by registry host), `platform`
   * ("os/arch[/variant]") FROM --platform's (the host's when absent).
   */
  pull(ref: string, progress: ProgressSink, auth?: BuildRequest['registryAuth'], platform?: string): Promise<void>;
  /** Tags an image; returns the familiar reference ("nginx:v3"). */
  tag(id: Digest, ref: string): Promise<string>;
  /** container.Config as Go marshals it. */
  containerConfig(c: ContainerConfig): Record<string, unknown>;
  executor: RunExecutor;
  tmpDir: string;
  dockerVersion: string;
  arch: string;
}

function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/\.(\d+)Z$/, (_, f: string) => (/^0+$/.test(f) ? 'Z' : `.${f.replace(/0+$/, '')}Z`));
}

function newId(): string { return randomBytes(32).toString('hex'); }
const short = (id: string) => hexOf(id).slice(0, 12);

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) o[k] = sortKeys((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

/** The cache comparison of two container_configs (docker ignores Image and Hostname). */
export function cacheKeyOf(cc: ContainerConfig | Record<string, unknown> | undefined): string {
  const c = { ...(cc ?? {}) } as Record<string, unknown>;
  delete c.Image;
  delete c.Hostname;
  for (const k of Object.keys(c)) {
    const v = c[k];
    if (v === null || v === '' || v === false || (Array.isArray(v) && v.length === 0) || (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) delete c[k];
  }
  return JSON.stringify(sortKeys(c));
}

interface StageState {
  imageId: Digest | null;
  config: ImageConfig;
  run: ContainerConfig;
  /** ARGs declared in this stage: name → value (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  author?: string;
  /** CMD was set in this stage (a later ENTRYPOINT keeps it). */
  cmdSet?: boolean;
}

interface FileEntry {
  /** Path inside the layer, no leading slash. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  source?: string;
  linkname?: string;
  /** In-memory content (downloads). */
  data?: Buffer;
  /** Archive to unpack at `path` (ADD). */
  archive?: string;
}

/** Orders output of concurrently built stages: the earliest unfinished stage streams live, later ones buffer. */
class StageOutput {
  private head = 0;
  private readonly bufs: JSONMessage[][];
  private readonly done: boolean[];
  constructor(private readonly n: number, private readonly sink: ProgressSink) {
    this.bufs = Array.from({ length: n }, () => []);
    this.done = Array.from({ length: n }, () => false);
  }
  /** After a stage failed: later stages' output is dropped (they were stopped). */
  limit = Infinity;
  emit(i: number, m: JSONMessage): void {
    if (i > this.limit) return;
    if (i === this.head) this.sink(m);
    else this.bufs[i]!.push(m);
  }
  /** Releases everything still buffered, in stage order. */
  flushAll(upTo = this.n - 1): void {
    for (let i = this.head + 1; i <= upTo; i++) { for (const m of this.bufs[i]!) this.sink(m); this.bufs[i] = []; }
    this.head = this.n;
  }
  finish(i: number): void {
    this.done[i] = true;
    while (this.head < this.n && this.done[this.head]) {
      this.head++;
      if (this.head < this.n && this.head <= this.limit) { for (const m of this.bufs[this.head]!) this.sink(m); this.bufs[this.head] = []; }
    }
  }
}

export class Builder {
  constructor(private readonly d: BuilderDeps) {}

  private swept = false;
  private readonly active = new Set<string>();

  /** Removes contexts a previous daemon left behind (once, before the first build). */
  private async sweep(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const names = await readdir(this.d.tmpDir).catch(() => [] as string[]);
    for (const n of names) if (n.startsWith('build-') && !this.active.has(n)) await rm(join(this.d.tmpDir, n), { recursive: true, force: true }).catch(() => {});
  }

  async build(body: Readable, opts: BuildRequest, progress: ProgressSink): Promise<string> {
    const name = `build-${randomBytes(8).toString('hex')}`;
    await this.sweep();
    this.active.add(name);
    try {
      return await this.buildIn(name, body, opts, progress);
    } finally {
      this.active.delete(name);
    }
  }

  private async buildIn(name: string, body: Readable, opts: BuildRequest, progress: ProgressSink): Promise<string> {
    const tmp = join(this.d.tmpDir, name);
    const ctx = await openContext(body, { remote: opts.remote, dockerfile: opts.dockerfile, tmpDir: tmp, signal: opts.signal });
    try {
      let text = ctx.dockerfile;
      const keys = Object.keys(opts.labels ?? {}).sort();
      // docker appends the labels= parameter as one more LABEL instruction
      if (keys.length) text += `\nLABEL ${keys.map((k) => `${goQuote(k)}=${goQuote(opts.labels[k]!)}`).join(' ')}\n`;
      const df = parseInstructions(text);
      const id = await new BuildJob(this.d, df, ctx.dir, opts, progress, ctx.sums).run();
      // the unpacked context goes after the answer (a leftover is swept at the next daemon's first build)
      void ctx.close().catch(() => {});
      return id;
    } catch (e) {
      // a failed build gives its space back before it answers (the failure may be a full disk)
      await ctx.close().catch(() => {});
      throw e;
    }
  }
}

class BuildJob {
  private readonly stageImages = new Map<number, Promise<Digest | null>>();
  private readonly usedArgs = new Set<string>();
  private readonly metaArgs = new Map<string, string | undefined>();
  private out!: StageOutput;
  /** Aborted by the client going away or by the first failing stage (the others stop). */
  private readonly abort = new AbortController();
  private failedSlot: number | undefined;
  private readonly quiet: boolean;
  private readonly layerOwners: string[] = [];

  constructor(private readonly d: BuilderDeps, private readonly df: Dockerfile, private readonly ctxDir: string,
    private readonly opts: BuildRequest, private readonly progress: ProgressSink, private readonly sums = new Map<string, string>()) {
    this.quiet = opts.quiet;
  }

  private buildArg(name: string): string | undefined {
    if (!Object.prototype.hasOwnProperty.call(this.opts.buildArgs, name)) return undefined;
    const v = this.opts.buildArgs[name];
    return v === null ? process.env[name] : v;
  }

  async run(): Promise<string> {
    const { df, opts } = this;
    for (const a of df.metaArgs) {
      for (const { key, value } of a.args) {
        const env = this.metaEnv();
        const def = value === undefined ? undefined : expandWord(value, env, df.directives.escape);
        const v = this.buildArg(key) ?? def;
        if (this.buildArg(key) !== undefined) this.usedArgs.add(key);
        this.metaArgs.set(key, v);
      }
    }
    // target stage and the stages it needs
    let targetIdx = df.stages.length - 1;
    if (opts.target) {
      const t = df.stages.find((s) => s.name === opts.target!.toLowerCase());
      if (!t) throw new InvalidParameterError(`failed to reach build target ${opts.target} in Dockerfile`);
      targetIdx = t.index;
    }
    const needed = new Set<number>();
    const visit = (i: number) => {
      if (needed.has(i)) return;
      needed.add(i);
      for (const dep of this.depsOf(df.stages[i]!)) visit(dep);
    };
    visit(targetIdx);
    const order = [...needed].sort((a, b) => a - b);
    // ARGs before the first FROM are steps too (printed without an image line), as the classic builder counts them
    const total = df.metaArgs.length + order.reduce((n, i) => n + 1 + df.stages[i]!.commands.length, 0);
    let step = 0;
    for (const a of df.metaArgs) {
      step++;
      if (!this.quiet) { this.progress({ stream: `Step ${step}/${total} : ${a.node.original}` }); this.progress({ stream: '\n' }); }
    }
    const firstStep = new Map<number, number>();
    for (const i of order) { firstStep.set(i, step); step += 1 + df.stages[i]!.commands.length; }
    this.out = new StageOutput(order.length, this.progress);
    const slot = new Map(order.map((i, k) => [i, k] as const));
    for (const i of order) {
      const p = this.buildStage(df.stages[i]!, slot.get(i)!, firstStep.get(i)!, total)
        .catch((e: unknown) => {
          if (!this.abort.signal.aborted && this.failedSlot === undefined) { this.failedSlot = slot.get(i)!; this.out.limit = this.failedSlot; }
          throw e;
        })
        .finally(() => this.out.finish(slot.get(i)!));
      p.catch(() => {});
      this.stageImages.set(i, p);
    }
    let finalId: Digest | null = null;
    const onClientGone = () => this.abort.abort();
    opts.signal?.addEventListener('abort', onClientGone, { once: true });
    try {
      await Promise.all(order.map((i) => this.stageImages.get(i)!));
    } catch (e) {
      // fail fast: stop the other stages, show what every stage printed so far (in stage order), then the error
      this.abort.abort();
      await Promise.allSettled(order.map((i) => this.stageImages.get(i)!));
      this.out.flushAll(this.failedSlot);
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onClientGone);
    }
    finalId = await this.stageImages.get(targetIdx)!;
    if (!finalId) throw new InvalidParameterError('No image was generated. Is your Dockerfile empty?');
    const unused = Object.keys(opts.buildArgs).filter((k) => !this.usedArgs.has(k) && !PROXY_ARGS.includes(k)).sort();
    if (unused.length && !this.quiet) this.progress({ stream: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n` });
    this.progress({ aux: { ID: finalId } });
    if (this.quiet) this.progress({ stream: `${finalId}\n` });
    else this.progress({ stream: `Successfully built ${short(finalId)}\n` });
    for (const t of opts.tags) {
      const name = await this.d.tag(finalId, t);
      if (!this.quiet) this.progress({ stream: `Successfully tagged ${name}\n` });
    }
    return finalId;
  }

  private metaEnv(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.metaArgs) if (v !== undefined) m.set(k, v);
    return m;
  }

  /** Earlier stages a stage needs (FROM <stage>, COPY --from=<stage|index>). */
  private depsOf(stage: Stage): number[] {
    const out: number[] = [];
    const byRef = (ref: string): number | null => {
      const lower = ref.toLowerCase();
      const s = this.df.stages.find((x) => x.name === lower && x.index < stage.index);
      if (s) return s.index;
      if (/^\d+$/.test(ref) && Number(ref) < stage.index) return Number(ref);
      return null;
    };
    let fromRef = stage.from.image;
    try { fromRef = expandWord(fromRef, this.metaEnv(), this.df.directives.escape); } catch { /* unresolved */ }
    const f = this.df.stages.find((x) => x.name === fromRef.toLowerCase() && x.index < stage.index);
    if (f) out.push(f.index);
    for (const c of stage.commands) {
      if ((c.kind === 'copy') && c.from !== undefined) {
        if (c.from.includes('$')) { for (let i = 0; i < stage.index; i++) out.push(i); continue; }
        const i = byRef(c.from);
        if (i !== null) out.push(i);
      }
    }
    return out;
  }

  /**
   * dockerd's source sum of a path under `root`: the context's tarsum when the tar had the entry (else, for the
   * context, the path itself), else one computed from lstat. Like dockerd's Hash(), a symlink (`link`: the walk
   * met one; sources are resolved already) is followed within the root first. null when the path does not resolve
   * (dockerd leaves such entries out of a directory's hash).
   */
  private async sumOf(root: string, abs: string, link = false): Promise<string | null> {
    const rel = abs.slice(root.length).replace(/^\/+/, '');
    const real = link ? join(root, await resolveInRoot(root, rel, true)) : abs;
    if (root === this.ctxDir && this.sums.size > 0) return this.sums.get(real) ?? this.sums.get(abs) ?? rel;
    return lazySum(real, real.slice(root.length).replace(/^\/+/, '')).catch(() => null);
  }

  private emit(slot: number, m: JSONMessage): void {
    if (this.quiet && m.stream !== undefined) return;
    this.out.emit(slot, m);
  }

  private say(slot: number, s: string): void { this.emit(slot, { stream: s }); }

  // ------------------------------------------------------------------ stages

  private async buildStage(stage: Stage, slot: number, first: number, total: number): Promise<Digest | null> {
    const esc = this.df.directives.escape;
    let step = first;
    const stepLine = (ins: Instruction) => {
      step++;
      this.say(slot, `Step ${step}/${total} : ${ins.node.original}`);
      this.say(slot, '\n');
    };
    stepLine(stage.from);
    const st = await this.from(stage, slot);
    // ONBUILD triggers of the base image
    const triggers = st.run.OnBuild ?? [];
    if (!triggers.length) this.say(slot, ` ---> ${st.imageId ? short(st.imageId) : ''}\n`);
    if (triggers.length) {
      st.run.OnBuild = [];
      this.say(slot, `# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}`);
      this.say(slot, '\n');
      for (const t of triggers) {
        const sub = parseInstructions(`FROM scratch\n${t}\n`).stages[0]!.commands[0]!;
        await this.dispatch(st, sub, slot, stage, esc);
      }
      this.say(slot, ` ---> ${short(st.imageId!)}\n`);
    }
    for (const ins of stage.commands) {
      if (this.abort.signal.aborted) throw new InvalidParameterError('build canceled');
      stepLine(ins);
      await this.dispatch(st, ins, slot, stage, esc);
      this.say(slot, ` ---> ${st.imageId ? short(st.imageId) : ''}\n`);
    }
    // labels= of the request go on the last stage's image
    return st.imageId;
  }

  /**
   * FROM's image. `--platform` (expanded with the meta ARGs only: the classic builder predefines no
   * BUILDPLATFORM/TARGETPLATFORM) is dockerd 20.10's: a missing image is pulled for that platform; an image of an
   * earlier stage must match it; a local image is used as it is (20.10's "prefer local" keeps the image even when
   * its platform differs), and a pulled one that does not match only gets 20.10's warning.
   */
  private async from(stage: Stage, slot: number): Promise<StageState> {
    const name = expandWord(stage.from.image, this.metaEnv(), this.df.directives.escape);
    for (const k of this.metaArgs.keys()) if (stage.from.image.includes(k) && this.buildArg(k) !== undefined) this.usedArgs.add(k);
    let platform: Platform | undefined;
    if (stage.from.platform) {
      const v = expandWord(stage.from.platform, this.metaEnv(), this.df.directives.escape);
      for (const k of this.metaArgs.keys()) if (stage.from.platform.includes(k) && this.buildArg(k) !== undefined) this.usedArgs.add(k);
      try { platform = parsePlatform(v); } catch (e) { throw new InvalidParameterError(`failed to parse platform ${v}: ${(e as Error).message}`); }
    } else if (this.opts.platform) {
      // docker build --platform: the platform of every FROM that names none
      try { platform = parsePlatform(this.opts.platform); } catch (e) { throw new InvalidParameterError(`failed to parse platform ${this.opts.platform}: ${(e as Error).message}`); }
    }
    const platformOf = (img: Image) => formatPlatform({ os: img.config.os ?? '', architecture: img.config.architecture ?? '', ...(img.config.variant ? { variant: img.config.variant } : {}) });
    const newState = (img: Image | null): StageState => {
      const config: ImageConfig = img ? JSON.parse(img.raw.toString('utf8')) as ImageConfig : { architecture: this.d.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, history: [] };
      const run: ContainerConfig = { ...(config.config ?? {}) };
      if (!img) run.Env = [`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`];
      return { imageId: img ? img.id : null, config, run, args: new Map() };
    };
    if (name.toLowerCase() === 'scratch') return newState(null);
    const st = this.df.stages.find((x) => x.name === name.toLowerCase() && x.index < stage.index);
    if (st) {
      const id = await this.stageImages.get(st.index)!;
      const img = id ? await this.d.images.get(id) : null;
      if (img && platform && !platformMatches(img.config, platform)) {
        throw new NotFoundError(`image with reference ${img.id} was found but does not match the specified platform: wanted ${formatPlatform(platform)}, actual: ${platformOf(img)}`);
      }
      return newState(img);
    }
    let img: Image | null = null;
    if (!this.opts.pull) img = await this.d.resolveImage(name).catch((e) => { if (e instanceof NotFoundError) return null; throw e; });
    if (!img) {
      await this.d.pull(name, (m) => this.emit(slot, m), this.opts.registryAuth, platform && formatPlatform(platform));
      img = await this.d.resolveImage(name);
      if (platform && !platformMatches(img.config, platform)) {
        this.emit(slot, { status: `\nWARNING: Pulled image with specified platform (${formatPlatform(platform)}), but the resulting image's configured platform (${platformOf(img)}) does not match.\nThis is most likely caused by a bug in the build system that created the fetched image (${name}).\nPlease notify the image author to correct the configuration.` });
      }
    }
    return newState(img);
  }

  /** The environment for substitution: declared args (with build-arg values), then ENV (which wins). */
  private expansionEnv(st: StageState): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of st.args) if (v !== undefined) m.set(k, v);
    for (const e of st.run.Env ?? []) {
      const i = e.indexOf('=');
      if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
    }
    return m;
  }

  /** Build args that reach RUN (declared, valued, not overridden by ENV), sorted: docker's FilterAllowed. */
  private runArgs(st: StageState): string[] {
    const envKeys = new Set((st.run.Env ?? []).map((e) => e.split('=')[0]));
    const out: string[] = [];
    for (const [k, v] of st.args) if (v !== undefined && !envKeys.has(k)) out.push(`${k}=${v}`);
    for (const k of PROXY_ARGS) {
      const v = this.buildArg(k);
      if (v !== undefined && !st.args.has(k)) out.push(`${k}=${v}`);
    }
    return out.sort();
  }

  private shell(st: StageState): string[] { return st.run.Shell?.length ? st.run.Shell : DEFAULT_SHELL; }

  // ------------------------------------------------------------------ dispatch

  private async dispatch(st: StageState, ins: Instruction, slot: number, stage: Stage, esc: string): Promise<void> {
    const env = () => this.expansionEnv(st);
    const ex = (w: string) => expandWord(w, env(), esc);
    const r = st.run;
    switch (ins.kind) {
      case 'env': {
        let comment = 'ENV';
        const e = [...(r.Env ?? [])];
        for (const p of ins.pairs) {
          const i = p.indexOf('=');
          const k = ex(p.slice(0, i));
          const v = ex(p.slice(i + 1));
          comment += ` ${k}=${v}`;
          const j = e.findIndex((x) => x.split('=')[0] === k);
          if (j >= 0) e[j] = `${k}=${v}`; else e.push(`${k}=${v}`);
        }
        r.Env = e;
        return this.commitConfig(st, comment, slot);
      }
      case 'label': {
        let comment = 'LABEL';
        const labels = { ...(r.Labels ?? {}) };
        for (const p of ins.pairs) {
          const i = p.indexOf('=');
          const k = ex(p.slice(0, i));
          const v = ex(p.slice(i + 1));
          comment += ` ${k}=${v}`;
          labels[k] = v;
        }
        r.Labels = labels;
        return this.commitConfig(st, comment, slot);
      }
      case 'maintainer':
        st.author = ins.value;
        return this.commitConfig(st, `MAINTAINER ${ins.value}`, slot);
      case 'arg': {
        const parts: string[] = [];
        for (const { key, value } of ins.args) {
          const expanded = value === undefined ? undefined : ex(value);
          let v = expanded;
          if (value === undefined && this.metaArgs.has(key)) v = this.metaArgs.get(key);
          const b = this.buildArg(key);
          if (b !== undefined) { v = b; this.usedArgs.add(key); }
          st.args.set(key, v);
          // history shows the default as written (expanded), not the --build-arg value
          parts.push(expanded === undefined ? key : `${key}=${expanded}`);
        }
        return this.commitConfig(st, `ARG ${parts.join(' ')}`, slot);
      }
      case 'expose': {
        const words = ins.words.flatMap((w) => expandWords(w, env(), esc));
        const ports = { ...(r.ExposedPorts ?? {}) };
        for (const w of words) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!m) throw new InvalidParameterError(`invalid containerPort: ${w}`);
          const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
          for (let p = lo; p <= hi; p++) ports[`${p}/${(m[3] ?? 'tcp').toLowerCase()}`] = {};
        }
        r.ExposedPorts = ports;
        return this.commitConfig(st, `EXPOSE ${[...words].sort().join(' ')}`, slot);
      }
      case 'volume': {
        const vols = ins.node.json ? ins.words.map((w) => ex(w)) : ins.words.flatMap((w) => expandWords(w, env(), esc));
        const v = { ...(r.Volumes ?? {}) };
        for (const x of vols) {
          if (x.trim() === '') throw new InvalidParameterError('VOLUME specified can not be an empty string');
          v[x] = {};
        }
        r.Volumes = v;
        return this.commitConfig(st, `VOLUME [${vols.join(' ')}]`, slot);
      }
      case 'user':
        r.User = ex(ins.value);
        return this.commitConfig(st, `USER ${r.User}`, slot);
      case 'stopsignal': {
        const s = ex(ins.value);
        if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(s)) throw new InvalidParameterError(`Invalid signal: ${s}`);
        r.StopSignal = s;
        return this.commitConfig(st, `STOPSIGNAL ${s}`, slot);
      }
      case 'shell':
        r.Shell = ins.shell;
        // fmt %v of a slice (unquoted), unlike CMD/ENTRYPOINT's %q
        return this.commitConfig(st, `SHELL [${ins.shell.join(' ')}]`, slot);
      case 'onbuild': {
        r.OnBuild = [...(r.OnBuild ?? []), ins.expression];
        return this.commitConfig(st, `ONBUILD ${ins.expression}`, slot);
      }
      case 'healthcheck': {
        const old = r.Healthcheck?.Test;
        if (old && old.length && old[0] !== 'NONE') this.say(slot, `Note: overriding previous HEALTHCHECK: [${old.join(' ')}]\n`);
        if (ins.test[0] === 'NONE') r.Healthcheck = { Test: ['NONE'] };
        else {
          const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: ins.test };
          if (ins.interval) h.Interval = ins.interval;
          if (ins.timeout) h.Timeout = ins.timeout;
          if (ins.startPeriod) h.StartPeriod = ins.startPeriod;
          if (ins.retries) h.Retries = ins.retries;
          r.Healthcheck = h;
        }
        return this.commitConfig(st, `HEALTHCHECK ${goHealthcheck(r.Healthcheck)}`, slot);
      }
      case 'cmd': case 'entrypoint': {
        const cmd = ins.shellForm ? [...this.shell(st), ins.args.join(' ')] : ins.args;
        if (ins.kind === 'cmd') r.Cmd = cmd;
        else {
          r.Entrypoint = cmd;
          // docker: a new ENTRYPOINT resets an inherited CMD unless CMD was set in this stage
          if (!st.cmdSet) r.Cmd = null;
        }
        if (ins.kind === 'cmd') st.cmdSet = true;
        return this.commitConfig(st, `${ins.kind.toUpperCase()} ${goQuoteList(cmd)}`, slot);
      }
      case 'workdir': {
        let w = ex(ins.value);
        if (!w.startsWith('/')) w = posix.join('/', r.WorkingDir || '/', w);
        w = posix.normalize(w);
        if (w.length > 1 && w.endsWith('/')) w = w.slice(0, -1);
        r.WorkingDir = w;
        const comment = `WORKDIR ${w}`;
        const ccCmd = [...this.shell(st), `#(nop) ${comment}`];
        if (await this.probeCache(st, ccCmd, slot)) return;
        const exists = await this.statInImage(st, w);
        let layer: ExtractedLayer | null = null;
        if (!exists) {
          const parts = (await this.resolveInImage(st, w)).split('/').filter(Boolean);
          const entries: FileEntry[] = [];
          for (let i = 1; i <= parts.length; i++) {
            const p = parts.slice(0, i).join('/');
            if (i < parts.length && await this.statInImage(st, '/' + p)) continue;
            entries.push({ path: p, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date(), size: 0 });
          }
          layer = await this.d.layers.extract(packEntries(entries));
        }
        const cid = await this.configContainer(st, ccCmd, slot);
        await this.commit(st, ccCmd, layer, slot, true, cid);
        if (this.opts.rm) this.say(slot, `Removing intermediate container ${cid.slice(0, 12)}\n`);
        return;
      }
      case 'run':
        return this.runStep(st, ins, slot);
      case 'copy': case 'add':
        return this.copyStep(st, ins, slot, stage);
      case 'from':
        throw new InvalidParameterError('FROM is not allowed here');
    }
  }

  /** A config-only step: " ---> Running in", cache probe, empty-layer commit. */
  private async commitConfig(st: StageState, comment: string, slot: number): Promise<void> {
    const ccCmd = [...this.shell(st), '#(nop) ', comment];
    if (await this.probeCache(st, ccCmd, slot)) return;
    const cid = await this.configContainer(st, ccCmd, slot);
    await this.commit(st, ccCmd, null, slot, true, cid);
    if (this.opts.rm) this.say(slot, `Removing intermediate container ${cid.slice(0, 12)}\n`);
  }

  /**
   * A config-only step's container: docker creates one (never started) and commits it. When --rm / --force-rm
   * removes it right after the commit, only its ID is made here; with --rm=false it is a real container that
   * stays, Created, in `ps -a`.
   */
  private async configContainer(st: StageState, ccCmd: string[], slot: number): Promise<string> {
    let cid: string;
    if (this.opts.rm || this.opts.forceRm || !this.d.executor.create) cid = newId();
    // Cmd as docker's: [shell…, "#(nop) ", "ENV a=b"] (WORKDIR: [shell…, "#(nop) WORKDIR /x"])
    else cid = await this.d.executor.create({ imageId: st.imageId, config: st.run, cmd: ccCmd, network: this.opts.networkMode });
    this.say(slot, ` ---> Running in ${cid.slice(0, 12)}\n`);
    return cid;
  }

  private async probeCache(st: StageState, ccCmd: string[], slot: number): Promise<boolean> {
    if (this.opts.noCache || st.imageId === null && false) return false;
    const want = cacheKeyOf(this.d.containerConfig({ ...st.run, Cmd: ccCmd }));
    let candidates: Digest[];
    if (st.imageId) candidates = await this.d.images.children(st.imageId);
    else candidates = (await this.d.images.list()).filter((i) => i.parent === null).map((i) => i.id);
    let best: Image | null = null;
    for (const c of candidates) {
      const img = await this.d.images.get(c).catch(() => null);
      if (!img) continue;
      if (cacheKeyOf(img.config.container_config) !== want) continue;
      if (!best || (img.config.created ?? '') > (best.config.created ?? '')) best = img;
    }
    if (this.opts.cacheFrom.length) best = await this.cacheFrom(st, ccCmd, best);
    if (!best) return false;
    this.say(slot, ' ---> Using cache\n');
    st.imageId = best.id;
    st.config = JSON.parse(best.raw.toString('utf8')) as ImageConfig;
    const keepArgs = st.args;
    st.run = { ...(st.config.config ?? {}) };
    st.args = keepArgs;
    return true;
  }

  private cacheSources: Image[] | null = null;

  /**
   * docker's --cache-from (image/cache): a local hit counts only when it is an ancestor of a source image; otherwise
   * a source whose history and layers continue the current image with this very step (created_by = the step's
   * command) gives the step: the source itself when this is its last step (it gets the current image as parent),
   * else an image restored from the source's history entry and layer. Sources are pulled images without parents.
   */
  private async cacheFrom(st: StageState, ccCmd: string[], local: Image | null): Promise<Image | null> {
    if (!this.cacheSources) {
      this.cacheSources = [];
      for (const n of this.opts.cacheFrom) {
        const img = await this.d.resolveImage(n).catch(() => null);
        if (img) this.cacheSources.push(img);
      }
    }
    if (local) {
      for (const s of this.cacheSources) {
        let cur: Image | null = s;
        while (cur) {
          if (cur.id === local.id) return local;
          cur = cur.parent ? await this.d.images.get(cur.parent).catch(() => null) : null;
        }
      }
    }
    const parent = st.imageId ? await this.d.images.get(st.imageId) : null;
    const pHist = parent?.config.history ?? [];
    const pDiffs = parent?.config.rootfs?.diff_ids ?? [];
    const L = pHist.length;
    const want = ccCmd.join(' ');
    for (const t of this.cacheSources) {
      const h = t.config.history ?? [];
      const diffs = t.config.rootfs?.diff_ids ?? [];
      if (h.length <= L) continue;
      if (JSON.stringify(h.slice(0, L)) !== JSON.stringify(pHist)) continue;
      if (JSON.stringify(diffs.slice(0, pDiffs.length)) !== JSON.stringify(pDiffs)) continue;
      const step = h[L]!;
      if (step.created_by !== want) continue;
      if (h.length - 1 === L) {
        if (parent) await this.d.images.setParent(t.id, parent.id);
        return t;
      }
      // restore the intermediate image from the source's history entry and layer
      const diffIds = [...pDiffs];
      if (!step.empty_layer) diffIds.push(diffs[pDiffs.length]!);
      const config = { ...st.run, Image: parent?.id ?? '' };
      const cfg: Record<string, unknown> = {
        architecture: t.config.architecture,
        ...(t.config.author ? { author: t.config.author } : {}),
        config: this.d.containerConfig(config),
        container_config: this.d.containerConfig({ ...config, Cmd: ccCmd }),
        created: step.created,
        docker_version: this.d.dockerVersion,
        history: [...pHist, step],
        os: t.config.os,
        rootfs: { type: 'layers', diff_ids: diffIds },
      };
      const img = await this.d.images.create(Buffer.from(JSON.stringify(cfg)), parent?.id ?? null);
      this.cacheSources = [t];
      return img;
    }
    return null;
  }

  /** Commits the state as a new image (child of the current one), with or without a new layer. */
  private async commit(st: StageState, ccCmd: string[], layer: ExtractedLayer | null, _slot: number, nop: boolean, cid = newId(), createdBy?: string): Promise<void> {
    const { layers, images } = this.d;
    const parentCfg = st.config;
    const diffIds = [...(parentCfg.rootfs?.diff_ids ?? [])];
    let empty = true;
    let registered: { chainId: Digest } | null = null;
    if (layer) {
      if (layer.diffId === EMPTY_TAR_DIGEST) {
        await layers.discard?.(layer);
      } else {
        if (diffIds.length >= MAX_LAYERS) {
          await layers.discard?.(layer);
          throw new InvalidParameterError(`max depth exceeded: an image cannot have more than ${MAX_LAYERS} layers`);
        }
        const parentChain = chainOf(diffIds);
        registered = await layers.register(parentChain, layer);
        diffIds.push(layer.diffId);
        empty = false;
      }
    }
    try {
      const created = rfc3339Nano(new Date());
      const parentId = st.imageId ?? '';
      const config = { ...st.run, Image: parentId };
      const hist: HistoryEntry = { created, created_by: createdBy ?? ccCmd.join(' ') };
      if (empty) hist.empty_layer = true;
      const cfg: Record<string, unknown> = {
        architecture: parentCfg.architecture || this.d.arch,
        // MAINTAINER of this stage only: docker does not carry a base image's author into a build
        ...(st.author ? { author: st.author } : {}),
        config: this.d.containerConfig(config),
        container: cid,
        container_config: this.d.containerConfig({ ...config, Hostname: cid.slice(0, 12), Cmd: ccCmd }),
        created,
        docker_version: this.d.dockerVersion,
        history: [...(parentCfg.history ?? []), hist],
        os: parentCfg.os || 'linux',
        rootfs: { type: 'layers', diff_ids: diffIds },
      };
      if (parentCfg.variant) cfg.variant = parentCfg.variant;
      const raw = Buffer.from(JSON.stringify(cfg));
      const img = await images.create(raw, st.imageId);
      st.imageId = img.id;
      st.config = JSON.parse(raw.toString('utf8')) as ImageConfig;
      st.run = { ...(st.config.config ?? {}) };
      void nop;
    } finally {
      if (registered) await layers.release(registered.chainId);
    }
  }

  // ------------------------------------------------------------------ RUN

  private async runStep(st: StageState, ins: CommandInstruction, slot: number): Promise<void> {
    if (ins.mounts.length) throw new InvalidParameterError('the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to enable BuildKit.');
    let cmd: string[];
    if (ins.node.heredocs.length && ins.shellForm) {
      cmd = [...this.shell(st), ins.node.heredocs.map((h) => h.content).join('')];
    } else cmd = ins.shellForm ? [...this.shell(st), ins.args.join(' ')] : ins.args;
    const args = this.runArgs(st);
    // predefined proxy args reach the command but, unless declared with ARG, not its history nor the cache key
    const shown = args.filter((a) => { const k = a.slice(0, a.indexOf('=')); return !PROXY_ARGS.includes(k) || st.args.has(k); });
    const ccCmd = shown.length ? [`|${shown.length}`, ...shown, ...cmd] : cmd;
    if (await this.probeCache(st, ccCmd, slot)) return;
    const ex = this.d.executor;
    const env = [...(st.run.Env ?? []), ...args];
    const cid = ex.create
      ? await ex.create({ imageId: st.imageId, config: st.run, cmd, env, runStep: true, network: this.opts.networkMode })
      : newId();
    this.say(slot, ` ---> Running in ${cid.slice(0, 12)}\n`);
    const removed = async () => {
      await ex.remove?.(cid);
      this.say(slot, `Removing intermediate container ${cid.slice(0, 12)}\n`);
    };
    let errBuf = '';
    let res: Awaited<ReturnType<RunExecutor['run']>>;
    try {
      res = await ex.run({
        id: cid, cmd, env,
        stdout: (b) => this.say(slot, b.toString('utf8')),
        stderr: (b) => {
          // whole lines (a shell's message arrives in pieces that dockerd's pipe would have joined)
          errBuf += b.toString('utf8');
          const nl = errBuf.lastIndexOf('\n');
          if (nl >= 0) { this.say(slot, `\u001b[91m${errBuf.slice(0, nl + 1)}\u001b[0m`); errBuf = errBuf.slice(nl + 1); }
        },
        signal: this.abort.signal,
      });
    } catch (e) {
      if (errBuf) this.say(slot, `\u001b[91m${errBuf}\u001b[0m`);
      // a cancelled step's container is already gone; one that failed to start stays unless --force-rm
      if (this.opts.forceRm && !this.abort.signal.aborted) await removed();
      throw e;
    }
    if (errBuf) this.say(slot, `\u001b[91m${errBuf}\u001b[0m`);
    if (res.exitCode !== 0) {
      // docker: the failed step's container is kept (Exited (N)) unless --force-rm
      if (this.opts.forceRm) await removed();
      throw new BuildRunError(`The command '${cmd.join(' ')}' returned a non-zero code: ${res.exitCode}`, res.exitCode);
    }
    await this.commit(st, ccCmd, res.layer, slot, false, cid);
    if (this.opts.rm) await removed();
  }

  // ------------------------------------------------------------------ files in images

  /** The image's layer directories, top first. */
  private async layerDirs(st: StageState): Promise<string[]> {
    const chains = chainList(st.config.rootfs?.diff_ids ?? []);
    return this.d.layers.lookupDirs(chains[chains.length - 1] ?? null);
  }

  /** A path of the image with its symlinks resolved inside the image (never into the host). */
  private async resolveInImage(st: StageState, p: string): Promise<string> {
    return resolveInLayers(await this.layerDirs(st), p, true);
  }

  /** lstat of a path in the current image, symlinks resolved in the image. */
  private async statInImage(st: StageState, p: string): Promise<import('node:fs').Stats | null> {
    const dirs = await this.layerDirs(st);
    if (!dirs.length) return null;
    return mergedLstat(dirs, await resolveInLayers(dirs, p, true));
  }

  private async readInImage(st: StageState, p: string): Promise<string | null> {
    const dirs = await this.layerDirs(st);
    const rel = await resolveInLayers(dirs, p, true);
    for (const dir of dirs) {
      const s = await mergedLstat([dir], rel);
      if (s?.isFile()) return readFile(join(dir, rel), 'utf8');
    }
    return null;
  }

  private async resolveChown(st: StageState, spec: string): Promise<{ uid: number; gid: number }> {
    const [u = '', g] = spec.split(':', 2) as [string, string?];
    const lookup = async (file: string, name: string, what: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      const text = (await this.readInImage(st, file)) ?? '';
      for (const l of text.split('\n')) {
        const f = l.split(':');
        if (f[0] === name && f.length >= 3) return Number(f[2]);
      }
      throw new InvalidParameterError(`unable to convert uid/gid chown string to host mapping: can't find ${what} for ${what === 'uid' ? 'user' : 'group'} ${name}: no such ${what === 'uid' ? 'user' : 'group'}`);
    };
    const uid = await lookup('/etc/passwd', u, 'uid');
    const gid = g === undefined ? uid : await lookup('/etc/group', g, 'gid');
    return { uid, gid };
  }

  // ------------------------------------------------------------------ COPY / ADD

  private async copyStep(st: StageState, ins: CopyInstruction, slot: number, stage: Stage): Promise<void> {
    const esc = this.df.directives.escape;
    const env = this.expansionEnv(st);
    const name = ins.kind.toUpperCase();
    const ex = (w: string) => (ins.node.json ? expandWord(JSON.stringify(w).slice(1, -1).replace(/\\"/g, '"'), env, esc) : expandWord(w, env, esc));
    let sources = ins.sources.map(ex);
    let dest = ex(ins.dest);
    // heredoc sources (COPY <<EOF /dest)
    const heredocFiles = new Map<string, string>();
    for (const h of ins.heredocs) {
      const idx = sources.findIndex((s) => s.replace(/^<<-?["']?/, '').replace(/["']$/, '') === h.name);
      if (idx >= 0) sources.splice(idx, 1);
      heredocFiles.set(h.name, h.quoted ? h.content : expandWord(`"${h.content.replace(/"/g, '\\"')}"`, env, esc));
    }
    if (ins.node.heredocs.length && ins.sources.length === 0) { /* dest only */ }
    const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || dest === '.';
    if (!dest.startsWith('/')) dest = posix.join(st.run.WorkingDir || '/', dest);
    let owner = { uid: 0, gid: 0 };
    if (ins.chown) owner = await this.resolveChown(st, ex(ins.chown));
    let chmod: number | undefined;
    if (ins.chmod) {
      if (!/^[0-7]{3,4}$/.test(ins.chmod)) throw new InvalidParameterError(`invalid chmod parameter: ${ins.chmod}`);
      chmod = parseInt(ins.chmod, 8);
    }

    // where sources come from
    let srcRoot = this.ctxDir;
    let release: (() => Promise<void>) | null = null;
    let fromImage = false;
    if (ins.kind === 'copy' && ins.from !== undefined) {
      const ref = ex(ins.from);
      let id: Digest | null = null;
      const byName = this.df.stages.find((s) => s.name === ref.toLowerCase() && s.index < stage.index);
      if (byName) id = await this.stageImages.get(byName.index)!;
      else if (/^\d+$/.test(ref)) {
        if (Number(ref) >= stage.index) throw new InvalidParameterError(`invalid from flag value ${ref}: refers to current or later build stage`);
        id = await this.stageImages.get(Number(ref))!;
      } else {
        let img = await this.d.resolveImage(ref).catch(() => null);
        if (!img) { await this.d.pull(ref, (m) => this.emit(slot, m), this.opts.registryAuth); img = await this.d.resolveImage(ref); }
        id = img.id;
      }
      const mnt = await this.mountImage(id);
      srcRoot = mnt.path;
      release = mnt.release;
      fromImage = true;
    }
    try {
      const entries: FileEntry[] = [];
      const hashes: string[] = [];
      let count = 0;
      const multi = sources.length + heredocFiles.size > 1;
      const multiErr = () => new InvalidParameterError(`When using ${name} with more than one source file, the destination must be a directory and end with a /`);
      if (multi && !destIsDir) throw multiErr();
      const asDir = destIsDir;
      const destRel = await this.resolveInImage(st, dest);
      // source hashes as dockerd's (srchash.ts): file:<sum>, dir:<sorted sums of the tree>, multi:<…>
      const addTree = async (abs: string, target: string, st0: import('node:fs').Stats) => {
        if (st0.isDirectory()) {
          // the walk covers the directory itself, except when it is the source's root (dockerd's walkSource)
          const sums: string[] = [];
          const own = abs === srcRoot ? null : await this.sumOf(srcRoot, abs);
          if (own !== null) sums.push(own);
          const walk = async (a: string, t: string) => {
            for (const n of (await readdir(a)).sort()) {
              const ca = join(a, n);
              const s = await lstat(ca);
              const ct = t ? `${t}/${n}` : n;
              const e = await fileEntry(ca, ct, s, owner, chmod);
              entries.push(e);
              const sum = await this.sumOf(srcRoot, ca, s.isSymbolicLink());
              if (sum !== null) sums.push(sum);
              if (s.isDirectory()) await walk(ca, ct);
            }
          };
          const top = await fileEntry(abs, target, st0, owner, chmod);
          if (target) entries.push(top);
          await walk(abs, target);
          hashes.push(dirHash(sums));
        } else {
          const e = await fileEntry(abs, target, st0, owner, chmod);
          entries.push(e);
          hashes.push(`file:${await this.sumOf(srcRoot, abs) ?? ''}`);
        }
        count++;
      };
      for (const [hname, content] of heredocFiles) {
        const data = Buffer.from(content);
        const target = asDir ? posix.join(destRel, hname) : destRel;
        entries.push({ path: target, type: 'file', mode: chmod ?? 0o644, ...owner, mtime: new Date(0), size: data.length, data });
        hashes.push(`file:${createHash('sha256').update(data).digest('hex')}`);
        count++;
      }
      for (const src of sources) {
        if (ins.kind === 'add' && /^https?:\/\//.test(src)) {
          const resp = await fetch(src, { signal: this.abort.signal });
          if (!resp.ok) throw new InvalidParameterError(`${name} failed: failed to GET ${src} with status ${resp.status} ${resp.statusText}: `);
          const data = Buffer.from(await resp.arrayBuffer());
          const lm = resp.headers.get('last-modified');
          const base = downloadName(new URL(src).pathname, resp.headers.get('content-disposition'));
          if (!base) throw new InvalidParameterError('cannot determine filename from url: ' + src);
          const target = asDir ? posix.join(destRel, base) : destRel;
          // Last-Modified, else the Unix epoch (dockerd's zero time)
          const parsed = lm ? new Date(lm) : null;
          const mtime = parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date(0);
          entries.push({ path: target, type: 'file', mode: chmod ?? 0o600, ...owner, mtime, size: data.length, data });
          // dockerd names a download by its bare sum, without "file:"
          hashes.push(await downloadSum(base, data));
          count++;
          continue;
        }
        const clean = posix.normalize('/' + src);
        if (!fromImage) {
          const rel = posix.normalize(src);
          if (rel === '..' || rel.startsWith('../')) throw new InvalidParameterError(`${name} failed: forbidden path outside the build context: ${src} ()`);
        }
        let matches: string[] = [];
        if (hasWildcards(src)) matches = await globIn(srcRoot, clean.slice(1));
        else matches = [clean.slice(1)];
        const found: { rel: string; real: string; st: import('node:fs').Stats }[] = [];
        for (const m of matches) {
          // symlinks followed inside the context (or the source image), never into the host
          const real = await resolveInRoot(srcRoot, m, true);
          const s = await lstat(join(srcRoot, real)).catch(() => null);
          if (s && !s.isSymbolicLink()) found.push({ rel: m, real, st: s });
        }
        if (found.length === 0) {
          if (hasWildcards(src)) throw new InvalidParameterError(`${name} failed: no source files were specified`);
          if (fromImage) throw new NotFoundError(`${name} failed: stat ${clean.slice(1)}: file does not exist`);
          throw new InvalidParameterError(`${name} failed: file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`);
        }
        const manyFromOne = found.length > 1;
        if (manyFromOne && !destIsDir) throw multiErr();
        for (const f of found) {
          const abs = join(srcRoot, f.real);
          if (f.st.isDirectory()) {
            await addTree(abs, destRel, f.st);
          } else if (ins.kind === 'add' && await isArchive(abs)) {
            entries.push({ path: destRel, type: 'directory', mode: 0o755, ...owner, mtime: new Date(), size: 0, archive: abs });
            hashes.push(`file:${await this.sumOf(srcRoot, abs) ?? ''}`);
            count++;
          } else {
            let target: string;
            if (asDir || manyFromOne) target = posix.join(destRel, posix.basename(f.rel));
            else {
              const ds = await this.statInImage(st, '/' + destRel);
              target = ds?.isDirectory() ? posix.join(destRel, posix.basename(f.rel)) : destRel;
            }
            await addTree(abs, target, f.st);
          }
        }
        if (found.length > 1) count = Math.max(count, 2);
      }
      const srcHash = count > 1 ? multiHash(hashes) : hashes[0] ?? '';
      // dockerd 20.10 writes the --chown value right before the hash, without a space
      const comment = `${name} ${ins.chown ? `--chown=${ex(ins.chown)}` : ''}${srcHash} in ${ex(ins.dest)} `;
      const ccCmd = [...this.shell(st), `#(nop) ${comment}`];
      if (await this.probeCache(st, ccCmd, slot)) return;
      // parents of the destination that the image lacks are created (root-owned, 0755); those it has are in the
      // layer too, with their own metadata, as in the overlay diff of dockerd's copy (the directories copied up)
      const dirs: FileEntry[] = [];
      const parts = destRel.split('/').filter(Boolean);
      for (let i = 1; i < parts.length + (asDir ? 1 : 0); i++) {
        const p = parts.slice(0, i).join('/');
        const have = await this.statInImage(st, '/' + p);
        if (have) {
          if (have.isDirectory() && (await this.resolveInImage(st, '/' + p)).replace(/^\/+/, '') === p) {
            dirs.push({ path: p, type: 'directory', mode: have.mode & 0o7777, uid: have.uid, gid: have.gid, mtime: have.mtime, size: 0 });
          }
          continue;
        }
        dirs.push({ path: p, type: 'directory', mode: 0o755, uid: asDir && i === parts.length ? owner.uid : 0, gid: asDir && i === parts.length ? owner.gid : 0, mtime: new Date(), size: 0 });
      }
      const copied = new Set(entries.filter((e) => !e.archive).map((e) => e.path.replace(/\/+$/, '')));
      const layer = await this.d.layers.extract(packEntries([...dirs.filter((e) => !copied.has(e.path)), ...entries]));
      await this.commit(st, ccCmd, layer, slot, false);
    } finally {
      if (release) await release();
    }
  }

  private async mountImage(id: Digest | null): Promise<{ path: string; release: () => Promise<void> }> {
    const rw = `build-src-${newId()}`;
    let chain: Digest | null = null;
    if (id) {
      const img = await this.d.images.get(id);
      chain = chainOf(img.config.rootfs?.diff_ids ?? []);
    }
    await this.d.layers.createRW(rw, chain, { init: false });
    const path = await this.d.layers.mount(rw);
    this.layerOwners.push(rw);
    return {
      path,
      release: async () => {
        await this.d.layers.unmount(rw).catch(() => {});
        await this.d.layers.removeRW(rw).catch(() => {});
      },
    };
  }
}


// ---------------------------------------------------------------------------------------------- helpers

import { chainIds } from '../../lib/digest.js';

function chainList(ids: readonly string[]): Digest[] { return chainIds(ids as Digest[]); }
function chainOf(ids: readonly string[]): Digest | null {
  const c = chainList(ids);
  return c.length ? c[c.length - 1]! : null;
}

async function fileEntry(abs: string, path: string, s: import('node:fs').Stats, owner: { uid: number; gid: number }, chmod?: number): Promise<FileEntry> {
  const base = { path, uid: owner.uid, gid: owner.gid, mtime: s.mtime };
  if (s.isSymbolicLink()) return { ...base, type: 'symlink', mode: 0o777, size: 0, linkname: await readlink(abs) };
  if (s.isDirectory()) return { ...base, type: 'directory', mode: chmod ?? (s.mode & 0o7777), size: 0 };
  return { ...base, type: 'file', mode: chmod ?? (s.mode & 0o7777), size: s.size, source: abs };
}

/** The name of a downloaded ADD source: the URL path's last part, else Content-Disposition's filename (dockerd's). */
function downloadName(pathname: string, disposition: string | null): string {
  if (pathname && !pathname.endsWith('/')) {
    const b = posix.basename(pathname);
    if (b) return b;
  }
  if (disposition) {
    try {
      const f = parseContentDisposition(disposition).parameters.filename;
      if (f && !f.endsWith('/')) return posix.basename(f);
    } catch { /* unparsable: no name */ }
  }
  return '';
}

async function isArchive(p: string): Promise<boolean> {
  const { head, stream } = await peekStream(createReadStream(p), 6);
  stream.destroy();
  const { stream: d } = await decompress(Readable.from([head]));
  void d;
  const full = await decompress(createReadStream(p));
  try {
    const { head: h2, stream: s2 } = await peekStream(full.stream, 512);
    s2.destroy();
    return looksLikeTar(h2);
  } catch {
    return false;
  }
}

/** Go filepath.Glob of a slash pattern under root. */
async function globIn(root: string, pattern: string): Promise<string[]> {
  const parts = pattern.split('/').filter(Boolean);
  let cur = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of cur) {
      if (!hasWildcards(part)) {
        const p = base ? `${base}/${part}` : part;
        if (await lstat(join(root, await resolveInRoot(root, p, false))).catch(() => null)) next.push(p);
        continue;
      }
      const names = await readdir(join(root, await resolveInRoot(root, base, true))).catch(() => [] as string[]);
      for (const n of names.sort()) if (goMatch(part, n)) next.push(base ? `${base}/${n}` : n);
    }
    cur = next;
  }
  return cur;
}

/**
 * A layer tar from file entries (ADD archives unpacked in place). When the consumer stops early (the layer store
 * failed, e.g. ENOSPC), the packer and its sources stop too: every stream's error is handled (an unhandled one
 * on a pack entry used to end the daemon).
 */
function packEntries(entries: FileEntry[]): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  // sources still open: closed at once when the consumer stops (an open read stream of a context file kept a
  // removed file's space until the daemon ended)
  const open = new Set<Readable>();
  const source = (p: string): Readable => {
    const rs = createReadStream(p);
    open.add(rs);
    rs.on('close', () => open.delete(rs));
    return rs;
  };
  let onStop!: () => void;
  const stopped = new Promise<never>((_, reject) => { onStop = () => reject(new Error('layer consumer stopped')); });
  stopped.catch(() => { /* observed through until() */ });
  const until = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped]);
  out.on('close', () => {
    onStop();
    for (const s of open) s.destroy();
    open.clear();
    if (!pack.destroyed) pack.destroy();
  });
  pack.on('error', (err: Error) => { if (!out.destroyed) out.destroy(err); });
  (async () => {
    for (const e of entries) {
      if (e.archive) {
        const { stream } = await until(decompress(source(e.archive)));
        const ex = tar.extract();
        const done = new Promise<void>((resolve, reject) => {
          ex.on('entry', (h, body, next) => {
            const name = posix.normalize('/' + h.name).slice(1).replace(/\/+$/, '');
            if (!name) { body.resume(); body.on('end', next); return; }
            const hdr = { ...h, name: posix.join(e.path, name) + (h.type === 'directory' ? '/' : '') };
            if (h.type === 'link' && h.linkname) hdr.linkname = posix.join(e.path, posix.normalize('/' + h.linkname).slice(1));
            const w = pack.entry(hdr, (err) => { if (err) reject(err); else next(); });
            pipeline(body, w).catch(reject);
          });
          ex.on('finish', resolve);
          ex.on('error', reject);
        });
        await until(Promise.all([pipeline(stream, ex), done]));
        continue;
      }
      const header = {
        name: e.type === 'directory' ? `${e.path}/` : e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime,
        type: e.type, size: e.type === 'file' ? e.size : 0, linkname: e.linkname,
      } as tar.Header;
      if (e.type !== 'file') { await until(new Promise<void>((res, rej) => pack.entry(header, (err) => (err ? rej(err) : res())))); continue; }
      if (e.data) { await until(new Promise<void>((res, rej) => pack.entry(header, e.data!, (err) => (err ? rej(err) : res())))); continue; }
      await until(new Promise<void>((res, rej) => {
        const w = pack.entry(header, (err) => (err ? rej(err) : res()));
        pipeline(source(e.source!), w).catch(rej);
      }));
    }
    pack.finalize();
  })().catch((err) => {
    if (!out.destroyed) out.destroy(err as Error);
    if (!pack.destroyed) pack.destroy();
    for (const s of open) s.destroy();
  });
  return out;
}

export { mkdir, rm };
