import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { insertCompany } from '../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { seriesOf } from '../testing/prom-text.ts';
import { testExporter } from '../testing/exporter.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(
    `TRUNCATE agent_tasks, usage_events, quotes, invoices, directory_docs, directory_companies, org_entitlements,
              companies RESTART IDENTITY CASCADE;
     DELETE FROM controlroom.exporter_state; DELETE FROM controlroom.usage_daily`
  );
});

async function addTasks(fnName: string, status: string, count: number, ageSeconds = 0): Promise<void> {
  await db.pool.query(
    `INSERT INTO agent_tasks (fn_name, status, created_at, updated_at)
     SELECT $1, $2, now() - make_interval(secs => $4), now() - make_interval(secs => $4) FROM generate_series(1, $3)`,
    [fnName, status, count, ageSeconds]
  );
}

describe('agent tasks', () => {
  test('completions by function and status; queue depth and oldest pending age', async () => {
    await addTasks('send_quote_email', 'success', 7, 3600);
    await addTasks('send_quote_email', 'failed', 2, 30);
    await addTasks('sync_carrier_docs', 'success', 1, 1);
    await addTasks('sync_carrier_docs', 'queued', 3, 90);
    await addTasks('sync_carrier_docs', 'running', 2, 10);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.deepEqual(Object.fromEntries(seriesOf(m, 'tms_agent_tasks_completed_total')), {
      'tms_agent_tasks_completed_total{fn_name="send_quote_email",status="failed"}': 2,
      'tms_agent_tasks_completed_total{fn_name="send_quote_email",status="success"}': 7,
      'tms_agent_tasks_completed_total{fn_name="sync_carrier_docs",status="success"}': 1,
    });
    assert.equal(m.get('tms_agent_tasks_pending{fn_name="sync_carrier_docs"}'), 3);
    assert.equal(m.get('tms_agent_tasks_pending{fn_name="send_quote_email"}'), 0);
    assert.equal(m.get('tms_agent_tasks_running{fn_name="sync_carrier_docs"}'), 2);
    const age = m.get('tms_agent_task_oldest_pending_age_seconds')!;
    assert.ok(age >= 90 && age < 100, `oldest pending age ${age}`);
  });

  test('a completion is counted once as it moves from the settle window into the persisted totals', async () => {
    const exporter = testExporter(db.pool, { EXPORTER_SETTLE_SECONDS: 1 });
    await addTasks('reprice_lanes', 'queued', 4);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_agent_tasks_pending', { fn_name: 'reprice_lanes' }), 4);

    await db.pool.query(`UPDATE agent_tasks SET status = 'success' WHERE id <= 3`); // trigger stamps updated_at
    await exporter.runner.refreshAll(); // inside the settle window: provisional
    assert.equal(
      await exporter.value('tms_agent_tasks_completed_total', { fn_name: 'reprice_lanes', status: 'success' }),
      3
    );
    assert.equal(await exporter.value('tms_agent_tasks_pending', { fn_name: 'reprice_lanes' }), 1);

    await new Promise((r) => setTimeout(r, 1_200));
    await exporter.runner.refreshAll(); // now settled and persisted
    assert.equal(
      await exporter.value('tms_agent_tasks_completed_total', { fn_name: 'reprice_lanes', status: 'success' }),
      3
    );
    const restarted = testExporter(db.pool, { EXPORTER_SETTLE_SECONDS: 1 });
    await restarted.runner.refreshAll();
    assert.equal(
      await restarted.value('tms_agent_tasks_completed_total', { fn_name: 'reprice_lanes', status: 'success' }),
      3
    );
    await db.pool.query(`DELETE FROM agent_tasks WHERE status = 'success'`); // TMS purge
    await restarted.runner.refreshAll();
    assert.equal(
      await restarted.value('tms_agent_tasks_completed_total', { fn_name: 'reprice_lanes', status: 'success' }),
      3
    );
    assert.equal(await restarted.value('tms_agent_tasks_pending', { fn_name: 'reprice_lanes' }), 1);
  });
  test('a completion counts once whatever the TMS does to the row afterwards; a retry that finishes again counts', async () => {
    const exporter = testExporter(db.pool, { EXPORTER_SETTLE_SECONDS: 1 });
    const counts = async (e = exporter) => ({
      success: await e.value('tms_agent_tasks_completed_total', { fn_name: 'geocode_stops', status: 'success' }),
      failed: await e.value('tms_agent_tasks_completed_total', { fn_name: 'geocode_stops', status: 'failed' }),
    });
    const settle = () => new Promise((r) => setTimeout(r, 1_200));
    await addTasks('geocode_stops', 'running', 5);
    await db.pool.query(`UPDATE agent_tasks SET status = 'success' WHERE id <= 3`);
    await db.pool.query(`UPDATE agent_tasks SET status = 'failed' WHERE id = 4`);
    await exporter.runner.refreshAll();
    assert.deepEqual(await counts(), { success: 3, failed: 1 });
    await settle();
    await exporter.runner.refreshAll(); // settled and persisted

    // After the settle window the TMS touches the finished rows: payload only, the same status saved
    // again, updated_at set by hand, and a status corrected from success to failed.
    await db.pool.query(`UPDATE agent_tasks SET payload = payload || '{"archived": true}' WHERE id <= 4`);
    await db.pool.query(`UPDATE agent_tasks SET status = 'success' WHERE id <= 3`);
    await db.pool.query(`UPDATE agent_tasks SET updated_at = now() WHERE id <= 4`);
    await db.pool.query(`UPDATE agent_tasks SET status = 'failed' WHERE id = 3`);
    await exporter.runner.refreshAll();
    assert.deepEqual(await counts(), { success: 3, failed: 1 });
    await settle();
    await exporter.runner.refreshAll();
    assert.deepEqual(await counts(), { success: 3, failed: 1 });

    // A retry runs task 4 again (back to queued, then running) and it succeeds: a second completion.
    await db.pool.query(`UPDATE agent_tasks SET status = 'queued' WHERE id = 4`);
    await db.pool.query(`UPDATE agent_tasks SET status = 'running' WHERE id = 4`);
    await db.pool.query(`UPDATE agent_tasks SET status = 'success', payload = '{"attempt": 2}' WHERE id = 4`);
    await exporter.runner.refreshAll();
    assert.deepEqual(await counts(), { success: 4, failed: 1 });
    await settle();
    await exporter.runner.refreshAll();
    await db.pool.query(`UPDATE agent_tasks SET payload = '{"attempt": 2, "archived": true}' WHERE id = 4`);
    const restarted = testExporter(db.pool, { EXPORTER_SETTLE_SECONDS: 1 });
    await restarted.runner.refreshAll();
    assert.deepEqual(await counts(restarted), { success: 4, failed: 1 });
  });
});

