import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvError, parse, type Options, type Parser } from 'csv-parse';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from '../../core/db.ts';
import { firstInvalidUtf8, incompleteUtf8Tail, safeText } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { isRowError, validateLane, type LaneRow, type LocationCheck, type RowError } from './lanes.ts';

export interface IngestLimits {
  maxBytes: number;
  maxLanes: number;
  maxErrorsReported: number;
}

/** What an upload amounted to once it is read whole; its good lanes went to a LaneWriter as they came. */
export interface IngestSummary {
  /** Good lanes written. */
  lanes: number;
  /** The first `maxErrorsReported` row errors. */
  errors: RowError[];
  rejectedRows: number;
  sha256: string;
  bytes: number;
}

/** A JSON upload, validated before any database work (its body is in memory already). */
export interface IngestResult extends Omit<IngestSummary, 'lanes'> {
  lanes: LaneRow[];
}

/** Reads an upload to its end, writing each good lane to `lanes` as soon as it is validated. */
export type StreamingIngest = (lanes: LaneWriter) => Promise<IngestSummary>;

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

// ---------------------------------------------------------------------------------------------------
// Writing lanes: COPY rows into bulk_lane_chunks, each row a chunk of lanes held as one text.

/** Where good lanes go, in file order; `seq` is assigned here (1, 2, ...). */
export interface LaneWriter {
  /** A lane whose fields are already COPY-encoded (what the CSV path caches per distinct value). */
  addEncoded(line: number, origin: Buffer, destination: Buffer, equipment: Buffer, pickupDate: Buffer): void;
  add(lane: LaneRow): void;
  /** A promise while the database is behind (wait for it before reading more), else null. */
  backpressure(): Promise<void> | null;
  readonly count: number;
}

/** COPY text format: backslash, tab and line breaks are escaped. */
export const copyText = (value: string) =>
  value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
const copyBytes = (value: string) => Buffer.from(copyText(value));

/** Default lanes per chunk row when the caller does not say (BULK_RATE_BATCH is what the service passes). */
export const DEFAULT_CHUNK_LANES = 5_000;
/**
 * The COPY lasts as long as the upload does (Node's http server ends a request after its requestTimeout,
 * 300 s by default, which aborts the upload and rolls the COPY back). This bound is only for a database
 * that stops answering; the pool's 10 s statement timeout would cut a large upload short.
 */
const COPY_TIMEOUT_MS = 10 * 60_000;
const BACKSLASH = 0x5c;

/**
 * The lanes_text of the chunk being built, as it travels in a COPY row: lanes separated by an escaped
 * LF, fields by an escaped tab, and each field's own COPY escapes escaped once more (every backslash
 * doubled), so the stored text holds them as COPY text does (see migration 1700000000033).
 */
class ChunkText {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  /** A lane: `line`, then the four COPY-encoded fields. */
  lane(line: number, fields: readonly Buffer[], first: boolean): void {
    let size = 16;
    for (const f of fields) size += f.length * 2 + 2;
    this.reserve(size);
    const b = this.buf;
    let p = this.pos;
    if (!first) {
      b[p++] = BACKSLASH;
      b[p++] = 0x6e; // n: the lane separator, a LF in the stored text
    }
    p = writeUint(b, p, line);
    for (const field of fields) {
      b[p++] = BACKSLASH;
      b[p++] = 0x74; // t: the field separator, a tab in the stored text
      if (field.indexOf(BACKSLASH) < 0) {
        p += field.copy(b, p);
      } else {
        for (let i = 0; i < field.length; i++) {
          const c = field[i]!;
          b[p++] = c;
          if (c === BACKSLASH) b[p++] = BACKSLASH;
        }
      }
    }
    this.pos = p;
  }
}

/**
 * COPY ... FROM STDIN into bulk_lane_chunks for one job, on the caller's transaction: every `chunkLanes`
 * lanes become one row (seq first_seq.., the lanes as one text), sent as soon as it is complete. The
 * database stores 20 rows for a 100k-lane file instead of 100k rows and their index entries, while the
 * next part of the file is read. Memory stays bounded by one chunk being built plus the stream's
 * high-water mark: `backpressure()` tells the reader to wait while the database is behind. A failed COPY
 * fails the next `backpressure()` or `finish()`, and the caller's transaction rolls back with everything
 * it wrote.
 */
export class LaneCopy implements LaneWriter {
  count = 0;
  private chunk = 0;
  private inChunk = 0;
  private text: ChunkText;
  private readonly prefix: string;
  private readonly copy: Writable;
  private readonly ended: Promise<void>;
  private failure: Error | null = null;
  private waiting: Promise<void> | null = null;

