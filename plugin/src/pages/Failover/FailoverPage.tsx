import React from 'react';
import { PluginPage } from '@grafana/runtime';
import { Alert, Badge, LoadingPlaceholder, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { canDo, usePolled } from '../../api/hooks';
import type { RegionsState } from '@controlroom/contract';
import { Meter } from '../../components/shared/Meter';
import { formatTime, timeAgo } from '../../components/shared/format';
import { RoleNotice } from '../../components/shared/RoleNotice';
import { Controls } from './Controls';
import { RegionCard } from './HealthHistory';
import { History } from './History';
import { jobsPhase, Objectives, PinBack } from './Runbook';

function CutoverProgress({ state }: { state: RegionsState }) {
  const cutover = state.control.cutover;
  if (!cutover) {
    return null;
  }
  const total = cutover.plan.length;
  const current = cutover.plan[Math.max(0, cutover.applied - 1)];
  const jobs = jobsPhase(state);
  return (
    <Alert
      severity="warning"
      title={`${cutover.kind === 'shift' ? 'Traffic shift' : 'Failover'} in progress: ${cutover.from} → ${cutover.to ?? 'new weights'}`}
    >
      <Stack direction="column" gap={1}>
        <Text>
          Step {cutover.applied} of {total}
          {current &&
            ` (${Object.entries(current)
              .map(([n, w]) => `${n} ${w}%`)
              .join(', ')})`}
          {cutover.phase === 'draining'
            ? ' · draining writes before the write role moves'
            : cutover.phase === 'shifting'
              ? ` · next step ${timeAgo(cutover.next_at)}`
              : ' · background jobs paused before writes freeze'}
        </Text>
        {jobs && <Text data-testid="jobs-phase">{jobs}</Text>}
        <Meter value={total ? cutover.applied / total : 0} label="Cutover progress" tone="warning" />
        <Text variant="bodySmall" color="secondary">
          Requested by {cutover.actor}: {cutover.reason}
          {cutover.abort && ` · abort requested by ${cutover.abort.actor}: ${cutover.abort.reason}`}
        </Text>
      </Stack>
    </Alert>
  );
}

function FailoverPage() {
  const regions = usePolled(() => api<RegionsState>('regions', { params: { checks: 60 } }), 3_000, []);
  const canControl = canDo('failoverWrite');
  const state = regions.data;
  const active = state?.regions.find((r) => r.active);

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        {regions.error && (
          <Alert severity="error" title="Could not load regions">
            {regions.error.message}
          </Alert>
        )}
        {!state && regions.loading && <LoadingPlaceholder text="Loading regions…" />}
        {state && (
          <>
            <Stack alignItems="center" gap={2} wrap="wrap">
              <Text element="h2">Active region: {active?.name ?? 'none'}</Text>
              {state.control.write_frozen ? (
                <Badge
                  color="red"
                  icon="lock"
                  text={`Writes frozen since ${formatTime(state.control.frozen_since)}`}
                  data-testid="write-freeze"
                />
              ) : (
                <Badge color="green" icon="unlock" text="Writes open" data-testid="write-freeze" />
              )}
              {state.control.jobs_paused && (
                <Badge color="orange" icon="pause" text="Background jobs paused" data-testid="jobs-paused" />
              )}
              <Text color="secondary">
                Epoch {state.control.epoch} · lease {state.control.lease_holder ?? 'free'} · automatic failover{' '}
                {state.settings.auto_failover ? 'on' : 'off'}
              </Text>
            </Stack>
            <CutoverProgress state={state} />
            <PinBack state={state} canControl={canControl} onDone={() => void regions.reload()} />
            <Stack gap={2} wrap="wrap">
              {state.regions.map((r) => (
                <RegionCard key={r.name} region={r} />
              ))}
            </Stack>
            <Text element="h3">Controls</Text>
            {!canControl && <RoleNotice needed="Admin" what="Failover and traffic shifts" />}
            <Controls
              state={state}
              canControl={canControl}
              onDone={() => void regions.reload()}
            />
            <Objectives state={state} />
            <History events={state.events} drills={state.drills} />
          </>
        )}
      </Stack>
    </PluginPage>
  );
}

export default FailoverPage;
