import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { createLogger } from '../core/logger.ts';
import { renderMetrics } from './exposition.ts';
import { CollectorRunner } from './runner.ts';
import { histogramSamples, SnapshotMetric } from './snapshot-metric.ts';
import { parseMetrics } from '../testing/prom-text.ts';

/** The sections of an exposition, by metric name (each starts with its # HELP line). */
function sections(text: string): Map<string, string> {
  return new Map(text.split('\n\n').map((block) => [/^# HELP (\S+)/.exec(block)![1]!, block]));
}

test('/metrics text is byte for byte what prom-client prints, snapshots included', async () => {
  const registry = new Registry();
  const ratio = new SnapshotMetric('tms_test_ratio', 'A "ratio" with a \\ and a\nnewline in its help.', 'gauge');
  ratio.registerIn(registry);
  ratio.replace([
    { labels: { company_id: 'c1', name: 'Quote "Q" \\ Sons\nLtd' }, value: 0.8 },
    { labels: { company_id: 'c2', name: 'Plain' }, value: Number.POSITIVE_INFINITY },
    { labels: {}, value: Number.NaN },
  ]);
  const latency = new SnapshotMetric('tms_test_seconds', 'Latency.', 'histogram').registerIn(registry);
  latency.replace(histogramSamples('tms_test_seconds', [0.1, 1], { cached: 'true' }, [2, 5], 7, 3.25));
  new SnapshotMetric('tms_test_empty', 'No samples yet.', 'gauge').registerIn(registry);
  const live = new Counter({ name: 'tms_test_live_total', help: 'Live.', labelNames: ['k'], registers: [registry] });
  live.inc({ k: 'v' }, 3);

  assert.equal(await renderMetrics(registry), await registry.metrics());
  live.inc({ k: 'v' }); // a live metric is formatted at every scrape
  assert.equal(await renderMetrics(registry), await registry.metrics());
  assert.equal(parseMetrics(await renderMetrics(registry)).get('tms_test_live_total{k="v"}'), 4);
});

test('a snapshot is formatted once per replace, and a replace during formatting is never served stale', async () => {
  const registry = new Registry();
  const metric = new SnapshotMetric('tms_test_value', 'Value.', 'gauge').registerIn(registry);
  metric.replace([{ labels: { k: 'a' }, value: 1 }]);
  const first = await metric.exposition(registry);
  assert.match(first, /tms_test_value\{k="a"\} 1/);

  let formatted = 0;
  const format = registry.getSingleMetricAsString.bind(registry);
  registry.getSingleMetricAsString = (name: string) => {
    formatted++;
    return format(name);
  };
  assert.equal(await metric.exposition(registry), first, 'unchanged samples reuse the text');
  assert.equal(formatted, 0);

  // Formatting starts on the old samples; the refresh replaces them before it finishes.
  const inFlight = metric.exposition(registry);
  metric.replace([{ labels: { k: 'b' }, value: 2 }]);
  assert.match(await inFlight, /k="a"/);
  const next = await renderMetrics(registry);
  assert.match(next, /tms_test_value\{k="b"\} 2/);
  assert.doesNotMatch(next, /k="a"/);
  assert.equal(sections(next).get('tms_test_value'), sections(await registry.metrics()).get('tms_test_value'));
});

test('each collector serves its snapshot with its age, from its first successful refresh on', async () => {
  const registry = new Registry();
  let fail = false;
  const runner = new CollectorRunner(
    registry,
    [
      {
        name: 'flaky',
        intervalMs: 60_000,
        refresh: async () => {
          if (fail) throw new Error('database down');
        },
      },
    ],
    createLogger('silent')
  );
  const age = async () =>
    parseMetrics(await renderMetrics(registry)).get('controlroom_exporter_snapshot_age_seconds{collector="flaky"}');
  assert.equal(await age(), undefined, 'no snapshot yet: no age');
  await runner.refreshAll();
  const fresh = (await age())!;
  assert.ok(fresh >= 0 && fresh < 1, `age ${fresh} s right after a refresh`);
  fail = true;
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  await runner.refreshAll(); // fails: the old snapshot is still served, and its age keeps growing
  const stale = (await age())!;
  assert.ok(stale >= 1, `age ${stale} s after a failed refresh`);
  assert.equal(
    parseMetrics(await renderMetrics(registry)).get('controlroom_exporter_collect_errors_total{collector="flaky"}'),
    1
  );
});
