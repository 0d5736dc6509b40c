import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, type Options } from 'csv-parse';
import { HttpError } from '../../core/http.ts';
import { isRowError, validateLane, type LaneRow, type LocationCheck, type RowError } from './lanes.ts';

export interface IngestLimits {
  maxBytes: number;
  maxLanes: number;
  maxErrorsReported: number;
}

export interface IngestResult {
  lanes: LaneRow[];
  /** The first `maxErrorsReported` row errors. */
  errors: RowError[];
  rejectedRows: number;
  sha256: string;
  bytes: number;
}

const HEADER_ALIASES: Record<string, string> = {
  origin: 'origin',
  from: 'origin',
  destination: 'destination',
  dest: 'destination',
  to: 'destination',
  equipment: 'equipment',
  equipment_type: 'equipment',
  pickup_date: 'pickup_date',
  pickupdate: 'pickup_date',
  pickup: 'pickup_date',
  ship_date: 'pickup_date',
};
const REQUIRED = ['origin', 'destination', 'equipment', 'pickup_date'];

class Collector {
  readonly lanes: LaneRow[] = [];
  readonly errors: RowError[] = [];
  rejectedRows = 0;

  constructor(
    private readonly limits: IngestLimits,
    private readonly check: LocationCheck,
    private readonly today: string,
  ) {}

  add(raw: Record<string, unknown>, line: number): void {
    const result = validateLane(raw, line, this.check, this.today);
    if (isRowError(result)) {
      this.rejectedRows++;
      if (this.errors.length < this.limits.maxErrorsReported) this.errors.push(result);
      return;
    }
    this.lanes.push(result);
    if (this.lanes.length + this.rejectedRows > this.limits.maxLanes) {
      throw new HttpError(413, `too many lanes: at most ${this.limits.maxLanes} per job`);
    }
  }
}

/**
 * Streams a CSV upload row by row: the header names the columns (origin, destination, equipment,
 * pickup_date, in any order, common aliases accepted); every row is validated on its own, so bad rows
 * are reported with their line and reason while good rows are accepted. The raw bytes are hashed for
 * idempotency and counted against the size limit as they arrive.
 */
export async function ingestCsv(body: Readable, limits: IngestLimits, check: LocationCheck, today: string): Promise<IngestResult> {
  const collector = new Collector(limits, check, today);
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) return done(new HttpError(413, `upload larger than ${limits.maxBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  // Arrays, not objects, and the line taken from on_record's context: csv-parse's `info` option costs
  // twice the parse time on a 100k-lane file.
  const parser = parse({
    bom: true,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: true,
    // The record becomes [line, values]; csv-parse's types insist on_record returns a record.
    on_record: ((record: string[], context: { lines: number }) => [context.lines, record]) as unknown as Options['on_record'],
  });
  let header: string[] | null = null;
  const consume = async (records: AsyncIterable<[number, string[]]>) => {
    for await (const [line, values] of records) {
      if (!header) {
        header = readHeader(values);
        continue;
      }
      if (values.length !== header.length) {
        collector.rejectedRows++;
        if (collector.errors.length < limits.maxErrorsReported) {
          collector.errors.push({ line, reason: `expected ${header.length} columns, found ${values.length}` });
        }
        continue;
      }
      const raw: Record<string, string> = {};
      for (let i = 0; i < header.length; i++) raw[header[i]!] = values[i]!;
      collector.add(raw, line);
    }
  };
  try {
    await pipeline(body, meter, parser, consume);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    const csvError = error as { code?: string; lines?: number; message?: string };
    if (csvError.code?.startsWith('CSV_')) throw new HttpError(400, `CSV syntax error near line ${csvError.lines ?? '?'}: ${csvError.message}`);
    throw error;
  }
  if (!header) throw new HttpError(400, 'empty upload: expected a CSV header and at least one lane');
  return { lanes: collector.lanes, errors: collector.errors, rejectedRows: collector.rejectedRows, sha256: hash.digest('hex'), bytes };
}

function readHeader(names: string[]): string[] {
  const header = names.map((n) => HEADER_ALIASES[n.trim().toLowerCase().replace(/[\s-]+/g, '_')] ?? n.trim().toLowerCase());
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new HttpError(400, `CSV header must name the columns ${REQUIRED.join(', ')}; missing ${missing.join(', ')} (found: ${names.join(', ') || 'nothing'})`);
  }
  return header;
}

/** JSON lanes ({ lanes: [...] }): the same per-lane validation, with the array position as the line. */
export function ingestJson(lanes: unknown[], rawBody: string, limits: IngestLimits, check: LocationCheck, today: string): IngestResult {
  if (lanes.length > limits.maxLanes) throw new HttpError(413, `too many lanes: at most ${limits.maxLanes} per job`);
  const collector = new Collector(limits, check, today);
  lanes.forEach((lane, i) => {
    if (typeof lane !== 'object' || lane === null || Array.isArray(lane)) {
      collector.rejectedRows++;
      if (collector.errors.length < limits.maxErrorsReported) collector.errors.push({ line: i + 1, reason: 'a lane must be an object' });
      return;
    }
    const raw = lane as Record<string, unknown>;
    collector.add({ ...raw, pickup_date: raw.pickup_date ?? raw.pickupDate }, i + 1);
  });
  return {
    lanes: collector.lanes,
    errors: collector.errors,
    rejectedRows: collector.rejectedRows,
    sha256: createHash('sha256').update(rawBody).digest('hex'),
    bytes: Buffer.byteLength(rawBody),
  };
}
