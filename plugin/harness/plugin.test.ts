/**
 * The BUILT Grafana app (plugin/dist) in Chromium, on the harness page (page/harness.tsx) with the real
 * @grafana/ui, against the real Control Room API and Postgres, through an emulation of Grafana's plugin
 * proxy driven by dist/plugin.json (server.ts, proxy.ts). Screenshots go to test-results/plugin/. The page
 * runs the plugin's own @grafana/* packages (the release the app is built against); grafana-oldest.test.ts
 * runs a subset of these flows on the oldest release grafanaDependency claims.
 *
 * Needs `npm run build -w plugin` first, and Chromium at /usr/bin/chromium.
 *
 * One file on purpose (~560 lines): the eight scenarios share one Control Room, one harness bundle and one
 * browser, which take most of the run to start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { Browser, Page } from 'playwright-core';
import { startServices, type RunningServices } from '../../cli/services.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { EAST, FakeRegion, waitUntil, WEST } from '../../testing/failover.ts';
import { activate, promoteCandidate, registerModel, SEED_V1 } from '../../control/rating/index.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../../testing/postgres.ts';
import { startAlertmanager } from '../../testing/prometheus-stack.ts';
import { amPayload } from '../../testing/receiver-harness.ts';
import { storeNotification } from '../../alerting/receiver/inbox.ts';
import { alertmanagerPayload } from '../../alerting/receiver/payloads.ts';
import { recordIncidentTimeline } from '../../alerting/incidents/timeline.ts';
import { chooseCompany, fromPage, launchChromium, openPage, rowWith, shot, type Opened } from './browser.ts';
import { DIST_DIR, startHarness, USER_COOKIE, userCookie, type Harness, type HarnessUser } from './server.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
const PLUGIN = 'transbot-controlroom-app';
const PROXY = `/api/plugin-proxy/${PLUGIN}`;

const EDITOR: HarnessUser = { login: 'edna', role: 'Editor' };
const ADMIN: HarnessUser = { login: 'ana', role: 'Admin' };
const VIEWER: HarnessUser = { login: 'vera', role: 'Viewer' };
/** A Grafana server admin whose org role is only Viewer: a Viewer to the plugin proxy (org role only) and to Control Room. */
const SERVER_ADMIN: HarnessUser = { login: 'root', role: 'Viewer', grafanaAdmin: true };

let db: TestDatabase | undefined;
let east: FakeRegion | undefined;
let west: FakeRegion | undefined;
let services: RunningServices | undefined;
let harness: Harness | undefined;
let browser: Browser | undefined;
let alertmanager: { url: string; stop(): Promise<void> } | undefined;
let apiUrl = '';
let lakeshore = '';

const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const money = (n: number) => n.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
const h = () => harness!;
const pool = () => db!.pool;

before(async () => {
  if (!fs.existsSync(path.join(DIST_DIR, 'module.js'))) {
    throw new Error('plugin/dist/module.js is missing: run npm run build -w plugin first');
  }
  [db, east, west] = await Promise.all([createTestDatabase(), FakeRegion.start(), FakeRegion.start()]);
  // The harness acts as Grafana: Control Room verifies the ID tokens its proxy forwards against the harness's
  // signing keys, and reads roles and RBAC actions from it with the service-account token.
  harness = await startHarness({ apiSecret: API_SECRET });
  // A real Alertmanager for the Incidents page's silences (its port is chosen first: the service needs the URL).
  const alertmanagerPort = await freePort();
  const config = loadConfig({
    ALERTMANAGER_URL: `http://127.0.0.1:${alertmanagerPort}`,
    PORT: '0',
    HOST: '127.0.0.1',
    CONTROLROOM_AUTH: 'grafana-id',
    CONTROLROOM_API_SECRET: API_SECRET,
    GRAFANA_URL: harness.url,
    GRAFANA_SERVICE_ACCOUNT_TOKEN: harness.identity.serviceAccountToken,
    CONTROLROOM_INSTANCE_ID: 'plugin-harness',
    EXPORTER_REFRESH_MS: '60000',
    FAILOVER_REGIONS: JSON.stringify([east.spec(EAST, 'primary'), west.spec(WEST, 'secondary')]),
    FAILOVER_CHECK_INTERVAL_SECONDS: '1',
    FAILOVER_CHECK_TIMEOUT_MS: '500',
    FAILOVER_STEP_SECONDS: '1',
    FAILOVER_LEASE_SECONDS: '3',
    FAILOVER_AUTO: 'false',
    // The post-cutover integrity check runs at once, so the failover test can wait for all its follow-ups.
    FAILOVER_INTEGRITY_SETTLE_SECONDS: '0',
  });
  const launching = launchChromium();
  services = await startServices(db.url, config, createLogger('silent'));
  apiUrl = `http://127.0.0.1:${services.port}`;
  harness.settings.jsonData = { apiUrl };
  alertmanager = await startAlertmanager({ webhookUrl: `${apiUrl}/webhooks/alertmanager`, port: alertmanagerPort });
  browser = await launching;

  const company = (name: string, plan: string) => insertCompany(pool(), name, plan);
  lakeshore = await company('Lakeshore Logistics', 'pro');
  await company('Lakeview Movers', 'starter');
  await company('Summit Freight', 'enterprise');
  await waitUntil(
    async () => {
      const routing = (await (await fetch(`${apiUrl}/api/regions/routing`)).json()) as {
        regions: Array<{ healthy: boolean }>;
      };
      return routing.regions.length === 2 && routing.regions.every((r) => r.healthy);
    },
    15_000,
    'both regions healthy'
  );
});

