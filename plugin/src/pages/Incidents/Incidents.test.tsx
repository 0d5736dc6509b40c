import React from 'react';
import { fireEvent, render, screen, within } from '@testing-library/react';
import type { Incident } from '@controlroom/contract';
import { installBackend, pathOf, queryOf, signInAs } from '../../testing/fakeBackend';
import IncidentsPage from './IncidentsPage';
import { testIds } from './testIds';

const open: Incident = {
  id: '12',
  source: 'alertmanager',
  groupKey: '{}:{alertname="ActiveRegionDown"}',
  severity: 'P1',
  alertnames: ['ActiveRegionDown'],
  state: 'unacknowledged',
  pagedAt: '2026-11-23T08:00:00Z',
  acknowledgeBy: '2099-11-23T12:00:00Z',
  resolveBy: '2099-11-24T08:00:00Z',
  slaTimeZone: 'UTC',
  acknowledgement: null,
  resolution: null,
  breaches: [],
  pastSla: false,
  alerts: [],
  pages: [],
  slackThreadUrl: 'https://slack.com/archives/C0123/p17000000010001',
  notes: [],
  silences: [],
  actions: { freezeTriggers: [], tasks: [] },
};
const late: Incident = {
  ...open,
  id: '11',
  severity: 'P2',
  alertnames: ['QuoteLatency'],
  state: 'acknowledged',
  acknowledgement: { at: '2026-11-23T07:30:00Z', by: '@ana', via: 'slack_button' },
  breaches: ['acknowledge'],
  slackThreadUrl: null,
  notes: [{ id: '3', text: 'carrier API slow', by: 'grafana:bob', at: '2026-11-23T07:40:00Z' }],
};

// The dialog's tests click through a modal: slower than 5 s when the machine is busy.
const DIALOG_TIMEOUT_MS = 30_000;

