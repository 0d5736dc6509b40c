import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvError, parse, type Options } from 'csv-parse';
import { firstInvalidUtf8, incompleteUtf8Tail, safeText } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
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
  /** Every data row, good or bad: BULK_MAX_LANES limits the file, not just the lanes that validate. */
  rows = 0;

  constructor(
    private readonly limits: IngestLimits,
    private readonly check: LocationCheck,
    private readonly today: string
  ) {}

  /** Counts a row against BULK_MAX_LANES before it is looked at; 413 once the file has too many. */
  count(): void {
    this.rows++;
    if (this.rows > this.limits.maxLanes) {
      throw new UserError(
        413,
        `too many lanes: at most ${this.limits.maxLanes} rows per job (good and bad rows count)`
      );
    }
  }

  reject(line: number, reason: string): void {
    this.rejectedRows++;
    if (this.errors.length < this.limits.maxErrorsReported) this.errors.push({ line, reason: safeText(reason) });
  }

  add(raw: Record<string, unknown>, line: number): void {
    const result = validateLane(raw, line, this.check, this.today);
    if (isRowError(result)) this.reject(line, result.reason);
    else this.lanes.push(result);
  }
}

/** First bytes of files people upload by mistake instead of a CSV. */
const NOT_CSV: Array<{ magic: number[]; what: string }> = [
  { magic: [0x50, 0x4b, 0x03, 0x04], what: 'a spreadsheet or zip archive (xlsx, ods, zip)' },
  { magic: [0xd0, 0xcf, 0x11, 0xe0], what: 'an Excel 97-2003 workbook (xls)' },
  { magic: [0x25, 0x50, 0x44, 0x46], what: 'a PDF document' },
  { magic: [0x1f, 0x8b], what: 'a gzip archive' },
  { magic: [0xff, 0xfe], what: 'UTF-16 text' },
  { magic: [0xfe, 0xff], what: 'UTF-16 text' },
];
const SAVE_AS_CSV = 'save it as "CSV UTF-8 (comma delimited)" and upload that';

/**
 * Passes the upload through unchanged while it checks what csv-parse cannot: the size limit (413 as the
 * bytes arrive), a file that is not text at all (a spreadsheet, a PDF: 415), NUL bytes and invalid UTF-8
 * (400 with the line and byte). It hashes the bytes for idempotency and counts lines only to locate an
 * error; the fast path is two native scans per chunk.
 */
class UploadMeter extends Transform {
  bytes = 0;
  /** Bytes validated so far, the line they end on and the file offset where that line starts. */
  private checked = 0;
  private lines = 1;
  private lineStart = 0;
  private carry: Buffer = Buffer.alloc(0);
  private head: Buffer | null = Buffer.alloc(0);
  readonly hash = createHash('sha256');

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.bytes += chunk.length;
      if (this.bytes > this.maxBytes) throw new UserError(413, `upload larger than ${this.maxBytes} bytes`);
      if (this.head) this.sniff(chunk, false);
      this.check(chunk);
      this.hash.update(chunk);
      done(null, chunk);
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.head) this.sniff(Buffer.alloc(0), true);
      if (this.carry.length > 0) this.fail(this.carry, -1);
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  private sniff(chunk: Buffer, final: boolean): void {
    this.head = Buffer.concat([this.head!, chunk.subarray(0, 8)]);
    if (this.head.length < 4 && !final) return;
    const known = NOT_CSV.find(({ magic }) => magic.every((b, i) => this.head![i] === b));
    this.head = null;
    if (known) throw new UserError(415, `the file is ${known.what}, not CSV: ${SAVE_AS_CSV}`);
  }

  private check(chunk: Buffer): void {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const tail = incompleteUtf8Tail(data);
    const whole = data.subarray(0, data.length - tail);
    const nul = whole.indexOf(0);
    if (nul >= 0 || !isUtf8(whole)) this.fail(whole, nul);
    for (let at = whole.indexOf(10); at >= 0; at = whole.indexOf(10, at + 1)) {
      this.lines++;
      this.lineStart = this.checked + at + 1;
    }
    this.checked += whole.length;
    this.carry = Buffer.from(data.subarray(data.length - tail));
  }

  /** Throws the 400 for the first bad byte of `data` (which starts at file offset `checked`). */
  private fail(data: Buffer, nulAt: number): never {
    const bad = firstInvalidUtf8(data);
    const at = bad >= 0 && (nulAt < 0 || bad < nulAt) ? bad : nulAt >= 0 ? nulAt : Math.max(0, bad);
    let line = this.lines;
    let lineStart = this.lineStart;
    for (let i = data.indexOf(10); i >= 0 && i < at; i = data.indexOf(10, i + 1)) {
      line++;
      lineStart = this.checked + i + 1;
    }
    const where = `line ${line}, byte ${this.checked + at - lineStart + 1} of the line`;
    if (at === nulAt)
      throw new UserError(400, `the file contains binary data (a NUL byte at ${where}), not CSV text: ${SAVE_AS_CSV}`);
    throw new UserError(
      400,
      `the file is not valid UTF-8 (byte 0x${data[at]!.toString(16).padStart(2, '0')} at ${where}): ${SAVE_AS_CSV}`
    );
  }
}

