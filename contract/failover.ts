import { z } from 'zod';
import { Timestamp } from './common.ts';

/**
 * /api/regions: regions, failover and traffic shifts.
 *
 * Not yet camelCase: this area's answers still use the snake_case names of its tables and of the JSON it
 * stores (cutover, event details), as `GET /api/regions/routing` does for the TMS router. The shapes
 * below are that contract as it stands, so the service and the Grafana app share it.
 */

const reason = z
  .string()
  .trim()
  .min(3, 'must be at least 3 characters: say why')
  .max(500, 'must be at most 500 characters');

/** POST /api/regions/failover. The service also checks the steps increase and end at 100. */
export const FailoverBody = z
  .object({
    target: z
      .string({ error: 'is required: name the region to fail over to' })
      .trim()
      .min(1, 'is required: name the region to fail over to'),
    steps: z
      .array(z.number().int('must be a whole percentage').min(1, 'must be at least 1').max(100, 'must be at most 100'))
      .min(1)
      .max(10, 'must have at most 10 steps')
      .optional(),
    force: z.boolean().optional(),
    reason,
  })
  .strict();
export type FailoverBody = z.infer<typeof FailoverBody>;

/** POST /api/regions/shift: weights by region name. */
export const ShiftBody = z
  .object({
    weights: z
      .record(
        z.string(),
        z.number().int('must be a whole percentage').min(0, 'must be at least 0').max(100, 'must be at most 100')
      )
      .refine((w) => Object.keys(w).length > 0, 'must name at least one region, e.g. {"us-west-2": 10}'),
    force: z.boolean().optional(),
    reason,
  })
  .strict();
export type ShiftBody = z.infer<typeof ShiftBody>;

/** POST /api/regions/cutover/abort and POST /api/regions/pin-back. */
export const ReasonBody = z.object({ reason }).strict();
export type ReasonBody = z.infer<typeof ReasonBody>;

const Weights = z.record(z.string(), z.number());

/** GET /api/regions/routing: what the TMS router follows. */
export const Routing = z.object({
  epoch: z.number(),
  write_frozen: z.boolean(),
  /** The TMS keeps background work paused while this is set (a cutover moving the write role). */
  jobs_paused: z.boolean(),
  active: z.string().nullable(),
  regions: z.array(
    z.object({ name: z.string(), base_url: z.string(), weight: z.number(), active: z.boolean(), healthy: z.boolean() })
  ),
});
export type Routing = z.infer<typeof Routing>;

export const RegionCheck = z.object({
  at: Timestamp,
  ok: z.boolean(),
  latency_ms: z.number().nullable(),
  status_code: z.number().nullable(),
  error: z.string().nullable(),
});
export type RegionCheck = z.infer<typeof RegionCheck>;

export const Region = z.object({
  name: z.string(),
  role: z.enum(['primary', 'secondary']),
  base_url: z.string(),
  traffic_weight: z.number(),
  active: z.boolean(),
  healthy: z.boolean(),
  last_check_at: Timestamp.nullable(),
  last_latency_ms: z.number().nullable(),
  last_error: z.string().nullable(),
  health_changed_at: Timestamp.nullable(),
  replication_lag_seconds: z.number().nullable(),
  checks: z.array(RegionCheck),
});
export type Region = z.infer<typeof Region>;

export const Cutover = z.object({
  event_id: z.string(),
  kind: z.enum(['manual', 'shift', 'drill']),
  from: z.string(),
  to: z.string().nullable(),
  steps: z.array(z.number()).nullable(),
  plan: z.array(Weights),
  applied: z.number(),
  next_at: Timestamp,
  /** pausing_jobs / draining_jobs: background jobs are being paused and drained before writes freeze. */
  phase: z.enum(['shifting', 'pausing_jobs', 'draining_jobs', 'draining']),
  jobs: z
    .object({
      paused_at: Timestamp,
      pause_confirmed: z.array(z.string()),
      depths: z.record(z.string(), z.number().nullable()),
      drained_at: Timestamp.nullable(),
      last_error: z.string().nullable(),
    })
    .nullable()
    .optional(),
  reason: z.string(),
  actor: z.string(),
  abort: z.object({ actor: z.string(), reason: z.string() }).nullable(),
});
export type Cutover = z.infer<typeof Cutover>;

