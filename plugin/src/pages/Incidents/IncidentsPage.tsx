import React, { useState } from 'react';
import { PluginPage } from '@grafana/runtime';
import {
  Alert,
  Badge,
  Button,
  Field,
  Input,
  LoadingPlaceholder,
  RadioButtonGroup,
  Stack,
  Text,
  TextLink,
} from '@grafana/ui';
import type { Incident, IncidentAcknowledged, IncidentNoteCreated, IncidentsResponse } from '@controlroom/contract';
import { api, errorMessage } from '../../api/client';
import { canDo, usePolled } from '../../api/hooks';
import { formatTime } from '../../components/shared/format';
import { RoleNotice } from '../../components/shared/RoleNotice';
import { testIds } from './testIds';

const SEVERITIES = ['', 'P1', 'P2', 'P3'] as const;
const STATES = ['open', 'unacknowledged', 'acknowledged', 'resolved', ''] as const;
const STATE_COLOR = { unacknowledged: 'red', acknowledged: 'orange', resolved: 'green' } as const;
const VIA: Record<NonNullable<Incident['acknowledgement']>['via'], string> = {
  slack_button: 'Slack button',
  slack_resolve: 'Slack Resolve',
  alert_resolved: 'alerts resolved',
  grafana: 'Grafana',
};
const NOT_ALLOWED = 'Editor role required (incidents:write)';

/** SLA status in words: which deadline was missed, or the next one still to meet. */
function slaStatus(incident: Incident): { text: string; color: 'red' | 'green' | 'orange' } {
  if (incident.breaches.length > 0) {
    return { text: `SLA missed: ${incident.breaches.join(' and ')}`, color: 'red' };
  }
  if (incident.state === 'resolved') {
    return { text: 'Within SLA', color: 'green' };
  }
  const next = incident.state === 'unacknowledged' ? incident.acknowledgeBy : incident.resolveBy;
  const stage = incident.state === 'unacknowledged' ? 'Acknowledge' : 'Resolve';
  return { text: `${stage} by ${formatTime(next)}`, color: 'orange' };
}

function step(label: string, s: Incident['acknowledgement']) {
  return s ? `${label} ${formatTime(s.at)}${s.by ? ` by ${s.by}` : ''} (${VIA[s.via]})` : `Not ${label.toLowerCase()}`;
}

function IncidentRow({
  incident,
  canAct,
  onAcknowledge,
  onNote,
}: {
  incident: Incident;
  canAct: boolean;
  onAcknowledge: (i: Incident) => void;
  onNote: (i: Incident, text: string) => Promise<boolean>;
}) {
  const [note, setNote] = useState('');
  const sla = slaStatus(incident);
  return (
    <div data-testid={testIds.row(incident.id)}>
      <Stack direction="column" gap={0.5}>
        <Stack alignItems="center" gap={1} wrap="wrap">
          <Badge text={incident.severity} color={incident.severity === 'P1' ? 'red' : 'blue'} />
          <Badge text={incident.state} color={STATE_COLOR[incident.state]} />
          <Text weight="medium">{incident.alertnames.join(', ')}</Text>
          <Badge text={sla.text} color={sla.color} />
          {incident.slackThreadUrl && (
            <TextLink href={incident.slackThreadUrl} external>
              Slack thread
            </TextLink>
          )}
        </Stack>
        <Text color="secondary">
          Paged {formatTime(incident.pagedAt)} · {step('Acknowledged', incident.acknowledgement)} ·{' '}
          {step('Resolved', incident.resolution)}
        </Text>
        {incident.notes.map((n) => (
          <Text key={n.id}>
            “{n.text}” — {n.by}, {formatTime(n.at)}
          </Text>
        ))}
        <Stack alignItems="flex-end" gap={1} wrap="wrap">
          <Button
            size="sm"
            icon="check"
            data-testid={testIds.acknowledge(incident.id)}
            disabled={!canAct || incident.state !== 'unacknowledged'}
            tooltip={canAct ? undefined : NOT_ALLOWED}
            onClick={() => onAcknowledge(incident)}
          >
            Acknowledge
          </Button>
          <Field label="Note" htmlFor={`note-${incident.id}`}>
            <Input
              id={`note-${incident.id}`}
              data-testid={testIds.noteText(incident.id)}
              value={note}
              onChange={(e) => setNote(e.currentTarget.value)}
              disabled={!canAct}
              width={50}
              placeholder="What you found or did (posted in the Slack thread)"
            />
          </Field>
          <Button
            size="sm"
            variant="secondary"
            data-testid={testIds.addNote(incident.id)}
            disabled={!canAct || note.trim() === ''}
            tooltip={canAct ? undefined : NOT_ALLOWED}
            onClick={async () => {
              if (await onNote(incident, note.trim())) {
                setNote('');
              }
            }}
          >
            Add note
          </Button>
        </Stack>
      </Stack>
    </div>
  );
}

