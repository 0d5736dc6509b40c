import assert from 'node:assert/strict';
import http from 'node:http';
import {
  BulkJobResponse,
  BulkResultsResponse,
  LimitRefusalDetails,
  SubmitBulkJobResponse,
} from '@controlroom/contract';
import { after, before, describe, test } from 'node:test';
import { startReceiverHarness, waitUntil, type ReceiverHarness } from '../../testing/receiver-harness.ts';
import { insertCompany } from '../../testing/companies.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
let h: ReceiverHarness;
let pro: string;
let starter: string;
let tight: string;

const as = (role: string, login = `${role.toLowerCase()}.user`) => ({
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: login, OrgRole: role, UserID: 3, OrgID: 1 }),
});
const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

const company = (name: string, plan: string) => insertCompany(h.db.pool, name, plan);

async function upload(companyId: string, csv: string, headers: Record<string, string> = as('Editor')) {
  const res = await fetch(`${h.base}/api/bulk-rating/jobs?company_id=${companyId}&filename=lanes.csv`, {
    method: 'POST',
    headers: { 'content-type': 'text/csv', ...headers },
    body: csv,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

const waitForJob = (id: string) =>
  waitUntil(
    async () => {
      const res = await fetch(`${h.base}/api/bulk-rating/jobs/${id}`, { headers: as('Viewer') });
      const { job } = BulkJobResponse.parse(await res.json());
      return job.status === 'succeeded' || job.status === 'failed' ? job : null;
    },
    30_000,
    `job ${id}`
  );

before(async () => {
  h = await startReceiverHarness({
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: API_SECRET,
    BULK_MAX_UPLOAD_BYTES: '200000',
    BULK_MAX_LANES: '2000',
  });
  pro = await company('Lakeshore Logistics', 'pro');
  starter = await company('Tiny Freight', 'starter');
  tight = await company('Tight Budget Brokers', 'pro');
  // pro: 10 bulk jobs a day (5 included); Tight has submitted all ten today.
  await h.db.pool.query(
    `INSERT INTO usage_events (company_id, feature_key, qty) SELECT $1, 'bulk_rating', 1 FROM generate_series(1, 10)`,
    [tight]
  );
});
after(async () => h.stop());

describe('submission', () => {
  test('good rows are accepted, bad rows reported with line and reason; the job rates, records usage and reports its outcome', async () => {
    const csv = [
      'Origin,Destination,Equipment,Pickup Date',
      `"Chicago, IL","Atlanta, GA",van,${tomorrow}`,
      `"Dallas, TX",90001,reefer,${tomorrow}`,
      `"Springfeld, ZZ","Denver, CO",van,${tomorrow}`,
      `"Denver, CO","Phoenix, AZ",boxcar,2020-01-01`,
      `"Memphis, TN","Nashville, TN",flatbed,${tomorrow}`,
      `"Seattle, WA"`,
    ].join('\n');
    const res = await upload(pro, csv);
    assert.equal(res.status, 202);
    SubmitBulkJobResponse.parse(res.body);
    assert.equal(res.body.lanesAccepted, 3);
    assert.equal(res.body.rejectedRows, 3);
    assert.deepEqual(
      res.body.errors.map((e: { line: number }) => e.line),
      [4, 5, 7]
    );
    assert.match(res.body.errors[0].reason, /unknown origin 'Springfeld, ZZ'/);
    assert.match(
      res.body.errors[1].reason,
      /equipment 'boxcar' is not one of van, reefer, flatbed; pickup_date 2020-01-01 is in the past/
    );
    assert.equal(res.body.errors[2].reason, 'expected 4 columns, found 1');
    assert.deepEqual(
      [res.body.allowance.limit, res.body.allowance.included, res.body.allowance.used, res.body.allowance.unit],
      [10, 5, 1, 'jobs']
    );

    const job = await waitForJob(res.body.job.id);
    assert.deepEqual([job.status, job.lanesRated, job.lanesFailed, job.progress], ['succeeded', 3, 0, 1]);
    const results = BulkResultsResponse.parse(
      await (await fetch(`${h.base}/api/bulk-rating/jobs/${job.id}/results`, { headers: as('Viewer') })).json()
    );
    assert.deepEqual(
      results.lanes.map((l) => [l.line, l.status]),
      [
        [2, 'rated'],
        [3, 'rated'],
        [6, 'rated'],
      ]
    );
    const chicago = results.lanes[0]!;
    assert.ok(chicago.miles! > 650 && chicago.miles! < 850, `Chicago-Atlanta ${chicago.miles} miles`);
    assert.ok(
      chicago.total! >= chicago.linehaul! && Math.abs(chicago.linehaul! + chicago.fuel! - chicago.total!) < 0.02
    );
    assert.ok(chicago.modelVersion);

    const csvOut = await fetch(`${h.base}/api/bulk-rating/jobs/${job.id}/results?format=csv`, {
      headers: as('Viewer'),
    });
    assert.match(csvOut.headers.get('content-disposition') ?? '', /bulk-rating-.*\.csv/);
    const lines = (await csvOut.text()).trim().split('\n');
    assert.equal(
      lines[0],
      'line,origin,destination,equipment,pickup_date,status,miles,linehaul,fuel,total,per_mile,model_version,flags,error'
    );
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, /^2,"Chicago, IL","Atlanta, GA",van,/);

    // The meter counts the job, not its lanes; the lanes travel in the metadata.
    const usage = await h.db.pool.query(
      `SELECT qty, metadata FROM usage_events WHERE company_id = $1 AND feature_key = 'bulk_rating'`,
      [pro]
    );
    assert.deepEqual(
      usage.rows.map((r) => [Number(r.qty), r.metadata.lanes, r.metadata.bulk_job_id]),
      [[1, 3, job.id]]
    );
    const task = await h.db.pool.query(`SELECT fn_name, status, payload FROM agent_tasks WHERE id = $1`, [
      job.agentTaskId,
    ]);
    assert.deepEqual(
      [task.rows[0].fn_name, task.rows[0].status, task.rows[0].payload.outcome, task.rows[0].payload.lanes_rated],
      ['bulk_rating', 'success', 'succeeded', 3]
    );
    const audited = await h.db.pool.query(`SELECT actor, action FROM audit_log WHERE target = $1 ORDER BY id`, [
      `bulk_jobs/${job.id}`,
    ]);
    assert.deepEqual(audited.rows, [
      { actor: 'grafana:editor.user', action: 'bulk_rating.job_submitted' },
      { actor: 'controlroom:bulk-rating', action: 'bulk_rating.job_completed' },
    ]);
  });

  test('JSON lanes are accepted too', async () => {
    const res = await fetch(`${h.base}/api/bulk-rating/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...as('Editor') },
      body: JSON.stringify({
        companyId: pro,
        lanes: [{ origin: 'Houston, TX', destination: 'Miami, FL', equipment: 'reefer', pickupDate: tomorrow }, 'nope'],
      }),
    });
    const body = (await res.json()) as Record<string, any>;
    assert.equal(res.status, 202);
    assert.deepEqual([body.lanesAccepted, body.errors], [1, [{ line: 2, reason: 'a lane must be an object' }]]);
    assert.equal((await waitForJob(body.job.id)).lanesRated, 1);
  });

  test('an Idempotency-Key replays the first job; reused for another request it is refused', async () => {
    const csv = `origin,destination,equipment,pickup_date\n"Boston, MA","Albany, NY",van,${tomorrow}\n`;
    const headers = { ...as('Editor'), 'idempotency-key': 'upload-42' };
    const first = await upload(pro, csv, headers);
    const second = await upload(pro, csv, headers);
    assert.deepEqual([first.status, second.status], [202, 200]);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal(second.body.job.id, first.body.job.id);
    const jobs = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.bulk_jobs WHERE idempotency_key = 'upload-42'`
    );
    assert.equal(jobs.rows[0].n, 1);
    const other = await upload(pro, csv.replace('Albany', 'Buffalo'), headers);
    assert.equal(other.status, 422);
    assert.match(other.body.error, /already used for a different request/);
  });
});

describe('refusals change nothing', () => {
  const count = async () =>
    Number(
      (
        await h.db.pool.query(
          `SELECT (SELECT count(*) FROM controlroom.bulk_jobs) + (SELECT count(*) FROM usage_events) AS n`
        )
      ).rows[0].n
    );
  const oneLane = `origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`;

  test('Starter has no bulk rating (402, upgrade to Pro); the eleventh job of the day is 429 with the usage, the upgrade and the increase flow', async () => {
    const before = await count();
    const starterRes = await upload(starter, oneLane);
    assert.equal(starterRes.status, 402);
    assert.match(
      starterRes.body.error,
      /the starter plan does not include bulk rating; the Pro plan includes 10 jobs per day/
    );
    assert.equal(starterRes.body.details.upgrade.plan, 'pro');
    assert.equal(starterRes.body.details.requestIncrease, undefined);
    const over = await upload(tight, oneLane);
    assert.equal(over.status, 429);
    assert.match(
      over.body.error,
      /bulk rating limit reached: 10 of 10 jobs used today \(UTC day \d{4}-\d\d-\d\d\); the Enterprise plan includes unlimited jobs per day/
    );
    assert.deepEqual(
      [
        over.body.details.limit,
        over.body.details.included,
        over.body.details.used,
        over.body.details.requested,
        over.body.details.unit,
        over.body.details.period,
      ],
      [10, 5, 10, 1, 'jobs', 'day']
    );
    assert.deepEqual([over.body.details.upgrade.plan, over.body.details.upgrade.hardLimit], ['enterprise', -1]);
    assert.deepEqual(LimitRefusalDetails.parse(over.body.details).requestIncrease, {
      method: 'POST',
      path: '/api/limits/requests',
      feature: 'bulk_rating',
      currentLimit: 10,
    });
    await h.db.pool.query(`UPDATE org_entitlements SET billing_status = 'past_due' WHERE company_id = $1`, [pro]);
    const pastDue = await upload(pro, oneLane);
    assert.equal(pastDue.status, 402);
    assert.match(pastDue.body.error, /payment is past due/);
    await h.db.pool.query(`UPDATE org_entitlements SET billing_status = 'active' WHERE company_id = $1`, [pro]);
    assert.equal(await count(), before);
  });

  test('the plan meters jobs, not lanes: lanes per job are bounded by BULK_MAX_LANES (2000 here)', async () => {
    const fresh = await company('Many Lanes Freight', 'pro');
    const lanes = (n: number) =>
      `origin,destination,equipment,pickup_date\n${`"Reno, NV","Boise, ID",van,${tomorrow}\n`.repeat(n)}`;
    const big = await upload(fresh, lanes(1500));
    assert.equal(big.status, 202);
    assert.deepEqual([big.body.lanesAccepted, big.body.allowance.used, big.body.allowance.remaining], [1500, 1, 9]);
    const before = await count();
    const tooMany = await upload(fresh, lanes(2001));
    assert.equal(tooMany.status, 413);
    assert.match(tooMany.body.error, /too many lanes: at most 2000 rows per job/);
    assert.equal(await count(), before);
    await waitForJob(big.body.job.id);
  });

  test('roles, content type, header, syntax and size are checked with a clear message', async () => {
    const before = await count();
    assert.equal((await upload(pro, oneLane, as('Viewer'))).status, 403);
    assert.equal((await upload(pro, oneLane, {})).status, 401);
    const noHeader = await upload(pro, `"Reno, NV","Boise, ID",van,${tomorrow}\n`);
    assert.equal(noHeader.status, 400);
    assert.match(
      noHeader.body.error,
      /CSV header must name the columns origin, destination, equipment, pickup_date; missing/
    );
    const broken = await upload(
      pro,
      `origin,destination,equipment,pickup_date\n"Reno, NV,"Boise, ID",van,${tomorrow}\n`
    );
    assert.equal(broken.status, 400);
    assert.match(broken.body.error, /^CSV syntax error/);
    const allBad = await upload(pro, `origin,destination,equipment,pickup_date\nX,Y,van,${tomorrow}\n`);
    assert.equal(allBad.status, 400);
    assert.match(allBad.body.error, /no valid lanes/);
    const huge = await upload(
      pro,
      `origin,destination,equipment,pickup_date\n${`"Reno, NV","Boise, ID",van,${tomorrow}\n`.repeat(6000)}`
    );
    assert.equal(huge.status, 413);
    const plain = await fetch(`${h.base}/api/bulk-rating/jobs?company_id=${pro}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...as('Editor') },
      body: 'x',
    });
    assert.equal(plain.status, 415);
    assert.equal((await upload('not-a-uuid', oneLane)).status, 400);
    assert.equal(await count(), before);
  });
});

test('uploads beyond BULK_UPLOAD_CONCURRENCY (2) are refused with 429 before their body is read; the slow ones still land', async () => {
  const patient = await company('Patient Parcels', 'pro');
  const jobsOf = async () =>
    Number(
      (await h.db.pool.query(`SELECT count(*) AS n FROM controlroom.bulk_jobs WHERE company_id = $1`, [patient]))
        .rows[0].n
    );
  // Two clients that send the header and one lane, then stall: each holds an upload slot (and its
  // connection, inside the job's transaction) until it finishes.
  const url = new URL(`${h.base}/api/bulk-rating/jobs?company_id=${patient}&filename=slow.csv`);
  const stalled = [1, 2].map(() => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'text/csv', ...as('Editor') } });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    req.write(`origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`);
    return { req, answer };
  });
  await waitUntil(
    async () =>
      Number(
        (
          await h.db.pool.query(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'controlroom-bulk-upload' AND state <> 'idle'`
          )
        ).rows[0].n
      ) === 2,
    20_000,
    'two uploads holding their slots'
  );
  const third = await upload(
    patient,
    `origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`
  );
  assert.equal(third.status, 429);
  assert.equal(third.headers.get('retry-after'), '5');
  assert.match(third.body.error, /2 bulk uploads are already in progress/);
  for (const { req } of stalled) req.end(`"Boston, MA","Albany, NY",van,${tomorrow}\n`);
  const answers = await Promise.all(stalled.map((s) => s.answer));
  assert.deepEqual(
    answers.map((a) => [a.status, (JSON.parse(a.body) as { lanesAccepted: number }).lanesAccepted]),
    [
      [202, 2],
      [202, 2],
    ]
  );
  assert.equal(await jobsOf(), 2);
  assert.equal(
    (await upload(patient, `origin,destination,equipment,pickup_date\n"Reno, NV","Boise, ID",van,${tomorrow}\n`))
      .status,
    202
  );
});

test('the allowance endpoint shows plan usage and limits for the usage meter', async () => {
  const res = await fetch(`${h.base}/api/bulk-rating/allowance?company_id=${tight}`, { headers: as('Viewer') });
  const body = (await res.json()) as Record<string, any>;
  assert.deepEqual(
    [body.plan, body.limit, body.included, body.used, body.remaining, body.period, body.unit],
    ['pro', 10, 5, 10, 0, 'day', 'jobs']
  );
  assert.equal(body.upgrade.plan, 'enterprise');
});
