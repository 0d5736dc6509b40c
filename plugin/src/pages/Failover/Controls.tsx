import React, { useState } from 'react';
import { Alert, Button, Checkbox, ConfirmModal, Field, Input, RadioButtonGroup, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { useConfirmedAction } from '../../components/shared/useConfirmedAction';
import { useResetOnChange } from '../../components/shared/useResetOnChange';
import type { RegionsState } from '@controlroom/contract';

interface Props {
  state: RegionsState;
  canControl: boolean;
  onDone: () => void;
}

type Pending =
  | { kind: 'failover'; target: string; steps: number[] }
  | { kind: 'shift'; weights: Record<string, number> }
  | { kind: 'abort' };

/** "10, 50, 100" → [10, 50, 100]; the server checks the rules (increasing, ending at 100) and says which one failed. */
export function parseSteps(text: string): number[] | string {
  const parts = text.split(/[\s,/]+/).filter(Boolean);
  if (parts.length === 0) {
    return 'give the target region’s traffic share at each step, ending at 100';
  }
  const steps = parts.map(Number);
  const bad = parts.find((p, i) => !Number.isInteger(steps[i]));
  return bad === undefined ? steps : `'${bad}' is not a whole percentage`;
}

/**
 * Failover (stepped, with the write role moving at the end), traffic shift and abort, each behind a
 * confirmation that says exactly what will happen. Admins only: the plugin route and the API refuse others.
 */
export function Controls({ state, canControl, onDone }: Props) {
  const regions = state.regions;
  const active = regions.find((r) => r.active) ?? regions[0];
  const others = regions.filter((r) => r.name !== active?.name);
  const cutover = state.control.cutover;
  // The selections as the current regions suggest them: where the controls start, and start again.
  const defaultTarget = others[0]?.name ?? '';
  const defaultSteps = () => state.settings.default_steps.join(', ');
  const currentWeights = () => Object.fromEntries(regions.map((r) => [r.name, String(r.traffic_weight)]));
  const [target, setTarget] = useState(defaultTarget);
  const [stepsText, setStepsText] = useState(defaultSteps);
  const [weights, setWeights] = useState<Record<string, string>>(currentWeights);
  const [force, setForce] = useState(false);
  // A new active region (a cutover finishing, ours or another Admin's) makes the target and weights stale.
  useResetOnChange(active?.name ?? 'none', () => {
    setTarget(defaultTarget);
    setStepsText(defaultSteps());
    setWeights(currentWeights());
    setForce(false);
  });
  const { reason, setReason, reasonError, pending, ask, confirm, dismiss, error, clearError, message, clearMessage, busy } =
    useConfirmedAction<Pending>();
  const targetRegion = regions.find((r) => r.name === target);

  const askFailover = () => {
    const steps = parseSteps(stepsText);
    ask(reasonError ?? (typeof steps === 'string' ? `Steps: ${steps}` : { kind: 'failover', target, steps }));
  };
  const askShift = () => {
    const parsed = Object.entries(weights).map(([name, w]) => [name, Number(w)] as const);
    const bad = parsed.find(([, w]) => !Number.isInteger(w) || w < 0 || w > 100);
    ask(
      reasonError ??
        (bad
          ? `Weight of ${bad[0]} must be a whole percentage from 0 to 100`
          : { kind: 'shift', weights: Object.fromEntries(parsed) })
    );
  };

  const send = () =>
    confirm(async (p, why) => {
      const body = { reason: why, ...(p.kind !== 'abort' && force ? { force: true } : {}) };
      if (p.kind === 'failover') {
        await api('regions/failover', { method: 'POST', data: { ...body, target: p.target, steps: p.steps } });
        return `Failover to ${p.target} started`;
      }
      if (p.kind === 'shift') {
        const { event } = await api<{ event: { outcome: string } }>('regions/shift', {
          method: 'POST',
          data: { ...body, weights: p.weights },
        });
        return `Traffic shift ${event.outcome === 'in_progress' ? 'started' : event.outcome}`;
      }
      await api('regions/cutover/abort', { method: 'POST', data: { reason: why } });
      return 'Cutover abort requested';
    }, () => {
      setForce(false);
      onDone();
    });

  const describe = (p: Pending): string => {
    if (p.kind === 'failover') {
      const unhealthy =
        targetRegion && !targetRegion.healthy
          ? ` ${p.target} is UNHEALTHY${force ? '; forcing it' : ' and the request will be refused unless forced'}.`
          : '';
      return `Traffic moves to ${p.target} in ${p.steps.length} step(s): ${p.steps.map((s) => `${s}%`).join(' → ')}, one every ${state.settings.step_seconds}s. Writes freeze while the write role moves from ${active?.name} to ${p.target}.${unhealthy}`;
    }
    if (p.kind === 'shift') {
      return `Traffic weights become ${Object.entries(p.weights)
        .map(([n, w]) => `${n} ${w}%`)
        .join(', ')}. The write role stays in ${active?.name}.`;
    }
    return `The cutover of ${cutover?.from} → ${cutover?.to ?? '(weights)'} stops and traffic returns to where it started.`;
  };

  const disabled = !canControl || busy;
  return (
    <Stack direction="column" gap={2}>
      <Field
        label="Reason"
        description="Required for every action; recorded in the audit log with your Grafana login"
        invalid={!!reason && !!reasonError}
      >
        <Input
          id="failover-reason"
          placeholder="e.g. us-east-1 degraded, INC-1234"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          disabled={!canControl}
          width={60}
        />
      </Field>
      <Stack gap={4} wrap="wrap">
        <Stack direction="column" gap={1}>
          <Text element="h4">Fail over</Text>
          <Field label="Target region">
            <RadioButtonGroup
              options={others.map((r) => ({ label: r.name, value: r.name }))}
              value={target}
              onChange={setTarget}
              disabled={!canControl}
            />
          </Field>
          <Field label="Steps" description="The target's traffic share at each step, in %, ending at 100">
            <Input
              id="failover-steps"
              value={stepsText}
              onChange={(e) => setStepsText(e.currentTarget.value)}
              disabled={!canControl}
              width={30}
            />
          </Field>
          <Button
            variant="destructive"
            icon="exchange-alt"
            onClick={askFailover}
            disabled={disabled || !!cutover || !target}
          >
            Fail over to {target || '…'}
          </Button>
        </Stack>
        <Stack direction="column" gap={1}>
          <Text element="h4">Shift traffic</Text>
          {regions.map((r) => (
            <Field key={r.name} label={`${r.name} weight (%)`}>
              <Input
                type="number"
                min={0}
                max={100}
                aria-label={`${r.name} weight`}
                value={weights[r.name] ?? ''}
                onChange={(e) => setWeights({ ...weights, [r.name]: e.currentTarget.value })}
                disabled={!canControl}
                width={12}
              />
            </Field>
          ))}
          <Button variant="secondary" icon="sliders-v-alt" onClick={askShift} disabled={disabled || !!cutover}>
            Shift traffic
          </Button>
        </Stack>
      </Stack>
      <div>
        <Checkbox
          label="Force (skip the target health and replication checks)"
          value={force}
          onChange={(e) => setForce(e.currentTarget.checked)}
          disabled={!canControl}
        />
      </div>
      {cutover && (
        <Button
          variant="destructive"
          fill="outline"
          icon="times"
          onClick={() => ask(reasonError ?? { kind: 'abort' })}
          disabled={disabled || !!cutover.abort}
        >
          {cutover.abort ? 'Abort requested' : 'Abort cutover'}
        </Button>
      )}
      {error && (
        <Alert severity="error" title="Not done" onRemove={clearError}>
          {error}
        </Alert>
      )}
      {message && <Alert severity="success" title={message} onRemove={clearMessage} />}
      {pending && (
        <ConfirmModal
          isOpen
          title={
            pending.kind === 'failover'
              ? `Fail over to ${pending.target}?`
              : pending.kind === 'shift'
                ? 'Shift traffic?'
                : 'Abort the cutover?'
          }
          body={describe(pending)}
          description={`Reason: ${reason.trim()}`}
          confirmText={
            pending.kind === 'failover' ? 'Fail over' : pending.kind === 'shift' ? 'Shift traffic' : 'Abort cutover'
          }
          confirmationText={pending.kind === 'failover' ? pending.target : undefined}
          onConfirm={send}
          onDismiss={dismiss}
        />
      )}
    </Stack>
  );
}
