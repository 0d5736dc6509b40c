import React from 'react';
import type { PricingOverview, PricingRoleStats } from '@controlroom/contract';
import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { installBackend, pathOf, signInAs } from '../../testing/fakeBackend';
import { Controls, parseSharePercent } from './Controls';
import PricingPage from './PricingPage';
import { testIds } from './testIds';

// Rendering Grafana UI with user events takes seconds on a loaded CI machine: a generous bound, not a flake.
jest.setTimeout(30_000);

// jsdom has no canvas, and Combobox measures its option labels with one to size its menu.
beforeAll(() => {
  jest
    .spyOn(HTMLCanvasElement.prototype, 'getContext')
    .mockImplementation(() => ({ font: '', measureText: (text: string) => ({ width: text.length * 7 }) }) as unknown as CanvasRenderingContext2D);
});

const none: PricingRoleStats = {
  lanesRated: 0,
  anomalyLanes: 0,
  needsReviewLanes: 0,
  anomalyRate: null,
  needsReviewRate: null,
  quotedDollars: 0,
  quotedMiles: 0,
  meanPricePerMile: null,
};

const overview = (over: Partial<PricingOverview> = {}): PricingOverview => ({
  models: [
    {
      version: 'v3',
      status: 'candidate',
      candidateShare: 0.2,
      createdBy: 'grafana:pricing',
      createdAt: '2026-11-20T10:00:00Z',
      activatedAt: null,
      retiredAt: null,
      asActive: none,
      asCandidate: {
        lanesRated: 400,
        anomalyLanes: 28,
        needsReviewLanes: 4,
        anomalyRate: 0.07,
        needsReviewRate: 0.01,
        quotedDollars: 98_000,
        quotedMiles: 40_000,
        meanPricePerMile: 2.45,
      },
    },
    {
      version: 'v2',
      status: 'active',
      candidateShare: null,
      createdBy: 'grafana:pricing',
      createdAt: '2026-11-10T10:00:00Z',
      activatedAt: '2026-11-15T10:00:00Z',
      retiredAt: null,
      asActive: { ...none, lanesRated: 1600, quotedDollars: 384_000, quotedMiles: 160_000, meanPricePerMile: 2.4, anomalyRate: 0, needsReviewRate: 0 },
      asCandidate: none,
    },
    {
      version: 'v1',
      status: 'retired',
      candidateShare: null,
      createdBy: 'controlroom:migration',
      createdAt: '2026-11-01T10:00:00Z',
      activatedAt: '2026-11-01T10:00:00Z',
      retiredAt: '2026-11-15T10:00:00Z',
      asActive: none,
      asCandidate: none,
    },
  ],
  active: 'v2',
  candidate: { version: 'v3', share: 0.2 },
  rollbackTo: 'v1',
  statsAsOf: '2026-11-23T10:00:00Z',
  anomalyThreshold: 0.1,
  maxCandidateShare: 0.5,
  ...over,
});

describe('parseSharePercent', () => {
  it('reads a percentage of lanes and names what is wrong', () => {
    expect(parseSharePercent('10', 0.5)).toBe(0.1);
    expect(parseSharePercent(' 12.5% ', 0.5)).toBe(0.125);
    expect(parseSharePercent('60', 0.5)).toBe('Share must be above 0% and at most 50% of lanes');
    expect(parseSharePercent('0', 0.5)).toBe('Share must be above 0% and at most 50% of lanes');
    expect(parseSharePercent('ten', 0.5)).toBe("Share: 'ten' is not a percentage");
  });
});