  /** Starts the COPY; the statement timeout is raised for it (see COPY_TIMEOUT_MS) and restored by finish(). */
  static async open(client: PoolClient, jobId: string, chunkLanes = DEFAULT_CHUNK_LANES): Promise<LaneCopy> {
    await client.query(`SET LOCAL statement_timeout = ${COPY_TIMEOUT_MS}`);
    return new LaneCopy(client, jobId, chunkLanes);
  }

  private constructor(
    private readonly client: PoolClient,
    jobId: string,
    private readonly chunkLanes: number
  ) {
    if (!(Number.isSafeInteger(chunkLanes) && chunkLanes > 0)) throw new RangeError(`chunkLanes ${chunkLanes}`);
    this.prefix = `${jobId}\t`;
    this.text = new ChunkText(Math.min(chunkLanes, 5_000) * 64);
    const stream = copyFrom(
      `COPY controlroom.bulk_lane_chunks (job_id, chunk, first_seq, lanes, lanes_text) FROM STDIN`
    );
    (stream as unknown as { query_timeout: number }).query_timeout = COPY_TIMEOUT_MS + 5_000;
    this.copy = client.query(stream);
    this.ended = new Promise<void>((resolve, reject) => {
      this.copy.on('finish', resolve);
      this.copy.on('error', (error: Error) => {
        this.failure = error;
        reject(error);
      });
    });
    this.ended.catch(() => {});
  }

  addEncoded(line: number, origin: Buffer, destination: Buffer, equipment: Buffer, pickupDate: Buffer): void {
    if (this.inChunk === 0) this.text.pos = 0;
    this.text.lane(line, [origin, destination, equipment, pickupDate], this.inChunk === 0);
    this.count++;
    if (++this.inChunk === this.chunkLanes) this.flush();
  }

  add(lane: LaneRow): void {
    this.addEncoded(
      lane.line,
      copyBytes(lane.origin),
      copyBytes(lane.destination),
      copyBytes(lane.equipment),
      copyBytes(lane.pickupDate)
    );
  }

  backpressure(): Promise<void> | null {
    if (this.failure) return Promise.reject(this.failure);
    return this.waiting;
  }

  /** Sends the last chunk and ends the COPY; resolves when the database has stored every lane. */
  async finish(): Promise<number> {
    if (this.failure) throw this.failure;
    if (this.inChunk > 0) this.flush();
    this.copy.end();
    await this.ended;
    await this.client.query('SET LOCAL statement_timeout TO DEFAULT');
    return this.count;
  }

  /** Abandons the COPY (the transaction is being rolled back). */
  abort(error: Error): void {
    if (!this.copy.destroyed) this.copy.destroy(error);
  }

  /** Sends the chunk being built as one COPY row. */
  private flush(): void {
    const lanes = this.inChunk;
    this.chunk++;
    const head = Buffer.from(`${this.prefix}${this.chunk}\t${this.count - lanes + 1}\t${lanes}\t`);
    const row = Buffer.allocUnsafe(head.length + this.text.pos + 1);
    head.copy(row, 0);
    this.text.buf.copy(row, head.length, 0, this.text.pos);
    row[row.length - 1] = LF;
    this.inChunk = 0;
    if (!this.copy.write(row) && !this.waiting) {
      this.waiting = new Promise<void>((resolve) => {
        const go = () => {
          this.copy.off('drain', go);
          this.copy.off('error', go);
          this.waiting = null;
          resolve();
        };
        this.copy.on('drain', go);
        this.copy.on('error', go);
      });
    }
  }
}

/** Lanes of a job that cannot be stored (its company does not exist): counted, then refused by the caller. */
export class LaneCounter implements LaneWriter {
  count = 0;
  addEncoded(): void {
    this.count++;
  }
  add(): void {
    this.count++;
  }
  backpressure(): null {
    return null;
  }
}

function writeUint(b: Buffer, p: number, n: number): number {
  if (n < 10) {
    b[p] = 48 + n;
    return p + 1;
  }
  let digits = 0;
  for (let m = n; m > 0; m = Math.floor(m / 10)) digits++;
  for (let i = p + digits - 1, m = n; i >= p; i--, m = Math.floor(m / 10)) b[i] = 48 + (m % 10);
  return p + digits;
}

// ---------------------------------------------------------------------------------------------------
// Validating rows.

