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
 *
 * Its text is formatted once per snapshot, not once per scrape (`exposition`): a scrape between two
 * refreshes reuses it, so /metrics costs about the same with 1,000 tenant series as with none.
 */
export class SnapshotMetric {
  readonly aggregator = 'sum';
  private samples: Sample[] = [];
  /** The text of `samples` as `registry` formats it; dropped by every replace. */
  private rendered: { samples: readonly Sample[]; registry: Registry; text: string } | null = null;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType
  ) {}

  replace(samples: Sample[]): void {
    this.samples = samples;
    this.rendered = null;
  }

  /**
   * This metric's exposition text, formatted by prom-client's own formatter (so byte for byte what
   * `registry.metrics()` would print) and kept until the next replace. A replace that lands while the
   * text is being formatted is not lost: the text is kept only if it still belongs to the current samples.
   */
  async exposition(registry: Registry): Promise<string> {
    const cached = this.rendered;
    if (cached && cached.samples === this.samples && cached.registry === registry) return cached.text;
    const samples = this.samples;
    const text = await registry.getSingleMetricAsString(this.name);
    if (this.samples === samples) this.rendered = { samples, registry, text };
    return text;
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
