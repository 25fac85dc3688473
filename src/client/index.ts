export * from './client.js';
export * from './host.js';
export * from './auth.js';
export * from './jsonstream.js';
export type * from './types.js';
