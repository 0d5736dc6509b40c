import React from 'react';
import { Alert, Badge, Button, Field, Input, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import type { Drill, RegionsState } from '@controlroom/contract';
import { useConfirmedAction } from '../../components/shared/useConfirmedAction';
import { formatTime } from '../../components/shared/format';

const seconds = (s: number | null | undefined) =>
  s === null || s === undefined ? '—' : `${s < 10 ? s.toFixed(2) : Math.round(s)} s`;

/** Where a cutover stands with the background jobs: pausing, draining (with each region's queue), or done. */
export function jobsPhase(state: RegionsState): string | null {
  const cutover = state.control.cutover;
  const jobs = cutover?.jobs;
  if (!cutover || !jobs) {
    return null;
  }
  const timeout = state.settings.drain_timeout_seconds;
  const left = timeout ? Math.max(0, Math.round(timeout - (Date.now() - Date.parse(jobs.paused_at)) / 1000)) : null;
  if (cutover.phase === 'pausing_jobs') {
    return `Background jobs paused; pausing each region (confirmed: ${jobs.pause_confirmed.join(', ') || 'none yet'})${jobs.last_error ? ` · ${jobs.last_error}` : ''}`;
  }
  if (cutover.phase === 'draining_jobs') {
    const depths = Object.entries(jobs.depths)
      .map(([region, depth]) => `${region} ${depth === null ? '?' : depth}`)
      .join(', ');
    return `Waiting for background jobs to drain (${depths || 'reading queues…'})${left !== null ? ` · aborts in ${left} s if they do not` : ''}`;
  }
  return jobs.drained_at
    ? `Background jobs drained at ${formatTime(jobs.drained_at)}; they resume when the cutover ends`
    : null;
}

/**
 * Pin-back: the standby carries part of the traffic but is unhealthy. With automatic failover on, the
 * engine moves it back at its next health round; otherwise this offers it to an Admin.
 */
export function PinBack({
  state,
  canControl,
  onDone,
}: {
  state: RegionsState;
  canControl: boolean;
  onDone: () => void;
}) {
  const { reason, setReason, sendNow, error, busy } = useConfirmedAction<'pin-back'>();
  const advice = state.pin_back;
  if (!advice?.needed) {
    return null;
  }
  const title = `${advice.from} is unhealthy but carries ${advice.weight}% of the traffic`;
  if (state.settings.auto_failover) {
    return (
      <Alert severity="warning" title={title}>
        Automatic failover is on: traffic is pinned back to {advice.to} at the next health round.
      </Alert>
    );
  }
  const pinBack = () =>
    sendNow(
      'pin-back',
      async (_, trimmed) => {
        await api('regions/pin-back', { method: 'POST', data: { reason: trimmed } });
        return `Traffic pinned back to ${advice.to}`;
      },
      onDone
    );
  return (
    <Alert severity="error" title={title}>
      <Stack direction="column" gap={1}>
        <Text>Automatic failover is off. Pin all traffic back to the healthy active region {advice.to}?</Text>
        <Field label="Pin-back reason">
          <Input
            id="pin-back-reason"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            disabled={!canControl}
            width={50}
          />
        </Field>
        <div>
          <Button variant="destructive" onClick={pinBack} disabled={!canControl || busy}>
            Pin back to {advice.to}
          </Button>
        </div>
        {!canControl && <Text color="secondary">Admin role required</Text>}
        {error && <Text color="error">{error}</Text>}
      </Stack>
    </Alert>
  );
}

/** The last drill's and game day's RTO / RPO against the targets, pass or fail. */
export function Objectives({ state }: { state: RegionsState }) {
  const rtoTarget = state.settings.rto_target_seconds;
  const rpoTarget = state.settings.rpo_target_seconds;
  const last = (kind: 'drill' | 'gameday'): Drill | undefined =>
    state.drills.find((d) => (d.kind ?? 'drill') === kind && d.finished_at !== null);
  const card = (label: string, d: Drill | undefined, hint: string) => (
    <Stack direction="column" gap={0.5} key={label}>
      <Text element="h5">{label}</Text>
      {!d ? (
        <Text color="secondary">{hint}</Text>
      ) : (
        <>
          <Stack gap={1} alignItems="center">
            <Badge
              text={d.outcome === 'passed' ? 'Passed' : 'Failed'}
              color={d.outcome === 'passed' ? 'green' : 'red'}
              data-testid={`objectives-${label.toLowerCase().replace(/\W+/g, '-')}`}
            />
            <Text color="secondary">
              {formatTime(d.finished_at)}
              {d.scenario ? ` · ${d.scenario}` : ''}
            </Text>
          </Stack>
          <Text>
            RTO {seconds(d.rto_seconds)} of {seconds(d.rto_target_seconds ?? rtoTarget)}
            {d.rto_met === false ? ' (missed)' : ''} · RPO {seconds(d.rpo_seconds)} of{' '}
            {seconds(d.rpo_target_seconds ?? rpoTarget)}
            {d.rpo_met === false ? ' (missed)' : ''}
          </Text>
          {(d.failure || d.error) && <Text color="error">{d.failure ?? d.error ?? ''}</Text>}
        </>
      )}
    </Stack>
  );
  return (
    <Stack direction="column" gap={1}>
      <Text element="h3">Recovery objectives</Text>
      <Text color="secondary">
        Targets: RTO ≤ {seconds(rtoTarget)}, RPO ≤ {seconds(rpoTarget)}. Every drill, game day and cutover is judged
        against them.
      </Text>
      <Stack gap={4} wrap="wrap">
        {card('Last drill', last('drill'), 'No drill yet: run `controlroom drill`.')}
        {card('Last game day', last('gameday'), 'No game day yet: run `controlroom gameday primary-db-loss`.')}
      </Stack>
    </Stack>
  );
}