const tenant = (name: string, plan: string) =>
  insertCompany(db.pool, name, plan, { stripeCustomerId: 'cus', stripeSubscriptionId: 'sub' });

async function use(companyId: string, feature: string, qty: number, daysAgo = 0): Promise<void> {
  await db.pool.query(
    `INSERT INTO usage_events (company_id, feature_key, qty, occurred_at) VALUES ($1, $2, $3, now() - make_interval(days => $4))`,
    [companyId, feature, qty, daysAgo]
  );
}

describe('usage against plan limits', () => {
  test('ratio against the included amount for tenants at or above 80%, bands for all, info for those listed', async () => {
    // starter rates: 50 included (soft), hard limit 100 per month
    const calm = await tenant('Calm Freight', 'starter');
    const warm = await tenant('Warm Freight', 'starter');
    const hot = await tenant('Hot Freight', 'starter');
    const over = await tenant('Over Freight', 'starter');
    await use(calm, 'rates', 25);
    await use(warm, 'rates', 40);
    await use(warm, 'rates', 2);
    await use(hot, 'rates', 47);
    await use(over, 'rates', 60);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.deepEqual(Object.fromEntries(seriesOf(m, 'tms_usage_ratio')), {
      [`tms_usage_ratio{company_id="${warm}",feature="rates"}`]: 0.84,
      [`tms_usage_ratio{company_id="${hot}",feature="rates"}`]: 0.94,
      [`tms_usage_ratio{company_id="${over}",feature="rates"}`]: 1.2,
    });
    assert.equal(m.get('tms_usage_companies{band="lt80",feature="rates"}'), 1);
    assert.equal(m.get('tms_usage_companies{band="80to90",feature="rates"}'), 1);
    assert.equal(m.get('tms_usage_companies{band="90to100",feature="rates"}'), 1);
    assert.equal(m.get('tms_usage_companies{band="over",feature="rates"}'), 1);
    assert.equal(m.get('tms_usage_companies{band="lt80",feature="directory"}'), 4);
    assert.equal(m.get(`tms_company_info{company_id="${over}",name="Over Freight",plan="starter"}`), 1);
    assert.equal(m.get(`tms_company_info{company_id="${calm}",name="Calm Freight",plan="starter"}`), undefined);
  });

  test('caps the listed tenants, worst first, and counts only the current period', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await tenant(`Tenant ${i}`, 'pro'));
    // pro api_access: 5000 included per day (hard 10000); yesterday's calls do not count today
    for (const [i, id] of ids.entries()) await use(id, 'api_access', 4_000 + i * 250);
    await use(ids[0]!, 'api_access', 4_500, 1);
    const exporter = testExporter(db.pool, { EXPORTER_USAGE_CAP: 2 });
    await exporter.runner.refreshAll();
    const ratios = seriesOf(await exporter.scrape(), 'tms_usage_ratio');
    assert.deepEqual(Object.fromEntries(ratios), {
      [`tms_usage_ratio{company_id="${ids[4]}",feature="api_access"}`]: 1.0,
      [`tms_usage_ratio{company_id="${ids[3]}",feature="api_access"}`]: 0.95,
    });
    assert.equal(await exporter.value('tms_usage_companies', { feature: 'api_access', band: '80to90' }), 2);

    await use(ids[0]!, 'api_access', 1_250); // 4000 + 1250 today -> 1.05, now the worst
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_usage_ratio', { company_id: ids[0]!, feature: 'api_access' }), 1.05);
    const restarted = testExporter(db.pool, { EXPORTER_USAGE_CAP: 2 });
    await restarted.runner.refreshAll();
    assert.equal(await restarted.value('tms_usage_ratio', { company_id: ids[0]!, feature: 'api_access' }), 1.05);
  });

  test('the ranking kept refresh by refresh lists the same tenants, in the same order, as one built afresh', async () => {
    // starter rates: 50 included per month. Ten tenants climb past 80 % and overtake each other in
    // uneven steps, with ties; the cap lists 4. A new exporter ranks everything from scratch each round.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await tenant(`Climber ${i}`, 'starter'));
    const kept = testExporter(db.pool, { EXPORTER_USAGE_CAP: 4 });
    const listed = (m: Map<string, number>) => Object.fromEntries(seriesOf(m, 'tms_usage_ratio'));
    for (let round = 0; round < 8; round++) {
      for (const [i, id] of ids.entries()) {
        const qty = ((i * 7 + round * 3) % 5) * 2 + (i % 3 === round % 3 ? 6 : 0);
        if (qty > 0) await use(id, 'rates', qty);
      }
      await kept.runner.refreshAll();
      const afresh = testExporter(db.pool, { EXPORTER_USAGE_CAP: 4 });
      await afresh.runner.refreshAll();
      const [mk, mf] = [await kept.scrape(), await afresh.scrape()];
      assert.deepEqual(listed(mk), listed(mf), `round ${round}: tms_usage_ratio`);
      assert.deepEqual(
        Object.fromEntries(seriesOf(mk, 'tms_usage_companies')),
        Object.fromEntries(seriesOf(mf, 'tms_usage_companies')),
        `round ${round}: bands`
      );
      assert.deepEqual(
        Object.fromEntries(seriesOf(mk, 'tms_company_info')),
        Object.fromEntries(seriesOf(mf, 'tms_company_info')),
        `round ${round}: tms_company_info`
      );
    }
    // By the end every tenant is past 80 %, so the cap decides who is listed.
    assert.equal(await kept.value('tms_usage_companies', { feature: 'rates', band: 'lt80' }), 0);
    assert.equal(Object.keys(listed(await kept.scrape())).length, 4);
  });

  test('equal ratios are listed by company id, kept and afresh', async () => {
    // The ranking breaks ties by the limits' position as loaded, which is company id order only because
    // loadPlanLimits sorts by it: six tenants at the same ratio, a cap of 3, must list the three lowest ids.
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await tenant(`Tied ${i}`, 'starter'));
    const kept = testExporter(db.pool, { EXPORTER_USAGE_CAP: 3 });
    await kept.runner.refreshAll();
    for (const id of ids) await use(id, 'rates', 45); // 45 of 50 included: 0.9 each
    await kept.runner.refreshAll();
    const lowest = [...ids].sort().slice(0, 3);
    const listedIds = (m: Map<string, number>) =>
      seriesOf(m, 'tms_usage_ratio').map(([series]) => /company_id="([^"]+)"/.exec(series)![1]);
    assert.deepEqual(listedIds(await kept.scrape()), lowest);
    const afresh = testExporter(db.pool, { EXPORTER_USAGE_CAP: 3 });
    await afresh.runner.refreshAll();
    assert.deepEqual(listedIds(await afresh.scrape()), lowest);
  });

  test('a refresh folds only the new events; another instance moving the cursor triggers a reload', async () => {
    const id = await tenant('Steady Freight', 'starter'); // rates: 50 included per month
    await use(id, 'rates', 35);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_usage_companies', { feature: 'rates', band: 'lt80' }), 1);

    // If a refresh re-read the rollup, this tampering would show; an incremental one adds deltas only.
    await db.pool.query(`UPDATE controlroom.usage_daily SET qty = 0`);
    await use(id, 'rates', 7);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), 0.84);

    // A second instance folds the next events; the first notices the cursor moved and reloads.
    await use(id, 'rates', 5);
    await testExporter(db.pool).runner.refreshAll();
    await exporter.runner.refreshAll();
    // Reloaded: 7 + 5 in the rollup = 0.24, below the listing threshold; without a reload it would
    // read 0.94 from memory.
    assert.equal(await exporter.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), undefined);
    assert.equal(await exporter.value('tms_usage_companies', { feature: 'rates', band: 'lt80' }), 1);
  });
});

