import { Counter, Gauge, type Registry } from 'prom-client';
import { SnapshotMetric } from './snapshot-metric.ts';

/** Bucket bounds of tms_quote_request_duration_seconds; `le` is inclusive (counted with <= in SQL). */
export const QUOTE_LATENCY_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1, 2, 5] as const;

/**
 * Every metric the exporter publishes. The names and labels are a contract: dashboards, recording rules
 * and outside checks depend on them, so they are declared here and nowhere else.
 */
export function createExporterMetrics(registry: Registry) {
  const snapshot = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram') =>
    new SnapshotMetric(name, help, type).registerIn(registry);
  return {
    apiRequests: snapshot('tms_api_requests_total', 'TMS API requests seen, by region and status class.', 'counter'),
    quoteDuration: snapshot(
      'tms_quote_request_duration_seconds',
      'Rate quote response time; buckets count requests with response_time <= le.',
      'histogram'
    ),
    agentCompleted: snapshot(
      'tms_agent_tasks_completed_total',
      'Agent tasks that reached a terminal status, by function and status.',
      'counter'
    ),
    agentPending: snapshot(
      'tms_agent_tasks_pending',
      'Agent tasks queued and not yet picked up, by function.',
      'gauge'
    ),
    agentRunning: snapshot('tms_agent_tasks_running', 'Agent tasks currently running, by function.', 'gauge'),
    agentOldestPending: snapshot(
      'tms_agent_task_oldest_pending_age_seconds',
      'Age of the oldest queued agent task (0 when the queue is empty).',
      'gauge'
    ),
    usageRatio: snapshot(
      'tms_usage_ratio',
      'Usage / included amount (soft limit) in the current period: 1 = overage billed from here; tenants at or above 80% (capped, worst first).',
      'gauge'
    ),
    usageCompanies: snapshot(
      'tms_usage_companies',
      'Tenants per feature and band of usage / included amount (all tenants with an included amount).',
      'gauge'
    ),
    companyInfo: snapshot('tms_company_info', 'Name and plan of each tenant listed in tms_usage_ratio.', 'gauge'),
    companies: snapshot('tms_companies', 'Live tenants by plan.', 'gauge'),
    funnelEntered: snapshot('tms_funnel_entered', 'Entries into each conversion funnel, 30-day cohort.', 'gauge'),
    funnelConverted: snapshot('tms_funnel_converted', 'Conversions of each funnel, 30-day cohort.', 'gauge'),
    conversionRatio: snapshot('tms_conversion_ratio', 'Converted / entered, 30-day cohort.', 'gauge'),
    mrr: snapshot('tms_mrr_dollars', 'Monthly recurring revenue of paying accounts, in dollars.', 'gauge'),
    payingAccounts: snapshot('tms_paying_accounts', 'Accounts with a live paid subscription.', 'gauge'),
    arpa: snapshot('tms_arpa_dollars', 'Average revenue per paying account, dollars per month.', 'gauge'),
    // Executive scorecard (README "Metric contract": each is absent when its denominator is 0).
    mrrGrowth: snapshot('tms_mrr_growth_ratio', 'Net MRR growth: MRR now / MRR 30 days ago - 1.', 'gauge'),
    netRevenueRetention: snapshot(
      'tms_net_revenue_retention_ratio',
      'MRR now of the accounts paying 30 days ago / their MRR then (expansion, contraction and churn; no new accounts).',
      'gauge'
    ),
    logoChurn: snapshot(
      'tms_logo_churn_ratio',
      'Share of the accounts paying 30 days ago that pay nothing now.',
      'gauge'
    ),
    arpaBaseline: snapshot(
      'tms_arpa_baseline_dollars',
      'ARPA that tms_arpa_uplift_ratio compares with (configured, or at the start of the data).',
      'gauge'
    ),
    arpaUplift: snapshot('tms_arpa_uplift_ratio', 'ARPA now / ARPA baseline - 1.', 'gauge'),
    overageRevenueShare: snapshot(
      'tms_overage_revenue_share_ratio',
      'Overage billed through the Stripe meter over the last 30 days, in dollars / MRR now.',
      'gauge'
    ),
    quoteVariance: snapshot(
      'tms_quote_variance_ratio',
      'Mean |invoiced - quoted| / quoted over the last 30 days.',
      'gauge'
    ),
    directoryDocs: snapshot('tms_directory_docs', 'Carrier documents by kind and validity.', 'gauge'),
    regionUp: snapshot('tms_region_up', 'Region passes its health checks (1) or is unhealthy (0).', 'gauge'),
    regionActive: snapshot('tms_region_active', 'Region is the active (write) region.', 'gauge'),
    regionTrafficWeight: snapshot(
      'tms_region_traffic_weight',
      'Percent of traffic the router sends to the region.',
      'gauge'
    ),
    regionConsecutiveFailures: snapshot('tms_region_consecutive_failures', 'Health checks failed in a row.', 'gauge'),
    regionReplicationLag: snapshot(
      'tms_region_replication_lag_seconds',
      'Replication lag of the region, where a lag URL is configured.',
      'gauge'
    ),
    regionWriteFrozen: snapshot(
      'tms_region_write_frozen',
      'Writes are frozen for a cutover in progress (1) or not (0).',
      'gauge'
    ),
    regionCutoverInProgress: snapshot(
      'tms_region_cutover_in_progress',
      'A stepped region cutover is in progress (1) or not (0); the failover-window latency SLO counts only while it is 1.',
      'gauge'
    ),
    regionJobsPaused: snapshot(
      'tms_region_jobs_paused',
      'Background jobs are paused for a cutover in progress (1) or not (0).',
      'gauge'
    ),
    regionCheckDuration: snapshot(
      'tms_region_check_duration_seconds',
      'Round trip of the health checks of a region (its read latency), by region; buckets count checks with duration <= le.',
      'histogram'
    ),
    failoverObjectiveTarget: snapshot(
      'controlroom_failover_objective_target_seconds',
      'Recovery objective targets, by objective (rto, rpo): FAILOVER_RTO_TARGET_SECONDS and FAILOVER_RPO_TARGET_SECONDS.',
      'gauge'
    ),
    failoverLastDrillSeconds: snapshot(
      'controlroom_failover_last_drill_seconds',
      'RTO and RPO measured by the last finished drill or game day, by kind (drill, gameday) and objective (rto, rpo).',
      'gauge'
    ),
    failoverLastDrillPassed: snapshot(
      'controlroom_failover_last_drill_passed',
      'The last finished drill or game day met its targets (1) or not (0), by kind.',
      'gauge'
    ),
    failoverLastDrillTimestamp: snapshot(
      'controlroom_failover_last_drill_timestamp_seconds',
      'When the last drill or game day finished, by kind.',
      'gauge'
    ),
    failoverIntegrityFailed: snapshot(
      'controlroom_failover_integrity_check_failed',
      'Post-cutover integrity check of the last checked cutover (within 24 h) failed (1) or passed (0), by check.',
      'gauge'
    ),
    evidenceScheduleEnabled: snapshot(
      'controlroom_evidence_schedule_enabled',
      'The weekly evidence export is scheduled (1: EVIDENCE_DIR set and EVIDENCE_SCHEDULE not off) or not (0).',
      'gauge'
    ),
    evidenceOverdue: snapshot(
      'controlroom_evidence_overdue_seconds',
      'Time since the last scheduled evidence slot that has no verified bundle (0 when the last slot has one).',
      'gauge'
    ),
    evidenceLastRunFailed: snapshot(
      'controlroom_evidence_last_run_failed',
      'The latest evidence bundle attempt failed (1) or not (0).',
      'gauge'
    ),
    evidenceLastSuccess: snapshot(
      'controlroom_evidence_last_success_timestamp_seconds',
      'When the latest verified evidence bundle was finished.',
      'gauge'
    ),
    evidenceBundles: snapshot(
      'controlroom_evidence_bundles',
      'Evidence bundles by status (verified, failed, running, pruned).',
      'gauge'
    ),
    incidentTimeToAcknowledge: snapshot(
      'controlroom_incident_time_to_acknowledge_seconds',
      'Time from page to acknowledgement (Slack button, or the resolve when it came first) of acknowledged incidents, by severity; buckets count incidents with time <= le.',
      'histogram'
    ),
    incidentTimeToResolve: snapshot(
      'controlroom_incident_time_to_resolve_seconds',
      'Time from page to resolution (every alert of the group resolved, or Slack Resolve) of resolved incidents, by severity; buckets count incidents with time <= le.',
      'histogram'
    ),
    incidentSlaBreaches: snapshot(
      'controlroom_incident_sla_breaches_total',
      'Incidents that missed the plan budget of a stage (acknowledge, resolve), by severity: counted once the deadline passes, acknowledged or not.',
      'counter'
    ),
    incidentsOpen: snapshot(
      'controlroom_incidents_open',
      'Incidents (alert groups) paged and not yet resolved, by severity.',
      'gauge'
    ),
    incidentsPastSla: snapshot(
      'controlroom_incidents_past_sla',
      'Open incidents past their budget (unacknowledged past the acknowledge deadline, or unresolved past the resolve deadline; business days counted), by severity.',
      'gauge'
    ),
    releaseFrozen: snapshot(
      'controlroom_release_frozen',
      'Releases are frozen by the error-budget policy (1) or not (0).',
      'gauge'
    ),
    releaseFreezeReason: snapshot(
      'controlroom_release_freeze_reason',
      'Why the release freeze is in its state: 1 for the cause in force (none, error_budget, release_gate, active_region_down, slo_page, quiet_period, manual, override).',
      'gauge'
    ),
    releaseFreezeSince: snapshot(
      'controlroom_release_freeze_since_timestamp_seconds',
      'When the freeze last changed between frozen and not.',
      'gauge'
    ),
    pricingLanesRated: snapshot(
      'controlroom_pricing_lanes_rated_total',
      'Bulk lanes rated, by the model version that priced them and its arm of the A/B split (role: active, candidate).',
      'counter'
    ),
    pricingAnomalyLanes: snapshot(
      'controlroom_pricing_anomaly_lanes_total',
      "Rated lanes flagged anomaly: the candidate's price is more than 10% away from the active model's (role candidate only).",
      'counter'
    ),
    pricingNeedsReviewLanes: snapshot(
      'controlroom_pricing_needs_review_lanes_total',
      'Rated lanes flagged needs_review: the regional price cap broke the margin floor.',
      'counter'
    ),
    pricingQuotedDollars: snapshot(
      'controlroom_pricing_quoted_dollars_total',
      "Sum of the rated lanes' totals, in dollars.",
      'counter'
    ),
    pricingQuotedMiles: snapshot(
      'controlroom_pricing_quoted_miles_total',
      "Sum of the rated lanes' road miles; mean price per mile = quoted dollars / quoted miles.",
      'counter'
    ),
    pricingCandidateShare: snapshot(
      'controlroom_pricing_candidate_share_ratio',
      'Share of lanes the candidate pricing model takes (0.1 = 10%), labelled with its version; 0 without model_version when there is no candidate.',
      'gauge'
    ),
    pricingAnomalyAlertRatio: snapshot(
      'controlroom_pricing_anomaly_alert_ratio',
      'PRICING_ANOMALY_ALERT_RATIO: candidate anomaly share over an hour above which PricingCandidateAnomalies fires.',
      'gauge'
    ),
    pricingAnomalyAlertMinLanes: snapshot(
      'controlroom_pricing_anomaly_alert_min_lanes',
      'PRICING_ANOMALY_ALERT_MIN_LANES: least candidate lanes in the hour before PricingCandidateAnomalies judges the share.',
      'gauge'
    ),
    openIdGaps: new Gauge({
      name: 'controlroom_exporter_open_id_gaps',
      help: 'Id ranges passed without rows, still re-checked for late commits.',
      labelNames: ['collector'],
      registers: [registry],
    }),
    abandonedIdGaps: new Counter({
      name: 'controlroom_exporter_abandoned_id_gaps_total',
      help: 'Id gaps given up after the grace period (rolled back, or committed too late to count).',
      labelNames: ['collector'],
      registers: [registry],
    }),
  };
}

export type ExporterMetrics = ReturnType<typeof createExporterMetrics>;
