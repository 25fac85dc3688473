/**
 * wharfd: the daemon entry point (bin/wharfd). Parses flags and daemon.json, takes the pid file, builds the
 * engine (daemon.ts), serves the Engine API on every -H address, and shuts down cleanly on SIGTERM/SIGINT.
 */
import type { Server } from 'node:http';
import { readFileSync, unlinkSync } from 'node:fs';
import { CommanderError } from 'commander';
import { HTTP_SERVER_OPTIONS, createRequestListener } from '../api/server.js';
import { ConfigError, parseDaemonArgs, parseHost, type WharfdOptions } from './config.js';
import { listenTcp, listenUnix, openDirToGroup, writePidfile } from './listen.js';
import { dirname, resolve as resolvePath } from 'node:path';
import { daemonLogger } from './log.js';
import { IdleTrimmer } from './memory.js';
import { http, https } from '../lib/nodehttp.js';

const VERSION = '0.1.0';
/** How long in-flight requests may finish after a shutdown signal before their connections are cut. */
const DRAIN_MS = 2000;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

export async function main(argv: string[]): Promise<void> {
  let opts: WharfdOptions;
  try {
    opts = parseDaemonArgs(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    if (e instanceof ConfigError) fail(e.message);
    throw e;
  }
  if (opts.showVersion) {
    process.stdout.write(`Wharf version ${VERSION}\n`);
    return;
  }
  if (opts.validate) {
    process.stdout.write('configuration OK\n');
    return;
  }

  const cfg = opts.config;
  const log = daemonLogger(cfg);
  if (opts.configFile) log.debug(`using config file ${opts.configFile}`);

  let removePidfile: () => void;
  try {
    removePidfile = writePidfile(cfg.pidfile, log);
  } catch (e) {
    fail(`failed to start daemon: ${(e as Error).message}`);
  }
  process.on('exit', () => removePidfile());

  const servers: Server[] = [];
  /** Unix sockets this process created (only those are removed at exit). */
  const sockets: string[] = [];
  let daemon: { close(): Promise<void> } | undefined;
  // gives freed malloc memory back once the daemon is quiet after work (src/daemon/memory.ts)
  const trimmer = new IdleTrimmer(log.child({ module: 'memory' })).start();

  // Installed before the engine opens, so that a signal during startup still removes the pid file.
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.info(`Processing signal '${signal}' again: closing all connections`);
      for (const s of servers) s.closeAllConnections();
      return;
    }
    stopping = true;
    trimmer.close();
    log.info(`Processing signal '${signal === 'SIGTERM' ? 'terminated' : 'interrupt'}'`);
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // Keep-alive connections become idle as their in-flight request finishes: close them as they do.
    const idle = setInterval(() => { for (const s of servers) s.closeIdleConnections(); }, 50);
    for (const s of servers) s.closeIdleConnections();
    const timer = setTimeout(() => { for (const s of servers) s.closeAllConnections(); }, DRAIN_MS);
    timer.unref();
    await closed;
    clearTimeout(timer);
    clearInterval(idle);
    for (const p of sockets) { try { unlinkSync(p); } catch (e) { log.unlessGone('removing the API socket', { path: p })(e); } }
    try { await daemon?.close(); } catch (e) { log.error('closing the engine', { error: e }); }
    removePidfile();
    log.info('Daemon shutdown complete');
    process.exit(0);
  };
  process.on('SIGTERM', (s) => { void shutdown(s); });
  process.on('SIGINT', (s) => { void shutdown(s); });

  try {
    const { createDaemon, WHARF_VERSION } = await import('./daemon.js');
    const d = await createDaemon(cfg, log);
    daemon = d;
    const listener = createRequestListener(d.backends, { serverVersion: WHARF_VERSION, log: log.child({ module: 'api' }), extraRoutes: d.extraRoutes });
    for (const h of cfg.hosts) {
      const addr = parseHost(h);
      if (addr.kind === 'unix') {
        const server = http.createServer(HTTP_SERVER_OPTIONS, listener);
        servers.push(server);
        await listenUnix(server, addr.path, opts.group);
        sockets.push(addr.path);
        // a socket inside the (0700) exec root: the socket's group must be able to reach it
        if (resolvePath(dirname(addr.path)) === resolvePath(cfg.execRoot)) openDirToGroup(cfg.execRoot, opts.group);
        log.info(`API listen on ${addr.path}`);
      } else {
        const { tls } = opts;
        const server = https().createServer({
          ...HTTP_SERVER_OPTIONS,
          cert: readFileSync(tls.cert!),
          key: readFileSync(tls.key!),
          ca: readFileSync(tls.cacert!),
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
        }, listener);
        servers.push(server);
        await listenTcp(server, addr.host, addr.port);
        log.info(`API listen on ${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`);
      }
    }
  } catch (e) {
    for (const s of servers) s.close();
    await daemon?.close().catch(log.onError('closing the engine after a failed start'));
    fail(`failed to start daemon: ${(e as Error).message}`);
  }
  // what start-up left, collected now rather than at the first quiet tick (src/daemon/memory.ts)
  setImmediate(() => {
    const t0 = performance.now();
    trimmer.afterStart();
    log.debug('start-up garbage collected', { ms: Math.round(performance.now() - t0) });
  });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  fail(`failed to start daemon: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
});
