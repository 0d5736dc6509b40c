import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config.ts';
import { createLogger } from '../../core/logger.ts';
import { ALERTMANAGER_BIN, PROMETHEUS_BIN } from '../../testing/prometheus-stack.ts';
import { planStack } from './start.ts';

/** The Incidents page's silences go to the Alertmanager `start` runs, unless ALERTMANAGER_URL names another. */
test("start's plan points ALERTMANAGER_URL at its own Alertmanager, and keeps one that is set", (t) => {
  const saved = { PROMETHEUS_BIN: process.env.PROMETHEUS_BIN, ALERTMANAGER_BIN: process.env.ALERTMANAGER_BIN };
  process.env.PROMETHEUS_BIN = PROMETHEUS_BIN;
  process.env.ALERTMANAGER_BIN = ALERTMANAGER_BIN;
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const logger = createLogger('silent');
  const own = planStack(true, loadConfig({ ALERTMANAGER_PORT: '19093' }), logger);
  assert.equal(own?.config.ALERTMANAGER_URL, 'http://127.0.0.1:19093');
  const other = planStack(true, loadConfig({ ALERTMANAGER_URL: 'http://am.internal:9093' }), logger);
  assert.equal(other?.config.ALERTMANAGER_URL, 'http://am.internal:9093');
  assert.equal(planStack(false, loadConfig({}), logger), null);
});
