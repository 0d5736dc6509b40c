import {
  pricingCandidateRequestSchema,
  pricingChangeRequestSchema,
  type PricingModelAnswer,
  type PricingModelList,
  type PricingModelView,
} from '@controlroom/contract';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { jsonBody, parseInput, safeText } from '../../core/http.ts';
import { pricingOverview } from './overview.ts';
import {
  activate,
  getModel,
  listModels,
  promoteCandidate,
  registerModel,
  rollback,
  withdrawCandidate,
  type ChangedBy,
  type ModelRow,
} from './registry.ts';

const modelView = (m: ModelRow): PricingModelView => ({
  ...m,
  createdAt: m.createdAt.toISOString(),
  activatedAt: m.activatedAt?.toISOString() ?? null,
  retiredAt: m.retiredAt?.toISOString() ?? null,
});
const modelAnswer = (m: ModelRow): PricingModelAnswer => ({ model: modelView(m) });

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The :version path parameter, checked like a registered version so no stray text reaches SQL. */
function versionOf(req: Request): string {
  const version = String(req.params.version ?? '');
  if (!VERSION.test(version))
    throw new UserError(
      400,
      `model version '${safeText(version.slice(0, 64))}' is not a version name (letters, digits, ".", "_" or "-")`
    );
  return version;
}

/** The verified Grafana user behind a change, with the reason they gave and where they called from. */
const changedBy = (req: Request, reason?: string): ChangedBy => ({
  actor: actorOf(req.caller!),
  // The reason goes into jsonb, which refuses NUL: control characters are escaped, not a 500.
  reason: reason === undefined ? undefined : safeText(reason),
  ipAddress: req.ip ?? null,
  userAgent: req.header('user-agent') ?? null,
});

/**
 * /api/pricing: the pricing-model registry. Viewers read; Admins register a model (a draft), make it the
 * candidate with a traffic share, activate it, withdraw the candidate or roll back to the previous model.
 * Every change is audited by the registry itself. A change that moves prices (candidate share, withdraw,
 * activate, roll back) needs a `reason` (3–500 characters), written to its audit entry: 400 without one,
 * and nothing changes.
 */
export function pricingRouter(pool: Pool): Router {
  const router = express.Router();
  const viewer = requireAction('read');
  const admin = requireAction('pricingWrite');
  const json = jsonBody(64 * 1024);

  router.get('/pricing/models', viewer, async (_req, res) => {
    res.json({ models: (await listModels(pool)).map(modelView) } satisfies PricingModelList);
  });
  router.get('/pricing/models/:version', viewer, async (req, res) => {
    const model = await getModel(pool, versionOf(req));
    if (!model) throw new UserError(404, `no pricing model '${versionOf(req)}'`);
    res.json(modelAnswer(model));
  });
  router.post('/pricing/models', admin, json, async (req, res) => {
    res.status(201).json(modelAnswer(await registerModel(pool, req.body, changedBy(req))));
  });
  router.get('/pricing/overview', viewer, async (_req, res) => {
    res.json(await pricingOverview(pool));
  });
  router.post('/pricing/models/:version/candidate', admin, json, async (req, res) => {
    const version = versionOf(req);
    const body = parseInput(pricingCandidateRequestSchema, req.body ?? {});
    res.json(modelAnswer(await promoteCandidate(pool, version, body.share, changedBy(req, body.reason))));
  });
  router.delete('/pricing/candidate', admin, json, async (req, res) => {
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json(modelAnswer(await withdrawCandidate(pool, changedBy(req, body.reason))));
  });
  router.post('/pricing/models/:version/activate', admin, json, async (req, res) => {
    const version = versionOf(req);
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json(modelAnswer(await activate(pool, version, changedBy(req, body.reason))));
  });
  router.post('/pricing/rollback', admin, json, async (req, res) => {
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json(modelAnswer(await rollback(pool, changedBy(req, body.reason))));
  });
  return router;
}