describe('incidents page', () => {
  it('lists incidents with times, SLA status, Slack link and notes, and filters by severity and state', async () => {
    signInAs('Viewer');
    const calls = installBackend(() => ({ data: { incidents: [open, late], nextCursor: null } }));
    render(<IncidentsPage />);
    const row = await screen.findByTestId(testIds.row('12'));
    expect(within(row).getByText('ActiveRegionDown')).toBeInTheDocument();
    expect(within(row).getByText(/Acknowledge by/)).toBeInTheDocument();
    expect(within(row).getByRole('link', { name: /Slack thread/ })).toHaveAttribute(
      'href',
      'https://slack.com/archives/C0123/p17000000010001'
    );
    const other = screen.getByTestId(testIds.row('11'));
    expect(within(other).getByText('SLA missed: acknowledge')).toBeInTheDocument();
    expect(within(other).getByText(/by @ana \(Slack button\)/)).toBeInTheDocument();
    expect(within(other).getByText(/carrier API slow/)).toBeInTheDocument();
    expect(within(other).queryByRole('link', { name: /Slack thread/ })).toBeNull();
    expect(queryOf(calls[0]!).get('state')).toBe('open');

    fireEvent.click(within(screen.getByTestId(testIds.severity)).getByLabelText('P1'));
    await screen.findByTestId(testIds.row('12'));
    const last = calls[calls.length - 1]!;
    expect([pathOf(last), queryOf(last).get('severity'), queryOf(last).get('state')]).toEqual([
      'incidents',
      'P1',
      'open',
    ]);
  });

  it('lets an Editor acknowledge and add a note', async () => {
    signInAs('Editor');
    let acknowledged = false;
    const calls = installBackend((call) => {
      if (call.method === 'POST' && pathOf(call).endsWith('/acknowledge')) {
        acknowledged = true;
        return { data: { changed: true, incident: open } };
      }
      if (call.method === 'POST') {
        return { status: 201, data: { note: late.notes[0], incident: open } };
      }
      return {
        data: {
          incidents: [
            acknowledged
              ? {
                  ...open,
                  state: 'acknowledged',
                  acknowledgement: { at: open.pagedAt, by: 'grafana:editor-user', via: 'grafana' },
                }
              : open,
          ],
          nextCursor: null,
        },
      };
    });
    render(<IncidentsPage />);
    fireEvent.click(await screen.findByTestId(testIds.acknowledge('12')));
    expect(await screen.findByText('Incident 12 acknowledged')).toBeInTheDocument();
    expect(await screen.findByText(/by grafana:editor-user \(Grafana\)/)).toBeInTheDocument();
    expect(screen.getByTestId(testIds.acknowledge('12'))).toBeDisabled();

    fireEvent.change(screen.getByTestId(testIds.noteText('12')), { target: { value: ' failing over ' } });
    fireEvent.click(screen.getByTestId(testIds.addNote('12')));
    expect(await screen.findByText('Note added to incident 12')).toBeInTheDocument();
    const posts = calls.filter((c) => c.method === 'POST');
    expect(posts.map(pathOf)).toEqual(['incidents/12/acknowledge', 'incidents/12/notes']);
    expect(posts[1]!.data).toEqual({ text: 'failing over' });
  });

  it('shows a Viewer why Acknowledge and Add note are disabled, and sends nothing', async () => {
    signInAs('Viewer');
    const calls = installBackend(() => ({ data: { incidents: [open], nextCursor: null } }));
    render(<IncidentsPage />);
    expect(await screen.findByTestId(testIds.acknowledge('12'))).toHaveAttribute('aria-disabled', 'true');
    expect(screen.getByTestId(testIds.addNote('12'))).toHaveAttribute('aria-disabled', 'true');
    expect(screen.getByTestId(testIds.noteText('12'))).toBeDisabled();
    expect(screen.getByText('Editor role required')).toBeInTheDocument();
    fireEvent.click(screen.getByTestId(testIds.acknowledge('12')));
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0);
  });

  it('shows a refused action with the reason from Control Room', async () => {
    signInAs('Editor');
    installBackend((call) =>
      call.method === 'POST'
        ? { status: 404, data: { error: 'no incident 12' } }
        : { data: { incidents: [open], nextCursor: null } }
    );
    render(<IncidentsPage />);
    fireEvent.click(await screen.findByTestId(testIds.acknowledge('12')));
    expect(await screen.findByText('no incident 12')).toBeInTheDocument();
  });

  it(
    'lets an Editor silence for a chosen duration with a required reason, and shows the silence',
    async () => {
      signInAs('Editor');
      const silence = {
        silenceId: 'am-1',
        matchers: { alertname: 'ActiveRegionDown' },
        startsAt: '2026-11-23T08:10:00Z',
        endsAt: '2026-11-23T12:10:00Z',
        reason: 'failover drill',
        by: 'grafana:editor-user',
        active: true,
      };
      let silenced = false;
      const calls = installBackend((call) => {
        if (call.method === 'POST') {
          silenced = true;
          return { status: 201, data: { changed: true, silence, incident: { ...open, silences: [silence] } } };
        }
        return { data: { incidents: [silenced ? { ...open, silences: [silence] } : open], nextCursor: null } };
      });
      render(<IncidentsPage />);
      fireEvent.click(await screen.findByTestId(testIds.silence('12')));
      // No reason: nothing is sent, the dialog says why.
      fireEvent.click(screen.getByTestId(testIds.silenceConfirm));
      expect(await screen.findByTestId(testIds.silenceReasonMissing)).toBeInTheDocument();
      expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0);

      fireEvent.click(within(screen.getByTestId(testIds.silenceDuration)).getByLabelText('4 h'));
      fireEvent.change(screen.getByTestId(testIds.silenceReason), { target: { value: '  failover drill ' } });
      fireEvent.click(screen.getByTestId(testIds.silenceConfirm));
      expect(await screen.findByText(/Incident 12 silenced until/)).toBeInTheDocument();
      const posts = calls.filter((c) => c.method === 'POST');
      expect(posts.map(pathOf)).toEqual(['incidents/12/silence']);
      expect(posts[0]!.data).toEqual({ durationMinutes: 240, reason: 'failover drill' });
      expect(posts[0]!.headers['Idempotency-Key']).toMatch(/\S{8,}/);
      expect(screen.queryByTestId(testIds.silenceConfirm)).toBeNull();
      expect(await screen.findByTestId(testIds.silenced('12'))).toHaveTextContent(
        /Silenced until .* by grafana:editor-user: “failover drill”/
      );
    },
    DIALOG_TIMEOUT_MS
  );

  it(
    'offers every duration from 30 minutes to 7 days, 1 hour first',
    async () => {
      signInAs('Editor');
      installBackend(() => ({ data: { incidents: [open], nextCursor: null } }));
      render(<IncidentsPage />);
      fireEvent.click(await screen.findByTestId(testIds.silence('12')));
      const durations = within(screen.getByTestId(testIds.silenceDuration));
      for (const label of ['30 min', '1 h', '2 h', '4 h', '8 h', '1 day', '7 days']) {
        expect(durations.getByLabelText(label)).toBeInTheDocument();
      }
      expect(durations.getByLabelText('1 h')).toBeChecked();
    },
    DIALOG_TIMEOUT_MS
  );

  it(
    'keeps the dialog open with the reason when Control Room refuses (Alertmanager down)',
    async () => {
      signInAs('Editor');
      const keys: string[] = [];
      installBackend((call) => {
        if (call.method === 'POST') {
          keys.push(call.headers['Idempotency-Key']!);
          return {
            status: 503,
            data: {
              error: 'Alertmanager at http://127.0.0.1:9093 did not answer (ECONNREFUSED); nothing was silenced',
            },
          };
        }
        return { data: { incidents: [open], nextCursor: null } };
      });
      render(<IncidentsPage />);
      fireEvent.click(await screen.findByTestId(testIds.silence('12')));
      fireEvent.change(screen.getByTestId(testIds.silenceReason), { target: { value: 'noisy' } });
      fireEvent.click(screen.getByTestId(testIds.silenceConfirm));
      expect(await screen.findByText(/did not answer \(ECONNREFUSED\); nothing was silenced/)).toBeInTheDocument();
      expect(screen.getByTestId(testIds.silenceConfirm)).toBeInTheDocument();
      // Trying the same request again sends the same key, so it cannot make a second silence.
      fireEvent.click(screen.getByTestId(testIds.silenceConfirm));
      await screen.findAllByText(/nothing was silenced/);
      await new Promise((r) => setTimeout(r, 0));
      expect(keys).toHaveLength(2);
      expect(keys[1]).toBe(keys[0]);
    },
    DIALOG_TIMEOUT_MS
  );

  it('shows a Viewer Silence for… disabled', async () => {
    signInAs('Viewer');
    installBackend(() => ({ data: { incidents: [open], nextCursor: null } }));
    render(<IncidentsPage />);
    expect(await screen.findByTestId(testIds.silence('12'))).toHaveAttribute('aria-disabled', 'true');
  });

  it('loads older incidents page by page with Load more, following the cursor', async () => {
    signInAs('Viewer');
    const calls = installBackend((call) =>
      queryOf(call).get('cursor') === '12'
        ? { data: { incidents: [late], nextCursor: null } }
        : { data: { incidents: [open], nextCursor: '12' } }
    );
    render(<IncidentsPage />);
    await screen.findByTestId(testIds.row('12'));
    expect(screen.queryByTestId(testIds.row('11'))).toBeNull();
    expect(queryOf(calls[0]!).get('limit')).toBe('25');
    fireEvent.click(screen.getByTestId(testIds.loadMore));
    await screen.findByTestId(testIds.row('11'));
    expect(screen.getByTestId(testIds.row('12'))).toBeInTheDocument();
    expect(screen.queryByTestId(testIds.loadMore)).toBeNull();
    expect(calls.map((c) => queryOf(c).get('cursor') ?? null)).toEqual([null, null, '12']);
  });
});
