import React, { useState } from 'react';
import type { PricingOverview } from '@controlroom/contract';
import { Alert, Button, Combobox, ConfirmModal, Field, Input, Stack, Text } from '@grafana/ui';
import { api } from '../../api/client';
import { useConfirmedAction } from '../../components/shared/useConfirmedAction';
import { useResetOnChange } from '../../components/shared/useResetOnChange';
import { testIds } from './testIds';

interface Props {
  overview: PricingOverview;
  canControl: boolean;
  onDone: () => void;
}

type Pending =
  | { kind: 'candidate'; version: string; share: number }
  | { kind: 'activate'; version: string }
  | { kind: 'rollback'; version: string };

/** "10" or "12.5%" → 0.1 / 0.125, or what is wrong with it (the server checks again and says so too). */
export function parseSharePercent(text: string, maxShare: number): number | string {
  const value = Number(text.trim().replace(/%$/, ''));
  if (text.trim() === '' || !Number.isFinite(value)) {
    return `Share: '${text}' is not a percentage`;
  }
  if (value <= 0 || value > maxShare * 100) {
    return `Share must be above 0% and at most ${maxShare * 100}% of lanes`;
  }
  return Math.round(value * 1000) / 100_000;
}

const percent = (share: number) => `${Math.round(share * 1000) / 10}%`;

/**
 * The registry's Admin changes that move prices: give the candidate a share of lanes, activate a model,
 * roll back to the previously active one. Each is confirmed in a dialog that says what will change, and
 * carries the required reason to the audit log. Viewers and Editors see the controls disabled; Grafana's
 * proxy route (reqRole Admin, pricing:write) and Control Room refuse them anyway.
 */