/** csv-parse's errors in plain words, with the line and the field (1-based) where it found them. */
function csvSyntaxError(error: CsvError): UserError {
  const field =
    typeof (error as { column?: unknown }).column === 'number'
      ? (error as unknown as { column: number }).column + 1
      : null;
  const where = `line ${error.lines ?? '?'}${field !== null ? `, column ${field}` : ''}`;
  const reasons: Record<string, string> = {
    INVALID_OPENING_QUOTE:
      'a quote (") inside a field that does not start with one; wrap the field in quotes and double any quote inside it ("")',
    CSV_INVALID_CLOSING_QUOTE: 'a quoted field is followed by other characters before the next comma',
    CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a quoted field is followed by other characters before the next comma',
    CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed (unbalanced quote)',
    CSV_MAX_RECORD_SIZE: 'a row is too long',
  };
  const reason = reasons[error.code] ?? error.message;
  return new UserError(400, `CSV syntax error at ${where}: ${reason}`);
}

/**
 * Streams a CSV upload row by row: the header names the columns (origin, destination, equipment,
 * pickup_date, in any order, common aliases accepted); every row is validated on its own, so bad rows
 * are reported with their line and reason while good rows are accepted. The raw bytes are hashed for
 * idempotency and counted against the size limit as they arrive.
 *
 * Failure modes: the first refusal (413 size or row count, 415 not a CSV, 400 header, encoding or
 * syntax) is what the caller gets, whichever chunk it is noticed in. The rows are consumed by a Writable
 * at the end of a pipeline of our own streams, not by `for await` over the parser: leaving such a loop
 * early destroys the parser with a generic AbortError, which pipeline() reported in place of the real
 * refusal (a 500). The request itself is piped in, never destroyed, so the error handler can still
 * answer the client on the same connection (see core/http.ts).
 */
export async function ingestCsv(
  body: Readable,
  limits: IngestLimits,
  check: LocationCheck,
  today: string
): Promise<IngestResult> {
  const collector = new Collector(limits, check, today);
  const meter = new UploadMeter(limits.maxBytes);
  // Arrays, not objects, and the line taken from on_record's context: csv-parse's `info` option costs
  // twice the parse time on a 100k-lane file.
  const parser = parse({
    bom: true,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: true,
    max_record_size: 64 * 1024,
    // The record becomes [line, values]; csv-parse's types insist on_record returns a record.
    on_record: ((record: string[], context: { lines: number }) => [
      context.lines,
      record,
    ]) as unknown as Options['on_record'],
  });
  let header: string[] | null = null;
  const onRecord = ([line, values]: [number, string[]]) => {
    if (!header) {
      header = readHeader(values);
      return;
    }
    collector.count();
    if (values.length !== header.length)
      return collector.reject(line, `expected ${header.length} columns, found ${values.length}`);
    const raw: Record<string, string> = {};
    for (let i = 0; i < header.length; i++) raw[header[i]!] = values[i]!;
    collector.add(raw, line);
  };
  const sink = new Writable({
    objectMode: true,
    write(record: [number, string[]], _encoding, done) {
      try {
        onRecord(record);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  const parsed = pipeline(meter, parser, sink);
  let onBodyError!: (error: Error) => void;
  const bodyFailed = new Promise<never>((_resolve, reject) => {
    onBodyError = (error) => reject(new UserError(400, `the upload was interrupted: ${error.message}`));
  });
  const onAborted = () => onBodyError(new Error('the client aborted it'));
  // Whichever loses the race must not become an unhandled rejection.
  parsed.catch(() => {});
  bodyFailed.catch(() => {});
  body.on('error', onBodyError);
  body.on('aborted', onAborted);
  body.pipe(meter);
  try {
    await Promise.race([parsed, bodyFailed]);
  } catch (error) {
    body.unpipe(meter);
    meter.destroy();
    if (error instanceof UserError) throw error;
    if (error instanceof CsvError) throw csvSyntaxError(error);
    throw error;
  } finally {
    body.off('error', onBodyError);
    body.off('aborted', onAborted);
  }
  if (!header)
    throw new UserError(
      400,
      'the file is empty: expected a CSV header (origin, destination, equipment, pickup_date) and at least one lane'
    );
  if (collector.rows === 0) throw new UserError(400, 'the file has a header but no lanes');
  return {
    lanes: collector.lanes,
    errors: collector.errors,
    rejectedRows: collector.rejectedRows,
    sha256: meter.hash.digest('hex'),
    bytes: meter.bytes,
  };
}

function readHeader(names: string[]): string[] {
  const header = names.map(
    (n) =>
      HEADER_ALIASES[
        n
          .trim()
          .toLowerCase()
          .replace(/[\s-]+/g, '_')
      ] ?? n.trim().toLowerCase()
  );
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    const found = safeText(names.join(', ')).slice(0, 200) || 'nothing';
    const separator = names.length === 1 ? [';', '\t', '|'].find((s) => names[0]!.includes(s)) : undefined;
    if (separator) {
      throw new UserError(
        400,
        `the header is separated by ${separator === '\t' ? 'tabs' : `'${separator}'`}, not commas: save the file as comma-separated CSV (line 1: ${found})`
      );
    }
    throw new UserError(
      400,
      `CSV header must name the columns ${REQUIRED.join(', ')}; missing ${missing.join(', ')} (line 1: ${found})`
    );
  }
  return header;
}

/** JSON lanes ({ lanes: [...] }): the same per-lane validation, with the array position as the line. */
export function ingestJson(
  lanes: unknown[],
  rawBody: string,
  limits: IngestLimits,
  check: LocationCheck,
  today: string
): IngestResult {
  if (lanes.length > limits.maxLanes) throw new UserError(413, `too many lanes: at most ${limits.maxLanes} per job`);
  const collector = new Collector(limits, check, today);
  lanes.forEach((lane, i) => {
    if (typeof lane !== 'object' || lane === null || Array.isArray(lane)) {
      collector.rejectedRows++;
      if (collector.errors.length < limits.maxErrorsReported)
        collector.errors.push({ line: i + 1, reason: 'a lane must be an object' });
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
