import fs from 'node:fs/promises';
import path from 'node:path';
import { projectRoot } from '../core/config.ts';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { executiveDashboard } from './src/executive.ts';
import { incidentsDashboard } from './src/incidents.ts';
import { pricingDashboard } from './src/pricing.ts';
import { regionsDashboard } from './src/regions.ts';
import { selfDashboard } from './src/self.ts';
import { sloDashboard } from './src/slo.ts';
import { usageDashboard } from './src/usage.ts';

/**
 * The committed dashboards/*.json are generated from the TypeScript in dashboards/src/ by
 * `npm run dashboards:generate`; Grafana's provisioning and the evidence export read the JSON, and
 * dashboards/generate.test.ts fails when a committed file differs from what the code builds.
 */
export const dashboardsDir = path.join(projectRoot, 'dashboards');

/** File name → builder; the file names are what provisioning mounts and the evidence export searches. */
export const DASHBOARDS: Readonly<Record<string, () => Dashboard>> = {
  'executive.json': executiveDashboard,
  'slo.json': sloDashboard,
  'usage.json': usageDashboard,
  'regions.json': regionsDashboard,
  'self.json': selfDashboard,
  'incidents.json': incidentsDashboard,
  'pricing.json': pricingDashboard,
};

/** The file text of a dashboard: 2-space JSON with a final newline (functions the SDK attaches are dropped). */
export const renderDashboard = (build: () => Dashboard) => `${JSON.stringify(build(), null, 2)}\n`;

export async function writeDashboards(): Promise<string[]> {
  const written: string[] = [];
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    const target = path.join(dashboardsDir, file);
    await fs.writeFile(target, renderDashboard(build));
    written.push(target);
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  writeDashboards().then((files) => {
    for (const file of files) console.log(`wrote ${path.relative(projectRoot, file)}`);
  });
}
