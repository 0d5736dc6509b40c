import React from 'react';
import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { installBackend, pathOf, signInAs } from '../../testing/fakeBackend';
import type { Region, RegionsState } from '@controlroom/contract';
import { Controls, parseSteps } from './Controls';
import FailoverPage from './FailoverPage';

// Rendering Grafana UI with user events takes seconds on a loaded CI machine: a generous bound, not a flake.
jest.setTimeout(30_000);

const region = (name: string, over: Partial<Region> = {}): Region => ({
  name,
  role: name === 'us-east-1' ? 'primary' : 'secondary',
  base_url: `http://${name}`,
  traffic_weight: name === 'us-east-1' ? 100 : 0,
  active: name === 'us-east-1',
  healthy: true,
  last_check_at: '2026-11-23T10:00:00Z',
  last_latency_ms: 12,
  last_error: null,
  health_changed_at: null,
  replication_lag_seconds: 0,
  checks: [
    { at: '2026-11-23T10:00:00Z', ok: true, latency_ms: 12, status_code: 200, error: null },
    { at: '2026-11-23T09:59:55Z', ok: false, latency_ms: null, status_code: 503, error: 'HTTP 503' },
  ],
  ...over,
});

const state = (over: Partial<RegionsState['control']> = {}): RegionsState => ({
  scope: 'tms',
  control: { epoch: 7, lease_holder: 'controlroom-a', write_frozen: false, frozen_since: null, cutover: null, ...over },
  regions: [region('us-east-1'), region('us-west-2')],
  events: [
    {
      id: '1',
      kind: 'manual',
      from_region: 'us-west-2',
      to_region: 'us-east-1',
      steps: [50, 100],
      actor: 'grafana:ops',
      reason: 'back home',
      forced: false,
      epoch: 6,
      started_at: '2026-11-22T10:00:00Z',
      finished_at: '2026-11-22T10:01:00Z',
      outcome: 'completed',
    },
  ],
  drills: [],
  settings: { auto_failover: true, step_seconds: 30, default_steps: [10, 50, 100], check_interval_seconds: 5 },
});

describe('parseSteps', () => {
  it('reads percentages separated by commas, spaces or slashes and names a bad one', () => {
    expect(parseSteps('10, 50 / 100')).toEqual([10, 50, 100]);
    expect(parseSteps('10, half, 100')).toBe("'half' is not a whole percentage");
    expect(typeof parseSteps('  ')).toBe('string');
  });
});

