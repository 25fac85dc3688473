/**
 * The images scenarios (images.test.ts) once more on the vfs storage driver (`wharfd -s vfs`), where every
 * layer is a full copy of its chain and inspect reports no GraphDriver.Data.
 */
process.env.WHARF_TEST_DRIVER = 'vfs';
await import('./images.test.js');