/** Incidents of the alert receiver, where on-call acknowledges and adds notes without leaving Grafana. */
function IncidentsPage() {
  const [severity, setSeverity] = useState<(typeof SEVERITIES)[number]>('');
  const [state, setState] = useState<(typeof STATES)[number]>('open');
  const incidents = usePolled(
    () => api<IncidentsResponse>('incidents', { params: { severity, state } }),
    15_000,
    [severity, state]
  );
  const data = incidents.data;
  const loadError = incidents.error?.message ?? null;
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const canAct = canDo('incidentsWrite');

  const act = async (call: () => Promise<string>): Promise<boolean> => {
    setError(null);
    setDone(null);
    try {
      setDone(await call());
      await incidents.reload();
      return true;
    } catch (e) {
      setError(errorMessage(e));
      return false;
    }
  };

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        {!canAct && <RoleNotice needed="Editor" what="Acknowledging incidents and adding notes" />}
        <Stack gap={2} wrap="wrap">
          <Field label="Severity">
            <div data-testid={testIds.severity}>
              <RadioButtonGroup
                value={severity}
                options={SEVERITIES.map((s) => ({ value: s, label: s || 'Any' }))}
                onChange={setSeverity}
              />
            </div>
          </Field>
          <Field label="State">
            <div data-testid={testIds.state}>
              <RadioButtonGroup
                value={state}
                options={STATES.map((s) => ({ value: s, label: s || 'Any' }))}
                onChange={setState}
              />
            </div>
          </Field>
        </Stack>
        {loadError && (
          <Alert severity="error" title="Could not load incidents">
            {loadError}
          </Alert>
        )}
        {!data && !loadError && <LoadingPlaceholder text="Loading…" />}
        {data && data.incidents.length === 0 && <Text color="secondary">No incidents match.</Text>}
        {data?.incidents.map((incident) => (
          <IncidentRow
            key={incident.id}
            incident={incident}
            canAct={canAct}
            onAcknowledge={(i) =>
              void act(async () => {
                const r = await api<IncidentAcknowledged>(`incidents/${i.id}/acknowledge`, { method: 'POST' });
                return r.changed ? `Incident ${i.id} acknowledged` : `Incident ${i.id} was already acknowledged`;
              })
            }
            onNote={(i, text) =>
              act(async () => {
                await api<IncidentNoteCreated>(`incidents/${i.id}/notes`, { method: 'POST', data: { text } });
                return `Note added to incident ${i.id}`;
              })
            }
          />
        ))}
        <div data-testid={testIds.result}>
          {error && (
            <Alert severity="error" title="Not done" onRemove={() => setError(null)}>
              {error}
            </Alert>
          )}
          {done && <Alert severity="success" title={done} onRemove={() => setDone(null)} />}
        </div>
      </Stack>
    </PluginPage>
  );
}

export default IncidentsPage;
