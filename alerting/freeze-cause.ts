/**
 * Every cause `GET /api/freeze` can report, strongest alert-driven cause first after manual/override.
 * Why releases are frozen (controlroom.freeze_state.cause and freeze_history.cause): decided by freeze/,
 * announced by slack/, reported by the exporter's release-freeze collector.
 */
export const FREEZE_CAUSES = ['none', 'active_region_down', 'release_gate', 'error_budget', 'slo_page', 'quiet_period', 'manual', 'override'] as const;
export type FreezeCause = (typeof FREEZE_CAUSES)[number];
