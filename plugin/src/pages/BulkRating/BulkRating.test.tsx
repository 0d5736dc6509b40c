import React from 'react';
import { fireEvent, render, screen, within } from '@testing-library/react';
import { installBackend, pathOf, queryOf, signInAs } from '../../testing/fakeBackend';
import type { BulkJob, LimitRefusalDetails } from '@controlroom/contract';
import { CsvUpload } from './CsvUpload';
import { JobList } from './JobList';
import { LimitRefusal } from './LimitRefusal';
import { ManualLanes } from './ManualLanes';
import { PlanUsage } from './PlanUsage';

const COMPANY = '00000000-0000-4000-8000-000000000001';

const job = (over: Partial<BulkJob> = {}): BulkJob => ({
  id: '11111111-2222-4333-8444-555555555555',
  companyId: COMPANY,
  submittedBy: 'grafana:editor',
  status: 'running',
  source: 'csv',
  filename: 'lanes.csv',
  lanesTotal: 4,
  lanesRated: 1,
  lanesFailed: 0,
  progress: 0.25,
  rejectedRows: 1,
  errors: [],
  agentTaskId: 7,
  error: null,
  createdAt: '2026-11-23T10:00:00Z',
  startedAt: null,
  finishedAt: null,
  ...over,
});

const accepted = (over: Record<string, unknown> = {}) => ({
  job: job({ status: 'queued' }),
  lanesAccepted: 3,
  rejectedRows: 1,
  errors: [{ line: 3, reason: "unknown origin 'Atlantis, ZZ'" }],
  errorsTruncated: false,
  ...over,
});

function dropCsv(text: string, name = 'lanes.csv') {
  const input = document.querySelector('input[type="file"]') as HTMLInputElement;
  const file = new File([text], name, { type: 'text/csv' });
  fireEvent.change(input, { target: { files: [file] } });
  return file;
}

describe('CSV upload', () => {
  beforeEach(() => signInAs('Editor'));

  it('sends the dropped file as text/csv with an idempotency key and lists the rejected rows', async () => {
    const calls = installBackend(() => ({ status: 202, data: accepted() }));
    const onSubmitted = jest.fn();
    render(<CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={onSubmitted} />);
    dropCsv('origin,destination,equipment,pickupDate\n');
    fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }));

    expect(await screen.findByText('Job accepted')).toBeInTheDocument();
    expect(screen.getByText('1 row was rejected')).toBeInTheDocument();
    expect(within(screen.getByTestId('rejected-rows')).getByText("unknown origin 'Atlantis, ZZ'")).toBeInTheDocument();
    const call = calls[0]!;
    expect(call.method).toBe('POST');
    expect(pathOf(call)).toBe('bulk-rating/jobs');
    expect(queryOf(call).get('companyId')).toBe(COMPANY);
    expect(queryOf(call).get('filename')).toBe('lanes.csv');
    expect(call.data).toBe('origin,destination,equipment,pickupDate\n');
    expect(call.headers['Content-Type']).toBe('text/csv');
    expect(call.headers['Idempotency-Key']).toMatch(/\S{8,}/);
    expect(onSubmitted).toHaveBeenCalledWith(expect.objectContaining({ lanesAccepted: 3 }));
  });

  it('shows why the server refused the whole file, with the rows when it names them', async () => {
    installBackend(() => ({
      status: 400,
      data: {
        error: 'no valid lanes: all 2 rows were rejected',
        details: {
          errors: [
            { line: 2, reason: 'pickupDate is in the past' },
            { line: 3, reason: "equipment 'boat' is not one of van, reefer, flatbed" },
          ],
        },
      },
    }));
    render(<CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={jest.fn()} />);
    dropCsv('x');
    fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }));
    expect(await screen.findByText('no valid lanes: all 2 rows were rejected')).toBeInTheDocument();
    expect(screen.getByText('pickupDate is in the past')).toBeInTheDocument();
    expect(screen.getByText("equipment 'boat' is not one of van, reefer, flatbed")).toBeInTheDocument();
  });

  it('shows a plan limit refusal (429) as it came, with no increase flow when the server offers none', async () => {
    installBackend(() => ({
      status: 429,
      data: { error: 'Acme would exceed its bulk rating limit: 10 of 10 jobs used today' },
    }));
    render(<CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={jest.fn()} />);
    dropCsv('x');
    fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }));
    expect(await screen.findByText(/would exceed its bulk rating limit/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /request increase/i })).not.toBeInTheDocument();
  });

  it('offers no submission to a Viewer', async () => {
    signInAs('Viewer');
    const calls = installBackend(() => ({ status: 202, data: accepted() }));
    render(<CsvUpload companyId={COMPANY} canSubmit={false} maxBytes={1_000_000} onSubmitted={jest.fn()} />);
    dropCsv('x');
    const button = await screen.findByRole('button', { name: /rate these lanes/i });
    // Grafana's Button keeps a disabled button focusable (aria-disabled) so its tooltip can explain why.
    expect(button).toHaveAttribute('aria-disabled', 'true');
    fireEvent.click(button);
    expect(calls).toHaveLength(0);
  });
});