export function Controls({ overview, canControl, onDone }: Props) {
  const choosable = overview.models.filter((m) => m.status !== 'active');
  const defaultVersion = overview.candidate?.version ?? choosable[0]?.version ?? '';
  const defaultShare = String(Math.round((overview.candidate?.share ?? 0.1) * 1000) / 10);
  const [candidateVersion, setCandidateVersion] = useState(defaultVersion);
  const [shareText, setShareText] = useState(defaultShare);
  const [activateVersion, setActivateVersion] = useState(defaultVersion);
  // A new active model or candidate (ours or another Admin's) makes the selections stale: start again from it.
  useResetOnChange(`${overview.active}|${overview.candidate?.version ?? ''}`, () => {
    setCandidateVersion(defaultVersion);
    setShareText(defaultShare);
    setActivateVersion(defaultVersion);
  });
  const { reason, setReason, reasonError, pending, ask, confirm, dismiss, error, clearError, message, clearMessage, busy } =
    useConfirmedAction<Pending>();
  const options = choosable.map((m) => ({ label: `${m.version} (${m.status})`, value: m.version }));

  const askCandidate = () => {
    const share = parseSharePercent(shareText, overview.maxCandidateShare);
    ask(
      reasonError ??
        (!candidateVersion
          ? 'Choose the model to trial'
          : typeof share === 'string'
            ? share
            : { kind: 'candidate', version: candidateVersion, share })
    );
  };

  const send = () =>
    confirm(async (p, why) => {
      if (p.kind === 'candidate') {
        await api(`pricing/models/${encodeURIComponent(p.version)}/candidate`, {
          method: 'POST',
          data: { reason: why, share: p.share },
        });
        return `${p.version} is the candidate on ${percent(p.share)} of lanes`;
      }
      if (p.kind === 'activate') {
        await api(`pricing/models/${encodeURIComponent(p.version)}/activate`, { method: 'POST', data: { reason: why } });
        return `${p.version} is now the active model`;
      }
      const { model } = await api<{ model: { version: string } }>('pricing/rollback', {
        method: 'POST',
        data: { reason: why },
      });
      return `Rolled back: ${model.version} is the active model again`;
    }, onDone);

  const describe = (p: Pending): string => {
    if (p.kind === 'candidate') {
      const replaced =
        overview.candidate && overview.candidate.version !== p.version
          ? ` ${overview.candidate.version} stops being the candidate.`
          : '';
      return `${p.version} prices ${percent(p.share)} of lanes (the same lanes every time); ${overview.active} prices the rest.${replaced}`;
    }
    if (p.kind === 'activate') {
      return `${p.version} prices every lane from now on; ${overview.active} is retired (a rollback brings it back).`;
    }
    return `${p.version} becomes the active model again and prices every lane; ${overview.active} is retired.`;
  };

  const disabled = !canControl || busy;
  return (
    <Stack direction="column" gap={2}>
      <Field
        label="Reason"
        description="Required for every change; recorded in the audit log with your Grafana login"
        invalid={!!reason && !!reasonError}
      >
        <Input
          id="pricing-reason"
          data-testid={testIds.reason}
          placeholder="e.g. v2 quotes 12% high in the Southeast, PRC-31"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          disabled={!canControl}
          width={60}
        />
      </Field>
      <Stack gap={4} wrap="wrap">
        <Stack direction="column" gap={1}>
          <Text element="h4">Candidate share</Text>
          <Field label="Model to trial">
            <Combobox<string>
              id="pricing-candidate-model"
              data-testid={testIds.candidateModel}
              options={options}
              value={candidateVersion || null}
              onChange={(option) => setCandidateVersion(option?.value ?? '')}
              disabled={!canControl || options.length === 0}
              width={30}
            />
          </Field>
          <Field label="Share of lanes (%)" description={`At most ${overview.maxCandidateShare * 100}%`}>
            <Input
              id="pricing-candidate-share"
              data-testid={testIds.candidateShare}
              value={shareText}
              onChange={(e) => setShareText(e.currentTarget.value)}
              disabled={!canControl}
              width={12}
            />
          </Field>
          <Button data-testid={testIds.setCandidate} icon="sliders-v-alt" onClick={askCandidate} disabled={disabled}>
            Set candidate share
          </Button>
        </Stack>
        <Stack direction="column" gap={1}>
          <Text element="h4">Activate</Text>
          <Field label="Model to activate">
            <Combobox<string>
              id="pricing-activate-model"
              data-testid={testIds.activateModel}
              options={options}
              value={activateVersion || null}
              onChange={(option) => setActivateVersion(option?.value ?? '')}
              disabled={!canControl || options.length === 0}
              width={30}
            />
          </Field>
          <Button
            data-testid={testIds.activate}
            variant="destructive"
            icon="play"
            onClick={() =>
              ask(reasonError ?? (activateVersion ? { kind: 'activate', version: activateVersion } : 'Choose a model'))
            }
            disabled={disabled || !activateVersion}
          >
            Activate {activateVersion || '…'}
          </Button>
        </Stack>
        <Stack direction="column" gap={1}>
          <Text element="h4">Roll back</Text>
          <Text color="secondary">
            {overview.rollbackTo
              ? `Re-activates ${overview.rollbackTo}, the model active before ${overview.active}.`
              : 'No retired model to roll back to.'}
          </Text>
          <Button
            data-testid={testIds.rollback}
            variant="destructive"
            icon="history"
            onClick={() => ask(reasonError ?? { kind: 'rollback', version: overview.rollbackTo ?? '' })}
            disabled={disabled || !overview.rollbackTo}
          >
            Roll back to {overview.rollbackTo ?? '…'}
          </Button>
        </Stack>
      </Stack>
      {error && (
        <Alert severity="error" title="Not done" onRemove={clearError}>
          {error}
        </Alert>
      )}
      {message && (
        <Alert severity="success" title={message} data-testid={testIds.result} onRemove={clearMessage} />
      )}
      {pending && (
        <ConfirmModal
          isOpen
          title={
            pending.kind === 'candidate'
              ? `Trial ${pending.version} on ${percent(pending.share)} of lanes?`
              : pending.kind === 'activate'
                ? `Activate ${pending.version}?`
                : `Roll back to ${pending.version}?`
          }
          body={describe(pending)}
          description={`Reason: ${reason.trim()}`}
          confirmText={
            pending.kind === 'candidate' ? 'Set share' : pending.kind === 'activate' ? 'Activate' : 'Roll back'
          }
          confirmationText={pending.kind === 'candidate' ? undefined : pending.version}
          onConfirm={send}
          onDismiss={dismiss}
        />
      )}
    </Stack>
  );
}