describe('pricing page', () => {
  it('shows the active model, the candidate with its share, anomaly and review rates, and every model', async () => {
    signInAs('Viewer');
    const calls = installBackend(() => ({ data: overview() }));
    render(<PricingPage />);
    expect(await screen.findByTestId(testIds.activeModel)).toHaveTextContent('Active model: v2');
    const candidate = screen.getByTestId(testIds.candidate);
    expect(candidate).toHaveTextContent('Candidate v3 prices 20% of lanes');
    expect(candidate).toHaveTextContent('400 lanes rated: 7% moved more than 10% from the active price (anomaly), 1% need review.');
    const v3 = screen.getByTestId(testIds.modelRow('v3'));
    expect(v3).toHaveTextContent('candidate');
    expect(v3).toHaveTextContent('400 lanes · anomaly 7% · review 1% · $2.45/mi');
    expect(screen.getByTestId(testIds.modelRow('v1'))).toHaveTextContent('retired');
    expect(calls.map((c) => [c.method, pathOf(c)])).toEqual([['GET', 'pricing/overview']]);
  });

  it('gives Viewers and Editors disabled controls and says why; nothing is sent', async () => {
    for (const role of ['Viewer', 'Editor'] as const) {
      signInAs(role);
      const calls = installBackend(() => ({ data: overview() }));
      const { unmount } = render(<PricingPage />);
      expect(await screen.findByText('Admin role required')).toBeInTheDocument();
      expect(screen.getByTestId(testIds.reason)).toBeDisabled();
      expect(screen.getByTestId(testIds.candidateShare)).toBeDisabled();
      for (const id of [testIds.setCandidate, testIds.activate, testIds.rollback]) {
        expect(screen.getByTestId(id)).toBeDisabled();
      }
      expect(calls.filter((c) => c.method !== 'GET')).toEqual([]);
      unmount();
    }
  });

  it('enables the controls for a user Grafana grants pricing:write, whatever the org role', async () => {
    signInAs('Editor', false, { 'transbot-controlroom-app.pricing:write': true, 'transbot-controlroom-app.controlroom:read': true });
    installBackend(() => ({ data: overview() }));
    render(<PricingPage />);
    expect(await screen.findByTestId(testIds.rollback)).toBeEnabled();
    expect(screen.queryByText('Admin role required')).not.toBeInTheDocument();
  });
});

