/**
 * Appends `items` to `target` one by one. `target.push(...items)` passes every item as an argument to one
 * call, and V8 throws `RangeError: Maximum call stack size exceeded` somewhere past 120,000 of them (Node 20
 * and 24 alike): a collector's catch-up step over a million usage_events of 100,000 tenants returns more
 * (tenant, feature, day) rows than that, and failed on every refresh (bench/exporter at BENCH_SCALE=10,
 * 2026-12-03). Use this wherever the number of items is set by data rather than by the code.
 */
export function appendAll<T>(target: T[], items: readonly T[]): T[] {
  for (const item of items) target.push(item);
  return target;
}
