/**
 * Property-based tests of every HTTP surface against the real service and Postgres: generated CSV
 * uploads, JSON bodies, query strings, headers and webhook payloads, valid and broken. For every case:
 * no 5xx, the documented status, and nothing written when the request is refused.
 *
 * `npm test` runs PROPERTY_RUNS (default 25) cases per property with a fixed seed (PROPERTY_SEED), so a
 * failure reproduces; `PROPERTY_RUNS=2000 node --import tsx testing/run-tests.ts cli/bad-input.test.ts`
 * searches further.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import Stripe from 'stripe';
import {
  AM_TOKEN,
  amPayload,
  GRAFANA_TOKEN,
  SLACK_SIGNING_SECRET,
  startReceiverHarness,
  type ReceiverHarness,
} from '../testing/receiver-harness.ts';
import { insertCompany } from '../testing/companies.ts';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 25);
const SEED = Number(process.env.PROPERTY_SEED ?? 20261201);
const settings = { numRuns: RUNS, seed: SEED, endOnFailure: true } as const;

const API_SECRET = 'controlroom-api-secret-0123456789';
const GITHUB_SECRET = 'github-webhook-secret-0123456789';
const STRIPE_SECRET = 'whsec_property_test_0123456789';
const MAX_BYTES = 8192;
const MAX_LANES = 12;

let h: ReceiverHarness;
let companyId: string;

const as = (role: string, login = `prop.${role.toLowerCase()}`) => ({
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: login, OrgRole: role, UserID: 9, OrgID: 1 }),
});

interface Answer {
  /** The client's local port: the same port twice means the connection was kept alive. */
  port: number | undefined;
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/**
 * One request with node:http, so the test controls every header byte and how the body is cut into
 * chunks (chunks => Transfer-Encoding: chunked, the way a browser streams a file). A socket error before
 * the answer arrives fails the test: that is the reset a client must never see.
 */
