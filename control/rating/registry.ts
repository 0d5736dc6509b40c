import { audit } from '../../core/audit.ts';
import { UserError } from '../../core/errors.ts';
import { withTransaction, type Pool, type PoolClient } from '../../core/db.ts';
import {
  RatedBatch,
  RatingError,
  rateSplitBatch,
  splitPosition,
  splitSalt,
  tryRateSplit,
  type Lane,
  type SplitRate,
} from './engine.ts';
import { compileModel, parsePricingModelParams, type PricingModel, type PricingModelParams } from './model.ts';

/**
 * The pricing model registry: versioned models in controlroom.pricing_models, one active, at most one
 * candidate taking a deterministic share of lanes. Every change runs in one transaction, under an advisory
 * lock, together with its audit_log entry. Rating itself never touches the database: `loadRegistry` takes
 * a snapshot of the compiled models and the engine rates against it synchronously.
 */
export type ModelStatus = 'active' | 'candidate' | 'retired' | 'draft';
export const DEFAULT_CANDIDATE_SHARE = 0.1;
export const MAX_CANDIDATE_SHARE = 0.5;

export interface ModelRow {
  version: string;
  status: ModelStatus;
  /** The share of lanes the model takes while it is the candidate. */
  candidateShare: number;
  createdBy: string;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  params: PricingModelParams;
}

// ---------------------------------------------------------------------------------------------------
// Snapshot and A/B split

export class RegistrySnapshot {
  /** FNV state of the candidate's version: the split's salt. */
  private readonly salt: number;

  constructor(
    readonly active: PricingModel,
    readonly candidate: PricingModel | null,
    /** Share of lanes for the candidate (0 when there is none). */
    readonly candidateShare: number,
    readonly loadedAt: Date = new Date()
  ) {
    if (candidate && candidate.version === active.version)
      throw new UserError(400, `candidate '${candidate.version}' is also the active model`);
    if (!(candidateShare >= 0 && candidateShare <= MAX_CANDIDATE_SHARE)) {
      throw new UserError(400, `candidate share must be between 0 and ${MAX_CANDIDATE_SHARE}, got ${candidateShare}`);
    }
    if (!candidate) this.candidateShare = 0;
    this.salt = splitSalt(candidate?.version ?? '');
  }

  /** Which arm a lane key falls in: stable for the key and the candidate version. */
  armOf(laneKey: string): 'active' | 'candidate' {
    return this.candidate !== null && splitPosition(this.salt, laneKey) < this.candidateShare ? 'candidate' : 'active';
  }

  /** The model that prices a lane key (see engine `laneKey` for the key rateWithRegistry uses). */
  choose(laneKey: string): PricingModel {
    return this.armOf(laneKey) === 'candidate' ? this.candidate! : this.active;
  }

  /** Rates a lane with the chosen model, or returns the per-row reason it cannot be rated. */
  tryRate(lane: Lane, key?: string): SplitRate | string {
    return tryRateSplit(lane, this.active, this.candidate, this.candidateShare, this.salt, key);
  }

  /**
   * tryRate for many lanes at once, into columns (see RatedBatch): the same arms, prices, flags and
   * anomaly decisions, without an object per lane. Pass `out` to reuse one batch from call to call, and
   * `keys` (one per lane) to split by those keys instead of laneKey. Never throws for a bad lane.
   */
  rateBatch(lanes: ArrayLike<Lane>, out?: RatedBatch, keys?: ArrayLike<string>): RatedBatch {
    return rateSplitBatch(
      lanes,
      this.active,
      this.candidate,
      this.candidateShare,
      this.salt,
      out ?? new RatedBatch(lanes.length),
      keys
    );
  }
}

type ModelInput = PricingModel | PricingModelParams | unknown;
const isCompiled = (m: unknown): m is PricingModel =>
  typeof m === 'object' && m !== null && (m as PricingModel).rate instanceof Float64Array;

/** A snapshot from parameters or compiled models, without a database (tests, benchmarks, workers). */
export function createSnapshot(options: {
  active: ModelInput;
  candidate?: ModelInput | null;
  candidateShare?: number;
}): RegistrySnapshot {
  const active = isCompiled(options.active) ? options.active : compileModel(options.active);
  const candidate =
    options.candidate == null
      ? null
      : isCompiled(options.candidate)
        ? options.candidate
        : compileModel(options.candidate);
  return new RegistrySnapshot(active, candidate, candidate ? (options.candidateShare ?? DEFAULT_CANDIDATE_SHARE) : 0);
}

/**
 * Rates a lane with the snapshot's split: the candidate prices `candidateShare` of lanes (by laneKey, or
 * by `key` when given, e.g. a shipper id), and then the result also carries the active model's total and
 * the `anomaly` flag when the two differ by more than 10%. Throws RatingError for a lane it cannot rate.
 */