after(async () => {
  await browser?.close();
  await harness?.close();
  await services?.stop();
  await alertmanager?.stop();
  await Promise.all([east?.close(), west?.close()]);
  await db?.drop();
});

// ---------------------------------------------------------------------------------------------------

/** A fresh browser context signed in as `user`, on the harness page `name`, once the plugin has rendered. */
const open = (user: HarnessUser, name: string, theme: 'light' | 'dark' = 'dark'): Promise<Opened> =>
  openPage(browser!, h(), user, name, theme);

// ---------------------------------------------------------------------------------------------------

test('Editor: bulk rating a CSV with bad rows, following the job, reading and downloading the results', async () => {
  const csv = [
    'origin,destination,equipment,pickup_date',
    `"Chicago, IL","Atlanta, GA",van,${tomorrow}`,
    `"Dallas, TX",90001,reefer,${tomorrow}`,
    `"Springfeld, ZZ","Denver, CO",van,${tomorrow}`,
    `"Denver, CO","Phoenix, AZ",boxcar,2020-01-01`,
    `"Memphis, TN","Nashville, TN",flatbed,${tomorrow}`,
    `"Seattle, WA"`,
  ].join('\n');
  const { page, close } = await open(EDITOR, 'bulk-rating');
  await page.getByText('Choose a company to see its plan').waitFor();
  await chooseCompany(page, 'Lake', 'Lakeshore Logistics (pro)');
  await page.getByTestId('bulk-allowance').getByText('of 10 jobs').waitFor();

  // The dropzone's file input, as a drop or the file chooser fills it.
  await page
    .locator('input[type="file"]')
    .setInputFiles({ name: 'lanes.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByText('lanes.csv', { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Rate these lanes' }).click();

  await page.getByText('3 lanes queued for rating as job').waitFor();
  await page.getByText('3 rows were rejected').waitFor();
  const rejected = page.getByTestId('rejected-rows');
  assert.deepEqual(
    (await rejected.getByRole('row').allInnerTexts()).slice(1).map((r) => r.split(/\s+/)[0]),
    ['4', '5', '7']
  );
  await rowWith(rejected, "unknown origin 'Springfeld, ZZ'").waitFor();
  await rowWith(
    rejected,
    "equipment 'boxcar' is not one of van, reefer, flatbed; pickup_date 2020-01-01 is in the past"
  ).waitFor();
  await rowWith(rejected, 'expected 4 columns, found 1').waitFor();

  const jobs = await pool().query<{ id: string; submitted_by: string }>(
    `SELECT id, submitted_by FROM controlroom.bulk_jobs WHERE company_id = $1`,
    [lakeshore]
  );
  assert.equal(jobs.rows.length, 1);
  const job = jobs.rows[0]!;
  assert.equal(job.submitted_by, 'grafana:edna');

  // The job list polls: the row turns succeeded without a reload.
  const row = rowWith(page.getByTestId('bulk-jobs'), 'lanes.csv');
  await row.getByText('succeeded', { exact: true }).waitFor({ timeout: 30_000 });
  await row.getByText('3 rated · 0 failed · 3 total · 3 rows rejected at upload').waitFor();
  await page.getByTestId('bulk-allowance').getByText('9 left').waitFor();

  const lanes = await pool().query<{ line: number; total: string; linehaul: string; fuel: string; miles: number }>(
    `SELECT line, total, linehaul, fuel, miles FROM controlroom.bulk_lanes WHERE job_id = $1 ORDER BY seq`,
    [job.id]
  );
  assert.deepEqual(
    lanes.rows.map((l) => l.line),
    [2, 3, 6]
  );

  await row.getByRole('button', { name: 'Results' }).click();
  await page.getByText(`Results of job ${job.id.slice(0, 8)}`).waitFor();
  const results = page.getByTestId('bulk-results');
  for (const lane of lanes.rows) {
    const resultRow = results
      .getByRole('row')
      .filter({ has: page.getByRole('cell', { name: String(lane.line), exact: true }) });
    await resultRow.getByText(money(Number(lane.total)), { exact: true }).waitFor();
    await resultRow.getByText('rated', { exact: true }).waitFor();
  }
  await rowWith(results, 'Chicago, IL').getByText('Atlanta, GA').waitFor();
  await shot(page, 'bulk-rating-dark');

  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'CSV' }).click()]);
  assert.equal(download.suggestedFilename(), `bulk-rating-${job.id}.csv`);
  const records = parse(fs.readFileSync(await download.path(), 'utf8'), { columns: true }) as Array<
    Record<string, string>
  >;
  assert.deepEqual(
    records.map((r) => [r.line, r.origin, r.destination, r.equipment, r.status]),
    [
      ['2', 'Chicago, IL', 'Atlanta, GA', 'van', 'rated'],
      ['3', 'Dallas, TX', '90001', 'reefer', 'rated'],
      ['6', 'Memphis, TN', 'Nashville, TN', 'flatbed', 'rated'],
    ]
  );
  for (const [i, record] of records.entries()) {
    const lane = lanes.rows[i]!;
    assert.equal(Number(record.total), Number(lane.total), `total of line ${record.line}`);
    assert.ok(
      Math.abs(Number(record.linehaul) + Number(record.fuel) - Number(record.total)) < 0.02,
      `line ${record.line}: linehaul + fuel = total`
    );
    assert.ok(Number(record.miles) > 0);
  }
  const sum = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) * 100) / 100;
  assert.equal(sum(records.map((r) => Number(r.total))), sum(lanes.rows.map((l) => Number(l.total))));
  // The download went through the proxy's catch-all GET route like every read.
  assert.ok(h().proxied.some((p) => p.path.includes(`/results?format=csv`) && p.route === '*' && p.status === 200));
  await close();

  const light = await open(EDITOR, 'bulk-rating', 'light');
  await chooseCompany(light.page, 'Lakeshore', 'Lakeshore Logistics (pro)');
  const lightRow = rowWith(light.page.getByTestId('bulk-jobs'), 'lanes.csv');
  await lightRow.getByRole('button', { name: 'Results' }).click();
  await rowWith(light.page.getByTestId('bulk-results'), 'Chicago, IL').waitFor();
  await shot(light.page, 'bulk-rating-light');
  await light.close();
});

