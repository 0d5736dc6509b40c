import React, { useState } from 'react';
import { Alert, Button, IconButton, Input, RadioButtonGroup, Stack, Text } from '@grafana/ui';
import { errorMessage } from '../../api/client';
import type { RowError, SubmitBulkJobResponse } from '@controlroom/contract';
import { formatNumber } from '../../components/shared/format';
import { LimitRefusal } from './LimitRefusal';
import { limitRefusalOf, newIdempotencyKey, rowErrorsOf, submitLanes, type Lane } from './submit';

interface Props {
  companyId: string;
  canSubmit: boolean;
  onSubmitted: (result: SubmitBulkJobResponse) => void;
}

const EQUIPMENT = ['van', 'reefer', 'flatbed'].map((e) => ({ label: e, value: e }));
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const emptyLane = (): Lane => ({ origin: '', destination: '', equipment: 'van', pickupDate: tomorrow() });

/** A few lanes typed in, sent as one JSON job; each lane's problems show on its own row. */
export function ManualLanes({ companyId, canSubmit, onSubmitted }: Props) {
  const [lanes, setLanes] = useState<Lane[]>([emptyLane()]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [limitRefusal, setLimitRefusal] = useState<ReturnType<typeof limitRefusalOf>>(null);
  const [rowErrors, setRowErrors] = useState<RowError[]>([]);
  const [accepted, setAccepted] = useState<SubmitBulkJobResponse | null>(null);

  const edit = (index: number, change: Partial<Lane>) =>
    setLanes((all) => all.map((lane, i) => (i === index ? { ...lane, ...change } : lane)));

  const submit = async () => {
    setBusy(true);
    setError(null);
    setLimitRefusal(null);
    setRowErrors([]);
    setAccepted(null);
    try {
      const result = await submitLanes(companyId, lanes, newIdempotencyKey());
      setAccepted(result);
      // Keep only the lanes the server refused, renumbered, so they can be corrected and sent again.
      const refusedLines = [...new Set(result.errors.map((e) => e.line))].sort((a, b) => a - b);
      const newLine = new Map(refusedLines.map((line, i) => [line, i + 1]));
      setLanes(refusedLines.length > 0 ? refusedLines.map((line) => lanes[line - 1] ?? emptyLane()) : [emptyLane()]);
      setRowErrors(result.errors.map((e) => ({ ...e, line: newLine.get(e.line) ?? e.line })));
      onSubmitted(result);
    } catch (e) {
      setError(errorMessage(e));
      setLimitRefusal(limitRefusalOf(e));
      setRowErrors(rowErrorsOf(e));
    } finally {
      setBusy(false);
    }
  };

  const problemsOf = (index: number) => rowErrors.filter((e) => e.line === index + 1).map((e) => e.reason);
  return (
    <Stack direction="column" gap={1}>
      {lanes.map((lane, i) => {
        const problems = problemsOf(i);
        return (
          <div key={i} data-testid={`manual-lane-${i + 1}`}>
            <Stack alignItems="center" gap={1} wrap="wrap">
              <Text color="secondary">{i + 1}.</Text>
              <Input
                width={24}
                aria-label={`Lane ${i + 1} origin`}
                placeholder="Origin, e.g. Reno, NV"
                value={lane.origin}
                invalid={problems.length > 0}
                onChange={(e) => edit(i, { origin: e.currentTarget.value })}
              />
              <Input
                width={24}
                aria-label={`Lane ${i + 1} destination`}
                placeholder="Destination"
                value={lane.destination}
                invalid={problems.length > 0}
                onChange={(e) => edit(i, { destination: e.currentTarget.value })}
              />
              <RadioButtonGroup
                size="sm"
                options={EQUIPMENT}
                value={lane.equipment}
                onChange={(v) => edit(i, { equipment: v })}
              />
              <Input
                width={18}
                type="date"
                aria-label={`Lane ${i + 1} pickup date`}
                value={lane.pickupDate}
                onChange={(e) => edit(i, { pickupDate: e.currentTarget.value })}
              />
              <IconButton
                name="trash-alt"
                tooltip="Remove lane"
                disabled={lanes.length === 1}
                onClick={() => setLanes((all) => all.filter((_, j) => j !== i))}
              />
            </Stack>
            {problems.length > 0 && (
              <Text color="error" variant="bodySmall">
                {problems.join('; ')}
              </Text>
            )}
          </div>
        );
      })}
      <Stack gap={1}>
        <Button
          variant="secondary"
          icon="plus"
          onClick={() => setLanes((all) => [...all, emptyLane()])}
          disabled={lanes.length >= 100}
        >
          Add lane
        </Button>
        <Button
          icon="calculator-alt"
          onClick={submit}
          disabled={busy || !canSubmit}
          tooltip={canSubmit ? undefined : 'Editor role required'}
        >
          {busy ? 'Submitting…' : `Rate ${lanes.length} ${lanes.length === 1 ? 'lane' : 'lanes'}`}
        </Button>
      </Stack>
      {error && (
        <Alert severity="error" title="Lanes refused">
          {error}
        </Alert>
      )}
      {limitRefusal && <LimitRefusal companyId={companyId} refusal={limitRefusal} />}
      {accepted && (
        <Alert severity="success" title="Job accepted">
          {formatNumber(accepted.lanesAccepted)} lanes queued as job {accepted.job.id.slice(0, 8)}
          {accepted.rejectedRows > 0 && `; ${accepted.rejectedRows} refused lanes are left above to correct`}.
        </Alert>
      )}
    </Stack>
  );
}
