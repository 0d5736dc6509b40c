import type { ServerResponse } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { format, plainTextRegistry, SnapshotMetric } from './snapshot-metric.ts';

/**
 * The /metrics body: what `registry.metrics()` prints, byte for byte, with every exporter snapshot taken
 * from the text formatted when it was last replaced (SnapshotMetric.exposition) instead of formatting its
 * series again. The runner's own gauges are formatted at every scrape (formatLive: the same bytes as
 * prom-client's formatter), the process and Node.js metrics at most once a second (sampleAtMostEvery). No
 * SQL runs here, and the cost no longer grows with the tenant series (tms_usage_ratio, tms_company_info).
 *
 * The body is handed out as chunks, not one string: each run of consecutive metrics whose text is held
 * (snapshots, and the sampled process metrics: sampleAtMostEvery), in registry order, is one Buffer,
 * encoded when one of its texts changed and reused by every scrape until then; only the live metrics (the
 * runner's gauges, a few KB of the 140 KB) are formatted and encoded per scrape. Joining the whole text and
 * encoding it again at every scrape was most of a scrape's CPU and of its allocation (about 0.4 MB per
 * scrape with the 1,345 series of the 10M-row benchmark: a scavenge every few scrapes); see sendMetrics.
 *
 * Only the Prometheus text format is cached; a registry set to OpenMetrics is formatted by prom-client
 * itself (it renames counters), so the output is right either way.
 */
export interface MetricsBody {
  chunks: readonly Buffer[];
  byteLength: number;
}

/** A run of consecutive held sections, joined once: reused while every section in it is the same Buffer. */
interface EncodedRun {
  sections: Buffer[];
  endsBody: boolean;
  buffer: Buffer;
}

/** Per registry: the joined runs, by their position in the body (0 = the first run). */
const encodedRuns = new WeakMap<Registry, EncodedRun[]>();

/** Metrics sampled at most every `maxAgeMs` (see sampleAtMostEvery), with their sections of the last sample. */
interface SampledGroup {
  names: ReadonlySet<string>;
  maxAgeMs: number;
  sampledAt: number;
  sections: Map<string, Buffer>;
}
const sampledGroups = new WeakMap<Registry, SampledGroup>();

/**
 * Lets a scrape reuse the text of these metrics (of `registry`) for up to `maxAgeMs` after they were last
 * formatted, instead of running their collect() and formatting them again. Meant for prom-client's
 * default process and Node.js metrics: their collect() reads /proc/self/status, lists /proc/self/fd,
 * reads the CPU time, memory and heap spaces, and formatting their ~300 lines allocated about 0.1 MB per
 * scrape. They are sampled together at the first scrape after `maxAgeMs`, so at Prometheus's interval
 * (15 s and more) every scrape still samples them afresh; scrapes closer together than `maxAgeMs` (several
 * Prometheus servers, a burst) share a sample at most `maxAgeMs` old. Their names, labels and meaning are
 * unchanged. registry.metrics() still samples them at every call.
 */
export function sampleAtMostEvery(registry: Registry, names: Iterable<string>, maxAgeMs: number): void {
  sampledGroups.set(registry, {
    names: new Set(names),
    maxAgeMs,
    sampledAt: Number.NEGATIVE_INFINITY,
    sections: new Map(),
  });
}

function joinRun(cache: EncodedRun[], index: number, sections: Buffer[], endsBody: boolean): Buffer {
  const held = cache[index];
  // A snapshot's section is the same Buffer until its samples change (a sampled metric's, until its next
  // sample): comparing identities tells whether the run is still the one joined.
  if (
    held &&
    held.endsBody === endsBody &&
    held.sections.length === sections.length &&
    held.sections.every((section, i) => section === sections[i])
  ) {
    return held.buffer;
  }
  const joined = sections.length === 1 ? sections[0]! : Buffer.concat(sections);
  // Every section ends with a blank line; the body's last ends with one newline.
  const buffer = endsBody ? joined.subarray(0, joined.length - 1) : joined;
  cache[index] = { sections, endsBody, buffer };
  return buffer;
}

