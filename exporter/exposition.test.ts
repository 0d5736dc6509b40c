import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { createLogger } from '../core/logger.ts';
import { renderMetrics, renderMetricsBody, sampleAtMostEvery, sendMetrics } from './exposition.ts';
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

test('a run of snapshots is one Buffer, encoded again only when one of them is replaced; live metrics between runs stay live', async () => {
  const registry = new Registry();
  const first = new SnapshotMetric('tms_test_first', 'First.', 'gauge').registerIn(registry);
  first.replace([{ labels: { k: 'a' }, value: 1 }]);
  const live = new Counter({ name: 'tms_test_live_total', help: 'Live.', registers: [registry] });
  const second = new SnapshotMetric('tms_test_second', 'Second.', 'gauge').registerIn(registry);
  second.replace([{ labels: { k: 'b' }, value: 2 }]);
  const third = new SnapshotMetric('tms_test_third', 'Third.', 'counter').registerIn(registry);
  third.replace([{ labels: {}, value: 3 }]);

  const before = await renderMetricsBody(registry);
  assert.equal(before.chunks.length, 3, 'run [first], live [live], run [second, third]');
  assert.equal(Buffer.concat(before.chunks).toString(), await registry.metrics());
  assert.equal(before.byteLength, Buffer.concat(before.chunks).length);

  live.inc(5);
  const again = await renderMetricsBody(registry);
  assert.equal(again.chunks[0], before.chunks[0], 'unchanged run: the same Buffer');
  assert.equal(again.chunks[2], before.chunks[2], 'unchanged run: the same Buffer');
  assert.equal(
    Buffer.concat(again.chunks).toString(),
    await registry.metrics(),
    'the live counter is read at the scrape'
  );

  third.replace([{ labels: {}, value: 4 }]);
  const after = await renderMetricsBody(registry);
  assert.equal(after.chunks[0], before.chunks[0]);
  assert.notEqual(after.chunks[2], before.chunks[2], 'a replaced snapshot re-encodes its run');
  assert.equal(Buffer.concat(after.chunks).toString(), await registry.metrics());
  assert.match(await renderMetrics(registry), /^tms_test_third 4$/m);

  registry.removeSingleMetric('tms_test_third');
  assert.equal(await renderMetrics(registry), await registry.metrics(), 'a removed metric leaves the body');
});

test('sampled metrics are collected at a scrape at most once per max age, and served unchanged in between', async () => {
  const registry = new Registry();
  let collects = 0;
  new Gauge({
    name: 'tms_test_sampled',
    help: 'Sampled.',
    registers: [registry],
    collect() {
      this.set(++collects);
    },
  });
  const live = new Counter({ name: 'tms_test_live_total', help: 'Live.', registers: [registry] });
  sampleAtMostEvery(registry, ['tms_test_sampled'], 200);

  const first = parseMetrics(await renderMetrics(registry));
  live.inc();
  const second = parseMetrics(await renderMetrics(registry));
  assert.equal(collects, 1, 'the second scrape, within the max age, reuses the sample');
  assert.equal(second.get('tms_test_sampled'), first.get('tms_test_sampled'));
  assert.equal(second.get('tms_test_live_total'), 1, 'metrics outside the group are read at every scrape');

  await new Promise((resolve) => setTimeout(resolve, 250));
  const third = parseMetrics(await renderMetrics(registry));
  assert.equal(collects, 2, 'past the max age, a scrape samples again');
  assert.equal(third.get('tms_test_sampled'), 2);
});

test("the runner's Node.js event-loop lag gauges are sampled, not stuck at 0", async () => {
  const registry = new Registry();
  new CollectorRunner(registry, [], createLogger('silent'));
  const blockedUntil = Date.now() + 200;
  while (Date.now() < blockedUntil); // the loop is busy: its delay histogram records it
  await new Promise((resolve) => setTimeout(resolve, 50));
  const metrics = parseMetrics(await renderMetrics(registry));
  assert.ok(metrics.has('nodejs_eventloop_lag_seconds'));
  assert.ok(metrics.get('nodejs_eventloop_lag_max_seconds')! > 0, 'the lag histogram is read at the scrape');
  assert.ok(metrics.has('process_cpu_user_seconds_total') && metrics.has('process_resident_memory_bytes'));
});

test('/metrics over HTTP: the same bytes, with their length and content type', async () => {
  const registry = new Registry();
  const metric = new SnapshotMetric('tms_test_value', 'Value with é.', 'gauge').registerIn(registry);
  metric.replace([{ labels: { name: 'Société' }, value: 1 }]);
  new Counter({ name: 'tms_test_live_total', help: 'Live.', registers: [registry] }).inc(2);
  const server = await new Promise<Server>((resolve) => {
    const s = createServer((_req, res) => void sendMetrics(registry, res)).listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    const { port } = server.address() as { port: number };
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), registry.contentType);
      assert.equal(Number(res.headers.get('content-length')), body.length);
      assert.equal(body.toString('utf8'), await registry.metrics());
    }
    const head = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  } finally {
    server.close();
  }
});

test('a replace with the same samples keeps the encoded text; a registry with default labels is formatted by prom-client', async () => {
  const registry = new Registry();
  const metric = new SnapshotMetric('tms_test_value', 'Value.', 'gauge').registerIn(registry);
  metric.replace([{ labels: { a: '1', b: '2' }, value: Number.NaN }]);
  const section = await metric.section(registry);
  metric.replace([{ labels: { a: '1', b: '2' }, value: Number.NaN }]); // a refresh that found nothing new
  assert.equal(await metric.section(registry), section, 'same samples: the same Buffer');
  metric.replace([{ labels: { b: '2', a: '1' }, value: Number.NaN }]); // label order is part of the text
  assert.notEqual(await metric.section(registry), section);
  assert.equal(await renderMetrics(registry), await registry.metrics());

  registry.setDefaultLabels({ instance: 'x"1' });
  assert.equal(await renderMetrics(registry), await registry.metrics(), 'default labels as prom-client adds them');
  assert.match(await renderMetrics(registry), /instance="x\\"1"/);
});

test('live gauges and counters are formatted directly, byte for byte as prom-client prints them', async () => {
  const registry = new Registry();
  const gauge = new Gauge({
    name: 'tms_test_gauge',
    help: 'A "gauge" \\ with\nhelp.',
    labelNames: ['name', 'k'],
    registers: [registry],
    collect() {
      this.set({ name: 'late', k: '2' }, Number.NEGATIVE_INFINITY);
    },
  });
  gauge.set({ name: 'Quote "Q" \\ Sons\nLtd', k: '1' }, 0.25);
  gauge.set({ k: 'nan', name: 'x' }, Number.NaN);
  new Counter({ name: 'tms_test_plain_total', help: 'No labels.', registers: [registry] }).inc(1e21);
  new Gauge({ name: 'tms_test_unset', help: 'Never set.', labelNames: ['k'], registers: [registry] });
  assert.equal(await renderMetrics(registry), await registry.metrics());
  assert.match(await renderMetrics(registry), /^tms_test_gauge\{name="late",k="2"\} -Inf$/m);
});
