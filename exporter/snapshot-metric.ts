import { Registry } from 'prom-client';

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
 * Its text is formatted when it is replaced, in the refresh, not at a scrape (`exposition`, `section`): a
 * scrape between two refreshes reuses it, so /metrics costs about the same with 1,000 tenant series as with
 * none, and the scrape after a refresh does not pay for formatting (prom-client's formatter took ~8 ms for
 * the 1,000 series of tms_usage_ratio and tms_company_info; format() here writes the same bytes directly).
 * A replace with the same samples (most refreshes: a collector whose values did not change) keeps the text.
 */
export class SnapshotMetric {
  readonly aggregator = 'sum';
  private samples: Sample[] = [];
  /** The text of `samples` in the Prometheus text format, as prom-client prints it with no default labels. */
  private text: string;
  /** `text` and the blank line after it, encoded: this metric's part of a /metrics body. */
  private encoded: Buffer;
  /** For a registry whose own formatting differs (default labels): its text of `samples`, kept per replace. */
  private rendered: { samples: readonly Sample[]; registry: Registry; text: string; encoded: Buffer } | null = null;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType
  ) {
    this.text = format(name, help, type, this.samples);
    this.encoded = Buffer.from(`${this.text}\n\n`);
  }

  replace(samples: Sample[]): void {
    if (sameSamples(this.samples, samples)) return;
    this.samples = samples;
    this.rendered = null;
    this.text = format(this.name, this.help, this.type, samples);
    this.encoded = Buffer.from(`${this.text}\n\n`);
  }

  /**
   * This metric's exposition text: byte for byte what `registry.metrics()` would print for it. Formatted at
   * replace for a registry without default labels (the exporter's); for one with default labels, formatted
   * by prom-client's own formatter and kept until the next replace. A replace that lands while that text is
   * being formatted is not lost: the text is kept only if it still belongs to the current samples.
   */
  async exposition(registry: Registry): Promise<string> {
    return plainTextRegistry(registry) ? this.text : (await this.renderedBy(registry)).text;
  }

  /** exposition() followed by the blank line that separates it from the next metric, encoded (UTF-8). */
  async section(registry: Registry): Promise<Buffer> {
    return plainTextRegistry(registry) ? this.encoded : (await this.renderedBy(registry)).encoded;
  }

  private async renderedBy(registry: Registry): Promise<{ text: string; encoded: Buffer }> {
    const cached = this.rendered;
    if (cached && cached.samples === this.samples && cached.registry === registry) return cached;
    const samples = this.samples;
    const text = await registry.getSingleMetricAsString(this.name);
    const rendered = { samples, registry, text, encoded: Buffer.from(`${text}\n\n`) };
    if (this.samples === samples) this.rendered = rendered;
    return rendered;
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

/**
 * The registry formats a metric the way format() does: Prometheus text, no default labels. prom-client has no
 * getter for its default labels; an unknown shape counts as "has some", so such a registry is formatted by
 * prom-client itself (right, only slower).
 */
export function plainTextRegistry(registry: Registry): boolean {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) return false;
  const defaults = (registry as unknown as { _defaultLabels?: unknown })._defaultLabels;
  return typeof defaults === 'object' && defaults !== null && Object.keys(defaults).length === 0;
}

/** Same series, values and label order: the same text. */
function sameSamples(a: readonly Sample[], b: readonly Sample[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Object.is(x.value, y.value) || x.metricName !== y.metricName) return false;
    const xKeys = Object.keys(x.labels);
    const yKeys = Object.keys(y.labels);
    if (xKeys.length !== yKeys.length) return false;
    for (let k = 0; k < xKeys.length; k++) {
      const key = xKeys[k]!;
      if (key !== yKeys[k] || x.labels[key] !== y.labels[key]) return false;
    }
  }
  return true;
}

// prom-client 15's Registry.getMetricsAsString, for our samples (no exemplars, no shared or default labels):
// the same escaping and number formatting, so the bytes are the same (exposition.test.ts compares them).
const escapeString = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabelValue = (v: unknown) => (typeof v === 'string' ? escapeString(v).replace(/"/g, '\\"') : v);
function valueText(value: number): string {
  if (Number.isNaN(value)) return 'Nan'; // sic: prom-client prints NaN so
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

/**
 * One metric's text as prom-client's Registry prints it for a registry without default labels: samples
 * without shared labels or exemplars (a SnapshotMetric's, a prom-client Gauge's or Counter's `get()`).
 */
export function format(metricName: string, help: string, type: string, samples: readonly Sample[]): string {
  const name = escapeString(metricName);
  const lines = [`# HELP ${name} ${escapeString(help)}`, `# TYPE ${name} ${type}`];
  for (const sample of samples) {
    let labels = '';
    for (const key of Object.keys(sample.labels)) {
      labels += `${labels ? ',' : ''}${key}="${escapeLabelValue(sample.labels[key])}"`;
    }
    lines.push(`${sample.metricName ?? name}${labels ? `{${labels}}` : ''} ${valueText(sample.value)}`);
  }
  return lines.join('\n');
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
