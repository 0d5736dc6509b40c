import type { PricingOverview, PricingRoleStats } from '@controlroom/contract';
import type { Pool } from '../../core/db.ts';
import { readDriftTotals, type DriftTotals } from '../../exporter/collectors/pricing-drift.ts';
import { ANOMALY_THRESHOLD } from './engine.ts';
import { listModels, MAX_CANDIDATE_SHARE } from './registry.ts';

const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);

function stats(t: DriftTotals | undefined): PricingRoleStats {
  const lanesRated = t?.lanesRated ?? 0;
  const quotedDollars = t?.quotedDollars ?? 0;
  const quotedMiles = t?.quotedMiles ?? 0;
  return {
    lanesRated,
    anomalyLanes: t?.anomalyLanes ?? 0,
    needsReviewLanes: t?.needsReviewLanes ?? 0,
    anomalyRate: ratio(t?.anomalyLanes ?? 0, lanesRated),
    needsReviewRate: ratio(t?.needsReviewLanes ?? 0, lanesRated),
    quotedDollars,
    quotedMiles,
    meanPricePerMile: quotedMiles > 0 ? Math.round((quotedDollars / quotedMiles) * 10_000) / 10_000 : null,
  };
}

/**
 * What the Pricing page shows: every model with its status and share, and what it rated as the active
 * model and as the candidate. The rates are the drift metrics' all-time totals (exact, from the rated
 * lanes; at most one exporter refresh behind), so the page and /metrics never disagree.
 */
export async function pricingOverview(pool: Pool): Promise<PricingOverview> {
  const [models, drift] = await Promise.all([listModels(pool), readDriftTotals(pool)]);
  const find = (version: string, role: string) =>
    drift.totals.find((t) => t.modelVersion === version && t.role === role);
  const candidate = models.find((m) => m.status === 'candidate');
  // The registry's rollback order: the most recently retired model (ties as in registry.rollback).
  const rollbackTo =
    models
      .filter((m) => m.status === 'retired')
      .sort(
        (a, b) =>
          (b.retiredAt?.getTime() ?? 0) - (a.retiredAt?.getTime() ?? 0) ||
          (b.activatedAt?.getTime() ?? -Infinity) - (a.activatedAt?.getTime() ?? -Infinity) ||
          (a.version < b.version ? 1 : a.version > b.version ? -1 : 0)
      )[0]?.version ?? null;
  return {
    models: models.map((m) => ({
      version: m.version,
      status: m.status,
      candidateShare: m.status === 'candidate' ? m.candidateShare : null,
      createdBy: m.createdBy,
      createdAt: m.createdAt.toISOString(),
      activatedAt: m.activatedAt?.toISOString() ?? null,
      retiredAt: m.retiredAt?.toISOString() ?? null,
      asActive: stats(find(m.version, 'active')),
      asCandidate: stats(find(m.version, 'candidate')),
    })),
    active: models.find((m) => m.status === 'active')?.version ?? null,
    candidate: candidate ? { version: candidate.version, share: candidate.candidateShare } : null,
    rollbackTo,
    statsAsOf: drift.asOf?.toISOString() ?? null,
    anomalyThreshold: ANOMALY_THRESHOLD,
    maxCandidateShare: MAX_CANDIDATE_SHARE,
  };
}