export const Objectives = z.object({
  rto_seconds: z.number().nullable(),
  rpo_seconds: z.number().nullable(),
  rto_target_seconds: z.number(),
  rpo_target_seconds: z.number(),
  rto_met: z.boolean().nullable(),
  rpo_met: z.boolean().nullable(),
  passed: z.boolean().nullable(),
});
export type Objectives = z.infer<typeof Objectives>;

export const IntegrityCheck = z.object({
  check: z.string(),
  passed: z.boolean(),
  before: z.number().nullable(),
  after: z.number().nullable(),
  detail: z.string(),
});
export type IntegrityCheck = z.infer<typeof IntegrityCheck>;

export const FailoverEvent = z.object({
  id: z.string(),
  kind: z.enum(['auto', 'manual', 'shift', 'drill', 'pin_back']),
  from_region: z.string().nullable(),
  to_region: z.string().nullable(),
  steps: z.array(z.number()).nullable(),
  actor: z.string(),
  reason: z.string().nullable(),
  forced: z.boolean(),
  epoch: z.number(),
  started_at: Timestamp,
  finished_at: Timestamp.nullable(),
  outcome: z.enum(['in_progress', 'completed', 'aborted', 'superseded', 'failed']),
  /** What happened, as the engine recorded it; these keys are the ones the Grafana app reads. */
  details: z
    .looseObject({
      timeline: z
        .array(
          z.object({
            at: Timestamp,
            what: z.string(),
            region: z.string().optional(),
            reason: z.string().optional(),
            by: z.string().optional(),
          })
        )
        .optional(),
      objectives: Objectives.optional(),
      integrity: z
        .looseObject({
          status: z.enum(['waiting', 'pending', 'passed', 'failed', 'skipped']),
          checks: z.array(IntegrityCheck).optional(),
          due_at: Timestamp.optional(),
        })
        .optional(),
      abort_reason: z.string().optional(),
    })
    .optional(),
});
export type FailoverEvent = z.infer<typeof FailoverEvent>;

export const Drill = z.object({
  id: z.string(),
  kind: z.enum(['drill', 'gameday']).optional(),
  scenario: z.string().nullable().optional(),
  started_at: Timestamp,
  finished_at: Timestamp.nullable(),
  outcome: z.string().nullable(),
  rto_seconds: z.number().nullable(),
  rpo_seconds: z.number().nullable(),
  rto_target_seconds: z.number().nullable().optional(),
  rpo_target_seconds: z.number().nullable().optional(),
  rto_met: z.boolean().nullable().optional(),
  rpo_met: z.boolean().nullable().optional(),
  writes_lost: z.number().nullable(),
  actor: z.string(),
  failure: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
});
export type Drill = z.infer<typeof Drill>;

export const PinBackAdvice = z.object({
  needed: z.boolean(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  weight: z.number(),
});
export type PinBackAdvice = z.infer<typeof PinBackAdvice>;

/** GET /api/regions[?checks=N]. */
export const RegionsState = z.object({
  scope: z.string(),
  control: z.object({
    epoch: z.number(),
    lease_holder: z.string().nullable(),
    lease_expires_at: Timestamp.nullable().optional(),
    write_frozen: z.boolean(),
    frozen_since: Timestamp.nullable(),
    jobs_paused: z.boolean().optional(),
    resume_calls_owed: z
      .array(z.object({ region: z.string(), attempts: z.number(), last_error: z.string().nullable() }))
      .optional(),
    cutover: Cutover.nullable(),
  }),
  regions: z.array(Region),
  events: z.array(FailoverEvent),
  drills: z.array(Drill),
  /** The standby carries traffic while unhealthy and the active region is healthy. */
  pin_back: PinBackAdvice.optional(),
  settings: z.object({
    auto_failover: z.boolean(),
    step_seconds: z.number(),
    default_steps: z.array(z.number()),
    check_interval_seconds: z.number(),
    drain_timeout_seconds: z.number().optional(),
    rto_target_seconds: z.number().optional(),
    rpo_target_seconds: z.number().optional(),
  }),
});
export type RegionsState = z.infer<typeof RegionsState>;

/** POST answers: the event (and, for a failover, its plan). */
export const FailoverEventAnswer = z.object({ event: FailoverEvent });
export type FailoverEventAnswer = z.infer<typeof FailoverEventAnswer>;
