/**
 * The classic builder's executor loop (dockerd 20.10's builder/dockerfile): the stages of the plan (plan.ts) run
 * concurrently, each instruction dispatched in order on a per-stage state (image ID + runConfig): config
 * instructions through the config evaluator (config-eval.ts), COPY/ADD through the source resolver (sources.ts),
 * RUN in a container (run-executor.ts); each step is looked up in the cache (cache.ts) or committed as an image
 * whose parent is the previous one (config-only steps: empty_layer history), with docker's output lines, released
 * in stage order (output.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { chainIds, hexOf, type Digest } from '../../lib/digest.js';
import { InvalidParameterError, NotFoundError, WharfError, notFoundAs } from '../../lib/errors.js';
import { missingAs } from '../../lib/fsutil.js';
import type { Logger } from '../../lib/log.js';
import type { JSONMessage, ProgressSink } from '../../lib/jsonmessage.js';
import type { BuildRequest } from '../../wire/index.js';
import type { ContainerConfig, HistoryEntry, Image, ImageConfig, ImageStore } from '../images/types.js';
import type { ExtractedLayer, LayerStore } from '../layers/types.js';
import { parseInstructions, type ArgInstruction, type CommandInstruction, type CopyInstruction, type Dockerfile, type Instruction, type Stage } from './dockerfile/instructions.js';
import { expandWord } from './dockerfile/shell-lex.js';
import { ContextMemo, fetchGit, isGitUrl, openContext, type BuildContext } from './context.js';
import { goQuote, rfc3339Nano } from '../../lib/go.js';
import { applyConfigInstruction, DEFAULT_SHELL, isConfigInstruction, withDefaultPath } from './config-eval.js';
import type { RunExecutor } from './types.js';
import { formatPlatform, parsePlatform, platformMatches, type Platform } from '../../lib/oci/platform.js';
import { BuildCache } from './cache.js';
import { ImageFileMemo, ImageFiles } from './image-files.js';
import { StageOutput } from './output.js';
import { planStages, type StagePlan } from './plan.js';
import { collectSources, packEntries, parseChmod, ROOT_OWNER, SourceSums, type Chmod, type SourceRoot } from './sources.js';
import { PatternMatcher } from '../../lib/dockerignore.js';
import { CacheMounts } from './cache-mounts.js';
import { parseRunMount, type RunMount } from './dockerfile/run-mounts.js';
import { mountKeyWords, prepareMounts, type PreparedMounts } from './step-mounts.js';

export { cacheKeyOf } from './cache.js';

export const EMPTY_TAR_DIGEST = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
export const MAX_LAYERS = 127;
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
  /** Where `RUN --mount=type=cache` directories live across builds. */
  cacheDir: string;
  dockerVersion: string;
  arch: string;
  log?: Logger;
}

function newId(): string { return randomBytes(32).toString('hex'); }
const short = (id: string) => hexOf(id).slice(0, 12);

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

export class Builder {
  readonly caches: CacheMounts;
  /** COPY/ADD source hashes by source root and sources, remembered across builds (sources.ts). */
  private readonly sourceSums = new SourceSums();
  /** What lookups of files in images found, by chain ID, across builds (image-files.ts). */
  private readonly imageFiles = new ImageFileMemo();
  /** Unpacked contexts by the request body's hash, across builds (context.ts). */
  readonly contexts: ContextMemo;
  constructor(private readonly d: BuilderDeps) {
    this.caches = new CacheMounts(d.cacheDir, d.log);
    this.contexts = new ContextMemo(d.tmpDir, (e, path) => { this.d.log?.warn('removing a kept build context', { path, error: e }); });
  }

  private swept = false;
  private readonly active = new Set<string>();

