/**
 * The stored columns of one incident (controlroom.incidents) as pg returns them: what the incidents API
 * (routes.ts) and the evidence bundle (evidence.ts) both read, declared once.
 */
export interface IncidentColumns {
  id: string;
  source: 'alertmanager' | 'grafana';
  group_key: string;
  severity: 'P1' | 'P2' | 'P3';
  alertnames: string[];
  paged_at: Date;
  ack_due_at: Date;
  resolve_due_at: Date;
  sla_time_zone: string;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  acknowledged_via: 'slack_button' | 'slack_resolve' | 'alert_resolved' | 'grafana' | null;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolved_via: 'alert_resolved' | 'slack_resolve' | null;
}
