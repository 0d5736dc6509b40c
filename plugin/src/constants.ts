import pluginJson from './plugin.json';

export const PLUGIN_ID = pluginJson.id;
export const PLUGIN_BASE_URL = `/a/${pluginJson.id}`;
/** Grafana's proxy for this app's routes (plugin.json "routes"); it adds the shared secret and the user. */
export const API_BASE = `/api/plugin-proxy/${pluginJson.id}`;

export enum ROUTES {
  BulkRating = 'bulk-rating',
  Failover = 'failover',
  ReleaseFreeze = 'release-freeze',
  Pricing = 'pricing',
  Incidents = 'incidents',
}
