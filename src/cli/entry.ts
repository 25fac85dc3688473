/**
 * The entry of the bundled CLI (scripts/build-cli.mjs bundles from here; bin/wharf runs the bundle through
 * dist/cli/wharf.cjs): runs main.ts's main with the process's arguments and exits with its status.
 */
import { main } from './main.js';

void main(process.argv.slice(2)).then((code) => process.exit(code));
