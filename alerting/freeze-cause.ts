/**
 * Every cause `GET /api/freeze` can report, strongest alert-driven cause first after manual/override.
 * Why releases are frozen (controlroom.freeze_state.cause and freeze_history.cause): decided by freeze/,
 * announced by slack/, reported by the exporter's release-freeze collector. The list itself is the API
 * contract's (the Grafana app reads the same one).
 */
export { FREEZE_CAUSES, type FreezeCause } from '@controlroom/contract';
