/**
 * node:http and node:https, loaded through `require`.
 *
 * An ESM `import … from 'node:http'` makes Node build the module's namespace from every property of the builtin,
 * which runs node:http's lazy getters `WebSocket`, `CloseEvent` and `MessageEvent` and so loads Node's bundled
 * undici: 14 MB more resident memory (7 anonymous, 8 of the binary's pages) in a process that uses none of them
 * (Node 24, measured: `import 'node:http'` 58 MB against `require('node:http')` 44 MB). node:https is only loaded
 * when asked for (TLS listeners), since it brings node:tls and OpenSSL's contexts with it.
 *
 * Type-only imports (`import type … from 'node:http'`) load nothing and stay as they are.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');

/** node:https, on first use. */
export function https(): typeof import('node:https') {
  return require('node:https') as typeof import('node:https');
}
