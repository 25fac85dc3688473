/** The crash scenarios (crash.test.ts) once more on the vfs storage driver (`wharfd -s vfs`). */
process.env.WHARF_TEST_DRIVER = 'vfs';
await import('./crash.test.js');
