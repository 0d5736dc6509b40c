import { z } from 'zod';
import { alertingConfigShape } from '../alerting/config.ts';
import { billingConfigShape } from '../billing/config.ts';
import { bulkConfigShape } from '../control/bulk/config.ts';
import { failoverConfigShape } from '../control/failover/config.ts';
import { composeConfigSchema, parseConfig } from '../core/config.ts';
import { evidenceConfigShape } from '../evidence/config.ts';
import { exporterConfigIssues, exporterConfigShape } from '../exporter/config.ts';

/** `controlroom start`'s Prometheus and Alertmanager (cli/stack/): the CLI's own keys. */
const stackConfigShape = {
  /** Port of the Prometheus `start` runs (127.0.0.1 only). */
  PROMETHEUS_PORT: z.coerce.number().int().min(1).max(65535).default(9090),
  /** Port of the Alertmanager `start` runs (127.0.0.1 only). */
  ALERTMANAGER_PORT: z.coerce.number().int().min(1).max(65535).default(9093),
  /** Tests only: scrape and rule evaluation interval of `start`'s Prometheus instead of provisioning's 15 s. */
  STACK_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(60).optional(),
};

/**
 * The service's whole configuration: core's shared keys and every feature's own shape (each declared in
 * the feature's config.ts). Composed here, at the top, so that core/ never imports a feature.
 */
const schema = composeConfigSchema(
  {
    ...exporterConfigShape,
    ...alertingConfigShape,
    ...bulkConfigShape,
    ...failoverConfigShape,
    ...billingConfigShape,
    ...evidenceConfigShape,
    ...stackConfigShape,
  },
  [exporterConfigIssues]
);

export type Config = z.infer<typeof schema>;

/** Reads configuration from the environment; a bad value stops start-up with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(schema, env);
}

/** Every environment variable the service reads (the README's Configuration tables list each). */
export const CONFIG_KEYS: readonly string[] = Object.keys(schema.shape);
