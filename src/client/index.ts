/**
 * Public surface of the client package.
 * @module
 */
export * from './client.js';
export * from './errors.js';