test('Editor: a job refused at the daily bulk job limit offers the upgrade and the request-increase flow', async () => {
  // pro: 10 bulk jobs a day; Harbor has submitted all of today's.
  const harbor = await insertCompany(pool(), 'Harbor Freight Partners', 'pro');
  await pool().query(
    `INSERT INTO usage_events (company_id, feature_key, qty) SELECT $1, 'bulk_rating', 1 FROM generate_series(1, 10)`,
    [harbor]
  );
  const { page, close } = await open(EDITOR, 'bulk-rating');
  await chooseCompany(page, 'Harbor', 'Harbor Freight Partners (pro)');
  await page.getByTestId('bulk-allowance').getByText('0 left').waitFor();
  await page
    .locator('input[type="file"]')
    .setInputFiles({
      name: 'over.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`),
    });
  await page.getByRole('button', { name: 'Rate these lanes' }).click();
  await page.getByText(/bulk rating limit reached: 10 of 10 jobs used today/).waitFor();
  await page.getByTestId('upgrade-hint').getByText('The Enterprise plan includes unlimited jobs per day.').waitFor();

  await page.getByRole('button', { name: 'Request increase' }).click();
  await page.locator('#limit-requested').fill('25');
  await page.locator('#limit-reason').fill('month-end repricing of our lane book');
  await shot(page, 'bulk-rating-limit-dark');
  await page.getByRole('button', { name: 'Send request' }).click();
  await page.getByText('Increase requested').waitFor();

  const { rows } = await pool().query(
    `SELECT requested_by, requested_limit, agent_task_id FROM controlroom.limit_increase_requests WHERE company_id = $1`,
    [harbor]
  );
  assert.deepEqual(
    rows.map((r) => [r.requested_by, Number(r.requested_limit)]),
    [['grafana:edna', 25]]
  );
  const task = await pool().query(`SELECT fn_name, payload FROM agent_tasks WHERE id = $1`, [rows[0].agent_task_id]);
  assert.deepEqual(
    [task.rows[0].fn_name, task.rows[0].payload.type, task.rows[0].payload.current_limit],
    ['notify_ops', 'limit_increase_request', 10]
  );
  const proxied = [...h().proxied].reverse().find((p) => p.path === `${PROXY}/limits/requests`);
  assert.deepEqual([proxied?.user, proxied?.status], ['edna', 201], 'through the plugin.json route');
  await close();
});

