import {
  EndFreezeBody,
  FreezeBody,
  OverrideBody,
  type FreezeAction,
  type FreezeEnded,
  type FreezeState,
  type FreezeTrigger,
} from '@controlroom/contract';
import { Webhooks } from '@octokit/webhooks';
import express, { type Request, type Router } from 'express';
import type { z } from 'zod';
import { actorOf, requireAction } from '../../core/access.ts';
import { audit } from '../../core/audit.ts';
import type { AlertingConfig } from '../config.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { jsonBody, parseInput, readBody } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { enqueueJob } from '../../core/jobs.ts';
import { exceptionLabels, repositories, type GitHubConfig } from './github.ts';
import { FREEZE_DEPLOYMENT_TASK, FREEZE_PR_TASK, requestFreezeSync } from './jobs.ts';
import {
  loadDecision,
  type FreezeAction as StoredFreezeAction,
  type FreezePolicy,
  type FreezeTrigger as StoredFreezeTrigger,
} from './state.ts';

export type FreezeRouteConfig = GitHubConfig &
  Pick<AlertingConfig, 'GITHUB_WEBHOOK_SECRET' | 'FREEZE_QUIET_PERIOD_SECONDS'>;

const meta = (req: Request) => ({ ipAddress: req.ip ?? null, userAgent: req.header('user-agent') ?? null });

const parse = <T>(schema: z.ZodType<T>, body: unknown): T => parseInput(schema, body ?? {});

const actionView = (a: StoredFreezeAction): FreezeAction => ({
  id: a.id,
  kind: a.kind,
  reason: a.reason,
  actor: a.actor,
  createdAt: a.created_at.toISOString(),
  expiresAt: a.expires_at?.toISOString() ?? null,
});

const triggerView = (t: StoredFreezeTrigger): FreezeTrigger => ({
  alertname: t.alertname,
  slo: t.slo,
  severity: t.severity,
  firing: t.firing,
  startedAt: t.started_at.toISOString(),
  resolvedAt: t.resolved_at?.toISOString() ?? null,
  labels: t.labels,
});

/** GET /api/freeze for scripts and CI; manual freeze (Editor) and override (Admin) through Grafana. */
export function freezeApiRouter(pool: Pool, config: FreezeRouteConfig): Router {
  const router = express.Router();
  const policy: FreezePolicy = { quietPeriodSeconds: config.FREEZE_QUIET_PERIOD_SECONDS };

  router.get('/freeze', async (_req, res) => {
    const [decision, published] = await Promise.all([
      loadDecision(pool, policy),
      pool.query<{ since: Date; frozen: boolean }>(`SELECT since, frozen FROM controlroom.freeze_state WHERE id = 1`),
    ]);
    // freeze_state is published by the freeze_sync job; until it catches up with a freeze or a lift, its
    // `since` belongs to the previous state, so say nothing rather than something wrong.
    const state = published.rows[0];
    const since = state && state.frozen === decision.frozen ? state.since : null;
    res.json({
      frozen: decision.frozen,
      cause: decision.cause,
      reason: decision.reason,
      since: since?.toISOString() ?? null,
      triggers: decision.triggers.map(triggerView),
      manualFreezes: decision.manual.map(actionView),
      override: decision.override && actionView(decision.override),
      nextChangeAt: decision.nextChangeAt?.toISOString() ?? null,
      quietPeriodSeconds: policy.quietPeriodSeconds,
      exceptionLabels: exceptionLabels(config),
    } satisfies FreezeState);
  });

  const create = (kind: 'freeze' | 'override') => async (req: Request, res: express.Response) => {
    const body = kind === 'freeze' ? parse(FreezeBody, req.body) : parse(OverrideBody, req.body);
    const caller = req.caller!;
    const created = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const { rows } = await client.query<{ id: string; created_at: Date; expires_at: Date | null }>(
        `INSERT INTO controlroom.freeze_actions (kind, reason, actor, expires_at) VALUES ($1, $2, $3, $4)
         RETURNING id, created_at, expires_at`,
        [kind, body.reason, actorOf(caller), body.expiresAt ?? null]
      );
      const row = rows[0]!;
      await audit(client, {
        actor: actorOf(caller),
        action: kind === 'freeze' ? 'release_freeze.manual_freeze' : 'release_freeze.override',
        target: `freeze_actions/${row.id}`,
        payload: { reason: body.reason, expires_at: row.expires_at, role: caller.role },
        ...meta(req),
      });
      await requestFreezeSync(client);
      return row;
    });
    res.status(201).json(
      actionView({
        id: created.id,
        kind,
        reason: body.reason,
        actor: actorOf(caller),
        created_at: created.created_at,
        expires_at: created.expires_at,
      })
    );
  };

  const end = (kind: 'freeze' | 'override') => async (req: Request, res: express.Response) => {
    const body = parse(EndFreezeBody, req.body);
    const id = String(req.params.id ?? '');
    if (!/^\d{1,18}$/.test(id)) throw new UserError(400, `${kind} id must be a whole number, not '${id.slice(0, 40)}'`);
    const caller = req.caller!;
    await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const ended = await client.query(
        `UPDATE controlroom.freeze_actions SET ended_at = now(), ended_by = $3
          WHERE id = $1 AND kind = $2 AND ended_at IS NULL RETURNING id`,
        [id, kind, actorOf(caller)]
      );
      if (ended.rowCount === 0) throw new UserError(404, `no active ${kind} ${id}`);
      await audit(client, {
        actor: actorOf(caller),
        action: kind === 'freeze' ? 'release_freeze.manual_freeze_ended' : 'release_freeze.override_ended',
        target: `freeze_actions/${id}`,
        payload: { reason: body.reason ?? null, role: caller.role },
        ...meta(req),
      });
      await requestFreezeSync(client);
    });
    res.json({ id, ended: true } satisfies FreezeEnded);
  };

  const json = jsonBody(16 * 1024);
  router.post('/freeze/freezes', requireAction('freezeWrite'), json, create('freeze'));
  router.delete('/freeze/freezes/:id', requireAction('freezeOverride'), json, end('freeze'));
  router.post('/freeze/overrides', requireAction('freezeOverride'), json, create('override'));
  router.delete('/freeze/overrides/:id', requireAction('freezeOverride'), json, end('override'));
  return router;
}