function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | Buffer[],
  agent: http.Agent | false = false
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunked = Array.isArray(body);
    const req = http.request(`${h.base}${path}`, {
      method,
      agent,
      headers: { ...headers, ...(body && !chunked ? { 'content-length': String(body.length) } : {}) },
    });
    let answered = false;
    let port: number | undefined;
    req.on('socket', (socket) => {
      if (socket.localPort) port = socket.localPort;
      else socket.once('connect', () => (port = socket.localPort));
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        answered = true;
        const text = Buffer.concat(parts).toString('utf8');
        let json: any = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        resolve({ port, status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    // Writing the rest of a body the server already refused may fail (EPIPE) once it closed; only an
    // error before the answer counts.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (!body) return void req.end();
    if (!chunked) return void req.end(body);
    void (async () => {
      for (const chunk of body) {
        if (req.destroyed || answered) return;
        if (chunk.length > 0) req.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })();
  });
}

/** Row counts of every table a refused request must leave alone. */
async function written(): Promise<Record<string, number>> {
  const { rows } = await h.db.pool.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM controlroom.bulk_jobs) AS bulk_jobs,
            (SELECT count(*) FROM controlroom.bulk_lanes) AS bulk_lanes,
            (SELECT count(*) FROM usage_events) AS usage_events,
            (SELECT count(*) FROM controlroom.alert_notifications) AS alert_notifications,
            (SELECT count(*) FROM controlroom.alert_events) AS alert_events,
            (SELECT count(*) FROM controlroom.freeze_actions) AS freeze_actions,
            (SELECT count(*) FROM controlroom.failover_events) AS failover_events,
            (SELECT count(*) FROM controlroom.pricing_models) AS pricing_models,
            (SELECT count(*) FROM controlroom.stripe_events) AS stripe_events,
            (SELECT count(*) FROM audit_log WHERE actor LIKE 'grafana:prop.%') AS audit_by_callers`
  );
  return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
}

/** Runs a request and checks the two universal properties: no 5xx, and no row written when refused. */
async function refusedWritesNothing(request: () => Promise<Answer>): Promise<Answer> {
  const before = await written();
  const answer = await request();
  assert.ok(
    answer.status >= 200 && answer.status < 500,
    `expected no 5xx, got ${answer.status}: ${answer.text.slice(0, 300)}`
  );
  if (answer.status >= 400) {
    assert.equal(typeof answer.json?.error, 'string', `a refusal says why: ${answer.text.slice(0, 200)}`);
    // core/http.ts turns a Postgres data exception into a 400 as a last resort; routes check first.
    assert.doesNotMatch(answer.json.error, /^invalid value: /, 'the route validates before the database does');
    assert.deepEqual(
      await written(),
      before,
      `refused with ${answer.status} (${answer.json?.error}) yet rows were written`
    );
  }
  return answer;
}

// ------------------------------------------------------------------------------------------------
// Generators.
// ------------------------------------------------------------------------------------------------

const DAY = 86_400_000;
const dayFromNow = (n: number) => new Date(Date.now() + n * DAY).toISOString().slice(0, 10);
const PLACES = [
  '"Chicago, IL"',
  '"Atlanta, GA"',
  '"Dallas, TX"',
  '90001',
  '"Denver, CO"',
  '"Memphis, TN"',
  '"Reno, NV"',
  '"Boise, ID"',
];
const COLUMN_NAMES: Record<string, string[]> = {
  origin: ['origin', 'Origin', 'from', 'FROM'],
  destination: ['destination', 'Destination', 'dest', 'to'],
  equipment: ['equipment', 'Equipment', 'equipment_type', 'Equipment Type'],
  pickup_date: ['pickup_date', 'Pickup Date', 'pickup', 'ship-date'],
};

type Row = { good: boolean; cells: Record<string, string>; shortBy?: number };

const goodRow: fc.Arbitrary<Row> = fc
  .record({
    origin: fc.constantFrom(...PLACES),
    destination: fc.constantFrom(...PLACES),
    equipment: fc.constantFrom('van', 'reefer', 'flatbed', 'Van', ' REEFER '),
    pickup_date: fc.integer({ min: 1, max: 300 }).map(dayFromNow),
  })
  .map((cells) => ({ good: true, cells }));

const badRow: fc.Arbitrary<Row> = fc.oneof(
  goodRow.map((r) => ({ good: false, cells: { ...r.cells, origin: '"Springfeld, ZZ"' } })),
  goodRow.map((r) => ({ good: false, cells: { ...r.cells, equipment: 'boxcar' } })),
  goodRow.map((r) => ({ good: false, cells: { ...r.cells, pickup_date: '2020-01-01' } })),
  goodRow.map((r) => ({ good: false, cells: { ...r.cells, pickup_date: '2026-02-30' } })),
  goodRow.map((r) => ({ good: false, cells: { ...r.cells, destination: '' } })),
  goodRow.map((r) => ({ good: false, cells: r.cells, shortBy: 2 }))
);

interface CsvCase {
  header: string[];
  rows: Row[];
}

const csvCase: fc.Arbitrary<CsvCase> = fc.record({
  header: fc.shuffledSubarray(['origin', 'destination', 'equipment', 'pickup_date'], { minLength: 4, maxLength: 4 }),
  rows: fc.array(fc.oneof({ weight: 3, arbitrary: goodRow }, { weight: 1, arbitrary: badRow }), {
    maxLength: MAX_LANES + 4,
  }),
});

function csvText(c: CsvCase, aliases: number[], eol: string): string {
  const head = c.header.map((col, i) => COLUMN_NAMES[col]![aliases[i]!]!).join(',');
  const lines = c.rows.map((r) => {
    const values = c.header.map((col) => r.cells[col]!);
    return values.slice(0, values.length - (r.shortBy ?? 0)).join(',');
  });
  return [head, ...lines].join(eol) + eol;
}

/** The documented answer for a well-formed CSV: 413 past the row limit, 400 without lanes, else 202. */
function expectedCsv(c: CsvCase): { status: number; accepted?: number; rejected?: number; error?: RegExp } {
  if (c.rows.length > MAX_LANES) return { status: 413, error: /too many lanes/ };
  if (c.rows.length === 0) return { status: 400, error: /^the file has a header but no lanes$/ };
  const good = c.rows.filter((r) => r.good).length;
  if (good === 0) return { status: 400, error: /no valid lanes/ };
  return { status: 202, accepted: good, rejected: c.rows.length - good };
}

/** Cuts a body into 1-6 chunks at random places (an empty list of cuts sends it with Content-Length). */
const cuts = fc.option(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }), { nil: undefined });
function chunk(body: Buffer, at: number[] | undefined): Buffer | Buffer[] {
  if (!at) return body;
  const points = [...new Set(at.map((f) => Math.floor(f * body.length)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(body.subarray(from, p));
    from = p;
  }
  parts.push(body.subarray(from));
  return parts;
}

const uploadCsv = (body: Buffer | Buffer[], headers: Record<string, string> = {}, query = `company_id=${companyId}`) =>
  send('POST', `/api/bulk-rating/jobs?${query}`, { 'content-type': 'text/csv', ...as('Editor'), ...headers }, body);

/** A broken CSV of a known class and the status (and message) the API documents for it. */
type Broken = { name: string; body: Buffer; status: number[]; error: RegExp };
const HEADER = 'origin,destination,equipment,pickup_date\n';
const brokenCsv: fc.Arbitrary<Broken> = fc.oneof(
  fc.tuple(goodRow, fc.nat(40)).map(([r, n]) => ({
    name: 'stray quote',
    body: Buffer.from(
      `${HEADER}${`${r.cells.origin},${r.cells.destination},${r.cells.equipment},${r.cells.pickup_date}\n`.repeat(n % 5)}Chi"cago IL,"Atlanta, GA",van,${dayFromNow(2)}\n`
    ),
    status: [400],
    error: /^CSV syntax error at line \d+, column \d+: /,
  })),
  goodRow.map((r) => ({
    name: 'unbalanced quote',
    body: Buffer.from(
      `${HEADER}"Chicago, IL,"Atlanta, GA",van,${r.cells.pickup_date}\n${r.cells.origin},${r.cells.destination},van,${r.cells.pickup_date}\n`
    ),
    status: [400],
    error: /^CSV syntax error at line \d+/,
  })),
  fc.uint8Array({ minLength: 0, maxLength: 600 }).map((rest) => ({
    name: 'spreadsheet (xlsx is a zip)',
    body: Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]), Buffer.from(rest)]),
    status: [415],
    error: /spreadsheet or zip archive .* not CSV/,
  })),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.nat()).map(([bytes, at]) => {
    const garbage = Buffer.from(bytes);
    garbage[at % garbage.length] = 0;
    return {
      name: 'binary garbage',
      body: Buffer.concat([Buffer.from(HEADER), garbage]),
      status: [400],
      error: /(binary data \(a NUL byte at line \d+|not valid UTF-8 \(byte 0x[0-9a-f]{2} at line \d+)/,
    };
  }),
  fc
    .tuple(
      goodRow,
      fc.constantFrom([0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80])
    )
    .map(([r, bad]) => ({
      name: 'invalid UTF-8',
      body: Buffer.concat([
        Buffer.from(`${HEADER}${r.cells.origin},${r.cells.destination},van,${r.cells.pickup_date}\n"Reno`),
        Buffer.from(bad),
        Buffer.from(`, NV","Boise, ID",van,${r.cells.pickup_date}\n`),
      ]),
      status: [400],
      error: /^the file is not valid UTF-8 \(byte 0x[0-9a-f]{2} at line 3, byte 6 of the line\)/,
    })),
  fc.tuple(goodRow, fc.constantFrom(';', '\t')).map(([r, d]) => ({
    name: 'wrong delimiter',
    body: Buffer.from(
      `origin${d}destination${d}equipment${d}pickup_date\nChicago IL${d}Atlanta GA${d}van${d}${r.cells.pickup_date}\n`
    ),
    status: [400],
    error: /^the header is separated by/,
  })),
  fc
    .constantFrom('', '\n', '\r\n\r\n', '\ufeff')
    .map((text) => ({ name: 'empty', body: Buffer.from(text), status: [400], error: /^the file is empty/ })),
  fc.constantFrom(HEADER, HEADER.trim(), `\ufeff${HEADER}\n\n`).map((text) => ({
    name: 'header only',
    body: Buffer.from(text),
    status: [400],
    error: /^the file has a header but no lanes$/,
  })),
  fc.string({ maxLength: 60 }).map((text) => ({
    name: 'unknown header',
    body: Buffer.from(`name,${text.replace(/[",\r\n]/g, '')}\nx,y\n`),
    status: [400],
    error:
      /(CSV header must name the columns origin, destination, equipment, pickup_date; missing|the header is separated by|not valid UTF-8|binary data)/,
  })),
  goodRow.map((r) => ({
    name: 'larger than the upload limit',
    body: Buffer.from(
      `${HEADER}${`${r.cells.origin},${r.cells.destination},${r.cells.equipment},${r.cells.pickup_date}${' '.repeat(300)}\n`.repeat(30)}`
    ),
    status: [413],
    error: /(upload larger than 8192 bytes|too many lanes)/,
  }))
);

/** fast-check strings may hold lone surrogates, which encodeURIComponent refuses. */
const wellFormed = (s: string) => s.replace(/[\ud800-\udfff]/g, '?');

// ------------------------------------------------------------------------------------------------

before(async () => {
  h = await startReceiverHarness({
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: API_SECRET,
    BULK_MAX_UPLOAD_BYTES: String(MAX_BYTES),
    BULK_MAX_LANES: String(MAX_LANES),
    BULK_MAX_ERRORS_REPORTED: '5',
    GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
    STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
    FAILOVER_AUTO: 'false',
  });
  companyId = await insertCompany(h.db.pool, 'Property Freight', 'enterprise');
});
after(async () => h.stop());

describe('bulk rating uploads', () => {
  test('well-formed CSVs of good and bad rows, any header order and alias, any chunking: the documented status and counts', async () => {
    await fc.assert(
      fc.asyncProperty(
        csvCase,
        fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
        fc.constantFrom('\n', '\r\n'),
        cuts,
        async (c, aliases, eol, at) => {
          const expected = expectedCsv(c);
          const answer = await refusedWritesNothing(() => uploadCsv(chunk(Buffer.from(csvText(c, aliases, eol)), at)));
          assert.equal(answer.status, expected.status, answer.text);
          if (expected.error) assert.match(answer.json.error, expected.error);
          if (expected.status === 202) {
            assert.deepEqual(
              [answer.json.lanesAccepted, answer.json.rejectedRows],
              [expected.accepted, expected.rejected]
            );
            const { rows } = await h.db.pool.query(
              `SELECT count(*)::int AS n FROM controlroom.bulk_lanes WHERE job_id = $1`,
              [answer.json.job.id]
            );
            assert.equal(rows[0].n, expected.accepted);
          }
        }
      ),
      settings
    );
  });

  test('broken files (quotes, spreadsheets, binary, invalid UTF-8, wrong delimiter, empty, oversize) are a 4xx that says what and where', async () => {
    await fc.assert(
      fc.asyncProperty(brokenCsv, cuts, async (broken, at) => {
        const answer = await refusedWritesNothing(() => uploadCsv(chunk(broken.body, at)));
        assert.ok(
          broken.status.includes(answer.status),
          `${broken.name}: expected ${broken.status}, got ${answer.status} ${answer.text}`
        );
        assert.match(answer.json.error, broken.error, broken.name);
      }),
      settings
    );
  });

  test('arbitrary bytes as a CSV never cause a 5xx or a half-written job', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), cuts, async (bytes, at) => {
        await refusedWritesNothing(() => uploadCsv(chunk(Buffer.from(bytes), at)));
      }),
      settings
    );
  });

  test('JSON bodies: structured lanes get the documented status; any other JSON or text is a 4xx', async () => {
    const lane = fc.oneof(
      goodRow.map((r) => ({
        good: true,
        value: {
          origin: r.cells.origin!.replaceAll('"', ''),
          destination: 'Denver, CO',
          equipment: 'van',
          pickup_date: r.cells.pickup_date,
        },
      })),
      fc.jsonValue().map((value) => ({ good: false, value })),
      fc
        .record({ origin: fc.string(), destination: fc.string(), equipment: fc.string(), pickup_date: fc.string() })
        .map((value) => ({ good: false, value }))
    );
    const structured = fc.record({
      company: fc.oneof(fc.constant('ok'), fc.jsonValue()),
      lanes: fc.array(lane, { maxLength: MAX_LANES + 3 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: structured }, fc.jsonValue(), fc.string()), async (input) => {
        const isStructured =
          typeof input === 'object' &&
          input !== null &&
          'lanes' in input &&
          'company' in input &&
          Array.isArray((input as any).lanes);
        const body = isStructured
          ? JSON.stringify({
              company_id: (input as any).company === 'ok' ? companyId : (input as any).company,
              lanes: (input as any).lanes.map((l: any) => l.value),
            })
          : typeof input === 'string'
            ? input
            : JSON.stringify(input);
        const answer = await refusedWritesNothing(() =>
          send(
            'POST',
            '/api/bulk-rating/jobs',
            { 'content-type': 'application/json', ...as('Editor') },
            Buffer.from(body)
          )
        );
        if (!isStructured) return;
        const { company, lanes } = input as { company: unknown; lanes: Array<{ good: boolean; value: unknown }> };
        const good = lanes.filter((l) => l.good).length;
        const expected =
          company !== 'ok' ? 400 : lanes.length === 0 ? 400 : lanes.length > MAX_LANES ? 413 : good === 0 ? 400 : 202;
        assert.equal(answer.status, expected, answer.text);
        if (expected === 202) assert.equal(answer.json.lanesAccepted, good);
      }),
      settings
    );
  });
});

