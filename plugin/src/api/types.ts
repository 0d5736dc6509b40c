/** The Control Room API's answers, as the pages use them (see the service's README for the full contract). */

export interface Company {
  id: string;
  name: string;
  plan: string | null;
}

export interface RowError {
  line: number;
  reason: string;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface BulkJob {
  id: string;
  company_id: string;
  submitted_by: string;
  status: JobStatus | string;
  source: 'csv' | 'json';
  filename: string | null;
  lanes_total: number;
  lanes_rated: number;
  lanes_failed: number;
  progress: number;
  rejected_rows: number;
  errors: RowError[];
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface SubmitResult {
  job: BulkJob;
  lanes_accepted: number;
  rejected_rows: number;
  errors: RowError[];
  errors_truncated: boolean;
}

/** The next plan that includes more of a feature (the upgrade hint); hardLimit -1 = unlimited. */
export interface UpgradeHint {
  plan: string;
  name: string;
  hardLimit: number;
  softLimit: number;
  period: 'day' | 'month';
  priceMonthly: number;
}

/** GET bulk-rating/allowance: the plan meters bulk rating in jobs per period. */
export interface Allowance {
  companyId: string;
  companyName: string;
  plan: string | null;
  billingStatus: string | null;
  unit: string;
  period: 'day' | 'month';
  periodStart: string;
  /** Where the product blocks: -1 unlimited, 0 not in the plan. */
  limit: number;
  /** What the plan includes (overage is billed above it): -1 unlimited. */
  included: number;
  used: number;
  remaining: number | null;
  upgrade: UpgradeHint | null;
}

/** The details of a 402/429 plan-limit refusal of a bulk job. */
export interface LimitRefusalDetails {
  plan: string | null;
  feature: string;
  unit: string;
  limit: number;
  included: number;
  used: number;
  requested: number;
  period: 'day' | 'month';
  period_start: string;
  upgrade: UpgradeHint | null;
  /** Present when the hard limit refused the job: the "request increase" flow applies. */
  request_increase?: { method: 'POST'; path: string; feature: string; current_limit: number };
}

/** POST limits/requests answers with the request (201 new, 200 the same request made before). */
export interface LimitIncreaseRequest {
  id: number;
  company_id: string;
  feature: string;
  unit: string;
  period_start: string;
  current_limit: number;
  requested_limit: number;
  reason: string;
  requested_by: string;
  agent_task_id: number;
  created_at: string;
}

export interface LimitRequestAnswer {
  request: LimitIncreaseRequest;
  duplicate: boolean;
  upgrade: UpgradeHint | null;
}

export interface FeatureUsage {
  feature: string;
  unit?: string;
  period: string;
  period_start: string;
  period_end: string;
  used: number;
  soft_limit: number | null;
  hard_limit: number | null;
  remaining: number | null;
  /** Percent of the included amount (soft limit): what the 80/90/100% warnings measure. */
  percent: number | null;
  overage: number;
  blocked: boolean;
}

export interface Usage {
  company_id: string;
  company_name: string;
  plan: string | null;
  billing_status: string | null;
  features: FeatureUsage[];
}

export interface RatedLane {
  line: number;
  origin: string;
  destination: string;
  equipment: string;
  pickup_date: string;
  status: string;
  miles: number | null;
  linehaul: number | null;
  fuel: number | null;
  total: number | null;
  per_mile: number | null;
  model_version: string | null;
  flags: string[] | null;
  error: string | null;
}

export interface RegionCheck {
  at: string;
  ok: boolean;
  latency_ms: number | null;
  status_code: number | null;
  error: string | null;
}

export interface Region {
  name: string;
  role: 'primary' | 'secondary' | string;
  base_url: string;
  traffic_weight: number;
  active: boolean;
  healthy: boolean;
  last_check_at: string | null;
  last_latency_ms: number | null;
  last_error: string | null;
  health_changed_at: string | null;
  replication_lag_seconds: number | null;
  checks: RegionCheck[];
}

export interface Cutover {
  event_id: string;
  kind: 'manual' | 'shift' | 'drill';
  from: string;
  to: string | null;
  steps: number[] | null;
  plan: Array<Record<string, number>>;
  applied: number;
  next_at: string;
  /** pausing_jobs / draining_jobs: background jobs are being paused and drained before writes freeze. */
  phase: 'shifting' | 'pausing_jobs' | 'draining_jobs' | 'draining';
  jobs?: {
    paused_at: string;
    pause_confirmed: string[];
    depths: Record<string, number | null>;
    drained_at: string | null;
    last_error: string | null;
  } | null;
  reason: string;
  actor: string;
  abort: { actor: string; reason: string } | null;
}

export interface Objectives {
  rto_seconds: number | null;
  rpo_seconds: number | null;
  rto_target_seconds: number;
  rpo_target_seconds: number;
  rto_met: boolean | null;
  rpo_met: boolean | null;
  passed: boolean | null;
}

export interface IntegrityCheck {
  check: string;
  passed: boolean;
  before: number | null;
  after: number | null;
  detail: string;
}

export interface FailoverEvent {
  id: string;
  kind: 'auto' | 'manual' | 'shift' | 'drill' | 'pin_back';
  from_region: string | null;
  to_region: string | null;
  steps: number[] | null;
  actor: string;
  reason: string | null;
  forced: boolean;
  epoch: number;
  started_at: string;
  finished_at: string | null;
  outcome: string;
  details?: {
    timeline?: Array<{ at: string; what: string; region?: string; reason?: string; by?: string }>;
    objectives?: Objectives;
    integrity?: {
      status: 'waiting' | 'pending' | 'passed' | 'failed' | 'skipped';
      checks?: IntegrityCheck[];
      due_at?: string;
    };
    abort_reason?: string;
  };
}

export interface Drill {
  id: string;
  kind?: 'drill' | 'gameday';
  scenario?: string | null;
  started_at: string;
  finished_at: string | null;
  outcome: string | null;
  rto_seconds: number | null;
  rpo_seconds: number | null;
  rto_target_seconds?: number | null;
  rpo_target_seconds?: number | null;
  rto_met?: boolean | null;
  rpo_met?: boolean | null;
  writes_lost: number | null;
  actor: string;
  failure?: string | null;
  error?: string | null;
}

export interface RegionsState {
  scope: string;
  control: {
    epoch: number;
    lease_holder: string | null;
    write_frozen: boolean;
    frozen_since: string | null;
    jobs_paused?: boolean;
    resume_calls_owed?: Array<{ region: string; attempts: number; last_error: string | null }>;
    cutover: Cutover | null;
  };
  regions: Region[];
  events: FailoverEvent[];
  drills: Drill[];
  /** The standby carries traffic while unhealthy and the active region is healthy. */
  pin_back?: { needed: boolean; from: string | null; to: string | null; weight: number };
  settings: {
    auto_failover: boolean;
    step_seconds: number;
    default_steps: number[];
    check_interval_seconds: number;
    drain_timeout_seconds?: number;
    rto_target_seconds?: number;
    rpo_target_seconds?: number;
  };
}

export interface FreezeAction {
  id: string;
  kind: 'freeze' | 'override';
  reason: string;
  actor: string;
  created_at: string;
  expires_at: string | null;
}

export interface FreezeTrigger {
  alertname: string;
  slo: string | null;
  severity: string | null;
  firing: boolean;
  started_at: string;
  resolved_at: string | null;
  labels: Record<string, string>;
}

export interface FreezeState {
  frozen: boolean;
  cause: 'none' | 'active_region_down' | 'release_gate' | 'error_budget' | 'slo_page' | 'quiet_period' | 'manual' | 'override';
  reason: string;
  since: string | null;
  triggers: FreezeTrigger[];
  manual_freezes: FreezeAction[];
  override: FreezeAction | null;
  next_change_at: string | null;
  quiet_period_seconds: number;
}
