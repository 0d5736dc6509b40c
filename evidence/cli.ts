import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { loadSharedConfig, parseConfig, projectRoot } from '../core/config.ts';
import { createPool } from '../core/db.ts';
import { evidenceConfigShape } from './config.ts';
import { exportEvidence, type ExportResult } from './export.ts';
import { describeVerification, verifyEvidence } from './verify.ts';

export interface ExportCommandOptions {
  from: string;
  to: string;
  dashboard: string[];
  out: string;
  dashboardsDir?: string;
}

/** The evidence settings alone (verify needs no database): the same keys and messages as the service's schema. */
function evidenceSettings(env: NodeJS.ProcessEnv) {
  return parseConfig(z.object(evidenceConfigShape), env);
}

function parseInstant(value: string, flag: string): Date {
  // ISO 8601 with a date; a bare date is midnight UTC.
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) throw new Error(`${flag} must be an ISO 8601 timestamp, got "${value}"`);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`${flag} must be an ISO 8601 timestamp, got "${value}"`);
  return d;
}

/** `controlroom evidence export`: env DATABASE_URL, PROMETHEUS_URL, EVIDENCE_SIGNING_KEY. */
export async function runEvidenceExport(
  options: ExportCommandOptions,
  env: NodeJS.ProcessEnv = process.env
): Promise<ExportResult> {
  const config = loadSharedConfig(env);
  const settings = evidenceSettings(env);
  if (!settings.EVIDENCE_SIGNING_KEY)
    throw new Error('EVIDENCE_SIGNING_KEY is not set: evidence bundles must be signed (at least 32 characters)');
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is not set: evidence is read from an existing Postgres');
  if (!settings.PROMETHEUS_URL) throw new Error('PROMETHEUS_URL is not set: the dashboard snapshots need Prometheus');
  const pool = createPool(config.DATABASE_URL, {
    max: 2,
    statementTimeoutMs: Math.max(config.PG_STATEMENT_TIMEOUT_MS, 60_000),
    applicationName: 'controlroom-evidence',
  });
  try {
    return await exportEvidence({
      pool,
      prometheusUrl: settings.PROMETHEUS_URL,
      dashboardsDir: options.dashboardsDir ?? path.join(projectRoot, 'dashboards'),
      dashboards: options.dashboard,
      from: parseInstant(options.from, '--from'),
      to: parseInstant(options.to, '--to'),
      outDir: path.resolve(options.out),
      signingKey: settings.EVIDENCE_SIGNING_KEY,
    });
  } finally {
    await pool.end();
  }
}

/** `controlroom evidence verify DIR`: prints the differences; returns the exit code (0 ok, 1 not). */
export async function runEvidenceVerify(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
  out: (line: string) => void = (l) => console.log(l)
): Promise<number> {
  const settings = evidenceSettings(env);
  const result = await verifyEvidence(path.resolve(dir), settings.EVIDENCE_SIGNING_KEY);
  if (result.ok) {
    out(`evidence bundle ${dir}: ok (signature valid, every file matches the manifest)`);
    return 0;
  }
  out(`evidence bundle ${dir}: FAILED`);
  for (const line of describeVerification(result)) out(`  ${line}`);
  return 1;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Adds `evidence export` and `evidence verify` to the controlroom program. */
export function registerEvidenceCommands(program: Command): void {
  const evidence = program
    .command('evidence')
    .description('signed audit-evidence bundles (SOC 2 CC7.2, CC8.1, A1.2, A1.3)');
  evidence
    .command('export')
    .description('write a signed evidence bundle for a period (env DATABASE_URL, PROMETHEUS_URL, EVIDENCE_SIGNING_KEY)')
    .requiredOption('--from <iso>', 'start of the period (inclusive), ISO 8601')
    .requiredOption('--to <iso>', 'end of the period (exclusive), ISO 8601')
    .requiredOption('--dashboard <uid>', 'dashboard uid to snapshot (repeatable)', collect, [] as string[])
    .requiredOption('--out <dir>', 'new or empty output directory')
    .action(async (options: ExportCommandOptions) => {
      const result = await runEvidenceExport(options);
      console.log(JSON.stringify(result, null, 2));
    });
  evidence
    .command('verify')
    .description('check a bundle against its signed manifest (env EVIDENCE_SIGNING_KEY); exit 1 on any difference')
    .argument('<dir>', 'bundle directory')
    .action(async (dir: string) => {
      process.exitCode = await runEvidenceVerify(dir);
    });
}
