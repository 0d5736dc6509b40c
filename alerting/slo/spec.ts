import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { projectRoot } from '../../core/config.ts';
import { isPlanTargetKey, planValue, plainNumber } from '../../core/plan-targets.ts';

export const specPath = path.join(projectRoot, 'alerting', 'slos.yaml');

const promWindow = z.string().regex(/^\d+[mhd]$/, 'a Prometheus duration such as 30d');
const withWindow = z.string().refine((s) => s.includes('{{window}}'), 'must contain {{window}} where the range goes');

const PLAN_REF = /^plan\.([a-z0-9_]+)$/;
const PLAN_PLACEHOLDER = /\{\{plan\.([a-z0-9_]+)\}\}/g;

/**
 * A number, or `plan.<key>`: the value of that entry of core/plan-targets.ts, so the plan's number lives
 * in one place. An unknown key is refused (it must never read as some default).
 */
const planNumber = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const key = PLAN_REF.exec(v)?.[1];
  if (!key || !isPlanTargetKey(key)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v}" is neither a number nor plan.<key> of a target in core/plan-targets.ts`,
    });
    return z.NEVER;
  }
  return planValue(key);
});

/** PromQL in which `{{plan.<key>}}` stands for a plan target's value (e.g. a histogram bucket bound). */
const promql = z
  .string()
  .min(1)
  .transform((expr, ctx) => {
    const unknown = [...expr.matchAll(PLAN_PLACEHOLDER)].map((m) => m[1]!).filter((k) => !isPlanTargetKey(k));
    if (unknown.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown plan target ${unknown.map((k) => `{{plan.${k}}}`).join(', ')}`,
      });
      return z.NEVER;
    }
    return expr.replace(PLAN_PLACEHOLDER, (_m, key: string) => plainNumber(planValue(key)));
  });
const promqlWithWindow = withWindow.pipe(promql);

const sloSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'snake_case'),
    description: z.string().min(1),
    objective: planNumber.pipe(z.number().gt(0).lt(1)),
    period: promWindow,
    sli: z.union([
      z
        .object({
          events: z
            .object({
              errors: promqlWithWindow,
              total: promqlWithWindow,
              /** The error series may legitimately not exist yet (nothing ever failed): read that as 0 errors. */
              absent_errors_are_zero: z.boolean().default(false),
              /**
               * Count events only while this 0/1 expression is 1 (e.g. a region cutover in progress). The
               * rates are then taken over `step` at every evaluation and kept only while the condition
               * holds; each window sums those samples, so time outside the condition neither helps nor hurts.
               */
              during: z
                .object({ condition: promql, step: promWindow.default('1m') })
                .strict()
                .optional(),
            })
            .strict(),
        })
        .strict(),
      z.object({ time_slice: z.object({ bad: promql }) }).strict(),
    ]),
    traffic_floor: z.number().positive().optional(),
    rolling_hour_alert: z.boolean().default(false),
    /**
     * A release gate on the last hour: below `min_good_ratio` (over the traffic floor) deploys are blocked,
     * and so they are while `unreadable` (a PromQL expression with a result when the SLI cannot be read)
     * holds: the gate fails closed.
     */
    release_gate: z
      .object({
        min_good_ratio: planNumber.pipe(z.number().gt(0).lt(1)),
        unreadable: promql,
        unreadable_for: promWindow.default('2m'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((slo) => !('events' in slo.sli) || slo.traffic_floor !== undefined, {
    message: 'an events SLI needs a traffic_floor (events per hour)',
  })
  .refine((slo) => !slo.release_gate || 'events' in slo.sli, {
    message: 'a release_gate needs an events SLI',
    path: ['release_gate'],
  });

const specSchema = z
  .object({ version: z.literal(1), slos: z.array(sloSchema).min(1) })
  .strict()
  .refine((spec) => new Set(spec.slos.map((s) => s.name)).size === spec.slos.length, {
    message: 'SLO names must be unique',
  });

export type SloSpec = z.infer<typeof specSchema>;
export type Slo = SloSpec['slos'][number];

type Issue = z.core.$ZodIssue;

/**
 * An SLI is one of two shapes, so zod reports a mistake inside one as "Invalid input" of the union: name
 * the mistake in the branch that got furthest (its deepest issue) instead.
 */
function describe(issues: readonly Issue[], prefix: PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const at = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const depth = (branch: Issue[]) => Math.max(...branch.map((i) => i.path.length));
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]!;
      return describe(best, at);
    }
    return [`${at.map(String).join('.')}: ${issue.message}`];
  });
}

export function parseSpec(text: string): SloSpec {
  const parsed = specSchema.safeParse(YAML.parse(text));
  if (!parsed.success) throw new Error(`invalid SLO spec: ${describe(parsed.error.issues).join('; ')}`);
  return parsed.data;
}

export async function loadSpec(file = specPath): Promise<SloSpec> {
  return parseSpec(await fs.readFile(file, 'utf8'));
}