test('Admin: failing over to the secondary region through the confirmation, seen on the page and in the audit log', async () => {
  const reason = 'INC-4711 us-east-1 degraded';
  const { page, close } = await open(ADMIN, 'failover');
  await page.getByRole('heading', { name: `Active region: ${EAST}` }).waitFor();
  await page.getByTestId(`region-${WEST}`).getByText('healthy', { exact: true }).waitFor();
  await shot(page, 'failover-before-dark');

  await page.locator('#failover-reason').fill(reason);
  await page.getByRole('button', { name: `Fail over to ${WEST}` }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText(`Fail over to ${WEST}?`).waitFor();
  await dialog.getByText(`Traffic moves to ${WEST} in 3 step(s): 10% → 50% → 100%`).waitFor();
  const confirm = dialog.getByRole('button', { name: 'Fail over', exact: true });
  assert.equal(await confirm.isDisabled(), true, 'the confirmation asks for the region name first');
  await dialog.getByPlaceholder(`Type "${WEST}" to confirm`).fill(WEST);
  await confirm.click();

  await page.getByText(`Failover to ${WEST} started`).waitFor();
  await page.getByRole('heading', { name: `Active region: ${WEST}` }).waitFor({ timeout: 30_000 });
  await page.getByTestId(`weight-${WEST}`).getByText('100%').waitFor();
  const event = rowWith(page.getByTestId('failover-events'), 'grafana:ana');
  await event.getByText('completed', { exact: true }).waitFor({ timeout: 15_000 });
  await event.getByText(`${EAST} → ${WEST} in steps 10 / 50 / 100%`).waitFor();
  await event.getByText(reason).waitFor();
  await shot(page, 'failover-dark');

  const audited = await pool().query<{ action: string; actor: string; payload: Record<string, unknown> }>(
    `SELECT action, actor, payload FROM audit_log WHERE action IN ('failover.requested', 'failover.completed') ORDER BY id`
  );
  assert.deepEqual(
    audited.rows.map((r) => [r.action, r.actor]),
    [
      ['failover.requested', 'grafana:ana'],
      ['failover.completed', 'controlroom:failover'],
    ]
  );
  assert.deepEqual(
    [audited.rows[0]!.payload.reason, audited.rows[0]!.payload.role, audited.rows[0]!.payload.to],
    [reason, 'Admin', WEST]
  );
  assert.ok(
    h().proxied.some(
      (p) =>
        p.method === 'POST' &&
        p.route === 'regions/*' &&
        p.target === `${apiUrl}/api/regions/failover` &&
        p.status === 202
    )
  );
  // The cutover's follow-ups (the regions' background jobs resumed, the integrity check) are audited after it
  // completed: wait for them, so that later tests see a settled audit log.
  await waitUntil(
    async () =>
      (
        await pool().query(
          `SELECT count(*)::int AS n FROM audit_log WHERE action IN ('failover.jobs_resume_sent', 'failover.integrity_passed', 'failover.integrity_failed')`
        )
      ).rows[0].n === 3,
    20_000,
    'resume calls and integrity check of the failover'
  );
  await close();

  const light = await open(ADMIN, 'failover', 'light');
  await rowWith(light.page.getByTestId('failover-events'), 'grafana:ana')
    .getByText('completed', { exact: true })
    .waitFor();
  await shot(light.page, 'failover-light');
  await light.close();
});

test('Admin: freezing releases with a reason', async () => {
  const reason = 'Peak season change freeze';
  const { page, close } = await open(ADMIN, 'release-freeze');
  const state = page.getByTestId('freeze-state');
  await state.getByText('Releases are open').waitFor();
  await page.locator('#freeze-reason').fill(reason);
  await page.getByRole('button', { name: 'Freeze releases' }).click();
  await page.getByText('Releases frozen', { exact: true }).waitFor();
  await state.getByText('Releases are frozen').waitFor();
  await state.getByText(/Frozen by hand/).waitFor();
  await page.getByText(`“${reason}” by grafana:ana`).waitFor();
  assert.equal(await page.getByRole('button', { name: 'End freeze' }).isEnabled(), true);
  await shot(page, 'release-freeze-dark');

  const actions = await pool().query(`SELECT kind, reason, actor, ended_at FROM controlroom.freeze_actions`);
  assert.deepEqual(actions.rows, [{ kind: 'freeze', reason, actor: 'grafana:ana', ended_at: null }]);
  const audited = await pool().query(`SELECT actor FROM audit_log WHERE action = 'release_freeze.manual_freeze'`);
  assert.deepEqual(audited.rows, [{ actor: 'grafana:ana' }]);
  await close();
});

test('Viewer: every control is disabled, and the proxy refuses a direct POST (reqAction) without changing anything', async () => {
  // People's actions only: the service's own background steps (a freeze sync, a failover follow-up, actor
  // controlroom:*) may still be audited while the pages are open, and are not what a Viewer could change.
  const counts = async () =>
    (
      await pool().query(
        `SELECT (SELECT count(*) FROM audit_log WHERE actor NOT LIKE 'controlroom:%')::int AS audit, (SELECT count(*) FROM controlroom.bulk_jobs)::int AS jobs,
                (SELECT count(*) FROM controlroom.freeze_actions)::int AS freezes, (SELECT count(*) FROM controlroom.failover_events)::int AS failovers,
                (SELECT string_agg(name || '=' || traffic_weight || CASE WHEN active THEN '*' ELSE '' END, ',' ORDER BY name) FROM controlroom.regions WHERE scope = 'live') AS regions`
      )
    ).rows[0];
  const before = await counts();

  const failover = await open(VIEWER, 'failover');
  const { page } = failover;
  await page.getByRole('heading', { name: `Active region: ${WEST}` }).waitFor();
  await page.getByText('Admin role required').waitFor();
  await page.getByText('you are signed in as Viewer').waitFor();
  assert.equal(await page.locator('#failover-reason').isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: `Fail over to ${EAST}` }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Shift traffic' }).isDisabled(), true);
  await shot(page, 'failover-viewer-dark');

  // What a page script could try: the proxy's reqRole stops it before Control Room is called.
  const attempts = [
    { path: 'regions/failover', body: { target: EAST, reason: 'viewer tries' } },
    { path: 'regions/shift', body: { weights: { [EAST]: 50 }, reason: 'viewer tries' } },
    { path: 'freeze/freezes', body: { reason: 'viewer tries' } },
    {
      path: 'freeze/overrides',
      body: { reason: 'viewer tries', expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
    },
    {
      path: 'bulk-rating/jobs',
      body: {
        companyId: lakeshore,
        lanes: [{ origin: 'Reno, NV', destination: 'Boise, ID', equipment: 'van', pickupDate: tomorrow }],
      },
    },
    {
      path: 'limits/requests',
      body: { companyId: lakeshore, feature: 'bulk_rating', requestedLimit: 50, reason: 'viewer tries' },
    },
  ];
  for (const attempt of attempts) {
    const res = await fromPage(page, 'POST', `${PROXY}/${attempt.path}`, attempt.body);
    assert.deepEqual([res.status, res.body], [403, { message: 'plugin proxy route access denied' }], attempt.path);
    const record = [...h().proxied].reverse().find((p) => p.path === `${PROXY}/${attempt.path}`);
    assert.deepEqual(
      [record?.user, record?.status, record?.target],
      ['vera', 403, null],
      `${attempt.path} never reached Control Room`
    );
  }
  // No route at all: the proxy's 404 (freeze/* does not match bare freeze, as in Grafana's route tree); a read is fine for a Viewer.
  assert.deepEqual(await fromPage(page, 'POST', `${PROXY}/companies`, {}), {
    status: 404,
    body: { message: 'plugin route match not found' },
  });
  assert.deepEqual(await fromPage(page, 'DELETE', `${PROXY}/freeze`), {
    status: 404,
    body: { message: 'plugin route match not found' },
  });
  assert.equal((await fromPage(page, 'GET', `${PROXY}/freeze`)).status, 200);
  // Proxied answers carry Grafana's Content-Security-Policy: sandbox.
  const read = await fetch(`${h().url}${PROXY}/freeze`, {
    headers: { cookie: `${USER_COOKIE}=${userCookie(VIEWER)}` },
  });
  assert.deepEqual([read.status, read.headers.get('content-security-policy')], [200, 'sandbox']);
  await failover.close();

  const freeze = await open(VIEWER, 'release-freeze');
  await freeze.page.getByTestId('freeze-state').getByText('Releases are frozen').waitFor();
  await freeze.page.getByText('Editor role required').waitFor();
  assert.equal(await freeze.page.locator('#freeze-reason').isDisabled(), true);
  assert.equal(await freeze.page.getByRole('button', { name: 'Freeze releases' }).isDisabled(), true);
  assert.equal(await freeze.page.getByRole('button', { name: 'Override the freeze' }).isDisabled(), true);
  assert.equal(await freeze.page.getByRole('button', { name: 'End freeze' }).isDisabled(), true);
  await freeze.close();

  const bulk = await open(VIEWER, 'bulk-rating');
  await chooseCompany(bulk.page, 'Lakeshore', 'Lakeshore Logistics (pro)');
  await bulk.page.getByText('Submitting bulk rating jobs: the Grafana Editor role is required').waitFor();
  await bulk.page
    .locator('input[type="file"]')
    .setInputFiles({
      name: 'more.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`),
    });
  await bulk.page.getByText('more.csv', { exact: true }).waitFor();
  assert.equal(await bulk.page.getByRole('button', { name: 'Rate these lanes' }).isDisabled(), true);
  await bulk.page.getByRole('tab', { name: 'Enter lanes' }).click();
  assert.equal(await bulk.page.getByRole('button', { name: 'Rate 1 lane' }).isDisabled(), true);
  await bulk.close();

  assert.deepEqual(await counts(), before);

  // A Grafana server admin with a Viewer org role is a Viewer: the page disables the controls, the proxy
  // refuses the route, and Control Room refuses them too when called with the secret and a context claiming Admin.
  const admin = await open(SERVER_ADMIN, 'failover');
  await admin.page.getByRole('heading', { name: `Active region: ${WEST}` }).waitFor();
  assert.equal(await admin.page.locator('#failover-reason').isDisabled(), true);
  const shift = await fromPage(admin.page, 'POST', `${PROXY}/regions/failover`, {
    target: EAST,
    reason: 'server admin tries',
  });
  assert.deepEqual([shift.status, shift.body], [403, { message: 'plugin proxy route access denied' }]);
  await admin.close();
  const root = h().identity.user(SERVER_ADMIN.login);
  const direct = await fetch(`${apiUrl}/api/regions/failover`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-controlroom-secret': API_SECRET,
      'x-grafana-context': JSON.stringify({
        UserID: root.id,
        UserUID: root.uid,
        OrgID: 1,
        Login: root.login,
        OrgRole: 'Admin',
        IsGrafanaAdmin: true,
      }),
      'x-grafana-id': await h().identity.sign(root.login),
    },
    body: JSON.stringify({ target: EAST, reason: 'server admin tries' }),
  });
  assert.equal(direct.status, 403);
  assert.match(
    ((await direct.json()) as { error: string }).error,
    /failover:write required; Grafana does not grant it to root/
  );
  assert.deepEqual(await counts(), before);
});

