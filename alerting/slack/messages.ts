import type { AlertEventRow } from '../events.ts';

/** Slack Block Kit blocks are plain JSON; typed loosely here because we only build them. */
type Block = Record<string, unknown>;

export interface PageView {
  pageId: string;
  severity: string;
  state: 'firing' | 'acknowledged' | 'resolved';
  ackedBy: string | null;
  resolvedBy: string | null;
  alerts: readonly AlertEventRow[];
}

const ICON: Record<string, string> = { P1: ':rotating_light:', P2: ':warning:', P3: ':large_yellow_circle:' };
const MAX_LISTED = 10;

export const ACK_ACTION = 'page_ack';
export const RESOLVE_ACTION = 'page_resolve';

function title(view: PageView): string {
  const firing = view.alerts.filter((a) => a.status === 'firing');
  const names = [...new Set(view.alerts.map((a) => a.alertname))];
  const subject = names.length === 1 ? names[0]! : `${names.length} alerts`;
  const slo = [...new Set(view.alerts.map((a) => a.labels.slo).filter(Boolean))];
  const about = slo.length ? ` (${slo.join(', ')})` : '';
  if (view.state === 'resolved' || firing.length === 0)
    return `:white_check_mark: RESOLVED [${view.severity}] ${subject}${about}`;
  return `${ICON[view.severity] ?? ''} FIRING:${firing.length} [${view.severity}] ${subject}${about}`;
}

function alertLine(a: AlertEventRow): string {
  const summary = a.annotations.summary ?? a.annotations.description ?? a.alertname;
  const mark = a.status === 'firing' ? ':red_circle:' : ':large_green_circle:';
  return `${mark} ${summary}`;
}

/** The root message of a page: current state of every alert in the group, and the buttons while open. */
export function rootMessage(view: PageView): { text: string; blocks: Block[] } {
  const text = title(view);
  const listed = view.alerts.slice(0, MAX_LISTED).map(alertLine);
  if (view.alerts.length > MAX_LISTED) listed.push(`…and ${view.alerts.length - MAX_LISTED} more`);
  const status =
    view.state === 'acknowledged'
      ? `Acknowledged by ${view.ackedBy}`
      : view.state === 'resolved' && view.resolvedBy
        ? `Resolved by ${view.resolvedBy}`
        : view.state === 'resolved'
          ? 'Resolved'
          : 'Not acknowledged';
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: text.slice(0, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: listed.join('\n').slice(0, 2900) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `${status} · page ${view.pageId}` }] },
  ];
  if (view.state !== 'resolved') {
    const buttons: Block[] = [];
    if (view.state === 'firing') {
      buttons.push({
        type: 'button',
        action_id: ACK_ACTION,
        value: view.pageId,
        text: { type: 'plain_text', text: 'Acknowledge' },
        style: 'primary',
      });
    }
    buttons.push({
      type: 'button',
      action_id: RESOLVE_ACTION,
      value: view.pageId,
      text: { type: 'plain_text', text: 'Resolve' },
    });
    blocks.push({ type: 'actions', block_id: 'page_actions', elements: buttons });
  }
  return { text, blocks };
}

/** A thread reply listing what changed since the last message. */
export function changesReply(changes: readonly AlertEventRow[]): string {
  const firing = changes.filter((c) => c.status === 'firing');
  const resolved = changes.filter((c) => c.status === 'resolved');
  const lines: string[] = [];
  if (firing.length) lines.push(`*Firing (${firing.length})*`, ...firing.slice(0, MAX_LISTED).map(alertLine));
  if (firing.length > MAX_LISTED) lines.push(`…and ${firing.length - MAX_LISTED} more`);
  if (resolved.length) lines.push(`*Resolved (${resolved.length})*`, ...resolved.slice(0, MAX_LISTED).map(alertLine));
  if (resolved.length > MAX_LISTED) lines.push(`…and ${resolved.length - MAX_LISTED} more`);
  return lines.join('\n');
}

export interface StormView {
  channel: string;
  groups: number;
  firingGroups: number;
  alerts: number;
  top: Array<{ alertname: string; severity: string; firing: number }>;
  closed: boolean;
}

/** One message standing for many alert groups while a channel is flooded. */
export function stormMessage(view: StormView): { text: string; blocks: Block[] } {
  const text = view.closed
    ? `:white_check_mark: Alert storm over: ${view.groups} alert groups, all resolved`
    : `:tornado: Alert storm: ${view.firingGroups} of ${view.groups} alert groups firing (${view.alerts} alerts)`;
  const lines = view.top.map((t) => `• [${t.severity}] ${t.alertname}: ${t.firing} firing`);
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: text.slice(0, 150), emoji: true } },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: (lines.join('\n') || 'No alert firing.').slice(0, 2900) },
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: 'Groups are folded into this message instead of paging one by one; see Alertmanager for each.',
          },
        ],
      },
    ],
  };
}
