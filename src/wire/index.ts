/**
 * The Engine API's wire types (API 1.41): request parameters, request and response bodies, auth config, JSON
 * messages. Shared by the routes (`api/`), the engine modules that produce them and the client; this module
 * imports nothing, so every side can depend on it without a cycle. One file per API resource.
 */
export type * from './auth.js';
export type * from './images.js';
export type * from './build.js';
export type * from './containers.js';
export type * from './volumes.js';
export type * from './system.js';
export type * from './events.js';
export type * from './stats.js';
export type * from './networks.js';
