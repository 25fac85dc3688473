import { overlayDriver } from './overlay.js';
import { vfsDriver } from './vfs.js';
import type { DriverFactory } from './types.js';

/**
 * Every storage driver, in the order tried when none is configured (the first that works under the data root
 * wins). A new driver is one file exporting a DriverFactory, added here.
 */
export const DRIVERS: readonly DriverFactory[] = [overlayDriver, vfsDriver];

export function driverFactory(name: string): DriverFactory | undefined {
  return DRIVERS.find((d) => d.name === name);
}
