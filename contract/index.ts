/**
 * The control API's contract: every request and response shape the service validates and the Grafana app
 * reads, as zod schemas. The service imports the schemas to validate; the plugin imports only types.
 */
// `.js` paths: the plugin's tsconfig (which type-checks these files through its type-only imports) does
// not allow `.ts` import paths; NodeNext and tsx resolve `./x.js` to x.ts.
export * from './incidents.js';
export * from './pricing.js';