test('Admin: ending the manual freeze (a DELETE through the freeze/* route)', async () => {
  const { page, close } = await open(ADMIN, 'release-freeze');
  const state = page.getByTestId('freeze-state');
  await state.getByText('Releases are frozen').waitFor();
  const { rows } = await pool().query<{ id: string }>(
    `SELECT id FROM controlroom.freeze_actions WHERE ended_at IS NULL`
  );
  assert.equal(rows.length, 1);
  await page.getByRole('button', { name: 'End freeze' }).click();
  await page.getByText(`Ended freeze ${rows[0]!.id}`).waitFor();
  await state.getByText('Releases are open').waitFor();
  assert.ok(
    h().proxied.some(
      (p) =>
        p.method === 'DELETE' &&
        p.route === 'freeze/*' &&
        p.target === `${apiUrl}/api/freeze/freezes/${rows[0]!.id}` &&
        p.status === 200
    )
  );
  const ended = await pool().query(`SELECT ended_by FROM controlroom.freeze_actions WHERE id = $1`, [rows[0]!.id]);
  assert.deepEqual(ended.rows, [{ ended_by: 'grafana:ana' }]);
  await close();
});

test('Admin: the config page saves the API URL and secret to the app settings the proxy uses', async () => {
  const settings = h().settings;
  settings.jsonData = {};
  settings.secureJsonData = {};
  const { page, close } = await open(ADMIN, 'config');
  // Unconfigured, the proxy cannot reach Control Room.
  assert.equal((await fromPage(page, 'GET', `${PROXY}/freeze`)).status, 502);

  const save = page.getByRole('button', { name: 'Save settings' });
  assert.equal(await page.locator('#config-api-url').inputValue(), '');
  assert.equal(await save.isDisabled(), true);
  await page.locator('#config-api-url').fill(`${apiUrl}/api`);
  await page.getByText('Give the base URL only (the routes add /api/...)').waitFor();
  assert.equal(await save.isDisabled(), true);
  await page.locator('#config-api-url').fill(`${apiUrl}/`);
  await page.locator('#config-api-secret').fill(API_SECRET);
  assert.equal(await save.isEnabled(), true);
  await shot(page, 'config-dark');
  // Saving reloads the page, as Grafana needs for the app to see its new settings.
  await Promise.all([page.waitForEvent('load'), save.click()]);
  await page.waitForFunction(
    () => (globalThis as unknown as { __harness?: { state: string } }).__harness?.state === 'ready'
  );

  assert.deepEqual(settings.jsonData, { apiUrl });
  assert.deepEqual(settings.secureJsonData, { apiSecret: API_SECRET });
  assert.equal(await page.locator('#config-api-url').inputValue(), apiUrl);
  assert.equal(await page.locator('#config-api-secret').inputValue(), 'configured');
  await page.getByRole('button', { name: 'Reset' }).waitFor();

  // The settings API never gives the secret back; the proxy uses it.
  const stored = await fromPage(page, 'GET', `/api/plugins/${PLUGIN}/settings`);
  assert.equal(stored.status, 200);
  assert.deepEqual(
    [stored.body.jsonData, stored.body.secureJsonFields, 'secureJsonData' in stored.body],
    [{ apiUrl }, { apiSecret: true }, false]
  );
  assert.ok(!JSON.stringify(stored.body).includes(API_SECRET));
  const freeze = await fromPage(page, 'GET', `${PROXY}/freeze`);
  assert.deepEqual([freeze.status, typeof freeze.body.frozen], [200, 'boolean']);
  await close();

  // Only an Admin may change them.
  const editor = await open(EDITOR, 'config');
  const refused = await fromPage(editor.page, 'POST', `/api/plugins/${PLUGIN}/settings`, {
    jsonData: { apiUrl: 'http://elsewhere:1' },
  });
  assert.equal(refused.status, 403);
  await editor.close();
  assert.deepEqual(settings.jsonData, { apiUrl });
});

