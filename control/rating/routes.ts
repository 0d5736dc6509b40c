import { pricingCandidateRequestSchema, pricingChangeRequestSchema } from '@controlroom/contract';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { HttpError, jsonBody, parseInput, safeText } from '../../core/http.ts';
import { pricingOverview } from './overview.ts';
import { activate, getModel, listModels, promoteCandidate, registerModel, rollback, withdrawCandidate, type ChangedBy } from './registry.ts';

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
    res.json({ models: await listModels(pool) });
  });
  router.get('/pricing/models/:version', viewer, async (req, res) => {
    const model = await getModel(pool, versionOf(req));
    if (!model) throw new HttpError(404, `no pricing model '${versionOf(req)}'`);
    res.json({ model });
  });
  router.post('/pricing/models', admin, json, async (req, res) => {
    res.status(201).json({ model: await asHttp(() => registerModel(pool, req.body, changedBy(req))) });
  });
  router.get('/pricing/overview', viewer, async (_req, res) => {
    res.json(await pricingOverview(pool));
  });
  router.post('/pricing/models/:version/candidate', admin, json, async (req, res) => {
    const version = versionOf(req);
    const body = parseInput(pricingCandidateRequestSchema, req.body ?? {});
    res.json({ model: await asHttp(() => promoteCandidate(pool, version, body.share, changedBy(req, body.reason))) });
  });
  router.delete('/pricing/candidate', admin, json, async (req, res) => {
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json({ model: await asHttp(() => withdrawCandidate(pool, changedBy(req, body.reason))) });
  });
  router.post('/pricing/models/:version/activate', admin, json, async (req, res) => {
    const version = versionOf(req);
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json({ model: await asHttp(() => activate(pool, version, changedBy(req, body.reason))) });
  });
  router.post('/pricing/rollback', admin, json, async (req, res) => {
    const body = parseInput(pricingChangeRequestSchema, req.body ?? {});
    res.json({ model: await asHttp(() => rollback(pool, changedBy(req, body.reason))) });
  });
  return router;
}
