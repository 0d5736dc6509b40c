import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { CsvError } from 'csv-parse';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { UserError } from '../../core/errors.ts';
import { safeText } from '../../core/http.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase } from '../../testing/postgres.ts';
import { checkLocation } from '../rating/locations.ts';
import { copyText, ingestCsv, readHeader, type IngestLimits, type LaneWriter } from './ingest.ts';
import { isRowError, validateLane, type LaneRow } from './lanes.ts';

/**
 * The CSV reader takes a fast path for the common grammar and hands the rest of a file to csv-parse.
 * These tests hold it to csv-parse alone (with ingest's options) as the reference: the same lanes with
 * the same lines, the same rejected rows and reasons, the same syntax errors at the same line and column,
 * however the upload is cut into chunks.
 */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
const today = new Date().toISOString().slice(0, 10);
const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const limits: IngestLimits = { maxBytes: 1 << 30, maxLanes: 1_000_000, maxErrorsReported: 1_000 };

/** Records what reaches the database: each lane's line and its four COPY-encoded fields. */
class Recorder implements LaneWriter {
  rows: string[] = [];
  get count() {
    return this.rows.length;
  }
  addEncoded(line: number, origin: Buffer, destination: Buffer, equipment: Buffer, pickupDate: Buffer): void {
    this.rows.push([line, origin, destination, equipment, pickupDate].map(String).join('\t'));
  }
  add(lane: LaneRow): void {
    this.rows.push(
      [lane.line, lane.origin, lane.destination, lane.equipment, lane.pickupDate]
        .map((v) => copyText(String(v)))
        .join('\t')
    );
  }
  backpressure(): null {
    return null;
  }
}

type Outcome = { error: string } | { lanes: string[]; rejected: Array<{ line: number; reason: string }> };

async function actual(bytes: Buffer, cuts: number[]): Promise<Outcome> {
  const points = [...new Set(cuts.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  const recorder = new Recorder();
  try {
    const summary = await ingestCsv(Readable.from(chunks), limits, checkLocation, today, recorder);
    return { lanes: recorder.rows, rejected: summary.errors };
  } catch (error) {
    if (error instanceof UserError) return { error: `${error.status} ${error.message}` };
    throw error;
  }
}

/** csv-parse alone, then ingest's row rules (header, column count, validateLane). */
function reference(bytes: Buffer): Outcome | 'other' {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(bytes, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      max_record_size: 64 * 1024,
      info: true,
    }) as never;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const column = (error as unknown as { column?: number }).column;
    return { error: `at line ${error.lines}${typeof column === 'number' ? `, column ${column + 1}` : ''}` };
  }
  if (records.length === 0) return 'other';
  let header: string[];
  try {
    header = readHeader(records[0]!.record);
  } catch {
    return 'other';
  }
  if (records.length === 1) return 'other';
  const lanes: string[] = [];
  const rejected: Array<{ line: number; reason: string }> = [];
  for (const { record, info } of records.slice(1)) {
    if (record.length !== header.length) {
      rejected.push({ line: info.lines, reason: `expected ${header.length} columns, found ${record.length}` });
      continue;
    }
    const raw: Record<string, string> = {};
    header.forEach((h, i) => (raw[h] = record[i]!));
    const lane = validateLane(raw, info.lines, checkLocation, today);
    if (isRowError(lane)) rejected.push({ line: lane.line, reason: safeText(lane.reason) });
    else
      lanes.push(
        [lane.line, lane.origin, lane.destination, lane.equipment, lane.pickupDate]
          .map((v) => copyText(String(v)))
          .join('\t')
      );
  }
  return { lanes, rejected };
}

/** Fields as people (and broken exports) write them: most plain or quoted, some with every CSV hazard. */
const field = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('"Chicago, IL"', '"Atlanta, GA"', 'Denver CO', '60601', '"Reno, NV"') },
  {
    weight: 3,
    arbitrary: fc.constantFrom('van', 'reefer', 'Flatbed', ' van ', '\tvan', 'boxcar', tomorrow, '2020-01-01'),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '""',
      '"a ""quoted"" city"',
      '"Chicago,\nIL"',
      '"Chicago, IL" ',
      ' "Chicago, IL"',
      'Chi"cago',
      '"unclosed',
      'a\rb',
      'x\fy',
      '"x\r\ny"',
      'Montréal QC',
      'São Paulo',
      '\\back\\slash',
      'tab\tinside',
      '\uFEFFbom'
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }
);
const row = fc.oneof(
  { weight: 8, arbitrary: fc.array(field, { minLength: 4, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(field, { minLength: 0, maxLength: 6 }) }
);
const eol = fc.constantFrom('\n', '\r\n');
const file = fc.record({
  bom: fc.boolean(),
  header: fc.constantFrom(
    'origin,destination,equipment,pickup_date',
    'Pickup Date,Equipment,Destination,Origin',
    '"origin","destination","equipment","pickup_date",notes',
    'origin;destination;equipment;pickup_date'
  ),
  rows: fc.array(
    fc.tuple(
      row,
      fc.oneof({ weight: 9, arbitrary: eol }, { weight: 1, arbitrary: fc.constantFrom('\r', '\n\n', '\n  \n') })
    ),
    {
      maxLength: 12,
    }
  ),
  headerEol: eol,
  trailing: fc.boolean(),
});
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 });