describe('query strings, path parameters and headers', () => {
  const classics = [
    '',
    '%',
    '%Z',
    '%00',
    '%E0%A4%A',
    '%FF%FE',
    '-1',
    '0',
    '1.5',
    '1e308',
    '99999999999999999999',
    'NaN',
    '[]',
    'a&b',
    '%ud800',
    'null',
    'x'.repeat(3000),
  ];
  const junk = fc.oneof(
    fc.string({ maxLength: 30 }).map((s) => encodeURIComponent(wellFormed(s))),
    fc.constantFrom(...classics),
    fc.integer().map(String),
    fc.uuid()
  );
  const paths = [
    (v: string) => `/api/bulk-rating/jobs?company_id=${v}&limit=${v}`,
    (v: string) => `/api/bulk-rating/jobs/${v}`,
    (v: string) => `/api/bulk-rating/jobs/${v}/results?format=${v}&offset=${v}&limit=${v}`,
    (v: string) => `/api/bulk-rating/allowance?company_id=${v}`,
    (v: string) => `/api/bulk-rating/allowance?company_id=${companyId}&company_id=${v}`,
    (v: string) => `/api/companies?search=${v}`,
    (v: string) => `/api/regions?checks=${v}`,
    (v: string) => `/api/regions/routing?${v}=${v}`,
    (v: string) => `/api/freeze?${v}`,
    (v: string) => `/api/pricing/models/${v}`,
    (v: string) => `/api/usage/${v}`,
    (v: string) => `/api/incidents?severity=${v}&state=${v}&limit=${v}&cursor=${v}`,
    (v: string) => `/api/incidents?${v}=${v}`,
    (v: string) => `/api/tasks?fn_name=${v}&status=${v}&limit=${v}&cursor=${v}`,
    (v: string) => `/api/${v}`,
    (v: string) => `/webhooks/${v}`,
  ];

  test('every GET route with each classic bad value (overflowing numbers, bad %-escapes, NUL) is a 4xx or 2xx', async () => {
    for (const path of paths) {
      for (const value of classics) await refusedWritesNothing(() => send('GET', path(value), as('Admin')));
    }
  });

  test('GET with any query string or path parameter is never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(paths.length - 1), junk, async (i, v) => {
        await refusedWritesNothing(() => send('GET', paths[i]!(v), as('Admin')));
      }),
      settings
    );
  });

  test('any Content-Type, charset, Idempotency-Key or Grafana context on an upload is never a 5xx', async () => {
    const printable = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 250,
    });
    const contentType = fc.oneof(
      fc.constantFrom(
        'text/csv',
        'text/csv; charset=utf-8',
        'text/csv; charset=latin1',
        'text/csv; charset=',
        'application/json; charset=utf-16',
        'application/csv',
        'text/plain',
        'multipart/form-data; boundary=x',
        ''
      ),
      printable
    );
    const context = fc.oneof(
      fc.constant(JSON.stringify({ Login: 'prop.editor', OrgRole: 'Editor' })),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      printable
    );
    await fc.assert(
      fc.asyncProperty(
        contentType,
        fc.option(printable, { nil: undefined }),
        context,
        goodRow,
        async (type, key, ctx, row) => {
          const headers: Record<string, string> = { 'x-controlroom-secret': API_SECRET, 'x-grafana-context': ctx };
          if (type) headers['content-type'] = type;
          if (key !== undefined) headers['idempotency-key'] = key;
          const csv = `${HEADER}${row.cells.origin},${row.cells.destination},van,${row.cells.pickup_date}\n`;
          await refusedWritesNothing(() =>
            send('POST', `/api/bulk-rating/jobs?company_id=${companyId}`, headers, Buffer.from(csv))
          );
        }
      ),
      settings
    );
  });
});