// ---------------------------------------------------------------------------------------------------
// Pricing: the registry as the pricing team left it: v1 retired, v2 active, v3 the candidate on 20% of lanes.

let pricingSeeded = false;
async function seedPricingModels(): Promise<void> {
  if (pricingSeeded) return;
  pricingSeeded = true;
  const team = 'grafana:pricing-team';
  await registerModel(pool(), { ...structuredClone(SEED_V1), version: 'v2', minimumCharge: 375 }, team);
  await activate(pool(), 'v2', team);
  await registerModel(pool(), { ...structuredClone(SEED_V1), version: 'v3', minimumCharge: 400 }, team);
  await promoteCandidate(pool(), 'v3', 0.2, team);
}

const registry = async () =>
  (
    await pool().query<{ version: string; status: string }>(
      `SELECT version, status FROM controlroom.pricing_models ORDER BY version`
    )
  ).rows
    .map((r) => `${r.version}=${r.status}`)
    .join(',');

test('Viewer: the Pricing page shows the registry with its controls disabled, and the proxy refuses the registry writes', async () => {
  await seedPricingModels();
  const audits = async () =>
    (await pool().query(`SELECT count(*)::int AS n FROM audit_log WHERE actor NOT LIKE 'controlroom:%'`)).rows[0]
      .n as number;
  const [beforeRegistry, beforeAudits] = [await registry(), await audits()];

  const { page, close } = await open(VIEWER, 'pricing');
  await page.getByTestId('pricing-active-model').getByText('Active model: v2').waitFor();
  await page.getByTestId('pricing-candidate').getByText('Candidate v3 prices 20% of lanes').waitFor();
  await page.getByText('Admin role required').waitFor();
  for (const id of [
    'pricing-reason',
    'pricing-candidate-share',
    'pricing-set-candidate',
    'pricing-activate',
    'pricing-rollback',
  ]) {
    assert.equal(await page.getByTestId(id).isDisabled(), true, `${id} is disabled for a Viewer`);
  }
  await shot(page, 'pricing-viewer-dark');

  const attempts = [
    { method: 'POST', path: 'pricing/rollback', body: { reason: 'viewer tries' } },
    { method: 'POST', path: 'pricing/models/v3/activate', body: { reason: 'viewer tries' } },
    { method: 'POST', path: 'pricing/models/v3/candidate', body: { share: 0.5, reason: 'viewer tries' } },
    { method: 'DELETE', path: 'pricing/candidate', body: { reason: 'viewer tries' } },
  ];
  for (const attempt of attempts) {
    const res = await fromPage(page, attempt.method, `${PROXY}/${attempt.path}`, attempt.body);
    assert.deepEqual([res.status, res.body], [403, { message: 'plugin proxy route access denied' }], attempt.path);
    const record = [...h().proxied].reverse().find((p) => p.path === `${PROXY}/${attempt.path}`);
    assert.deepEqual(
      [record?.user, record?.status, record?.target],
      ['vera', 403, null],
      `${attempt.path} never reached Control Room`
    );
  }
  await close();
  assert.deepEqual([await registry(), await audits()], [beforeRegistry, beforeAudits]);
});

