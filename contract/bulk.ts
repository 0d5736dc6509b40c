import { z } from 'zod';
import { acceptingOldNames, CalendarDate, need, Period, Timestamp, UpgradeHint, Uuid } from './common.ts';

/** /api/bulk-rating and /api/companies. CSV uploads and CSV result downloads keep their snake_case columns. */

export const Company = z.object({ id: z.string(), name: z.string(), plan: z.string().nullable() });
export type Company = z.infer<typeof Company>;
export const CompaniesResponse = z.object({ companies: z.array(Company) });
export type CompaniesResponse = z.infer<typeof CompaniesResponse>;

/** A row the upload refused, by its line (CSV line, or 1-based index of a JSON lane). */
export const RowError = z.object({ line: z.number(), reason: z.string() });
export type RowError = z.infer<typeof RowError>;

export const JobStatus = z.enum(['queued', 'running', 'succeeded', 'failed']);
export type JobStatus = z.infer<typeof JobStatus>;

export const BulkJob = z.object({
  id: z.string(),
  companyId: z.string(),
  submittedBy: z.string(),
  status: JobStatus,
  source: z.enum(['csv', 'json']),
  filename: z.string().nullable(),
  lanesTotal: z.number(),
  lanesRated: z.number(),
  lanesFailed: z.number(),
  /** (rated + failed) / total, 0..1. */
  progress: z.number(),
  rejectedRows: z.number(),
  errors: z.array(RowError),
  agentTaskId: z.number(),
  error: z.string().nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
});
export type BulkJob = z.infer<typeof BulkJob>;

/** One lane of a JSON upload; each lane is checked on its own and a bad one is a row error, not a 400. */
export const BulkLaneInput = z.object({
  origin: z.string(),
  destination: z.string(),
  equipment: z.string(),
  pickupDate: CalendarDate,
});
export type BulkLaneInput = z.infer<typeof BulkLaneInput>;

/** POST /api/bulk-rating/jobs as application/json (`company_id` accepted). */
export const SubmitBulkJobBody = acceptingOldNames(
  z.object({
    companyId: Uuid,
    lanes: z
      .array(z.unknown(), need('a list of lanes {origin, destination, equipment, pickupDate}'))
      .min(1, 'must not be empty: send at least one lane'),
  }),
  { company_id: 'companyId' }
);
export type SubmitBulkJobBody = z.infer<typeof SubmitBulkJobBody>;

/** GET /api/bulk-rating/allowance: the plan meters bulk rating in jobs per period. */
export const BulkAllowance = z.object({
  companyId: z.string(),
  companyName: z.string(),
  plan: z.string().nullable(),
  /** Stripe-driven status of the account (active, trialing, grace, past_due, canceled). */
  billingStatus: z.string().nullable(),
  /** One unit of the meter is a submitted job (its lanes are bounded by BULK_MAX_LANES, not by the plan). */
  unit: z.literal('jobs'),
  period: Period,
  periodStart: CalendarDate,
  /** Jobs per period where the product blocks: -1 unlimited, 0 not in the plan. */
  limit: z.number(),
  /** Jobs per period the plan includes; overage is billed above it. -1 unlimited. */
  included: z.number(),
  used: z.number(),
  remaining: z.number().nullable(),
  /** The next plan that includes more bulk jobs; null when there is none. */
  upgrade: UpgradeHint.nullable(),
});
export type BulkAllowance = z.infer<typeof BulkAllowance>;

/** 202 a new job, 200 the job an earlier request with the same Idempotency-Key created. */
export const SubmitBulkJobResponse = z.object({
  job: BulkJob,
  lanesAccepted: z.number(),
  rejectedRows: z.number(),
  errors: z.array(RowError),
  errorsTruncated: z.boolean(),
  allowance: BulkAllowance,
});
export type SubmitBulkJobResponse = z.infer<typeof SubmitBulkJobResponse>;

export const BulkJobListResponse = z.object({ jobs: z.array(BulkJob) });
export type BulkJobListResponse = z.infer<typeof BulkJobListResponse>;
export const BulkJobResponse = z.object({ job: BulkJob });
export type BulkJobResponse = z.infer<typeof BulkJobResponse>;

export const RatedLane = z.object({
  line: z.number(),
  origin: z.string(),
  destination: z.string(),
  equipment: z.string(),
  pickupDate: CalendarDate,
  status: z.string(),
  miles: z.number().nullable(),
  linehaul: z.number().nullable(),
  fuel: z.number().nullable(),
  total: z.number().nullable(),
  perMile: z.number().nullable(),
  modelVersion: z.string().nullable(),
  flags: z.array(z.string()).nullable(),
  error: z.string().nullable(),
});
export type RatedLane = z.infer<typeof RatedLane>;

/** GET /api/bulk-rating/jobs/:id/results (?format=json, the default; ?format=csv streams the CSV). */
export const BulkResultsResponse = z.object({ job: BulkJob, offset: z.number(), lanes: z.array(RatedLane) });
export type BulkResultsResponse = z.infer<typeof BulkResultsResponse>;

/** The `details` of a 402/429 plan-limit refusal of a bulk job. */
export const LimitRefusalDetails = z.object({
  plan: z.string().nullable(),
  feature: z.string(),
  unit: z.string(),
  limit: z.number(),
  included: z.number(),
  used: z.number(),
  requested: z.number(),
  period: Period,
  periodStart: CalendarDate,
  upgrade: UpgradeHint.nullable(),
  /** Present when the hard limit refused the job: the "request increase" flow applies. */
  requestIncrease: z
    .object({ method: z.literal('POST'), path: z.string(), feature: z.string(), currentLimit: z.number() })
    .optional(),
});
export type LimitRefusalDetails = z.infer<typeof LimitRefusalDetails>;