describe('JSON control API bodies', () => {
  const reason = fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue());
  const bodies: Array<{ method: string; path: string; role: string; body: fc.Arbitrary<unknown> }> = [
    {
      method: 'POST',
      path: '/api/freeze/freezes',
      role: 'Editor',
      body: fc.oneof(
        fc.record(
          {
            reason,
            expires_at: fc.oneof(
              fc.string(),
              fc.jsonValue(),
              fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toISOString()))
            ),
          },
          { requiredKeys: [] }
        ),
        fc.jsonValue()
      ),
    },
    {
      method: 'POST',
      path: '/api/freeze/overrides',
      role: 'Admin',
      body: fc.oneof(
        fc.record({ reason, expires_at: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] }),
        fc.jsonValue()
      ),
    },
    { method: 'DELETE', path: '/api/freeze/freezes/99999999999999999999', role: 'Admin', body: fc.jsonValue() },
    {
      method: 'POST',
      path: '/api/regions/failover',
      role: 'Admin',
      body: fc.oneof(
        fc.record(
          {
            target: fc.oneof(fc.string(), fc.jsonValue()),
            steps: fc.jsonValue(),
            force: fc.jsonValue(),
            reason: fc.jsonValue(),
          },
          { requiredKeys: [] }
        ),
        fc.jsonValue()
      ),
    },
    {
      method: 'POST',
      path: '/api/regions/shift',
      role: 'Admin',
      body: fc.oneof(
        fc.record(
          {
            weights: fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.double(), fc.jsonValue())),
            reason: fc.jsonValue(),
          },
          { requiredKeys: [] }
        ),
        fc.jsonValue()
      ),
    },
    {
      method: 'POST',
      path: '/api/regions/cutover/abort',
      role: 'Admin',
      body: fc.oneof(fc.record({ reason: fc.jsonValue() }), fc.jsonValue()),
    },
    {
      method: 'POST',
      path: '/api/pricing/models',
      role: 'Admin',
      body: fc.oneof(
        fc.record(
          { version: fc.string(), ratePerMile: fc.jsonValue(), minMargin: fc.jsonValue() },
          { requiredKeys: [] }
        ),
        fc.jsonValue()
      ),
    },
    {
      method: 'POST',
      path: '/api/pricing/models/v1/candidate',
      role: 'Admin',
      body: fc.oneof(fc.record({ share: fc.jsonValue() }), fc.jsonValue()),
    },
  ];
  const request = fc.nat(bodies.length - 1).chain((i) =>
    fc.record({
      i: fc.constant(i),
      body: bodies[i]!.body,
      raw: fc.option(fc.string({ maxLength: 40 }), { freq: 4, nil: undefined }),
    })
  );

  test('freeze, failover and pricing bodies: any JSON, any text, never a 5xx, nothing written on refusal', async () => {
    await fc.assert(
      fc.asyncProperty(request, async ({ i, body, raw }) => {
        const { method, path, role } = bodies[i]!;
        const text = raw ?? JSON.stringify(body) ?? 'null';
        const answer = await refusedWritesNothing(() =>
          send(method, path, { 'content-type': 'application/json', ...as(role) }, Buffer.from(text))
        );
        if (answer.status === 400)
          assert.doesNotMatch(
            answer.json.error,
            /expected \w+, received|Invalid input|Unrecognized key/,
            "messages are the API's, not zod's"
          );
      }),
      settings
    );
  });
});

