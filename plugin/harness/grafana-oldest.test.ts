/**
 * The BUILT Grafana app (plugin/dist) on the oldest Grafana its grafanaDependency claims: the harness page
 * bundled with @grafana/* 13.0.1 and React 18 (grafana-oldest/, bundle.ts) instead of the 13.2.3 and React 19
 * the app is built against. plugin.test.ts runs every flow on 13.2.3; this file runs a representative subset:
 * every page of the app renders without an error, an Editor rates a CSV through the Combobox and the
 * dropzone, an Editor freezes releases, an Editor acknowledges an incident and opens the Silence for… dialog
 * (a Modal), and a Viewer finds the controls disabled and is refused by the proxy.
 *
 * Needs `npm run build -w plugin` first, `bash scripts/setup.sh` (which installs grafana-oldest/), and
 * Chromium at /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startServices, type RunningServices } from '../../cli/services.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { EAST, FakeRegion, waitUntil, WEST } from '../../testing/failover.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { amPayload } from '../../testing/receiver-harness.ts';
import { storeNotification } from '../../alerting/receiver/inbox.ts';
import { alertmanagerPayload } from '../../alerting/receiver/payloads.ts';
import { recordIncidentTimeline } from '../../alerting/incidents/timeline.ts';
import { chooseCompany, fromPage, launchChromium, openPage, shot } from './browser.ts';
import { DIST_DIR, GRAFANA_RUNTIMES, runtimeVersion, startHarness, type Harness, type HarnessUser } from './server.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
const RUNTIME = GRAFANA_RUNTIMES.oldest;
const EDITOR: HarnessUser = { login: 'edna', role: 'Editor' };
const ADMIN: HarnessUser = { login: 'ana', role: 'Admin' };
const VIEWER: HarnessUser = { login: 'vera', role: 'Viewer' };

interface PluginJson {
  id: string;
  dependencies: { grafanaDependency: string };
  includes?: Array<{ type: string; path?: string }>;
}
if (!fs.existsSync(path.join(DIST_DIR, 'module.js'))) throw new Error('plugin/dist/module.js is missing: run npm run build -w plugin first');
const pluginJson = JSON.parse(fs.readFileSync(path.join(DIST_DIR, 'plugin.json'), 'utf8')) as PluginJson;
const PROXY = `/api/plugin-proxy/${pluginJson.id}`;

let db: TestDatabase | undefined;
let east: FakeRegion | undefined;
let west: FakeRegion | undefined;
let services: RunningServices | undefined;
let harness: Harness | undefined;
let browser: Browser | undefined;
let lakeshore = '';

const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const open = (user: HarnessUser, name: string) => openPage(browser!, harness!, user, name);

before(async () => {
  [db, east, west] = await Promise.all([createTestDatabase(), FakeRegion.start(), FakeRegion.start()]);
  harness = await startHarness({ apiSecret: API_SECRET, grafana: RUNTIME });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    CONTROLROOM_AUTH: 'grafana-id',
    CONTROLROOM_API_SECRET: API_SECRET,
    GRAFANA_URL: harness.url,
    GRAFANA_SERVICE_ACCOUNT_TOKEN: harness.identity.serviceAccountToken,
    CONTROLROOM_INSTANCE_ID: 'plugin-harness-oldest',
    EXPORTER_REFRESH_MS: '60000',
    FAILOVER_REGIONS: JSON.stringify([east.spec(EAST, 'primary'), west.spec(WEST, 'secondary')]),
    FAILOVER_CHECK_INTERVAL_SECONDS: '1',
    FAILOVER_AUTO: 'false',
  });
  const launching = launchChromium();
  services = await startServices(db.url, config, createLogger('silent'));
  const apiUrl = `http://127.0.0.1:${services.port}`;
  harness.settings.jsonData = { apiUrl };
  browser = await launching;
  lakeshore = await insertCompany(db.pool, 'Lakeshore Logistics', 'pro');
  await waitUntil(
    async () => ((await (await fetch(`${apiUrl}/api/regions/routing`)).json()) as { regions: Array<{ healthy: boolean }> }).regions.every((r) => r.healthy),
    15_000,
    'both regions healthy',
  );
});

after(async () => {
  await browser?.close();
  await harness?.close();
  await services?.stop();
  await Promise.all([east?.close(), west?.close()]);
  await db?.drop();
});

test("the oldest runtime is the lower bound of grafanaDependency, and every page of the app renders on it with React 18", async () => {
  const grafana = runtimeVersion(RUNTIME, '@grafana/runtime');
  for (const pkg of ['@grafana/data', '@grafana/ui', '@grafana/i18n', '@grafana/schema']) assert.equal(runtimeVersion(RUNTIME, pkg), grafana, `${pkg} is ${grafana}`);
  // The claimed range starts where the tested one does.
  assert.equal(pluginJson.dependencies.grafanaDependency, `>=${grafana}`);
  assert.notEqual(grafana, runtimeVersion(GRAFANA_RUNTIMES.current, '@grafana/runtime'), 'a different Grafana from the one the app is built against');
  const react = runtimeVersion(RUNTIME, 'react');
  assert.match(react, /^18\./, 'Grafana 13.0 runs React 18');

  const pages = (pluginJson.includes ?? []).flatMap((inc) => (inc.type === 'page' && inc.path?.startsWith(`/a/${pluginJson.id}/`) ? [inc.path.split('/').at(-1)!] : []));
  assert.ok(pages.length >= 3, `the app's pages: ${pages.join(', ')}`);
  for (const name of [...pages, 'config']) {
    const opened = await open(ADMIN, name);
    // What rendered the plugin is the runtime's React, and the boot data reports the runtime's Grafana.
    assert.equal(await opened.page.evaluate(() => (globalThis as unknown as { __harnessReact?: string }).__harnessReact), react);
    const buildInfo = await opened.page.evaluate(() => (globalThis as unknown as { grafanaBootData: { settings: { buildInfo: { version: string } } } }).grafanaBootData.settings.buildInfo);
    assert.equal(buildInfo.version, grafana);
    await shot(opened.page, `grafana-${grafana}-${name}-dark`);
    await opened.close();
  }
});

test('Editor: a CSV rated through the Combobox and the dropzone, on the oldest runtime', async () => {
  const { page, close } = await open(EDITOR, 'bulk-rating');
  await chooseCompany(page, 'Lake', 'Lakeshore Logistics (pro)');
  await page.getByTestId('bulk-allowance').getByText('of 10 jobs').waitFor();
  const csv = [
    'origin,destination,equipment,pickup_date',
    `"Chicago, IL","Atlanta, GA",van,${tomorrow}`,
    `"Springfeld, ZZ","Denver, CO",van,${tomorrow}`,
    `"Memphis, TN","Nashville, TN",flatbed,${tomorrow}`,
  ].join('\n');
  await page.locator('input[type="file"]').setInputFiles({ name: 'lanes.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByText('lanes.csv', { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Rate these lanes' }).click();
  await page.getByText('2 lanes queued for rating as job').waitFor();
  await page.getByText('1 row was rejected').waitFor();
  const row = page.getByTestId('bulk-jobs').getByRole('row').filter({ hasText: 'lanes.csv' });
  await row.getByText('succeeded', { exact: true }).waitFor({ timeout: 30_000 });
  const jobs = await db!.pool.query(`SELECT submitted_by, status FROM controlroom.bulk_jobs WHERE company_id = $1`, [lakeshore]);
  assert.deepEqual(jobs.rows, [{ submitted_by: 'grafana:edna', status: 'succeeded' }]);
  await close();
});

test('Editor: freezing releases with a reason, on the oldest runtime', async () => {
  const reason = 'Grafana 13.0 compatibility check';
  const { page, close } = await open(EDITOR, 'release-freeze');
  await page.getByTestId('freeze-state').getByText('Releases are open').waitFor();
  await page.locator('#freeze-reason').fill(reason);
  await page.getByRole('button', { name: 'Freeze releases' }).click();
  await page.getByTestId('freeze-state').getByText('Releases are frozen').waitFor();
  await page.getByText(`“${reason}” by grafana:edna`).waitFor();
  const actions = await db!.pool.query(`SELECT kind, reason, actor FROM controlroom.freeze_actions`);
  assert.deepEqual(actions.rows, [{ kind: 'freeze', reason, actor: 'grafana:edna' }]);
  await close();
});

test('Editor: an incident acknowledged, and the Silence for… dialog refusing an empty reason, on the oldest runtime', async () => {
  const groupKey = '{}:{alertname="ActiveRegionDown"}';
  await storeNotification(db!.pool, 'alertmanager', alertmanagerPayload.parse(amPayload(groupKey, [{ alertname: 'ActiveRegionDown', severity: 'P1' }], { commonLabels: { alertname: 'ActiveRegionDown', severity: 'P1' } })));
  await recordIncidentTimeline(db!.pool, 'alertmanager', groupKey, { timeZone: 'UTC' });
  const id = String((await db!.pool.query(`SELECT id FROM controlroom.incidents WHERE group_key = $1`, [groupKey])).rows[0].id);

  const { page, close } = await open(EDITOR, 'incidents');
  await page.getByTestId(`incident-${id}`).getByText('unacknowledged', { exact: true }).waitFor();
  await page.getByTestId(`incident-acknowledge-${id}`).click();
  await page.getByText(`Incident ${id} acknowledged`).waitFor();
  await page.getByTestId(`incident-${id}`).getByText(/by grafana:edna \(Grafana\)/).waitFor();
  // The dialog is a @grafana/ui Modal (a portal) on React 18: it opens, lists the durations, and refuses no reason.
  await page.getByTestId(`incident-silence-${id}`).click();
  await page.getByTestId('incident-silence-duration').getByLabel('7 days', { exact: true }).check();
  await page.getByTestId('incident-silence-confirm').click();
  await page.getByTestId('incident-silence-reason-missing').waitFor();
  await shot(page, `grafana-${runtimeVersion(RUNTIME, '@grafana/runtime')}-incidents-silence-dialog-dark`);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByTestId('incident-silence-confirm').waitFor({ state: 'detached' });
  await close();
  const acknowledged = await db!.pool.query(`SELECT acknowledged_by, acknowledged_via FROM controlroom.incidents WHERE id = $1`, [id]);
  assert.deepEqual(acknowledged.rows, [{ acknowledged_by: 'grafana:edna', acknowledged_via: 'grafana' }]);
  const silences = await db!.pool.query(`SELECT count(*)::int AS n FROM controlroom.incident_silences`);
  assert.equal(silences.rows[0].n, 0, 'the refused dialog sent nothing');
});

test('Viewer: the controls are disabled and the proxy refuses a direct POST, on the oldest runtime', async () => {
  const failover = await open(VIEWER, 'failover');
  await failover.page.getByRole('heading', { name: `Active region: ${EAST}` }).waitFor();
  await failover.page.getByText('Admin role required').waitFor();
  assert.equal(await failover.page.locator('#failover-reason').isDisabled(), true);
  assert.equal(await failover.page.getByRole('button', { name: `Fail over to ${WEST}` }).isDisabled(), true);
  const refused = await fromPage(failover.page, 'POST', `${PROXY}/regions/failover`, { target: WEST, reason: 'viewer tries' });
  assert.deepEqual([refused.status, refused.body], [403, { message: 'plugin proxy route access denied' }]);
  await failover.close();

  const freeze = await open(VIEWER, 'release-freeze');
  await freeze.page.getByText('Editor role required').waitFor();
  assert.equal(await freeze.page.getByRole('button', { name: 'Freeze releases' }).isDisabled(), true);
  assert.equal(await freeze.page.getByRole('button', { name: 'End freeze' }).isDisabled(), true);
  await freeze.close();
  const failovers = await db!.pool.query(`SELECT count(*)::int AS n FROM controlroom.failover_events`);
  assert.equal(failovers.rows[0].n, 0);
});
