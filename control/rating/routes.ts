import { CandidateBody, type PricingModelAnswer, type PricingModelList, type PricingModelView } from '@controlroom/contract';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { jsonBody, parseInput, safeText } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { activate, getModel, listModels, promoteCandidate, registerModel, rollback, withdrawCandidate, type ModelRow } from './registry.ts';

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
  if (!VERSION.test(version)) throw new UserError(400, `model version '${safeText(version.slice(0, 64))}' is not a version name (letters, digits, ".", "_" or "-")`);
  return version;
}

/**
 * /api/pricing: the pricing-model registry. Viewers read; Admins register a model (a draft), make it the
 * candidate with a traffic share, activate it, withdraw the candidate or roll back to the previous model.
 * Every change is audited by the registry itself.
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
    res.status(201).json(modelAnswer(await registerModel(pool, req.body, actorOf(req.caller!))));
  });
  router.post('/pricing/models/:version/candidate', admin, json, async (req, res) => {
    const body = req.body as unknown;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw new UserError(400, 'the body must be a JSON object {share}');
    const { share } = parseInput(CandidateBody, body ?? {});
    res.json(modelAnswer(await promoteCandidate(pool, versionOf(req), share, actorOf(req.caller!))));
  });
  router.delete('/pricing/candidate', admin, async (req, res) => {
    res.json(modelAnswer(await withdrawCandidate(pool, actorOf(req.caller!))));
  });
  router.post('/pricing/models/:version/activate', admin, async (req, res) => {
    res.json(modelAnswer(await activate(pool, versionOf(req), actorOf(req.caller!))));
  });
  router.post('/pricing/rollback', admin, async (req, res) => {
    res.json(modelAnswer(await rollback(pool, actorOf(req.caller!))));
  });
  return router;
}