describe('manual lanes', () => {
  beforeEach(() => signInAs('Editor'));

  it('sends the lanes as JSON and keeps only the refused ones, with their reasons', async () => {
    const calls = installBackend(() => ({
      status: 202,
      data: accepted({ lanesAccepted: 1, errors: [{ line: 2, reason: "unknown destination 'Nowhere'" }] }),
    }));
    render(<ManualLanes companyId={COMPANY} canSubmit onSubmitted={jest.fn()} />);
    fireEvent.change(screen.getByLabelText('Lane 1 origin'), { target: { value: 'Reno, NV' } });
    fireEvent.change(screen.getByLabelText('Lane 1 destination'), { target: { value: 'Boise, ID' } });
    fireEvent.click(screen.getByRole('button', { name: /add lane/i }));
    fireEvent.change(screen.getByLabelText('Lane 2 origin'), { target: { value: 'Fresno, CA' } });
    fireEvent.change(screen.getByLabelText('Lane 2 destination'), { target: { value: 'Nowhere' } });
    fireEvent.click(screen.getByRole('button', { name: 'Rate 2 lanes' }));

    expect(await screen.findByText("unknown destination 'Nowhere'")).toBeInTheDocument();
    const body = calls[0]!.data as { companyId: string; lanes: Array<Record<string, string>> };
    expect(body.companyId).toBe(COMPANY);
    expect(body.lanes.map((l) => [l.origin, l.destination, l.equipment])).toEqual([
      ['Reno, NV', 'Boise, ID', 'van'],
      ['Fresno, CA', 'Nowhere', 'van'],
    ]);
    expect(calls[0]!.headers['Content-Type']).toBe('application/json');
    // The refused lane is now lane 1, ready to correct.
    expect(screen.getByLabelText('Lane 1 destination')).toHaveValue('Nowhere');
    expect(screen.queryByLabelText('Lane 2 origin')).not.toBeInTheDocument();
  });
});