test('Admin: rolling back the pricing model through the confirmation, seen on the page and in the audit log', async () => {
  await seedPricingModels();
  const reason = 'PRC-31 v2 quotes run 12% high in the Southeast';
  const { page, close } = await open(ADMIN, 'pricing');
  await page.getByTestId('pricing-active-model').getByText('Active model: v2').waitFor();
  await page.getByTestId('pricing-model-v1').getByText('retired', { exact: true }).waitFor();
  await shot(page, 'pricing-before-dark');

  await page.getByTestId('pricing-reason').fill(reason);
  await page.getByTestId('pricing-rollback').click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Roll back to v1?').waitFor();
  await dialog.getByText('v1 becomes the active model again and prices every lane; v2 is retired.').waitFor();
  const confirm = dialog.getByRole('button', { name: 'Roll back', exact: true });
  assert.equal(await confirm.isDisabled(), true, 'the confirmation asks for the version first');
  await dialog.getByPlaceholder('Type "v1" to confirm').fill('v1');
  await confirm.click();

  await page.getByText('Rolled back: v1 is the active model again').waitFor();
  await page.getByTestId('pricing-active-model').getByText('Active model: v1').waitFor();
  await page.getByTestId('pricing-model-v2').getByText('retired', { exact: true }).waitFor();
  await shot(page, 'pricing-rolled-back-dark');
  await close();

  assert.equal(await registry(), 'v1=active,v2=retired,v3=candidate');
  const audited = await pool().query<{
    actor: string;
    target: string;
    payload: Record<string, unknown>;
    ip_address: string | null;
  }>(
    `SELECT actor, target, payload, host(ip_address) AS ip_address FROM audit_log WHERE action = 'pricing_model.rolled_back'`
  );
  assert.deepEqual(audited.rows, [
    {
      actor: 'grafana:ana',
      target: 'pricing_models/v1',
      payload: { from: 'v2', to: 'v1', reason },
      ip_address: '127.0.0.1',
    },
  ]);
  assert.ok(
    h().proxied.some(
      (p) =>
        p.method === 'POST' &&
        p.route === 'pricing/*' &&
        p.target === `${apiUrl}/api/pricing/rollback` &&
        p.status === 200
    )
  );
});

/** An alert group's firing notification as the receiver's job stores it: the incident opens unacknowledged. */
async function openIncident(groupKey: string, alertname: string): Promise<string> {
  await storeNotification(
    pool(),
    'alertmanager',
    alertmanagerPayload.parse(
      amPayload(groupKey, [{ alertname, severity: 'P1' }], { commonLabels: { alertname, severity: 'P1' } })
    )
  );
  await recordIncidentTimeline(pool(), 'alertmanager', groupKey, { timeZone: 'UTC' });
  const { rows } = await pool().query<{ id: string }>(`SELECT id FROM controlroom.incidents WHERE group_key = $1`, [
    groupKey,
  ]);
  return String(rows[0]!.id);
}