const PR_ACTIONS = new Set(['opened', 'reopened', 'synchronize', 'labeled', 'unlabeled', 'ready_for_review', 'edited']);

/** POST /webhooks/github: pull_request keeps statuses current; deployment_protection_rule gets an answer. */
export function githubWebhookRouter(pool: Pool, config: FreezeRouteConfig): Router {
  const router = express.Router();
  const webhooks = config.GITHUB_WEBHOOK_SECRET ? new Webhooks({ secret: config.GITHUB_WEBHOOK_SECRET }) : null;
  const watched = new Set(repositories(config));

  router.post('/github', async (req, res) => {
    if (!webhooks) throw new UserError(503, 'GITHUB_WEBHOOK_SECRET is not configured on this server');
    const signature = req.header('x-hub-signature-256');
    if (!signature) throw new UserError(401, 'missing X-Hub-Signature-256 header');
    // GitHub caps webhook payloads at 25 MB, but the events we act on are far smaller.
    const body = (await readBody(req, 5 * 1024 * 1024)).toString('utf8');
    if (!(await webhooks.verify(body, signature).catch(() => false)))
      throw new UserError(401, 'X-Hub-Signature-256 does not match the body');
    // A GitHub event body: every field read below is checked (type and presence) before it is used.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let payload: Record<string, any>;
    try {
      payload = JSON.parse(body) as typeof payload;
    } catch {
      throw new UserError(400, 'body is not valid JSON');
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
      throw new UserError(400, 'the body must be a JSON object');
    const event = req.header('x-github-event') ?? '';
    const repo = String(payload.repository?.full_name ?? '');
    if (event === 'ping') return void res.json({ ok: true });
    if (!watched.has(repo))
      return void res.status(202).json({ ignored: `repository ${repo || '?'} is not in GITHUB_REPOSITORIES` });

    if (event === 'pull_request') {
      const pr = payload.pull_request;
      if (!PR_ACTIONS.has(payload.action) || pr?.state !== 'open')
        return void res.status(202).json({ ignored: `pull_request ${payload.action}` });
      if (typeof pr.number !== 'number' || typeof pr.head?.sha !== 'string')
        throw new UserError(400, 'pull_request payload lacks number or head.sha');
      await enqueueJob(
        pool,
        FREEZE_PR_TASK,
        {
          repo,
          number: pr.number,
          sha: pr.head.sha,
          labels: (pr.labels ?? []).map((l: { name?: string }) => l.name ?? ''),
        },
        { jobKey: `${FREEZE_PR_TASK}:${repo}#${pr.number}` }
      );
      return void res.status(202).json({ queued: 'status update', pull_request: pr.number });
    }
    if (event === 'deployment_protection_rule') {
      const callbackUrl = payload.deployment_callback_url;
      if (typeof callbackUrl !== 'string' || typeof payload.environment !== 'string') {
        throw new UserError(400, 'deployment_protection_rule payload lacks deployment_callback_url or environment');
      }
      await enqueueJob(pool, FREEZE_DEPLOYMENT_TASK, {
        callbackUrl,
        environment: payload.environment,
        repo,
        deploymentId: payload.deployment?.id ?? null,
      });
      return void res.status(202).json({ queued: 'deployment review', environment: payload.environment });
    }
    res.status(202).json({ ignored: `event ${event}` });
  });
  return router;
}