  /** Removes contexts a previous daemon left behind (once, before the first build). */
  private async sweep(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const names = await readdir(this.d.tmpDir).catch(missingAs([] as string[]));
    for (const n of names) if (n.startsWith('build-') && !this.active.has(n)) await rm(join(this.d.tmpDir, n), { recursive: true, force: true }).catch((e) => { this.d.log?.warn('removing a build context left by a previous daemon', { path: n, error: e }); });
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
    const t0 = performance.now();
    const ctx = await openContext(body, { remote: opts.remote, dockerfile: opts.dockerfile, tmpDir: tmp, signal: opts.signal, memo: this.contexts });
    try {
      let text = ctx.dockerfile;
      const keys = Object.keys(opts.labels ?? {}).sort();
      // docker appends the labels= parameter as one more LABEL instruction
      if (keys.length) text += `\nLABEL ${keys.map((k) => `${goQuote(k)}=${goQuote(opts.labels[k]!)}`).join(' ')}\n`;
      const df = parseInstructions(text);
      checkSyntax(df);
      const t1 = performance.now();
      const job = new BuildJob(this.d, df, ctx, opts, progress, this.caches, `${tmp}-mounts`, this.sourceSums, this.imageFiles);
      const id = await job.run();
      // where a build's time went (bench/README.md's breakdown of a cached rebuild comes from these)
      this.d.log?.debug('build timings', {
        contextMs: round(t1 - t0), stepsMs: round(performance.now() - t1), sourcesMs: round(job.timing.sources), cacheMs: round(job.timing.cache),
        filesMs: round(job.timing.files), finishMs: round(job.timing.finish),
        ...Object.fromEntries(Object.entries(job.timing.kinds).map(([k, v]) => [`${k}Ms`, round(v)])),
      });
      // the unpacked context goes after the answer (a leftover is swept at the next daemon's first build)
      void ctx.close().catch((e) => { this.d.log?.warn('removing a build context', { path: name, error: e }); });
      return id;
    } catch (e) {
      // a failed build gives its space back before it answers (the failure may be a full disk)
      await ctx.close(true).catch((e2) => { this.d.log?.warn('removing the context of a failed build', { path: name, error: e2 }); });
      throw e;
    } finally {
      // RUN --mount's secret files and rw copies, ADD's git clones and downloads, heredocs (each step removes its
      // own; this is the rest)
      await rm(`${tmp}-mounts`, { recursive: true, force: true }).catch((e) => { this.d.log?.warn('removing the mounts of a build', { path: `${tmp}-mounts`, error: e }); });
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
  private readonly files: ImageFiles;
  private readonly cache: BuildCache;
  /**
   * Where the steps' time went (ms): collecting and summing COPY/ADD sources, cache lookups, lookups of files in
   * images, the closing lines and tags, and each kind of instruction as a whole.
   */
  readonly timing = { sources: 0, cache: 0, files: 0, finish: 0, kinds: {} as Record<string, number> };

  private readonly ctxDir: string;
  private readonly sums: Map<string, string>;

  constructor(private readonly d: BuilderDeps, private readonly df: Dockerfile, private readonly ctx: BuildContext,
    private readonly opts: BuildRequest, private readonly progress: ProgressSink,
    private readonly caches: CacheMounts, private readonly scratchDir: string, private readonly sourceSums: SourceSums, fileMemo: ImageFileMemo) {
    this.ctxDir = ctx.dir;
    this.sums = ctx.sums;
    this.quiet = opts.quiet;
    this.files = new ImageFiles(d.layers, fileMemo, this.timing);
    this.cache = new BuildCache(d, opts);
  }

  private buildArg(name: string): string | undefined {
    if (!Object.prototype.hasOwnProperty.call(this.opts.buildArgs, name)) return undefined;
    const v = this.opts.buildArgs[name];
    return v === null ? process.env[name] : v;
  }

  async run(): Promise<string> {
    const { df, opts } = this;
    this.declareMetaArgs();
    const plan = planStages(df, { target: opts.target, metaEnv: this.metaEnv() });
    // ARGs before the first FROM are steps too (printed without an image line), as the classic builder counts them
    df.metaArgs.forEach((a, k) => {
      if (!this.quiet) { this.progress({ stream: `Step ${k + 1}/${plan.total} : ${a.node.original}` }); this.progress({ stream: '\n' }); }
    });
    this.startStages(plan);
    await this.awaitStages(plan.order);
    const finalId = await this.stageImages.get(plan.target)!;
    if (!finalId) throw new InvalidParameterError('No image was generated. Is your Dockerfile empty?');
    const t = performance.now();
    await this.finish(finalId);
    this.timing.finish = performance.now() - t;
    return finalId;
  }

  /**
   * ARGs before the first FROM: their values (build-arg, else the default expanded with earlier ones), after
   * BuildKit's automatic platform ARGs (usable in FROM undeclared, in a stage once declared without a value).
   */
  private declareMetaArgs(): void {
    const auto = platformArgs(this.d.arch, this.opts.platform);
    for (const [k, v] of auto) {
      const b = this.buildArg(k);
      if (b !== undefined) this.usedArgs.add(k);
      this.metaArgs.set(k, b ?? v);
    }
    for (const a of this.df.metaArgs) {
      for (const { key, value } of a.args) {
        const def = value === undefined ? undefined : expandWord(value, this.metaEnv(), this.df.directives.escape);
        const b = this.buildArg(key);
        if (b !== undefined) this.usedArgs.add(key);
        this.metaArgs.set(key, b ?? def ?? (auto.has(key) ? this.metaArgs.get(key) : undefined));
      }
    }
  }

  /** Every needed stage starts at once (each waits for the stages it uses); output is released in stage order. */
  private startStages(plan: StagePlan): void {
    this.out = new StageOutput(plan.order.length, this.progress);
    plan.order.forEach((i, slot) => {
      const p = this.buildStage(this.df.stages[i]!, slot, plan.firstStep.get(i)!, plan.total)
        .catch((e: unknown) => {
          if (!this.abort.signal.aborted && this.failedSlot === undefined) { this.failedSlot = slot; this.out.limit = slot; }
          throw e;
        })
        .finally(() => this.out.finish(slot));
      p.catch(() => {}); // awaited through stageImages; this only keeps an early failure from being "unhandled"
      this.stageImages.set(i, p);
    });
  }

  private async awaitStages(order: number[]): Promise<void> {
    const onClientGone = () => this.abort.abort();
    this.opts.signal?.addEventListener('abort', onClientGone, { once: true });
    try {
      await Promise.all(order.map((i) => this.stageImages.get(i)!));
    } catch (e) {
      // fail fast: stop the other stages, show what every stage printed so far (in stage order), then the error
      this.abort.abort();
      await Promise.allSettled(order.map((i) => this.stageImages.get(i)!));
      this.out.flushAll(this.failedSlot);
      throw e;
    } finally {
      this.opts.signal?.removeEventListener('abort', onClientGone);
    }
  }

  /** The closing lines: unused build-args, the ID, the tags. */
  private async finish(finalId: Digest): Promise<void> {
    const { opts } = this;
    // BuildKit's own knobs (BUILDKIT_INLINE_CACHE, BUILDKIT_SYNTAX, …) are accepted and ignored
    const unused = Object.keys(opts.buildArgs).filter((k) => !this.usedArgs.has(k) && !PROXY_ARGS.includes(k) && !k.startsWith('BUILDKIT_')).sort();
    if (unused.length && !this.quiet) this.progress({ stream: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n` });
    this.progress({ aux: { ID: finalId } });
    if (this.quiet) this.progress({ stream: `${finalId}\n` });
    else this.progress({ stream: `Successfully built ${short(finalId)}\n` });
    for (const t of opts.tags) {
      const name = await this.d.tag(finalId, t);
      if (!this.quiet) this.progress({ stream: `Successfully tagged ${name}\n` });
    }
  }

  private metaEnv(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.metaArgs) if (v !== undefined) m.set(k, v);
    return m;
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
    const tf = performance.now();
    const st = await this.from(stage, slot);
    this.timing.kinds.from = (this.timing.kinds.from ?? 0) + performance.now() - tf;
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
      const tk = performance.now();
      await this.dispatch(st, ins, slot, stage, esc);
      this.timing.kinds[ins.kind] = (this.timing.kinds[ins.kind] ?? 0) + performance.now() - tk;
      this.say(slot, ` ---> ${st.imageId ? short(st.imageId) : ''}\n`);
    }
    // labels= of the request go on the last stage's image
    return st.imageId;
  }

  /**
   * FROM's image. `--platform` (expanded with the meta ARGs, BuildKit's automatic BUILDPLATFORM/TARGETPLATFORM
   * among them) is dockerd 20.10's: a missing image is pulled for that platform; an image of an
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
      try { platform = parsePlatform(v); } catch (e) { throw new InvalidParameterError(`failed to parse platform ${v}: ${(e as Error).message}`, { cause: e }); }
    } else if (this.opts.platform) {
      // docker build --platform: the platform of every FROM that names none
      try { platform = parsePlatform(this.opts.platform); } catch (e) { throw new InvalidParameterError(`failed to parse platform ${this.opts.platform}: ${(e as Error).message}`, { cause: e }); }
    }
    const platformOf = (img: Image) => formatPlatform({ os: img.config.os ?? '', architecture: img.config.architecture ?? '', ...(img.config.variant ? { variant: img.config.variant } : {}) });
    const newState = (img: Image | null): StageState => {
      const config: ImageConfig = img ? JSON.parse(img.raw.toString('utf8')) as ImageConfig : { architecture: this.d.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, history: [] };
      const run: ContainerConfig = { ...(config.config ?? {}) };
      // dockerd's dispatchFrom: a base without PATH (scratch included) gets the default one
      run.Env = withDefaultPath(run.Env);
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

  private shell(st: StageState): string[] { return st.run.Shell?.length ? st.run.Shell : [...DEFAULT_SHELL]; }

  // ------------------------------------------------------------------ dispatch

  private async dispatch(st: StageState, ins: Instruction, slot: number, stage: Stage, esc: string): Promise<void> {
    if (isConfigInstruction(ins)) {
      const r = applyConfigInstruction(st.run, ins, { vars: this.expansionEnv(st), escape: esc, cmdSet: st.cmdSet ?? false });
      if (r.note) this.say(slot, r.note);
      st.run = r.config;
      st.cmdSet = r.cmdSet;
      if (ins.kind === 'workdir') return this.workdirStep(st, r.history, slot);
      return this.commitConfig(st, r.history, slot);
    }
    switch (ins.kind) {
      case 'maintainer':
        st.author = ins.value;
        return this.commitConfig(st, `MAINTAINER ${ins.value}`, slot);
      case 'arg':
        return this.commitConfig(st, this.declareArgs(st, ins, esc), slot);
      case 'run':
        return this.runStep(st, ins, slot, stage);
      case 'copy': case 'add':
        return this.copyStep(st, ins, slot, stage);
      case 'from':
        throw new InvalidParameterError('FROM is not allowed here');
    }
  }

  /** ARG: the stage's declared args take their values (build-arg, else meta ARG, else default); the history text. */
  private declareArgs(st: StageState, ins: ArgInstruction, esc: string): string {
    const parts: string[] = [];
    for (const { key, value } of ins.args) {
      const expanded = value === undefined ? undefined : expandWord(value, this.expansionEnv(st), esc);
      let v = expanded;
      if (value === undefined && this.metaArgs.has(key)) v = this.metaArgs.get(key);
      const b = this.buildArg(key);
      if (b !== undefined) { v = b; this.usedArgs.add(key); }
      st.args.set(key, v);
      // history shows the default as written (expanded), not the --build-arg value
      parts.push(expanded === undefined ? key : `${key}=${expanded}`);
    }
    return `ARG ${parts.join(' ')}`;
  }

  /** WORKDIR (config already applied): the directory is made in a layer when the image lacks it. */
  private async workdirStep(st: StageState, comment: string, slot: number): Promise<void> {
    const w = st.run.WorkingDir!;
    const ccCmd = [...this.shell(st), `#(nop) ${comment}`];
    if (await this.probeCache(st, ccCmd, slot)) return;
    const exists = await this.files.stat(st.config, w);
    let layer: ExtractedLayer | null = null;
    if (!exists) {
      const parts = (await this.files.resolve(st.config, w)).split('/').filter(Boolean);
      layer = await this.d.layers.extract(packEntries(await this.files.dirEntries(st.config, parts, () => ROOT_OWNER)));
    }
    const cid = await this.configContainer(st, ccCmd, slot);
    await this.commit(st, { ccCmd, layer, cid });
    if (this.opts.rm) this.say(slot, `Removing intermediate container ${cid.slice(0, 12)}\n`);
  }

  /** A config-only step: " ---> Running in", cache probe, empty-layer commit. */
  private async commitConfig(st: StageState, comment: string, slot: number): Promise<void> {
    const ccCmd = [...this.shell(st), '#(nop) ', comment];
    if (await this.probeCache(st, ccCmd, slot)) return;
    const cid = await this.configContainer(st, ccCmd, slot);
    await this.commit(st, { ccCmd, layer: null, cid });
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
    else cid = await this.d.executor.create({ imageId: st.imageId, config: st.run, cmd: ccCmd, network: this.opts.networkMode, ...(this.opts.extraHosts ? { extraHosts: this.opts.extraHosts } : {}) });
    this.say(slot, ` ---> Running in ${cid.slice(0, 12)}\n`);
    return cid;
  }

  private async probeCache(st: StageState, ccCmd: string[], slot: number): Promise<boolean> {
    const t = performance.now();
    const best = await this.cache.find({ imageId: st.imageId, run: st.run }, ccCmd);
    this.timing.cache += performance.now() - t;
    if (!best) return false;
    this.say(slot, ' ---> Using cache\n');
    st.imageId = best.id;
    st.config = JSON.parse(best.raw.toString('utf8')) as ImageConfig;
    st.run = { ...(st.config.config ?? {}) };
    return true;
  }

  /** Commits the state as a new image (child of the current one), with or without a new layer. */
  private async commit(st: StageState, step: { ccCmd: string[]; layer: ExtractedLayer | null; cid?: string }): Promise<void> {
    const { layers, images } = this.d;
    const { ccCmd, layer, cid = newId() } = step;
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
      const hist: HistoryEntry = { created, created_by: ccCmd.join(' ') };
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
    } finally {
      if (registered) await layers.release(registered.chainId);
    }
  }

  // ------------------------------------------------------------------ RUN

  private async runStep(st: StageState, ins: CommandInstruction, slot: number, stage: Stage): Promise<void> {
    let cmd: string[];
    // heredocs as BuildKit runs them: `RUN <<EOF` alone runs the body (a `#!` body as its own script, from
    // /dev/pipes/<name>); otherwise the shell gets the command with its heredocs and handles them itself
    let script: { name: string; content: string } | null = null;
    const hds = ins.node.heredocs;
    if (hds.length && ins.shellForm) {
      const line0 = ins.args.join(' ').trim();
      const sole = hds.length === 1 && new RegExp(`^<<-?\\s*(["']?)${hds[0]!.name}\\1$`).test(line0);
      if (sole && hds[0]!.content.startsWith('#!')) {
        script = { name: hds[0]!.name, content: hds[0]!.content };
        cmd = [`/dev/pipes/${script.name}`];
      } else if (sole) cmd = [...this.shell(st), hds[0]!.content];
      else cmd = [...this.shell(st), `${line0}\n${hds.map((h) => `${h.content}${h.name}\n`).join('')}`];
    } else cmd = ins.shellForm ? [...this.shell(st), ins.args.join(' ')] : ins.args;
    const args = this.runArgs(st);
    // predefined proxy args reach the command but, unless declared with ARG, not its history nor the cache key
    const shown = args.filter((a) => { const k = a.slice(0, a.indexOf('=')); return !PROXY_ARGS.includes(k) || st.args.has(k); });
    const line = ins.node.startLine;
    const atLine = (e: unknown): never => {
      if (e instanceof InvalidParameterError && !/^dockerfile parse error line /.test(e.message)) throw new InvalidParameterError(`Dockerfile line ${line}: ${e.message}`);
      throw e;
    };
    // RUN --mount (substituted with the stage's variables, then checked again) and --network
    const mounts: { raw: string; m: RunMount }[] = [];
    for (const raw of ins.mounts) {
      const v = expandWord(raw, this.expansionEnv(st), this.df.directives.escape);
      try { mounts.push({ raw: v, m: parseRunMount(v) }); } catch (e) { throw new InvalidParameterError(`dockerfile parse error line ${line}: invalid --mount=${v}: ${(e as Error).message}`); }
    }
    const network = ins.network === undefined || ins.network === 'default' ? this.opts.networkMode : ins.network;
    const extra = await mountKeyWords(mounts, { ctxDir: this.ctxDir, ctxSums: this.sums, signal: this.abort.signal }, async (ref) => {
      const f = await this.fromRoot(ref, slot, stage);
      return f.imageId ?? 'scratch';
    }).catch(atLine);
    if (ins.network !== undefined && ins.network !== 'default') extra.push(`--network=${ins.network}`);
    // a #! heredoc runs from its file: its body is what the key (and history) must show
    const ccCmd = [...(shown.length ? [`|${shown.length}`, ...shown] : []), ...extra, ...cmd, ...(script ? [`<<${script.name}\n${script.content}${script.name}`] : [])];
    if (await this.probeCache(st, ccCmd, slot)) return;
    let prepared: PreparedMounts | null = null;
    if (mounts.length || script) {
      prepared = await prepareMounts(mounts.map((x) => x.m), st.run.WorkingDir || '/', {
        ctxDir: this.ctxDir, ...(this.sums.size ? { ctxSums: this.sums } : {}),
        mountFrom: async (ref) => {
          const f = await this.fromRoot(ref, slot, stage);
          const mnt = await this.mountImage(f.imageId);
          return { imageId: f.imageId ?? 'scratch', dir: mnt.path, release: mnt.release };
        },
        caches: this.caches, secrets: this.opts.secrets ?? new Map(), ssh: this.opts.ssh ?? new Map(),
        scratchDir: join(this.scratchDir, newId().slice(0, 16)), signal: this.abort.signal,
        ...(script ? { script: { target: `/dev/pipes/${script.name}`, content: script.content } } : {}),
      }).catch(atLine);
    }
    try {
      await this.runContainer(st, cmd, ccCmd, args, slot, network, prepared);
    } finally {
      await prepared?.release();
    }
  }

  private async runContainer(st: StageState, cmd: string[], ccCmd: string[], args: string[], slot: number, network: string | undefined, mounts: PreparedMounts | null): Promise<void> {
    const ex = this.d.executor;
    const env = [...(st.run.Env ?? []), ...args];
    const cid = ex.create
      ? await ex.create({
        imageId: st.imageId, config: st.run, cmd, env, processEnv: mounts?.env ?? [], runStep: true, network,
        ...(mounts ? { binds: mounts.binds, tmpfs: mounts.tmpfs } : {}),
        ...(this.opts.extraHosts ? { extraHosts: this.opts.extraHosts } : {}),
      })
      : newId();
    this.say(slot, ` ---> Running in ${cid.slice(0, 12)}\n`);
    const removed = async () => {
      await ex.remove?.(cid);
      this.say(slot, `Removing intermediate container ${cid.slice(0, 12)}\n`);
    };
    // the mount points runc makes where the image has nothing are left out of the layer (BuildKit's mount stubs)
    const stubs: string[] = [];
    for (const t of [...(mounts?.binds.map((b) => b.target) ?? []), ...Object.keys(mounts?.tmpfs ?? {})]) {
      const parts = t.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join('/');
        if (!stubs.includes(p) && !(await this.files.stat(st.config, '/' + p))) stubs.push(p);
      }
    }
    let errBuf = '';
    let res: Awaited<ReturnType<RunExecutor['run']>>;
    try {
      res = await ex.run({
        id: cid, cmd, env: [...env, ...(mounts?.env ?? [])], ...(stubs.length ? { stubs } : {}),
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
    await this.commit(st, { ccCmd, layer: res.layer, cid });
    if (this.opts.rm) await removed();
  }

  // ------------------------------------------------------------------ COPY / ADD

  private async copyStep(st: StageState, ins: CopyInstruction, slot: number, stage: Stage): Promise<void> {
    const esc = this.df.directives.escape;
    const env = this.expansionEnv(st);
    const name = ins.kind.toUpperCase();
    const ex = (w: string) => (ins.node.json ? expandWord(JSON.stringify(w).slice(1, -1).replace(/\\"/g, '"'), env, esc) : expandWord(w, env, esc));
    const sources = ins.sources.map(ex);
    // heredoc sources (COPY <<EOF /dest)
    const heredocs = new Map<string, string>();
    for (const h of ins.heredocs) {
      const idx = sources.findIndex((x) => x.replace(/^<<-?["']?/, '').replace(/["']$/, '') === h.name);
      if (idx >= 0) sources.splice(idx, 1);
      heredocs.set(h.name, h.quoted ? h.content : expandWord(`"${h.content.replace(/"/g, '\\"')}"`, env, esc));
    }
    let dest = ex(ins.dest);
    const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || dest === '.';
    if (!dest.startsWith('/')) dest = posix.join(st.run.WorkingDir || '/', dest);
    const owner = ins.chown ? await this.files.resolveChown(st.config, ex(ins.chown)) : ROOT_OWNER;
    const line = `Dockerfile line ${ins.node.startLine}`;
    if (ins.chmod !== undefined && [...sources, dest].some((x) => /^[A-Za-z]:[\\/]/.test(x) || x.includes('\\'))) {
      throw new InvalidParameterError(`${line}: ${name} --chmod is not supported with Windows-style paths`);
    }
    let chmod: Chmod | undefined;
    try { chmod = ins.chmod === undefined ? undefined : parseChmod(ex(ins.chmod)); } catch (e) { throw new InvalidParameterError(`${line}: ${(e as Error).message}`); }
    if (ins.checksum && sources.some((x) => !/^https?:\/\//.test(x))) {
      throw new InvalidParameterError(`${line}: ADD --checksum can only be used with HTTP(S) sources`);
    }
    let exclude: PatternMatcher | undefined;
    try { exclude = ins.exclude.length ? new PatternMatcher(ins.exclude.map(ex)) : undefined; } catch (e) { throw new InvalidParameterError(`${line}: invalid --exclude: ${(e as Error).message}`); }
    const git = ins.kind === 'add' && sources.some(isGitUrl);
    if (ins.keepGitDir && !git) throw new InvalidParameterError(`${line}: ADD --keep-git-dir needs a git URL source`);
    if (git && sources.length !== 1) throw new InvalidParameterError(`${line}: ADD of a git URL takes it as the only source`);
    // dockerd 20.10 writes the --chown value right before the hash, without a space; the BuildKit-era flags
    // (which dockerd's classic builder refuses) come first, so they are part of the cache key
    const flags = [
      ins.chmod !== undefined ? `--chmod=${ex(ins.chmod)}` : '', ins.link ? '--link' : '', ins.parents ? '--parents' : '',
      ...ins.exclude.map((e) => `--exclude=${ex(e)}`), ins.checksum ? `--checksum=${ins.checksum}` : '',
    ].filter(Boolean).map((f) => `${f} `).join('');
    const cacheCmd = (srcHash: string) => [...this.shell(st), `#(nop) ${name} ${flags}${ins.chown ? `--chown=${ex(ins.chown)}` : ''}${srcHash} in ${ex(ins.dest)} `];
    // --link: the layer is made apart from the image below (nothing of it is read: no symlinks followed, parents
    // new and fixed), so its content, and its diff ID, stay the same when the base changes
    const destIn = () => (ins.link ? Promise.resolve(posix.normalize(dest).replace(/^\/+/, '')) : this.files.resolve(st.config, dest));
    // the source hash of the same sources in the same root is known from an earlier build: an image's files never
    // change (COPY --from: when the step is cached, the image is not even mounted), and a context is the same
    // when its bytes are (BuildContext.key); downloads are fetched every time
    let sumKey: string | undefined;
    let fromId: Digest | null | undefined;
    const sumOf = (root: string) => SourceSums.key(root, { kind: ins.kind, sources, heredocs, exclude: ins.exclude.map(ex), parents: ins.parents === true, destIsDir });
    if (!git && ins.kind === 'copy' && ins.from !== undefined) {
      fromId = (await this.fromRoot(ex(ins.from), slot, stage)).imageId;
      if (fromId) sumKey = sumOf(fromId);
    } else if (!git && ins.from === undefined && this.ctx.key && !sources.some((x) => /^https?:\/\//.test(x))) {
      sumKey = sumOf(`context:${this.ctx.key}`);
    }
    const known = sumKey === undefined ? undefined : this.sourceSums.get(sumKey);
    if (known !== undefined) {
      await destIn();
      if (await this.probeCache(st, cacheCmd(known), slot)) return;
    }
    const src = git ? await this.gitRoot(sources[0]!, ins.keepGitDir, line)
      : fromId !== undefined ? await this.imageRoot(fromId) : this.contextRoot();
    if (git) sources.splice(0, 1, '.');
    // the step's downloads and heredocs are written here, and removed with it (the build's end sweeps the rest)
    const scratchDir = join(this.scratchDir, `copy-${newId().slice(0, 16)}`);
    try {
      const destRel = await destIn();
      const tSrc = performance.now();
      const { entries, srcHash } = await collectSources({
        // a git repository's files go into the destination directory (as BuildKit's ADD of a git URL)
        kind: git ? 'copy' : ins.kind, root: src.root, sources, heredocs, destRel, destIsDir: destIsDir || git, owner, signal: this.abort.signal,
        ...(chmod ? { chmod } : {}), ...(exclude ? { exclude } : {}), ...(ins.parents ? { parents: true } : {}),
        ...(ins.checksum ? { checksum: ins.checksum, where: line } : {}), scratchDir,
        statInImage: ins.link ? async () => null : (p) => this.files.stat(st.config, p),
      });
      this.timing.sources += performance.now() - tSrc;
      if (sumKey !== undefined) this.sourceSums.set(sumKey, srcHash);
      const ccCmd = cacheCmd(srcHash);
      if (await this.probeCache(st, ccCmd, slot)) return;
      // (only when nothing of the step depends on the base: an absolute destination, a numeric --chown or none)
      const baseFree = ex(ins.dest).startsWith('/') && (!ins.chown || /^\d+(:\d+)?$/.test(ex(ins.chown)));
      if (ins.link && baseFree && await this.linkedLayer(st, ccCmd, slot)) return;
      // parents of the destination: new ones root-owned 0755 (the destination directory itself: --chown's owner)
      const parts = destRel.split('/').filter(Boolean);
      const dirParts = destIsDir ? parts : parts.slice(0, -1);
      const dirOwner = (i: number) => (destIsDir && i === parts.length ? owner : ROOT_OWNER);
      const dirs = ins.link
        ? dirParts.map((_, i) => ({ path: dirParts.slice(0, i + 1).join('/'), type: 'directory' as const, mode: 0o755, ...dirOwner(i + 1), mtime: new Date(0), size: 0 }))
        : await this.files.dirEntries(st.config, dirParts, dirOwner);
      const copied = new Set(entries.filter((e) => !e.archive).map((e) => e.path.replace(/\/+$/, '')));
      const layer = await this.d.layers.extract(packEntries([...dirs.filter((e) => !copied.has(e.path)), ...entries]));
      await this.commit(st, { ccCmd, layer });
    } finally {
      await rm(scratchDir, { recursive: true, force: true }).catch((e) => { this.d.log?.warn('removing the scratch files of a COPY/ADD step', { path: scratchDir, error: e }); });
      await src.release?.();
    }
  }

  /** The context as the sources' root. */
  private contextRoot(): { root: SourceRoot; release?: () => Promise<void> } {
    return { root: { dir: this.ctxDir, fromImage: false, ...(this.sums.size ? { contextSums: this.sums } : {}) } };
  }

  /** The image of `--from` (a stage, an index, or an image pulled if missing; fromRoot), mounted, as the sources' root. */
  private async imageRoot(imageId: Digest | null): Promise<{ root: SourceRoot; release?: () => Promise<void> }> {
    const mnt = await this.mountImage(imageId);
    return { root: { dir: mnt.path, fromImage: true }, release: mnt.release };
  }

  /**
   * COPY --link on another base: the layer an earlier build made with the very same step (same sources, flags
   * and destination: the same history line), whatever it was built on, is put on this base as it is, as BuildKit
   * rebases a linked layer instead of copying again. false when there is none (or it is gone).
   */
  private async linkedLayer(st: StageState, ccCmd: string[], slot: number): Promise<boolean> {
    if (this.opts.noCache) return false;
    const want = ccCmd.join(' ');
    for (const img of await this.d.images.list()) {
      const h = img.config.history ?? [];
      const last = h[h.length - 1];
      const diffs = img.config.rootfs?.diff_ids ?? [];
      if (!last || last.empty_layer || last.created_by !== want || !diffs.length) continue;
      let layer: ExtractedLayer;
      try {
        layer = await this.d.layers.extract(await this.d.layers.tarStream(chainOf(diffs)!));
      } catch { continue; /* removed meanwhile */ }
      if (layer.diffId !== diffs[diffs.length - 1]) { await this.d.layers.discard?.(layer); continue; }
      this.say(slot, ` ---> Using cache (the linked layer of ${short(img.id)})\n`);
      await this.commit(st, { ccCmd, layer });
      return true;
    }
    return false;
  }

  /** ADD of a git URL: the repository cloned (shallow) into the build's scratch space, removed after the step. */
  private async gitRoot(url: string, keepGitDir: boolean, line: string): Promise<{ root: SourceRoot; release: () => Promise<void> }> {
    const dir = join(this.scratchDir, `git-${newId().slice(0, 16)}`);
    await mkdir(this.scratchDir, { recursive: true, mode: 0o700 });
    const release = () => rm(dir, { recursive: true, force: true });
    try {
      const root = await fetchGit(url, dir, { keepGitDir });
      return { root: { dir: root, fromImage: true }, release };
    } catch (e) {
      await release();
      if (e instanceof InvalidParameterError) throw new InvalidParameterError(`${line}: ADD ${url}: ${e.message}`);
      throw e;
    }
  }

  /** The image a `--from` / `from=` names: an earlier stage (by name or index), else an image (pulled if missing). */
  private async fromRoot(ref: string, slot: number, stage: Stage): Promise<{ imageId: Digest | null }> {
    const byName = this.df.stages.find((x) => x.name === ref.toLowerCase() && x.index < stage.index);
    if (byName) return { imageId: await this.stageImages.get(byName.index)! };
    if (/^\d+$/.test(ref)) {
      if (Number(ref) >= stage.index) throw new InvalidParameterError(`invalid from flag value ${ref}: refers to current or later build stage`);
      return { imageId: await this.stageImages.get(Number(ref))! };
    }
    let img = await this.d.resolveImage(ref).catch(notFoundAs(null));
    if (!img) { await this.d.pull(ref, (m) => this.emit(slot, m), this.opts.registryAuth); img = await this.d.resolveImage(ref); }
    return { imageId: img.id };
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
    return {
      path,
      release: async () => {
        await this.d.layers.unmount(rw).catch((e) => { this.d.log?.warn('unmounting a build source', { layer: rw, error: e }); });
        await this.d.layers.removeRW(rw).catch((e) => { this.d.log?.warn('removing a build source RW layer', { layer: rw, error: e }); });
      },
    };
  }
}


// ---------------------------------------------------------------------------------------------- helpers

function round(ms: number): number { return Math.round(ms * 100) / 100; }

function chainList(ids: readonly string[]): Digest[] { return chainIds(ids as Digest[]); }
function chainOf(ids: readonly string[]): Digest | null {
  const c = chainList(ids);
  return c.length ? c[c.length - 1]! : null;
}


/**
 * `# syntax=`: this builder is itself the docker/dockerfile:1 frontend, so that image (any 1.x tag, -labs,
 * docker.io/ or a digest) is accepted; no other frontend image is fetched. `# check=` is accepted as it is.
 */
export function checkSyntax(df: Dockerfile): void {
  const s = df.directives.syntax;
  if (s === undefined || s === '') return;
  if (/^(docker\.io\/)?docker\/dockerfile(-upstream)?(:1(\.\d+){0,2}(-labs)?|:labs|:latest)?(@sha256:[0-9a-f]{64})?$/.test(s)) return;
  throw new InvalidParameterError(`dockerfile parse error line 1: unsupported syntax "${s}": this builder runs the docker/dockerfile:1 frontend itself and fetches no other frontend image (use "# syntax=docker/dockerfile:1" or remove the line)`);
}

/**
 * BuildKit's automatic platform ARGs: TARGET* from `docker build --platform` (else the build platform), BUILD*
 * the daemon's own platform ("linux/amd64", "linux/arm/v7"); an invalid --platform is reported by FROM.
 */
export function platformArgs(arch: string, requested?: string): Map<string, string> {
  const build = parsePlatform(`linux/${arch}`);
  let target = build;
  if (requested) { try { target = parsePlatform(requested); } catch { /* FROM names the error */ } }
  const m = new Map<string, string>();
  for (const [pre, p] of [['TARGET', target], ['BUILD', build]] as const) {
    m.set(`${pre}PLATFORM`, formatPlatform(p));
    m.set(`${pre}OS`, p.os);
    m.set(`${pre}ARCH`, p.architecture);
    m.set(`${pre}VARIANT`, p.variant ?? '');
  }
  return m;
}
