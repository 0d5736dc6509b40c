import React, { useState } from 'react';
import { Alert, Button, Field, Input, Stack, Text } from '@grafana/ui';
import { errorMessage } from '../../api/client';
import { canDo } from '../../api/hooks';
import type { LimitRefusalDetails, LimitRequestAnswer } from '@controlroom/contract';
import { reasonProblem } from '../../components/shared/reason';
import { planAmount, requestIncrease, upgradeText } from './submit';

interface Props {
  companyId: string;
  refusal: LimitRefusalDetails & { status: number };
  /** Who may ask (`limits:request`, Editor by default); others see why the button is disabled. */
  canRequest?: boolean;
}

/** What a whole number above `current` looks like in the form, or why the typed text is not one. */
function limitProblem(text: string, current: number): string | null {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    return 'Enter a whole number';
  }
  return value <= current ? `Ask for more than the current ${current.toLocaleString('en-US')}` : null;
}

/**
 * Shown under a bulk job the plan refused: the upgrade hint (the next plan that includes more) and, when
 * the hard limit refused it (429), the "request increase" flow, which asks ops through
 * POST limits/requests. The same request twice is answered with the first one, so a retry asks once.
 */
export function LimitRefusal({ companyId, refusal, canRequest = canDo('limitsRequest') }: Props) {
  const current = refusal.requestIncrease?.currentLimit ?? refusal.limit;
  const [open, setOpen] = useState(false);
  const [limit, setLimit] = useState(String(Math.max(current * 2, current + 1)));
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [answer, setAnswer] = useState<LimitRequestAnswer | null>(null);

  const problem = limitProblem(limit, current) ?? reasonProblem(reason);
  const send = async () => {
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setAnswer(
        await requestIncrease(
          companyId,
          refusal.requestIncrease?.feature ?? refusal.feature,
          Number(limit),
          reason.trim()
        )
      );
      setOpen(false);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack direction="column" gap={1}>
      {refusal.upgrade && (
        <Text data-testid="upgrade-hint">
          <strong>Upgrade:</strong> {upgradeText(refusal.upgrade, refusal.unit)}
        </Text>
      )}
      {refusal.requestIncrease && !answer && !open && (
        <div>
          <Button
            variant="secondary"
            icon="arrow-up"
            onClick={() => setOpen(true)}
            disabled={!canRequest}
            tooltip={canRequest ? undefined : 'Editor role required'}
          >
            Request increase
          </Button>
        </div>
      )}
      {open && (
        <Stack direction="column" gap={0}>
          <Field
            label={`New limit (${refusal.unit} per ${refusal.period})`}
            description={`Now ${planAmount(current, refusal.unit, refusal.period)}`}
          >
            <Input
              id="limit-requested"
              type="number"
              min={current + 1}
              value={limit}
              onChange={(e) => setLimit(e.currentTarget.value)}
              width={20}
            />
          </Field>
          <Field label="Reason" description="Ops read it; it is recorded in the audit log with your Grafana login">
            <Input
              id="limit-reason"
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              width={60}
              placeholder="e.g. month-end repricing of our lane book"
            />
          </Field>
          <Stack gap={1}>
            <Button icon="message" onClick={send} disabled={busy}>
              {busy ? 'Sending…' : 'Send request'}
            </Button>
            <Button variant="secondary" fill="text" onClick={() => setOpen(false)} disabled={busy}>
              Cancel
            </Button>
          </Stack>
        </Stack>
      )}
      {error && (
        <Alert severity="error" title="Request not sent" onRemove={() => setError(null)}>
          {error}
        </Alert>
      )}
      {answer && (
        <Alert severity="success" title={answer.duplicate ? 'Increase already requested' : 'Increase requested'}>
          Ops will review {planAmount(answer.request.requestedLimit, answer.request.unit, refusal.period)} for{' '}
          {refusal.feature} (request #{answer.request.id}, by {answer.request.requestedBy}).
        </Alert>
      )}
    </Stack>
  );
}