describe('business gauges', () => {
  test('funnels, revenue, pricing variance and carrier documents', async () => {
    const a = await tenant('A', 'pro');
    const b = await tenant('B', 'enterprise');
    const trial = await tenant('Trial', 'starter');
    await db.pool.query(
      `UPDATE org_entitlements SET trial_ends_at = now() - interval '3 days', stripe_subscription_id = NULL WHERE company_id = $1`,
      [trial]
    );
    await db.pool.query(`UPDATE org_entitlements SET trial_ends_at = now() - interval '5 days' WHERE company_id = $1`, [
      a,
    ]);
    await db.pool.query(
      `INSERT INTO quotes (company_id, status, proposed_rate, created_at) VALUES
         ($1, 'accepted', 1000, now() - interval '1 day'), ($1, 'accepted', 2000, now()),
         ($1, 'rejected', 1500, now()), ($1, 'sent', 900, now()), ($1, 'draft', 700, now()),
         ($1, 'accepted', 1000, now() - interval '40 days')`,
      [a]
    );
    await db.pool.query(`INSERT INTO invoices (quote_id, amount) VALUES (1, 1100), (2, 1900)`);
    await db.pool.query(
      `INSERT INTO directory_companies (company_id, company_name, status, invited_at, onboarded_at) VALUES
         ($1, 'Carrier 1', 'onboarded', now() - interval '3 days', now()),
         ($1, 'Carrier 2', 'invited', now() - interval '2 days', NULL),
         ($1, 'Carrier 3', 'invited', now() - interval '45 days', NULL)`,
      [b]
    );
    await db.pool.query(
      `INSERT INTO directory_docs (directory_company_id, kind, expires_at) VALUES
         (1, 'insurance', now() - interval '1 day'), (1, 'insurance', now() + interval '3 days'),
         (1, 'insurance', now() + interval '90 days'), (2, 'w9', NULL)`
    );
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.equal(m.get('tms_funnel_entered{funnel="quote_to_book"}'), 4);
    assert.equal(m.get('tms_funnel_converted{funnel="quote_to_book"}'), 2);
    assert.equal(m.get('tms_conversion_ratio{funnel="quote_to_book"}'), 0.5);
    assert.equal(m.get('tms_funnel_entered{funnel="trial_to_paid"}'), 2);
    assert.equal(m.get('tms_funnel_converted{funnel="trial_to_paid"}'), 1);
    assert.equal(m.get('tms_funnel_entered{funnel="invite_to_onboard"}'), 2);
    assert.equal(m.get('tms_conversion_ratio{funnel="invite_to_onboard"}'), 0.5);
    assert.equal(m.get('tms_mrr_dollars'), 299 + 999);
    assert.equal(m.get('tms_paying_accounts'), 2);
    assert.equal(m.get('tms_arpa_dollars'), (299 + 999) / 2);
    assert.ok(Math.abs(m.get('tms_quote_variance_ratio')! - (0.1 + 0.05) / 2) < 1e-9);
    assert.equal(m.get('tms_directory_docs{kind="insurance",status="expired"}'), 1);
    assert.equal(m.get('tms_directory_docs{kind="insurance",status="expiring_soon"}'), 1);
    assert.equal(m.get('tms_directory_docs{kind="insurance",status="valid"}'), 1);
    assert.equal(m.get('tms_directory_docs{kind="w9",status="valid"}'), 1);
    assert.equal(m.get('tms_directory_docs{kind="w9",status="expired"}'), 0);
    assert.equal(m.get('tms_companies{plan="pro"}'), 1);
  });

  test('one failing collector leaves the others and /metrics working', async () => {
    await addTasks('notify_ops', 'success', 2, 600);
    await db.pool.query(`ALTER TABLE directory_docs RENAME TO directory_docs_moved`);
    try {
      const exporter = testExporter(db.pool);
      await exporter.runner.refreshAll();
      const m = await exporter.scrape();
      assert.equal(m.get('controlroom_exporter_collect_errors_total{collector="business"}'), 1);
      assert.equal(m.get('controlroom_exporter_collect_errors_total{collector="agent_tasks"}'), 0);
      assert.equal(m.get('tms_agent_tasks_completed_total{fn_name="notify_ops",status="success"}'), 2);
      assert.equal(m.get('controlroom_exporter_last_success_timestamp_seconds{collector="business"}'), undefined);
      assert.ok(m.get('controlroom_exporter_last_success_timestamp_seconds{collector="agent_tasks"}')! > 0);
      assert.ok(m.get('controlroom_exporter_collect_duration_seconds{collector="business"}')! >= 0);
    } finally {
      await db.pool.query(`ALTER TABLE directory_docs_moved RENAME TO directory_docs`);
    }
  });
});
