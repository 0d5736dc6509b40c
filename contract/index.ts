/**
 * The control API's contract: every request and response shape the service validates and the Grafana app
 * reads, as zod schemas. The service imports the schemas to validate; the plugin imports only types.
 */
export * from './incidents.ts';
