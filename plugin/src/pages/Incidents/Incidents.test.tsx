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
    expect([pathOf(last), queryOf(last).get('severity'), queryOf(last).get('state')]).toEqual(['incidents', 'P1', 'open']);
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
          incidents: [acknowledged ? { ...open, state: 'acknowledged', acknowledgement: { at: open.pagedAt, by: 'grafana:editor-user', via: 'grafana' } } : open],
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
});
