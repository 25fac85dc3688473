export * from './spec.js';
export * from './runc.js';
export * from './logs.js';