describe('pricing controls', () => {
  it('refuses to ask without a reason, then rolls back after the admin types the version', async () => {
    signInAs('Admin');
    const calls = installBackend(() => ({ data: { model: { version: 'v1', status: 'active' } } }));
    const onDone = jest.fn();
    render(<Controls overview={overview()} canControl onDone={onDone} />);
    fireEvent.click(screen.getByTestId(testIds.rollback));
    expect(await screen.findByText('Give a reason of at least 3 characters (it goes into the audit log)')).toBeInTheDocument();
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();

    fireEvent.change(screen.getByTestId(testIds.reason), { target: { value: '  v2 quotes 12% high in the Southeast ' } });
    fireEvent.click(screen.getByTestId(testIds.rollback));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText('v1 becomes the active model again and prices every lane; v2 is retired.')).toBeInTheDocument();
    const confirm = within(dialog).getByRole('button', { name: 'Roll back' });
    expect(confirm).toBeDisabled();
    fireEvent.change(within(dialog).getByRole('textbox'), { target: { value: 'v1' } });
    fireEvent.click(confirm);

    expect(await screen.findByText('Rolled back: v1 is the active model again')).toBeInTheDocument();
    expect(calls.map((c) => [c.method, pathOf(c), c.data])).toEqual([
      ['POST', 'pricing/rollback', { reason: 'v2 quotes 12% high in the Southeast' }],
    ]);
    expect(onDone).toHaveBeenCalledTimes(1);
  });

  it('sets the candidate share in percent, sent as a fraction with the reason', async () => {
    signInAs('Admin');
    const calls = installBackend(() => ({ data: { model: { version: 'v3', status: 'candidate' } } }));
    render(<Controls overview={overview()} canControl onDone={jest.fn()} />);
    fireEvent.change(screen.getByTestId(testIds.reason), { target: { value: 'widen the v3 trial' } });
    fireEvent.change(screen.getByTestId(testIds.candidateShare), { target: { value: '75' } });
    fireEvent.click(screen.getByTestId(testIds.setCandidate));
    expect(await screen.findByText('Share must be above 0% and at most 50% of lanes')).toBeInTheDocument();

    fireEvent.change(screen.getByTestId(testIds.candidateShare), { target: { value: '35' } });
    fireEvent.click(screen.getByTestId(testIds.setCandidate));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText('Trial v3 on 35% of lanes?')).toBeInTheDocument();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Set share' }));
    expect(await screen.findByText('v3 is the candidate on 35% of lanes')).toBeInTheDocument();
    expect(calls.map((c) => [c.method, pathOf(c), c.data])).toEqual([
      ['POST', 'pricing/models/v3/candidate', { reason: 'widen the v3 trial', share: 0.35 }],
    ]);
  });

  it('activates the chosen model, and shows the refusal of the proxy or the API', async () => {
    signInAs('Admin');
    const calls = installBackend(() => ({ status: 403, data: { message: 'plugin proxy route access denied' } }));
    render(<Controls overview={overview()} canControl onDone={jest.fn()} />);
    fireEvent.change(screen.getByTestId(testIds.reason), { target: { value: 'v3 held up for a week' } });
    fireEvent.click(screen.getByTestId(testIds.activate));
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByRole('textbox'), { target: { value: 'v3' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Activate' }));
    expect(await screen.findByText('Your Grafana role does not allow this action')).toBeInTheDocument();
    expect(calls.map((c) => [c.method, pathOf(c), c.data])).toEqual([
      ['POST', 'pricing/models/v3/activate', { reason: 'v3 held up for a week' }],
    ]);
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
  });

  it('keeps the outcome on screen when the reloaded overview brings the new active model, and starts the selections again from it', async () => {
    signInAs('Admin');
    // The registry as the API holds it: v2 active until the rollback lands, then v1 (v3 stays the candidate).
    let rolledBack = false;
    const rolledBackOverview = () => {
      const base = overview();
      return overview({
        active: 'v1',
        rollbackTo: 'v2',
        models: base.models.map((m) =>
          m.version === 'v1' ? { ...m, status: 'active' as const } : m.version === 'v2' ? { ...m, status: 'retired' as const } : m
        ),
      });
    };
    const calls = installBackend((call) => {
      if (pathOf(call) === 'pricing/rollback') {
        rolledBack = true;
        return { data: { model: { version: 'v1', status: 'active' } } };
      }
      return { data: rolledBack ? rolledBackOverview() : overview() };
    });
    render(<PricingPage />);
    await screen.findByText('Active model: v2');
    fireEvent.change(screen.getByTestId(testIds.reason), { target: { value: 'v2 quotes 12% high' } });
    fireEvent.click(screen.getByTestId(testIds.rollback));
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByRole('textbox'), { target: { value: 'v1' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Roll back' }));

    // The page reloads the overview after the rollback: the outcome must outlive the new data.
    await screen.findByText('Active model: v1');
    expect(screen.getByTestId(testIds.result)).toHaveTextContent('Rolled back: v1 is the active model again');
    expect(calls.map((c) => [c.method, pathOf(c)])).toEqual([
      ['GET', 'pricing/overview'],
      ['POST', 'pricing/rollback'],
      ['GET', 'pricing/overview'],
    ]);
    // Selections derived from the registry follow it: the rollback now offers v2, the model just retired.
    expect(screen.getByTestId(testIds.rollback)).toHaveTextContent('Roll back to v2');
    expect(screen.getByTestId(testIds.reason)).toHaveValue('');
  });

  it('offers no rollback when no model was retired', () => {
    signInAs('Admin');
    installBackend(() => ({ data: {} }));
    render(<Controls overview={overview({ rollbackTo: null })} canControl onDone={jest.fn()} />);
    expect(screen.getByTestId(testIds.rollback)).toBeDisabled();
    expect(screen.getByText('No retired model to roll back to.')).toBeInTheDocument();
  });
});
