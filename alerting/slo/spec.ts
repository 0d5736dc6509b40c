import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { projectRoot } from '../../core/config.ts';

export const specPath = path.join(projectRoot, 'alerting', 'slos.yaml');

const promWindow = z.string().regex(/^\d+[mhd]$/, 'a Prometheus duration such as 30d');
const withWindow = z.string().refine((s) => s.includes('{{window}}'), 'must contain {{window}} where the range goes');

const sloSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'snake_case'),
    description: z.string().min(1),
    objective: z.number().gt(0).lt(1),
    period: promWindow,
    sli: z.union([
      z
        .object({
          events: z
            .object({
              errors: withWindow,
              total: withWindow,
              /** The error series may legitimately not exist yet (nothing ever failed): read that as 0 errors. */
              absent_errors_are_zero: z.boolean().default(false),
            })
            .strict(),
        })
        .strict(),
      z.object({ time_slice: z.object({ bad: z.string().min(1) }) }).strict(),
    ]),
    traffic_floor: z.number().positive().optional(),
    rolling_hour_alert: z.boolean().default(false),
  })
  .strict()
  .refine((slo) => !('events' in slo.sli) || slo.traffic_floor !== undefined, {
    message: 'an events SLI needs a traffic_floor (events per hour)',
  });

const specSchema = z
  .object({ version: z.literal(1), slos: z.array(sloSchema).min(1) })
  .strict()
  .refine((spec) => new Set(spec.slos.map((s) => s.name)).size === spec.slos.length, { message: 'SLO names must be unique' });

export type SloSpec = z.infer<typeof specSchema>;
export type Slo = SloSpec['slos'][number];

export function parseSpec(text: string): SloSpec {
  const parsed = specSchema.safeParse(YAML.parse(text));
  if (!parsed.success) {
    throw new Error(`invalid SLO spec: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export async function loadSpec(file = specPath): Promise<SloSpec> {
  return parseSpec(await fs.readFile(file, 'utf8'));
}