export async function renderMetricsBody(registry: Registry): Promise<MetricsBody> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) {
    const buffer = Buffer.from(await registry.metrics());
    return { chunks: [buffer], byteLength: buffer.length };
  }
  const metrics = registry.getMetricsAsArray() as unknown[];
  const sampled = sampledGroups.get(registry);
  const now = performance.now();
  // Within maxAgeMs of the last sample, the group's sections are reused as they are; otherwise this scrape
  // samples the whole group (in registry order, as prom-client does: a collect() that sets its
  // neighbours' values runs before they are formatted) and keeps the sections for the next ones.
  const reuse = sampled !== undefined && now - sampled.sampledAt < sampled.maxAgeMs;
  const plain = plainTextRegistry(registry);
  const isSampled = (metric: unknown) => sampled !== undefined && sampled.names.has((metric as { name: string }).name);
  const parts: (Buffer | string)[] = await Promise.all(
    metrics.map((metric) => {
      // SnapshotMetric's `type` is its own union, so TypeScript cannot narrow prom-client's MetricObject to it.
      if (metric instanceof SnapshotMetric) return metric.section(registry);
      const { name } = metric as { name: string };
      const held = reuse && isSampled(metric) ? sampled.sections.get(name) : undefined;
      if (held) return held;
      return plain && (metric instanceof Gauge || metric instanceof Counter)
        ? formatLive(metric)
        : registry.getSingleMetricAsString(name);
    })
  );
  if (sampled && !reuse) {
    sampled.sections.clear();
    metrics.forEach((metric, i) => {
      if (!isSampled(metric)) return;
      const section = Buffer.from(`${parts[i] as string}\n\n`);
      sampled.sections.set((metric as { name: string }).name, section);
      parts[i] = section;
    });
    sampled.sampledAt = now;
  }
  let cache = encodedRuns.get(registry);
  if (!cache) encodedRuns.set(registry, (cache = []));
  // Snapshots and sampled metrics arrive as encoded sections: runs of them are joined once. The rest (live
  // metrics, formatted at this scrape) arrive as text.
  const chunks: Buffer[] = [];
  let runs = 0;
  let run: Buffer[] = [];
  let live = '';
  const last = parts.length - 1;
  for (let i = 0; i <= last; i++) {
    const part = parts[i]!;
    if (typeof part !== 'string') {
      if (live) chunks.push(Buffer.from(live));
      live = '';
      run.push(part);
      if (i === last || typeof parts[i + 1] === 'string') {
        chunks.push(joinRun(cache, runs++, run, i === last));
        run = [];
      }
    } else {
      live += i === last ? `${part}\n` : `${part}\n\n`;
    }
  }
  if (live) chunks.push(Buffer.from(live));
  // Runs that no longer exist (a metric was removed) are not kept alive.
  cache.length = runs;
  let byteLength = 0;
  for (const chunk of chunks) byteLength += chunk.length;
  return { chunks, byteLength };
}

/**
 * A live Gauge's or Counter's text, formatted directly from its get() (which runs its collect()): the bytes
 * prom-client prints, without its per-line allocations (its formatter caches the shared labels of every
 * line in a WeakMap keyed by a fresh object, a WeakMap entry per series per scrape for the GC to clear).
 */
async function formatLive(metric: Gauge | Counter): Promise<string> {
  const { name, help, type, values } = await metric.get();
  // prom-client types `type` as an enum; at run time it is the text ('gauge', 'counter') it prints.
  return format(name, help, type as unknown as string, values as { labels: Record<string, string>; value: number }[]);
}

/** The /metrics body as one string (tests, the benchmark's size and series count). */
export async function renderMetrics(registry: Registry): Promise<string> {
  const { chunks } = await renderMetricsBody(registry);
  return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
}

/**
 * Answers a scrape: the chunks are written as they are (one writev with the headers; the snapshot runs'
 * Buffers are not copied), with a Content-Length and without Express's res.send, which would join them
 * and hash the 140 KB for an ETag at every scrape (a body that changes at every scrape: no client
 * revalidates /metrics).
 */
export async function sendMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  const body = await renderMetricsBody(registry);
  res.statusCode = 200;
  res.setHeader('Content-Type', registry.contentType);
  res.setHeader('Content-Length', body.byteLength);
  // Corked, the header and every chunk leave in one writev; end() uncorks the socket fully.
  res.cork();
  for (const chunk of body.chunks) res.write(chunk);
  res.end();
}
