/**
 * The Prometheus exporter: collectors (collectors/) refresh metric snapshots in the background and
 * /metrics only formats them (see README.md, "How the exporter stays fast").
 */
import type { Feature, FeatureDeps } from '../core/feature.ts';
import type { ExporterSettings } from './collectors/context.ts';
import { createExporter } from './exporter.ts';

export type { ExporterConfig } from './config.ts';
export { exporterConfigShape } from './config.ts';
export { createExporter, type Exporter } from './exporter.ts';

/** The exporter feature: its collectors register in the service's registry and refresh from start() to stop(). */
export function createExporterFeature({ pool, config, logger, registry }: FeatureDeps<ExporterSettings>): Feature {
  const exporter = createExporter(pool, config, logger, registry);
  return {
    name: 'exporter',
    async start() {
      exporter.runner.start();
    },
    stop: () => exporter.runner.stop(),
    refresh: () => exporter.runner.refreshAll(),
  };
}
