import express, { type Request, type Router } from 'express';
import {
  LimitIncreaseRequestBody,
  type LimitIncreaseRequest,
  type LimitRequestAnswer,
  type LimitRequestList,
} from '@controlroom/contract';
import { actorOf, requireAction } from '../../core/access.ts';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { jsonBody, parseInput } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import {
  companyFeatureUsage,
  meterUnit,
  nextPlanFor,
  type FeatureUsage,
  type UpgradeHint,
} from '../../core/plan-usage.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface RequestRow {
  id: string;
  company_id: string;
  feature: string;
  period_start: string;
  current_limit: string;
  requested_limit: string;
  reason: string;
  requested_by: string;
  agent_task_id: string;
  created_at: Date;
}

const requestView = (r: RequestRow): LimitIncreaseRequest => ({
  id: Number(r.id),
  companyId: r.company_id,
  feature: r.feature,
  unit: meterUnit(r.feature),
  periodStart: r.period_start,
  currentLimit: Number(r.current_limit),
  requestedLimit: Number(r.requested_limit),
  reason: r.reason,
  requestedBy: r.requested_by,
  agentTaskId: Number(r.agent_task_id),
  createdAt: r.created_at.toISOString(),
});

const COLUMNS = `id, company_id, feature, to_char(period_start, 'YYYY-MM-DD') AS period_start, current_limit, requested_limit, reason, requested_by, agent_task_id, created_at`;

/** The `notify_ops` payload ops act on: who asks for how much of what, against what they have and use. */
function increasePayload(
  usage: FeatureUsage,
  body: LimitIncreaseRequestBody,
  actor: string,
  upgrade: UpgradeHint | null
) {
  return {
    type: 'limit_increase_request',
    company_id: usage.companyId,
    company_name: usage.companyName,
    plan: usage.plan,
    feature: usage.feature,
    unit: meterUnit(usage.feature),
    period: usage.period,
    period_start: usage.periodStart,
    used: usage.used,
    included: usage.softLimit,
    current_limit: usage.hardLimit,
    requested_limit: body.requestedLimit,
    reason: body.reason,
    requested_by: actor,
    upgrade: upgrade && { plan: upgrade.plan, name: upgrade.name, hard_limit: upgrade.hardLimit },
  };
}

/**
 * The "request increase" flow that a hard-limit refusal offers (Phase 6: hard stop + request increase +
 * upgrade CTA). POST /api/limits/requests (`limits:request`, Editor) creates one audited `notify_ops` agent task of type
 * `limit_increase_request`; the same request again in the same period (company, feature, limit) answers
 * 200 with the first one and creates nothing. GET /api/limits/requests?companyId= (Viewer; company_id= accepted) lists them.
 */
export function limitRequestsRouter(pool: Pool): Router {
  const router = express.Router();
  const json = jsonBody(16 * 1024);

  router.post('/limits/requests', requireAction('limitsRequest'), json, async (req: Request, res) => {
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      throw new UserError(400, 'send a JSON object {companyId, feature, requestedLimit, reason}');
    }
    const body = parseInput(LimitIncreaseRequestBody, req.body, 'limit increase request');
    const actor = actorOf(req.caller!);

    const outcome = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const usage = await companyFeatureUsage(client, body.companyId, body.feature);
      if (!usage) throw new UserError(404, `no live company ${body.companyId}`);
      const unit = meterUnit(body.feature);
      if (usage.hardLimit < 0) {
        throw new UserError(
          422,
          `${usage.companyName}'s ${usage.plan} plan already has unlimited ${body.feature}: there is nothing to increase`
        );
      }
      if (body.requestedLimit <= usage.hardLimit) {
        throw new UserError(
          422,
          `requested_limit ${body.requestedLimit} is not above the current limit of ${usage.hardLimit} ${unit} per ${usage.period} on the ${usage.plan} plan`
        );
      }
      const upgrade = await nextPlanFor(client, usage.plan, body.feature, usage.hardLimit);
      const payload = increasePayload(usage, body, actor, upgrade);
      // The request row and its agent task in one statement: the task id is drawn first, so the row
      // (whose unique key decides whether this is a repeat) and the task exist together or not at all.
      const { rows: created } = await client.query<RequestRow>(
        `WITH req AS (
           INSERT INTO controlroom.limit_increase_requests
             (company_id, feature, period_start, current_limit, requested_limit, reason, requested_by, agent_task_id)
           VALUES ($1, $2, $3::date, $4, $5, $6, $7, nextval(pg_get_serial_sequence('agent_tasks', 'id')))
           ON CONFLICT DO NOTHING
           RETURNING *
         ), task AS (
           INSERT INTO agent_tasks (id, company_id, fn_name, payload, status)
           SELECT agent_task_id, company_id, 'notify_ops', $8::jsonb || jsonb_build_object('request_id', id), 'queued' FROM req
         )
         SELECT ${COLUMNS} FROM req`,
        [
          body.companyId,
          body.feature,
          usage.periodStart,
          usage.hardLimit,
          body.requestedLimit,
          body.reason,
          actor,
          JSON.stringify(payload),
        ]
      );
      if (created[0]) {
        await audit(client, {
          actor,
          action: 'limits.increase_requested',
          target: `limit_increase_requests/${created[0].id}`,
          companyId: body.companyId,
          payload: { ...payload, request_id: Number(created[0].id), agent_task_id: Number(created[0].agent_task_id) },
          ipAddress: req.ip ?? null,
          userAgent: req.header('user-agent') ?? null,
        });
        return { row: created[0], duplicate: false, upgrade };
      }
      const { rows: existing } = await client.query<RequestRow>(
        `SELECT ${COLUMNS} FROM controlroom.limit_increase_requests
          WHERE company_id = $1 AND feature = $2 AND period_start = $3::date AND requested_limit = $4`,
        [body.companyId, body.feature, usage.periodStart, body.requestedLimit]
      );
      return { row: existing[0]!, duplicate: true, upgrade };
    });
    res.status(outcome.duplicate ? 200 : 201).json({
      request: requestView(outcome.row),
      duplicate: outcome.duplicate,
      upgrade: outcome.upgrade,
    } satisfies LimitRequestAnswer);
  });

  router.get('/limits/requests', requireAction('read'), async (req, res) => {
    const [name, companyId] =
      req.query.companyId !== undefined ? ['companyId', req.query.companyId] : ['company_id', req.query.company_id];
    if (typeof companyId !== 'string' || !UUID.test(companyId))
      throw new UserError(400, `${name} must be a UUID, not '${String(companyId ?? '')}'`);
    const { rows } = await pool.query<RequestRow>(
      `SELECT ${COLUMNS} FROM controlroom.limit_increase_requests WHERE company_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50`,
      [companyId]
    );
    res.json({ requests: rows.map(requestView) } satisfies LimitRequestList);
  });
  return router;
}
