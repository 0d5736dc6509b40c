import React from 'react';
import { Badge, BadgeColor, InteractiveTable, LinkButton, Stack, Text, Button } from '@grafana/ui';
import { apiLinkUrl } from '../../api/client';
import type { BulkJob } from '@controlroom/contract';
import { Meter } from '../../components/shared/Meter';
import { formatNumber, formatTime } from '../../components/shared/format';

interface Props {
  jobs: BulkJob[];
  selected: string | null;
  onSelect: (id: string) => void;
}

const STATUS_COLOR: Record<string, BadgeColor> = {
  queued: 'blue',
  running: 'orange',
  succeeded: 'green',
  failed: 'red',
};

export const isFinished = (job: BulkJob) => job.status === 'succeeded' || job.status === 'failed';

/** The company's recent jobs, newest first, with live progress while they run. */
export function JobList({ jobs, selected, onSelect }: Props) {
  if (jobs.length === 0) {
    return <Text color="secondary">No bulk rating jobs for this company yet.</Text>;
  }
  return (
    <div data-testid="bulk-jobs">
      <InteractiveTable<BulkJob>
        getRowId={(job) => job.id}
        data={jobs}
        pageSize={10}
        columns={[
          { id: 'createdAt', header: 'Submitted', cell: ({ row }) => formatTime(row.original.createdAt) },
          {
            id: 'filename',
            header: 'Source',
            cell: ({ row }) => row.original.filename ?? (row.original.source === 'json' ? 'entered lanes' : 'CSV'),
          },
          { id: 'submittedBy', header: 'By' },
          {
            id: 'status',
            header: 'Status',
            cell: ({ row }) => (
              <Badge text={row.original.status} color={STATUS_COLOR[row.original.status] ?? 'purple'} />
            ),
          },
          {
            id: 'progress',
            header: 'Progress',
            cell: ({ row }) => {
              const job = row.original;
              return (
                <Stack direction="column" gap={0}>
                  <Meter
                    value={job.progress}
                    label={`Job ${job.id.slice(0, 8)} progress`}
                    tone={job.lanesFailed > 0 ? 'warning' : job.status === 'succeeded' ? 'success' : 'primary'}
                  />
                  <Text variant="bodySmall" color="secondary">
                    {formatNumber(job.lanesRated)} rated · {formatNumber(job.lanesFailed)} failed ·{' '}
                    {formatNumber(job.lanesTotal)} total
                    {job.rejectedRows > 0 && ` · ${formatNumber(job.rejectedRows)} rows rejected at upload`}
                  </Text>
                </Stack>
              );
            },
          },
          {
            id: 'id',
            header: '',
            cell: ({ row }) => {
              const job = row.original;
              return (
                <Stack gap={1}>
                  <Button
                    size="sm"
                    variant={selected === job.id ? 'primary' : 'secondary'}
                    onClick={() => onSelect(job.id)}
                  >
                    Results
                  </Button>
                  <LinkButton
                    size="sm"
                    variant="secondary"
                    icon="download-alt"
                    href={apiLinkUrl(`bulk-rating/jobs/${job.id}/results`, { format: 'csv' })}
                    disabled={!isFinished(job)}
                    download={`bulk-rating-${job.id}.csv`}
                  >
                    CSV
                  </LinkButton>
                </Stack>
              );
            },
          },
        ]}
      />
    </div>
  );
}