describe('failover controls', () => {
  it('fails over only after the admin types the target region, sending steps and reason', async () => {
    signInAs('Admin');
    const calls = installBackend(() => ({ status: 202, data: { event: { id: '2' }, plan: [] } }));
    const onDone = jest.fn();
    render(<Controls state={state()} canControl onDone={onDone} />);
    fireEvent.change(screen.getByLabelText(/reason/i), { target: { value: 'us-east-1 degraded, INC-42' } });
    fireEvent.change(screen.getByLabelText(/steps/i), { target: { value: '25, 100' } });
    fireEvent.click(screen.getByRole('button', { name: 'Fail over to us-west-2' }));

    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText(/25% → 100%/)).toBeInTheDocument();
    const confirm = within(dialog).getByRole('button', { name: 'Fail over' });
    expect(confirm).toBeDisabled();
    fireEvent.change(within(dialog).getByRole('textbox'), { target: { value: 'us-west-2' } });
    expect(confirm).toBeEnabled();
    fireEvent.click(confirm);

    expect(await screen.findByText('Failover to us-west-2 started')).toBeInTheDocument();
    expect(calls).toHaveLength(1);
    expect(pathOf(calls[0]!)).toBe('regions/failover');
    expect(calls[0]!.data).toEqual({ reason: 'us-east-1 degraded, INC-42', target: 'us-west-2', steps: [25, 100] });
    expect(onDone).toHaveBeenCalled();
  });

  it('asks for a reason before anything is sent, and shows the server refusal', async () => {
    signInAs('Admin');
    const calls = installBackend(() => ({
      status: 409,
      data: { error: 'us-west-2 is unhealthy: pass force to fail over anyway' },
    }));
    render(<Controls state={state()} canControl onDone={jest.fn()} />);
    fireEvent.click(screen.getByRole('button', { name: 'Shift traffic' }));
    expect(await screen.findByText(/at least 3 characters/)).toBeInTheDocument();
    expect(calls).toHaveLength(0);

    fireEvent.change(screen.getByLabelText(/reason/i), { target: { value: 'canary' } });
    fireEvent.change(screen.getByLabelText('us-west-2 weight'), { target: { value: '10' } });
    fireEvent.change(screen.getByLabelText('us-east-1 weight'), { target: { value: '90' } });
    fireEvent.click(screen.getByRole('button', { name: 'Shift traffic' }));
    fireEvent.click(within(await screen.findByRole('dialog')).getByRole('button', { name: 'Shift traffic' }));
    expect(await screen.findByText('us-west-2 is unhealthy: pass force to fail over anyway')).toBeInTheDocument();
    expect(calls[0]!.data).toEqual({ reason: 'canary', weights: { 'us-east-1': 90, 'us-west-2': 10 } });
  });

  it('keeps the outcome when the cutover ends with a new active region, and targets the other region from then on', async () => {
    signInAs('Admin');
    installBackend(() => ({ status: 202, data: { event: { id: '2' }, plan: [] } }));
    const { rerender } = render(<Controls state={state()} canControl onDone={jest.fn()} />);
    fireEvent.change(screen.getByLabelText(/reason/i), { target: { value: 'us-east-1 degraded, INC-42' } });
    fireEvent.click(screen.getByRole('button', { name: 'Fail over to us-west-2' }));
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByRole('textbox'), { target: { value: 'us-west-2' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Fail over' }));
    expect(await screen.findByText('Failover to us-west-2 started')).toBeInTheDocument();

    const moved = state();
    moved.regions = [
      region('us-east-1', { active: false, traffic_weight: 0 }),
      region('us-west-2', { active: true, traffic_weight: 100 }),
    ];
    rerender(<Controls state={moved} canControl onDone={jest.fn()} />);
    expect(screen.getByText('Failover to us-west-2 started')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Fail over to us-east-1' })).toBeInTheDocument();
    expect(screen.getByLabelText('us-west-2 weight')).toHaveValue(100);
  });

  it('disables every control for a non-admin', () => {
    signInAs('Editor');
    render(<Controls state={state()} canControl={false} onDone={jest.fn()} />);
    expect(screen.getByRole('button', { name: 'Fail over to us-west-2' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Shift traffic' })).toBeDisabled();
    expect(screen.getByLabelText(/reason/i)).toBeDisabled();
  });
});

describe('failover page', () => {
  it('shows the active region, the write freeze, each region and the audit trail', async () => {
    signInAs('Viewer');
    installBackend((call) =>
      pathOf(call) === 'regions'
        ? { data: state({ write_frozen: true, frozen_since: '2026-11-23T10:00:00Z' }) }
        : { status: 404 }
    );
    render(<FailoverPage />);
    expect(await screen.findByText('Active region: us-east-1')).toBeInTheDocument();
    expect(screen.getByTestId('write-freeze')).toHaveTextContent(/writes frozen since/i);
    expect(screen.getByTestId('weight-us-west-2')).toHaveTextContent('0%');
    expect(screen.getByLabelText('us-east-1 health history: 1 of 2 checks failed')).toBeInTheDocument();
    expect(within(screen.getByTestId('failover-events')).getByText('grafana:ops')).toBeInTheDocument();
    expect(screen.getByText('Admin role required')).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole('button', { name: 'Fail over to us-west-2' })).toBeDisabled());
  });
});

describe('failover runbook on the page', () => {
  const withPinBack = (auto: boolean): RegionsState => ({
    ...state(),
    regions: [region('us-east-1', { traffic_weight: 70 }), region('us-west-2', { traffic_weight: 30, healthy: false })],
    pin_back: { needed: true, from: 'us-west-2', to: 'us-east-1', weight: 30 },
    settings: { ...state().settings, auto_failover: auto },
  });

  it('offers pin-back to an admin when automatic failover is off, and sends the reason', async () => {
    signInAs('Admin');
    const calls = installBackend((call) =>
      pathOf(call) === 'regions'
        ? { data: withPinBack(false) }
        : { status: 200, data: { event: { id: '9', outcome: 'completed' } } }
    );
    render(<FailoverPage />);
    expect(await screen.findByText('us-west-2 is unhealthy but carries 30% of the traffic')).toBeInTheDocument();
    fireEvent.click(screen.getByRole('button', { name: 'Pin back to us-east-1' }));
    expect(await screen.findByText(/at least 3 characters/)).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText('Pin-back reason'), { target: { value: 'standby failing checks' } });
    fireEvent.click(screen.getByRole('button', { name: 'Pin back to us-east-1' }));
    await waitFor(() => expect(calls.some((c) => pathOf(c) === 'regions/pin-back')).toBe(true));
    expect(calls.find((c) => pathOf(c) === 'regions/pin-back')!.data).toEqual({ reason: 'standby failing checks' });
  });

  it('says pin-back is automatic when automatic failover is on', async () => {
    signInAs('Viewer');
    installBackend(() => ({ data: withPinBack(true) }));
    render(<FailoverPage />);
    expect(await screen.findByText(/traffic is pinned back to us-east-1 at the next health round/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Pin back/ })).not.toBeInTheDocument();
  });

  it('shows the background-job phase of a cutover, and the last drill and game day against the targets', async () => {
    signInAs('Viewer');
    const draining: RegionsState = {
      ...state({
        jobs_paused: true,
        cutover: {
          event_id: '5',
          kind: 'manual',
          from: 'us-east-1',
          to: 'us-west-2',
          steps: [10, 100],
          plan: [
            { 'us-east-1': 90, 'us-west-2': 10 },
            { 'us-east-1': 0, 'us-west-2': 100 },
          ],
          applied: 1,
          next_at: '2026-11-23T10:00:00Z',
          phase: 'draining_jobs',
          jobs: {
            paused_at: new Date().toISOString(),
            pause_confirmed: ['us-east-1'],
            depths: { 'us-east-1': 4, 'us-west-2': 0 },
            drained_at: null,
            last_error: null,
          },
          reason: 'planned',
          actor: 'grafana:ops',
          abort: null,
        },
      }),
      drills: [
        {
          id: '3',
          kind: 'gameday',
          scenario: 'primary-db-loss',
          started_at: '2026-11-22T09:00:00Z',
          finished_at: '2026-11-22T09:00:03Z',
          outcome: 'passed',
          rto_seconds: 0.9,
          rpo_seconds: 0.18,
          rto_target_seconds: 900,
          rpo_target_seconds: 300,
          rto_met: true,
          rpo_met: true,
          writes_lost: 6,
          actor: 'controlroom:gameday',
        },
        {
          id: '2',
          kind: 'drill',
          scenario: null,
          started_at: '2026-11-22T08:00:00Z',
          finished_at: '2026-11-22T08:00:02Z',
          outcome: 'failed',
          rto_seconds: 1.2,
          rpo_seconds: 0,
          rto_target_seconds: 1,
          rpo_target_seconds: 300,
          rto_met: false,
          rpo_met: true,
          writes_lost: 0,
          actor: 'controlroom:drill',
          failure: 'RTO 1.200 s is over the 1 s target',
        },
      ],
      settings: { ...state().settings, drain_timeout_seconds: 120, rto_target_seconds: 900, rpo_target_seconds: 300 },
    };
    installBackend(() => ({ data: draining }));
    render(<FailoverPage />);
    expect(await screen.findByTestId('jobs-paused')).toHaveTextContent('Background jobs paused');
    expect(screen.getByTestId('jobs-phase')).toHaveTextContent(
      /Waiting for background jobs to drain \(us-east-1 4, us-west-2 0\) · aborts in \d+ s/
    );
    expect(screen.getByTestId('objectives-last-drill')).toHaveTextContent('Failed');
    expect(screen.getByTestId('objectives-last-game-day')).toHaveTextContent('Passed');
    expect(screen.getByText('RTO 1.200 s is over the 1 s target')).toBeInTheDocument();
    expect(screen.getByText(/RTO 1.20 s of 1.00 s \(missed\)/)).toBeInTheDocument();
  });
});