test('the fast reader reads every file as csv-parse does: the same lanes, rejections and syntax errors', async () => {
  await fc.assert(
    fc.asyncProperty(file, cuts, async (f, at) => {
      const lines = f.rows.map(([cells, end]) => cells.join(',') + end);
      let text = `${f.header}${f.headerEol}${lines.join('')}`;
      if (!f.trailing) text = text.replace(/(\r\n|\n|\r)$/, '');
      const bytes = Buffer.concat([f.bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(text)]);
      const expected = reference(bytes);
      const got = await actual(bytes, at);
      if (expected === 'other') {
        assert.ok('error' in got, `expected a refusal, got ${JSON.stringify(got)}`);
        return;
      }
      // A bad header is refused when its line is read, before a syntax error further down is reached.
      if (f.header.includes(';') && 'error' in got && /the header is separated by ';'/.test(got.error)) return;
      if ('error' in expected) {
        assert.ok('error' in got, `expected a syntax error ${expected.error}, got ${JSON.stringify(got)}`);
        assert.match(got.error, /^400 CSV syntax error /);
        assert.ok(got.error.includes(expected.error), `${got.error} should say ${expected.error}`);
        return;
      }
      if ('error' in got && expected.lanes.length + expected.rejected.length === 0) return;
      assert.deepEqual(got, expected);
    }),
    { numRuns: RUNS }
  );
});

test('a large file with the common grammar never reaches csv-parse and keeps its line numbers', async () => {
  const body = [
    'origin,destination,equipment,pickup_date',
    ...Array.from({ length: 20_000 }, (_, i) =>
      i % 1000 === 999 ? `"Nowhere, ZZ","Atlanta, GA",van,${tomorrow}` : `"Chicago, IL","Atlanta, GA",van,${tomorrow}`
    ),
  ].join('\r\n');
  const got = await actual(Buffer.from(body), [0.1, 0.37, 0.5, 0.9]);
  assert.ok(!('error' in got));
  assert.equal(got.lanes.length, 19_980);
  assert.deepEqual(got.rejected[0], { line: 1001, reason: "unknown origin 'Nowhere, ZZ'" });
  assert.equal(got.lanes.at(-1)!.split('\t')[0], '20000');
});

test('bulk_lanes still refuses a lane without its job, cascades a job delete, and refuses moving a lane (migration 0027)', async () => {
  const db = await createTestDatabase({ poolMax: 2 });
  try {
    const companyId = await insertCompany(db.pool, 'Integrity Freight', 'pro');
    const lane = (jobId: string, seq: number) =>
      db.pool.query(
        `INSERT INTO controlroom.bulk_lanes (job_id, seq, line, origin, destination, equipment, pickup_date)
         VALUES ($1, $2, $2 + 1, 'Reno, NV', 'Boise, ID', 'van', $3)`,
        [jobId, seq, tomorrow]
      );
    await assert.rejects(lane(randomUUID(), 1), (error: { code?: string }) => error.code === '23503');
    const jobs = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
       SELECT $1, 'test', 'x', 'csv', 2, 0 FROM generate_series(1, 2) RETURNING id`,
      [companyId]
    );
    const [kept, deleted] = jobs.rows.map((r) => r.id) as [string, string];
    for (const seq of [1, 2]) {
      await lane(kept, seq);
      await lane(deleted, seq);
    }
    await assert.rejects(
      db.pool.query(`UPDATE controlroom.bulk_lanes SET job_id = $1 WHERE job_id = $2`, [kept, deleted]),
      (error: { code?: string }) => error.code === '23503'
    );
    await db.pool.query(`DELETE FROM controlroom.bulk_jobs WHERE id = $1`, [deleted]);
    const left = await db.pool.query(
      `SELECT job_id, count(*)::int AS n FROM controlroom.bulk_lanes GROUP BY job_id ORDER BY job_id`
    );
    assert.deepEqual(left.rows, [{ job_id: kept, n: 2 }]);
  } finally {
    await db.drop();
  }
});
