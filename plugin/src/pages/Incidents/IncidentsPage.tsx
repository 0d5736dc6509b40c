import React, { useRef, useState } from 'react';
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
import type {
  Incident,
  IncidentAcknowledged,
  IncidentNoteCreated,
  IncidentSilenceBody,
  IncidentSilenced,
  IncidentsResponse,
} from '@controlroom/contract';
import { api, errorMessage } from '../../api/client';
import { canDo, usePolled } from '../../api/hooks';
import { formatTime } from '../../components/shared/format';
import { RoleNotice } from '../../components/shared/RoleNotice';
import { SilenceDialog } from './SilenceDialog';
import { testIds } from './testIds';

/** Incidents per page; "Load more" adds the next (older) page. */
export const PAGE_SIZE = 25;

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
  onSilence,
}: {
  incident: Incident;
  canAct: boolean;
  onAcknowledge: (i: Incident) => void;
  onNote: (i: Incident, text: string) => Promise<boolean>;
  onSilence: (i: Incident) => void;
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
        {incident.silences
          .filter((s) => s.active)
          .map((s) => (
            <div key={s.silenceId} data-testid={testIds.silenced(incident.id)}>
              <Text>
                Silenced until {formatTime(s.endsAt)} by {s.by}: “{s.reason}”
              </Text>
            </div>
          ))}
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
          <Button
            size="sm"
            variant="secondary"
            icon="bell-slash"
            data-testid={testIds.silence(incident.id)}
            disabled={!canAct || incident.source !== 'alertmanager'}
            tooltip={
              !canAct
                ? NOT_ALLOWED
                : incident.source !== 'alertmanager'
                  ? 'From Grafana alerting: silence it in Grafana'
                  : undefined
            }
            onClick={() => onSilence(incident)}
          >
            Silence for…
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

/** Incidents of the alert receiver, where on-call acknowledges, silences and adds notes without leaving Grafana. */
function IncidentsPage() {
  const [severity, setSeverity] = useState<(typeof SEVERITIES)[number]>('');
  const [state, setState] = useState<(typeof STATES)[number]>('open');
  // Pages shown (read by each poll, not a dependency: "Load more" keeps the list while the next page loads).
  // Each poll follows the cursors from the newest, so no incident falls between two pages.
  const pages = useRef(1);
  const [loadingMore, setLoadingMore] = useState(false);
  const incidents = usePolled(
    async (): Promise<IncidentsResponse> => {
      const shown: Incident[] = [];
      let cursor: string | null | undefined;
      for (let page = 0; page < pages.current; page++) {
        const answer = await api<IncidentsResponse>('incidents', {
          params: { severity, state, limit: PAGE_SIZE, cursor: cursor ?? undefined },
        });
        shown.push(...answer.incidents);
        cursor = answer.nextCursor;
        if (!cursor) {
          break;
        }
      }
      return { incidents: shown, nextCursor: cursor ?? null };
    },
    15_000,
    [severity, state]
  );
  const data = incidents.data;
  const [silencing, setSilencing] = useState<Incident | null>(null);
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
        {!canAct && <RoleNotice needed="Editor" what="Acknowledging incidents, silencing them and adding notes" />}
        <Stack gap={2} wrap="wrap">
          <Field label="Severity">
            <div data-testid={testIds.severity}>
              <RadioButtonGroup
                value={severity}
                options={SEVERITIES.map((s) => ({ value: s, label: s || 'Any' }))}
                onChange={(v) => {
                  setSeverity(v);
                  pages.current = 1;
                }}
              />
            </div>
          </Field>
          <Field label="State">
            <div data-testid={testIds.state}>
              <RadioButtonGroup
                value={state}
                options={STATES.map((s) => ({ value: s, label: s || 'Any' }))}
                onChange={(v) => {
                  setState(v);
                  pages.current = 1;
                }}
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
            onSilence={setSilencing}
          />
        ))}
        {data?.nextCursor && (
          <Button
            variant="secondary"
            data-testid={testIds.loadMore}
            disabled={loadingMore}
            icon={loadingMore ? 'spinner' : 'angle-down'}
            onClick={async () => {
              pages.current += 1;
              setLoadingMore(true);
              try {
                await incidents.reload();
              } finally {
                setLoadingMore(false);
              }
            }}
          >
            Load more
          </Button>
        )}
        {silencing && (
          <SilenceDialog
            incident={silencing}
            onDismiss={() => setSilencing(null)}
            onSubmit={async (body: IncidentSilenceBody, key: string) => {
              const made = await act(async () => {
                const r = await api<IncidentSilenced>(`incidents/${silencing.id}/silence`, {
                  method: 'POST',
                  data: body,
                  headers: { 'Idempotency-Key': key },
                });
                return `Incident ${silencing.id} silenced until ${formatTime(r.silence.endsAt)}`;
              });
              if (made) {
                setSilencing(null);
              }
              return made;
            }}
          />
        )}
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
