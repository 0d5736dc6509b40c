import React, { useState } from 'react';
import { PluginPage } from '@grafana/runtime';
import { Alert, Badge, Button, Field, Input, LoadingPlaceholder, Stack, Text } from '@grafana/ui';
import { api, errorMessage } from '../../api/client';
import { reasonProblem } from '../../components/shared/reason';
import { canDo, usePolled } from '../../api/hooks';
import type { FreezeAction, FreezeState } from '@controlroom/contract';
import { formatTime, isoFromLocalInput, localInputIn, timeAgo } from '../../components/shared/format';
import { RoleNotice } from '../../components/shared/RoleNotice';

const CAUSE: Record<FreezeState['cause'], string> = {
  none: 'No freeze in force',
  active_region_down: 'The active region is down',
  release_gate: 'Release gate: agent success of the last hour below the gate or unreadable',
  error_budget: 'Error budget half spent',
  slo_page: 'A P1 SLO page is firing',
  quiet_period: 'Quiet period after the last freeze alert',
  manual: 'Frozen by hand',
  override: 'Freeze overridden',
};

function ActionRow({
  action,
  canEnd,
  onEnd,
}: {
  action: FreezeAction;
  canEnd: boolean;
  onEnd: (a: FreezeAction) => void;
}) {
  return (
    <Stack alignItems="center" gap={1} wrap="wrap">
      <Badge
        text={action.kind === 'override' ? 'override' : 'manual freeze'}
        color={action.kind === 'override' ? 'orange' : 'red'}
      />
      <Text>
        “{action.reason}” by {action.actor}, {formatTime(action.createdAt)}
        {action.expiresAt ? `, until ${formatTime(action.expiresAt)}` : ', until ended'}
      </Text>
      <Button
        size="sm"
        variant="secondary"
        onClick={() => onEnd(action)}
        disabled={!canEnd}
        tooltip={canEnd ? undefined : 'Admin role required'}
      >
        End {action.kind === 'override' ? 'override' : 'freeze'}
      </Button>
    </Stack>
  );
}

/** The release freeze that gates GitHub deploys: why it holds, and the manual freeze and override. */
function ReleaseFreezePage() {
  const freeze = usePolled(() => api<FreezeState>('freeze'), 10_000, []);
  const canFreeze = canDo('freezeWrite');
  const canOverride = canDo('freezeOverride');
  const [reason, setReason] = useState('');
  const [expires, setExpires] = useState(() => localInputIn(2));
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const act = async (what: string, call: () => Promise<unknown>) => {
    setError(null);
    setDone(null);
    try {
      await call();
      setDone(what);
      setReason('');
      await freeze.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const body = () => {
    const problem = reasonProblem(reason);
    if (problem) {
      throw new Error(problem);
    }
    const expiresAt = isoFromLocalInput(expires);
    return { reason: reason.trim(), ...(expiresAt ? { expiresAt: expiresAt } : {}) };
  };
  const state = freeze.data;

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        {freeze.error && (
          <Alert severity="error" title="Could not load the release freeze">
            {freeze.error.message}
          </Alert>
        )}
        {!state && freeze.loading && <LoadingPlaceholder text="Loading…" />}
        {state && (
          <>
            <div data-testid="freeze-state">
              <Alert
                severity={state.frozen ? 'error' : 'success'}
                title={state.frozen ? 'Releases are frozen' : 'Releases are open'}
              >
                <Stack direction="column" gap={0.5}>
                  <Text>
                    {CAUSE[state.cause]}
                    {state.reason && ` — ${state.reason}`}
                  </Text>
                  {state.since && <Text color="secondary">Since {formatTime(state.since)}</Text>}
                  {state.nextChangeAt && (
                    <Text color="secondary">
                      Changes by itself {timeAgo(state.nextChangeAt)} ({formatTime(state.nextChangeAt)})
                    </Text>
                  )}
                </Stack>
              </Alert>
            </div>
            {state.triggers.length > 0 && (
              <Stack direction="column" gap={0.5}>
                <Text element="h3">SLO alerts behind the freeze</Text>
                {state.triggers.map((t) => (
                  <Text key={`${t.alertname}-${t.slo}-${t.startedAt}`}>
                    <Badge text={t.firing ? 'firing' : 'resolved'} color={t.firing ? 'red' : 'green'} /> {t.alertname}
                    {t.slo && ` (${t.slo})`} since {formatTime(t.startedAt)}
                    {t.resolvedAt && `, resolved ${formatTime(t.resolvedAt)}`}
                  </Text>
                ))}
              </Stack>
            )}
            {[...state.manualFreezes, ...(state.override ? [state.override] : [])].map((a) => (
              <ActionRow
                key={a.id}
                action={a}
                canEnd={canOverride}
                onEnd={(x) =>
                  act(`Ended ${x.kind} ${x.id}`, () =>
                    api(`freeze/${x.kind === 'override' ? 'overrides' : 'freezes'}/${x.id}`, {
                      method: 'DELETE',
                    })
                  )
                }
              />
            ))}
            <Text element="h3">Act</Text>
            {!canFreeze && <RoleNotice needed="Editor" what="Freezing releases" />}
            <Field label="Reason" description="Recorded in the audit log with your Grafana login">
              <Input
                id="freeze-reason"
                value={reason}
                onChange={(e) => setReason(e.currentTarget.value)}
                disabled={!canFreeze}
                width={60}
                placeholder="e.g. peak season change freeze"
              />
            </Field>
            <Field
              label="Expires"
              description="A manual freeze may be open-ended (clear the field); an override must end within 24 hours"
            >
              <Input
                id="freeze-expires"
                type="datetime-local"
                value={expires}
                onChange={(e) => setExpires(e.currentTarget.value)}
                disabled={!canFreeze}
                width={30}
              />
            </Field>
            <Stack gap={1}>
              <Button
                variant="destructive"
                icon="lock"
                disabled={!canFreeze}
                onClick={() =>
                  act('Releases frozen', async () => api('freeze/freezes', { method: 'POST', data: body() }))
                }
              >
                Freeze releases
              </Button>
              <Button
                variant="secondary"
                icon="unlock"
                disabled={!canOverride || !state.frozen}
                tooltip={canOverride ? undefined : 'Admin role required'}
                onClick={() =>
                  act('Freeze overridden', async () => api('freeze/overrides', { method: 'POST', data: body() }))
                }
              >
                Override the freeze
              </Button>
            </Stack>
            {error && (
              <Alert severity="error" title="Not done" onRemove={() => setError(null)}>
                {error}
              </Alert>
            )}
            {done && <Alert severity="success" title={done} onRemove={() => setDone(null)} />}
          </>
        )}
      </Stack>
    </PluginPage>
  );
}

export default ReleaseFreezePage;
