import React from 'react';
import { Badge, BadgeColor, InteractiveTable, Stack, Text } from '@grafana/ui';
import type { Drill, FailoverEvent } from '../../api/types';
import { formatTime } from '../../components/shared/format';

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
                { id: 'epoch', header: 'Epoch', disableGrow: true },
              ]}
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
                cell: ({ row }) => (row.original.rto_seconds === null ? '—' : `${row.original.rto_seconds}s`),
              },
              {
                id: 'rpo_seconds',
                header: 'RPO',
                cell: ({ row }) => (row.original.rpo_seconds === null ? '—' : `${row.original.rpo_seconds}s`),
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
