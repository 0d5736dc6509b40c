import React from 'react';
import { Badge, BadgeColor, InteractiveTable, Stack, Text } from '@grafana/ui';
import type { Drill, FailoverEvent } from '@controlroom/contract';
import { formatTime } from '../../components/shared/format';

const INTEGRITY_COLOR: Record<string, BadgeColor> = {
  passed: 'green',
  failed: 'red',
  pending: 'blue',
  waiting: 'blue',
  skipped: 'purple',
};

/** RTO / RPO of a cutover against the targets, e.g. "RTO 42 s ✓ · RPO 0 s ✓". */
function objectivesText(e: FailoverEvent): string {
  const o = e.details?.objectives;
  if (!o) {
    return '—';
  }
  const mark = (met: boolean | null) => (met === null ? ' (not measured)' : met ? ' ✓' : ' ✗');
  const fmt = (s: number | null) => (s === null ? '—' : `${s < 10 ? s.toFixed(2) : Math.round(s)} s`);
  return `RTO ${fmt(o.rto_seconds)}${mark(o.rto_met)} · RPO ${fmt(o.rpo_seconds)}${mark(o.rpo_met)}`;
}

/** The phases a cutover went through, in order (requested, steps, jobs paused, drained, frozen, completed, resumed). */
const phasesText = (e: FailoverEvent) =>
  (e.details?.timeline ?? []).map((t) => (t.region ? `${t.what} (${t.region})` : t.what)).join(' → ');

const OUTCOME_COLOR: Record<string, BadgeColor> = {
  completed: 'green',
  passed: 'green',
  in_progress: 'orange',
  running: 'orange',
  aborted: 'purple',
  superseded: 'purple',
  failed: 'red',
};

/** Every failover, shift and drill with who asked and why: the audit trail of this page's actions. */
export function History({ events, drills }: { events: FailoverEvent[]; drills: Drill[] }) {
  return (
    <Stack direction="column" gap={2}>
      <Stack direction="column" gap={1}>
        <Text element="h3">Audit trail</Text>
        {events.length === 0 ? (
          <Text color="secondary">No failovers or traffic shifts yet.</Text>
        ) : (
          <div data-testid="failover-events">
            <InteractiveTable<FailoverEvent>
              getRowId={(e) => e.id}
              data={events}
              pageSize={10}
              columns={[
                { id: 'started_at', header: 'Started', cell: ({ row }) => formatTime(row.original.started_at) },
                { id: 'kind', header: 'Kind' },
                {
                  id: 'from_region',
                  header: 'Move',
                  cell: ({ row }) =>
                    `${row.original.from_region ?? '—'} → ${row.original.to_region ?? '(weights)'}${row.original.steps ? ` in steps ${row.original.steps.join(' / ')}%` : ''}`,
                },
                { id: 'actor', header: 'By' },
                {
                  id: 'reason',
                  header: 'Reason',
                  cell: ({ row }) => `${row.original.reason ?? ''}${row.original.forced ? ' (forced)' : ''}`,
                },
                {
                  id: 'outcome',
                  header: 'Outcome',
                  cell: ({ row }) => (
                    <Badge text={row.original.outcome} color={OUTCOME_COLOR[row.original.outcome] ?? 'blue'} />
                  ),
                },
                { id: 'finished_at', header: 'Finished', cell: ({ row }) => formatTime(row.original.finished_at) },
                { id: 'objectives', header: 'RTO / RPO', cell: ({ row }) => objectivesText(row.original) },
                {
                  id: 'integrity',
                  header: 'Integrity',
                  cell: ({ row }) => {
                    const integrity = row.original.details?.integrity;
                    if (!integrity) {
                      return '—';
                    }
                    const failed = (integrity.checks ?? []).filter((c) => !c.passed).map((c) => c.detail);
                    return (
                      <span title={failed.join('; ') || undefined}>
                        <Badge text={integrity.status} color={INTEGRITY_COLOR[integrity.status] ?? 'blue'} />
                      </span>
                    );
                  },
                },
                { id: 'epoch', header: 'Epoch', disableGrow: true },
              ]}
              renderExpandedRow={(e) => (
                <Stack direction="column" gap={0.5}>
                  <Text variant="bodySmall">Phases: {phasesText(e) || '—'}</Text>
                  {e.details?.abort_reason && <Text variant="bodySmall">Aborted: {e.details.abort_reason}</Text>}
                  {(e.details?.integrity?.checks ?? []).map((c) => (
                    <Text key={c.check} variant="bodySmall" color={c.passed ? undefined : 'error'}>
                      {c.passed ? '✓' : '✗'} {c.check}: {c.detail}
                    </Text>
                  ))}
                </Stack>
              )}
            />
          </div>
        )}
      </Stack>
      <Stack direction="column" gap={1}>
        <Text element="h3">Failover drills</Text>
        {drills.length === 0 ? (
          <Text color="secondary">No drills recorded. Run one with `controlroom drill`.</Text>
        ) : (
          <InteractiveTable<Drill>
            getRowId={(d) => d.id}
            data={drills}
            columns={[
              { id: 'started_at', header: 'Started', cell: ({ row }) => formatTime(row.original.started_at) },
              {
                id: 'kind',
                header: 'Kind',
                cell: ({ row }) =>
                  row.original.kind === 'gameday' ? `game day: ${row.original.scenario ?? ''}` : 'drill',
              },
              {
                id: 'outcome',
                header: 'Outcome',
                cell: ({ row }) => (
                  <Badge
                    text={row.original.outcome ?? 'running'}
                    color={OUTCOME_COLOR[row.original.outcome ?? 'running'] ?? 'blue'}
                  />
                ),
              },
              {
                id: 'rto_seconds',
                header: 'RTO',
                cell: ({ row }) =>
                  row.original.rto_seconds === null
                    ? '—'
                    : `${row.original.rto_seconds}s${row.original.rto_target_seconds ? ` of ${row.original.rto_target_seconds}s` : ''}${row.original.rto_met === false ? ' ✗' : ''}`,
              },
              {
                id: 'rpo_seconds',
                header: 'RPO',
                cell: ({ row }) =>
                  row.original.rpo_seconds === null
                    ? '—'
                    : `${row.original.rpo_seconds}s${row.original.rpo_target_seconds ? ` of ${row.original.rpo_target_seconds}s` : ''}${row.original.rpo_met === false ? ' ✗' : ''}`,
              },
              { id: 'writes_lost', header: 'Writes lost' },
              { id: 'actor', header: 'By' },
            ]}
          />
        )}
      </Stack>
    </Stack>
  );
}