test('Incidents: an Editor acknowledges an incident; a Viewer cannot, and the proxy refuses a direct POST', async () => {
  const id = await openIncident('{}:{alertname="ActiveRegionDown"}', 'ActiveRegionDown');
  const acknowledgedBy = async () =>
    (await pool().query(`SELECT acknowledged_by, acknowledged_via FROM controlroom.incidents WHERE id = $1`, [id]))
      .rows[0];

  const viewer = await open(VIEWER, 'incidents');
  const row = viewer.page.getByTestId(`incident-${id}`);
  await row.getByText('ActiveRegionDown').waitFor();
  await viewer.page.getByText('Editor role required').waitFor();
  assert.equal(await viewer.page.getByTestId(`incident-acknowledge-${id}`).isDisabled(), true);
  assert.equal(await viewer.page.getByTestId(`incident-add-note-${id}`).isDisabled(), true);
  await shot(viewer.page, 'incidents-viewer-dark');
  for (const path of [`incidents/${id}/acknowledge`, `incidents/${id}/notes`]) {
    const res = await fromPage(
      viewer.page,
      'POST',
      `${PROXY}/${path}`,
      path.endsWith('notes') ? { text: 'viewer tries' } : {}
    );
    assert.deepEqual([res.status, res.body], [403, { message: 'plugin proxy route access denied' }], path);
  }
  await viewer.close();
  assert.deepEqual(await acknowledgedBy(), { acknowledged_by: null, acknowledged_via: null });

  const { page, close } = await open(EDITOR, 'incidents');
  await page.getByTestId(`incident-${id}`).getByText('unacknowledged', { exact: true }).waitFor();
  await page.getByTestId(`incident-acknowledge-${id}`).click();
  await page.getByText(`Incident ${id} acknowledged`).waitFor();
  await page
    .getByTestId(`incident-${id}`)
    .getByText(/by grafana:edna \(Grafana\)/)
    .waitFor();
  await shot(page, 'incidents-acknowledged-dark');
  await close();

  assert.deepEqual(await acknowledgedBy(), { acknowledged_by: 'grafana:edna', acknowledged_via: 'grafana' });
  const audited = await pool().query(
    `SELECT actor, payload->>'role' AS role FROM audit_log WHERE action = 'incident.acknowledged' AND target = $1`,
    [`incidents/${id}`]
  );
  assert.deepEqual(audited.rows, [{ actor: 'grafana:edna', role: 'Editor' }]);
  assert.ok(
    h().proxied.some(
      (p) =>
        p.method === 'POST' &&
        p.route === 'incidents/*' &&
        p.target === `${apiUrl}/api/incidents/${id}/acknowledge` &&
        p.status === 200
    )
  );
});

test('Incidents: an Editor silences an incident in the real Alertmanager; a Viewer cannot', async () => {
  const id = await openIncident('{}:{alertname="CarrierApiErrors"}', 'CarrierApiErrors');
  const silences = async () =>
    (await (await fetch(`${alertmanager!.url}/api/v2/silences`)).json()) as Array<{
      id: string;
      createdBy: string;
      comment: string;
      startsAt: string;
      endsAt: string;
      matchers: Array<{ name: string; value: string; isEqual: boolean; isRegex: boolean }>;
    }>;

  const viewer = await open(VIEWER, 'incidents');
  await viewer.page.getByTestId(`incident-${id}`).getByText('CarrierApiErrors').waitFor();
  assert.equal(await viewer.page.getByTestId(`incident-silence-${id}`).isDisabled(), true);
  const refused = await fromPage(viewer.page, 'POST', `${PROXY}/incidents/${id}/silence`, {
    durationMinutes: 60,
    reason: 'viewer tries',
  });
  assert.deepEqual([refused.status, refused.body], [403, { message: 'plugin proxy route access denied' }]);
  await viewer.close();
  assert.deepEqual(await silences(), []);

  const { page, close } = await open(EDITOR, 'incidents');
  await page.getByTestId(`incident-silence-${id}`).click();
  await page.getByTestId('incident-silence-duration').getByLabel('2 h', { exact: true }).check();
  await page.getByTestId('incident-silence-reason').fill('Carrier status page reports an outage');
  await shot(page, 'incidents-silence-dialog-dark');
  const before = Date.now();
  await page.getByTestId('incident-silence-confirm').click();
  await page.getByText(new RegExp(`Incident ${id} silenced until`)).waitFor();
  await page
    .getByTestId(`incident-silenced-${id}`)
    .getByText(/by grafana:edna: “Carrier status page reports an outage”/)
    .waitFor();
  await shot(page, 'incidents-silenced-dark');
  await close();

  const [made, ...others] = await silences();
  assert.equal(others.length, 0, 'one silence');
  assert.equal(made!.createdBy, 'grafana:edna');
  assert.equal(made!.comment, 'Carrier status page reports an outage');
  assert.deepEqual(
    made!.matchers.map((m) => [m.name, m.value, m.isEqual, m.isRegex]).sort(),
    [
      ['alertname', 'CarrierApiErrors', true, false],
      ['severity', 'P1', true, false],
    ]
  );
  const hours = (Date.parse(made!.endsAt) - before) / 3_600_000;
  assert.ok(hours > 1.99 && hours < 2.01, `expires in 2 h, not ${hours} h`);
  const audited = await pool().query(
    `SELECT actor, payload->>'silence_id' AS silence_id FROM audit_log WHERE action = 'incident.silenced' AND target = $1`,
    [`incidents/${id}`]
  );
  assert.deepEqual(audited.rows, [{ actor: 'grafana:edna', silence_id: made!.id }]);
});
