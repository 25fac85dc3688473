/** `npm run bench`: every benchmark in turn (each compares wharfd with dockerd in the same run). */
const which = process.argv[2] ?? 'all';
if (which === 'all' || which === 'pull') await import('./pull.js');
if (which === 'all' || which === 'distribution') await import('./distribution.js');
if (which === 'all' || which === 'containers') await import('./containers.js');
if (which === 'all' || which === 'start') await import('./start.js');
if (which === 'all' || which === 'cp') await import('./cp.js');
if (which === 'all' || which === 'lifecycle') await import('./lifecycle.js');
if (which === 'all' || which === 'build') await import('./build.js');
if (which === 'all' || which === 'buildmount') await import('./build-mounts.js');
if (which === 'buildprofile') await import('./build-profile.js');
if (which === 'all' || which === 'cli') await import('./cli.js');
if (which === 'all' || which === 'memory') await import('./memory.js');
if (which === 'all' || which === 'registry') { process.env.WHARF_BENCH_MAIN = 'registry'; await import('./registry.js'); }
if (which === 'registry-s3') { process.env.WHARF_BENCH_MAIN = 'registry-s3'; await import('./registry.js'); }
