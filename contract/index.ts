/**
 * The control API's contract: every request and response shape the service validates and the Grafana app
 * reads, as zod schemas. The service imports the schemas to validate; the plugin imports only types.
 */
export * from './common.ts';
export * from './bulk.ts';
export * from './evidence.ts';
export * from './failover.ts';
export * from './freeze.ts';
export * from './incidents.ts';
export * from './limits.ts';
export * from './pricing.ts';
export * from './rating.ts';
export * from './usage.ts';
