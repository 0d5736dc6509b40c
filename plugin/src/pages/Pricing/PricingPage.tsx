import React from 'react';
import type { PricingModelSummary, PricingOverview, PricingRoleStats } from '@controlroom/contract';
import { PluginPage } from '@grafana/runtime';
import { Alert, Badge, type BadgeColor, LoadingPlaceholder, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { canDo, usePolled } from '../../api/hooks';
import { formatMoney, formatNumber, formatTime, timeAgo } from '../../components/shared/format';
import { RoleNotice } from '../../components/shared/RoleNotice';
import { Controls } from './Controls';
import { testIds } from './testIds';

const STATUS_COLOR: Record<PricingModelSummary['status'], BadgeColor> = {
  active: 'green',
  candidate: 'blue',
  retired: 'darkgrey',
  draft: 'purple',
};

const rate = (r: number | null) => (r === null ? '—' : `${Math.round(r * 1000) / 10}%`);

function RoleStats({ stats }: { stats: PricingRoleStats }) {
  if (stats.lanesRated === 0) {
    return <Text color="secondary">no lanes</Text>;
  }
  return (
    <Text>
      {formatNumber(stats.lanesRated)} lanes · anomaly {rate(stats.anomalyRate)} · review {rate(stats.needsReviewRate)}{' '}
      · {stats.meanPricePerMile === null ? '—' : `${formatMoney(stats.meanPricePerMile)}/mi`}
    </Text>
  );
}

function ModelsTable({ overview }: { overview: PricingOverview }) {
  return (
    <table className="filter-table">
      <thead>
        <tr>
          <th>Model</th>
          <th>Status</th>
          <th>Share</th>
          <th>As candidate</th>
          <th>As active</th>
          <th>Created</th>
          <th>Activated</th>
          <th>Retired</th>
        </tr>
      </thead>
      <tbody>
        {overview.models.map((m) => (
          <tr key={m.version} data-testid={testIds.modelRow(m.version)}>
            <td>{m.version}</td>
            <td>
              <Badge color={STATUS_COLOR[m.status]} text={m.status} />
            </td>
            <td>{m.status === 'active' ? 'rest' : m.candidateShare === null ? '—' : rate(m.candidateShare)}</td>
            <td>
              <RoleStats stats={m.asCandidate} />
            </td>
            <td>
              <RoleStats stats={m.asActive} />
            </td>
            <td>
              {formatTime(m.createdAt)} by {m.createdBy}
            </td>
            <td>{formatTime(m.activatedAt)}</td>
            <td>{formatTime(m.retiredAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CandidateSummary({ overview }: { overview: PricingOverview }) {
  const candidate = overview.candidate && overview.models.find((m) => m.version === overview.candidate?.version);
  if (!overview.candidate || !candidate) {
    return (
      <Text data-testid={testIds.candidate} color="secondary">
        No candidate: {overview.active} prices every lane.
      </Text>
    );
  }
  const stats = candidate.asCandidate;
  const overThreshold = stats.anomalyRate !== null && stats.anomalyRate > 0;
  return (
    <Alert
      severity={overThreshold ? 'warning' : 'info'}
      title={`Candidate ${overview.candidate.version} prices ${rate(overview.candidate.share)} of lanes`}
      data-testid={testIds.candidate}
    >
      {stats.lanesRated === 0
        ? 'It has not rated a lane yet.'
        : `${formatNumber(stats.lanesRated)} lanes rated: ${rate(stats.anomalyRate)} moved more than ${rate(
            overview.anomalyThreshold
          )} from the active price (anomaly), ${rate(stats.needsReviewRate)} need review.`}
    </Alert>
  );
}

/**
 * The pricing-model registry: which model is active, the candidate and its share of lanes, and what each
 * model rated (anomaly and review rates, mean price per mile: the drift metrics' totals). Admins change
 * the candidate share, activate a model or roll back, each confirmed with a reason.
 */
function PricingPage() {
  const overview = usePolled(() => api<PricingOverview>('pricing/overview'), 5_000, []);
  const canControl = canDo('pricingWrite');
  const data = overview.data;

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        {overview.error && (
          <Alert severity="error" title="Could not load the pricing models">
            {overview.error.message}
          </Alert>
        )}
        {!data && overview.loading && <LoadingPlaceholder text="Loading pricing models…" />}
        {data && (
          <>
            <Stack alignItems="center" gap={2} wrap="wrap">
              <Text element="h2" data-testid={testIds.activeModel}>
                Active model: {data.active ?? 'none'}
              </Text>
              <Text color="secondary" data-testid={testIds.statsAsOf}>
                Lanes counted {data.statsAsOf ? timeAgo(data.statsAsOf) : 'not yet'}
              </Text>
            </Stack>
            <CandidateSummary overview={data} />
            <ModelsTable overview={data} />
            <Text element="h3">Changes</Text>
            {!canControl && <RoleNotice needed="Admin" what="Changing the candidate share, activating and rolling back" />}
            <Controls
              overview={data}
              canControl={canControl}
              onDone={() => void overview.reload()}
            />
          </>
        )}
      </Stack>
    </PluginPage>
  );
}

export default PricingPage;
