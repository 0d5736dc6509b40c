import React, { useState } from 'react';
import { Alert, Button, FileDropzone, Stack, Text } from '@grafana/ui';
import { errorMessage } from '../../api/client';
import type { SubmitBulkJobResponse } from '@controlroom/contract';
import { formatNumber } from '../../components/shared/format';
import { RowErrors } from './RowErrors';
import { LimitRefusal } from './LimitRefusal';
import { limitRefusalOf, newIdempotencyKey, rowErrorsOf, submitCsv } from './submit';

interface Props {
  companyId: string;
  canSubmit: boolean;
  maxBytes: number;
  onSubmitted: (result: SubmitBulkJobResponse) => void;
}

interface Picked {
  file: File;
  key: string;
}

/** Drag a CSV (origin, destination, equipment, pickup_date) or pick one; the server validates every row. */
export function CsvUpload({ companyId, canSubmit, maxBytes, onSubmitted }: Props) {
  const [picked, setPicked] = useState<Picked | null>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<SubmitBulkJobResponse | null>(null);
  const [error, setError] = useState<unknown>(null);

  const submit = async () => {
    if (!picked) {
      return;
    }
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const answer = await submitCsv(companyId, picked.file, picked.key);
      setResult(answer);
      setPicked(null);
      onSubmitted(answer);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const refusedRows = rowErrorsOf(error);
  const limitRefusal = limitRefusalOf(error);
  return (
    <Stack direction="column" gap={1}>
      <FileDropzone
        id="bulk-csv"
        options={{
          accept: { 'text/csv': ['.csv'] },
          multiple: false,
          maxSize: maxBytes,
          onDrop: (accepted) => {
            const file = accepted[0];
            setResult(null);
            setError(
              file
                ? null
                : new Error(`Choose one .csv file of at most ${formatNumber(Math.round(maxBytes / 1024 / 1024))} MiB`)
            );
            setPicked(file ? { file, key: newIdempotencyKey() } : null);
          },
        }}
        fileListRenderer={() => null}
      >
        <Stack direction="column" alignItems="center" gap={0.5}>
          <Text>Drop a CSV of lanes here, or click to choose one</Text>
          <Text color="secondary" variant="bodySmall">
            Columns: origin, destination, equipment (van, reefer, flatbed), pickup_date (YYYY-MM-DD)
          </Text>
        </Stack>
      </FileDropzone>
      {picked && (
        <Stack alignItems="center" gap={1}>
          <Text>
            <strong>{picked.file.name}</strong> ({formatNumber(Math.ceil(picked.file.size / 1024))} KB)
          </Text>
          <Button
            icon="upload"
            onClick={submit}
            disabled={busy || !canSubmit}
            tooltip={canSubmit ? undefined : 'Editor role required'}
          >
            {busy ? 'Uploading…' : 'Rate these lanes'}
          </Button>
          <Button variant="secondary" fill="text" onClick={() => setPicked(null)} disabled={busy}>
            Clear
          </Button>
        </Stack>
      )}
      {error !== null && (
        <Alert severity="error" title="Upload refused">
          {errorMessage(error)}
        </Alert>
      )}
      {limitRefusal && <LimitRefusal companyId={companyId} refusal={limitRefusal} />}
      {refusedRows.length > 0 && (
        <RowErrors errors={refusedRows} rejected={refusedRows.length} truncated={false} unit="line" />
      )}
      {result && (
        <>
          <Alert severity="success" title="Job accepted">
            {formatNumber(result.lanesAccepted)} lanes queued for rating as job {result.job.id.slice(0, 8)}.
          </Alert>
          <RowErrors
            errors={result.errors}
            rejected={result.rejectedRows}
            truncated={result.errorsTruncated}
            unit="line"
          />
        </>
      )}
    </Stack>
  );
}