describe('job list and plan usage', () => {
  it('shows progress and offers the CSV download only once a job has finished', () => {
    render(
      <JobList
        jobs={[
          job(),
          job({ id: '99999999-2222-4333-8444-555555555555', status: 'succeeded', lanesRated: 4, progress: 1 }),
        ]}
        selected={null}
        onSelect={jest.fn()}
      />
    );
    const bars = screen.getAllByRole('progressbar');
    expect(bars.map((b) => b.getAttribute('aria-valuenow'))).toEqual(['25', '100']);
    const links = screen.getAllByRole('link', { name: /csv/i });
    expect(links.map((l) => l.getAttribute('href'))).toContain(
      '/api/plugin-proxy/transbot-controlroom-app/bulk-rating/jobs/99999999-2222-4333-8444-555555555555/results?format=csv'
    );
    expect(screen.getByText('1 rated · 0 failed · 4 total · 1 rows rejected at upload')).toBeInTheDocument();
  });

  it('says when bulk rating is not in the plan and marks features at their limit', () => {
    render(
      <PlanUsage
        allowance={{
          companyId: COMPANY,
          companyName: 'Acme',
          plan: 'starter',
          billingStatus: 'active',
          unit: 'jobs',
          period: 'day',
          periodStart: '2026-11-01',
          limit: 0,
          included: 0,
          used: 0,
          remaining: 0,
          upgrade: { plan: 'pro', name: 'Pro', hardLimit: 10, softLimit: 5, period: 'day', priceMonthly: 299 },
        }}
        usage={{
          companyId: COMPANY,
          companyName: 'Acme',
          plan: 'starter',
          billingStatus: 'active',
          graceUntil: null,
          trialEndsAt: null,
          currentPeriodEnd: null,
          features: [
            {
              feature: 'rate_quote',
              unit: 'quotes',
              period: 'month',
              periodStart: '2026-11-01',
              periodEnd: '2026-12-01',
              used: 500,
              softLimit: 500,
              hardLimit: 500,
              remaining: 0,
              percent: 100,
              overage: 0,
              overageBilled: 0,
              overagePending: 0,
              thresholdsCrossed: [],
              thresholdsNotified: [],
              blocked: true,
            },
          ],
        }}
      />
    );
    expect(screen.getByText('Bulk rating is not in this plan')).toBeInTheDocument();
    expect(screen.getByText(/The Pro plan includes 10 jobs per day\./)).toBeInTheDocument();
    expect(screen.getByText('at limit')).toBeInTheDocument();
  });

  it('counts bulk jobs against the limit and says what is included', () => {
    render(
      <PlanUsage
        allowance={{
          companyId: COMPANY,
          companyName: 'Acme',
          plan: 'pro',
          billingStatus: 'active',
          unit: 'jobs',
          period: 'day',
          periodStart: '2026-11-23',
          limit: 10,
          included: 5,
          used: 6,
          remaining: 4,
          upgrade: null,
        }}
        usage={{
          companyId: COMPANY,
          companyName: 'Acme',
          plan: 'pro',
          billingStatus: 'active',
          graceUntil: null,
          trialEndsAt: null,
          currentPeriodEnd: null,
          features: [
            {
              feature: 'rates',
              unit: 'quotes',
              period: 'month',
              periodStart: '2026-11-01',
              periodEnd: '2026-12-01',
              used: 450,
              softLimit: 500,
              hardLimit: 1000,
              remaining: 550,
              percent: 90,
              overage: 0,
              overageBilled: 0,
              overagePending: 0,
              thresholdsCrossed: [],
              thresholdsNotified: [],
              blocked: false,
            },
            {
              feature: 'bulk_rating',
              unit: 'jobs',
              period: 'day',
              periodStart: '2026-11-23',
              periodEnd: '2026-11-24',
              used: 6,
              softLimit: 5,
              hardLimit: 10,
              remaining: 4,
              percent: 120,
              overage: 1,
              overageBilled: 0,
              overagePending: 0,
              thresholdsCrossed: [],
              thresholdsNotified: [],
              blocked: false,
            },
          ],
        }}
      />
    );
    expect(screen.getByTestId('bulk-allowance')).toHaveTextContent(
      'Bulk rating jobs today (UTC day 2026-11-23): 6 of 10 jobs · 4 left · 5 included, overage billed above'
    );
    expect(screen.getByText('near included amount')).toBeInTheDocument();
    expect(screen.getByText('overage billed')).toBeInTheDocument();
  });
});

// Several renders and round trips each: allow for a loaded CI machine rather than Jest's 5 s default
// per test and Testing Library's 1 s per findBy.
const FLOW_TIMEOUT_MS = 30_000;
const ROUND_TRIP = { timeout: 8_000 };

