import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import { installBackend, pathOf, signInAs } from '../../testing/fakeBackend';
import type { FreezeState } from '@controlroom/contract';
import ReleaseFreezePage from './ReleaseFreezePage';

const frozen: FreezeState = {
  frozen: true,
  cause: 'error_budget',
  reason: 'ErrorBudgetHalfSpent (availability)',
  since: '2026-11-23T08:00:00Z',
  triggers: [
    {
      alertname: 'ErrorBudgetHalfSpent',
      slo: 'availability',
      severity: 'ticket',
      firing: true,
      startedAt: '2026-11-23T08:00:00Z',
      resolvedAt: null,
      labels: { slo: 'availability', action: 'freeze' },
    },
  ],
  manualFreezes: [],
  override: null,
  nextChangeAt: null,
  exceptionLabels: [],
  quietPeriodSeconds: 1800,
};

describe('release freeze page', () => {
  it('shows why releases are frozen and lets an admin override with a reason and expiry', async () => {
    signInAs('Admin');
    const calls = installBackend((call) =>
      call.method === 'GET' ? { data: frozen } : { status: 201, data: { id: '9' } }
    );
    render(<ReleaseFreezePage />);
    expect(await screen.findByText('Releases are frozen')).toBeInTheDocument();
    expect(screen.getByText(/Error budget half spent/)).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText(/^Reason/), { target: { value: 'hotfix for INC-7' } });
    fireEvent.change(screen.getByLabelText(/^Expires/), { target: { value: '2099-01-01T12:00' } });
    fireEvent.click(screen.getByRole('button', { name: 'Override the freeze' }));
    expect(await screen.findByText('Freeze overridden')).toBeInTheDocument();
    const post = calls.find((c) => c.method === 'POST')!;
    expect(pathOf(post)).toBe('freeze/overrides');
    expect(post.data).toEqual({ reason: 'hotfix for INC-7', expiresAt: new Date('2099-01-01T12:00').toISOString() });
  });

  it('lets an editor freeze but not override', async () => {
    signInAs('Editor');
    installBackend(() => ({ data: { ...frozen, frozen: false, cause: 'none', reason: '', triggers: [] } }));
    render(<ReleaseFreezePage />);
    expect(await screen.findByText('Releases are open')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Freeze releases' })).toBeEnabled();
    expect(screen.getByRole('button', { name: 'Override the freeze' })).toHaveAttribute('aria-disabled', 'true');
  });

  it('refuses to send a freeze without a reason', async () => {
    signInAs('Editor');
    const calls = installBackend(() => ({
      data: { ...frozen, frozen: false, cause: 'none', reason: '', triggers: [] },
    }));
    render(<ReleaseFreezePage />);
    fireEvent.click(await screen.findByRole('button', { name: 'Freeze releases' }));
    expect(await screen.findByText('Give a reason of at least 3 characters')).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0);
  });
});