describe('webhooks', () => {
  const valid = fc
    .constantFrom('SLOBurnRate1h', 'UsageAbove80Percent', 'HighErrorRate')
    .map((name) => amPayload(`{}:{alertname="${name}"}`, [{ alertname: name, severity: 'P3' }]));
  /** A valid notification with one field removed or replaced by arbitrary JSON. */
  const mutated = fc
    .tuple(
      valid,
      fc.constantFrom(
        'version',
        'groupKey',
        'status',
        'alerts',
        'receiver',
        'truncatedAlerts',
        'alerts.0.labels',
        'alerts.0.startsAt',
        'alerts.0.fingerprint',
        'alerts.0.status'
      ),
      fc.option(fc.jsonValue(), { nil: undefined })
    )
    .map(([payload, path, value]) => {
      const copy = structuredClone(payload) as any;
      const keys = path.split('.');
      let target = copy;
      for (const k of keys.slice(0, -1)) target = target[k];
      if (value === undefined) delete target[keys.at(-1)!];
      else target[keys.at(-1)!] = value;
      return copy;
    });
  const auth = fc.constantFrom('good', 'none', 'wrong', 'basic');

  test('Alertmanager and Grafana: unauthenticated is 401, malformed is 400, nothing stored on refusal', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('alertmanager', 'grafana'),
        auth,
        fc.oneof(mutated, fc.jsonValue(), fc.string()),
        async (source, who, payload) => {
          const token = source === 'alertmanager' ? AM_TOKEN : GRAFANA_TOKEN;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (who === 'good') headers.authorization = `Bearer ${token}`;
          if (who === 'wrong') headers.authorization = `Bearer ${token}x`;
          if (who === 'basic') headers.authorization = `Basic ${Buffer.from('a:b').toString('base64')}`;
          const body = typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? '');
          const answer = await refusedWritesNothing(() =>
            send('POST', `/webhooks/${source}`, headers, Buffer.from(body))
          );
          if (who !== 'good') assert.equal(answer.status, 401);
          else assert.ok([200, 400].includes(answer.status), answer.text);
          if (answer.status === 400) assert.doesNotMatch(answer.json.error, /expected \w+, received|Invalid input/);
        }
      ),
      settings
    );
  });

  const signer = new Stripe('sk_test_property');
  test('GitHub, Stripe and Slack: unsigned, forged or garbage bodies are a 4xx; signed garbage too', async () => {
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
      fc.string(),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
      fc
        .record({
          id: fc.oneof(
            fc.string(),
            fc.uuid().map((u) => `evt_${u}`)
          ),
          type: fc.constantFrom(
            'customer.subscription.created',
            'customer.subscription.updated',
            'customer.subscription.deleted',
            'invoice.payment_failed',
            'invoice.paid',
            'x'
          ),
          created: fc.oneof(fc.integer(), fc.integer({ min: 1_700_000_000, max: 1_800_000_000 })),
          data: fc.oneof(
            fc.jsonValue(),
            fc.record({
              object: fc.dictionary(
                fc.constantFrom(
                  'id',
                  'customer',
                  'status',
                  'items',
                  'metadata',
                  'subscription',
                  'lines',
                  'current_period_end'
                ),
                fc.jsonValue()
              ),
            })
          ),
        })
        .map((v) => JSON.stringify(v))
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('github', 'stripe', 'slack/interactions'),
        fc.constantFrom('signed', 'none', 'forged'),
        body,
        fc.constantFrom('ping', 'pull_request', 'deployment_protection_rule'),
        async (hook, signature, text, event) => {
          const headers: Record<string, string> = {
            'content-type': hook === 'slack/interactions' ? 'application/x-www-form-urlencoded' : 'application/json',
          };
          const payload =
            hook === 'slack/interactions' && signature === 'signed'
              ? `payload=${encodeURIComponent(wellFormed(text))}`
              : text;
          if (hook === 'github') {
            headers['x-github-event'] = event;
            if (signature !== 'none')
              headers['x-hub-signature-256'] = `sha256=${createHmac(
                'sha256',
                signature === 'signed' ? GITHUB_SECRET : 'nope'
              )
                .update(payload)
                .digest('hex')}`;
          } else if (hook === 'stripe') {
            if (signature !== 'none')
              headers['stripe-signature'] = signer.webhooks.generateTestHeaderString({
                payload,
                secret: signature === 'signed' ? STRIPE_SECRET : 'whsec_nope',
              });
          } else if (signature !== 'none') {
            const ts = String(Math.floor(Date.now() / 1000));
            headers['x-slack-request-timestamp'] = ts;
            headers['x-slack-signature'] = `v0=${createHmac(
              'sha256',
              signature === 'signed' ? SLACK_SIGNING_SECRET : 'nope'
            )
              .update(`v0:${ts}:${payload}`)
              .digest('hex')}`;
          }
          const answer = await refusedWritesNothing(() =>
            send('POST', `/webhooks/${hook}`, headers, Buffer.from(payload))
          );
          if (signature !== 'signed')
            assert.ok(
              answer.status === 400 || answer.status === 401,
              `${hook} ${signature}: ${answer.status} ${answer.text}`
            );
        }
      ),
      settings
    );
  });
});

