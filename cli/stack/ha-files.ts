import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../core/config.ts';
import { ALERTMANAGER_HA_CONFIG, haAlertmanagerConfig, haPrometheusConfig, PROMETHEUS_HA_CONFIG } from './config.ts';

/**
 * Writes the Prometheus and Alertmanager files of the HA shape (docker-compose.ha.yml) from the default ones
 * (cli/stack/config.ts). Run after editing provisioning/prometheus/prometheus.yml or
 * provisioning/alertmanager/alertmanager.yml: `node --import tsx cli/stack/ha-files.ts`.
 */
export const HA_FILES: ReadonlyArray<{ file: string; text: () => string }> = [
  { file: PROMETHEUS_HA_CONFIG, text: () => haPrometheusConfig() },
  { file: ALERTMANAGER_HA_CONFIG, text: () => haAlertmanagerConfig() },
];

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const { file, text } of HA_FILES) {
    fs.writeFileSync(file, text());
    console.log(`wrote ${path.relative(projectRoot, file)}`);
  }
}