/** Field value -> its COPY bytes, for values validateLane accepted; bounded so a file of distinct values cannot grow it without end. */
class AcceptedValues {
  private readonly map = new Map<string, Buffer>();
  get(raw: string): Buffer | undefined {
    return this.map.get(raw);
  }
  learn(raw: string, accepted: string): void {
    if (this.map.size >= 20_000) this.map.clear();
    this.map.set(raw, copyBytes(accepted));
  }
}

/**
 * Counts, validates and routes rows. A row is judged by validateLane (control/bulk/lanes.ts), whose
 * verdict on a field depends on that field alone; so once a raw field value has been accepted, its
 * normalised COPY bytes are remembered, and a row whose four values were all accepted before is written
 * without calling it again. Every other row (a new value, any problem) goes through validateLane, so
 * messages and accepted values are exactly its own.
 */
class RowChecker {
  readonly errors: RowError[] = [];
  rejectedRows = 0;
  /** Every data row, good or bad: BULK_MAX_LANES limits the file, not just the lanes that validate. */
  rows = 0;
  private readonly origins = new AcceptedValues();
  private readonly destinations = new AcceptedValues();
  private readonly equipment = new AcceptedValues();
  private readonly dates = new AcceptedValues();

  constructor(
    private readonly limits: IngestLimits,
    private readonly check: LocationCheck,
    private readonly today: string,
    private readonly lanes: LaneWriter
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

  /** A CSV row's four values (the raw text csv-parse would give). */
  fields(line: number, origin: string, destination: string, equipment: string, pickupDate: string): void {
    const o = this.origins.get(origin);
    const d = this.destinations.get(destination);
    const e = this.equipment.get(equipment);
    const p = this.dates.get(pickupDate);
    if (o && d && e && p) return this.lanes.addEncoded(line, o, d, e, p);
    const result = validateLane(
      { origin, destination, equipment, pickup_date: pickupDate },
      line,
      this.check,
      this.today
    );
    if (isRowError(result)) return this.reject(line, result.reason);
    if (!o) this.origins.learn(origin, result.origin);
    if (!d) this.destinations.learn(destination, result.destination);
    if (!e) this.equipment.learn(equipment, result.equipment);
    if (!p) this.dates.learn(pickupDate, result.pickupDate);
    this.lanes.add(result);
  }

  /** A JSON lane (any JSON values). */
  add(raw: Record<string, unknown>, line: number, into: LaneRow[]): void {
    const result = validateLane(raw, line, this.check, this.today);
    if (isRowError(result)) this.reject(line, result.reason);
    else into.push(result);
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
function csvSyntaxError(error: CsvError, lineOffset: number): UserError {
  const field =
    typeof (error as { column?: unknown }).column === 'number'
      ? (error as unknown as { column: number }).column + 1
      : null;
  const line = typeof error.lines === 'number' ? error.lines + lineOffset : '?';
  const where = `line ${line}${field !== null ? `, column ${field}` : ''}`;
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

const csvParseOptions = {
  bom: true,
  trim: true,
  skip_empty_lines: true,
  relax_column_count: true,
  max_record_size: 64 * 1024,
};

/** Lines the fast reader takes; a longer one goes to csv-parse (which enforces max_record_size). */
const MAX_FAST_LINE = 16 * 1024;
const MAX_FAST_FIELDS = 64;
const LF = 10;
const CR = 13;
const FF = 12;
const QUOTE = 34;
const COMMA = 44;
const SPACE = 32;
const TAB = 9;

/**
 * The common CSV, read without csv-parse: lines of plain or fully quoted fields (doubled quotes inside
 * quotes allowed), LF or CRLF line ends as the header's. That grammar is a strict subset of what
 * csv-parse (with the options above) reads, and on it gives the same values and line numbers; the test
 * beside this file checks that against csv-parse on generated files. At the first line outside it (a
 * line break inside quotes, a stray quote, a lone CR, a form feed, a very long line...) the reader hands
 * that line and the rest of the file to csv-parse, which is downstream in the same pipeline, set up as if
 * it had read the lines before: the same line-end, no BOM expected, line numbers offset by `lineOffset`.
 * So valid files and syntax errors read exactly as csv-parse alone read them, only faster.
 */
class FastCsvReader extends Transform {
  /** Physical lines read so far (csv-parse continues its numbering from here). */
  lineOffset = 0;
  private handedOff = false;
  private started = false;
  private rest: Buffer | null = null;
  /** 0 until the header's line end is seen; then 1 (LF) or 2 (CRLF). */
  private eol = 0;
  private readonly starts = new Int32Array(MAX_FAST_FIELDS);
  private readonly ends = new Int32Array(MAX_FAST_FIELDS);
  private readonly quoted = new Uint8Array(MAX_FAST_FIELDS);
  private readonly values: string[] = [];

  constructor(
    private readonly parser: Parser,
    private readonly onRecord: (line: number, values: string[], count: number) => void,
    private readonly lanes: LaneWriter
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.handedOff) return done(null, chunk);
    try {
      const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
      this.rest = null;
      let pos = 0;
      if (!this.started) {
        if (data.length < 3) {
          this.rest = data;
          return done();
        }
        this.started = true;
        if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) pos = 3;
      }
      for (;;) {
        const nl = data.indexOf(LF, pos);
        if (nl < 0) {
          if (data.length - pos > MAX_FAST_LINE) return this.handOff(data.subarray(pos), done);
          this.rest = pos < data.length ? Buffer.from(data.subarray(pos)) : null;
          break;
        }
        const crlf = nl > pos && data[nl - 1] === CR;
        const eol = crlf ? 2 : 1;
        if (this.eol === 0) this.eol = eol;
        if (eol !== this.eol || nl - pos > MAX_FAST_LINE || !this.line(data, pos, crlf ? nl - 1 : nl))
          return this.handOff(data.subarray(pos), done);
        pos = nl + 1;
      }
      const wait = this.lanes.backpressure();
      if (wait) wait.then(() => done(), done);
      else done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.handedOff) return done();
    try {
      const last = this.rest;
      this.rest = null;
      if (!last || last.length === 0) return done();
      if (!this.started) {
        // Fewer than 3 bytes in the whole file: csv-parse reads it from the start, BOM and all.
        this.handedOff = true;
        this.push(last);
        return done();
      }
      if (last[last.length - 1] === CR || !this.line(last, 0, last.length)) this.handOff(last, done);
      else done();
    } catch (error) {
      done(error as Error);
    }
  }

  private handOff(tail: Buffer, done: TransformCallback): void {
    this.handedOff = true;
    if (this.started) {
      // As if csv-parse had read the lines before: no BOM at this point, and the line end it found then.
      const state = (this.parser as unknown as { state: unknown }).state as {
        bomSkipped: boolean;
        recordDelimiterMaxLength: number;
      };
      state.bomSkipped = true;
      if (this.eol !== 0) {
        const options = this.parser.options as unknown as { record_delimiter: Buffer[] };
        options.record_delimiter = [Buffer.from(this.eol === 2 ? '\r\n' : '\n')];
        state.recordDelimiterMaxLength = this.eol;
      }
    }
    done(null, tail);
  }

  /**
   * Reads one line [from, to) (its line end excluded); false, having consumed nothing, when the line is
   * outside the fast grammar.
   */
  private line(data: Buffer, from: number, to: number): boolean {
    if (from === to) {
      this.lineOffset++; // an empty line: skip_empty_lines
      return true;
    }
    const { starts, ends, quoted } = this;
    let n = 0;
    let i = from;
    for (;;) {
      if (n === MAX_FAST_FIELDS) return false;
      if (data[i] === QUOTE && i < to) {
        let escaped = 0;
        let j = i + 1;
        for (;;) {
          if (j >= to) return false; // not closed on this line
          const b = data[j]!;
          if (b === QUOTE) {
            if (j + 1 < to && data[j + 1] === QUOTE) {
              escaped = 1;
              j += 2;
              continue;
            }
            break;
          }
          if (b === CR || b === FF) return false;
          j++;
        }
        starts[n] = i + 1;
        ends[n] = j;
        quoted[n] = 1 + escaped;
        n++;
        i = j + 1;
        if (i === to) break;
        if (data[i] !== COMMA) return false;
        i++;
        continue;
      }
      let j = i;
      while (j < to) {
        const b = data[j]!;
        if (b === COMMA) break;
        if (b === QUOTE || b === CR || b === FF) return false;
        j++;
      }
      let s = i;
      let e = j;
      while (s < e && (data[s] === SPACE || data[s] === TAB)) s++;
      while (e > s && (data[e - 1] === SPACE || data[e - 1] === TAB)) e--;
      starts[n] = s;
      ends[n] = e;
      quoted[n] = 0;
      n++;
      if (j === to) break;
      i = j + 1;
      if (i === to) {
        // A trailing comma: one more, empty field.
        if (n === MAX_FAST_FIELDS) return false;
        starts[n] = to;
        ends[n] = to;
        quoted[n] = 0;
        n++;
        break;
      }
    }
    // A line of blanks: csv-parse's trim and skip_empty_lines decide it.
    if (n === 1 && quoted[0] === 0 && starts[0] === ends[0]) return false;
    const values = this.values;
    for (let k = 0; k < n; k++) {
      const text = data.toString('utf8', starts[k], ends[k]);
      values[k] = quoted[k] === 2 ? text.replaceAll('""', '"') : text;
    }
    this.lineOffset++;
    this.onRecord(this.lineOffset, values, n);
    return true;
  }
}

/**
 * Streams a CSV upload row by row: the header names the columns (origin, destination, equipment,
 * pickup_date, in any order, common aliases accepted); every row is validated on its own, so bad rows
 * are reported with their line and reason while good rows go to `lanes` (a COPY into bulk_lane_chunks) as
 * they are read. The raw bytes are hashed for idempotency and counted against the size limit as they
 * arrive. Memory is bounded: nothing is kept per good row, and the COPY's backpressure paces the reading.
 *
 * Failure modes: the first refusal (413 size or row count, 415 not a CSV, 400 header, encoding or
 * syntax) is what the caller gets, whichever chunk it is noticed in; the caller's transaction then rolls
 * back every lane written so far. The rows are consumed at the end of a pipeline of our own streams, not
 * by `for await` over the parser: leaving such a loop early destroys the parser with a generic
 * AbortError, which pipeline() reported in place of the real refusal (a 500). The request itself is piped
 * in, never destroyed, so the error handler can still answer the client on the same connection (see
 * core/http.ts).
 */
export async function ingestCsv(
  body: Readable,
  limits: IngestLimits,
  check: LocationCheck,
  today: string,
  lanes: LaneWriter
): Promise<IngestSummary> {
  const rows = new RowChecker(limits, check, today, lanes);
  const meter = new UploadMeter(limits.maxBytes);
  // Arrays, not objects, and the line taken from on_record's context: csv-parse's `info` option costs
  // twice the parse time on a 100k-lane file.
  const parser = parse({
    ...csvParseOptions,
    // The record becomes [line, values]; csv-parse's types insist on_record returns a record.
    on_record: ((record: string[], context: { lines: number }) => [
      context.lines,
      record,
    ]) as unknown as Options['on_record'],
  });
  let header: string[] | null = null;
  let columns = [0, 0, 0, 0];
  const onRecord = (line: number, values: string[], count: number) => {
    if (!header) {
      header = readHeader(values.slice(0, count));
      columns = REQUIRED.map((name) => header!.lastIndexOf(name));
      return;
    }
    rows.count();
    if (count !== header.length) return rows.reject(line, `expected ${header.length} columns, found ${count}`);
    rows.fields(line, values[columns[0]!]!, values[columns[1]!]!, values[columns[2]!]!, values[columns[3]!]!);
  };
  const fast = new FastCsvReader(parser, onRecord, lanes);
  const sink = new Writable({
    objectMode: true,
    write([line, values]: [number, string[]], _encoding, done) {
      try {
        onRecord(line + fast.lineOffset, values, values.length);
        const wait = lanes.backpressure();
        if (wait) wait.then(() => done(), done);
        else done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  const parsed = pipeline(meter, fast, parser, sink);
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
    if (error instanceof CsvError) throw csvSyntaxError(error, fast.lineOffset);
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
  if (rows.rows === 0) throw new UserError(400, 'the file has a header but no lanes');
  return {
    lanes: lanes.count,
    errors: rows.errors,
    rejectedRows: rows.rejectedRows,
    sha256: meter.hash.digest('hex'),
    bytes: meter.bytes,
  };
}

/** The header's column names, aliases resolved; 400 when a required one is missing. */
export function readHeader(names: string[]): string[] {
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
  const good: LaneRow[] = [];
  const rows = new RowChecker(limits, check, today, new LaneCounter());
  lanes.forEach((lane, i) => {
    if (typeof lane !== 'object' || lane === null || Array.isArray(lane)) {
      rows.rejectedRows++;
      if (rows.errors.length < limits.maxErrorsReported)
        rows.errors.push({ line: i + 1, reason: 'a lane must be an object' });
      return;
    }
    const raw = lane as Record<string, unknown>;
    rows.add({ ...raw, pickup_date: raw.pickup_date ?? raw.pickupDate }, i + 1, good);
  });
  return {
    lanes: good,
    errors: rows.errors,
    rejectedRows: rows.rejectedRows,
    sha256: createHash('sha256').update(rawBody).digest('hex'),
    bytes: Buffer.byteLength(rawBody),
  };
}
