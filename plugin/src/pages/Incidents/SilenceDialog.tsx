import React, { useState } from 'react';
import { Alert, Button, Field, Input, Modal, RadioButtonGroup, Stack, Text } from '@grafana/ui';
import type { Incident, IncidentSilenceBody } from '@controlroom/contract';
import { newIdempotencyKey } from '../BulkRating/submit';
import { testIds } from './testIds';

/** The durations offered, in minutes (Control Room accepts 1 minute to 7 days). */
export const SILENCE_DURATIONS = [
  { value: 30, label: '30 min' },
  { value: 60, label: '1 h' },
  { value: 120, label: '2 h' },
  { value: 240, label: '4 h' },
  { value: 480, label: '8 h' },
  { value: 1440, label: '1 day' },
  { value: 10080, label: '7 days' },
] as const;

/** The labels the silence will match: the group's common labels, as Control Room takes them. */
function commonLabels(incident: Incident): Record<string, string> {
  const [first, ...rest] = incident.alerts;
  if (!first) {
    return {};
  }
  return Object.fromEntries(
    Object.entries(first.labels).filter(([name, value]) => rest.every((a) => a.labels[name] === value))
  );
}

/**
 * "Silence for…": a duration and a required reason (the silence's comment in Alertmanager). `onSubmit`
 * resolves true when the silence was made (the page then closes the dialog) and false when refused (it
 * stays open, the page shows why). One submission at a time: the button is busy until the answer.
 */
export function SilenceDialog({
  incident,
  onSubmit,
  onDismiss,
}: {
  incident: Incident;
  onSubmit: (body: IncidentSilenceBody, idempotencyKey: string) => Promise<boolean>;
  onDismiss: () => void;
}) {
  const [minutes, setMinutes] = useState<number>(SILENCE_DURATIONS[1].value);
  const [reason, setReason] = useState('');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const reasonMissing = reason.trim() === '';
  // One key per distinct request: a retry of the same one (a timeout, a double click) makes one silence.
  const [keys] = useState(() => new Map<string, string>());
  const labels = Object.entries(commonLabels(incident));
  return (
    <Modal title={`Silence ${incident.alertnames.join(', ')}`} isOpen onDismiss={onDismiss}>
      <Stack direction="column" gap={1}>
        <Text color="secondary">
          Creates an Alertmanager silence matching the group&apos;s common labels
          {labels.length > 0 ? `: ${labels.map(([k, v]) => `${k}="${v}"`).join(', ')}` : ''}. Notifications for these
          alerts stop until it expires; the silence is posted in the Slack thread.
        </Text>
        <Field label="Silence for">
          <div data-testid={testIds.silenceDuration}>
            <RadioButtonGroup
              value={minutes}
              options={SILENCE_DURATIONS.map((d) => ({ value: d.value, label: d.label }))}
              onChange={setMinutes}
            />
          </div>
        </Field>
        <Field
          label="Reason"
          description="Required: why the alerts may stay quiet (the silence's comment)"
          invalid={touched && reasonMissing}
          error={touched && reasonMissing ? 'Give a reason' : undefined}
        >
          <Input
            data-testid={testIds.silenceReason}
            value={reason}
            maxLength={500}
            onChange={(e) => setReason(e.currentTarget.value)}
            onBlur={() => setTouched(true)}
            placeholder="e.g. carrier API outage, ticket OPS-42"
          />
        </Field>
        {touched && reasonMissing && (
          <Alert severity="warning" title="A reason is required" data-testid={testIds.silenceReasonMissing} />
        )}
      </Stack>
      <Modal.ButtonRow>
        <Button variant="secondary" fill="outline" onClick={onDismiss}>
          Cancel
        </Button>
        <Button
          data-testid={testIds.silenceConfirm}
          icon={busy ? 'spinner' : 'bell-slash'}
          disabled={busy}
          onClick={async () => {
            setTouched(true);
            if (reasonMissing) {
              return;
            }
            const request = `${minutes}|${reason.trim()}`;
            const key = keys.get(request) ?? newIdempotencyKey();
            keys.set(request, key);
            setBusy(true);
            try {
              await onSubmit({ durationMinutes: minutes, reason: reason.trim() }, key);
            } finally {
              setBusy(false);
            }
          }}
        >
          Silence
        </Button>
      </Modal.ButtonRow>
    </Modal>
  );
}
