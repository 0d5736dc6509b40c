import React, { useState } from 'react';
import { Alert, Badge, InteractiveTable, Pagination, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { usePolled } from '../../api/hooks';
import type { BulkJob, RatedLane } from '@controlroom/contract';
import { formatMoney, formatNumber } from '../../components/shared/format';
import { isFinished } from './JobList';

const PAGE = 50;

/** One job's rated lanes, a page at a time (the CSV download has them all). */
export function JobResults({ job }: { job: BulkJob }) {
  const [page, setPage] = useState(1);
  const results = usePolled(
    () =>
      api<{ lanes: RatedLane[] }>(`bulk-rating/jobs/${job.id}/results`, {
        params: { offset: (page - 1) * PAGE, limit: PAGE },
      }),
    isFinished(job) ? 0 : 2000,
    [job.id, page, job.status]
  );
  const pages = Math.max(1, Math.ceil(job.lanesTotal / PAGE));
  return (
    <Stack direction="column" gap={1}>
      <Text element="h3">Results of job {job.id.slice(0, 8)}</Text>
      {job.error && (
        <Alert severity="error" title="Job failed">
          {job.error}
        </Alert>
      )}
      {results.error && (
        <Alert severity="error" title="Could not load results">
          {results.error.message}
        </Alert>
      )}
      <div data-testid="bulk-results">
        <InteractiveTable<RatedLane>
          getRowId={(lane) => String(lane.line)}
          data={results.data?.lanes ?? []}
          columns={[
            { id: 'line', header: 'Line', disableGrow: true },
            { id: 'origin', header: 'Origin' },
            { id: 'destination', header: 'Destination' },
            { id: 'equipment', header: 'Equipment' },
            { id: 'pickupDate', header: 'Pickup' },
            {
              id: 'status',
              header: 'Status',
              cell: ({ row }) => (
                <Badge
                  text={row.original.status}
                  color={row.original.status === 'rated' ? 'green' : row.original.status === 'failed' ? 'red' : 'blue'}
                />
              ),
            },
            { id: 'miles', header: 'Miles', cell: ({ row }) => formatNumber(row.original.miles) },
            { id: 'total', header: 'Total', cell: ({ row }) => formatMoney(row.original.total) },
            { id: 'perMile', header: 'Per mile', cell: ({ row }) => formatMoney(row.original.perMile) },
            {
              id: 'error',
              header: 'Note',
              cell: ({ row }) => row.original.error ?? (row.original.flags ?? []).join(', '),
            },
          ]}
        />
      </div>
      {pages > 1 && <Pagination currentPage={page} numberOfPages={pages} onNavigate={setPage} />}
    </Stack>
  );
}