describe('a job refused for the plan limit', () => {
  const refused = {
    status: 429,
    data: {
      error:
        'bulk rating limit reached: 10 of 10 jobs used today (UTC day 2026-11-23); the Enterprise plan includes unlimited jobs per day',
      details: {
        plan: 'pro',
        feature: 'bulk_rating',
        unit: 'jobs',
        limit: 10,
        included: 5,
        used: 10,
        requested: 1,
        period: 'day',
        periodStart: '2026-11-23',
        upgrade: {
          plan: 'enterprise',
          name: 'Enterprise',
          hardLimit: -1,
          softLimit: -1,
          period: 'day',
          priceMonthly: 999,
        },
        requestIncrease: { method: 'POST', path: '/api/limits/requests', feature: 'bulk_rating', currentLimit: 10 },
      },
    },
  };
  const increaseAnswer = (duplicate = false) => ({
    status: duplicate ? 200 : 201,
    data: {
      duplicate,
      upgrade: null,
      request: {
        id: 7,
        companyId: COMPANY,
        feature: 'bulk_rating',
        unit: 'jobs',
        periodStart: '2026-11-23',
        currentLimit: 10,
        requestedLimit: 25,
        reason: 'month-end repricing',
        requestedBy: 'grafana:editor-user',
        agentTaskId: 42,
        createdAt: '2026-11-23T10:00:00Z',
      },
    },
  });

  beforeEach(() => signInAs('Editor'));

  it(
    'names the next plan that includes more and sends the increase request an Editor fills in',
    async () => {
      const calls = installBackend((call) => (pathOf(call) === 'limits/requests' ? increaseAnswer() : refused));
      render(<CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={jest.fn()} />);
      dropCsv('x');
      fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }, ROUND_TRIP));
      expect(await screen.findByText(/bulk rating limit reached/, {}, ROUND_TRIP)).toBeInTheDocument();
      expect(screen.getByTestId('upgrade-hint')).toHaveTextContent(
        'Upgrade: The Enterprise plan includes unlimited jobs per day.'
      );

      fireEvent.click(screen.getByRole('button', { name: /request increase/i }));
      fireEvent.change(screen.getByLabelText(/New limit/), { target: { value: '25' } });
      fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: '  month-end repricing ' } });
      fireEvent.click(screen.getByRole('button', { name: /send request/i }));

      expect(await screen.findByText('Increase requested', {}, ROUND_TRIP)).toBeInTheDocument();
      expect(
        screen.getByText(/Ops will review 25 jobs per day for bulk_rating \(request #7, by grafana:editor-user\)/)
      ).toBeInTheDocument();
      const request = calls.find((c) => pathOf(c) === 'limits/requests')!;
      expect(request.method).toBe('POST');
      expect(request.data).toEqual({
        companyId: COMPANY,
        feature: 'bulk_rating',
        requestedLimit: 25,
        reason: 'month-end repricing',
      });
      expect(request.headers['Content-Type']).toBe('application/json');
      expect(screen.queryByRole('button', { name: /request increase/i })).not.toBeInTheDocument();
    },
    FLOW_TIMEOUT_MS
  );

  it(
    'checks the limit and the reason before sending, and shows a request made before as such',
    async () => {
      const calls = installBackend((call) => (pathOf(call) === 'limits/requests' ? increaseAnswer(true) : refused));
      render(<ManualLanes companyId={COMPANY} canSubmit onSubmitted={jest.fn()} />);
      fireEvent.change(screen.getByLabelText('Lane 1 origin'), { target: { value: 'Reno, NV' } });
      fireEvent.change(screen.getByLabelText('Lane 1 destination'), { target: { value: 'Boise, ID' } });
      fireEvent.click(screen.getByRole('button', { name: 'Rate 1 lane' }));
      fireEvent.click(await screen.findByRole('button', { name: /request increase/i }, ROUND_TRIP));

      fireEvent.change(screen.getByLabelText(/New limit/), { target: { value: '10' } });
      fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: 'more jobs' } });
      fireEvent.click(screen.getByRole('button', { name: /send request/i }));
      expect(await screen.findByText('Ask for more than the current 10', {}, ROUND_TRIP)).toBeInTheDocument();
      fireEvent.change(screen.getByLabelText(/New limit/), { target: { value: '25' } });
      fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: 'x' } });
      fireEvent.click(screen.getByRole('button', { name: /send request/i }));
      expect(await screen.findByText('Give a reason of at least 3 characters', {}, ROUND_TRIP)).toBeInTheDocument();
      expect(calls.filter((c) => pathOf(c) === 'limits/requests')).toHaveLength(0);

      fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: 'month-end repricing' } });
      fireEvent.click(screen.getByRole('button', { name: /send request/i }));
      expect(await screen.findByText('Increase already requested', {}, ROUND_TRIP)).toBeInTheDocument();
      expect(calls.filter((c) => pathOf(c) === 'limits/requests')).toHaveLength(1);
    },
    FLOW_TIMEOUT_MS
  );

  it(
    'shows the server refusing the request, and gives a Viewer no way to send one',
    async () => {
      installBackend((call) =>
        pathOf(call) === 'limits/requests'
          ? {
              status: 422,
              data: { error: 'requestedLimit 10 is not above the current limit of 10 jobs per day on the pro plan' },
            }
          : refused
      );
      const { unmount } = render(
        <CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={jest.fn()} />
      );
      dropCsv('x');
      fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }, ROUND_TRIP));
      fireEvent.click(await screen.findByRole('button', { name: /request increase/i }, ROUND_TRIP));
      fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: 'month-end repricing' } });
      fireEvent.click(screen.getByRole('button', { name: /send request/i }));
      expect(await screen.findByText('Request not sent', {}, ROUND_TRIP)).toBeInTheDocument();
      expect(screen.getByText(/is not above the current limit/)).toBeInTheDocument();
      unmount();

      signInAs('Viewer');
      const calls = installBackend(() => increaseAnswer());
      render(
        <LimitRefusal
          companyId={COMPANY}
          refusal={{ ...(refused.data.details as LimitRefusalDetails), status: 429 }}
          canRequest={false}
        />
      );
      const button = screen.getByRole('button', { name: /request increase/i });
      expect(button).toHaveAttribute('aria-disabled', 'true');
      fireEvent.click(button);
      expect(screen.queryByLabelText(/New limit/)).not.toBeInTheDocument();
      expect(calls).toHaveLength(0);
    },
    FLOW_TIMEOUT_MS
  );

  it(
    'offers only the upgrade when the plan does not include bulk rating (402)',
    async () => {
      installBackend(() => ({
        status: 402,
        data: {
          error: 'the starter plan does not include bulk rating; the Pro plan includes 10 jobs per day',
          details: {
            ...refused.data.details,
            plan: 'starter',
            limit: 0,
            included: 0,
            used: 0,
            requestIncrease: undefined,
            upgrade: { plan: 'pro', name: 'Pro', hardLimit: 10, softLimit: 5, period: 'day', priceMonthly: 299 },
          },
        },
      }));
      render(<CsvUpload companyId={COMPANY} canSubmit maxBytes={1_000_000} onSubmitted={jest.fn()} />);
      dropCsv('x');
      fireEvent.click(await screen.findByRole('button', { name: /rate these lanes/i }, ROUND_TRIP));
      expect(await screen.findByTestId('upgrade-hint', {}, ROUND_TRIP)).toHaveTextContent(
        'The Pro plan includes 10 jobs per day.'
      );
      expect(screen.queryByRole('button', { name: /request increase/i })).not.toBeInTheDocument();
    },
    FLOW_TIMEOUT_MS
  );
});
