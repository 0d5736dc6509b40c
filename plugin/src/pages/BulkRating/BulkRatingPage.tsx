import React, { useState } from 'react';
import { PluginPage } from '@grafana/runtime';
import { Alert, Stack, Tab, TabContent, TabsBar, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { canDo, usePolled } from '../../api/hooks';
import type { BulkAllowance, BulkJob, Company, Usage } from '@controlroom/contract';
import { RoleNotice } from '../../components/shared/RoleNotice';
import { CompanyPicker } from './CompanyPicker';
import { CsvUpload } from './CsvUpload';
import { isFinished, JobList } from './JobList';
import { JobResults } from './JobResults';
import { ManualLanes } from './ManualLanes';
import { PlanUsage } from './PlanUsage';

/** The server's default BULK_MAX_UPLOAD_BYTES: larger files stop here instead of after a long upload and a 413. */
const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

function BulkRatingPage() {
  const [company, setCompany] = useState<Company | null>(null);
  const [tab, setTab] = useState<'csv' | 'manual'>('csv');
  const [selectedJob, setSelectedJob] = useState<string | null>(null);
  const canSubmit = canDo('bulkWrite');
  const companyId = company?.id ?? null;

  const plan = usePolled(
    companyId
      ? async () => {
          const [allowance, usage] = await Promise.all([
            api<BulkAllowance>('bulk-rating/allowance', { params: { companyId: companyId } }),
            api<Usage>(`usage/${companyId}`),
          ]);
          return { allowance, usage };
        }
      : null,
    15_000,
    [companyId]
  );
  const jobs = usePolled(
    companyId
      ? () => api<{ jobs: BulkJob[] }>('bulk-rating/jobs', { params: { companyId: companyId, limit: 50 } })
      : null,
    2_000,
    [companyId]
  );

  const onSubmitted = (result: { job: BulkJob }) => {
    setSelectedJob(result.job.id);
    void jobs.reload();
    void plan.reload();
  };
  const selected = jobs.data?.jobs.find((j) => j.id === selectedJob) ?? null;
  const running = (jobs.data?.jobs ?? []).filter((j) => !isFinished(j)).length;

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        <CompanyPicker
          value={company}
          onChange={(c) => {
            setCompany(c);
            setSelectedJob(null);
          }}
        />
        {!company && <Text color="secondary">Choose a company to see its plan, submit lanes and follow its jobs.</Text>}
        {company && (
          <>
            {plan.error && (
              <Alert severity="error" title="Could not load the plan">
                {plan.error.message}
              </Alert>
            )}
            <PlanUsage allowance={plan.data?.allowance} usage={plan.data?.usage} />
            {!canSubmit && <RoleNotice needed="Editor" what="Submitting bulk rating jobs" />}
            <div>
              <TabsBar>
                <Tab label="Upload CSV" active={tab === 'csv'} onChangeTab={() => setTab('csv')} icon="upload" />
                <Tab label="Enter lanes" active={tab === 'manual'} onChangeTab={() => setTab('manual')} icon="edit" />
              </TabsBar>
              <TabContent>
                <div style={{ paddingTop: 16 }}>
                  {tab === 'csv' ? (
                    <CsvUpload
                      companyId={company.id}
                      canSubmit={canSubmit}
                      maxBytes={MAX_UPLOAD_BYTES}
                      onSubmitted={onSubmitted}
                    />
                  ) : (
                    <ManualLanes companyId={company.id} canSubmit={canSubmit} onSubmitted={onSubmitted} />
                  )}
                </div>
              </TabContent>
            </div>
            <Stack direction="column" gap={1}>
              <Text element="h3">Jobs{running > 0 ? ` (${running} in progress)` : ''}</Text>
              {jobs.error && (
                <Alert severity="error" title="Could not load jobs">
                  {jobs.error.message}
                </Alert>
              )}
              {jobs.data && <JobList jobs={jobs.data.jobs} selected={selectedJob} onSelect={setSelectedJob} />}
            </Stack>
            {selected && <JobResults job={selected} />}
          </>
        )}
      </Stack>
    </PluginPage>
  );
}

export default BulkRatingPage;