describe('refusals before the body is read to its end', () => {
  const rejected = async (source: string) => {
    const text = await (await fetch(`${h.base}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`controlroom_alert_notifications_total{source="${source}",outcome="rejected"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  test(
    'errors noticed in a later chunk keep their meaning: missing columns 400, too many lanes or bytes 413',
    { timeout: 60_000 },
    async () => {
      const row = `"Reno, NV","Boise, ID",van,${dayFromNow(3)}\n`;
      const before = await written();
      const header = await uploadCsv([
        Buffer.from('orig'),
        Buffer.from('in,destina'),
        Buffer.from('tion\n'),
        Buffer.from(row),
        Buffer.from(row),
      ]);
      assert.deepEqual(
        [header.status, header.json.error],
        [
          400,
          'CSV header must name the columns origin, destination, equipment, pickup_date; missing equipment, pickup_date (line 1: origin, destination)',
        ]
      );
      const lanes = await uploadCsv([
        Buffer.from(HEADER),
        ...Array.from({ length: MAX_LANES + 3 }, () => Buffer.from(row)),
      ]);
      assert.deepEqual(
        [lanes.status, lanes.json.error],
        [413, `too many lanes: at most ${MAX_LANES} rows per job (good and bad rows count)`]
      );
      const bad = `"Springfeld, ZZ","Boise, ID",van,${dayFromNow(3)}\n`;
      const mixed = await uploadCsv([
        Buffer.from(HEADER),
        ...Array.from({ length: 5 }, () => Buffer.from(row)),
        ...Array.from({ length: MAX_LANES }, () => Buffer.from(bad)),
        Buffer.from('"Reno, NV"\n'),
      ]);
      assert.equal(mixed.status, 413, 'good and bad rows together count against BULK_MAX_LANES');
      const bytes = await uploadCsv([
        Buffer.from(HEADER),
        Buffer.from(`"Reno, NV","Boise, ID",van,${dayFromNow(3)}${' '.repeat(MAX_BYTES)}\n`),
      ]);
      assert.deepEqual([bytes.status, bytes.json.error], [413, `upload larger than ${MAX_BYTES} bytes`]);
      // A multi-byte character cut off by the end of the file, its first byte alone in the last chunk.
      const cut = await uploadCsv([Buffer.from(HEADER), Buffer.from(row), Buffer.from([0xe2])]);
      assert.equal(cut.status, 400);
      assert.match(cut.json.error, /^the file is not valid UTF-8 \(byte 0xe2 at line 3, byte 1 of the line\)/);
      assert.deepEqual(await written(), before);
    }
  );

  test(
    'a refused oversize upload answers 413 to a keep-alive client without resetting its connection',
    { timeout: 60_000 },
    async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const padded = Buffer.from(`"Reno, NV","Boise, ID",van,${dayFromNow(3)}${' '.repeat(1000)}\n`);
        // Within the drain bound: the rest is read off and the same connection carries the next request.
        const refused = await uploadCsvWith(agent, [Buffer.from(HEADER), ...Array.from({ length: 40 }, () => padded)]);
        assert.deepEqual([refused.status, refused.json.error], [413, `upload larger than ${MAX_BYTES} bytes`]);
        assert.notEqual(refused.headers.connection, 'close');
        const next = await send(
          'GET',
          `/api/bulk-rating/allowance?company_id=${companyId}`,
          as('Viewer'),
          undefined,
          agent
        );
        assert.equal(next.status, 200);
        assert.equal(next.port, refused.port, 'the keep-alive connection was reused');
        // Far past the bound (3 MiB): 413 with Connection: close, and the client gets the answer, not a reset.
        const huge = await uploadCsvWith(agent, [
          Buffer.from(HEADER),
          ...Array.from({ length: 48 }, () => Buffer.alloc(64 * 1024, 0x20)),
        ]);
        assert.equal(huge.status, 413);
        assert.equal(huge.headers.connection, 'close');
        const declared = await send(
          'POST',
          `/api/bulk-rating/jobs?company_id=${companyId}`,
          { 'content-type': 'text/csv', ...as('Editor') },
          Buffer.alloc(2 * 1024 * 1024, 0x20),
          agent
        );
        assert.deepEqual([declared.status, declared.headers.connection], [413, 'close']);
        const after = await send(
          'GET',
          `/api/bulk-rating/allowance?company_id=${companyId}`,
          as('Viewer'),
          undefined,
          agent
        );
        assert.equal(after.status, 200, 'a new connection serves the next request');
      } finally {
        agent.destroy();
      }
    }
  );

  test(
    'webhook credentials are checked before the body is read; 401 and 413 count as rejected',
    { timeout: 60_000 },
    async () => {
      const before = await rejected('alertmanager');
      // 64 KiB of a declared 5 MiB body, and the client waits: the 401 comes without the rest.
      const req = http.request(`${h.base}/webhooks/alertmanager`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(5 * 1024 * 1024) },
      });
      req.on('error', () => {});
      req.write(Buffer.alloc(64 * 1024, 0x20));
      const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers.connection, 'close');
      res.resume();
      req.destroy();
      const big = await send(
        'POST',
        '/webhooks/alertmanager',
        { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
        Array.from({ length: 6 }, () => Buffer.alloc(1024 * 1024 + 1, 0x20))
      );
      assert.deepEqual([big.status, big.json.error], [413, `body larger than ${5 * 1024 * 1024} bytes`]);
      assert.equal(await rejected('alertmanager'), before + 2);
    }
  );
});

const uploadCsvWith = (agent: http.Agent, body: Buffer[]) =>
  send(
    'POST',
    `/api/bulk-rating/jobs?company_id=${companyId}`,
    { 'content-type': 'text/csv', ...as('Editor') },
    body,
    agent
  );