export function rateWithRegistry(lane: Lane, snapshot: RegistrySnapshot, key?: string): SplitRate {
  const r = snapshot.tryRate(lane, key);
  if (typeof r === 'string') throw new RatingError(r);
  return r;
}

/** rateWithRegistry that returns the reason as a string instead of throwing. */
export function tryRateWithRegistry(lane: Lane, snapshot: RegistrySnapshot, key?: string): SplitRate | string {
  return snapshot.tryRate(lane, key);
}

// ---------------------------------------------------------------------------------------------------
// Database

interface DbRow {
  version: string;
  status: ModelStatus;
  candidate_share: string;
  created_by: string;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  params: unknown;
}

const COLUMNS = 'version, status, candidate_share, created_by, created_at, activated_at, retired_at, params';

function toRow(r: DbRow): ModelRow {
  return {
    version: r.version,
    status: r.status,
    candidateShare: Number(r.candidate_share),
    createdBy: r.created_by,
    createdAt: r.created_at,
    activatedAt: r.activated_at,
    retiredAt: r.retired_at,
    params: r.params as PricingModelParams,
  };
}

/** The active model and the candidate (if any), validated and compiled. */
export async function loadRegistry(db: Pool | PoolClient): Promise<RegistrySnapshot> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM controlroom.pricing_models WHERE status IN ('active', 'candidate')`
  );
  const activeRow = rows.find((r) => r.status === 'active');
  if (!activeRow) throw new UserError(404, 'no active pricing model in controlroom.pricing_models');
  const candidateRow = rows.find((r) => r.status === 'candidate');
  const active = compileModel(activeRow.params);
  const candidate = candidateRow ? compileModel(candidateRow.params) : null;
  return new RegistrySnapshot(active, candidate, candidateRow ? Number(candidateRow.candidate_share) : 0);
}

/** Every model, newest first. */
export async function listModels(db: Pool | PoolClient): Promise<ModelRow[]> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM controlroom.pricing_models ORDER BY created_at DESC, version DESC`
  );
  return rows.map(toRow);
}

export async function getModel(db: Pool | PoolClient, version: string): Promise<ModelRow | null> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM controlroom.pricing_models WHERE version = $1`, [
    version,
  ]);
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * Who makes a registry change: the audit actor ("grafana:<login>"), and from the control API also the
 * reason typed into the confirmation and the client's address and user agent, all written to the audit entry.
 */
export interface ChangedBy {
  actor: string;
  reason?: string;
  ipAddress?: string | null;
  userAgent?: string | null;
}

function changedBy(by: string | ChangedBy): ChangedBy {
  const who = typeof by === 'string' ? { actor: by } : by;
  if (typeof who.actor !== 'string' || who.actor.trim() === '') throw new UserError(400, 'actor is required');
  return who;
}

/** The audit entry of a change, with the reason in its payload when one was given. */
function entry(by: ChangedBy, action: string, version: string, payload: Record<string, unknown>) {
  return {
    actor: by.actor,
    action,
    target: target(version),
    payload: by.reason === undefined ? payload : { ...payload, reason: by.reason },
    ipAddress: by.ipAddress ?? null,
    userAgent: by.userAgent ?? null,
  };
}

/** One registry change: a transaction holding the registry's advisory lock. */
async function change<T>(db: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(db, 'READ COMMITTED', async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('controlroom.pricing_models', 0))`);
    return work(client);
  });
}

async function lockModel(client: PoolClient, version: string): Promise<DbRow> {
  const { rows } = await client.query<DbRow>(
    `SELECT ${COLUMNS} FROM controlroom.pricing_models WHERE version = $1 FOR UPDATE`,
    [version]
  );
  if (!rows[0]) throw new UserError(404, `no pricing model '${version}'`);
  return rows[0];
}

const target = (version: string) => `pricing_models/${version}`;

/** Stores a new model as a draft. Throws PricingModelError naming the bad field, or a conflict when the version exists. */
export async function registerModel(db: Pool, params: unknown, actor: string | ChangedBy): Promise<ModelRow> {
  const by = changedBy(actor);
  const valid = parsePricingModelParams(params);
  return change(db, async (client) => {
    const { rows } = await client.query<DbRow>(
      `INSERT INTO controlroom.pricing_models (version, params, status, created_by) VALUES ($1, $2, 'draft', $3)
       ON CONFLICT (version) DO NOTHING RETURNING ${COLUMNS}`,
      [valid.version, JSON.stringify(valid), by.actor]
    );
    if (!rows[0]) throw new UserError(409, `pricing model '${valid.version}' already exists`);
    await audit(
      client,
      entry(by, 'pricing_model.registered', valid.version, { version: valid.version, params: valid })
    );
    return toRow(rows[0]);
  });
}

