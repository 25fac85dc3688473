/** The daemon's effective configuration: flags over daemon.json over defaults. */
export interface DaemonConfig {
  /** All state lives here (default /var/lib/wharf). */
  dataRoot: string;
  /** Runtime state: sockets, pid files, bundles (default /run/wharf). */
  execRoot: string;
  /** Listen addresses: unix:///run/wharf/wharf.sock, tcp://127.0.0.1:2375 … */
  hosts: string[];
  pidfile: string;
  /** "overlay" | "vfs"; auto-detected when absent. */
  storageDriver?: string;
  /** Mirrors tried first for docker.io. */
  registryMirrors: string[];
  /** Registries spoken to over plain HTTP (host[:port] or CIDR). */
  insecureRegistries: string[];
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  /** -D / daemon.json "debug": debug logging (wins over logLevel, as in dockerd). */
  debug: boolean;
  /** --log-level / daemon.json "log-level": debug, info (default), warn, error or fatal. */
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** The OCI runtime containers run under: "runc" (default), "crun", or a path to a runc-compatible binary. */
  defaultRuntime: string;
  /** The log driver of containers that name none (daemon.json `log-driver`, default json-file). */
  logDriver: string;
  /** Its options (daemon.json `log-opts`), merged into a container's when it uses that driver. */
  logOpts: Record<string, string>;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  dataRoot: '/var/lib/wharf',
  execRoot: '/run/wharf',
  hosts: ['unix:///run/wharf/wharf.sock'],
  pidfile: '/run/wharf/wharfd.pid',
  registryMirrors: [],
  insecureRegistries: [],
  maxConcurrentDownloads: 3,
  maxConcurrentUploads: 5,
  debug: false,
  logLevel: 'info',
  defaultRuntime: 'runc',
  logDriver: 'json-file',
  logOpts: {},
};
