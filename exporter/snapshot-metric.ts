import type { Registry } from 'prom-client';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
  /** For histograms: the `_bucket` / `_sum` / `_count` series name. */
  metricName?: string;
}

/**
 * A metric whose whole value set is replaced at once by a background refresh. prom-client's own Counter and
 * Histogram only accept increments and single observations; the exporter's values are totals computed in SQL,
 * so it hands the registry complete snapshots instead. The registry formats them like any other metric.
 */
export class SnapshotMetric {
  readonly aggregator = 'sum';
  private samples: Sample[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType
  ) {}

  replace(samples: Sample[]): void {
    this.samples = samples;
  }

  current(): readonly Sample[] {
    return this.samples;
  }

  get() {
    return { name: this.name, help: this.help, type: this.type, values: this.samples, aggregator: this.aggregator };
  }

  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
    return this;
  }
}

/** Samples of one histogram series from cumulative bucket counts (bucket i counts observations <= bounds[i]). */
export function histogramSamples(
  name: string,
  bounds: readonly number[],
  labels: Labels,
  cumulative: readonly number[],
  count: number,
  sum: number
): Sample[] {
  const samples: Sample[] = bounds.map((le, i) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le: String(le) },
    value: cumulative[i] ?? 0,
  }));
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
  samples.push({ metricName: `${name}_sum`, labels, value: sum });
  samples.push({ metricName: `${name}_count`, labels, value: count });
  return samples;
}