/**
 * Makes a draft or retired model the candidate with `share` of lanes (default 10%, at most 50%), or changes
 * the share of the current candidate. A different previous candidate goes back to draft.
 */
export async function promoteCandidate(
  db: Pool,
  version: string,
  share: number | undefined,
  actor: string | ChangedBy
): Promise<ModelRow> {
  const by = changedBy(actor);
  const s = share ?? DEFAULT_CANDIDATE_SHARE;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0 || s > MAX_CANDIDATE_SHARE) {
    throw new UserError(
      400,
      `candidate share must be > 0 and <= ${MAX_CANDIDATE_SHARE} (0.1 = 10% of lanes), got ${String(share)}`
    );
  }
  return change(db, async (client) => {
    const row = await lockModel(client, version);
    if (row.status === 'active') throw new UserError(409, `pricing model '${version}' is the active model`);
    compileModel(row.params);
    let replaced: string | null = null;
    if (row.status !== 'candidate') {
      const previous = await client.query<{ version: string }>(
        `UPDATE controlroom.pricing_models SET status = 'draft' WHERE status = 'candidate' RETURNING version`
      );
      replaced = previous.rows[0]?.version ?? null;
      if (replaced) {
        await audit(
          client,
          entry(by, 'pricing_model.candidate_withdrawn', replaced, { version: replaced, replacedBy: version })
        );
      }
    }
    const { rows } = await client.query<DbRow>(
      `UPDATE controlroom.pricing_models SET status = 'candidate', candidate_share = $2, retired_at = NULL
        WHERE version = $1 RETURNING ${COLUMNS}`,
      [version, s]
    );
    await audit(
      client,
      entry(by, 'pricing_model.candidate_promoted', version, {
        version,
        share: s,
        previousStatus: row.status,
        previousShare: row.status === 'candidate' ? Number(row.candidate_share) : null,
        replaced,
      })
    );
    return toRow(rows[0]!);
  });
}

/** Ends the A/B split: the candidate goes back to draft. */
export async function withdrawCandidate(db: Pool, actor: string | ChangedBy): Promise<ModelRow> {
  const by = changedBy(actor);
  return change(db, async (client) => {
    const { rows } = await client.query<DbRow>(
      `UPDATE controlroom.pricing_models SET status = 'draft' WHERE status = 'candidate' RETURNING ${COLUMNS}`
    );
    if (!rows[0]) throw new UserError(404, 'there is no candidate pricing model');
    await audit(client, entry(by, 'pricing_model.candidate_withdrawn', rows[0].version, { version: rows[0].version }));
    return toRow(rows[0]);
  });
}

async function switchActive(client: PoolClient, row: DbRow): Promise<{ active: ModelRow; previous: string | null }> {
  compileModel(row.params);
  const previous = await client.query<{ version: string }>(
    `UPDATE controlroom.pricing_models SET status = 'retired', retired_at = now() WHERE status = 'active' RETURNING version`
  );
  const { rows } = await client.query<DbRow>(
    `UPDATE controlroom.pricing_models SET status = 'active', activated_at = now(), retired_at = NULL
      WHERE version = $1 RETURNING ${COLUMNS}`,
    [row.version]
  );
  return { active: toRow(rows[0]!), previous: previous.rows[0]?.version ?? null };
}

/** Makes a model active (draft, candidate or retired); the previous active model is retired. */
export async function activate(db: Pool, version: string, actor: string | ChangedBy): Promise<ModelRow> {
  const by = changedBy(actor);
  return change(db, async (client) => {
    const row = await lockModel(client, version);
    if (row.status === 'active') throw new UserError(409, `pricing model '${version}' is already active`);
    const { active, previous } = await switchActive(client, row);
    await audit(
      client,
      entry(by, 'pricing_model.activated', version, { version, previous, previousStatus: row.status })
    );
    return active;
  });
}

/**
 * Re-activates the most recently retired model and retires the current one. A second rollback therefore
 * returns to the model the first one rolled back from.
 */
export async function rollback(db: Pool, actor: string | ChangedBy): Promise<ModelRow> {
  const by = changedBy(actor);
  return change(db, async (client) => {
    const { rows } = await client.query<DbRow>(
      `SELECT ${COLUMNS} FROM controlroom.pricing_models WHERE status = 'retired'
        ORDER BY retired_at DESC, activated_at DESC NULLS LAST, version DESC LIMIT 1 FOR UPDATE`
    );
    const to = rows[0];
    if (!to) throw new UserError(409, 'no retired pricing model to roll back to');
    const { active, previous } = await switchActive(client, to);
    await audit(client, entry(by, 'pricing_model.rolled_back', to.version, { from: previous, to: to.version }));
    return active;
  });
}
