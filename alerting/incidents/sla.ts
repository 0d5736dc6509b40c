import { planValue } from '../../core/plan-targets.ts';
import { addBusinessDays } from './business-days.ts';

export type Severity = 'P1' | 'P2' | 'P3';
export const SEVERITIES: readonly Severity[] = ['P1', 'P2', 'P3'];
export type SlaStage = 'acknowledge' | 'resolve';
export const SLA_STAGES: readonly SlaStage[] = ['acknowledge', 'resolve'];

export interface SlaDeadlines {
  acknowledgeBy: Date;
  resolveBy: Date;
}

/**
 * The plan's support SLAs (Phase 6, customer-facing): P1 acknowledged and resolved in under 4 hours, around
 * the clock; P2 in under 1 business day; P3 in under 3 business days (Mon–Fri in `timeZone`, see
 * business-days.ts). The plan gives one budget per severity for both stages, so both deadlines are equal
 * today; they are kept apart so a plan that splits them changes only this function. A stage is met when it
 * happens strictly before its deadline ("< 4 h"); at or after the deadline it is a breach.
 */
export function slaDeadlines(severity: Severity, pagedAt: Date, timeZone: string): SlaDeadlines {
  let due: Date;
  switch (severity) {
    case 'P1':
      due = new Date(pagedAt.getTime() + planValue('incident_p1_seconds') * 1000);
      break;
    case 'P2':
      due = addBusinessDays(pagedAt, planValue('incident_p2_business_days'), timeZone);
      break;
    case 'P3':
      due = addBusinessDays(pagedAt, planValue('incident_p3_business_days'), timeZone);
      break;
  }
  return { acknowledgeBy: due, resolveBy: due };
}
