import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { jsonBody, safeText } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { activate, getModel, listModels, promoteCandidate, registerModel, rollback, withdrawCandidate } from './registry.ts';

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
    res.json({ models: await listModels(pool) });
  });
  router.get('/pricing/models/:version', viewer, async (req, res) => {
    const model = await getModel(pool, versionOf(req));
    if (!model) throw new UserError(404, `no pricing model '${versionOf(req)}'`);
    res.json({ model });
  });
  router.post('/pricing/models', admin, json, async (req, res) => {
    res.status(201).json({ model: await registerModel(pool, req.body, actorOf(req.caller!)) });
  });
  router.post('/pricing/models/:version/candidate', admin, json, async (req, res) => {
    const body = req.body as unknown;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw new UserError(400, 'the body must be a JSON object {share}');
    const share = (body as { share?: unknown } | undefined)?.share;
    if (share !== undefined && typeof share !== 'number') throw new UserError(400, 'share must be a number between 0 and 0.5');
    res.json({ model: await promoteCandidate(pool, versionOf(req), share as number | undefined, actorOf(req.caller!)) });
  });
  router.delete('/pricing/candidate', admin, async (req, res) => {
    res.json({ model: await withdrawCandidate(pool, actorOf(req.caller!)) });
  });
  router.post('/pricing/models/:version/activate', admin, async (req, res) => {
    res.json({ model: await activate(pool, versionOf(req), actorOf(req.caller!)) });
  });
  router.post('/pricing/rollback', admin, async (req, res) => {
    res.json({ model: await rollback(pool, actorOf(req.caller!)) });
  });
  return router;
}
