import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { HttpError, jsonBody, safeText } from '../../core/http.ts';
import { activate, getModel, listModels, promoteCandidate, registerModel, rollback, withdrawCandidate } from './registry.ts';

/** Registry errors carry the HTTP status they mean (404 unknown model, 409 conflict, 400 invalid params). */
async function asHttp<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) throw new HttpError(status, (error as Error).message);
    throw error;
  }
}

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The :version path parameter, checked like a registered version so no stray text reaches SQL. */
function versionOf(req: Request): string {
  const version = String(req.params.version ?? '');
  if (!VERSION.test(version)) throw new HttpError(400, `model version '${safeText(version.slice(0, 64))}' is not a version name (letters, digits, ".", "_" or "-")`);
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
    if (!model) throw new HttpError(404, `no pricing model '${versionOf(req)}'`);
    res.json({ model });
  });
  router.post('/pricing/models', admin, json, async (req, res) => {
    res.status(201).json({ model: await asHttp(() => registerModel(pool, req.body, actorOf(req.caller!))) });
  });
  router.post('/pricing/models/:version/candidate', admin, json, async (req, res) => {
    const body = req.body as unknown;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw new HttpError(400, 'the body must be a JSON object {share}');
    const share = (body as { share?: unknown } | undefined)?.share;
    if (share !== undefined && typeof share !== 'number') throw new HttpError(400, 'share must be a number between 0 and 0.5');
    res.json({ model: await asHttp(() => promoteCandidate(pool, versionOf(req), share as number | undefined, actorOf(req.caller!))) });
  });
  router.delete('/pricing/candidate', admin, async (req, res) => {
    res.json({ model: await asHttp(() => withdrawCandidate(pool, actorOf(req.caller!))) });
  });
  router.post('/pricing/models/:version/activate', admin, async (req, res) => {
    res.json({ model: await asHttp(() => activate(pool, versionOf(req), actorOf(req.caller!))) });
  });
  router.post('/pricing/rollback', admin, async (req, res) => {
    res.json({ model: await asHttp(() => rollback(pool, actorOf(req.caller!))) });
  });
  return router;
}
